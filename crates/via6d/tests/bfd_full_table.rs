//! RFC 5880 timers under real load: one via6d loads the full IPv4 table
//! (901,899 prefixes of the shared data set) from `via6-feeder` over an
//! RFC 8950 link-local session while BIRD 2, on a second link, runs a BFD
//! session with it at 300 ms x 3 and a BGP session that follows it
//! (`bfd on`). Through the whole load the BFD session must stay Up on
//! both sides (via6d's uptime and its log, BIRD's `show bfd sessions`),
//! the BGP session to BIRD must stay Established on both sides, and the
//! whole table must reach via6d's kernel FIB.
//!
//!     feeder (bld..f) --BGP, full table--> via6d (bld..a) <--BGP + BFD--> BIRD (bld..b)
//!
//! Needs root, iproute2 and BIRD 2, and `prefixes.txt.gz` of the shared
//! data set (`$VIA6_DATA`, by default `../shared/data` beside the
//! workspace); fails loudly without.

#[path = "../../bfd/tests/common/mod.rs"]
mod common;
mod daemons;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use daemons::{bird_bfd_row, bird_protocol_row, route, via6ctl, wait_until, Procs};

/// IPv4 prefixes in `prefixes.txt.gz`.
const FULL_TABLE: u64 = 901_899;
const BIRD_PREFIX: &str = "198.51.100.0/24";
/// From the feeder's Established to the last route in the kernel; a debug
/// build on a busy 2-core machine takes about 30 s.
const LOAD_LIMIT: Duration = Duration::from_secs(90);

/// The real table, read in place: `$VIA6_DATA/prefixes.txt.gz`, else
/// `../shared/data` beside the workspace.
fn table() -> PathBuf {
    let dir = std::env::var_os("VIA6_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let path = dir.join("prefixes.txt.gz");
    assert!(
        path.is_file(),
        "{} missing: the full table is read in place from the shared data set (set VIA6_DATA)",
        path.display()
    );
    path
}

/// `via6-feeder` of the same build as the via6d under test, built first
/// so that it is never older than its source (`$VIA6_FEEDER_BIN` wins).
fn feeder_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VIA6_FEEDER_BIN") {
        return PathBuf::from(p);
    }
    let dir = Path::new(env!("CARGO_BIN_EXE_via6d"))
        .parent()
        .unwrap_or_else(|| panic!("via6d has no directory"));
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ok = Command::new(env!("CARGO"))
        .args(["build", "-p", "feeder", "--bin", "via6-feeder", "--profile"])
        .arg(&profile)
        .current_dir(&workspace)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build via6-feeder: {e}"));
    assert!(ok.success(), "building via6-feeder failed");
    let bin = dir.join("via6-feeder");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    bin
}

fn bird_conf() -> String {
    format!(
        "router id 192.0.2.3;\n\
         timeformat protocol iso long;\n\
         protocol device {{ scan time 2; }}\n\
         protocol static {{ ipv4; route {BIRD_PREFIX} blackhole; }}\n\
         protocol bfd {{\n\
           interface \"vb\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};\n\
           neighbor {A_LL} dev \"vb\";\n\
         }}\n\
         protocol bgp b1 {{\n\
           local as 65003;\n\
           neighbor {A_LL}%vb as 65002;\n\
           interface \"vb\";\n\
           connect retry time 2;\n\
           bfd on;\n\
           ipv4 {{ import all; export all; extended next hop on; }};\n\
         }}\n"
    )
}

fn via6_conf(sock: &Path) -> String {
    format!(
        "router-id: 192.0.2.2\n\
         asn: 65002\n\
         listen: {{ address: \"::\", port: 179 }}\n\
         neighbors:\n\
         \x20 - address: \"fe80::f%af\"\n\
         \x20   remote-as: 65001\n\
         \x20   passive: true\n\
         \x20   import: accept-all\n\
         \x20   export: deny-all\n\
         \x20 - address: \"{B_LL}%va\"\n\
         \x20   remote-as: 65003\n\
         \x20   import: accept-all\n\
         \x20   bfd: {{ min-tx: 300ms, min-rx: 300ms, multiplier: 3 }}\n\
         fib:\n\
         \x20 enabled: true\n\
         control-socket: {}\n",
        sock.display()
    )
}

