//! Route requests (hand-built: the hot path) and route messages of dumps
//! and events (netlink-packet-route).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netlink_packet_core::Parseable;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::*;
use crate::Gateway;

/// Which kind of route request to encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOp {
    /// Create only if no route with the same key exists (NLM_F_EXCL):
    /// the kernel refuses instead of overwriting a foreign route.
    Create,
    /// Replace a route we own (NLM_F_REPLACE).
    Replace,
    /// Delete, restricted by protocol so a foreign route never matches.
    Delete,
}

/// Fixed per-route settings.
#[derive(Clone, Copy, Debug)]
pub struct RouteParams {
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    pub prefsrc: Option<Ipv4Addr>,
}

impl RouteParams {
    /// The kernel stores IPv6 metric 0 as 1024 (IP6_RT_PRIO_USER).
    pub fn metric_for(&self, prefix: &IpNet) -> u32 {
        match prefix {
            IpNet::V6(_) if self.metric == 0 => 1024,
            _ => self.metric,
        }
    }
}

/// Why a route's next hops cannot be encoded (a per-route failure, never
/// a panic).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HopError {
    #[error("no next hop")]
    NoNextHop,
    #[error("IPv6 prefix with IPv4 gateway {0} is not supported")]
    V4GatewayForV6(IpAddr),
}

/// Whether a route with these hops can be encoded at all. A link-local
/// gateway always has its interface ([`Gateway::new`] refuses one
/// without), so that needs no check here.
pub fn check_route(prefix: &IpNet, hops: &[Gateway]) -> Result<(), HopError> {
    if hops.is_empty() {
        return Err(HopError::NoNextHop);
    }
    for h in hops {
        if matches!(prefix, IpNet::V6(_)) && h.ip().is_ipv4() {
            return Err(HopError::V4GatewayForV6(h.ip()));
        }
    }
    Ok(())
}

