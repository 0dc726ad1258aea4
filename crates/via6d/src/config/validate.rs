//! Rules that span several keys, run after parsing. Each error names the
//! line of the offending entry and its key path.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::locate::{line_of, neighbor_key_line};
use super::{Config, ConfigError, FamilyName, Neighbor, NextHopForm, RawConfig, RemoteAs};
use super::{Policy, PolicyActionName};

/// Builds [`ConfigError::Invalid`] for one file.
pub(super) struct Errors<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Errors<'_> {
    /// An error on the first line that contains `needle`.
    fn at(&self, needle: &str, key: &str, message: String) -> ConfigError {
        self.on_line(line_of(self.text, needle), key, message)
    }

    fn on_line(&self, line: usize, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            message,
        }
    }

    /// An error on `field` of neighbour `index` (its first line when the
    /// field is not written there), else on the first line with `needle`.
    fn neighbor(&self, index: usize, field: &str, needle: &str, message: String) -> ConfigError {
        let line = neighbor_key_line(self.text, index, field)
            .or_else(|| neighbor_key_line(self.text, index, ""))
            .unwrap_or_else(|| line_of(self.text, needle));
        self.on_line(line, &format!("neighbors[{index}].{field}"), message)
    }
}

pub(super) fn policy_ref(name: &Option<String>) -> bgp::PolicyRef {
    match name.as_deref() {
        None => bgp::PolicyRef::Default,
        Some("accept-all") => bgp::PolicyRef::AcceptAll,
        Some("deny-all") => bgp::PolicyRef::DenyAll,
        Some("originated") => bgp::PolicyRef::Originated,
        Some(other) => bgp::PolicyRef::Named(other.to_string()),
    }
}

fn remote_as_text(r: &RemoteAs) -> String {
    match r {
        RemoteAs::Number(a) => a.0.to_string(),
        RemoteAs::External => "external".into(),
        RemoteAs::Internal => "internal".into(),
    }
}

pub(super) fn validate(path: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let errors = Errors { path, text };
    let listen = raw.listen_address();
    let mut seen = BTreeSet::new();
    let mut neighbors = Vec::new();
    for (i, n) in raw.neighbors.iter().enumerate() {
        let (address, interface, field, shown) = peer_of(&errors, i, n)?;
        if !seen.insert((address, interface.clone())) {
            return Err(errors.at(
                &shown,
                &format!("neighbors[{i}].{field}"),
                format!("neighbor {shown} is configured twice"),
            ));
        }
        if n.passive {
            check_reachable(&errors, i, &shown, address, listen)?;
        }
        neighbors.push(neighbor_config(&errors, &raw, i, n, address, interface)?);
    }
    if raw.max_paths == 0 {
        return Err(errors.at("max-paths", "max-paths", "must be at least 1".into()));
    }
    let speaker = bgp::SpeakerConfig {
        router_id: raw.router_id,
        asn: raw.asn.0,
        listen,
        neighbors,
        originate_v4: raw.originate.ipv4.iter().map(|p| p.trunc()).collect(),
        originate_v6: raw.originate.ipv6.iter().map(|p| p.trunc()).collect(),
        policies: raw
            .policies
            .iter()
            .map(|(name, p)| (name.clone(), policy(p)))
            .collect(),
        max_paths: raw.max_paths,
        multipath_relax: raw.multipath_relax,
    };
    let fib = raw.fib.enabled.then(|| fib::FibConfig {
        table: raw.fib.table.0,
        protocol: raw.fib.protocol.0,
        metric: raw.fib.metric,
        source_address: raw.fib.source_address,
        stale_timeout: Duration::from_secs(raw.fib.stale_timeout),
        keep_on_exit: raw.fib.keep_on_exit,
        max_routes: raw.fib.max_routes,
        nexthop_objects: raw.fib.nexthop_objects,
        ..fib::FibConfig::default()
    });
    let mut warnings = Vec::new();
    if listen.is_none() && speaker.neighbors.iter().any(|n| n.is_unnumbered()) {
        // FRR and BIRD listen, so it can work; another via6d with
        // `listen: none` never would.
        warnings.push(format!(
            "{}: interface peering with `listen: none`: only peers that listen (FRR, BIRD, a via6d without `listen: none`) can come up",
            path.display()
        ));
    }
    Ok(Config {
        raw,
        speaker,
        fib,
        warnings,
    })
}

