//! Network namespaces for the socket tests: created with unique names,
//! removed on drop (also when a test fails), and a way to start a
//! [`bfd::Bfd`] inside one. Needs root and iproute2; fails loudly without.
#![allow(dead_code)]

use std::net::Ipv6Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use bfd::{Bfd, StateChange};
use tokio::sync::mpsc::UnboundedReceiver;

pub const A_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const B_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

pub fn sh(args: &[&str]) -> String {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("`{}`: {e} (is it installed?)", args.join(" ")),
    }
}

/// Drops every BFD control packet (UDP port 3784) that namespace `ns`
/// sends, with nftables: that side falls silent, the link and all else
/// stay up.
pub fn silence_bfd(ns: &str) {
    for rule in [
        "add table inet bfdtest",
        "add chain inet bfdtest out { type filter hook output priority 0; }",
        "add rule inet bfdtest out udp dport 3784 drop",
    ] {
        sh(&["ip", "netns", "exec", ns, "nft", rule]);
    }
}

/// Undoes [`silence_bfd`].
pub fn unsilence_bfd(ns: &str) {
    sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        "delete table inet bfdtest",
    ]);
}

/// Adds a session with default timers from host A to B's link-local
/// address over `va`, A's address as source.
pub async fn add_a_to_b(bfd: &Bfd) -> bfd::PeerKey {
    bfd.add(bfd::PeerSpec {
        peer: std::net::IpAddr::V6(B_LL),
        interface: Some("va".into()),
        local: Some(std::net::IpAddr::V6(A_LL)),
        config: bfd::Config::default(),
    })
    .await
    .unwrap_or_else(|e| panic!("add: {e}"))
}

/// `vtysh -c CMD` against FRR daemon `daemon` whose sockets are in `dir`;
/// `None` when vtysh fails.
pub fn vtysh(dir: &std::path::Path, daemon: &str, cmd: &str) -> Option<String> {
    let out = Command::new("vtysh")
        .arg("--vty_socket")
        .arg(dir)
        .args(["-d", daemon, "-c", cmd])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces)"
    );
}

/// Namespaces removed on drop.
pub struct Netns(pub Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Two namespaces `<tag><pid>a`/`b` joined by a veth `va` - `vb` carrying
/// only fe80::1 and fe80::2 (no automatic link-local addresses).
pub fn two_hosts(tag: &str) -> (Netns, String, String) {
    require_root();
    let id = std::process::id();
    let (a, b) = (format!("{tag}{id}a"), format!("{tag}{id}b"));
    let guard = Netns(vec![a.clone(), b.clone()]);
    sh(&["ip", "netns", "add", &a]);
    sh(&["ip", "netns", "add", &b]);
    sh(&[
        "ip", "link", "add", "va", "netns", &a, "type", "veth", "peer", "name", "vb", "netns", &b,
    ]);
    for (ns, dev, ll) in [(&a, "va", A_LL), (&b, "vb", B_LL)] {
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", ns, "link", "set", dev, "addrgenmode", "none"]);
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ll}/64"),
            "dev",
            dev,
            "nodad",
        ]);
        sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    (guard, a, b)
}

/// Starts a [`Bfd`] whose thread lives in namespace `ns`: the thread
/// that calls `Bfd::start` enters `ns` first, and the BFD thread it
/// spawns inherits that namespace.
pub fn bfd_in(ns: &str) -> (Bfd, UnboundedReceiver<StateChange>) {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // setns(2) affects only this thread.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        Bfd::start(bfd::sockets::CONTROL_PORT).unwrap_or_else(|e| panic!("bfd start: {e}"))
    })
    .join()
    .unwrap_or_else(|_| panic!("thread starting bfd panicked"))
}

/// The next state change into `to`, with how long it took from `since`;
/// panics after `limit`.
pub async fn wait_state(
    rx: &mut UnboundedReceiver<StateChange>,
    to: bfd::State,
    since: Instant,
    limit: Duration,
) -> (StateChange, Duration) {
    let r = tokio::time::timeout(limit, async {
        loop {
            match rx.recv().await {
                Some(c) if c.to == to => return c,
                Some(_) => {}
                None => panic!("bfd thread ended"),
            }
        }
    })
    .await;
    match r {
        Ok(c) => {
            let took = c.at.saturating_duration_since(since);
            (c, took)
        }
        Err(_) => panic!("no change to {to} within {limit:?}"),
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}
