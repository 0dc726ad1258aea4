//! Link-local-only sessions between BIRD 2.0.12 and via6d (scenarios 1,
//! 2, 8 and 9 of the interop matrix): RFC 8950 extended next hop both
//! ways, `[::, LL]` next hops, `via inet6 fe80::... dev eth0` in both
//! kernels.

use interop::check::{
    bird_route_has, kernel_route_has, via6_extended_next_hop, via6_fib_count, via6_has,
};
use interop::topo::{self, default_bird, default_via6, GW_LL1, NH_LL1, PEER, T};
use interop::{scenario, Error};

/// Scenario 1: BIRD announces IPv4 over a link-local session; via6 gets
/// `[::, fe80::1]` and installs `via inet6 fe80::1 dev eth0`.
#[test]
fn s01_bird_announces_ipv4_via6_installs_via_inet6() {
    scenario("s01-bird-announces", |lab| {
        let p = topo::pair(lab, &default_bird(), &default_via6())?;
        let addr = p.bird_addr();
        // Capability 5 on both sides (RFC 8950 §3): BIRD saw via6 offer
        // it, via6 negotiated it for IPv4 unicast.
        let caps = p.bird.neighbor_capabilities(PEER)?;
        if !(caps.contains("Extended next hop") && caps.contains("IPv6 nexthop: ipv4")) {
            return Err(Error::Check(format!(
                "via6 did not offer extended next hop; BIRD saw:\n{caps}"
            )));
        }
        lab.wait_until(
            T,
            "via6 negotiated extended next hop for ipv4-unicast",
            || via6_extended_next_hop(&p.via6, &addr),
        )?;
        // via6's RIB: next hop `[::, fe80::1]`, gateway fe80::1.
        lab.wait_until(
            T,
            "via6 RIB: 10.1.0.0/24 with link-local next hop fe80::1",
            // `[::, LL]`: no global half (never `::`), link-local fe80::1.
            || {
                via6_has(
                    &p.via6,
                    "routes",
                    topo::BIRD_V4,
                    &["\"next_hop\":null", NH_LL1, GW_LL1],
                )
            },
        )?;
        lab.wait_until(
            T,
            "via6 kernel: 10.1.0.0/24 via inet6 fe80::1 dev eth0 proto bgp",
            || {
                kernel_route_has(
                    lab,
                    &p.via6_host,
                    topo::BIRD_V4,
                    &["via inet6 fe80::1 dev eth0", "proto bgp"],
                )
            },
        )?;
        // BIRD's two prefixes (IPv4 and IPv6) and nothing else.
        lab.wait_until(T, "via6ctl fib: 2 routes installed, none failed", || {
            via6_fib_count(&p.via6, 2)
        })?;
        // BIRD's own view: it sent the route to via6.
        let ch = p.bird.channel(PEER, "ipv4")?;
        if !ch.contains("BGP Next hop:   :: fe80::1") {
            return Err(Error::Check(format!(
                "BIRD does not send [::, fe80::1]:\n{ch}"
            )));
        }
        Ok(())
    });
}

/// Scenario 2: via6 announces IPv4; BIRD shows extended next hop, a
/// route `via fe80::2 on eth0` with `[::, fe80::2]`, and its kernel
/// protocol installs `via inet6`.
#[test]
fn s02_via6_announces_ipv4_bird_installs_via_inet6() {
    scenario("s02-via6-announces", |lab| {
        let p = topo::pair(lab, &default_bird(), &default_via6())?;
        let local = p.bird.local_capabilities(PEER)?;
        let caps = p.bird.neighbor_capabilities(PEER)?;
        for (who, c) in [("BIRD", &local), ("via6", &caps)] {
            if !(c.contains("Extended next hop") && c.contains("IPv6 nexthop: ipv4")) {
                return Err(Error::Check(format!(
                    "{who} did not offer extended next hop:\n{c}"
                )));
            }
        }
        lab.wait_until(
            T,
            "BIRD: 198.51.100.0/24 via fe80::2 on eth0, next hop [::, fe80::2]",
            || {
                bird_route_has(
                    &p.bird,
                    topo::VIA6_V4,
                    &[
                        "via fe80::2 on eth0",
                        "BGP.next_hop: :: fe80::2",
                        "BGP.as_path: 65002",
                    ],
                )
            },
        )?;
        lab.wait_until(
            T,
            "BIRD's kernel: 198.51.100.0/24 via inet6 fe80::2 dev eth0 proto bird",
            || {
                kernel_route_has(
                    lab,
                    &p.bird_host,
                    topo::VIA6_V4,
                    &["via inet6 fe80::2 dev eth0", "proto bird"],
                )
            },
        )?;
        lab.wait_until(T, "via6 RIB shows its own 198.51.100.0/24", || {
            via6_has(&p.via6, "routes", topo::VIA6_V4, &[])
        })?;
        Ok(())
    });
}

