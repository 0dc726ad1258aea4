//! Session security against BIRD 2: TCP MD5 signatures (RFC 2385) and
//! GTSM (RFC 5082). Each "stays down" case shows on the wire, from
//! captures in both namespaces, that it is via6's side that refuses, and
//! each has a twin that comes up when via6's setting agrees. A crashed or
//! silent via6d fails these scenarios: an error from `via6ctl` is never
//! read as "session down".

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use interop::bird::Bird;
use interop::capture::{summary, Capture};
use interop::check::{kernel_route_has, via6_state};
use interop::lab::Lab;
use interop::pcap::Segment;
use interop::topo::{self, default_bird, default_via6, BIRD_LL, PEER, T, VIA6_LL};
use interop::via6::Via6d;
use interop::wait::holds_for;
use interop::{scenario, BirdConfig, Error, Host, Result, Via6Config};

/// How long a refused session must stay down after both sides have been
/// seen trying: BIRD retries every 2 s (`connect retry time 2`), so 8 s
/// covers several attempts from it and via6's first ones.
const STAY_DOWN: Duration = Duration::from_secs(8);

/// One BIRD and one via6d on a link, with a capture on each end.
struct Sides {
    via6_host: Host,
    bird: Bird,
    via6: Via6d,
    /// Capture on BIRD's `eth0` and on via6's `eth0`.
    at_bird: Capture,
    at_via6: Capture,
    /// via6's name for BIRD, `fe80::1%eth0`.
    addr: String,
}

/// Builds the link, starts both captures, then both daemons; does not wait
/// for the session.
fn sides(lab: &Lab, b: &BirdConfig, v: &Via6Config) -> Result<Sides> {
    let bird_host = lab.add_host("bird")?;
    let via6_host = lab.add_host("via6")?;
    lab.link_ll(&bird_host, "eth0", BIRD_LL, &via6_host, "eth0", VIA6_LL)?;
    let filter = ["tcp", "port", "179"];
    let at_bird = Capture::start(lab, &bird_host, "eth0", &filter)?;
    let at_via6 = Capture::start(lab, &via6_host, "eth0", &filter)?;
    let bird = Bird::start(lab, &bird_host, "bird", b)?;
    let via6 = Via6d::start(lab, &via6_host, "via6d", v)?;
    Ok(Sides {
        via6_host,
        bird,
        via6,
        at_bird,
        at_via6,
        addr: format!("{BIRD_LL}%eth0"),
    })
}

/// via6's session is Established; a via6d that exited or does not answer
/// is an error.
fn via6_up(lab: &Lab, s: &Sides) -> Result<bool> {
    if !lab.is_running(&s.via6.daemon) {
        return Err(Error::Check("via6d is not running".into()));
    }
    Ok(via6_state(&s.via6, &s.addr)? == "Established")
}

fn both_up(lab: &Lab, s: &Sides) -> Result<bool> {
    let bird = s.bird.bgp_state(PEER)?;
    if bird == "Established" && via6_up(lab, s)? {
        return Ok(true);
    }
    Err(Error::Check(format!(
        "BIRD {bird}, via6 {}",
        via6_state(&s.via6, &s.addr)?
    )))
}

/// Neither side reaches Established for [`STAY_DOWN`].
fn stays_down(lab: &Lab, s: &Sides, why: &str) -> Result<()> {
    holds_for(STAY_DOWN, why, || {
        Ok(!s.bird.established(PEER)? && !via6_up(lab, s)?)
    })
}

fn ll(a: Ipv6Addr) -> IpAddr {
    IpAddr::V6(a)
}

/// Connection requests (SYN, no ACK) from `from` to port 179 of `to`.
fn syns(segs: &[Segment], from: Ipv6Addr, to: Ipv6Addr) -> Vec<Segment> {
    segs.iter()
        .filter(|x| x.src == ll(from) && x.dst == ll(to) && x.dport == 179 && x.is_syn())
        .cloned()
        .collect()
}

