//! Failure with the carrier up, measured: via6d and BIRD 2 over a veth with
//! link-local addresses only, BIRD announcing three IPv4 prefixes. nftables
//! in BIRD's namespace then drops everything on its link (the link stays
//! up, the peer just stops forwarding), and the time from the block to
//! the last of BIRD's routes leaving via6d's kernel is measured:
//!
//! - with BFD at 300 ms x 3: five blocks (block, measure, unblock, wait for
//!   BFD Up and the routes back); the median must be at most 1.0 s;
//! - without BFD, hold time 9 s: one block, which only the hold timer
//!   ends; it must take at least the hold time less one keepalive
//!   interval, so that the comparison is with a timer that really ran.
//!
//! Graceful restart is off in the hold-timer run: with it, a hold timer
//! expiry keeps the peer's routes as stale (RFC 4724, RFC 8538 §3), and
//! the routes would stay for the restart time instead.
//! Needs root, iproute2, nftables and BIRD 2; fails loudly without.

#[path = "../../bfd/tests/common/mod.rs"]
mod common;
mod daemons;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use daemons::{via6ctl, wait_until, Procs};

const PREFIXES: [&str; 3] = ["198.51.100.0/25", "198.51.100.128/25", "203.0.113.0/24"];
const ROUNDS: usize = 5;
/// Median of the BFD rounds, RFC 5880 detection 900 ms plus the reaction.
const BFD_LIMIT: Duration = Duration::from_millis(1000);
/// The hold-timer run: hold time and keepalive interval (a third).
const HOLD: u64 = 9;
const KEEPALIVE: u64 = HOLD / 3;

/// The two tests measure times: one at a time, so that neither loads the
/// machine under the other.
static SERIAL: Mutex<()> = Mutex::new(());

fn bird_conf(bfd: bool) -> String {
    let routes: String = PREFIXES
        .iter()
        .map(|p| format!("route {p} blackhole; "))
        .collect();
    let (bfd_proto, bfd_on) = if bfd {
        (
            format!(
                "protocol bfd {{\n\
                   interface \"vb\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};\n\
                   neighbor {A_LL} dev \"vb\";\n\
                 }}\n"
            ),
            "bfd on;",
        )
    } else {
        (String::new(), "")
    };
    format!(
        "router id 192.0.2.2;\n\
         protocol device {{ scan time 2; }}\n\
         protocol static {{ ipv4; {routes}}}\n\
         {bfd_proto}\
         protocol bgp b1 {{\n\
           local as 65002;\n\
           neighbor {A_LL}%vb as 65001;\n\
           interface \"vb\";\n\
           hold time {HOLD};\n\
           connect delay time 1;\n\
           connect retry time 1;\n\
           error wait time 1, 2;\n\
           {bfd_on}\n\
           ipv4 {{ import all; export all; extended next hop on; }};\n\
         }}\n"
    )
}

fn via6_conf(sock: &Path, bfd: bool) -> String {
    let extra = if bfd {
        "\x20   bfd: { min-tx: 300ms, min-rx: 300ms, multiplier: 3 }\n"
    } else {
        "\x20   graceful-restart: false\n"
    };
    format!(
        "router-id: 192.0.2.1\n\
         asn: 65001\n\
         listen: {{ address: \"::\", port: 179 }}\n\
         neighbors:\n\
         \x20 - address: \"{B_LL}%va\"\n\
         \x20   remote-as: 65002\n\
         \x20   hold-time: {HOLD}\n\
         \x20   connect-retry: 1\n\
         \x20   import: accept-all\n\
         {extra}\
         fib:\n\
         \x20 enabled: true\n\
         control-socket: {}\n",
        sock.display()
    )
}

/// BIRD's IPv4 routes in via6d's kernel (namespace `ns`).
fn bird_routes(ns: &str) -> usize {
    sh(&["ip", "-n", ns, "-4", "route", "show", "proto", "bgp"])
        .lines()
        .filter(|l| l.contains("via inet6 fe80::2 dev va"))
        .count()
}

/// `nft -f -` in `ns`: the whole script in one transaction.
fn nft(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("nft: {e} (is nftables installed?)"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .unwrap_or_else(|e| panic!("nft: {e}"));
    }
    let status = child.wait().unwrap_or_else(|e| panic!("nft: {e}"));
    assert!(status.success(), "nft failed on:\n{script}");
}

