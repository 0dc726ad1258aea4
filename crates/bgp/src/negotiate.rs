//! Capability negotiation: the OPEN we send, the checks on the OPEN we
//! receive (RFC 4271 §6.2), and what both OPENs together switch on for one
//! session (RFC 5492: a capability the peer lacks turns the feature off for
//! this session only).

use std::net::Ipv4Addr;

use wire::{
    Capability, CodecContext, ExtendedNextHopEntry, Family, Notification, Open, AFI_IPV4, AFI_IPV6,
    AS_TRANS, SAFI_UNICAST,
};

use crate::config::NeighborConfig;

/// BGP version we speak (RFC 4271 §4.2).
pub const BGP_VERSION: u8 = 4;

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313, RFC 9687).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;
}

/// OPEN message error subcodes (RFC 4271 §4.5, RFC 5492 §5).
pub mod open_error {
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// Who we are and whom we expect, for checking the peer's OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalIdentity {
    pub local_as: u32,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
}

/// What one session runs with once both OPENs are known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_router_id: Ipv4Addr,
    /// min(ours, theirs); 0 = no hold timer and no KEEPALIVEs (RFC 4271 §4.4).
    pub hold_time: u16,
    /// hold_time / 3 (RFC 4271 §10 suggestion).
    pub keepalive: u16,
    /// Families both sides announced (RFC 4760 §8).
    #[serde(serialize_with = "ser_families")]
    pub families: Vec<Family>,
    /// Families whose NLRI may carry an IPv6 next hop in both directions:
    /// both sides listed the (AFI, SAFI, AFI 2) triple (RFC 8950 §4).
    #[serde(serialize_with = "ser_families")]
    pub extended_next_hop: Vec<Family>,
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// Graceful restart, when both sides offered it (RFC 4724).
    pub graceful_restart: Option<crate::graceful::PeerRestart>,
}

fn ser_families<S: serde::Serializer>(f: &[Family], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(f.iter().map(|f| family_name(*f)))
}

/// The name users see for a family (config and `via6ctl`).
pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::Ipv4Unicast => "ipv4-unicast",
        Family::Ipv6Unicast => "ipv6-unicast",
    }
}

impl Negotiated {
    /// The codec facts for this session.
    pub fn codec(&self) -> CodecContext {
        CodecContext {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            extended_next_hop_ipv4: self.extended_next_hop.contains(&Family::Ipv4Unicast),
        }
    }
}

/// Our OPEN for one neighbour. `session_is_ipv6` decides whether we offer
/// extended next hop for IPv4 unicast (RFC 8950 §4: IPv4 NLRI, IPv6 next hop).
pub fn build_open(
    neighbor: &NeighborConfig,
    local_as: u32,
    router_id: Ipv4Addr,
    session_is_ipv6: bool,
) -> Open {
    let mut caps = Vec::new();
    for f in &neighbor.families {
        caps.push(Capability::Multiprotocol {
            afi: f.afi(),
            safi: f.safi(),
        });
    }
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    if neighbor.extended_next_hop
        && session_is_ipv6
        && neighbor.families.contains(&Family::Ipv4Unicast)
    {
        caps.push(Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
            afi: AFI_IPV4,
            safi: u16::from(SAFI_UNICAST),
            next_hop_afi: AFI_IPV6,
        }]));
    }
    caps.push(Capability::ExtendedMessage);
    caps.extend(crate::graceful::our_capability(
        &neighbor.graceful_restart,
        &neighbor.families,
    ));
    caps.extend(crate::graceful::our_long_lived_capability(
        &neighbor.graceful_restart,
        &neighbor.families,
    ));
    caps.push(Capability::FourOctetAs(local_as));
    Open {
        version: BGP_VERSION,
        // RFC 6793 §4.1: a 4-octet ASN goes as AS_TRANS in the 2-octet field.
        my_as: u16::try_from(local_as).unwrap_or(AS_TRANS),
        hold_time: neighbor.hold_time,
        router_id,
        capabilities: caps,
        other_params: Vec::new(),
    }
}