/// Append the gateway of one hop: RTA_GATEWAY in the route's own family,
/// RTA_VIA for an IPv6 gateway of an IPv4 route (Linux >= 5.2).
fn put_gateway(b: &mut MsgBuf, v4_route: bool, gw: &IpAddr) {
    match (v4_route, gw) {
        (true, IpAddr::V4(a)) => b.attr(RTA_GATEWAY, &a.octets()),
        (false, IpAddr::V6(a)) => b.attr(RTA_GATEWAY, &a.octets()),
        (true, IpAddr::V6(a)) => {
            let mut via = [0u8; 18];
            via[0..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            via[2..].copy_from_slice(&a.octets());
            b.attr(RTA_VIA, &via);
        }
        // Rejected by check_route before encoding.
        (false, IpAddr::V4(_)) => {}
    }
}

/// Append one route request. Call `check_route` first for installs.
pub fn put_route(
    b: &mut MsgBuf,
    op: RouteOp,
    seq: u32,
    p: &RouteParams,
    prefix: &IpNet,
    hops: &[Gateway],
    nh_id: Option<u32>,
) {
    let (ty, flags) = match op {
        RouteOp::Create => (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL),
        RouteOp::Replace => (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE),
        RouteOp::Delete => (RTM_DELROUTE, 0),
    };
    b.begin(ty, flags, seq);
    let v4 = matches!(prefix, IpNet::V4(_));
    let family = if v4 { AF_INET } else { AF_INET6 };
    let (scope, rtype) = if op == RouteOp::Delete {
        (RT_SCOPE_NOWHERE, 0)
    } else {
        (RT_SCOPE_UNIVERSE, RTN_UNICAST)
    };
    let table8 = if p.table < 256 { p.table as u8 } else { 0 };
    b.put(&[
        family,
        prefix.prefix_len(),
        0,
        0,
        table8,
        p.protocol,
        scope,
        rtype,
        0,
        0,
        0,
        0,
    ]);
    match prefix {
        IpNet::V4(n) => b.attr(RTA_DST, &n.network().octets()),
        IpNet::V6(n) => b.attr(RTA_DST, &n.network().octets()),
    }
    b.attr_u32(RTA_TABLE, p.table);
    b.attr_u32(RTA_PRIORITY, p.metric_for(prefix));
    if op == RouteOp::Delete {
        b.end();
        return;
    }
    if v4 {
        if let Some(src) = p.prefsrc {
            b.attr(RTA_PREFSRC, &src.octets());
        }
    }
    if let Some(id) = nh_id {
        b.attr_u32(RTA_NH_ID, id);
    } else if let [h] = hops {
        put_gateway(b, v4, &h.ip());
        if let Some(ix) = h.ifindex() {
            b.attr_u32(RTA_OIF, ix);
        }
    } else {
        let mp = b.open_nest(RTA_MULTIPATH);
        for h in hops {
            // struct rtnexthop { len u16, flags u8, hops u8, ifindex i32 }
            let at = b.buf.len();
            b.buf.extend_from_slice(&0u16.to_ne_bytes());
            b.buf.push(0);
            b.buf.push(0);
            b.buf
                .extend_from_slice(&(h.ifindex().unwrap_or(0) as i32).to_ne_bytes());
            put_gateway(b, v4, &h.ip());
            let len = (b.buf.len() - at) as u16;
            b.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        b.close_nest(mp);
    }
    b.end();
}

/// The same request as `put_route`, as netlink-packet-route's typed
/// message: the reference the hand-built encoder is tested against, and
/// what the measurements in README.md compare it with.
pub fn put_route_typed(
    b: &mut MsgBuf,
    op: RouteOp,
    seq: u32,
    p: &RouteParams,
    prefix: &IpNet,
    hops: &[Gateway],
    nh_id: Option<u32>,
) {
    let v4 = matches!(prefix, IpNet::V4(_));
    let gw = |g: &IpAddr| match (v4, g) {
        (true, IpAddr::V6(a)) => RouteAttribute::Via(RouteVia::Inet6(*a)),
        (_, g) => RouteAttribute::Gateway(RouteAddress::from(*g)),
    };
    let del = op == RouteOp::Delete;
    let mut m = RouteMessage::default();
    m.header.address_family = if v4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.destination_prefix_length = prefix.prefix_len();
    m.header.table = u8::try_from(p.table).unwrap_or(0);
    m.header.protocol = p.protocol.into();
    (m.header.scope, m.header.kind) = if del {
        (RouteScope::NoWhere, RouteType::Unspec)
    } else {
        (RouteScope::Universe, RouteType::Unicast)
    };
    let a = &mut m.attributes;
    a.push(RouteAttribute::Destination(RouteAddress::from(
        prefix.network(),
    )));
    a.push(RouteAttribute::Table(p.table));
    a.push(RouteAttribute::Priority(p.metric_for(prefix)));
    if !del {
        if let (true, Some(src)) = (v4, p.prefsrc) {
            a.push(RouteAttribute::PrefSource(RouteAddress::Inet(src)));
        }
        if let Some(id) = nh_id {
            a.push(RouteAttribute::NhId(id));
        } else if let [h] = hops {
            a.push(gw(&h.ip()));
            if let Some(ix) = h.ifindex() {
                a.push(RouteAttribute::Oif(ix));
            }
        } else {
            let mp = hops
                .iter()
                .map(|h| {
                    let mut nh = RouteNextHop::default();
                    nh.interface_index = h.ifindex().unwrap_or(0);
                    nh.attributes.push(gw(&h.ip()));
                    nh
                })
                .collect();
            a.push(RouteAttribute::MultiPath(mp));
        }
    }
    let (msg, flags) = match op {
        RouteOp::Create => (RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL),
        RouteOp::Replace => (
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        ),
        RouteOp::Delete => (RouteNetlinkMessage::DelRoute(m), 0),
    };
    b.append(msg, flags, seq);
}

/// A route as the kernel reports it in a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub protocol: u8,
    pub rtype: u8,
    pub metric: u32,
    pub prefsrc: Option<IpAddr>,
    pub hops: Vec<Gateway>,
    pub nh_id: Option<u32>,
}

/// A route message (RTM_NEWROUTE/RTM_DELROUTE, a dump entry or an
/// event), parsed by netlink-packet-route.
pub fn parse_route(payload: &[u8]) -> Option<KernelRoute> {
    let m = RouteMessage::parse(payload).ok()?;
    kernel_route(&m)
}

/// A route event: netlink-packet-route's reading, or where it refuses
/// the message (an attribute in a shape it does not know, on someone
/// else's route) the dump parser's, so that a foreign replace of one of
/// our routes never goes unnoticed.
pub fn parse_route_event(payload: &[u8]) -> Option<KernelRoute> {
    parse_route(payload).or_else(|| super::parse_route_raw(payload))
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(x) => Some(IpAddr::V4(*x)),
        RouteAddress::Inet6(x) => Some(IpAddr::V6(*x)),
        _ => None,
    }
}

