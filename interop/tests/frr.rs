//! via6d against FRR 8.4 (bgpd + zebra) over a link-local-only veth
//! (scenarios F1 to F3 of the interop matrix): RFC 8950 both ways,
//! FRR's `[LL, LL]` and `[global, LL]` next hops, `via inet6` in both
//! kernels, session loss cleaning both kernels.

use interop::capture::Capture;
use interop::check::{
    kernel_route_absent, kernel_route_has, via6_established, via6_extended_next_hop, via6_has,
    via6_lacks,
};
use interop::dataplane::wait_ping;
use interop::frr::{Frr, FrrConfig, FrrPeer};
use interop::pcap;
use interop::topo::{BIRD_LL as FRR_LL, T, VIA6_AS, VIA6_ID, VIA6_LL, VIA6_V4, VIA6_V6};
use interop::{scenario, Error, Host, Lab, Result, Via6Config, Via6Neighbor, Via6d};

const FRR_AS: u32 = 65001;
const FRR_V4: &str = "10.1.0.0/24";
const FRR_V6: &str = "2001:db8:1::/48";

/// Adds FRR's own view to an error, so a failure shows both sides.
fn with_frr<T>(frr: &Frr, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::Check(format!("{e}\n==== FRR ====\n{}", frr.evidence())))
}

fn frr_config() -> FrrConfig {
    let mut c = FrrConfig::new("10.255.0.1".parse().unwrap_or(VIA6_ID), FRR_AS);
    c.networks_v4 = vec![FRR_V4.into()];
    c.networks_v6 = vec![FRR_V6.into()];
    c
}

fn via6_config(neighbor: Via6Neighbor) -> Via6Config {
    let mut c = Via6Config::new(VIA6_ID, VIA6_AS);
    c.neighbors.push(neighbor);
    c.originate_v4 = vec![VIA6_V4.into()];
    c.originate_v6 = vec![VIA6_V6.into()];
    c
}

/// Host addresses inside the announced prefixes, on `lo`: FRR's in
/// 10.1.0.0/24 and 2001:db8:1::/48, via6's in 198.51.100.0/24 and
/// 2001:db8:100::/48, so pings between them need the routes both ways.
const FRR_HOST_V4: &str = "10.1.0.1";
const FRR_HOST_V6: &str = "2001:db8:1::1";
const VIA6_HOST_V4: &str = "198.51.100.1";
const VIA6_HOST_V6: &str = "2001:db8:100::1";

fn host_addresses(lab: &Lab, fh: &Host, vh: &Host) -> Result<()> {
    lab.add_addr(fh, "lo", &format!("{FRR_HOST_V4}/32"))?;
    lab.add_addr(fh, "lo", &format!("{FRR_HOST_V6}/128"))?;
    lab.add_addr(vh, "lo", &format!("{VIA6_HOST_V4}/32"))?;
    lab.add_addr(vh, "lo", &format!("{VIA6_HOST_V6}/128"))
}

/// `ping -4` and `ping -6` from via6's host to FRR's through the routes
/// each daemon installed (the reply takes the other one's).
fn pings_cross(lab: &Lab, frr: &Frr, vh: &Host) -> Result<()> {
    with_frr(frr, wait_ping(lab, vh, VIA6_HOST_V4, FRR_HOST_V4))?;
    with_frr(frr, wait_ping(lab, vh, VIA6_HOST_V6, FRR_HOST_V6))
}

/// Whether FRR's `show bgp ipv4 unicast PREFIX json` has a path from AS
/// `asn` whose next hops are `::` (global half) and the link-local `ll`,
/// the one FRR uses. Read by JSON field, not by the text layout, which
/// differs between FRR releases.
fn frr_path_via(route: &serde_json::Value, ll: &str, asn: u32) -> bool {
    let paths = route.get("paths").and_then(|p| p.as_array());
    paths.into_iter().flatten().any(|p| {
        let from_as = interop::check::json_find_key(p, "list")
            .iter()
            .filter_map(|l| l.as_array())
            .flatten()
            .any(|a| a.as_u64() == Some(u64::from(asn)));
        let hops = p.get("nexthops").and_then(|h| h.as_array());
        let hop = |ip: &str| {
            hops.into_iter()
                .flatten()
                .find(|h| h.get("ip").and_then(|v| v.as_str()) == Some(ip))
        };
        let used = hop(ll)
            .and_then(|h| h.get("used"))
            .and_then(|u| u.as_bool());
        from_as && hop("::").is_some() && used == Some(true)
    })
}

