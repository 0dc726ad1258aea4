//! Two [`nd::Discovery`] instances in two network namespaces joined by a
//! veth pair with link-local addresses only find each other. Needs root
//! (CI runs as root) and fails loudly without it.

use std::net::Ipv6Addr;
use std::process::Command;
use std::time::Duration;

const A_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const B_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("`{}`: {e}", args.join(" ")),
    }
}

fn output(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Two namespaces, removed on drop (also when the test fails).
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`, with a tokio
/// runtime of its own: sockets opened there belong to `ns`.
fn in_netns<F, T>(ns: &str, f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // setns(2) affects only this thread.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
}

fn discover(ns: &str) -> std::thread::JoinHandle<Option<Ipv6Addr>> {
    in_netns(ns, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        rt.block_on(async {
            let d = nd::Discovery::start("eth0").unwrap_or_else(|e| panic!("start: {e}"));
            let mut rx = d.peer();
            let found = tokio::time::timeout(Duration::from_secs(15), async {
                loop {
                    if let Some(p) = *rx.borrow_and_update() {
                        return p;
                    }
                    if rx.changed().await.is_err() {
                        panic!("discovery task ended");
                    }
                }
            })
            .await
            .ok();
            // Keep advertising a little longer so the other side, which
            // may have started later, hears us too.
            tokio::time::sleep(Duration::from_secs(2)).await;
            found
        })
    })
}

#[test]
fn two_discoveries_find_each_other_over_link_local_veth() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces)"
    );
    let id = std::process::id();
    let (a, b) = (format!("nd{id}a"), format!("nd{id}b"));
    let _guard = Netns(vec![a.clone(), b.clone()]);
    sh(&["ip", "netns", "add", &a]);
    sh(&["ip", "netns", "add", &b]);
    sh(&[
        "ip", "link", "add", "eth0", "netns", &a, "type", "veth", "peer", "name", "eth0", "netns",
        &b,
    ]);
    for (ns, ll) in [(&a, A_LL), (&b, B_LL)] {
        sh(&["ip", "-n", ns, "link", "set", "eth0", "addrgenmode", "none"]);
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ll}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
    }
    // B is a host (forwarding off, the kernel accepts RAs): A's RAs must
    // not give it a default route (router lifetime 0, RFC 4861 §6.2.1).
    sh(&[
        "ip",
        "netns",
        "exec",
        &b,
        "sysctl",
        "-qw",
        "net.ipv6.conf.eth0.accept_ra=2",
    ]);
    let ta = discover(&a);
    let tb = discover(&b);
    let got_a = ta.join().unwrap_or_else(|_| panic!("thread a panicked"));
    let got_b = tb.join().unwrap_or_else(|_| panic!("thread b panicked"));
    assert_eq!(got_a, Some(B_LL), "A should learn B's link-local address");
    assert_eq!(got_b, Some(A_LL), "B should learn A's link-local address");
    let default = output(&["ip", "-n", &b, "-6", "route", "show", "default"]);
    assert!(
        default.trim().is_empty(),
        "router lifetime 0 must not make a default route, got {default:?}"
    );
}

/// Waits up to 10 s for `rx` to hold `want`; says whether it did and
/// what it held last.
async fn wait_for(
    want: nd::Peers,
    rx: &mut tokio::sync::watch::Receiver<nd::Peers>,
) -> (bool, nd::Peers) {
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if *rx.borrow_and_update() == want {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    let seen = rx.borrow().clone();
    (r.is_ok() && seen == want, seen)
}

/// An [`nd::InterfaceWatch`] selecting `swp*` finds the peers on `swp1`
/// and `swp2`, ignores `eth9`, and forgets `swp2` once it is deleted.
#[test]
fn interface_watch_follows_matching_interfaces() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    let id = std::process::id();
    let names: Vec<String> = ["w", "b", "c", "d"]
        .iter()
        .map(|s| format!("ndw{id}{s}"))
        .collect();
    let _guard = Netns(names.clone());
    for n in &names {
        sh(&["ip", "netns", "add", n]);
    }
    let (w, peers) = (&names[0], &names[1..]);
    let lls = [
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xc),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xd),
    ];
    for ((peer, ifname), ll) in peers.iter().zip(["swp1", "swp2", "eth9"]).zip(lls) {
        sh(&[
            "ip", "link", "add", ifname, "netns", w, "type", "veth", "peer", "name", "eth0",
            "netns", peer,
        ]);
        for (ns, dev, addr) in [(w.as_str(), ifname, A_LL), (peer.as_str(), "eth0", ll)] {
            sh(&["ip", "-n", ns, "link", "set", dev, "addrgenmode", "none"]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
    }
    // The three peers advertise for 12 s.
    let advertisers: Vec<_> = peers
        .iter()
        .map(|p| {
            in_netns(p, || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("runtime: {e}"));
                rt.block_on(async {
                    let cfg = nd::NdConfig {
                        interval: Duration::from_secs(1),
                        ..nd::NdConfig::default()
                    };
                    let _d = nd::Discovery::start_with("eth0", cfg)
                        .unwrap_or_else(|e| panic!("start: {e}"));
                    tokio::time::sleep(Duration::from_secs(12)).await;
                })
            })
        })
        .collect();
    let w_name = w.clone();
    let watcher = in_netns(w, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        rt.block_on(async move {
            let watch =
                nd::InterfaceWatch::start(|n| n.starts_with("swp"), nd::NdConfig::default());
            let mut rx = watch.peers();
            let both: nd::Peers = [("swp1".to_string(), lls[0]), ("swp2".to_string(), lls[1])]
                .into_iter()
                .collect();
            let (ok, seen) = wait_for(both, &mut rx).await;
            assert!(ok, "want swp1 and swp2 peers, saw {seen:?}");
            sh(&["ip", "-n", &w_name, "link", "del", "swp2"]);
            let one: nd::Peers = [("swp1".to_string(), lls[0])].into_iter().collect();
            let (ok, seen) = wait_for(one, &mut rx).await;
            assert!(ok, "want only swp1 after swp2 is deleted, saw {seen:?}");
        })
    });
    watcher
        .join()
        .unwrap_or_else(|_| panic!("watcher failed (see above)"));
    for a in advertisers {
        let _ = a.join();
    }
}
