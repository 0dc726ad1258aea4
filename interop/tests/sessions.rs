//! Session variants (scenarios 3, 4 and 7): a global-address session, a
//! BIRD without extended next hop, and route refresh both ways.

use interop::capture::Capture;
use interop::check::{
    bird_counter, bird_counter_column, bird_established, bird_route_absent, bird_route_has,
    json_find_key, kernel_route_absent, kernel_route_has, via6_established, via6_extended_next_hop,
    via6_has, via6_neighbor,
};
use interop::pcap;
use interop::topo::{self, default_bird, default_via6, NH_LL1, PEER, T};
use interop::{holds_for, scenario, Error};
use std::time::Duration;

/// Scenario 3: session between global addresses on a shared subnet;
/// next hops are `[global, LL]` both ways and BIRD's is on-link.
#[test]
fn s03_global_address_session() {
    scenario("s03-global", |lab| {
        let mut b = default_bird();
        if let Some(peer) = b.peers.first_mut() {
            peer.neighbor = "2001:db8:ff::2".into();
            peer.interface = None;
        }
        let mut v = default_via6();
        if let Some(n) = v.neighbors.first_mut() {
            n.address = "2001:db8:ff::1".into();
        }
        let p = topo::pair_with(lab, &b, &v, |lab, bh, vh| {
            lab.add_addr(bh, "eth0", "2001:db8:ff::1/64")?;
            lab.add_addr(vh, "eth0", "2001:db8:ff::2/64")?;
            topo::host_addresses(lab, bh, vh)
        })?;
        lab.wait_until(
            T,
            "via6 RIB: 10.1.0.0/24 with next hop [2001:db8:ff::1, fe80::1]",
            || {
                via6_has(
                    &p.via6,
                    "routes",
                    topo::BIRD_V4,
                    &["\"next_hop\":\"2001:db8:ff::1\"", NH_LL1],
                )
            },
        )?;
        lab.wait_until(T, "via6 kernel: 10.1.0.0/24 via inet6 ... dev eth0", || {
            kernel_route_has(
                lab,
                &p.via6_host,
                topo::BIRD_V4,
                &["via inet6 ", "dev eth0", "proto bgp"],
            )
        })?;
        lab.wait_until(
            T,
            "BIRD: 198.51.100.0/24 next hop [2001:db8:ff::2, fe80::2], on-link via 2001:db8:ff::2",
            || {
                bird_route_has(
                    &p.bird,
                    topo::VIA6_V4,
                    &[
                        "BGP.next_hop: 2001:db8:ff::2 fe80::2",
                        "via 2001:db8:ff::2 on eth0",
                    ],
                )
            },
        )?;
        lab.wait_until(
            T,
            "BIRD kernel: 198.51.100.0/24 via inet6 2001:db8:ff::2 dev eth0",
            || {
                kernel_route_has(
                    lab,
                    &p.bird_host,
                    topo::VIA6_V4,
                    &["via inet6 2001:db8:ff::2 dev eth0", "proto bird"],
                )
            },
        )?;
        lab.wait_until(T, "both kernels: IPv6 prefixes via the peer", || {
            Ok(
                kernel_route_has(lab, &p.via6_host, topo::BIRD_V6, &["dev eth0", "proto bgp"])?
                    && kernel_route_has(
                        lab,
                        &p.bird_host,
                        topo::VIA6_V6,
                        &["via 2001:db8:ff::2 dev eth0"],
                    )?,
            )
        })?;
        topo::pings_cross(lab, &p)
    });
}

