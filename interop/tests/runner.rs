//! The lab runner itself: teardown leaves nothing behind, and a timed-out
//! wait carries the evidence of every host.

use std::process::Command;
use std::time::Duration;

use interop::{DaemonKind, Error, Lab};

fn namespaces() -> String {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for our purpose; /proc/PID/stat field 3 is the state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .is_some_and(|st| st != "Z")
        })
        .unwrap_or(false)
}

#[test]
fn drop_removes_namespaces_and_kills_daemons() {
    let lab = Lab::new("runner-teardown").unwrap_or_else(|e| panic!("{e}"));
    let a = lab.add_host("a").unwrap_or_else(|e| panic!("{e}"));
    let b = lab.add_host("b").unwrap_or_else(|e| panic!("{e}"));
    let link = lab
        .link(&a, "eth0", &b, "eth0")
        .unwrap_or_else(|e| panic!("{e}"));
    let addrs = lab
        .ip(&a, &["-6", "addr", "show", "dev", "eth0"])
        .unwrap_or_default();
    assert!(addrs.contains("fe80::1/64"), "{addrs}");
    assert!(
        !addrs.contains("fe80::1/64 scope link tentative"),
        "{addrs}"
    );
    assert_eq!(link.b.scoped(), "fe80::2%eth0");
    let d = lab
        .spawn_daemon(
            &a,
            "sleeper",
            DaemonKind::Other,
            lab.dir().join("none"),
            &["sleep", "600"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(alive(d.pid));
    // A stray process inside a namespace, not started as a daemon.
    let mut stray = lab
        .command(&b, &["sleep", "600"])
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let (ns_a, ns_b, dir) = (a.ns.clone(), b.ns.clone(), lab.dir().to_path_buf());
    assert!(namespaces().contains(&ns_a));
    drop(lab);
    let list = namespaces();
    assert!(!list.contains(&ns_a) && !list.contains(&ns_b), "{list}");
    assert!(!alive(d.pid), "daemon {} survived teardown", d.pid);
    assert!(!alive(stray.id()), "stray {} survived teardown", stray.id());
    let _ = stray.wait();
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn timeout_carries_evidence_of_every_host() {
    let lab = Lab::new("runner-evidence").unwrap_or_else(|e| panic!("{e}"));
    let a = lab.add_host("a").unwrap_or_else(|e| panic!("{e}"));
    lab.add_addr(&a, "lo", "10.255.9.1/32")
        .unwrap_or_else(|e| panic!("{e}"));
    let r = lab.wait_until(
        Duration::from_millis(300),
        "a route that never comes",
        || interop::check::kernel_route_has(&lab, &a, "10.9.9.0/24", &["via inet6"]),
    );
    match r {
        Err(Error::Timeout {
            what,
            last,
            evidence,
            ..
        }) => {
            assert_eq!(what, "a route that never comes");
            assert!(last.contains("10.9.9.0/24"), "{last}");
            assert!(
                evidence.contains(&format!("=== host a (netns {})", a.ns)),
                "{evidence}"
            );
            assert!(evidence.contains("10.255.9.1/32"), "{evidence}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}
