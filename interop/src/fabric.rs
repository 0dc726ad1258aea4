//! A small Clos fabric in namespaces (RFC 7938 shape): spines in one AS,
//! each leaf in its own, every leaf linked to every spine by a veth pair
//! carrying only link-local addresses. Leaf `i` has `swpN` to spine `N`,
//! spine `N` has `swpI` to leaf `i`; the spine end is `fe80::1` on every
//! link (each link is its own scope), leaf `i`'s end `fe80::1i` (FRR keys
//! address neighbours by address alone, so a spine's leaves need distinct
//! ones); one leaf config fits every leaf and one spine config every
//! spine.
//!
//! Each leaf has an IPv4 /32 loopback (`10.255.0.1i`, also its router id)
//! and a host subnet `10.1i.0.0/24` whose `.1` sits on `lo` as a /32: this
//! kernel cannot make dummy interfaces, and the /32 is all a ping needs.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::{Host, Lab, Link};
use crate::via6::{Via6Config, Via6Neighbor, Via6d};

pub const SPINE_AS: u32 = 65100;
pub const SPINE_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Leaf `i`'s end of each of its links: `fe80::1i` (hex).
pub fn leaf_ll(index: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10 + u16::from(index))
}

/// What one leaf is (index from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafPlan {
    pub index: u8,
    pub asn: u32,
    /// IPv4 loopback and router id.
    pub loopback: Ipv4Addr,
    /// Host subnet, `10.1i.0.0/24`.
    pub subnet: String,
    /// The subnet's `.1`, on `lo` as a /32.
    pub gateway: Ipv4Addr,
}

impl LeafPlan {
    pub fn new(index: u8) -> Self {
        LeafPlan {
            index,
            asn: SPINE_AS + u32::from(index),
            loopback: Ipv4Addr::new(10, 255, 0, 10 + index),
            subnet: format!("10.{}.0.0/24", 10 + index),
            gateway: Ipv4Addr::new(10, 10 + index, 0, 1),
        }
    }

    /// The two prefixes a leaf announces.
    pub fn prefixes(&self) -> [String; 2] {
        [self.subnet.clone(), format!("{}/32", self.loopback)]
    }
}

/// A spine's router id: `10.255.0.N`.
pub fn spine_id(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 0, index)
}

/// Hosts and links of the fabric (no daemons yet).
#[derive(Debug, Clone)]
pub struct Fabric {
    pub spines: Vec<Host>,
    pub leaves: Vec<(LeafPlan, Host)>,
    pub links: Vec<Link>,
}

/// Leaf `i`'s port towards spine `n`, and spine `n`'s towards leaf `i`.
pub fn port(n: u8) -> String {
    format!("swp{n}")
}

impl Fabric {
    /// Builds `spines` spines (`s1`..) and `leaves` leaves (`l1`..), all
    /// links, and the leaves' loopback and gateway addresses.
    pub fn build(lab: &Lab, spines: u8, leaves: u8) -> Result<Fabric> {
        let mut f = Fabric {
            spines: Vec::new(),
            leaves: Vec::new(),
            links: Vec::new(),
        };
        for n in 1..=spines {
            f.spines.push(lab.add_host(&format!("s{n}"))?);
        }
        for i in 1..=leaves {
            let plan = LeafPlan::new(i);
            let h = lab.add_host(&format!("l{i}"))?;
            lab.add_addr(&h, "lo", &format!("{}/32", plan.loopback))?;
            lab.add_addr(&h, "lo", &format!("{}/32", plan.gateway))?;
            f.leaves.push((plan, h));
        }
        for (n, s) in (1..=spines).zip(f.spines.clone()) {
            for (plan, l) in f.leaves.clone() {
                f.links.push(lab.link_ll(
                    &s,
                    &port(plan.index),
                    SPINE_LL,
                    &l,
                    &port(n),
                    leaf_ll(plan.index),
                )?);
            }
        }
        Ok(f)
    }

    /// The spine ends of spine `n`'s links.
    pub fn spine_ports(&self, n: u8) -> Vec<crate::lab::LinkEnd> {
        self.links
            .iter()
            .filter(|l| l.a.host.name == format!("s{n}"))
            .map(|l| l.a.clone())
            .collect()
    }
}