/// Scenario 4: BIRD without `extended next hop`: via6 sends no IPv6 next
/// hop for IPv4 (RFC 8950 §4), says why in `via6ctl routes`, installs no
/// IPv4 route from BIRD, and IPv6 routes still flow both ways. What via6
/// sent is read from BIRD's channel counters and from a capture; BIRD's
/// own export counter shows that BIRD, not via6, keeps its IPv4 route
/// from crossing the other way.
#[test]
fn s04_bird_without_extended_next_hop() {
    scenario("s04-no-enh", |lab| {
        let mut b = default_bird();
        if let Some(ch) = b.peers.first_mut().and_then(|p| p.ipv4.as_mut()) {
            ch.extended_next_hop = false;
        }
        let mut cap = None;
        let p = topo::pair_with(lab, &b, &default_via6(), |lab, _, vh| {
            cap = Some(Capture::start(lab, vh, "eth0", &["tcp", "port", "179"])?);
            Ok(())
        })?;
        let cap = cap.ok_or_else(|| Error::Check("no capture".into()))?;
        let local = p.bird.local_capabilities(PEER)?;
        if local.contains("Extended next hop") {
            return Err(Error::Check(format!(
                "BIRD still offers extended next hop:\n{local}"
            )));
        }
        if via6_extended_next_hop(&p.via6, &p.bird_addr())? {
            let n = via6_neighbor(&p.via6, &p.bird_addr())?;
            return Err(Error::Check(format!(
                "via6 claims extended next hop for ipv4 with a peer that did not offer it: {n}"
            )));
        }
        lab.wait_until(
            T,
            "IPv6 both ways: kernels have 2001:db8:1::/48 and 2001:db8:100::/48",
            || {
                Ok(kernel_route_has(
                    lab,
                    &p.via6_host,
                    topo::BIRD_V6,
                    &["via fe80::1 dev eth0", "proto bgp"],
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
            "via6ctl routes says why 198.51.100.0/24 is not advertised to BIRD",
            || {
                let j = p.via6.ctl_json(&["routes"])?;
                let reasons: Vec<String> = interop::via6::json_entries(&j, topo::VIA6_V4)
                    .iter()
                    .flat_map(|e| json_find_key(e, "not_advertised"))
                    .filter_map(|v| v.as_array())
                    .flatten()
                    .map(|v| v.to_string())
                    .collect();
                if reasons.is_empty() {
                    return Err(Error::Check(format!(
                        "no not_advertised reason for {} in {j}",
                        topo::VIA6_V4
                    )));
                }
                Ok(true)
            },
        )?;
        // BIRD's own counters. Positive barrier: via6's IPv6 UPDATEs reach
        // BIRD's ipv6 channel. Then BIRD's ipv4 channel must have received
        // no UPDATE at all: what via6 sends (or not) is via6's doing.
        lab.wait_until(T, "BIRD counts via6's IPv6 UPDATEs", || {
            let n = bird_counter(&p.bird, PEER, "ipv6", "Import updates")?;
            if n > 0 {
                return Ok(true);
            }
            Err(Error::Check("BIRD's ipv6 Import updates still 0".into()))
        })?;
        // BIRD's side of the other direction: it did try to export its
        // IPv4 route (Export updates accepted), so the absence of
        // 10.1.0.0/24 in via6 below is BIRD 2.0.12 turning that export
        // into a withdraw (README, oddity 4), not something via6 decided.
        let exported = bird_counter_column(&p.bird, PEER, "ipv4", "Export updates", "accepted")?;
        if exported == 0 {
            return Err(Error::Check(
                "BIRD did not even try to export its IPv4 route".into(),
            ));
        }
        // 3 s: via6 announces right after Established and BIRD's counters
        // already show its IPv6 UPDATEs, so a late IPv4 one would be in.
        holds_for(
            Duration::from_secs(3),
            "no IPv4 crosses without extended next hop",
            || {
                let v4_in = bird_counter(&p.bird, PEER, "ipv4", "Import updates")?;
                if v4_in != 0 {
                    return Err(Error::Check(format!(
                        "BIRD's ipv4 channel received {v4_in} UPDATEs from via6"
                    )));
                }
                Ok(bird_route_absent(&p.bird, topo::VIA6_V4)?
                    && kernel_route_absent(lab, &p.via6_host, topo::BIRD_V4)?)
            },
        )?;
        // On the wire, what via6 sent BIRD: IPv6 reachability (RFC 4760
        // MP_REACH for AFI 2), and no IPv4 in any form: no MP_REACH for
        // AFI 1 and no classic NLRI.
        let segs = cap.segments()?;
        let sent = pcap::bgp_messages(&segs, topo::VIA6_LL.into(), topo::BIRD_LL.into());
        let v6 = pcap::mp_reach_next_hops(&sent, 2, 1);
        let v4 = pcap::mp_reach_next_hops(&sent, 1, 1);
        let classic = sent
            .iter()
            .filter(|m| pcap::classic_nlri(m).is_some_and(|n| !n.is_empty()));
        if v6.is_empty() || !v4.is_empty() || classic.count() > 0 {
            return Err(Error::Check(format!(
                "via6's messages to BIRD: {} IPv6 MP_REACH, {} IPv4 MP_REACH, types {:?}",
                v6.len(),
                v4.len(),
                sent.iter().map(|m| m.kind).collect::<Vec<_>>()
            )));
        }
        Ok(())
    });
}

/// Scenario 7: route refresh both ways (RFC 2918): `birdc reload in`
/// makes via6 resend, `via6ctl neighbor ... refresh` makes BIRD resend,
/// `birdc reload out` is absorbed; the session stays up throughout.
#[test]
fn s07_route_refresh_both_ways() {
    scenario("s07-refresh", |lab| {
        let p = topo::pair(lab, &default_bird(), &default_via6())?;
        let addr = p.bird_addr();
        lab.wait_until(T, "routes both ways", || {
            Ok(
                bird_route_has(&p.bird, topo::VIA6_V4, &["via fe80::2 on eth0"])?
                    && via6_has(&p.via6, "routes", topo::BIRD_V4, &[NH_LL1])?,
            )
        })?;

        let before = bird_counter(&p.bird, PEER, "ipv4", "Import updates")?;
        p.bird.birdc(&format!("reload in {PEER}"))?;
        lab.wait_until(
            T,
            "via6 answers BIRD's ROUTE-REFRESH: BIRD's ipv4 import updates grow",
            || {
                let now = bird_counter(&p.bird, PEER, "ipv4", "Import updates")?;
                if now > before {
                    return Ok(true);
                }
                Err(Error::Check(format!(
                    "ipv4 Import updates still {now} (was {before})"
                )))
            },
        )?;

        let before = bird_counter(&p.bird, PEER, "ipv4", "Export updates")?;
        p.via6.ctl(&["neighbor", &addr, "refresh"])?;
        lab.wait_until(
            T,
            "BIRD answers via6's ROUTE-REFRESH: BIRD's ipv4 export updates grow",
            || {
                let now = bird_counter(&p.bird, PEER, "ipv4", "Export updates")?;
                if now > before {
                    return Ok(true);
                }
                Err(Error::Check(format!(
                    "ipv4 Export updates still {now} (was {before})"
                )))
            },
        )?;

        let received = |n: &serde_json::Value| {
            json_find_key(n, "updates_received")
                .first()
                .and_then(|v| v.as_u64())
                .ok_or_else(|| Error::Check(format!("no updates_received in {n}")))
        };
        let before = received(&via6_neighbor(&p.via6, &addr)?)?;
        p.bird.birdc(&format!("reload out {PEER}"))?;
        lab.wait_until(
            T,
            "via6 takes BIRD's resent routes: updates_received grows",
            || {
                let now = received(&via6_neighbor(&p.via6, &addr)?)?;
                if now > before {
                    return Ok(true);
                }
                Err(Error::Check(format!(
                    "updates_received still {now} (was {before})"
                )))
            },
        )?;
        lab.wait_until(
            T,
            "after refreshes: session up, routes still in both kernels",
            || {
                Ok(bird_established(&p.bird, PEER)?
                    && via6_established(&p.via6, &addr)?
                    && kernel_route_has(
                        lab,
                        &p.via6_host,
                        topo::BIRD_V4,
                        &["via inet6 fe80::1 dev eth0"],
                    )?
                    && kernel_route_has(
                        lab,
                        &p.bird_host,
                        topo::VIA6_V4,
                        &["via inet6 fe80::2 dev eth0"],
                    )?)
            },
        )?;
        Ok(())
    });
}