/// A third namespace `<a minus its last letter>f` for the feeder, joined
/// to `a` by `fa` (fe80::f) - `af` (fe80::a). `af` stays down until
/// [`open_feeder_link`]: the feeder encodes the table meanwhile and keeps
/// trying to connect.
fn feeder_host(a: &str) -> (Netns, String) {
    let f = format!("{}f", &a[..a.len() - 1]);
    let guard = Netns(vec![f.clone()]);
    sh(&["ip", "netns", "add", &f]);
    sh(&[
        "ip", "link", "add", "fa", "netns", &f, "type", "veth", "peer", "name", "af", "netns", a,
    ]);
    for (ns, dev, ll) in [(f.as_str(), "fa", "fe80::f"), (a, "af", "fe80::a")] {
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", ns, "link", "set", dev, "addrgenmode", "none"]);
        let addr = format!("{ll}/64");
        sh(&["ip", "-n", ns, "addr", "add", &addr, "dev", dev, "nodad"]);
    }
    sh(&["ip", "-n", &f, "link", "set", "fa", "up"]);
    (guard, f)
}

fn open_feeder_link(a: &str) {
    sh(&["ip", "-n", a, "link", "set", "af", "up"]);
}

/// Prefixes in the main FIB of namespace `ns`, as the kernel counts them
/// (`/proc/net/fib_triestat`; cheaper than listing 900,000 routes).
fn fib_count(ns: &str) -> u64 {
    let stat = sh(&["ip", "netns", "exec", ns, "cat", "/proc/net/fib_triestat"]);
    stat.lines()
        .skip_while(|l| !l.starts_with("Main:"))
        .find_map(|l| l.trim().strip_prefix("Prefixes:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Main: Prefixes: in\n{stat}"))
}

/// A field of the feeder's first `event` line, if it has written it.
fn feeder_event(out: &Path, event: &str, field: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(out).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == event)
        .map(|v| v[field].clone())
}

/// Starts the feeder in `f` with the full table; its JSON events go to
/// the returned file.
fn start_feeder(procs: &mut Procs, f: &str) -> PathBuf {
    let (feeder, table) = (feeder_bin(), table());
    let out_path = procs.dir.join("feeder.jsonl");
    let out = std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
    let (fb, tb) = (feeder.to_string_lossy(), table.to_string_lossy());
    let args = [
        &*fb,
        "--connect",
        "fe80::a%fa",
        "--prefixes",
        &*tb,
        "--local-as",
        "65001",
        "--remote-as",
        "65002",
        "--connect-timeout",
        "120",
    ];
    procs.spawn_to(f, &args, "feeder.log", out);
    out_path
}

/// BIRD in `b` (BFD and BGP with via6d); returns its control socket.
fn start_bird(procs: &mut Procs, b: &str) -> String {
    procs.start_bird(b, &bird_conf())
}

/// via6d's view of the session with BIRD: BFD uptime and BGP uptime in
/// seconds, both `None` unless Up and Established.
fn via6_view(sock: &Path) -> (Option<u64>, Option<u64>) {
    let bfd = via6ctl(sock, &["bfd"]).unwrap_or_default();
    let bfd_up = (bfd[0]["state"] == "Up" && bfd[0]["remote_state"] == "Up")
        .then(|| bfd[0]["uptime"].as_u64())
        .flatten();
    let n = via6ctl(sock, &["neighbors"]).unwrap_or_default();
    let bird = n
        .as_array()
        .and_then(|a| a.iter().find(|x| x["remote_as"] == 65003))
        .cloned()
        .unwrap_or_default();
    let bgp_up = (bird["state"] == "Established")
        .then(|| bird["uptime"].as_u64())
        .flatten();
    (bfd_up, bgp_up)
}

/// Panics at once if either side's BFD session left Up since `seen_up`:
/// via6d's state and uptime (answered by the BFD thread, so asking does
/// not slow the load), BIRD's row (state and since) unchanged.
fn bfd_still_up(sock: &Path, bird_sock: &str, bird_row: &str, seen_up: Instant) {
    let since = seen_up.elapsed().as_secs();
    let bfd = via6ctl(sock, &["bfd"]).unwrap_or_default();
    let up = bfd[0]["state"] == "Up" && bfd[0]["uptime"].as_u64().is_some_and(|u| u >= since);
    assert!(
        up,
        "via6d's BFD session left Up ({since} s after Up was seen): {bfd}"
    );
    let bird = bird_bfd_row(bird_sock, "fe80::1");
    assert_eq!(bird, bird_row, "BIRD's BFD session changed");
}

