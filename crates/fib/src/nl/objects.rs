//! Links, addresses and nexthop objects: requests and dump parsers.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::FibNextHop;

/// Link from an RTM_NEWLINK/RTM_DELLINK payload: (ifindex, flags).
pub fn parse_link(payload: &[u8]) -> Option<(u32, u32)> {
    Some((u32_at(payload, 4)?, u32_at(payload, 8)?))
}

/// Whether routes over a link with these flags stay in the kernel. Plain
/// routes are flushed when the link goes admin down; nexthop objects are
/// also flushed on carrier loss (neither IFF_RUNNING nor IFF_LOWER_UP).
pub fn link_usable(flags: u32, need_carrier: bool) -> bool {
    const IFF_LOWER_UP: u32 = 0x1_0000;
    let up = flags & libc::IFF_UP as u32 != 0;
    let carrier = flags & (libc::IFF_RUNNING as u32 | IFF_LOWER_UP) != 0;
    up && (!need_carrier || carrier)
}

pub fn link_dump_request() -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    b.begin(RTM_GETLINK, NLM_F_DUMP, 0);
    b.put(&[0u8; 16]);
    b.end();
    b
}

pub fn addr_dump_request(family: u8) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    b.begin(RTM_GETADDR, NLM_F_DUMP, 0);
    b.put(&[family, 0, 0, 0, 0, 0, 0, 0]);
    b.end();
    b
}

/// IPv4 address from an RTM_NEWADDR/RTM_DELADDR payload:
/// (ifindex, IFA_LOCAL or IFA_ADDRESS, carries our label).
pub fn parse_addr4(payload: &[u8]) -> Option<(u32, Ipv4Addr, bool)> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let index = u32_at(payload, 4)?;
    let mut local = None;
    let mut address = None;
    let mut ours = false;
    for (ty, p) in attrs(payload.get(8..)?) {
        let a: Option<[u8; 4]> = p.get(0..4).and_then(|s| s.try_into().ok());
        match ty {
            IFA_LOCAL => local = a.map(Ipv4Addr::from),
            IFA_ADDRESS => address = a.map(Ipv4Addr::from),
            IFA_LABEL => ours = p.split(|b| *b == 0).next() == Some(OUR_LABEL.as_bytes()),
            _ => {}
        }
    }
    Some((index, local.or(address)?, ours))
}

/// Label on the source address we add, so that after a restart (or a
/// graceful restart that kept it) we still know it is ours to remove.
pub const OUR_LABEL: &str = "lo:via6";

/// Add or delete an IPv4 /32 on an interface.
pub fn addr_request(add: bool, ifindex: u32, a: Ipv4Addr) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    if add {
        b.begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 0);
    } else {
        b.begin(RTM_DELADDR, 0, 0);
    }
    b.put(&[AF_INET, 32, 0, RT_SCOPE_UNIVERSE]);
    b.put(&ifindex.to_ne_bytes());
    b.attr(IFA_LOCAL, &a.octets());
    b.attr(IFA_ADDRESS, &a.octets());
    if add {
        let mut label = OUR_LABEL.as_bytes().to_vec();
        label.push(0);
        b.attr(IFA_LABEL, &label);
    }
    b.end();
    b
}

/// Create (exclusively) a single-gateway nexthop object.
pub fn nexthop_request(id: u32, protocol: u8, hop: &FibNextHop) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    let family = if hop.gateway.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    b.begin(RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_EXCL, 0);
    b.put(&[family, RT_SCOPE_UNIVERSE, protocol, 0, 0, 0, 0, 0]);
    b.attr_u32(NHA_ID, id);
    match hop.gateway {
        IpAddr::V4(a) => b.attr(NHA_GATEWAY, &a.octets()),
        IpAddr::V6(a) => b.attr(NHA_GATEWAY, &a.octets()),
    }
    if let Some(ix) = hop.ifindex {
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
    Single(FibNextHop),
    /// A multipath group of these member ids.
    Group(Vec<u32>),
    /// Blackhole, FDB, resilient group, ...: never ours to use.
    Other,
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
        (false, None, Some(g)) => NhKind::Single(FibNextHop {
            gateway: g,
            ifindex: oif,
        }),
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