/// Everything in and out of `vb` dropped: the carrier stays up.
fn block(ns: &str) {
    nft(
        ns,
        "table inet bldblock {\n\
           chain in { type filter hook input priority -10; iifname \"vb\" drop; }\n\
           chain out { type filter hook output priority -10; oifname \"vb\" drop; }\n\
         }\n",
    );
}

fn unblock(ns: &str) {
    nft(ns, "delete table inet bldblock\n");
}

/// BIRD in `b` and via6d in `a`, BFD on or off; waits for BIRD's routes in
/// the kernel. Returns via6d's control socket.
fn start(procs: &mut Procs, a: &str, b: &str, bfd: bool) -> std::path::PathBuf {
    procs.start_bird(b, &bird_conf(bfd));
    let sock = procs.start_via6d(a, |s| via6_conf(s, bfd));
    wait_until(
        "BIRD's routes in the kernel",
        Duration::from_secs(30),
        || bird_routes(a) == PREFIXES.len(),
    );
    sock
}

/// Blocks BIRD's link and returns the time from just before the block to
/// the last of BIRD's routes leaving via6d's kernel.
fn block_and_measure(a: &str, b: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    block(b);
    while bird_routes(a) > 0 {
        assert!(
            t0.elapsed() < limit,
            "routes still in the kernel after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

#[test]
fn bfd_failover_median_of_five_blocks_is_within_a_second() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    sh(&["nft", "--version"]);
    sh(&["bird", "--version"]);
    let (_guard, a, b) = two_hosts("bldf");
    let mut procs = Procs::new("bld-fail");
    let sock = start(&mut procs, &a, &b, true);
    let bfd_ready = || {
        via6ctl(&sock, &["bfd"]).is_some_and(|v| {
            v[0]["state"] == "Up"
                && v[0]["remote_state"] == "Up"
                && v[0]["detection_time_ms"] == 900
        })
    };
    let mut times = Vec::new();
    for round in 1..=ROUNDS {
        wait_until(
            "BFD Up at 900 ms detection",
            Duration::from_secs(30),
            bfd_ready,
        );
        // Past the Poll sequence that brings BIRD to 300 ms, steady state.
        std::thread::sleep(Duration::from_secs(1));
        let took = block_and_measure(&a, &b, Duration::from_secs(10));
        eprintln!(
            "BFD 300 ms x 3, round {round}: routes out of the kernel {took:?} after the block"
        );
        times.push(took);
        let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
        let err = n[0]["last_error"].as_str().unwrap_or_default().to_string();
        assert!(err.contains("6/10"), "expected our Cease/10, got {err:?}");
        unblock(&b);
        wait_until("BIRD's routes back", Duration::from_secs(60), || {
            bird_routes(&a) == PREFIXES.len()
        });
    }
    let m = median(&times);
    eprintln!("BFD 300 ms x 3: {times:?}, median {m:?}");
    assert!(
        m <= BFD_LIMIT,
        "median {m:?} of {times:?} over {BFD_LIMIT:?}"
    );
    drop(procs);
}

#[test]
fn without_bfd_only_the_hold_timer_ends_the_session() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    sh(&["nft", "--version"]);
    sh(&["bird", "--version"]);
    let (_guard, a, b) = two_hosts("bldh");
    let mut procs = Procs::new("bld-hold");
    let sock = start(&mut procs, &a, &b, false);
    // A keepalive interval or so after Established, as in the BFD runs.
    std::thread::sleep(Duration::from_secs(KEEPALIVE));
    let took = block_and_measure(&a, &b, Duration::from_secs(HOLD + 5));
    eprintln!("no BFD, hold time {HOLD} s: routes out of the kernel {took:?} after the block");
    let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
    let err = n[0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("4/0"),
        "expected a hold timer expiry, got {err:?}"
    );
    // The last keepalive got through at most one interval before the block.
    let floor = Duration::from_secs(HOLD - KEEPALIVE) - Duration::from_millis(500);
    assert!(
        took >= floor && took <= Duration::from_secs(HOLD + 2),
        "{took:?} is not a {HOLD} s hold timer"
    );
    drop(procs);
}