#[test]
fn bfd_stays_up_while_a_full_table_loads() {
    sh(&["bird", "--version"]);
    let (_guard, a, b) = two_hosts("bld");
    let (_fguard, f) = feeder_host(&a);
    let mut procs = Procs::new("bld-load");
    let bird_sock = start_bird(&mut procs, &b);
    let sock = procs.start_via6d(&a, via6_conf);
    let feeder_out = start_feeder(&mut procs, &f);

    // Before the load: BFD Up at 300 ms x 3, BGP with BIRD Established,
    // BIRD's route in the kernel.
    wait_until(
        "BIRD's route in the kernel",
        Duration::from_secs(30),
        || route(&a, BIRD_PREFIX).contains("via inet6 fe80::2 dev va"),
    );
    wait_until(
        "BFD Up at 900 ms detection",
        Duration::from_secs(15),
        || {
            via6ctl(&sock, &["bfd"])
                .is_some_and(|v| v[0]["state"] == "Up" && v[0]["detection_time_ms"] == 900)
        },
    );
    let seen_up = Instant::now();
    let (bfd0, bgp0) = via6_view(&sock);
    assert!(bfd0.is_some() && bgp0.is_some(), "{bfd0:?} {bgp0:?}");
    let bird_bfd = bird_bfd_row(&bird_sock, "fe80::1");
    let bird_bgp = bird_protocol_row(&bird_sock, "b1");
    assert!(bird_bfd.contains(" Up "), "BIRD's BFD: {bird_bfd:?}");
    assert!(bird_bgp.contains("Established"), "BIRD's BGP: {bird_bgp:?}");
    let base = fib_count(&a);
    assert!(
        feeder_event(&feeder_out, "established", "t").is_none(),
        "the feeder connected before its link was up"
    );

    // The load, watched on both sides every half second.
    open_feeder_link(&a);
    wait_until("the feeder Established", LOAD_LIMIT, || {
        feeder_event(&feeder_out, "established", "t").is_some()
    });
    let established = Instant::now();
    let sent = feeder_event(&feeder_out, "encoded", "prefixes").and_then(|v| v.as_u64());
    assert_eq!(sent, Some(FULL_TABLE), "the feeder's table");
    let want = base + FULL_TABLE;
    let mut count = 0;
    let loaded = wait_until("the full table in the kernel FIB", LOAD_LIMIT, || {
        count = fib_count(&a);
        bfd_still_up(&sock, &bird_sock, &bird_bfd, seen_up);
        std::thread::sleep(Duration::from_millis(500));
        count >= want
    });
    eprintln!(
        "{FULL_TABLE} prefixes: kernel FIB full {loaded:?} after the feeder's Established \
         ({:?} after BFD was seen Up)",
        established.duration_since(seen_up) + loaded
    );
    assert_eq!(count, want, "kernel FIB prefixes (baseline {base})");
    // A little past the load, then both sides' view of the whole time.
    std::thread::sleep(Duration::from_secs(2));
    after_the_load(&sock, &bird_sock, (&bird_bfd, &bird_bgp), seen_up, &procs);
    assert!(route(&a, BIRD_PREFIX).contains("via inet6 fe80::2 dev va"));
    drop(procs);
}

/// Both sessions with BIRD were Up (BFD) and Established (BGP) on both
/// sides for the whole time since `seen_up`, and via6d logged no BFD Down.
fn after_the_load(
    sock: &Path,
    bird_sock: &str,
    (bird_bfd, bird_bgp): (&str, &str),
    seen_up: Instant,
    procs: &Procs,
) {
    let since = seen_up.elapsed().as_secs();
    let (bfd1, bgp1) = via6_view(sock);
    eprintln!(
        "after the load: via6d BFD uptime {bfd1:?} s, BGP uptime {bgp1:?} s, \
         {since} s since BFD was seen Up"
    );
    assert!(
        bfd1.is_some_and(|u| u >= since),
        "via6d's BFD session left Up during the load: uptime {bfd1:?} s, Up seen {since} s ago"
    );
    assert!(
        bgp1.is_some_and(|u| u >= since),
        "the BGP session to BIRD was not Established throughout: uptime {bgp1:?} s after {since} s"
    );
    let log = std::fs::read_to_string(procs.dir.join("via6d.log")).unwrap_or_default();
    let downs: Vec<&str> = log.lines().filter(|l| l.contains("Up -> Down")).collect();
    assert!(downs.is_empty(), "via6d's BFD went Down: {downs:?}");
    assert_eq!(
        bird_bfd_row(bird_sock, "fe80::1"),
        bird_bfd,
        "BIRD's BFD session changed during the load"
    );
    assert_eq!(
        bird_protocol_row(bird_sock, "b1"),
        bird_bgp,
        "BIRD's BGP session changed during the load"
    );
}