/// Answers (SYN+ACK) sent by `from`.
fn syn_acks(segs: &[Segment], from: Ipv6Addr) -> Vec<Segment> {
    segs.iter()
        .filter(|x| x.src == ll(from) && x.is_syn_ack())
        .cloned()
        .collect()
}

/// Waits until each capture holds SYNs of both sides: every attempt
/// crossed the link, so what keeps the session down is a host, not the
/// wire. Returns the segments seen at via6's end.
fn syns_cross_both_ways(lab: &Lab, s: &Sides) -> Result<Vec<Segment>> {
    lab.wait_until(T, "SYNs of BIRD and of via6 in both captures", || {
        let (b, v) = (s.at_bird.segments()?, s.at_via6.segments()?);
        for (at, segs) in [("BIRD", &b), ("via6", &v)] {
            if syns(segs, BIRD_LL, VIA6_LL).is_empty() || syns(segs, VIA6_LL, BIRD_LL).is_empty() {
                return Err(Error::Check(format!(
                    "BIRD's session {}; capture at {at}'s end: {}",
                    s.bird.bgp_state(PEER)?,
                    summary(segs)
                )));
            }
        }
        Ok(true)
    })?;
    s.at_via6.segments()
}

fn check(ok: bool, what: &str, segs: &[Segment]) -> Result<()> {
    if ok {
        return Ok(());
    }
    Err(Error::Check(format!("{what}: {}", summary(segs))))
}

fn md5_bird(key: Option<&str>) -> BirdConfig {
    let mut b = default_bird();
    if let Some(k) = key {
        b.peers[0].extra = format!("password \"{k}\";");
    }
    b
}

fn md5_via6(key: Option<&str>) -> Via6Config {
    let mut v = default_via6();
    if let Some(k) = key {
        v.neighbors[0].extra = vec![format!("password: \"{k}\"")];
    }
    v
}

/// Scenario 15: the same MD5 key on both sides: Established, routes flow,
/// every segment of the session is signed both ways, and `via6ctl` never
/// shows the key.
#[test]
fn s15_md5_signed_session_with_bird() {
    scenario("s15-md5", |lab| {
        let s = sides(
            lab,
            &md5_bird(Some("v6-md5-key")),
            &md5_via6(Some("v6-md5-key")),
        )?;
        lab.wait_until(T, "BIRD and via6 Established over MD5", || both_up(lab, &s))?;
        lab.wait_until(
            T,
            "via6 kernel: BIRD's route over the signed session",
            || kernel_route_has(lab, &s.via6_host, topo::BIRD_V4, &["via inet6 fe80::1"]),
        )?;
        lab.wait_until(T, "via6's capture: segments of both sides", || {
            let segs = s.at_via6.segments()?;
            let from = |a| segs.iter().any(|x| x.src == ll(a));
            check(from(VIA6_LL) && from(BIRD_LL), "segments both ways", &segs).map(|()| true)
        })?;
        let bgp = s.at_via6.segments()?;
        check(
            bgp.iter().all(|x| x.md5),
            "every BGP segment both ways carries an MD5 signature",
            &bgp,
        )?;
        let shown = s.via6.ctl(&["--json", "neighbors"])? + &s.via6.ctl(&["neighbors"])?;
        if shown.contains("v6-md5-key") {
            return Err(Error::Check("via6ctl shows the MD5 key".into()));
        }
        Ok(())
    });
}

/// Scenario 15b: different keys. Both sides' SYNs cross the link, signed
/// (via6 does sign with its key), and no host answers one: each kernel
/// drops a segment whose signature does not verify (RFC 2385 §2.0).
#[test]
fn s15b_md5_key_mismatch_keeps_the_session_down() {
    scenario("s15b-md5-mismatch", |lab| {
        let s = sides(
            lab,
            &md5_bird(Some("bird-key")),
            &md5_via6(Some("other-key")),
        )?;
        syns_cross_both_ways(lab, &s)?;
        stays_down(lab, &s, "no session with mismatched MD5 keys")?;
        let (b, v) = (s.at_bird.segments()?, s.at_via6.segments()?);
        let via6_syns = syns(&v, VIA6_LL, BIRD_LL);
        check(
            via6_syns.iter().all(|x| x.md5),
            "via6's SYNs are signed",
            &via6_syns,
        )?;
        check(
            syn_acks(&v, VIA6_LL).is_empty() && syn_acks(&b, BIRD_LL).is_empty(),
            "neither host answers a SYN signed with the other key",
            &v,
        )
    });
}

