//! Graceful restart with BIRD 2 as the restarting peer (RFC 4724, via6 in
//! the receiving role), measured on the data plane: a ping flows from
//! via6's host to BIRD's loopback across the IPv6-only link for the whole
//! restart, and a route monitor in via6's namespace records every kernel
//! route deletion.
//!
//! - g1: BIRD killed (SIGKILL) and started again with `-R`: BIRD's routes
//!   never leave via6's kernel, are shown stale meanwhile, and a route
//!   BIRD no longer announces goes at its End-of-RIB; pings lose at most
//!   1% of those sent.
//! - g2: BIRD killed and never back: its routes leave via6's kernel when
//!   its restart time runs out (within 1 s of it), not before.
//! - g3/g4: via6d itself restarts (SIGTERM and a start, SIGKILL and a
//!   start): BIRD keeps via6's routes (it never withdraws via6's /24 from
//!   its kernel), via6's kernel keeps BIRD's, and a ping from BIRD's host
//!   to via6's source address loses at most 1% of what it sends.
//! - g5: `via6ctl shutdown` is for good: BIRD drops via6's routes at once.
//! - g6: long-lived graceful restart with two BIRDs (RFC 9494).
//! - g7: FRR as the restarting peer.
//! - A peer without graceful restart loses its routes at once: scenario 6
//!   (`dynamics.rs`) with BIRD's default, which lists no family.

use std::fs;
use std::time::{Duration, Instant};

use interop::check::{bird_established, kernel_route_absent, kernel_route_has, via6_established};
use interop::topo::{self, default_bird, default_via6, BIRD_ID, PEER, T};
use interop::traffic::{deletions, ping_counts, route_monitor, Background};
use interop::via6::json_entries;
use interop::{scenario, Bird, BirdConfig, Error, Host, Lab, Pair, Result, Via6d};

/// via6's source address (on its `lo`, inside its originated /24).
const VIA6_SRC: &str = "198.51.100.1";
/// BIRD's loopback, announced by BIRD as a /32: the ping target.
const BIRD_LO: &str = "10.255.0.1/32";
/// A prefix BIRD stops announcing across its restart.
const DROPPED: &str = "10.9.0.0/24";
/// BIRD's Restart Time, seconds.
const RESTART_TIME: u64 = 10;

fn bird_cfg(with_dropped: bool) -> BirdConfig {
    let mut c = default_bird();
    c.static_v4.push(BIRD_LO.into());
    if with_dropped {
        c.static_v4.push(DROPPED.into());
    }
    if let Some(p) = c.peers.first_mut() {
        p.extra = format!("graceful restart on;\n  graceful restart time {RESTART_TIME};");
    }
    c
}

/// BIRD and via6 with a return path for the ping that does not depend on
/// BIRD's own kernel routes (a static route in BIRD's namespace).
fn gr_pair(lab: &Lab) -> Result<Pair> {
    let mut v = default_via6();
    v.source_address = Some(VIA6_SRC.parse().map_err(|_| Error::Check("addr".into()))?);
    let p = topo::pair_with(lab, &bird_cfg(true), &v, |lab, bird_host, _| {
        lab.ip(
            bird_host,
            &[
                "route",
                "add",
                &format!("{VIA6_SRC}/32"),
                "via",
                "inet6",
                "fe80::2",
                "dev",
                "eth0",
            ],
        )
        .map(|_| ())
    })?;
    for prefix in [BIRD_LO, topo::BIRD_V4, DROPPED] {
        lab.wait_until(T, &format!("{prefix} in via6's kernel"), || {
            kernel_route_has(lab, &p.via6_host, prefix, &["via inet6 fe80::1 dev eth0"])
        })?;
    }
    lab.wait_until(T, "ping -4 via6 -> BIRD's loopback", || {
        ping_once(lab, &p.via6_host)
    })?;
    Ok(p)
}

fn ping_once(lab: &Lab, host: &Host) -> Result<bool> {
    let target = BIRD_ID.to_string();
    lab.exec(
        host,
        &["ping", "-4", "-c", "1", "-W", "1", "-I", VIA6_SRC, &target],
    )
    .map(|o| o.contains("1 received"))
}

