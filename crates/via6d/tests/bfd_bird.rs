//! RFC 5882 end to end: via6d and BIRD 2 peer over a veth with link-local
//! addresses only, BGP with `bfd: true` on our side; BIRD runs BFD with a
//! static `neighbor` and its BGP does not follow it (no `bfd on`), so that
//! BIRD's own reaction to our Down cannot end the session for us: only
//! via6d's can. BIRD's route reaches the kernel as `via inet6 fe80::2`; then
//! BIRD's BFD packets (only those: BGP keeps flowing, the link stays up)
//! are dropped with nftables, and via6d must close the BGP session with
//! Cease/10 and take the route out of the kernel within about a second
//! instead of at the 90 s hold timer. Run twice: with via6d peering BIRD
//! by its address (`fe80::2%va`), and by interface (`interface: va`,
//! BIRD's address learnt by neighbour discovery from its Router
//! Advertisements, `protocol radv`). Needs root, iproute2, nftables and
//! BIRD 2; fails loudly without.

#[path = "../../bfd/tests/common/mod.rs"]
mod common;
mod daemons;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use daemons::{route, via6ctl, wait_until, Peering, Procs};

const PREFIX: &str = "198.51.100.0/24";

fn bird_conf() -> String {
    format!(
        "router id 192.0.2.2;\n\
         protocol device {{ scan time 2; }}\n\
         protocol radv {{ interface \"vb\" {{ min ra interval 3; max ra interval 4; default lifetime 0; }}; }}\n\
         protocol static {{ ipv4; route {PREFIX} blackhole; }}\n\
         protocol bfd {{\n\
           interface \"vb\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};\n\
           neighbor {A_LL} dev \"vb\";\n\
         }}\n\
         protocol bgp b1 {{\n\
           local as 65002;\n\
           neighbor {A_LL}%vb as 65001;\n\
           interface \"vb\";\n\
           hold time 90;\n\
           connect retry time 2;\n\
           ipv4 {{ import all; export all; extended next hop on; }};\n\
         }}\n"
    )
}

fn via6_conf(sock: &Path, peering: Peering) -> String {
    let neighbor = peering.via6_neighbor();
    format!(
        "router-id: 192.0.2.1\n\
         asn: 65001\n\
         listen: {{ address: \"::\", port: 179 }}\n\
         neighbors:\n\
         \x20 - {neighbor}\n\
         \x20   remote-as: 65002\n\
         \x20   hold-time: 90\n\
         \x20   import: accept-all\n\
         \x20   bfd: true\n\
         fib:\n\
         \x20 enabled: true\n\
         \x20 source-address: 10.0.8.1\n\
         control-socket: {}\n\
         metrics: {{ listen: \"127.0.0.1:9179\" }}\n",
        sock.display()
    )
}

#[test]
fn bfd_down_takes_the_bgp_session_and_its_routes_down_within_a_second() {
    bfd_down_with(Peering::Address, "v6bfd");
}

#[test]
fn on_interface_peering_too() {
    bfd_down_with(Peering::Interface, "v6bfdi");
}

fn bfd_down_with(peering: Peering, tag: &str) {
    sh(&["nft", "--version"]);
    sh(&["bird", "--version"]);
    let (_guard, a, b) = two_hosts(tag);
    let mut procs = Procs::new(tag);
    procs.start_bird(&b, &bird_conf());
    let sock = procs.start_via6d(&a, |sock| via6_conf(sock, peering));

    let up = wait_until(
        "route via BIRD in the kernel",
        Duration::from_secs(30),
        || route(&a, PREFIX).contains("via inet6 fe80::2 dev va"),
    );
    let bfd_up = wait_until("BFD Up in via6ctl bfd", Duration::from_secs(10), || {
        via6ctl(&sock, &["bfd"]).is_some_and(|v| {
            v[0]["peer"] == B_LL.to_string()
                && v[0]["state"] == "Up"
                && v[0]["detection_time_ms"] == 900
        })
    });
    eprintln!("route after {up:?}, BFD Up at 900 ms detection {bfd_up:?} later");
    let bfd = via6ctl(&sock, &["bfd"]).unwrap_or_default();
    assert_eq!(bfd[0]["interface"], "va", "{bfd}");
    assert_eq!(bfd[0]["remote_state"], "Up", "{bfd}");
    // The human table and the metrics say the same.
    let table = Command::new(env!("CARGO_BIN_EXE_via6ctl"))
        .arg("--socket")
        .arg(&sock)
        .arg("bfd")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(..7),
        Some(&["fe80::2%va", "Up", "Up", "none", "300/300", "3", "900"][..]),
        "{table}"
    );
    let metrics = sh(&[
        "ip",
        "netns",
        "exec",
        &a,
        "curl",
        "-s",
        "http://127.0.0.1:9179/metrics",
    ]);
    let up = "via6_bfd_session_up{peer=\"fe80::2\",interface=\"va\"} 1";
    assert!(metrics.contains(up), "{up} missing in:\n{metrics}");

    // Only BIRD's BFD packets stop; BGP keepalives still flow.
    silence_bfd(&b);
    let gone = wait_until("route out of the kernel", Duration::from_secs(10), || {
        route(&a, PREFIX).trim().is_empty()
    });
    eprintln!("BIRD's BFD silent: route out of the kernel after {gone:?}");
    assert!(gone <= Duration::from_millis(1500), "{gone:?}");
    let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
    let err = n[0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.starts_with("sent NOTIFICATION") && err.contains("6/10"),
        "expected our Cease/10, got {err:?} in {n}"
    );
    drop(procs);
}
