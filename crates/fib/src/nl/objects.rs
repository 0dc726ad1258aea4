//! Links, addresses and nexthop objects: requests and parsers. Links and
//! addresses are netlink-packet-route messages; nexthop objects are
//! built by hand (netlink-packet-route has no nexthop messages).

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::Parseable;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::*;
use crate::Gateway;

/// Link from an RTM_NEWLINK/RTM_DELLINK payload: (ifindex, flags). Only
/// the header is read: the state is all the FIB follows, and a link
/// attribute the parser does not know must not hide a link going down.
pub fn parse_link(payload: &[u8]) -> Option<(u32, LinkFlags)> {
    let h = LinkHeader::parse(payload).ok()?;
    Some((h.index, h.flags))
}

/// Whether routes over a link with these flags stay in the kernel. Plain
/// routes are flushed when the link goes admin down; nexthop objects are
/// also flushed on carrier loss (neither IFF_RUNNING nor IFF_LOWER_UP).
pub fn link_usable(flags: LinkFlags, need_carrier: bool) -> bool {
    let up = flags.contains(LinkFlags::Up);
    let carrier = flags.intersects(LinkFlags::Running | LinkFlags::LowerUp);
    up && (!need_carrier || carrier)
}

pub fn link_dump_request() -> MsgBuf {
    let m = RouteNetlinkMessage::GetLink(LinkMessage::default());
    MsgBuf::message(m, NLM_F_DUMP)
}

pub fn addr_dump_request(family: AddressFamily) -> MsgBuf {
    let mut a = AddressMessage::default();
    a.header.family = family;
    MsgBuf::message(RouteNetlinkMessage::GetAddress(a), NLM_F_DUMP)
}

/// An IPv4 address from an RTM_NEWADDR/RTM_DELADDR message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr4 {
    pub ifindex: u32,
    /// IFA_LOCAL, or IFA_ADDRESS without it.
    pub addr: Ipv4Addr,
    /// Carries our label: added by us (or an earlier run of ours).
    pub ours: bool,
}

/// The IPv4 address of an RTM_NEWADDR/RTM_DELADDR payload.
pub fn parse_addr4(payload: &[u8]) -> Option<Addr4> {
    let m = AddressMessage::parse(payload).ok()?;
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    let mut local = None;
    let mut address = None;
    let mut ours = false;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(IpAddr::V4(x)) => local = Some(*x),
            AddressAttribute::Address(IpAddr::V4(x)) => address = Some(*x),
            AddressAttribute::Label(l) => ours = l == OUR_LABEL,
            _ => {}
        }
    }
    Some(Addr4 {
        ifindex: m.header.index,
        addr: local.or(address)?,
        ours,
    })
}

/// Label on the source address we add, so that after a restart (or a
/// graceful restart that kept it) we still know it is ours to remove.
pub const OUR_LABEL: &str = "lo:via6";

/// Add (exclusively, with our label) or delete an IPv4 /32 on an
/// interface.
pub fn addr_request(add: bool, ifindex: u32, a: Ipv4Addr) -> MsgBuf {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = 32;
    m.header.scope = AddressScope::Universe;
    m.header.index = ifindex;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(a)));
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(a)));
    if add {
        m.attributes
            .push(AddressAttribute::Label(OUR_LABEL.to_string()));
        MsgBuf::message(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        MsgBuf::message(RouteNetlinkMessage::DelAddress(m), 0)
    }
}

/// Create (exclusively) a single-gateway nexthop object.
pub fn nexthop_request(id: u32, protocol: u8, hop: &Gateway) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    let family = if hop.ip().is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    b.begin(RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_EXCL, 0);
    b.put(&[family, RT_SCOPE_UNIVERSE, protocol, 0, 0, 0, 0, 0]);
    b.attr_u32(NHA_ID, id);
    match hop.ip() {
        IpAddr::V4(a) => b.attr(NHA_GATEWAY, &a.octets()),
        IpAddr::V6(a) => b.attr(NHA_GATEWAY, &a.octets()),
    }
    if let Some(ix) = hop.ifindex() {
        b.attr_u32(NHA_OIF, ix);
    }
    b.end();
    b
}

pub fn nexthop_dump_request() -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    b.begin(RTM_GETNEXTHOP, NLM_F_DUMP, 0);
    b.put(&[0u8; 8]);
    b.end();
    b
}

/// What a dumped nexthop object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NhKind {
    /// One gateway (and interface).
    Single(Gateway),
    /// A multipath group of these member ids.
    Group(Vec<u32>),
    /// Blackhole, FDB, resilient group, ...: never ours to use.
    Other,
}

fn addr_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(<[u8; 4]>::try_from(b.get(0..4)?).ok()?.into())),
        AF_INET6 => Some(IpAddr::V6(<[u8; 16]>::try_from(b.get(0..16)?).ok()?.into())),
        _ => None,
    }
}

/// A nexthop object from a dump: (id, protocol, kind).
pub fn parse_nexthop(payload: &[u8]) -> Option<(u32, u8, NhKind)> {
    let hdr = payload.get(0..8)?;
    let family = hdr[0];
    let protocol = hdr[2];
    let mut id = None;
    let mut gw = None;
    let mut oif = None;
    let mut group = None;
    let mut other = false;
    for (ty, p) in attrs(payload.get(8..)?) {
        match ty {
            NHA_ID => id = u32_at(p, 0),
            NHA_GATEWAY => gw = addr_from(family, p),
            NHA_OIF => oif = u32_at(p, 0),
            NHA_GROUP => {
                group = Some(
                    p.chunks_exact(8)
                        .filter_map(|c| u32_at(c, 0))
                        .collect::<Vec<u32>>(),
                )
            }
            NHA_GROUP_TYPE => other |= u16_at(p, 0) != Some(0),
            NHA_BLACKHOLE => other = true,
            _ => {}
        }
    }
    let kind = match (other, group, gw) {
        (false, Some(m), _) => NhKind::Group(m),
        // A gateway the kernel would not have (link-local without a
        // device) is nothing we can use either.
        (false, None, Some(g)) => super::kernel_hop(g, oif).map_or(NhKind::Other, NhKind::Single),
        _ => NhKind::Other,
    };
    Some((id?, protocol, kind))
}

/// Create (exclusively) or replace a multipath group of nexthop objects,
/// each member with weight 1.
pub fn nexthop_group_request(replace: bool, id: u32, protocol: u8, members: &[u32]) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64 + 8 * members.len());
    let flags = if replace {
        NLM_F_CREATE | NLM_F_REPLACE
    } else {
        NLM_F_CREATE | NLM_F_EXCL
    };
    b.begin(RTM_NEWNEXTHOP, flags, 0);
    b.put(&[0, RT_SCOPE_UNIVERSE, protocol, 0, 0, 0, 0, 0]);
    b.attr_u32(NHA_ID, id);
    // struct nexthop_grp { u32 id; u8 weight (minus one); u8; u16 }
    let mut grp = Vec::with_capacity(8 * members.len());
    for m in members {
        grp.extend_from_slice(&m.to_ne_bytes());
        grp.extend_from_slice(&[0u8; 4]);
    }
    b.attr(NHA_GROUP, &grp);
    b.end();
    b
}

/// Delete a nexthop object (single or group) by id.
pub fn nexthop_delete_request(id: u32) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    b.begin(RTM_DELNEXTHOP, 0, 0);
    b.put(&[0u8; 8]);
    b.attr_u32(NHA_ID, id);
    b.end();
    b
}