/// Graceful restart off in the fabric scenarios: they time how fast the
/// leaves route around a spine whose daemon dies or whose links go down.
/// With graceful restart (the default) a spine whose daemon is killed
/// keeps forwarding and stays in ECMP on purpose, which
/// `tests/graceful.rs` covers.
const NO_GR: &str = "graceful-restart: false";

/// The one leaf config: two spines by link-local address, ECMP over both
/// (`max-paths: 2`, `multipath-relax: true`), its loopback as the FIB
/// source address. Only the router id, ASN and the two announced
/// prefixes differ between leaves.
pub fn leaf_via6_config(plan: &LeafPlan, spines: u8) -> Via6Config {
    let mut c = Via6Config::new(plan.loopback, plan.asn);
    for n in 1..=spines {
        let mut nb = Via6Neighbor::open(&format!("{SPINE_LL}%{}", port(n)), SPINE_AS);
        nb.extra.push(NO_GR.into());
        c.neighbors.push(nb);
    }
    c.originate_v4 = plan.prefixes().to_vec();
    c.source_address = Some(plan.loopback);
    c.max_paths = Some(2);
    c.extra = "multipath-relax: true\n".into();
    c
}

/// The one spine config: a session per leaf port.
pub fn spine_via6_config(index: u8, leaves: u8) -> Via6Config {
    let mut c = Via6Config::new(spine_id(index), SPINE_AS);
    for i in 1..=leaves {
        let mut nb =
            Via6Neighbor::open(&format!("{}%{}", leaf_ll(i), port(i)), LeafPlan::new(i).asn);
        nb.extra.push(NO_GR.into());
        c.neighbors.push(nb);
    }
    c
}

