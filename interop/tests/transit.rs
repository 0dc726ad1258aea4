//! Scenario 11: transit. BIRD A -- via6d -- BIRD B over two IPv6-only
//! links. Each BIRD's IPv4 loopback reaches the other with via6 as next
//! hop, and `ping -4` between the loopbacks goes through via6's kernel,
//! whose IPv4 routes all have IPv6 link-local gateways.

use interop::check::{bird_route_has, kernel_route_has, via6_has};
use interop::topo::{
    self, BIRD2_AS, BIRD2_ID, BIRD2_LL, BIRD_AS, BIRD_ID, BIRD_LL, T, VIA6_AS, VIA6_LL,
};
use interop::{scenario, Bird, BirdConfig, BirdPeer, Via6Config, Via6Neighbor, Via6d};

#[test]
fn s11_transit_ping_between_bird_loopbacks_through_via6() {
    scenario("s11-transit", |lab| {
        let a = lab.add_host("a")?;
        let v = lab.add_host("via6")?;
        let b = lab.add_host("b")?;
        lab.link_ll(&a, "eth0", BIRD_LL, &v, "eth0", VIA6_LL)?;
        lab.link_ll(&b, "eth0", BIRD2_LL, &v, "eth1", VIA6_LL)?;
        lab.add_addr(&a, "lo", "10.255.0.1/32")?;
        lab.add_addr(&b, "lo", "10.255.0.3/32")?;

        let mut ca = BirdConfig::new(BIRD_ID, BIRD_AS);
        ca.static_v4 = vec!["10.255.0.1/32".into()];
        ca.peers.push(BirdPeer::link_local(
            "via6",
            &VIA6_LL.to_string(),
            "eth0",
            VIA6_AS,
        ));
        let mut cb = BirdConfig::new(BIRD2_ID, BIRD2_AS);
        cb.static_v4 = vec!["10.255.0.3/32".into()];
        cb.peers.push(BirdPeer::link_local(
            "via6",
            &VIA6_LL.to_string(),
            "eth0",
            VIA6_AS,
        ));
        let mut cv = Via6Config::new(topo::VIA6_ID, VIA6_AS);
        cv.neighbors
            .push(Via6Neighbor::open(&format!("{BIRD_LL}%eth0"), BIRD_AS));
        cv.neighbors
            .push(Via6Neighbor::open(&format!("{BIRD2_LL}%eth1"), BIRD2_AS));

        let ba = Bird::start(lab, &a, "bird-a", &ca)?;
        let bb = Bird::start(lab, &b, "bird-b", &cb)?;
        let via6 = Via6d::start(lab, &v, "via6d", &cv)?;

        lab.wait_until(
            T,
            "via6 kernel: A's and B's loopbacks via inet6 link-local gateways",
            || {
                Ok(kernel_route_has(
                    lab,
                    &v,
                    "10.255.0.1/32",
                    &["via inet6 fe80::1 dev eth0", "proto bgp"],
                )? && kernel_route_has(
                    lab,
                    &v,
                    "10.255.0.3/32",
                    &["via inet6 fe80::3 dev eth1", "proto bgp"],
                )?)
            },
        )?;
        lab.wait_until(
            T,
            "A's BIRD: 10.255.0.3/32 via fe80::2 on eth0, AS path 65002 65003",
            || {
                bird_route_has(
                    &ba,
                    "10.255.0.3/32",
                    &[
                        "via fe80::2 on eth0",
                        "BGP.as_path: 65002 65003",
                        "BGP.next_hop: :: fe80::2",
                    ],
                )
            },
        )?;
        lab.wait_until(
            T,
            "B's BIRD: 10.255.0.1/32 via fe80::2 on eth0, AS path 65002 65001",
            || {
                bird_route_has(
                    &bb,
                    "10.255.0.1/32",
                    &[
                        "via fe80::2 on eth0",
                        "BGP.as_path: 65002 65001",
                        "BGP.next_hop: :: fe80::2",
                    ],
                )
            },
        )?;
        lab.wait_until(
            T,
            "A's and B's kernels route the other loopback via inet6 fe80::2",
            || {
                Ok(
                    kernel_route_has(lab, &a, "10.255.0.3/32", &["via inet6 fe80::2 dev eth0"])?
                        && kernel_route_has(
                            lab,
                            &b,
                            "10.255.0.1/32",
                            &["via inet6 fe80::2 dev eth0"],
                        )?,
                )
            },
        )?;
        lab.wait_until(T, "via6 RIB: both loopbacks", || {
            Ok(via6_has(&via6, "routes", "10.255.0.1/32", &[topo::NH_LL1])?
                && via6_has(
                    &via6,
                    "routes",
                    "10.255.0.3/32",
                    &["\"next_hop_link_local\":\"fe80::3\""],
                )?)
        })?;
        // ping -4 from 10.255.0.1 to 10.255.0.3 through via6.
        interop::dataplane::wait_ping(lab, &a, "10.255.0.1", "10.255.0.3")?;
        Ok(())
    });
}
