//! Scenario 10: two BIRD peers on two links announce the same prefix;
//! via6 installs one ECMP route with two `via inet6` next hops, and pings
//! to the anycast address from many sources reach both BIRD hosts; one
//! peer gone, one next hop left and every ping reaches the other host.

use interop::check::{kernel_route_has, via6_has};
use interop::dataplane::{echo_requests_in, ping_once, wait_ping};
use interop::topo::{self, BIRD2_LL, BIRD_AS, BIRD_LL, T, VIA6_AS, VIA6_LL};
use interop::{scenario, Bird, BirdConfig, BirdPeer, Error, Via6Config, Via6Neighbor, Via6d};

const ANYCAST: &str = "10.10.0.0/24";
/// On both BIRD hosts' `lo`: the address the pings go to.
const ANYCAST_ADDR: &str = "10.10.0.1";
/// Ping sources on via6's `lo`, in via6's originated 198.51.100.0/24 so
/// the BIRDs route the replies back. The default multipath hash (L3:
/// source and destination) spreads 16 sources over both next hops; all
/// on one would take odds of 2 in 65536.
const SOURCES: u8 = 16;

fn source(i: u8) -> String {
    format!("198.51.100.{}", i + 1)
}

/// Pings once from every source (each must be answered) and returns how
/// many echo requests reached b1 and b2.
fn spread(
    lab: &interop::Lab,
    v: &interop::Host,
    b1: &interop::Host,
    b2: &interop::Host,
) -> interop::Result<(u64, u64)> {
    let before = (
        echo_requests_in(lab, b1, false)?,
        echo_requests_in(lab, b2, false)?,
    );
    for i in 0..SOURCES {
        ping_once(lab, v, &source(i), ANYCAST_ADDR)?;
    }
    let after = (
        echo_requests_in(lab, b1, false)?,
        echo_requests_in(lab, b2, false)?,
    );
    Ok((after.0 - before.0, after.1 - before.1))
}

#[test]
fn s10_ecmp_two_bird_peers() {
    scenario("s10-ecmp", |lab| {
        let b1 = lab.add_host("b1")?;
        let b2 = lab.add_host("b2")?;
        let v = lab.add_host("via6")?;
        lab.link_ll(&b1, "eth0", BIRD_LL, &v, "eth0", VIA6_LL)?;
        lab.link_ll(&b2, "eth0", BIRD2_LL, &v, "eth1", VIA6_LL)?;
        for b in [&b1, &b2] {
            lab.add_addr(b, "lo", &format!("{ANYCAST_ADDR}/32"))?;
        }
        for i in 0..SOURCES {
            lab.add_addr(&v, "lo", &format!("{}/32", source(i)))?;
        }
        // Two routers of the same upstream AS: equal AS paths, so plain
        // multipath applies (no multipath-relax needed).
        let bird_cfg = |id: [u8; 4]| {
            let mut c = BirdConfig::new(id.into(), BIRD_AS);
            c.static_v4 = vec![ANYCAST.into()];
            c.peers.push(BirdPeer::link_local(
                "via6",
                &VIA6_LL.to_string(),
                "eth0",
                VIA6_AS,
            ));
            c
        };
        let bird1 = Bird::start(lab, &b1, "bird1", &bird_cfg([10, 255, 0, 1]))?;
        let _bird2 = Bird::start(lab, &b2, "bird2", &bird_cfg([10, 255, 0, 3]))?;
        let mut cv = Via6Config::new(topo::VIA6_ID, VIA6_AS);
        cv.max_paths = Some(4);
        cv.originate_v4 = vec![topo::VIA6_V4.into()];
        cv.neighbors
            .push(Via6Neighbor::open(&format!("{BIRD_LL}%eth0"), BIRD_AS));
        cv.neighbors
            .push(Via6Neighbor::open(&format!("{BIRD2_LL}%eth1"), BIRD_AS));
        let via6 = Via6d::start(lab, &v, "via6d", &cv)?;

        lab.wait_until(
            T,
            "via6 kernel: 10.10.0.0/24 ECMP via fe80::1 dev eth0 and fe80::3 dev eth1",
            || {
                kernel_route_has(
                    lab,
                    &v,
                    ANYCAST,
                    &[
                        "nexthop via inet6 fe80::1 dev eth0",
                        "nexthop via inet6 fe80::3 dev eth1",
                    ],
                )
            },
        )?;
        lab.wait_until(T, "via6 RIB: both paths multipath", || {
            Ok(via6_has(
                &via6,
                "routes",
                ANYCAST,
                &["\"next_hop_link_local\":\"fe80::1\"", "\"multipath\":true"],
            )? && via6_has(
                &via6,
                "routes",
                ANYCAST,
                &["\"next_hop_link_local\":\"fe80::3\"", "\"multipath\":true"],
            )?)
        })?;

        // Data plane: both BIRD hosts route the replies back, then each
        // path must carry some of the pings.
        lab.wait_until(
            T,
            "both BIRD kernels: 198.51.100.0/24 via inet6 fe80::2",
            || {
                Ok(
                    kernel_route_has(lab, &b1, topo::VIA6_V4, &["via inet6 fe80::2 dev eth0"])?
                        && kernel_route_has(
                            lab,
                            &b2,
                            topo::VIA6_V4,
                            &["via inet6 fe80::2 dev eth0"],
                        )?,
                )
            },
        )?;
        for i in 0..SOURCES {
            wait_ping(lab, &v, &source(i), ANYCAST_ADDR)?;
        }
        let (n1, n2) = spread(lab, &v, &b1, &b2)?;
        eprintln!("s10: {SOURCES} pings over ECMP: b1 {n1}, b2 {n2}");
        if n1 == 0 || n2 == 0 || n1 + n2 < u64::from(SOURCES) {
            return Err(Error::Check(format!(
                "ECMP: {SOURCES} pings from {SOURCES} sources reached b1 {n1} times, b2 {n2} times"
            )));
        }

        lab.kill(&bird1.daemon)?;
        lab.wait_until(
            T,
            "via6 kernel: 10.10.0.0/24 via inet6 fe80::3 dev eth1 only",
            || {
                let r = lab.kernel_route(&v, ANYCAST)?;
                if r.contains("via inet6 fe80::3 dev eth1") && !r.contains("fe80::1") {
                    return Ok(true);
                }
                Err(Error::Check(format!("kernel of via6: {ANYCAST} is {r:?}")))
            },
        )?;
        // b1 still holds the anycast address: only via6's route decides
        // that nothing goes there now.
        let (n1, n2) = spread(lab, &v, &b1, &b2)?;
        if n1 != 0 || n2 < u64::from(SOURCES) {
            return Err(Error::Check(format!(
                "one path left: pings reached b1 {n1} times, b2 {n2} times"
            )));
        }
        Ok(())
    });
}
