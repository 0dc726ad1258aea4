//! Scenario 10: two BIRD peers on two links announce the same prefix;
//! via6 installs one ECMP route with two `via inet6` next hops; one peer
//! gone, one next hop left.

use interop::check::{kernel_route_has, via6_has};
use interop::topo::{self, BIRD2_LL, BIRD_AS, BIRD_LL, T, VIA6_AS, VIA6_LL};
use interop::{scenario, Bird, BirdConfig, BirdPeer, Error, Via6Config, Via6Neighbor, Via6d};

const ANYCAST: &str = "10.10.0.0/24";

#[test]
fn s10_ecmp_two_bird_peers() {
    scenario("s10-ecmp", |lab| {
        let b1 = lab.add_host("b1")?;
        let b2 = lab.add_host("b2")?;
        let v = lab.add_host("via6")?;
        lab.link_ll(&b1, "eth0", BIRD_LL, &v, "eth0", VIA6_LL)?;
        lab.link_ll(&b2, "eth0", BIRD2_LL, &v, "eth1", VIA6_LL)?;
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
        Ok(())
    });
}
