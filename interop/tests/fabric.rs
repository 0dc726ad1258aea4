//! A simulated Clos fabric (scenarios C1 and C2 of the interop matrix):
//! 2 spines, 4 leaves, link-local-only links. Every leaf reaches every
//! other leaf's IPv4 subnet and loopback with ECMP over both spines
//! (`via inet6` next hops on `swp1` and `swp2`), `ping -4` crosses, a
//! spine failure converges to one path and its return restores ECMP.
//! Convergence times are printed (`cargo test -p interop --test fabric
//! -- --nocapture`) and bounded.

use std::time::{Duration, Instant};

use interop::fabric::{
    self, fill, leaf_via6_config, leaves_route_via, ping, socket_for, spine_via6_config,
    start_via6d_yaml, time_until, Fabric, LeafPlan, LEAF_TEMPLATE, SPINE_AS, SPINE_LL,
    SPINE_TEMPLATE,
};
use interop::frr::{Frr, FrrConfig, FrrNeighbor, FrrPeer, FrrRemoteAs};
use interop::lab::DaemonKind;
use interop::{scenario, Bird, BirdConfig, BirdPeer, Error, Lab, Result, Via6d};

/// Budget for the whole fabric to come up.
const UP: Duration = Duration::from_secs(60);
/// A killed spine daemon closes its TCP sessions at once: the leaves must
/// drop its paths well within this.
const KILL_BOUND: Duration = Duration::from_secs(5);
/// Links taken down under a running daemon: up to a hold time (9 s) plus
/// the FIB's reaction.
const LINK_BOUND: Duration = Duration::from_secs(15);

const BOTH: &[&str] = &["swp1", "swp2"];

fn ping_all(lab: &Lab, f: &Fabric) -> Result<()> {
    for from in &f.leaves {
        for (to, _) in &f.leaves {
            if from.0.index != to.index {
                ping(lab, from, to)?;
            }
        }
    }
    Ok(())
}

fn report(what: &str, d: Duration) {
    eprintln!("fabric convergence: {what}: {} ms", d.as_millis());
}

fn bounded(what: &str, d: Duration, bound: Duration) -> Result<()> {
    report(what, d);
    if d > bound {
        return Err(Error::Check(format!(
            "{what} took {} ms, more than {} ms",
            d.as_millis(),
            bound.as_millis()
        )));
    }
    Ok(())
}

/// Spine failure by killing `spine`'s daemon (`kill`), then its return
/// (`revive`), then spine `other_n`'s links going down and up; each
/// step timed on every leaf's kernel.
fn failures<K, R>(lab: &Lab, f: &Fabric, label: &str, kill: K, revive: R) -> Result<()>
where
    K: FnOnce() -> Result<()>,
    R: FnOnce() -> Result<()>,
{
    let t0 = Instant::now();
    kill()?;
    let d = time_until(t0, UP, "leaves route via swp2 only", || {
        leaves_route_via(lab, f, &["swp2"])
    })?;
    bounded(
        &format!("{label}: spine s1 daemon killed -> one path"),
        d,
        KILL_BOUND,
    )?;
    ping_all(lab, f)?;

    let t0 = Instant::now();
    revive()?;
    let d = time_until(t0, UP, "ECMP over both spines again", || {
        leaves_route_via(lab, f, BOTH)
    })?;
    report(&format!("{label}: spine s1 back -> ECMP"), d);

    // Spine s2's links go down (its ports, admin down).
    let t0 = Instant::now();
    for end in f.spine_ports(2) {
        lab.set_link_end(&end, false)?;
    }
    let d = time_until(t0, UP, "leaves route via swp1 only", || {
        leaves_route_via(lab, f, &["swp1"])
    })?;
    bounded(
        &format!("{label}: spine s2 links down -> one path"),
        d,
        LINK_BOUND,
    )?;
    ping_all(lab, f)?;
    let t0 = Instant::now();
    for end in f.spine_ports(2) {
        lab.set_link_end(&end, true)?;
    }
    let d = time_until(t0, UP, "ECMP over both spines after links up", || {
        leaves_route_via(lab, f, BOTH)
    })?;
    report(&format!("{label}: spine s2 links up -> ECMP"), d);
    ping_all(lab, f)
}

/// Scenario C1: every node runs via6d; one leaf config, one spine config.
#[test]
fn c01_via6_clos_fabric_ecmp_and_spine_failure() {
    scenario("c01-fabric", |lab| {
        let f = Fabric::build(lab, 2, 4)?;
        let t0 = Instant::now();
        let mut spines = Vec::new();
        for (n, h) in (1..=2u8).zip(f.spines.iter()) {
            spines.push(Via6d::start(
                lab,
                h,
                &format!("via6d-s{n}"),
                &spine_via6_config(n, 4),
            )?);
        }
        for (plan, h) in &f.leaves {
            Via6d::start(
                lab,
                h,
                &format!("via6d-l{}", plan.index),
                &leaf_via6_config(plan, 2),
            )?;
        }
        lab.wait_until(UP, "every leaf: ECMP via swp1 and swp2", || {
            leaves_route_via(lab, &f, BOTH)
        })?;
        report("c01: start -> full ECMP", t0.elapsed());
        ping_all(lab, &f)?;
        let s1 = spines
            .first()
            .cloned()
            .ok_or(Error::Check("no spine".into()))?;
        let host = f
            .spines
            .first()
            .cloned()
            .ok_or(Error::Check("no spine".into()))?;
        failures(
            lab,
            &f,
            "c01",
            || lab.kill(&s1.daemon),
            || Via6d::start(lab, &host, "via6d-s1", &spine_via6_config(1, 4)).map(|_| ()),
        )
    });
}