/// Scenario 15c: only via6 holds a key. BIRD's unsigned SYNs reach via6's
/// namespace and via6's side never answers them (its listener holds a key
/// for BIRD, so the kernel drops an unsigned SYN, RFC 2385 §2.0): the
/// session stays down because of via6's setting. With the key removed
/// from via6 the same BIRD comes up.
#[test]
fn s15c_md5_only_via6_has_a_key() {
    scenario("s15c-md5-only-via6", |lab| {
        let s = sides(lab, &md5_bird(None), &md5_via6(Some("only-via6")))?;
        syns_cross_both_ways(lab, &s)?;
        stays_down(lab, &s, "no session when only via6 has a key")?;
        let v = s.at_via6.segments()?;
        let bird_syns = syns(&v, BIRD_LL, VIA6_LL);
        check(
            !bird_syns.is_empty() && bird_syns.iter().all(|x| !x.md5),
            "BIRD's unsigned SYNs arrive in via6's namespace",
            &bird_syns,
        )?;
        check(
            syn_acks(&v, VIA6_LL).is_empty(),
            "via6's side answers none of BIRD's unsigned SYNs",
            &v,
        )?;
        let via6_syns = syns(&v, VIA6_LL, BIRD_LL);
        check(
            via6_syns.iter().all(|x| x.md5),
            "via6's SYNs are signed",
            &via6_syns,
        )?;
        // The twin: via6 without the key, BIRD unchanged.
        lab.stop(&s.via6.daemon, libc::SIGTERM)?;
        let via6 = Via6d::start(lab, &s.via6_host, "via6d", &md5_via6(None))?;
        let s = Sides { via6, ..s };
        lab.wait_until(T, "without via6's key: Established", || both_up(lab, &s))?;
        Ok(())
    });
}

/// Scenario 16: GTSM on both sides (BIRD `ttl security on`): Established,
/// routes flow, and each side's segments arrive with hop limit 255.
#[test]
fn s16_gtsm_session_with_bird() {
    scenario("s16-gtsm", |lab| {
        let mut b = default_bird();
        b.peers[0].extra = "ttl security on;".into();
        let mut v = default_via6();
        v.neighbors[0].extra = vec!["ttl-security: true".into()];
        let s = sides(lab, &b, &v)?;
        lab.wait_until(T, "BIRD and via6 Established with GTSM", || {
            both_up(lab, &s)
        })?;
        lab.wait_until(T, "via6 kernel: BIRD's route over the GTSM session", || {
            kernel_route_has(lab, &s.via6_host, topo::BIRD_V4, &["via inet6 fe80::1"])
        })?;
        let from_via6 = || -> Result<Vec<Segment>> {
            let segs = s.at_bird.segments()?;
            Ok(segs.into_iter().filter(|x| x.src == ll(VIA6_LL)).collect())
        };
        lab.wait_until(T, "BIRD's capture: via6's segments", || {
            Ok(!from_via6()?.is_empty())
        })?;
        let from_via6 = from_via6()?;
        check(
            from_via6.iter().all(|x| x.hop_limit == 255),
            "via6's segments reach BIRD with hop limit 255 (RFC 5082 §3)",
            &from_via6,
        )
    });
}