/// Scenario 9: IPv4 and IPv6 unicast on one link-local session at once,
/// both directions.
#[test]
fn s09_ipv4_and_ipv6_on_one_session() {
    scenario("s09-dual-family", |lab| {
        let p = topo::pair_with(lab, &default_bird(), &default_via6(), topo::host_addresses)?;
        for fam in ["ipv4", "ipv6"] {
            let ch = p.bird.channel(PEER, fam)?;
            let up = ch
                .lines()
                .any(|l| l.trim().strip_prefix("State:").map(str::trim) == Some("UP"));
            if !up {
                return Err(Error::Check(format!("BIRD channel {fam} not up:\n{ch}")));
            }
        }
        lab.wait_until(
            T,
            "via6 kernel: 10.1.0.0/24 via inet6 fe80::1 and 2001:db8:1::/48 via fe80::1",
            || {
                Ok(kernel_route_has(
                    lab,
                    &p.via6_host,
                    topo::BIRD_V4,
                    &["via inet6 fe80::1 dev eth0", "proto bgp"],
                )? && kernel_route_has(
                    lab,
                    &p.via6_host,
                    topo::BIRD_V6,
                    &["via fe80::1 dev eth0", "proto bgp"],
                )?)
            },
        )?;
        lab.wait_until(
            T,
            "BIRD kernel: 198.51.100.0/24 via inet6 fe80::2 and 2001:db8:100::/48 via fe80::2",
            || {
                Ok(kernel_route_has(
                    lab,
                    &p.bird_host,
                    topo::VIA6_V4,
                    &["via inet6 fe80::2 dev eth0", "proto bird"],
                )? && kernel_route_has(
                    lab,
                    &p.bird_host,
                    topo::VIA6_V6,
                    &["via fe80::2 dev eth0", "proto bird"],
                )?)
            },
        )?;
        lab.wait_until(
            T,
            "via6 RIB has both of BIRD's prefixes from fe80::1",
            || {
                Ok(
                    via6_has(&p.via6, "routes", topo::BIRD_V4, &[NH_LL1, GW_LL1])?
                        && via6_has(&p.via6, "routes", topo::BIRD_V6, &[NH_LL1])?,
                )
            },
        )?;
        // Both families forward, each way.
        topo::pings_cross(lab, &p)
    });
}

/// Scenario 8: 4-octet AS numbers on both sides (RFC 6793).
#[test]
fn s08_four_octet_asns() {
    scenario("s08-as4", |lab| {
        let mut b = default_bird();
        b.asn = 4_200_000_001;
        if let Some(peer) = b.peers.first_mut() {
            peer.remote_as = 4_200_000_002;
        }
        let mut v = default_via6();
        v.asn = 4_200_000_002;
        if let Some(n) = v.neighbors.first_mut() {
            n.remote_as = 4_200_000_001;
        }
        let p = topo::pair(lab, &b, &v)?;
        let text = p.bird.protocol(PEER)?;
        if !(text.contains("Neighbor AS:      4200000002") && text.contains("4-octet AS numbers")) {
            return Err(Error::Check(format!(
                "BIRD's session is not AS4 with 4200000002:\n{text}"
            )));
        }
        lab.wait_until(T, "BIRD: 198.51.100.0/24 with AS path 4200000002", || {
            bird_route_has(
                &p.bird,
                topo::VIA6_V4,
                &["BGP.as_path: 4200000002", "via fe80::2 on eth0"],
            )
        })?;
        lab.wait_until(T, "via6 RIB: 10.1.0.0/24 with AS path [4200000001]", || {
            via6_has(&p.via6, "routes", topo::BIRD_V4, &["4200000001", NH_LL1])
        })?;
        lab.wait_until(T, "via6 kernel: 10.1.0.0/24 via inet6 fe80::1", || {
            kernel_route_has(
                lab,
                &p.via6_host,
                topo::BIRD_V4,
                &["via inet6 fe80::1 dev eth0", "proto bgp"],
            )
        })?;
        Ok(())
    });
}