/// The BIRD leaf of scenario C2: two sessions to the spines, its two
/// prefixes, and a kernel protocol that merges equal paths (ECMP).
///
/// With `radv`, BIRD also sends Router Advertisements on its ports
/// (router lifetime 0) so that unnumbered spines can find it: BIRD 2.0.12
/// itself cannot peer by interface, it names `fe80::1%swpN`.
fn bird_leaf(lab: &Lab, plan: &LeafPlan, host: &interop::Host, radv: bool) -> Result<Bird> {
    let mut c = BirdConfig::new(plan.loopback, plan.asn);
    c.static_v4 = plan.prefixes().to_vec();
    for n in 1..=2u8 {
        let mut p = BirdPeer::link_local(
            &format!("s{n}"),
            &SPINE_LL.to_string(),
            &fabric::port(n),
            SPINE_AS,
        );
        p.ipv6 = None;
        c.peers.push(p);
    }
    // `merge paths on` in the kernel protocol turns equal best routes into
    // one multipath kernel route; BirdConfig renders a fixed kernel block,
    // so the text is patched and BIRD started by hand.
    let text = c.render().replace(
        "protocol kernel kernel4 {\n  scan time 2;",
        "protocol kernel kernel4 {\n  scan time 2;\n  merge paths on;",
    );
    if !text.contains("merge paths on;") {
        return Err(Error::Check(format!("kernel4 block not found in\n{text}")));
    }
    let text = if radv {
        format!(
            "{text}protocol radv {{\n  interface \"swp*\" {{\n    min ra interval 3;\n    \
             max ra interval 10;\n    default lifetime 0;\n  }};\n}}\n"
        )
    } else {
        text
    };
    let conf = lab.dir().join("bird-l4.conf");
    std::fs::write(&conf, &text).map_err(|e| Error::io(format!("write {}", conf.display()), e))?;
    let conf_s = conf.to_string_lossy().into_owned();
    interop::exec::run_args(&["bird", "-p", "-c", &conf_s])?;
    let sock = lab.dir().join("bird-l4.ctl");
    let pid = lab.dir().join("bird-l4.pid");
    let sock_s = sock.to_string_lossy().into_owned();
    let pid_s = pid.to_string_lossy().into_owned();
    let daemon = lab.spawn_daemon(
        host,
        "bird-l4",
        DaemonKind::Bird,
        sock,
        &["bird", "-f", "-c", &conf_s, "-s", &sock_s, "-P", &pid_s],
    )?;
    let bird = Bird { daemon, conf };
    lab.wait_until(
        interop::wait::DAEMON_START,
        "BIRD l4 control socket",
        || {
            bird.birdc("show status")
                .map(|s| s.contains("Daemon is up"))
        },
    )?;
    Ok(bird)
}

/// FRR as spine 2: one `neighbor fe80::1I interface swpI remote-as
/// external` per leaf port.
fn frr_spine(lab: &Lab, host: &interop::Host) -> Result<Frr> {
    let mut c = FrrConfig::new(fabric::spine_id(2), SPINE_AS);
    for i in 1..=4u8 {
        c.peers.push(FrrPeer {
            neighbor: FrrNeighbor::Address {
                addr: fabric::leaf_ll(i).to_string(),
                interface: Some(fabric::port(i)),
            },
            remote_as: FrrRemoteAs::External,
            ipv6: false,
        });
    }
    Frr::start(lab, host, "frr-s2", &c)
}

/// Scenario C2: the same fabric with spine 2 replaced by FRR and leaf 4
/// by BIRD.
#[test]
fn c02_mixed_fabric_frr_spine_bird_leaf() {
    scenario("c02-fabric-mixed", |lab| {
        let f = Fabric::build(lab, 2, 4)?;
        let t0 = Instant::now();
        let s1_host = f
            .spines
            .first()
            .cloned()
            .ok_or(Error::Check("no spine".into()))?;
        let s2_host = f
            .spines
            .get(1)
            .cloned()
            .ok_or(Error::Check("no spine".into()))?;
        let s1 = Via6d::start(lab, &s1_host, "via6d-s1", &spine_via6_config(1, 4))?;
        let frr = frr_spine(lab, &s2_host)?;
        for (plan, h) in &f.leaves {
            if plan.index == 4 {
                bird_leaf(lab, plan, h, false)?;
            } else {
                Via6d::start(
                    lab,
                    h,
                    &format!("via6d-l{}", plan.index),
                    &leaf_via6_config(plan, 2),
                )?;
            }
        }
        let up = lab.wait_until(UP, "every leaf: ECMP via swp1 and swp2", || {
            leaves_route_via(lab, &f, BOTH)
        });
        up.map_err(|e| Error::Check(format!("{e}\n==== FRR ====\n{}", frr.evidence())))?;
        report("c02: start -> full ECMP", t0.elapsed());
        ping_all(lab, &f)?;
        failures(
            lab,
            &f,
            "c02",
            || lab.kill(&s1.daemon),
            || Via6d::start(lab, &s1_host, "via6d-s1", &spine_via6_config(1, 4)).map(|_| ()),
        )
        .map_err(|e| Error::Check(format!("{e}\n==== FRR ====\n{}", frr.evidence())))
    });
}