/// Scenario 16b: via6 requires GTSM, BIRD does not use it and sends to a
/// direct eBGP peer with hop limit 1. BIRD's segments reach via6's
/// namespace with that hop limit and no session forms; the same BIRD with
/// via6's `ttl-security` off comes up, so it is via6's setting that
/// keeps BIRD out.
#[test]
fn s16b_gtsm_drops_a_peer_that_does_not_use_it() {
    scenario("s16b-gtsm-mismatch", |lab| {
        let mut v = default_via6();
        v.neighbors[0].extra = vec!["ttl-security: true".into()];
        let s = sides(lab, &default_bird(), &v)?;
        lab.wait_until(T, "BIRD's segments reach via6 with hop limit < 254", || {
            let segs = s.at_via6.segments()?;
            let low = segs.iter().any(|x| {
                x.src == ll(BIRD_LL) && x.flags & interop::pcap::SYN != 0 && x.hop_limit < 254
            });
            check(
                low,
                "a SYN or SYN+ACK of BIRD's with hop limit < 254",
                &segs,
            )
            .map(|()| true)
        })?;
        stays_down(lab, &s, "no session when only via6 runs GTSM")?;
        lab.stop(&s.via6.daemon, libc::SIGTERM)?;
        let via6 = Via6d::start(lab, &s.via6_host, "via6d", &default_via6())?;
        let s = Sides { via6, ..s };
        lab.wait_until(T, "via6 without GTSM: Established", || both_up(lab, &s))?;
        Ok(())
    });
}

/// BIRD two hops from via6: `bird -- r -- via6` with global addresses on
/// both links and static routes across the router `r`.
struct TwoHops {
    bird_host: Host,
    via6_host: Host,
    /// Capture on via6's `eth0`, facing the router.
    at_via6: Capture,
}

const BIRD_GLOBAL: &str = "2001:db8:f1::1";
const VIA6_GLOBAL: &str = "2001:db8:f2::2";

fn two_hops(lab: &Lab) -> Result<TwoHops> {
    let bird_host = lab.add_host("bird")?;
    let r = lab.add_host("r")?;
    let via6_host = lab.add_host("via6")?;
    lab.link(&bird_host, "eth0", &r, "eth0")?;
    lab.link(&r, "eth1", &via6_host, "eth0")?;
    lab.add_addr(&bird_host, "eth0", &format!("{BIRD_GLOBAL}/64"))?;
    lab.add_addr(&r, "eth0", "2001:db8:f1::2/64")?;
    lab.add_addr(&r, "eth1", "2001:db8:f2::1/64")?;
    lab.add_addr(&via6_host, "eth0", &format!("{VIA6_GLOBAL}/64"))?;
    lab.ip(
        &bird_host,
        &[
            "-6",
            "route",
            "add",
            "2001:db8:f2::/64",
            "via",
            "2001:db8:f1::2",
        ],
    )?;
    lab.ip(
        &via6_host,
        &[
            "-6",
            "route",
            "add",
            "2001:db8:f1::/64",
            "via",
            "2001:db8:f2::1",
        ],
    )?;
    let at_via6 = Capture::start(lab, &via6_host, "eth0", &["tcp", "port", "179"])?;
    Ok(TwoHops {
        bird_host,
        via6_host,
        at_via6,
    })
}

/// A multi-hop BIRD session to via6's global address (IPv6 only: the
/// point is the session, not the next hop), `ttl security` as asked.
fn multihop_bird(gtsm: bool) -> BirdConfig {
    let mut b = default_bird();
    let p = &mut b.peers[0];
    p.neighbor = VIA6_GLOBAL.into();
    p.interface = None;
    p.ipv4 = None;
    p.extra = format!(
        "multihop 2;\n  source address {BIRD_GLOBAL};\n  ttl security {};",
        if gtsm { "on" } else { "off" }
    );
    b
}

fn multihop_via6(gtsm: bool) -> Via6Config {
    let mut v = default_via6();
    v.neighbors[0].address = BIRD_GLOBAL.into();
    v.neighbors[0].extra = vec![format!("ttl-security: {gtsm}")];
    v
}

/// Both sides Established; a via6d that exited or does not answer fails.
fn up_by_address(lab: &Lab, bird: &Bird, via6: &Via6d) -> Result<bool> {
    if !lab.is_running(&via6.daemon) {
        return Err(Error::Check("via6d is not running".into()));
    }
    let (b, v) = (bird.bgp_state(PEER)?, via6_state(via6, BIRD_GLOBAL)?);
    if b == "Established" && v == "Established" {
        return Ok(true);
    }
    Err(Error::Check(format!("BIRD {b}, via6 {v}")))
}

