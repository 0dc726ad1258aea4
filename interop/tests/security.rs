//! Session security against BIRD 2.0.12: TCP MD5 signatures (RFC 2385)
//! and GTSM (RFC 5082), each proven both ways: the session comes up when
//! both sides agree, and stays down when they do not.

use std::time::Duration;

use interop::bird::Bird;
use interop::check::{kernel_route_has, via6_established};
use interop::topo::{self, default_bird, default_via6, BIRD_LL, PEER, T, VIA6_LL};
use interop::via6::Via6d;
use interop::wait::holds_for;
use interop::{scenario, Result};

/// Both sides up to the point of the session, which must NOT come up.
fn must_stay_down(
    lab: &interop::lab::Lab,
    bird_extra: &str,
    via6_extra: &[&str],
    why: &str,
) -> Result<()> {
    let bh = lab.add_host("bird")?;
    let vh = lab.add_host("via6")?;
    lab.link_ll(&bh, "eth0", BIRD_LL, &vh, "eth0", VIA6_LL)?;
    let mut b = default_bird();
    b.peers[0].extra = bird_extra.into();
    let mut v = default_via6();
    v.neighbors[0].extra = via6_extra.iter().map(|s| s.to_string()).collect();
    let bird = Bird::start(lab, &bh, "bird", &b)?;
    let via6 = Via6d::start(lab, &vh, "via6d", &v)?;
    let addr = format!("{BIRD_LL}%eth0");
    holds_for(Duration::from_secs(8), why, || {
        Ok(!bird.established(PEER)? && !via6_established(&via6, &addr).unwrap_or(false))
    })
}

/// Scenario 15: the same MD5 key on both sides: Established, routes flow.
#[test]
fn s15_md5_signed_session_with_bird() {
    scenario("s15-md5", |lab| {
        let mut b = default_bird();
        b.peers[0].extra = "password \"v6-md5-key\";".into();
        let mut v = default_via6();
        v.neighbors[0].extra = vec!["password: \"v6-md5-key\"".into()];
        let p = topo::pair(lab, &b, &v)?;
        lab.wait_until(
            T,
            "via6 kernel: BIRD's route over the signed session",
            || kernel_route_has(lab, &p.via6_host, topo::BIRD_V4, &["via inet6 fe80::1"]),
        )?;
        // The key never shows in via6ctl output.
        let shown = p.via6.ctl(&["--json", "neighbors"])? + &p.via6.ctl(&["neighbors"])?;
        if shown.contains("v6-md5-key") {
            return Err(interop::Error::Check("via6ctl shows the MD5 key".into()));
        }
        Ok(())
    });
}

/// Scenario 15b: different keys: the kernel drops the segments, no session.
#[test]
fn s15b_md5_key_mismatch_keeps_the_session_down() {
    scenario("s15b-md5-mismatch", |lab| {
        must_stay_down(
            lab,
            "password \"bird-key\";",
            &["password: \"other-key\""],
            "no session with mismatched MD5 keys",
        )
    });
}

/// Scenario 16: GTSM on both sides (BIRD `ttl security on`): Established.
#[test]
fn s16_gtsm_session_with_bird() {
    scenario("s16-gtsm", |lab| {
        let mut b = default_bird();
        b.peers[0].extra = "ttl security on;".into();
        let mut v = default_via6();
        v.neighbors[0].extra = vec!["ttl-security: true".into()];
        let p = topo::pair(lab, &b, &v)?;
        lab.wait_until(T, "via6 kernel: BIRD's route over the GTSM session", || {
            kernel_route_has(lab, &p.via6_host, topo::BIRD_V4, &["via inet6 fe80::1"])
        })
    });
}

/// Scenario 16b: via6 requires GTSM, BIRD sends with its default TTL of 1
/// for a direct eBGP peer: via6 never sees BIRD's segments.
#[test]
fn s16b_gtsm_drops_a_peer_that_does_not_use_it() {
    scenario("s16b-gtsm-mismatch", |lab| {
        must_stay_down(
            lab,
            "",
            &["ttl-security: true"],
            "no session when only via6 runs GTSM",
        )
    });
}