/// Both kernels hold the other side's routes as `via inet6`.
fn routes_both_ways(lab: &Lab, frr: &Frr, fh: &Host, vh: &Host, via6_gw: &str) -> Result<()> {
    let want_v4 = format!("via inet6 {via6_gw} dev eth0");
    let want_v6 = format!("via {via6_gw} dev eth0");
    with_frr(
        frr,
        lab.wait_until(T, "via6 kernel: FRR's prefixes via inet6", || {
            Ok(kernel_route_has(lab, vh, FRR_V4, &[&want_v4, "proto bgp"])?
                && kernel_route_has(lab, vh, FRR_V6, &[&want_v6, "proto bgp"])?)
        }),
    )?;
    with_frr(
        frr,
        lab.wait_until(
            T,
            "FRR kernel (zebra): via6's prefixes via inet6 fe80::2",
            || {
                Ok(kernel_route_has(
                    lab,
                    fh,
                    VIA6_V4,
                    &["via inet6 fe80::2 dev eth0", "proto bgp"],
                )? && kernel_route_has(
                    lab,
                    fh,
                    VIA6_V6,
                    &["via fe80::2 dev eth0", "proto bgp"],
                )?)
            },
        ),
    )
}

/// Scenario F1: FRR peers with via6's link-local address on `eth0`
/// (`neighbor fe80::2 interface eth0`), via6 with `fe80::1%eth0`. FRR
/// sends `[LL, LL]` (it has no global address), via6 sends `[::, LL]`;
/// routes cross both ways, and the loss of either daemon cleans the
/// other's kernel.
#[test]
fn f01_frr_link_local_neighbor_both_ways_and_session_loss() {
    scenario("f01-frr-link-local", |lab| {
        let fh = lab.add_host("frr")?;
        let vh = lab.add_host("via6")?;
        lab.link_ll(&fh, "eth0", FRR_LL, &vh, "eth0", VIA6_LL)?;
        host_addresses(lab, &fh, &vh)?;
        let cap = Capture::start(lab, &vh, "eth0", &["tcp", "port", "179"])?;
        let mut fc = frr_config();
        fc.peers
            .push(FrrPeer::link_local(&VIA6_LL.to_string(), "eth0", VIA6_AS));
        let mut frr = Frr::start(lab, &fh, "frr", &fc)?;
        let addr = format!("{FRR_LL}%eth0");
        let via6 = Via6d::start(
            lab,
            &vh,
            "via6d",
            &via6_config(Via6Neighbor::open(&addr, FRR_AS)),
        )?;
        let key = VIA6_LL.to_string();
        with_frr(
            &frr,
            lab.wait_until(T, "FRR and via6 Established", || {
                Ok(frr.established(&key)? && via6_established(&via6, &addr)?)
            }),
        )?;
        // RFC 8950 §3 both ways.
        let n = frr.neighbor(&key)?;
        let caps = n.get("neighborCapabilities").cloned().unwrap_or_default();
        if caps.get("extendedNexthop").and_then(|v| v.as_str()) != Some("advertisedAndReceived") {
            return Err(Error::Check(format!(
                "FRR: extended next hop not both ways: {caps}"
            )));
        }
        if !via6_extended_next_hop(&via6, &addr)? {
            return Err(Error::Check(
                "via6 did not negotiate extended next hop".into(),
            ));
        }
        routes_both_ways(lab, &frr, &fh, &vh, "fe80::1")?;
        lab.wait_until(T, "via6 RIB: 10.1.0.0/24 with LL next hop fe80::1", || {
            via6_has(
                &via6,
                "routes",
                FRR_V4,
                &[
                    "\"next_hop_link_local\":\"fe80::1\"",
                    "\"gateway\":\"fe80::1\"",
                ],
            )
        })?;
        // FRR's view of via6's route: `::` global half, fe80::2 used.
        let r = frr.vtysh_json(&format!("show bgp ipv4 unicast {VIA6_V4}"))?;
        if !frr_path_via(&r, "fe80::2", VIA6_AS) {
            return Err(Error::Check(format!("FRR's route for {VIA6_V4}: {r}")));
        }
        // On the wire: FRR's MP_REACH next hop for IPv4 (AFI 1) is 32
        // bytes, both halves its link-local address; via6's is `[::, LL]`
        // (RFC 8950 §3). Read from the capture's bytes, not tcpdump's text.
        let frr_nh = pcap::next_hop_pair(FRR_LL, FRR_LL);
        let via6_nh = pcap::next_hop_pair(std::net::Ipv6Addr::UNSPECIFIED, VIA6_LL);
        lab.wait_until(
            T,
            "capture: IPv4 next hops [fe80::1, fe80::1] from FRR, [::, fe80::2] from via6",
            || {
                let segs = cap.segments()?;
                let nh = |from: std::net::Ipv6Addr, to: std::net::Ipv6Addr| {
                    pcap::mp_reach_next_hops(
                        &pcap::bgp_messages(&segs, from.into(), to.into()),
                        1,
                        1,
                    )
                };
                let (f, v) = (nh(FRR_LL, VIA6_LL), nh(VIA6_LL, FRR_LL));
                if f.contains(&frr_nh) && v.contains(&via6_nh) {
                    return Ok(true);
                }
                let show =
                    |l: &[Vec<u8>]| l.iter().map(|n| pcap::show_next_hop(n)).collect::<Vec<_>>();
                Err(Error::Check(format!(
                    "IPv4 MP_REACH next hops on the wire: from FRR {:?}, from via6 {:?}",
                    show(&f),
                    show(&v)
                )))
            },
        )?;
        pings_cross(lab, &frr, &vh)?;

        // FRR's bgpd dies: via6 drops FRR's routes from its RIB and kernel.
        lab.kill(&frr.bgpd)?;
        lab.wait_until(T, "bgpd killed: FRR's routes leave via6", || {
            Ok(via6_lacks(&via6, "routes", FRR_V4)?
                && kernel_route_absent(lab, &vh, FRR_V4)?
                && kernel_route_absent(lab, &vh, FRR_V6)?)
        })?;
        // zebra removes the routes of a client that went away.
        lab.wait_until(T, "bgpd killed: zebra drops via6's routes", || {
            Ok(kernel_route_absent(lab, &fh, VIA6_V4)? && kernel_route_absent(lab, &fh, VIA6_V6)?)
        })?;
        frr.restart_bgpd(lab)?;
        routes_both_ways(lab, &frr, &fh, &vh, "fe80::1")?;
        pings_cross(lab, &frr, &vh)?;

        // via6d stops for good (`via6ctl shutdown`: a Cease FRR must not
        // take for a graceful restart, its own routes withdrawn from the
        // kernel): both kernels are clean of the other's routes.
        via6.ctl(&["shutdown"])?;
        with_frr(
            &frr,
            lab.wait_until(T, "via6d stopped: both kernels clean", || {
                Ok(kernel_route_absent(lab, &fh, VIA6_V4)?
                    && kernel_route_absent(lab, &fh, VIA6_V6)?
                    && kernel_route_absent(lab, &vh, FRR_V4)?
                    && kernel_route_absent(lab, &vh, FRR_V6)?)
            }),
        )?;
        Ok(())
    });
}

