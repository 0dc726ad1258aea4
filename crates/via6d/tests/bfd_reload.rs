//! New BFD timers by a reload, negotiated with BIRD 2 by a Poll sequence
//! (RFC 5880 §6.8.3) while the session stays Up: via6d peers BIRD over a
//! link-local veth with `bfd: true` (300 ms x 3), then the config changes
//! to `{ min-tx: 100ms, min-rx: 100ms, multiplier: 5 }` and via6d gets
//! SIGHUP. BIRD's detection time for us must become 5 x 300 ms (its own
//! 300 ms receive interval is the slower side) without either end's BFD
//! session, or the BGP session, going down. The BFD packets also leave
//! from the BGP session's own address. Needs root, iproute2 and BIRD 2;
//! fails loudly without.

#[path = "../../bfd/tests/common/mod.rs"]
mod common;
mod daemons;

use std::path::Path;
use std::time::Duration;

use common::*;
use daemons::{via6ctl, wait_until, Procs};

fn bird_conf() -> String {
    format!(
        "router id 192.0.2.2;\n\
         protocol device {{ scan time 2; }}\n\
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
           ipv4 {{ import all; export none; extended next hop on; }};\n\
         }}\n"
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
         \x20   bfd: {bfd}\n\
         control-socket: {}\n",
        sock.display()
    )
}

/// BIRD's row for us in `show bfd sessions`: state, since, interval and
/// timeout, as BIRD prints them.
fn bird_row(sock: &str) -> Option<Vec<String>> {
    let out = std::process::Command::new("birdc")
        .args(["-s", sock, "show", "bfd", "sessions"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with(&A_LL.to_string()))?
        .to_string();
    let f: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    // address, interface, state, since (one field), interval, timeout.
    (f.len() == 6).then(|| f[2..].to_vec())
}

#[test]
fn new_bfd_timers_on_reload_are_negotiated_without_a_flap() {
    sh(&["bird", "--version"]);
    let (_guard, a, b) = two_hosts("v6bfdr");
    let mut procs = Procs::new("bfdreload");
    let dir = procs.dir.clone();
    let bird_sock = procs.start_bird(&b, &bird_conf());
    let sock = procs.start_via6d(&a, |s| via6_conf(s, "true"));

    wait_until("BGP Established", Duration::from_secs(30), || {
        via6ctl(&sock, &["neighbors"]).is_some_and(|v| v[0]["state"] == "Established")
    });
    wait_until(
        "BFD Up at 300 ms x 3 on both ends",
        Duration::from_secs(15),
        || {
            let ours = via6ctl(&sock, &["bfd"])
                .is_some_and(|v| v[0]["state"] == "Up" && v[0]["detection_time_ms"] == 900);
            let bird = bird_row(&bird_sock).is_some_and(|r| r[0] == "Up" && r[3] == "0.900");
            ours && bird
        },
    );
    // A BFD session may start before its BGP session knows its local
    // address; the once-a-second reconcile then gives it that source.
    wait_until(
        "BFD source = the BGP session's local address",
        Duration::from_secs(5),
        || via6ctl(&sock, &["bfd"]).is_some_and(|v| !v[0]["source_address"].is_null()),
    );
    let ours = via6ctl(&sock, &["bfd"]).unwrap_or_default();
    assert_eq!(ours[0]["source_address"], A_LL.to_string(), "{ours}");
    let before = bird_row(&bird_sock).unwrap_or_default();
    let uptime_before = ours[0]["uptime"].as_u64().unwrap_or_default();

    let conf = dir.join("via6d.yaml");
    let faster = "{ min-tx: 100ms, min-rx: 100ms, multiplier: 5 }";
    std::fs::write(&conf, via6_conf(&sock, faster)).unwrap_or_else(|e| panic!("{e}"));
    sh(&["pkill", "-HUP", "-f", &conf.to_string_lossy()]);
    let took = wait_until(
        "BIRD's detection time for us at 5 x 300 ms",
        Duration::from_secs(10),
        || bird_row(&bird_sock).is_some_and(|r| r[3] == "1.500"),
    );
    eprintln!("new timers in force at BIRD {took:?} after SIGHUP");
    let after = bird_row(&bird_sock).unwrap_or_default();
    assert_eq!(after[0], "Up", "{after:?}");
    assert_eq!(
        after[1], before[1],
        "BIRD's session restarted: {before:?} -> {after:?}"
    );
    let ours = via6ctl(&sock, &["bfd"]).unwrap_or_default();
    assert_eq!(ours[0]["state"], "Up", "{ours}");
    assert_eq!(ours[0]["min_tx_ms"], 100, "{ours}");
    assert_eq!(ours[0]["multiplier"], 5, "{ours}");
    let uptime_after = ours[0]["uptime"].as_u64().unwrap_or_default();
    assert!(
        uptime_after >= uptime_before,
        "our session restarted: {ours}"
    );
    let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
    assert_eq!(n[0]["state"], "Established", "{n}");
    assert!(n[0]["last_error"].is_null(), "BGP went down: {n}");
    drop(procs);
}