/// Families an OPEN announces. No Multiprotocol capability at all means
/// IPv4 unicast only (RFC 4760 §8, implicit default).
pub fn announced_families(open: &Open) -> Vec<Family> {
    let mut out = Vec::new();
    let mut any_mp = false;
    for c in &open.capabilities {
        if let Capability::Multiprotocol { afi, safi } = c {
            any_mp = true;
            if let Some(f) = Family::from_afi_safi(*afi, *safi) {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    if !any_mp {
        out.push(Family::Ipv4Unicast);
    }
    out.sort();
    out
}

/// Families with an IPv6 next hop listed in any capability-5 entry; several
/// capabilities are merged (FRR sends one per triple) and unknown triples
/// ignored (GoBGP sends some).
pub fn extended_next_hop_families(open: &Open) -> Vec<Family> {
    let mut out = Vec::new();
    for c in &open.capabilities {
        if let Capability::ExtendedNextHop(entries) = c {
            for e in entries {
                if e.next_hop_afi != AFI_IPV6 {
                    continue;
                }
                let Ok(safi) = u8::try_from(e.safi) else {
                    continue;
                };
                // An IPv6 next hop for IPv6 NLRI is plain RFC 2545, not ENH.
                if let Some(f @ Family::Ipv4Unicast) = Family::from_afi_safi(e.afi, safi) {
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
        }
    }
    out
}

fn has(open: &Open, pred: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities.iter().any(pred)
}

/// The peer's ASN: the 4-octet capability when present (RFC 6793 §4.1),
/// else the 2-octet field.
pub fn peer_asn(open: &Open) -> u32 {
    open.capabilities
        .iter()
        .find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
        .unwrap_or(u32::from(open.my_as))
}

/// The codec context both OPENs give, without the validity checks: the
/// reader switches to it right after it decodes the peer's OPEN.
pub fn codec_context(ours: &Open, theirs: &Open) -> CodecContext {
    let both = |p: fn(&Capability) -> bool| has(ours, p) && has(theirs, p);
    let enh_ours = extended_next_hop_families(ours);
    let enh_theirs = extended_next_hop_families(theirs);
    CodecContext {
        four_octet_as: both(|c| matches!(c, Capability::FourOctetAs(_))),
        extended_message: both(|c| matches!(c, Capability::ExtendedMessage)),
        extended_next_hop_ipv4: enh_ours.contains(&Family::Ipv4Unicast)
            && enh_theirs.contains(&Family::Ipv4Unicast),
    }
}

fn open_error(subcode: u8, data: Vec<u8>) -> Notification {
    Notification {
        code: code::OPEN_MESSAGE,
        subcode,
        data,
    }
}

/// Checks the peer's OPEN (RFC 4271 §6.2) and computes what this session
/// runs with. The error is the NOTIFICATION to send.
pub fn negotiate(
    local: &LocalIdentity,
    ours: &Open,
    theirs: &Open,
) -> Result<Negotiated, Notification> {
    if theirs.version != BGP_VERSION {
        // Data: the largest version we support (RFC 4271 §6.2).
        return Err(open_error(
            open_error::UNSUPPORTED_VERSION,
            u16::from(BGP_VERSION).to_be_bytes().to_vec(),
        ));
    }
    let peer_as = peer_asn(theirs);
    // RFC 6793 §4.1: with the capability, the 2-octet field is AS_TRANS or
    // the same (small) ASN; anything else is inconsistent.
    let two_octet_consistent = theirs.my_as == AS_TRANS || u32::from(theirs.my_as) == peer_as;
    // `remote-as: external` accepts any AS but ours (FRR's unnumbered
    // peering); otherwise the configured AS exactly.
    let expected = if local.remote_as == crate::config::REMOTE_AS_EXTERNAL {
        peer_as != local.local_as
    } else {
        peer_as == local.remote_as
    };
    if !expected || peer_as == 0 || !two_octet_consistent {
        return Err(open_error(open_error::BAD_PEER_AS, Vec::new()));
    }
    // RFC 6286 §2.2: any non-zero identifier, but not ours on an iBGP session.
    if theirs.router_id.is_unspecified()
        || (local.local_as == peer_as && theirs.router_id == local.router_id)
    {
        return Err(open_error(open_error::BAD_BGP_IDENTIFIER, Vec::new()));
    }
    // RFC 4271 §4.2: hold time is 0 or at least 3 seconds.
    if theirs.hold_time == 1 || theirs.hold_time == 2 {
        return Err(open_error(open_error::UNACCEPTABLE_HOLD_TIME, Vec::new()));
    }
    if !theirs.other_params.is_empty() {
        // RFC 4271 §6.2: an optional parameter we do not recognise.
        return Err(open_error(
            open_error::UNSUPPORTED_OPTIONAL_PARAMETER,
            Vec::new(),
        ));
    }
    let ours_f = announced_families(ours);
    let theirs_f = announced_families(theirs);
    let families: Vec<Family> = ours_f
        .iter()
        .copied()
        .filter(|f| theirs_f.contains(f))
        .collect();
    if families.is_empty() {
        // RFC 5492 §5: list the capabilities the peer would need to support.
        let mut data = Vec::new();
        for f in &ours_f {
            let afi = f.afi().to_be_bytes();
            data.extend_from_slice(&[1, 4, afi[0], afi[1], 0, f.safi()]);
        }
        return Err(open_error(open_error::UNSUPPORTED_CAPABILITY, data));
    }
    let hold_time = ours.hold_time.min(theirs.hold_time);
    let enh_ours = extended_next_hop_families(ours);
    let extended_next_hop = extended_next_hop_families(theirs)
        .into_iter()
        .filter(|f| enh_ours.contains(f) && families.contains(f))
        .collect();
    let codec = codec_context(ours, theirs);
    let graceful_restart = crate::graceful::negotiate(ours, theirs, &families);
    Ok(Negotiated {
        peer_as,
        peer_router_id: theirs.router_id,
        hold_time,
        keepalive: hold_time / 3,
        families,
        extended_next_hop,
        four_octet_as: codec.four_octet_as,
        extended_message: codec.extended_message,
        route_refresh: has(theirs, |c| matches!(c, Capability::RouteRefresh)),
        enhanced_route_refresh: has(ours, |c| matches!(c, Capability::EnhancedRouteRefresh))
            && has(theirs, |c| matches!(c, Capability::EnhancedRouteRefresh)),
        graceful_restart,
    })
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::config::{NeighborConfig, PolicyRef};
    use std::net::IpAddr;
    use std::time::Duration;
    use wire::{Family, LinkLocalForm};

    pub(crate) fn neighbor(addr: &str, remote_as: u32) -> NeighborConfig {
        NeighborConfig {
            address: addr
                .parse::<IpAddr>()
                .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            interface: None,
            remote_as,
            port: 179,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_next_hop: true,
            passive: false,
            hold_time: 90,
            connect_retry: Duration::from_secs(5),
            import: PolicyRef::AcceptAll,
            export: PolicyRef::AcceptAll,
            max_prefix: None,
            link_local_form: LinkLocalForm::Native,
            description: None,
            password: None,
            ttl_security: false,
            graceful_restart: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::neighbor;
    use super::*;

    fn id(a: u32, r: u32) -> LocalIdentity {
        LocalIdentity {
            local_as: a,
            remote_as: r,
            router_id: "192.0.2.1".parse().unwrap(),
        }
    }

    /// An OPEN shaped like BIRD 2.0.12's for a link-local session with
    /// `extended next hop on`.
    fn bird_open(asn: u32) -> Open {
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time: 240,
            router_id: "192.0.2.9".parse().unwrap(),
            capabilities: vec![
                Capability::Multiprotocol { afi: 1, safi: 1 },
                Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                    afi: 1,
                    safi: 1,
                    next_hop_afi: 2,
                }]),
                Capability::Multiprotocol { afi: 2, safi: 1 },
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::GracefulRestart(wire::GracefulRestart {
                    restart_flags: 0,
                    restart_time: 120,
                    families: vec![],
                }),
                Capability::FourOctetAs(asn),
                Capability::Unknown {
                    code: 73,
                    value: b"bird".to_vec(),
                },
            ],
            other_params: vec![],
        }
    }

    #[test]
    fn our_open_has_every_capability_and_as_trans() {
        let n = neighbor("fe80::1", 65001);
        let o = build_open(&n, 4_200_000_000, "192.0.2.1".parse().unwrap(), true);
        assert_eq!(o.my_as, AS_TRANS);
        assert_eq!(o.hold_time, 90);
        assert!(o
            .capabilities
            .contains(&Capability::FourOctetAs(4_200_000_000)));
        assert!(o.capabilities.contains(&Capability::ExtendedMessage));
        assert!(o.capabilities.contains(&Capability::RouteRefresh));
        assert!(o.capabilities.contains(&Capability::EnhancedRouteRefresh));
        assert_eq!(
            announced_families(&o),
            vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
        );
        assert_eq!(extended_next_hop_families(&o), vec![Family::Ipv4Unicast]);
        let small = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        assert_eq!(small.my_as, 65002);
    }

    #[test]
    fn no_extended_next_hop_on_ipv4_session_or_when_off() {
        let n = neighbor("192.0.2.9", 65001);
        let o = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), false);
        assert!(extended_next_hop_families(&o).is_empty());
        let mut n6 = neighbor("2001:db8::1", 65001);
        n6.extended_next_hop = false;
        let o = build_open(&n6, 65002, "192.0.2.1".parse().unwrap(), true);
        assert!(extended_next_hop_families(&o).is_empty());
    }

    #[test]
    fn negotiates_with_bird() {
        let n = neighbor("fe80::1", 65001);
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        let neg = negotiate(&id(65002, 65001), &ours, &bird_open(65001)).unwrap();
        assert_eq!(neg.peer_as, 65001);
        assert_eq!(neg.hold_time, 90);
        assert_eq!(neg.keepalive, 30);
        assert_eq!(neg.families, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        assert_eq!(neg.extended_next_hop, vec![Family::Ipv4Unicast]);
        assert!(neg.four_octet_as);
        assert!(!neg.extended_message, "BIRD did not offer it");
        assert!(neg.route_refresh && neg.enhanced_route_refresh);
        let c = neg.codec();
        assert!(c.four_octet_as && c.extended_next_hop_ipv4 && !c.extended_message);
        assert_eq!(codec_context(&ours, &bird_open(65001)), c);
    }

    #[test]
    fn remote_as_external_accepts_any_other_as() {
        let ext = crate::config::REMOTE_AS_EXTERNAL;
        let n = neighbor("fe80::1", ext);
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        let neg = negotiate(&id(65002, ext), &ours, &bird_open(65001)).unwrap();
        assert_eq!(neg.peer_as, 65001);
        // Our own AS is internal, not external: Bad Peer AS (RFC 4271 §6.2).
        let e = negotiate(&id(65002, ext), &ours, &bird_open(65002)).unwrap_err();
        assert_eq!(e.subcode, open_error::BAD_PEER_AS);
    }

    #[test]
    fn several_cap5_entries_and_unknown_triples() {
        let n = neighbor("fe80::1", 65001);
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        let mut theirs = bird_open(65001);
        theirs
            .capabilities
            .retain(|c| !matches!(c, Capability::ExtendedNextHop(_)));
        // FRR style: several capability-5 entries; GoBGP style junk triples.
        theirs.capabilities.push(Capability::ExtendedNextHop(vec![
            ExtendedNextHopEntry {
                afi: 1,
                safi: 128,
                next_hop_afi: 2,
            },
            ExtendedNextHopEntry {
                afi: 1,
                safi: 300,
                next_hop_afi: 2,
            },
        ]));
        let neg = negotiate(&id(65002, 65001), &ours, &theirs).unwrap();
        assert!(neg.extended_next_hop.is_empty());
        theirs
            .capabilities
            .push(Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                afi: 1,
                safi: 1,
                next_hop_afi: 2,
            }]));
        let neg = negotiate(&id(65002, 65001), &ours, &theirs).unwrap();
        assert_eq!(neg.extended_next_hop, vec![Family::Ipv4Unicast]);
    }

    #[test]
    fn missing_capabilities_turn_features_off() {
        let n = neighbor("2001:db8::1", 65001);
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        let theirs = Open {
            version: 4,
            my_as: 65001,
            hold_time: 30,
            router_id: "192.0.2.9".parse().unwrap(),
            capabilities: vec![],
            other_params: vec![],
        };
        let neg = negotiate(&id(65002, 65001), &ours, &theirs).unwrap();
        assert_eq!(neg.families, vec![Family::Ipv4Unicast]);
        assert!(neg.extended_next_hop.is_empty());
        assert!(!neg.four_octet_as && !neg.route_refresh && !neg.enhanced_route_refresh);
        assert_eq!(neg.hold_time, 30);
        assert_eq!(neg.keepalive, 10);
    }

    #[test]
    fn open_errors() {
        let n = neighbor("2001:db8::1", 65001);
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        let check = |f: &dyn Fn(&mut Open), sub: u8| {
            let mut o = bird_open(65001);
            f(&mut o);
            let e = negotiate(&id(65002, 65001), &ours, &o).unwrap_err();
            assert_eq!((e.code, e.subcode), (2, sub), "{o:?}");
            e
        };
        let e = check(&|o| o.version = 3, 1);
        assert_eq!(e.data, vec![0, 4]);
        check(&|o| o.my_as = 65009, 2);
        check(
            &|o| {
                o.capabilities
                    .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
                o.my_as = 65009;
            },
            2,
        );
        check(&|o| o.router_id = Ipv4Addr::UNSPECIFIED, 3);
        check(&|o| o.hold_time = 1, 6);
        check(&|o| o.hold_time = 2, 6);
        check(&|o| o.other_params.push((9, vec![1])), 4);
        let e = check(
            &|o| {
                o.capabilities
                    .retain(|c| !matches!(c, Capability::Multiprotocol { .. }));
                o.capabilities
                    .push(Capability::Multiprotocol { afi: 25, safi: 65 });
            },
            7,
        );
        assert_eq!(e.data, vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1]);
        // Hold time 0 and >= 3 are fine.
        let mut o = bird_open(65001);
        o.hold_time = 0;
        let neg = negotiate(&id(65002, 65001), &ours, &o).unwrap();
        assert_eq!((neg.hold_time, neg.keepalive), (0, 0));
    }

    #[test]
    fn ibgp_same_router_id_rejected_ebgp_allowed() {
        let n = neighbor("2001:db8::1", 65001);
        let ours = build_open(&n, 65001, "192.0.2.1".parse().unwrap(), true);
        let mut o = bird_open(65001);
        o.router_id = "192.0.2.1".parse().unwrap();
        let e = negotiate(&id(65001, 65001), &ours, &o).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 3));
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        assert!(negotiate(&id(65002, 65001), &ours, &o).is_ok());
    }

    #[test]
    fn four_octet_peer_as() {
        let n = neighbor("2001:db8::1", 4_200_000_001);
        let ours = build_open(&n, 65002, "192.0.2.1".parse().unwrap(), true);
        let neg = negotiate(&id(65002, 4_200_000_001), &ours, &bird_open(4_200_000_001)).unwrap();
        assert_eq!(neg.peer_as, 4_200_000_001);
    }
}