/// Who neighbour `i` is: exactly one of address, interface,
/// interface-pattern. Interface peering is an IPv6 session to `::`
/// (learned later) scoped to the interface
/// (`bgp::NeighborConfig::is_unnumbered`). Returns the address, the
/// interface, the key that named it and how to show it.
fn peer_of(
    errors: &Errors,
    i: usize,
    n: &Neighbor,
) -> Result<(IpAddr, Option<String>, &'static str, String), ConfigError> {
    let unnumbered = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    match (&n.address, &n.interface, &n.interface_pattern) {
        (Some(a), None, None) => {
            let shown = match &a.interface {
                Some(ifname) => format!("{}%{ifname}", a.address),
                None => a.address.to_string(),
            };
            Ok((a.address, a.interface.clone(), "address", shown))
        }
        (None, Some(i), None) => Ok((unnumbered, Some(i.0.clone()), "interface", i.0.clone())),
        (None, None, Some(p)) => Ok((
            unnumbered,
            Some(p.0.clone()),
            "interface-pattern",
            p.0.clone(),
        )),
        _ => {
            let needle = match (&n.interface, &n.interface_pattern) {
                (Some(i), _) => format!("interface: {}", i.0),
                (_, Some(p)) => p.0.clone(),
                _ => format!("remote-as: {}", remote_as_text(&n.remote_as)),
            };
            Err(errors.at(
                &needle,
                &format!("neighbors[{i}]"),
                "give exactly one of address, interface or interface-pattern".into(),
            ))
        }
    }
}

/// A passive neighbour only ever comes up by connecting to us: refuse one
/// whose connection nothing would accept.
fn check_reachable(
    errors: &Errors,
    i: usize,
    shown: &str,
    address: IpAddr,
    listen: Option<SocketAddr>,
) -> Result<(), ConfigError> {
    let why = match listen {
        None => "`listen: none` turns listening off; remove it (the default listens on [::]:179) or set passive: false".to_string(),
        Some(l) if !listen_reaches(l.ip(), address) => format!(
            "listen address {} cannot accept its connections; listen on \"::\" (both families)",
            l.ip()
        ),
        Some(_) => return Ok(()),
    };
    Err(errors.neighbor(
        i,
        "passive",
        "passive: true",
        format!("passive neighbor {shown} can never connect: {why}"),
    ))
}

/// Whether a socket bound to `listen` accepts a connection from `peer`:
/// `::` takes both families (IPv4 as IPv4-mapped), `0.0.0.0` IPv4, and a
/// specific address only its own family.
fn listen_reaches(listen: IpAddr, peer: IpAddr) -> bool {
    match (listen, peer) {
        (IpAddr::V6(l), _) if l.is_unspecified() => true,
        (IpAddr::V6(l), IpAddr::V4(_)) => l.to_ipv4_mapped().is_some(),
        (IpAddr::V6(l), IpAddr::V6(_)) => l.to_ipv4_mapped().is_none(),
        (IpAddr::V4(_), p) => p.is_ipv4(),
    }
}

