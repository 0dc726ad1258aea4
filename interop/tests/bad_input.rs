//! Scenario 13: a raw test peer in BIRD's place sends an UPDATE whose
//! optional attribute is malformed (MULTI_EXIT_DISC of 3 bytes). RFC 7606
//! §7.4 makes that treat-as-withdraw: the prefix leaves via6's RIB and
//! kernel, and the session stays up (no NOTIFICATION, still Established,
//! later UPDATEs still honoured).

use std::net::Ipv4Addr;
use std::time::Duration;

use interop::check::{kernel_route_absent, kernel_route_has, via6_established, via6_lacks};
use interop::dataplane::{ping_once, wait_ping};
use interop::topo::{self, default_via6, BIRD_AS, BIRD_ID, BIRD_LL, T, VIA6_LL};
use interop::{holds_for, scenario, Error, Result, Via6d};
use rawpeer::build::{self, MED, OPTIONAL};
use rawpeer::{OpenSpec, RawPeer};

/// In 10.1.0.0/24 (withdrawn by the malformed UPDATE) and 10.1.1.0/24
/// (kept), on the raw peer's host.
const HOST_A: &str = "10.1.0.1";
const HOST_B: &str = "10.1.1.1";
/// via6's host address in its originated 198.51.100.0/24.
const SRC: &str = "198.51.100.1";
/// The raw peer's hold time: KEEPALIVEs every 3 s keep the session up.
const HOLD: u16 = 9;

/// The OPEN of a dual-stack RFC 8950 speaker in BIRD's place.
fn raw_open() -> OpenSpec {
    OpenSpec::new(BIRD_AS, BIRD_ID).hold(HOLD)
}

/// ORIGIN, AS_PATH, MP_REACH `[::, BIRD_LL]` for `prefixes`, then
/// `extra` attributes (well formed or not).
fn announce(prefixes: &[(Ipv4Addr, u8)], extra: &[u8]) -> Result<Vec<u8>> {
    let mut a = build::origin_igp()?;
    a.extend(build::as_path4(&[BIRD_AS])?);
    a.extend(build::mp_reach_v4_ll(BIRD_LL, prefixes)?);
    a.extend_from_slice(extra);
    Ok(build::update(&a))
}

/// Connects from `ns` to `[VIA6_LL%eth0]:179` as soon as something listens
/// there, and reaches Established.
fn raw_session(lab: &interop::Lab, ns: &str, what: &str) -> Result<RawPeer> {
    let mut peer = None;
    lab.wait_until(T, what, || {
        peer = Some(RawPeer::connect(ns, "eth0", VIA6_LL, 179, Duration::ZERO)?);
        Ok(true)
    })?;
    let mut peer = peer.ok_or_else(|| Error::Check("no stream".into()))?;
    peer.establish(&raw_open(), T)?;
    Ok(peer)
}

/// MED is 4 bytes (RFC 4271 §5.1.4); 3 is malformed, treat-as-withdraw
/// (RFC 7606 §7.4). Hand-built: `wire` encodes only correct MEDs.
fn bad_med() -> Vec<u8> {
    build::attribute(OPTIONAL, MED, &[0, 0, 1])
}

