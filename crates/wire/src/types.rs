//! The typed values the codec produces and consumes. This is the contract
//! between `wire` and the rest of via6: change it with care.

use std::net::{Ipv4Addr, Ipv6Addr};

pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Address family identifiers (IANA), as carried on the wire.
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
/// Subsequent address family: unicast.
pub const SAFI_UNICAST: u8 = 1;

/// AS_TRANS (RFC 6793 §9): stands in for a 4-octet ASN in 2-octet fields.
pub const AS_TRANS: u16 = 23456;

/// The address families via6 routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => AFI_IPV4,
            Family::Ipv6Unicast => AFI_IPV6,
        }
    }
    pub fn safi(self) -> u8 {
        SAFI_UNICAST
    }
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (AFI_IPV6, SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }
}

/// An IPv6 next hop as RFC 2545 §3 / RFC 8950 §3 carry it: a global
/// address, a link-local one, or both. Both halves are kept because the
/// link-local half is what a link-local-only session actually routes by,
/// and dropping it (storing one `IpAddr`) is the classic bug.
///
/// `global` is `None` when the peer sent `::` (BIRD's `[::, LL]`) or sent a
/// link-local address alone (`[LL]`, GoBGP) or twice (`[LL, LL]`, FRR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6NextHop {
    pub global: Option<Ipv6Addr>,
    pub link_local: Option<Ipv6Addr>,
}

/// A BGP next hop after normalisation: the protocol-level value, independent
/// of which of the wire shapes carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6(Ipv6NextHop),
}

/// The byte shape of an MP_REACH_NLRI next hop, kept exactly as received so
/// that decode/encode round-trips byte for byte (RFC 4760 §3, RFC 2545 §3,
/// RFC 8950 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    /// 4 bytes: a plain IPv4 next hop inside MP_REACH (BIRD sends this).
    V4(Ipv4Addr),
    /// 16 bytes: one IPv6 address, global or link-local.
    V6(Ipv6Addr),
    /// 32 bytes: first address (global, or `::`, or a link-local copy),
    /// second address (link-local).
    V6Pair(Ipv6Addr, Ipv6Addr),
}

/// How we lay out an IPv6 next hop we send with only a link-local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LinkLocalForm {
    /// `[::, LL]`, 32 bytes (BIRD's native form). Default.
    #[default]
    Native,
    /// `[LL]`, 16 bytes.
    Single,
    /// `[LL, LL]`, 32 bytes.
    Double,
}

/// ORIGIN attribute values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// One AS_PATH segment (RFC 4271 §4.3, RFC 5065 for the confederation types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AsSegment {
    Set(Vec<u32>),
    Sequence(Vec<u32>),
    ConfedSequence(Vec<u32>),
    ConfedSet(Vec<u32>),
}

/// An AS path, always held with 4-octet ASNs in memory; the codec converts
/// from and to 2-octet form per the session's negotiated capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

/// AGGREGATOR / AS4_AGGREGATOR (RFC 4271 §5.1.7, RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// LARGE_COMMUNITY value (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data_1: u32,
    pub local_data_2: u32,
}

/// An attribute we do not interpret, kept byte-exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<IpNet>,
}

/// Every path attribute of one UPDATE. Optional fields are absent when the
/// attribute was not in the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub as4_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub as4_aggregator: Option<Aggregator>,
    pub communities: Vec<u32>,
    pub extended_communities: Vec<[u8; 8]>,
    pub large_communities: Vec<LargeCommunity>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// Attributes we do not interpret, in arrival order.
    pub unknown: Vec<RawAttribute>,
}

/// UPDATE message (RFC 4271 §4.3). `withdrawn` and `nlri` are the classic
/// IPv4 fields; other families travel in `attributes.mp_reach/mp_unreach`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Ipv4Net>,
}

/// One (AFI, SAFI, next-hop AFI) triple of the Extended Next Hop capability
/// (RFC 8950 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHopEntry {
    pub afi: u16,
    pub safi: u16,
    pub next_hop_afi: u16,
}

/// ADD-PATH send/receive mode (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddPathEntry {
    pub afi: u16,
    pub safi: u8,
    /// 1 = receive, 2 = send, 3 = both.
    pub send_receive: u8,
}

/// Graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    pub restart_flags: u8,
    pub restart_time: u16,
    /// (AFI, SAFI, flags) per family.
    pub families: Vec<(u16, u8, u8)>,
}

/// Long-lived graceful restart capability entry (RFC 9494 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LlgrEntry {
    pub afi: u16,
    pub safi: u8,
    pub flags: u8,
    /// 24-bit stale time in seconds.
    pub stale_time: u32,
}

/// BGP capabilities (RFC 5492) via6 knows; anything else is kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Code 1 (RFC 4760 §8): AFI, SAFI.
    Multiprotocol { afi: u16, safi: u8 },
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 5 (RFC 8950 §4): one capability may carry several triples.
    ExtendedNextHop(Vec<ExtendedNextHopEntry>),
    /// Code 6 (RFC 8654).
    ExtendedMessage,
    /// Code 64 (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Code 69 (RFC 7911).
    AddPath(Vec<AddPathEntry>),
    /// Code 70 (RFC 7313).
    EnhancedRouteRefresh,
    /// Code 71 (RFC 9494).
    LongLivedGracefulRestart(Vec<LlgrEntry>),
    /// Any other code, value kept byte-exact.
    Unknown { code: u8, value: Vec<u8> },
}

/// OPEN message (RFC 4271 §4.2). Capabilities are flattened out of the
/// optional parameters (RFC 5492); other optional parameters are kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS for large ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
    /// Non-capability optional parameters: (type, value).
    pub other_params: Vec<(u8, Vec<u8>)>,
}

/// NOTIFICATION message (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// ROUTE-REFRESH message (RFC 2918, subtypes per RFC 7313 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    /// 0 = normal request, 1 = BoRR, 2 = EoRR.
    pub subtype: u8,
    pub safi: u8,
}

/// A BGP message.
// UPDATE dominates the traffic, so boxing it would cost an allocation per
// message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}