fn neighbor_config(
    errors: &Errors,
    raw: &RawConfig,
    i: usize,
    n: &Neighbor,
    address: IpAddr,
    interface: Option<String>,
) -> Result<bgp::NeighborConfig, ConfigError> {
    let unnumbered = n.address.is_none();
    if unnumbered && n.extended_next_hop == Some(false) {
        return Err(errors.neighbor(
            i,
            "extended-next-hop",
            "extended-next-hop",
            "interface peering carries IPv4 over a link-local IPv6 session: extended next hop (RFC 8950) stays on".into(),
        ));
    }
    for (dir, name) in [("import", &n.import), ("export", &n.export)] {
        if let bgp::PolicyRef::Named(p) = policy_ref(name) {
            if !raw.policies.contains_key(&p) {
                return Err(errors.neighbor(
                    i,
                    dir,
                    &format!("{dir}: {p}"),
                    format!(
                        "policy {p:?} is not defined (expected accept-all, deny-all, originated, or a name under `policies:`)"
                    ),
                ));
            }
        }
    }
    let is_v6 = address.is_ipv6();
    let extended_next_hop = n.extended_next_hop.unwrap_or(is_v6);
    if extended_next_hop && !is_v6 {
        return Err(errors.neighbor(
            i,
            "extended-next-hop",
            "extended-next-hop",
            "extended next hop (RFC 8950) needs an IPv6 session".into(),
        ));
    }
    let families = match &n.families {
        None => vec![wire::Family::Ipv4Unicast, wire::Family::Ipv6Unicast],
        Some(list) if list.is_empty() => {
            return Err(errors.neighbor(
                i,
                "families",
                "families",
                "at least one family is needed (ipv4-unicast, ipv6-unicast)".into(),
            ))
        }
        Some(list) => {
            let mut fams: Vec<wire::Family> = list
                .iter()
                .map(|f| match f {
                    FamilyName::Ipv4Unicast => wire::Family::Ipv4Unicast,
                    FamilyName::Ipv6Unicast => wire::Family::Ipv6Unicast,
                })
                .collect();
            fams.sort();
            fams.dedup();
            fams
        }
    };
    Ok(bgp::NeighborConfig {
        address,
        interface,
        remote_as: match n.remote_as {
            RemoteAs::Number(a) => a.0,
            RemoteAs::Internal => raw.asn.0,
            RemoteAs::External => bgp::REMOTE_AS_EXTERNAL,
        },
        port: n.port,
        families,
        extended_next_hop,
        passive: n.passive,
        hold_time: n.hold_time.0,
        connect_retry: Duration::from_secs(u64::from(n.connect_retry.max(1))),
        import: policy_ref(&n.import),
        export: policy_ref(&n.export),
        max_prefix: n.max_prefix,
        link_local_form: match n.next_hop_form {
            NextHopForm::Native => wire::LinkLocalForm::Native,
            NextHopForm::Single => wire::LinkLocalForm::Single,
            NextHopForm::Double => wire::LinkLocalForm::Double,
        },
        description: n.description.clone(),
        password: n.password.as_ref().map(|p| p.0.clone()),
        ttl_security: n.ttl_security,
        // What our kernel routes survive is the daemon's to say.
        graceful_restart: bgp::GracefulRestartConfig {
            enabled: n.graceful_restart,
            restart_time: n.restart_time.0,
            long_lived_stale_time: n.long_lived_stale_time.0,
            ..Default::default()
        },
    })
}

fn policy(p: &Policy) -> bgp::Policy {
    let terms = p
        .terms
        .iter()
        .map(|t| bgp::PolicyTerm {
            matches: bgp::PolicyMatch {
                prefixes: t.matches.prefix_list.iter().map(|e| e.0).collect(),
                as_path_contains: t.matches.as_path_contains.map(|a| a.0),
                community: t.matches.community.map(|c| c.0),
            },
            action: match t.action {
                PolicyActionName::Accept => bgp::PolicyAction::Accept,
                PolicyActionName::Reject => bgp::PolicyAction::Reject,
            },
            set: bgp::PolicySet {
                local_pref: t.set.local_pref,
                med: t.set.med,
                add_communities: t.set.communities.iter().map(|c| c.0).collect(),
            },
        })
        .collect();
    bgp::Policy { terms }
}
