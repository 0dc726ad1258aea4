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
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on a valid namespace descriptor affects only
        // this thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
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
    // SAFETY: geteuid(2) cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
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