/// Starts spine `n` of the unnumbered fabric from [`SPINE_TEMPLATE`].
fn unnumbered_spine(lab: &Lab, f: &Fabric, n: u8) -> Result<Via6d> {
    let host = f
        .spines
        .get(usize::from(n - 1))
        .ok_or(Error::Check(format!("no spine {n}")))?;
    let name = format!("via6d-s{n}");
    let yaml = fill(SPINE_TEMPLATE, None, n, &socket_for(lab, &name));
    start_via6d_yaml(lab, host, &name, &yaml)
}

/// Scenario C3: the fabric with interface peering only: no address in
/// any config, `interface-pattern: "swp*"` and `remote-as: external`
/// everywhere; one leaf template ([`LEAF_TEMPLATE`]) and one spine
/// template ([`SPINE_TEMPLATE`]). Peers find each other by Router
/// Advertisements.
#[test]
fn c03_unnumbered_fabric_one_template() {
    scenario("c03-fabric-unnumbered", |lab| {
        let f = Fabric::build(lab, 2, 4)?;
        let t0 = Instant::now();
        let s1 = unnumbered_spine(lab, &f, 1)?;
        unnumbered_spine(lab, &f, 2)?;
        for (plan, h) in &f.leaves {
            let name = format!("via6d-l{}", plan.index);
            let yaml = fill(LEAF_TEMPLATE, Some(plan), 0, &socket_for(lab, &name));
            start_via6d_yaml(lab, h, &name, &yaml)?;
        }
        lab.wait_until(UP, "every leaf: ECMP via swp1 and swp2", || {
            leaves_route_via(lab, &f, BOTH)
        })?;
        report("c03: start -> full ECMP", t0.elapsed());
        ping_all(lab, &f)?;
        failures(
            lab,
            &f,
            "c03",
            || lab.kill(&s1.daemon),
            || unnumbered_spine(lab, &f, 1).map(|_| ()),
        )
    });
}

/// Scenario C4: the mixed fabric with interface peering: spine s1 is via6d
/// from [`SPINE_TEMPLATE`], spine s2 FRR with `neighbor swpI interface
/// remote-as external` on every port, leaves l1 to l3 via6d from
/// [`LEAF_TEMPLATE`], leaf l4 BIRD (address neighbours, Router
/// Advertisements from its `radv` protocol).
#[test]
fn c04_unnumbered_mixed_fabric_frr_spine_bird_leaf() {
    scenario("c04-fabric-unnumbered-mixed", |lab| {
        let f = Fabric::build(lab, 2, 4)?;
        let t0 = Instant::now();
        let s1 = unnumbered_spine(lab, &f, 1)?;
        let s2_host = f
            .spines
            .get(1)
            .cloned()
            .ok_or(Error::Check("no spine".into()))?;
        let mut c = FrrConfig::new(fabric::spine_id(2), SPINE_AS);
        for i in 1..=4u8 {
            c.peers.push(FrrPeer {
                neighbor: FrrNeighbor::Interface(fabric::port(i)),
                remote_as: FrrRemoteAs::External,
                ipv6: false,
            });
        }
        let frr = Frr::start(lab, &s2_host, "frr-s2", &c)?;
        for (plan, h) in &f.leaves {
            if plan.index == 4 {
                bird_leaf(lab, plan, h, true)?;
            } else {
                let name = format!("via6d-l{}", plan.index);
                let yaml = fill(LEAF_TEMPLATE, Some(plan), 0, &socket_for(lab, &name));
                start_via6d_yaml(lab, h, &name, &yaml)?;
            }
        }
        let up = lab.wait_until(UP, "every leaf: ECMP via swp1 and swp2", || {
            leaves_route_via(lab, &f, BOTH)
        });
        up.map_err(|e| Error::Check(format!("{e}\n==== FRR ====\n{}", frr.evidence())))?;
        report("c04: start -> full ECMP", t0.elapsed());
        ping_all(lab, &f)?;
        failures(
            lab,
            &f,
            "c04",
            || lab.kill(&s1.daemon),
            || unnumbered_spine(lab, &f, 1).map(|_| ()),
        )
        .map_err(|e| Error::Check(format!("{e}\n==== FRR ====\n{}", frr.evidence())))
    });
}