/// Waits until a BGP message of BIRD's (a segment with payload) reached
/// via6's `eth0` with hop limit `want`. Only messages count: BIRD's
/// SYN+ACK was seen arriving with 254 even with `ttl security off`; what
/// follows on the connection carries the configured hop limit.
fn bird_hop_limit(lab: &Lab, t: &TwoHops, want: u8) -> Result<()> {
    let bird: IpAddr = BIRD_GLOBAL
        .parse()
        .map_err(|e| Error::Check(format!("{BIRD_GLOBAL}: {e}")))?;
    lab.wait_until(
        T,
        &format!("BIRD's segments reach via6 with hop limit {want}"),
        || {
            let segs: Vec<Segment> = t.at_via6.segments()?;
            let from: Vec<Segment> = segs.into_iter().filter(|x| x.src == bird).collect();
            check(
                from.iter()
                    .any(|x| !x.payload.is_empty() && x.hop_limit == want),
                "BIRD's segments at via6",
                &from,
            )
            .map(|()| true)
        },
    )
}

/// Scenario 16c: a peer two hops away. BIRD without GTSM (`multihop 2`,
/// so its segments arrive with hop limit 1) and via6 with
/// `ttl-security: true` (accepts 254 or more, RFC 5082 §3): no session.
/// The same BIRD with via6's GTSM off: Established, so via6's setting was
/// what kept it out. BIRD with `ttl security on` (sends 255, arrives 254)
/// and via6's GTSM on: Established, the hops fit.
#[test]
fn s16c_gtsm_multihop_peer_out_unless_hops_fit() {
    scenario("s16c-gtsm-multihop", |lab| {
        let t = two_hops(lab)?;
        let mut bird = Bird::start(lab, &t.bird_host, "bird", &multihop_bird(false))?;
        let mut via6 = Via6d::start(lab, &t.via6_host, "via6d", &multihop_via6(true))?;
        bird_hop_limit(lab, &t, 1)?;
        holds_for(STAY_DOWN, "multi-hop peer without GTSM stays out", || {
            // A dead or silent via6d is a failure, not a session that is down.
            if !lab.is_running(&via6.daemon) {
                return Err(Error::Check("via6d is not running".into()));
            }
            let v = via6_state(&via6, BIRD_GLOBAL)?;
            Ok(!bird.established(PEER)? && v != "Established")
        })?;

        lab.stop(&via6.daemon, libc::SIGTERM)?;
        via6 = Via6d::start(lab, &t.via6_host, "via6d", &multihop_via6(false))?;
        lab.wait_until(T, "via6 without GTSM: multi-hop session up", || {
            up_by_address(lab, &bird, &via6)
        })?;

        lab.stop(&bird.daemon, libc::SIGTERM)?;
        lab.stop(&via6.daemon, libc::SIGTERM)?;
        bird = Bird::start(lab, &t.bird_host, "bird", &multihop_bird(true))?;
        via6 = Via6d::start(lab, &t.via6_host, "via6d", &multihop_via6(true))?;
        lab.wait_until(T, "GTSM both sides, one router between: up", || {
            up_by_address(lab, &bird, &via6)
        })?;
        // Only segments of the last pair of daemons count from here: the
        // newest connection's segments all arrive with 254.
        let bird_ip: IpAddr = BIRD_GLOBAL
            .parse()
            .map_err(|e| Error::Check(format!("{BIRD_GLOBAL}: {e}")))?;
        let segs = t.at_via6.segments()?;
        let last = segs
            .iter()
            .rfind(|x| x.src == bird_ip)
            .ok_or_else(|| Error::Check("no segment of BIRD's captured".into()))?;
        check(
            last.hop_limit == 254,
            "BIRD's latest segment arrives with 254",
            &segs,
        )
    });
}