/// Scenario F3: FRR's `eth0` also carries a global address of a /64
/// via6 shares: FRR sends `[global, LL]`; via6 keeps both halves and its
/// kernel routes IPv4 via an IPv6 gateway on the link.
#[test]
fn f03_frr_sends_global_and_link_local() {
    scenario("f03-frr-global-ll", |lab| {
        let fh = lab.add_host("frr")?;
        let vh = lab.add_host("via6")?;
        lab.link_ll(&fh, "eth0", FRR_LL, &vh, "eth0", VIA6_LL)?;
        lab.add_addr(&fh, "eth0", "2001:db8:ff::1/64")?;
        lab.add_addr(&vh, "eth0", "2001:db8:ff::2/64")?;
        host_addresses(lab, &fh, &vh)?;
        let mut fc = frr_config();
        fc.peers
            .push(FrrPeer::link_local(&VIA6_LL.to_string(), "eth0", VIA6_AS));
        let frr = Frr::start(lab, &fh, "frr", &fc)?;
        let addr = format!("{FRR_LL}%eth0");
        let via6 = Via6d::start(
            lab,
            &vh,
            "via6d",
            &via6_config(Via6Neighbor::open(&addr, FRR_AS)),
        )?;
        let key = VIA6_LL.to_string();
        with_frr(
            &frr,
            lab.wait_until(T, "FRR and via6 Established", || {
                Ok(frr.established(&key)? && via6_established(&via6, &addr)?)
            }),
        )?;
        with_frr(
            &frr,
            lab.wait_until(
                T,
                "via6 RIB: 10.1.0.0/24 with [2001:db8:ff::1, fe80::1]",
                || {
                    via6_has(
                        &via6,
                        "routes",
                        FRR_V4,
                        &[
                            "\"next_hop\":\"2001:db8:ff::1\"",
                            "\"next_hop_link_local\":\"fe80::1\"",
                        ],
                    )
                },
            ),
        )?;
        with_frr(
            &frr,
            lab.wait_until(T, "via6 kernel: 10.1.0.0/24 via inet6 on eth0", || {
                kernel_route_has(lab, &vh, FRR_V4, &["via inet6 ", "dev eth0", "proto bgp"])
            }),
        )?;
        with_frr(
            &frr,
            lab.wait_until(T, "FRR kernel: via6's 198.51.100.0/24 via inet6", || {
                kernel_route_has(lab, &fh, VIA6_V4, &["via inet6 ", "dev eth0", "proto bgp"])
            }),
        )?;
        pings_cross(lab, &frr, &vh)
    });
}

