//! Routes that must leave and come back (scenarios 5, 6 and 12): BIRD
//! withdraws, BIRD dies and returns, via6's link flaps. Each checks
//! via6's RIB and the kernel, both ways.

use interop::check::{
    bird_established, kernel_route_absent, kernel_route_has, via6_established, via6_fib_count,
    via6_has, via6_lacks, via6_state,
};
use interop::topo::{self, default_bird, default_via6, NH_LL1, PEER, T};
use interop::{scenario, Bird, Lab, Pair};
use std::time::Duration;

/// How soon via6 must drop a session whose interface went down. The hold
/// time is 9 s (`Via6Neighbor::open`) and BIRD sends a KEEPALIVE every
/// 3 s, so a hold timer would expire 6 to 9 s after the link went down;
/// 5 s is under that, so passing shows via6 reacted to the link itself
/// (about 1 s measured), with 4 s of room for a loaded 2-core machine.
const LINK_REACT: Duration = Duration::from_secs(5);

/// BIRD's routes are in via6's RIB, FIB view and kernel, and packets
/// cross both ways over them.
fn routes_in(lab: &Lab, p: &Pair) -> interop::Result<()> {
    routes_in_control_plane(lab, p)?;
    topo::pings_cross(lab, p)
}

fn routes_in_control_plane(lab: &Lab, p: &Pair) -> interop::Result<()> {
    lab.wait_until(
        T,
        "via6 RIB and kernel: 10.1.0.0/24 via inet6 fe80::1",
        || {
            Ok(via6_has(&p.via6, "routes", topo::BIRD_V4, &[NH_LL1])?
                && via6_has(&p.via6, "routes", topo::BIRD_V6, &[NH_LL1])?
                && via6_fib_count(&p.via6, 2)?
                && kernel_route_has(
                    lab,
                    &p.via6_host,
                    topo::BIRD_V4,
                    &["via inet6 fe80::1 dev eth0", "proto bgp"],
                )?
                && kernel_route_has(
                    lab,
                    &p.via6_host,
                    topo::BIRD_V6,
                    &["via fe80::1 dev eth0", "proto bgp"],
                )?)
        },
    )
}

fn routes_out(lab: &Lab, p: &Pair, why: &str) -> interop::Result<()> {
    routes_out_within(lab, p, why, T)
}

/// BIRD's routes leave via6's own RIB (both families) and its FIB view
/// (`installed` 0, nothing `failed`), and the kernel, within `budget`.
fn routes_out_within(lab: &Lab, p: &Pair, why: &str, budget: Duration) -> interop::Result<()> {
    lab.wait_until(
        budget,
        &format!("{why}: BIRD's routes gone from via6's RIB, FIB and kernel"),
        || {
            Ok(via6_lacks(&p.via6, "routes", topo::BIRD_V4)?
                && via6_lacks(&p.via6, "routes", topo::BIRD_V6)?
                && via6_fib_count(&p.via6, 0)?
                && kernel_route_absent(lab, &p.via6_host, topo::BIRD_V4)?
                && kernel_route_absent(lab, &p.via6_host, topo::BIRD_V6)?)
        },
    )
}

/// Scenario 5: BIRD withdraws (static protocol disabled): the routes
/// leave via6's RIB and the kernel; enabled again, they return.
#[test]
fn s05_withdraw_by_bird() {
    scenario("s05-withdraw", |lab| {
        let p = topo::pair_with(lab, &default_bird(), &default_via6(), topo::host_addresses)?;
        routes_in(lab, &p)?;
        p.bird.birdc("disable static4")?;
        p.bird.birdc("disable static6")?;
        routes_out(lab, &p, "static protocols disabled")?;
        // The session stays up through a withdraw.
        if !(bird_established(&p.bird, PEER)? && via6_established(&p.via6, &p.bird_addr())?) {
            return Err(interop::Error::Check("session dropped on withdraw".into()));
        }
        p.bird.birdc("enable static4")?;
        p.bird.birdc("enable static6")?;
        routes_in(lab, &p)
    });
}

/// Scenario 6: BIRD killed with SIGKILL (TCP reset or hold timer): every
/// route from it leaves the kernel; BIRD started again: they return.
#[test]
fn s06_bird_killed_and_back() {
    scenario("s06-bird-killed", |lab| {
        let cfg = default_bird();
        let p = topo::pair_with(lab, &cfg, &default_via6(), topo::host_addresses)?;
        routes_in(lab, &p)?;
        lab.kill(&p.bird.daemon)?;
        routes_out(lab, &p, "BIRD killed")?;
        let bird = Bird::start(lab, &p.bird_host, "bird", &cfg)?;
        let p = Pair { bird, ..p };
        lab.wait_until(T, "session back", || {
            Ok(bird_established(&p.bird, PEER)? && via6_established(&p.via6, &p.bird_addr())?)
        })?;
        routes_in(lab, &p)
    });
}

/// Scenario 6, hold-timer variant: BIRD frozen (SIGSTOP) keeps its TCP
/// connection open but silent; via6's hold timer (9 s, RFC 4271 §6.5) ends
/// the session and the routes leave; BIRD resumed: they return.
#[test]
fn s06_bird_frozen_hold_timer_expires() {
    scenario("s06-bird-frozen", |lab| {
        let p = topo::pair_with(lab, &default_bird(), &default_via6(), topo::host_addresses)?;
        routes_in(lab, &p)?;
        lab.signal(&p.bird.daemon, libc::SIGSTOP)?;
        let frozen = lab.wait_until(T, "via6's hold timer ends the session", || {
            let n = interop::check::via6_neighbor(&p.via6, &p.bird_addr())?;
            Ok(!n.to_string().contains("\"Established\""))
        });
        let out = frozen.and_then(|()| routes_out(lab, &p, "BIRD frozen"));
        // Resume BIRD whatever happened, so teardown and evidence work.
        lab.signal(&p.bird.daemon, libc::SIGCONT)?;
        out?;
        lab.wait_until(T, "session back after SIGCONT", || {
            Ok(bird_established(&p.bird, PEER)? && via6_established(&p.via6, &p.bird_addr())?)
        })?;
        routes_in(lab, &p)
    });
}

/// Scenario 12: via6's interface goes down: routes through it leave via6's
/// RIB and FIB view, not only the kernel (which drops routes over a downed
/// interface by itself); back up: the session returns and so do the routes.
#[test]
fn s12_link_flap() {
    scenario("s12-link-flap", |lab| {
        let p = topo::pair_with(lab, &default_bird(), &default_via6(), topo::host_addresses)?;
        routes_in(lab, &p)?;
        let t0 = std::time::Instant::now();
        lab.set_link_end(&p.link.b, false)?;
        lab.wait_until(
            LINK_REACT,
            "via6's own view: session with BIRD down",
            || {
                let st = via6_state(&p.via6, &p.bird_addr())?;
                Ok(st != "Established")
            },
        )?;
        let down = t0.elapsed();
        routes_out_within(lab, &p, "via6's eth0 down", LINK_REACT)?;
        eprintln!(
            "s12: session down after {} ms, routes out of RIB, FIB and kernel after {} ms",
            down.as_millis(),
            t0.elapsed().as_millis()
        );
        lab.set_link_end(&p.link.b, true)?;
        lab.wait_until(T, "session back after link up", || {
            Ok(bird_established(&p.bird, PEER)? && via6_established(&p.via6, &p.bird_addr())?)
        })?;
        routes_in(lab, &p)
    });
}