/// Whether via6 lists `prefix` from BIRD, and whether stale.
fn via6_route(p: &Pair, prefix: &str) -> Result<Option<bool>> {
    let v = p.via6.ctl_json(&["routes", "--all"])?;
    Ok(json_entries(&v, prefix)
        .into_iter()
        .find(|r| r["peer_address"].is_string())
        .map(|r| r["stale"] == true))
}

#[test]
fn g1_bird_restarts_and_ipv4_keeps_flowing() {
    scenario("g1-bird-restart", |lab| {
        let p = gr_pair(lab)?;
        let n = interop::check::via6_neighbor(&p.via6, &p.bird_addr())?;
        if !n.to_string().contains("\"graceful_restart\":{") {
            return Err(Error::Check(format!(
                "graceful restart not negotiated: {n}"
            )));
        }
        let monitor = route_monitor(lab, &p.via6_host)?;
        let target = BIRD_ID.to_string();
        let ping = Background::start(
            lab,
            &p.via6_host,
            "ping",
            &["ping", "-4", "-i", "0.02", "-I", VIA6_SRC, &target],
        )?;
        std::thread::sleep(Duration::from_secs(1));
        let t0 = Instant::now();
        lab.kill(&p.bird.daemon)?;
        lab.wait_until(T, "via6 keeps BIRD's routes, stale", || {
            Ok(via6_route(&p, topo::BIRD_V4)? == Some(true)
                && via6_route(&p, DROPPED)? == Some(true)
                && kernel_route_has(lab, &p.via6_host, BIRD_LO, &["via inet6 fe80::1"])?)
        })?;
        std::thread::sleep(Duration::from_secs(2));
        // Back in graceful restart recovery, without DROPPED.
        let bird = Bird::start_with_args(lab, &p.bird_host, "bird", &bird_cfg(false), &["-R"])?;
        let p = Pair { bird, ..p };
        lab.wait_until(T, "session back", || {
            Ok(bird_established(&p.bird, PEER)? && via6_established(&p.via6, &p.bird_addr())?)
        })?;
        lab.wait_until(T, "End-of-RIB: refreshed routes, DROPPED swept", || {
            Ok(via6_route(&p, topo::BIRD_V4)? == Some(false)
                && via6_route(&p, "10.255.0.1/32")? == Some(false)
                && via6_route(&p, DROPPED)?.is_none()
                && kernel_route_absent(lab, &p.via6_host, DROPPED)?)
        })?;
        let window = t0.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        let out = ping.finish();
        let (sent, received) = ping_counts(&out)?;
        let seen = monitor.finish();
        let lost = sent.saturating_sub(received);
        eprintln!(
            "g1: restart window {:.1} s, ping sent {sent}, received {received}, lost {lost}",
            window.as_secs_f64()
        );
        for prefix in [BIRD_LO, topo::BIRD_V4] {
            let d = deletions(&seen, prefix);
            if !d.is_empty() {
                return Err(Error::Check(format!("{prefix} left via6's kernel: {d:?}")));
            }
        }
        if deletions(&seen, DROPPED).is_empty() {
            return Err(Error::Check(format!(
                "the monitor missed {DROPPED} going:\n{seen}"
            )));
        }
        if sent < 100 || lost * 100 > sent {
            return Err(Error::Check(format!("ping lost {lost} of {sent}:\n{out}")));
        }
        Ok(())
    });
}

#[test]
fn g2_bird_never_back_routes_go_at_its_restart_time() {
    scenario("g2-bird-gone", |lab| {
        let p = gr_pair(lab)?;
        let t0 = Instant::now();
        lab.kill(&p.bird.daemon)?;
        let restart = Duration::from_secs(RESTART_TIME);
        lab.wait_until(restart + T, "BIRD's routes leave via6's kernel", || {
            kernel_route_absent(lab, &p.via6_host, topo::BIRD_V4)
        })?;
        let gone = t0.elapsed();
        eprintln!("g2: routes left {:.2} s after the kill", gone.as_secs_f64());
        // Removed when the restart time runs out: not before, and within
        // 1 s of it (polling and the kernel's work included).
        if gone + Duration::from_millis(200) < restart || gone > restart + Duration::from_secs(1) {
            return Err(Error::Check(format!(
                "routes left {gone:?} after the kill, restart time {restart:?}"
            )));
        }
        if via6_route(&p, topo::BIRD_V4)?.is_some() || via6_route(&p, BIRD_LO)?.is_some() {
            return Err(Error::Check("via6's RIB still lists BIRD's routes".into()));
        }
        Ok(())
    });
}

