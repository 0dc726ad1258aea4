//! BFD with FRR (zebra, bgpd, bfdd) over a veth with link-local
//! addresses only, in both peering shapes:
//! - by interface (unnumbered): via6d `interface: va`, FRR `neighbor vb
//!   interface`; via6d learns FRR's address by neighbour discovery;
//! - by address: via6d `address: fe80::2%va`, FRR `neighbor fe80::1
//!   interface vb` with the extended next hop capability.
//!
//! FRR's bfdd has a BFD peer `fe80::1 interface vb`. via6d starts a BFD
//! session, installs FRR's route `via inet6 fe80::2`; when FRR's BFD
//! packets are dropped (nftables; BGP and the link stay up) via6d closes
//! the BGP session with Cease/10 and the route leaves the kernel within
//! about a second.
//!
//! FRR's bgpd is not told to follow BFD (no `neighbor ... bfd`): had it
//! been, FRR's bgpd would see our Down and send its own Cease/10, and the
//! first NOTIFICATION to arrive would end the session, so the test could
//! not tell whether via6d reacted. Here only via6d can end it.
//! Needs root, iproute2, nftables and FRR; fails loudly without.

#[path = "../../bfd/tests/common/mod.rs"]
mod common;
mod daemons;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use daemons::{route, via6ctl, wait_until, Peering, Procs};

const PREFIX: &str = "198.51.100.0/24";
const FRR_LIB: &str = "/usr/lib/frr";

impl Procs {
    fn vtysh(&self, daemon: &str, cmd: &str) -> Option<String> {
        vtysh(&self.dir, daemon, cmd)
    }

    /// zebra, bfdd and bgpd in `ns`, one config file for all three.
    fn start_frr(&mut self, ns: &str, peering: Peering) {
        for bin in ["zebra", "bfdd", "bgpd"] {
            let p = format!("{FRR_LIB}/{bin}");
            assert!(Path::new(&p).exists(), "{p} missing: install FRR");
        }
        assert!(
            Path::new("/usr/bin/vtysh").exists(),
            "vtysh missing: install FRR"
        );
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        let conf = self.dir.join("frr.conf");
        std::fs::write(&conf, frr_conf(peering)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        let d = self.dir.to_string_lossy().into_owned();
        let conf = conf.to_string_lossy().into_owned();
        for daemon in ["zebra", "bfdd", "bgpd"] {
            let bin = format!("{FRR_LIB}/{daemon}");
            let (zs, pid) = (format!("{d}/zserv.api"), format!("{d}/{daemon}.pid"));
            let args = [
                bin.as_str(),
                "-u",
                "frr",
                "-g",
                "frr",
                "-P",
                "0",
                "-z",
                &zs,
                "--vty_socket",
                &d,
                "-i",
                &pid,
                "-f",
                &conf,
            ];
            self.spawn(ns, &args, &format!("{daemon}.log"));
            let t = Instant::now();
            while self.vtysh(daemon, "show version").is_none() {
                assert!(
                    t.elapsed() < Duration::from_secs(15),
                    "FRR {daemon} did not start"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn frr_conf(peering: Peering) -> String {
    let (neighbor, key) = match peering {
        Peering::Interface => (
            "\x20neighbor vb interface remote-as external\n".to_string(),
            "vb",
        ),
        Peering::Address => (
            format!(
                "\x20neighbor {A_LL} remote-as external\n\
                 \x20neighbor {A_LL} interface vb\n\
                 \x20neighbor {A_LL} capability extended-nexthop\n"
            ),
            "fe80::1",
        ),
    };
    format!(
        "frr defaults datacenter\n\
         interface vb\n ipv6 nd ra-interval 1\n no ipv6 nd suppress-ra\n!\n\
         bfd\n peer fe80::1 interface vb\n !\n!\n\
         router bgp 65002\n\
         \x20bgp router-id 192.0.2.2\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20no bgp network import-check\n\
         {neighbor}\
         \x20neighbor {key} timers connect 2\n\
         \x20address-family ipv4 unicast\n\
         \x20 network {PREFIX}\n\
         \x20 neighbor {key} activate\n\
         \x20exit-address-family\n!\n"
    )
}

fn via6_conf(sock: &Path, peering: Peering) -> String {
    let neighbor = peering.via6_neighbor();
    let remote_as = match peering {
        Peering::Interface => "external",
        Peering::Address => "65002",
    };
    format!(
        "router-id: 192.0.2.1\n\
         asn: 65001\n\
         listen: {{ address: \"::\", port: 179 }}\n\
         neighbors:\n\
         \x20 - {neighbor}\n\
         \x20   remote-as: {remote_as}\n\
         \x20   import: accept-all\n\
         \x20   bfd: true\n\
         fib:\n\
         \x20 enabled: true\n\
         \x20 source-address: 10.0.8.1\n\
         control-socket: {}\n",
        sock.display()
    )
}

#[test]
fn interface_neighbour_gets_bfd_and_cease_10_on_failure() {
    bfd_down_with(Peering::Interface, "v6bfdu");
}

#[test]
fn address_neighbour_gets_bfd_and_cease_10_on_failure() {
    bfd_down_with(Peering::Address, "v6bfdf");
}

fn bfd_down_with(peering: Peering, tag: &str) {
    sh(&["nft", "--version"]);
    let (_guard, a, b) = two_hosts(tag);
    let mut procs = Procs::new(tag);
    procs.start_frr(&b, peering);
    let sock = procs.start_via6d(&a, |sock| via6_conf(sock, peering));

    let up = wait_until("FRR's route in the kernel", Duration::from_secs(60), || {
        route(&a, PREFIX).contains("via inet6 fe80::2 dev va")
    });
    let bfd_up = wait_until(
        "BFD Up to the discovered peer",
        Duration::from_secs(15),
        || {
            via6ctl(&sock, &["bfd"]).is_some_and(|v| {
                v[0]["peer"] == "fe80::2" && v[0]["interface"] == "va" && v[0]["state"] == "Up"
            })
        },
    );
    eprintln!("route after {up:?}, BFD Up {bfd_up:?} later");
    // FRR's bfdd runs its side of the session: it is Up there too.
    let frr = procs
        .vtysh("bfdd", "show bfd peers brief")
        .unwrap_or_default();
    assert!(frr.contains("fe80::1") && frr.contains("up"), "{frr}");

    silence_bfd(&b);
    let gone = wait_until("route out of the kernel", Duration::from_secs(10), || {
        route(&a, PREFIX).trim().is_empty()
    });
    let n = via6ctl(&sock, &["neighbors"]).unwrap_or_default();
    let err = n[0]["last_error"].as_str().unwrap_or_default().to_string();
    eprintln!("FRR's BFD silent: route out of the kernel after {gone:?}; last error {err:?}");
    assert!(gone <= Duration::from_millis(1500), "{gone:?}");
    // Our Cease/10, inside a Hard Reset since FRR set N (RFC 8538): the
    // neighbour's last error and the log both say we sent it.
    let log = std::fs::read_to_string(procs.dir.join("via6d.log")).unwrap_or_default();
    let ours = log.lines().any(|l| {
        l.contains("session down") && l.contains("sent NOTIFICATION") && l.contains("6/10")
    });
    assert!(
        ours && err.starts_with("sent NOTIFICATION") && err.contains("6/10"),
        "expected our Cease/10 (last error {err:?}) in:\n{log}"
    );
    drop(procs);
}