fn via_addr(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(x) => Some(IpAddr::V4(*x)),
        RouteVia::Inet6(x) => Some(IpAddr::V6(*x)),
        _ => None,
    }
}

/// The gateway among a route's (or a multipath hop's) attributes.
fn gateway_of(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    let mut gw = None;
    for a in attrs {
        match a {
            RouteAttribute::Gateway(g) => gw = route_addr(g),
            RouteAttribute::Via(v) => gw = via_addr(v),
            _ => {}
        }
    }
    gw
}

/// A gateway the kernel reports. The kernel refuses a link-local gateway
/// without a device, so it never reports one; were it to, the hop is
/// left out, which makes the route differ from any we want.
pub(super) fn kernel_hop(addr: IpAddr, ifindex: Option<u32>) -> Option<Gateway> {
    Gateway::new(addr, ifindex).ok()
}

/// What the FIB keeps of a parsed route message.
pub fn kernel_route(m: &RouteMessage) -> Option<KernelRoute> {
    let h = &m.header;
    let mut table = h.table as u32;
    let mut dst = None;
    let mut metric = 0;
    let mut prefsrc = None;
    let mut oif = None;
    let mut hops = Vec::new();
    let mut nh_id = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = route_addr(d),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::PrefSource(p) => prefsrc = route_addr(p),
            RouteAttribute::Oif(ix) => oif = Some(*ix),
            RouteAttribute::NhId(id) => nh_id = Some(*id),
            RouteAttribute::MultiPath(mp) => {
                for nh in mp {
                    if let Some(g) = gateway_of(&nh.attributes) {
                        let ix = nh.interface_index;
                        hops.extend(kernel_hop(g, (ix != 0).then_some(ix)));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(g) = gateway_of(&m.attributes) {
        hops.extend(kernel_hop(g, oif));
    }
    hops.sort();
    let len = h.destination_prefix_length;
    let prefix = match (h.address_family, dst) {
        (AddressFamily::Inet, Some(IpAddr::V4(a))) => IpNet::V4(Ipv4Net::new(a, len).ok()?),
        (AddressFamily::Inet, None) => IpNet::V4(Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).ok()?),
        (AddressFamily::Inet6, Some(IpAddr::V6(a))) => IpNet::V6(Ipv6Net::new(a, len).ok()?),
        (AddressFamily::Inet6, None) => IpNet::V6(Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0).ok()?),
        _ => return None,
    };
    Some(KernelRoute {
        prefix,
        table,
        protocol: h.protocol.into(),
        rtype: h.kind.into(),
        metric,
        prefsrc,
        hops,
        nh_id,
    })
}

/// A filtered route dump request: the kernel filters by table and, when
/// non-zero, protocol (needs NETLINK_GET_STRICT_CHK).
pub fn route_dump_request(family: AddressFamily, table: u32, protocol: u8) -> MsgBuf {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    m.header.table = u8::try_from(table).unwrap_or(0);
    m.header.protocol = protocol.into();
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unspec;
    m.attributes.push(RouteAttribute::Table(table));
    MsgBuf::message(RouteNetlinkMessage::GetRoute(m), NLM_F_DUMP)
}