/// via6d restarts while a ping runs from BIRD's host to via6's source
/// address: `stop` ends the first via6d (SIGTERM or SIGKILL).
fn via6_restarts(lab: &Lab, name: &str, stop: i32) -> Result<()> {
    let p = gr_pair(lab)?;
    let mut v = default_via6();
    v.source_address = Some(VIA6_SRC.parse().map_err(|_| Error::Check("addr".into()))?);
    lab.wait_until(T, "BIRD's kernel: via6's /24", || {
        kernel_route_has(
            lab,
            &p.bird_host,
            topo::VIA6_V4,
            &["via inet6 fe80::2", "proto bird"],
        )
    })?;
    let bird_monitor = route_monitor(lab, &p.bird_host)?;
    let via6_monitor = route_monitor(lab, &p.via6_host)?;
    let ping = Background::start(
        lab,
        &p.bird_host,
        "ping",
        &[
            "ping",
            "-4",
            "-i",
            "0.02",
            "-I",
            &BIRD_ID.to_string(),
            VIA6_SRC,
        ],
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    lab.stop(&p.via6.daemon, stop)?;
    // BIRD holds via6's routes as stale while via6 is away.
    lab.wait_until(T, "BIRD: session down, via6's route kept", || {
        Ok(!p.bird.established(PEER)?
            && kernel_route_has(lab, &p.bird_host, topo::VIA6_V4, &["via inet6 fe80::2"])?)
    })?;
    let during = p.bird.birdc(&format!("show route {} all", topo::VIA6_V4))?;
    std::thread::sleep(Duration::from_secs(1));
    let via6 = Via6d::start(lab, &p.via6_host, "via6d", &v)?;
    let p = Pair { via6, ..p };
    lab.wait_until(T, "session back, routes both ways", || {
        Ok(bird_established(&p.bird, PEER)?
            && via6_established(&p.via6, &p.bird_addr())?
            && via6_route(&p, topo::BIRD_V4)? == Some(false))
    })?;
    let window = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let out = ping.finish();
    let (sent, received) = ping_counts(&out)?;
    let lost = sent.saturating_sub(received);
    eprintln!(
        "{name}: restart window {:.1} s, ping sent {sent}, received {received}, lost {lost}\nBIRD during the restart:\n{during}",
        window.as_secs_f64()
    );
    let at_bird = deletions(&bird_monitor.finish(), topo::VIA6_V4);
    if !at_bird.is_empty() {
        return Err(Error::Check(format!(
            "BIRD withdrew via6's route: {at_bird:?}"
        )));
    }
    let seen = via6_monitor.finish();
    for prefix in [BIRD_LO, topo::BIRD_V4] {
        let d = deletions(&seen, prefix);
        if !d.is_empty() {
            return Err(Error::Check(format!("{prefix} left via6's kernel: {d:?}")));
        }
    }
    if sent < 100 || lost * 100 > sent {
        return Err(Error::Check(format!("ping lost {lost} of {sent}:\n{out}")));
    }
    Ok(())
}

#[test]
fn g3_via6_sigterm_and_start_costs_no_traffic() {
    scenario("g3-via6-sigterm", |lab| {
        via6_restarts(lab, "g3", libc::SIGTERM)
    });
}

#[test]
fn g4_via6_sigkill_and_start_costs_no_traffic() {
    scenario("g4-via6-sigkill", |lab| {
        via6_restarts(lab, "g4", libc::SIGKILL)
    });
}

/// `via6ctl shutdown` stops for good although BIRD would help with a
/// restart: BIRD drops via6's routes at once (a Cease; a Hard Reset to a
/// peer that set N, RFC 8538), and via6's own kernel routes go.
#[test]
fn g5_via6ctl_shutdown_is_for_good() {
    scenario("g5-via6-shutdown", |lab| {
        let p = gr_pair(lab)?;
        lab.wait_until(T, "BIRD's kernel: via6's /24", || {
            kernel_route_has(lab, &p.bird_host, topo::VIA6_V4, &["via inet6 fe80::2"])
        })?;
        let t0 = Instant::now();
        p.via6.ctl(&["shutdown"])?;
        lab.wait_until(T, "via6d exits", || Ok(!lab.is_running(&p.via6.daemon)))?;
        // Well inside via6's restart time (120 s): not kept as stale.
        lab.wait_until(Duration::from_secs(10), "BIRD drops via6's routes", || {
            kernel_route_absent(lab, &p.bird_host, topo::VIA6_V4)
        })?;
        if !kernel_route_absent(lab, &p.via6_host, topo::BIRD_V4)?
            || !kernel_route_absent(lab, &p.via6_host, BIRD_LO)?
        {
            return Err(Error::Check(
                "via6's kernel routes stayed after shutdown".into(),
            ));
        }
        // BIRD 2.0.12 does not set N, so via6 says Cease/2, which ends
        // graceful restart for a peer without N (RFC 4724 §4.2).
        let log = fs::read_to_string(&p.bird.daemon.log).unwrap_or_default();
        if log.contains("graceful restart detected") {
            return Err(Error::Check(format!("BIRD took it for a restart:\n{log}")));
        }
        eprintln!(
            "g5: BIRD dropped via6's routes {:.2} s after the request",
            t0.elapsed().as_secs_f64()
        );
        Ok(())
    });
}

/// Long-lived graceful restart (RFC 9494) with BIRD: BIRD 1 (restart time
/// 3 s, long-lived stale time 10 s) and BIRD 2 announce 10.10.0.0/24,
/// BIRD 2 with a longer AS path; BIRD 1 alone announces 10.11.0.0/24.
/// BIRD 1 dies: its path stays best while plain stale, loses to BIRD 2's
/// once long-lived stale, and its lone prefix goes when the long-lived
/// stale time runs out.
#[test]
fn g6_long_lived_stale_loses_then_goes() {
    use interop::topo::{BIRD2_LL, BIRD_AS, BIRD_LL, VIA6_AS, VIA6_LL};
    use interop::{BirdPeer, Via6Config, Via6Neighbor};
    const BOTH: &str = "10.10.0.0/24";
    const ONLY1: &str = "10.11.0.0/24";
    scenario("g6-llgr", |lab| {
        let b1 = lab.add_host("b1")?;
        let b2 = lab.add_host("b2")?;
        let v = lab.add_host("via6")?;
        lab.link_ll(&b1, "eth0", BIRD_LL, &v, "eth0", VIA6_LL)?;
        lab.link_ll(&b2, "eth0", BIRD2_LL, &v, "eth1", VIA6_LL)?;
        let bird_cfg = |id: [u8; 4], statics: &[&str], prepend: bool, llgr: bool| {
            let mut c = BirdConfig::new(id.into(), BIRD_AS);
            c.static_v4 = statics.iter().map(|s| s.to_string()).collect();
            let mut peer = BirdPeer::link_local("via6", &VIA6_LL.to_string(), "eth0", VIA6_AS);
            if prepend {
                if let Some(ch) = peer.ipv4.as_mut() {
                    ch.export = "filter { bgp_path.prepend(65099); accept; }".into();
                }
            }
            if llgr {
                peer.extra = "graceful restart on;\n  graceful restart time 3;\n  \
                              long lived graceful restart on;\n  long lived stale time 10;"
                    .into();
            }
            c.peers.push(peer);
            c
        };
        let bird1 = Bird::start(
            lab,
            &b1,
            "bird1",
            &bird_cfg([10, 255, 0, 1], &[BOTH, ONLY1], false, true),
        )?;
        let _bird2 = Bird::start(
            lab,
            &b2,
            "bird2",
            &bird_cfg([10, 255, 0, 3], &[BOTH], true, false),
        )?;
        let mut cv = Via6Config::new(topo::VIA6_ID, VIA6_AS);
        cv.originate_v4 = vec![topo::VIA6_V4.into()];
        for (ll, dev) in [(BIRD_LL, "eth0"), (BIRD2_LL, "eth1")] {
            let mut n = Via6Neighbor::open(&format!("{ll}%{dev}"), BIRD_AS);
            n.extra.push("long-lived-stale-time: 3600".into());
            cv.neighbors.push(n);
        }
        let via6 = Via6d::start(lab, &v, "via6d", &cv)?;
        lab.wait_until(T, "both prefixes via BIRD 1", || {
            Ok(
                kernel_route_has(lab, &v, BOTH, &["via inet6 fe80::1 dev eth0"])?
                    && kernel_route_has(lab, &v, ONLY1, &["via inet6 fe80::1 dev eth0"])?,
            )
        })?;
        let n = interop::check::via6_neighbor(&via6, &format!("{BIRD_LL}%eth0"))?;
        if !n
            .to_string()
            .contains("\"long_lived\":[\"ipv4-unicast 10s\"")
        {
            return Err(Error::Check(format!("long-lived GR not negotiated: {n}")));
        }
        let route = |prefix: &str, gw: &str| -> Result<Option<(bool, bool, bool)>> {
            let v = via6.ctl_json(&["routes", "--all"])?;
            Ok(json_entries(&v, prefix)
                .into_iter()
                .find(|r| r["next_hop_link_local"] == gw)
                .map(|r| {
                    (
                        r["best"] == true,
                        r["stale"] == true,
                        r["long_lived_stale"] == true,
                    )
                }))
        };
        let t0 = Instant::now();
        lab.kill(&bird1.daemon)?;
        lab.wait_until(T, "BIRD 1's path stale, still best", || {
            Ok(route(BOTH, "fe80::1")? == Some((true, true, false)))
        })?;
        if t0.elapsed() >= Duration::from_secs(3) {
            return Err(Error::Check("too slow to see the plain stale phase".into()));
        }
        lab.wait_until(
            Duration::from_secs(9),
            "long-lived stale: BIRD 2's path wins",
            || {
                let (both, only1) = (route(BOTH, "fe80::1")?, route(ONLY1, "fe80::1")?);
                if both == Some((false, true, true)) && only1 == Some((true, true, true)) {
                    return kernel_route_has(lab, &v, BOTH, &["via inet6 fe80::3 dev eth1"]);
                }
                Err(Error::Check(format!(
                "(best, stale, long-lived) of BIRD 1's paths: {BOTH} {both:?}, {ONLY1} {only1:?}"
            )))
            },
        )?;
        let switched = t0.elapsed();
        lab.wait_until(
            T,
            "long-lived stale time over: BIRD 1's lone prefix goes",
            || kernel_route_absent(lab, &v, ONLY1),
        )?;
        let gone = t0.elapsed();
        eprintln!(
            "g6: BIRD 2's path took over {:.1} s after the kill, BIRD 1's lone prefix left after {:.1} s",
            switched.as_secs_f64(),
            gone.as_secs_f64()
        );
        if switched < Duration::from_millis(2500) || gone < Duration::from_secs(12) {
            return Err(Error::Check(format!("too early: {switched:?}, {gone:?}")));
        }
        if gone > Duration::from_secs(15) {
            return Err(Error::Check(format!("too late: {gone:?}")));
        }
        Ok(())
    });
}

/// FRR as the restarting peer (`bgp graceful-restart` with
/// `preserve-fw-state`, bgpd killed and started again): via6's kernel
/// keeps FRR's routes throughout
/// (no deletion seen), and a ping from via6's host to FRR's loses at most
/// 1% of what it sends.
#[test]
fn g7_frr_restarts_and_ipv4_keeps_flowing() {
    use interop::frr::{Frr, FrrConfig, FrrPeer};
    use interop::topo::{BIRD_LL as FRR_LL, VIA6_AS, VIA6_LL};
    use interop::{Via6Config, Via6Neighbor};
    const FRR_V4: &str = "10.1.0.0/24";
    const FRR_HOST: &str = "10.1.0.1";
    scenario("g7-frr-restart", |lab| {
        let fh = lab.add_host("frr")?;
        let vh = lab.add_host("via6")?;
        lab.link_ll(&fh, "eth0", FRR_LL, &vh, "eth0", VIA6_LL)?;
        lab.add_addr(&fh, "lo", &format!("{FRR_HOST}/32"))?;
        // The return path does not depend on FRR's own kernel routes.
        lab.ip(
            &fh,
            &[
                "route",
                "add",
                &format!("{VIA6_SRC}/32"),
                "via",
                "inet6",
                "fe80::2",
                "dev",
                "eth0",
            ],
        )?;
        let mut fc = FrrConfig::new(
            "10.255.0.1"
                .parse()
                .map_err(|_| Error::Check("id".into()))?,
            65001,
        );
        fc.networks_v4 = vec![FRR_V4.into()];
        fc.peers
            .push(FrrPeer::link_local(&VIA6_LL.to_string(), "eth0", VIA6_AS));
        fc.extra = " bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n \
                    bgp graceful-restart restart-time 30\n"
            .into();
        let mut frr = Frr::start(lab, &fh, "frr", &fc)?;
        let mut cv = Via6Config::new(topo::VIA6_ID, VIA6_AS);
        cv.source_address = Some(VIA6_SRC.parse().map_err(|_| Error::Check("addr".into()))?);
        cv.originate_v4 = vec![topo::VIA6_V4.into()];
        cv.neighbors
            .push(Via6Neighbor::open(&format!("{FRR_LL}%eth0"), 65001));
        let via6 = Via6d::start(lab, &vh, "via6d", &cv)?;
        lab.wait_until(T, "FRR's route in via6's kernel, ping across", || {
            Ok(
                kernel_route_has(lab, &vh, FRR_V4, &["via inet6 fe80::1 dev eth0"])?
                    && lab
                        .exec(
                            &vh,
                            &["ping", "-4", "-c", "1", "-W", "1", "-I", VIA6_SRC, FRR_HOST],
                        )
                        .is_ok(),
            )
        })?;
        let n = interop::check::via6_neighbor(&via6, &format!("{FRR_LL}%eth0"))?;
        if !n.to_string().contains("\"graceful_restart\":{") {
            return Err(Error::Check(format!(
                "graceful restart not negotiated: {n}"
            )));
        }
        let monitor = route_monitor(lab, &vh)?;
        let ping = Background::start(
            lab,
            &vh,
            "ping-frr",
            &["ping", "-4", "-i", "0.02", "-I", VIA6_SRC, FRR_HOST],
        )?;
        std::thread::sleep(Duration::from_secs(1));
        let t0 = Instant::now();
        lab.kill(&frr.bgpd)?;
        let key = format!("{FRR_LL}%eth0");
        lab.wait_until(T, "via6 keeps FRR's route, stale", || {
            let v = via6.ctl_json(&["routes", "--all"])?;
            Ok(json_entries(&v, FRR_V4)
                .into_iter()
                .any(|r| r["stale"] == true))
        })?;
        frr.restart_bgpd(lab)?;
        lab.wait_until(T, "session back, FRR's route fresh", || {
            let v = via6.ctl_json(&["routes", "--all"])?;
            Ok(via6_established(&via6, &key)?
                && json_entries(&v, FRR_V4)
                    .into_iter()
                    .any(|r| r["stale"] == false && r["best"] == true))
        })?;
        let window = t0.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        let out = ping.finish();
        let (sent, received) = ping_counts(&out)?;
        let lost = sent.saturating_sub(received);
        eprintln!(
            "g7: restart window {:.1} s, ping sent {sent}, received {received}, lost {lost}",
            window.as_secs_f64()
        );
        let d = deletions(&monitor.finish(), FRR_V4);
        if !d.is_empty() {
            return Err(Error::Check(format!(
                "FRR's route left via6's kernel: {d:?}"
            )));
        }
        if sent < 100 || lost * 100 > sent {
            return Err(Error::Check(format!("ping lost {lost} of {sent}:\n{out}")));
        }
        Ok(())
    });
}