/// Scenario F2: BGP unnumbered on both sides. FRR: `neighbor eth0
/// interface remote-as external`; via6: `interface: eth0`, `remote-as:
/// external`. Neither config names an address: each learns the other's
/// link-local address from Router Advertisements.
#[test]
fn f02_unnumbered_both_sides() {
    scenario("f02-frr-unnumbered", |lab| {
        let fh = lab.add_host("frr")?;
        let vh = lab.add_host("via6")?;
        lab.link_ll(&fh, "eth0", FRR_LL, &vh, "eth0", VIA6_LL)?;
        host_addresses(lab, &fh, &vh)?;
        let mut fc = frr_config();
        fc.peers
            .push(FrrPeer::unnumbered("eth0", interop::FrrRemoteAs::External));
        let frr = Frr::start(lab, &fh, "frr", &fc)?;
        let sock = interop::fabric::socket_for(lab, "via6d");
        let yaml = format!(
            "router-id: {VIA6_ID}\nasn: {VIA6_AS}\nlisten: {{ address: \"::\", port: 179 }}\n\
             neighbors:\n  - interface: eth0\n    remote-as: external\n    hold-time: 9\n\
             \x20   connect-retry: 1\n    import: accept-all\n    export: accept-all\n\
             originate:\n  ipv4: [{VIA6_V4}]\n  ipv6: [{VIA6_V6}]\n\
             control-socket: {}\n",
            sock.display()
        );
        let via6 = interop::fabric::start_via6d_yaml(lab, &vh, "via6d", &yaml)?;
        // via6 names the session by the address it learned.
        let addr = format!("{FRR_LL}%eth0");
        with_frr(
            &frr,
            lab.wait_until(
                T,
                "FRR (eth0) and via6 (learned fe80::1%eth0) Established",
                || Ok(frr.established("eth0")? && via6_established(&via6, &addr)?),
            ),
        )?;
        if !via6_extended_next_hop(&via6, &addr)? {
            return Err(Error::Check(
                "via6 did not negotiate extended next hop".into(),
            ));
        }
        routes_both_ways(lab, &frr, &fh, &vh, "fe80::1")?;
        pings_cross(lab, &frr, &vh)?;
        // FRR's bgpd dies: via6's kernel drops FRR's routes.
        lab.kill(&frr.bgpd)?;
        lab.wait_until(T, "bgpd killed: FRR's routes leave via6's kernel", || {
            Ok(kernel_route_absent(lab, &vh, FRR_V4)? && kernel_route_absent(lab, &vh, FRR_V6)?)
        })?;
        Ok(())
    });
}
