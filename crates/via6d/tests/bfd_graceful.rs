//! RFC 5882 §4.3.2 end to end: BIRD 2, whose BFD runs in its own process
//! and so shares fate with its control plane (it sends the C bit clear),
//! hangs (SIGSTOP: its TCP connection stays open, nothing answers). Its
//! BFD falls silent with it and via6d's BFD session goes Down within a
//! second. With the neighbour's default `bfd: true` that is a forwarding
//! failure: the route leaves the kernel at once. With `bfd: { graceful:
//! true }` it is taken as BIRD restarting: graceful restart was
//! negotiated, so the route stays, stale, until BIRD's restart time (5 s)
//! runs out. (A peer process that dies closes its TCP connection first,
//! and that is a restart under graceful restart either way.) Needs root,
//! iproute2 and BIRD 2; fails loudly without.

#[path = "../../bfd/tests/common/mod.rs"]
mod common;
mod daemons;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use daemons::{route, via6ctl, wait_until, Procs};

const PREFIX: &str = "198.51.100.0/24";
const RESTART_TIME: Duration = Duration::from_secs(5);

fn bird_conf() -> String {
    format!(
        "router id 192.0.2.2;\n\
         protocol device {{ scan time 2; }}\n\
         protocol static {{ ipv4; route {PREFIX} blackhole; }}\n\
         protocol bfd {{\n\
           interface \"vb\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};\n\
         }}\n\
         protocol bgp b1 {{\n\
           local as 65002;\n\
           neighbor {A_LL}%vb as 65001;\n\
           interface \"vb\";\n\
           hold time 90;\n\
           connect retry time 2;\n\
           bfd on;\n\
           graceful restart on;\n\
           graceful restart time {};\n\
           ipv4 {{ import all; export all; extended next hop on; }};\n\
         }}\n",
        RESTART_TIME.as_secs()
    )
}

fn via6_conf(sock: &Path, bfd: &str) -> String {
    format!(
        "router-id: 192.0.2.1\n\
         asn: 65001\n\
         neighbors:\n\
         \x20 - address: \"{B_LL}%va\"\n\
         \x20   remote-as: 65002\n\
         \x20   hold-time: 90\n\
         \x20   import: accept-all\n\
         \x20   bfd: {bfd}\n\
         fib:\n\
         \x20 enabled: true\n\
         \x20 source-address: 10.0.8.1\n\
         control-socket: {}\n",
        sock.display()
    )
}

/// Starts BIRD and via6d (`bfd` as the neighbour's key), waits for BIRD's
/// route in the kernel and BFD Up, stops BIRD, and returns how long the
/// route stayed in via6d's kernel after that (at most `watch`), and the
/// neighbour's last error.
fn hang_bird_and_watch(tag: &str, bfd: &str, watch: Duration) -> (Duration, String) {
    let (_guard, a, b) = two_hosts(tag);
    let mut procs = Procs::new(tag);
    let bird_sock = procs.start_bird(&b, &bird_conf());
    let sock = procs.start_via6d(&a, |s| via6_conf(s, bfd));
    wait_until(
        "BIRD's route in the kernel",
        Duration::from_secs(30),
        || route(&a, PREFIX).contains("via inet6 fe80::2 dev va"),
    );
    wait_until("BFD Up", Duration::from_secs(15), || {
        via6ctl(&sock, &["bfd"]).is_some_and(|v| v[0]["state"] == "Up")
    });
    let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
    let gr = &n[0]["negotiated"]["graceful_restart"];
    assert_eq!(
        gr["restart_time"],
        RESTART_TIME.as_secs(),
        "GR not negotiated: {n}"
    );

    sh(&["pkill", "-STOP", "-f", &bird_sock]);
    let stopped = Instant::now();
    wait_until("BFD Down after BIRD hung", Duration::from_secs(3), || {
        via6ctl(&sock, &["bfd"]).is_some_and(|v| v[0]["state"] == "Down")
    });
    let mut stayed = stopped.elapsed();
    while stopped.elapsed() < watch {
        if route(&a, PREFIX).trim().is_empty() {
            break;
        }
        stayed = stopped.elapsed();
        std::thread::sleep(Duration::from_millis(20));
    }
    let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
    let err = n[0]["last_error"].as_str().unwrap_or_default().to_string();
    drop(procs);
    (stayed, err)
}

#[test]
fn bfd_down_of_a_hung_peer_is_a_restart_only_with_graceful_on() {
    sh(&["bird", "--version"]);
    let (hard, err) = hang_bird_and_watch("v6bfdh", "true", Duration::from_secs(4));
    eprintln!("bfd: true: route gone {hard:?} after BIRD hung ({err})");
    assert!(hard <= Duration::from_millis(1500), "{hard:?}: {err}");
    assert!(err.contains("6/10") || err.contains("6/9"), "{err}");

    let (kept, err) = hang_bird_and_watch(
        "v6bfdg",
        "{ graceful: true }",
        RESTART_TIME + Duration::from_secs(4),
    );
    eprintln!("bfd: graceful: route gone {kept:?} after BIRD hung ({err})");
    assert!(err.contains("taken as the peer restarting"), "{err}");
    // Stale through the restart time, which starts at the BFD Down
    // (about 0.9 s after BIRD stopped), then gone.
    assert!(kept >= RESTART_TIME, "kept only {kept:?}");
    assert!(
        kept <= RESTART_TIME + Duration::from_secs(3),
        "kept {kept:?}"
    );
}