/// The one leaf config of the unnumbered fabric, as a user writes it:
/// interface peering on every `swp*` port with whatever AS is there.
/// `{id}`, `{asn}`, `{subnet}` and `{socket}` are filled in per leaf.
pub const LEAF_TEMPLATE: &str = "\
router-id: {id}
asn: {asn}
max-paths: 2
multipath-relax: true
listen: { address: \"::\", port: 179 }
neighbors:
  - interface-pattern: \"swp*\"
    remote-as: external
    hold-time: 9
    connect-retry: 1
    import: accept-all
    export: accept-all
    graceful-restart: false
originate:
  ipv4: [{subnet}, {id}/32]
fib:
  source-address: {id}
control-socket: {socket}
log: { level: \"info\" }
";

/// The one spine config of the unnumbered fabric.
pub const SPINE_TEMPLATE: &str = "\
router-id: {id}
asn: {asn}
listen: { address: \"::\", port: 179 }
neighbors:
  - interface-pattern: \"swp*\"
    remote-as: external
    hold-time: 9
    connect-retry: 1
    import: accept-all
    export: accept-all
    graceful-restart: false
control-socket: {socket}
log: { level: \"info\" }
";

/// BFD on a fabric session: 300 ms both ways, 3 missed packets, so a
/// silent peer is detected 900 ms after its last packet at most.
pub const BFD_300MS: &str = "bfd: { min-tx: 300ms, min-rx: 300ms, multiplier: 3 }";

/// `template` ([`LEAF_TEMPLATE`] or [`SPINE_TEMPLATE`]) with `lines` added
/// to its neighbour entry, e.g. [`BFD_300MS`].
pub fn with_neighbor_lines(template: &str, lines: &[&str]) -> Result<String> {
    let anchor = "    graceful-restart: false\n";
    if !template.contains(anchor) {
        return Err(Error::Check(format!(
            "no {anchor:?} in the template:\n{template}"
        )));
    }
    let extra: String = lines.iter().map(|l| format!("    {l}\n")).collect();
    Ok(template.replace(anchor, &format!("{anchor}{extra}")))
}

/// Fills a template for a leaf (`plan`) or a spine (`plan` None, index
/// `spine`).
pub fn fill(
    template: &str,
    plan: Option<&LeafPlan>,
    spine: u8,
    socket: &std::path::Path,
) -> String {
    let (id, asn, subnet) = match plan {
        Some(p) => (p.loopback, p.asn, p.subnet.clone()),
        None => (spine_id(spine), SPINE_AS, String::new()),
    };
    template
        .replace("{id}", &id.to_string())
        .replace("{asn}", &asn.to_string())
        .replace("{subnet}", &subnet)
        .replace("{socket}", &socket.display().to_string())
}

/// Starts via6d inside `host` with config text `yaml` (whose
/// `control-socket` is `<lab dir>/<name>.sock`, see [`socket_for`]),
/// checked first with `via6d check`, and waits for its control socket.
pub fn start_via6d_yaml(lab: &Lab, host: &Host, name: &str, yaml: &str) -> Result<Via6d> {
    Via6d::start_yaml(lab, host, name, yaml)
}

/// The control socket [`start_via6d_yaml`] expects for daemon `name`.
pub fn socket_for(lab: &Lab, name: &str) -> std::path::PathBuf {
    Via6d::socket_for(lab, name)
}

/// One kernel route: its next hops as (gateway, device).
pub type NextHops = Vec<(String, String)>;

/// Parses `ip -4 route` output into prefix -> next hops. Multipath
/// routes read
/// `10.12.0.0/24 proto bgp metric 20` then `\tnexthop via inet6 fe80::1
/// dev swp1 weight 1` lines; single ones `10.12.0.0/24 via inet6 fe80::1
/// dev swp1 proto bgp metric 20`.
pub fn parse_routes(text: &str) -> BTreeMap<String, NextHops> {
    let mut out: BTreeMap<String, NextHops> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        if !line.starts_with(char::is_whitespace) {
            let prefix = if first.contains('/') {
                first.to_string()
            } else {
                format!("{first}/32")
            };
            out.entry(prefix.clone()).or_default();
            current = Some(prefix);
        }
        let gw = words
            .iter()
            .position(|w| *w == "via")
            .and_then(|i| match words.get(i + 1) {
                Some(&"inet6") | Some(&"inet") => words.get(i + 2),
                other => other,
            });
        let dev = words
            .iter()
            .position(|w| *w == "dev")
            .and_then(|i| words.get(i + 1));
        if let (Some(p), Some(g), Some(d)) = (&current, gw, dev) {
            if let Some(v) = out.get_mut(p) {
                v.push((g.to_string(), d.to_string()));
            }
        }
    }
    out
}

/// The kernel's IPv4 routes of `host`, parsed.
pub fn kernel_routes(lab: &Lab, host: &Host) -> Result<BTreeMap<String, NextHops>> {
    Ok(parse_routes(&lab.ip(host, &["-4", "route", "show"])?))
}

/// Whether `leaf` reaches every other leaf's prefixes through exactly
/// the ports `want` (e.g. `["swp1", "swp2"]` for ECMP over both spines),
/// each next hop an IPv6 link-local gateway (`via inet6 fe80::...`).
pub fn leaf_routes_via(
    lab: &Lab,
    f: &Fabric,
    leaf: &(LeafPlan, Host),
    want: &[&str],
) -> Result<bool> {
    let table = kernel_routes(lab, &leaf.1)?;
    for (q, _) in f.leaves.iter().filter(|(q, _)| q.index != leaf.0.index) {
        for prefix in q.prefixes() {
            let hops = table.get(&prefix).cloned().unwrap_or_default();
            let mut devs: Vec<&str> = hops.iter().map(|(_, d)| d.as_str()).collect();
            devs.sort_unstable();
            let ll = hops.iter().all(|(g, _)| g.starts_with("fe80:"));
            if devs != want || !ll {
                return Err(Error::Check(format!(
                    "leaf {}: {prefix} via {hops:?}, want one link-local next hop on each of {want:?}",
                    leaf.1.name
                )));
            }
        }
    }
    Ok(true)
}

/// [`leaf_routes_via`] on every leaf.
pub fn leaves_route_via(lab: &Lab, f: &Fabric, want: &[&str]) -> Result<bool> {
    for leaf in &f.leaves {
        leaf_routes_via(lab, f, leaf, want)?;
    }
    Ok(true)
}

/// Polls `check` every 20 ms until it holds, returning how long that
/// took: a convergence time, measured from just before the event.
pub fn time_until<F>(
    since: Instant,
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<Duration>
where
    F: FnMut() -> Result<bool>,
{
    loop {
        let last = match check() {
            Ok(true) => return Ok(since.elapsed()),
            Ok(false) => "condition false".to_string(),
            Err(e) => e.to_string(),
        };
        if since.elapsed() > timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                waited: since.elapsed(),
                last,
                evidence: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ping -4` from leaf `from`'s gateway address to leaf `to`'s, through a
/// spine (leaves only link to spines). Retried within
/// [`crate::dataplane::PING_WAIT`]: the routes are already in place, but
/// on a loaded machine the first packet can wait for neighbour discovery
/// longer than one ping's timeout.
pub fn ping(lab: &Lab, from: &(LeafPlan, Host), to: &LeafPlan) -> Result<()> {
    let src = from.0.gateway.to_string();
    let dst = to.gateway.to_string();
    crate::dataplane::wait_ping(lab, &from.1, &src, &dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_multipath_routes() {
        let text = "10.12.0.0/24 proto bgp metric 20 \n\tnexthop via inet6 fe80::1 dev swp1 weight 1 \n\tnexthop via inet6 fe80::1 dev swp2 weight 1 \n10.255.0.12 nhid 5 via inet6 fe80::1 dev swp2 proto bgp metric 20 \n10.13.0.0/24 via 10.0.0.1 dev eth0\n";
        let r = parse_routes(text);
        assert_eq!(
            r.get("10.12.0.0/24"),
            Some(&vec![
                ("fe80::1".to_string(), "swp1".to_string()),
                ("fe80::1".to_string(), "swp2".to_string())
            ])
        );
        assert_eq!(
            r.get("10.255.0.12/32"),
            Some(&vec![("fe80::1".to_string(), "swp2".to_string())])
        );
        assert_eq!(
            r.get("10.13.0.0/24"),
            Some(&vec![("10.0.0.1".to_string(), "eth0".to_string())])
        );
    }

    #[test]
    fn templates_fill_in() {
        let s = fill(
            LEAF_TEMPLATE,
            Some(&LeafPlan::new(3)),
            0,
            std::path::Path::new("/tmp/l3.sock"),
        );
        assert!(s.contains("router-id: 10.255.0.13\nasn: 65103\n"), "{s}");
        assert!(s.contains("ipv4: [10.13.0.0/24, 10.255.0.13/32]"), "{s}");
        assert!(!s.contains('{') || s.contains("{ address"), "{s}");
        let t = fill(
            SPINE_TEMPLATE,
            None,
            2,
            std::path::Path::new("/tmp/s2.sock"),
        );
        assert!(t.contains("router-id: 10.255.0.2\nasn: 65100\n"), "{t}");
    }

    #[test]
    fn neighbor_lines_go_into_the_neighbor_entry() {
        let s = with_neighbor_lines(SPINE_TEMPLATE, &[BFD_300MS]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.contains("    graceful-restart: false\n    bfd: { min-tx: 300ms, min-rx: 300ms, multiplier: 3 }\ncontrol-socket:"),
            "{s}"
        );
        assert_eq!(
            with_neighbor_lines(SPINE_TEMPLATE, &[]).ok().as_deref(),
            Some(SPINE_TEMPLATE)
        );
        assert!(with_neighbor_lines("router-id: 1.2.3.4\n", &[BFD_300MS]).is_err());
    }

    #[test]
    fn leaf_configs_differ_only_in_identity_and_prefixes() {
        let a = leaf_via6_config(&LeafPlan::new(1), 2);
        let b = leaf_via6_config(&LeafPlan::new(2), 2);
        assert_eq!(a.neighbors, b.neighbors);
        assert_eq!(a.extra, b.extra);
        assert_eq!(a.max_paths, Some(2));
        assert_ne!(a.originate_v4, b.originate_v4);
        assert_eq!(b.originate_v4, vec!["10.12.0.0/24", "10.255.0.12/32"]);
    }
}