#[test]
fn s13_malformed_optional_attribute_is_treat_as_withdraw() {
    scenario("s13-treat-as-withdraw", |lab| {
        let peer = lab.add_host("peer")?;
        let v = lab.add_host("via6")?;
        lab.link_ll(&peer, "eth0", BIRD_LL, &v, "eth0", VIA6_LL)?;
        // Hosts behind the announced prefixes, for pings from via6's
        // 198.51.100.1; the raw peer installs no routes, so its way back
        // is a static route.
        for a in [HOST_A, HOST_B] {
            lab.add_addr(&peer, "lo", &format!("{a}/32"))?;
        }
        lab.add_addr(&v, "lo", &format!("{SRC}/32"))?;
        lab.ip(
            &peer,
            &[
                "route",
                "add",
                topo::VIA6_V4,
                "via",
                "inet6",
                "fe80::2",
                "dev",
                "eth0",
            ],
        )?;
        let mut cfg = default_via6();
        if let Some(n) = cfg.neighbors.first_mut() {
            n.passive = Some(true);
        }
        let via6 = Via6d::start(lab, &v, "via6d", &cfg)?;
        let addr = format!("{BIRD_LL}%eth0");

        let mut sp = raw_session(lab, &peer.ns, "TCP to via6 [fe80::2%eth0]:179")?;
        lab.wait_until(T, "raw peer and via6 Established", || {
            sp.stays_up(Duration::from_millis(100))?;
            via6_established(&via6, &addr)
        })?;

        sp.send(&announce(
            &[
                (Ipv4Addr::new(10, 1, 0, 0), 24),
                (Ipv4Addr::new(10, 1, 1, 0), 24),
            ],
            &[],
        )?)?;
        lab.wait_until(
            T,
            "via6 kernel: 10.1.0.0/24 and 10.1.1.0/24 via inet6 fe80::1",
            || {
                Ok(
                    kernel_route_has(lab, &v, "10.1.0.0/24", &["via inet6 fe80::1 dev eth0"])?
                        && kernel_route_has(
                            lab,
                            &v,
                            "10.1.1.0/24",
                            &["via inet6 fe80::1 dev eth0"],
                        )?,
                )
            },
        )?;

        wait_ping(lab, &v, SRC, HOST_A)?;
        wait_ping(lab, &v, SRC, HOST_B)?;

        sp.send(&announce(&[(Ipv4Addr::new(10, 1, 0, 0), 24)], &bad_med())?)?;
        lab.wait_until(
            T,
            "10.1.0.0/24 withdrawn from via6's RIB and kernel",
            || {
                Ok(via6_lacks(&via6, "routes", "10.1.0.0/24")?
                    && kernel_route_absent(lab, &v, "10.1.0.0/24")?)
            },
        )?;
        // 2 s after the withdraw took effect: a reset for the malformed
        // UPDATE would come with its handling, not seconds later.
        holds_for(
            std::time::Duration::from_secs(2),
            "session stays up, 10.1.1.0/24 stays",
            || {
                // Fails on a NOTIFICATION or a close.
                sp.stays_up(Duration::from_millis(100))?;
                Ok(via6_established(&via6, &addr)?
                    && kernel_route_has(lab, &v, "10.1.1.0/24", &["via inet6 fe80::1 dev eth0"])?)
            },
        )?;
        // Traffic follows: the kept prefix still carries pings, the
        // withdrawn one none (no route: ping fails at once).
        wait_ping(lab, &v, SRC, HOST_B)?;
        if ping_once(lab, &v, SRC, HOST_A).is_ok() {
            return Err(Error::Check(format!(
                "{HOST_A} still answers through a withdrawn 10.1.0.0/24"
            )));
        }
        // The session still carries UPDATEs.
        sp.send(&announce(&[(Ipv4Addr::new(10, 1, 2, 0), 24)], &[])?)?;
        lab.wait_until(
            T,
            "via6 kernel: 10.1.2.0/24 after the malformed UPDATE",
            || kernel_route_has(lab, &v, "10.1.2.0/24", &["via inet6 fe80::1 dev eth0"]),
        )?;
        Ok(())
    });
}

/// The same bytes sent to BIRD 2.0.12: proves the raw peer's messages
/// are well formed, and shows BIRD's own RFC 7606 handling of the
/// malformed MED (withdraw, session kept).
#[test]
fn s13_baseline_bird_treats_malformed_med_as_withdraw() {
    use interop::check::{bird_established, bird_route_absent, bird_route_has};
    use interop::{Bird, BirdConfig, BirdPeer};
    scenario("s13-baseline-bird", |lab| {
        let peer = lab.add_host("peer")?;
        let b = lab.add_host("bird")?;
        lab.link_ll(&peer, "eth0", BIRD_LL, &b, "eth0", VIA6_LL)?;
        let mut cfg = BirdConfig::new(interop::topo::VIA6_ID, interop::topo::VIA6_AS);
        let mut p = BirdPeer::link_local("raw", &BIRD_LL.to_string(), "eth0", BIRD_AS);
        p.passive = true;
        cfg.peers.push(p);
        let bird = Bird::start(lab, &b, "bird", &cfg)?;
        let mut sp = raw_session(lab, &peer.ns, "TCP to BIRD [fe80::2%eth0]:179")?;
        lab.wait_until(T, "BIRD Established with the raw peer", || {
            bird_established(&bird, "raw")
        })?;
        let prefix = [(Ipv4Addr::new(10, 1, 0, 0), 24)];
        sp.send(&announce(&prefix, &[])?)?;
        lab.wait_until(T, "BIRD: 10.1.0.0/24 via fe80::1 on eth0", || {
            bird_route_has(
                &bird,
                "10.1.0.0/24",
                &["via fe80::1 on eth0", "BGP.next_hop: :: fe80::1"],
            )
        })?;
        sp.send(&announce(&prefix, &bad_med())?)?;
        lab.wait_until(T, "BIRD withdraws 10.1.0.0/24 on the malformed MED", || {
            bird_route_absent(&bird, "10.1.0.0/24")
        })?;
        // Fails on a NOTIFICATION or a close.
        sp.stays_up(Duration::from_millis(100))?;
        if !bird_established(&bird, "raw")? {
            return Err(Error::Check("BIRD reset the session".into()));
        }
        Ok(())
    });
}
