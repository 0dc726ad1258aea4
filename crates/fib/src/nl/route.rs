//! Route requests and route dumps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::*;
use crate::FibNextHop;

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
    /// The kernel would take it without one and pick no link.
    #[error("link-local gateway {0} needs an interface")]
    LinkLocalWithoutInterface(IpAddr),
}

/// Whether a route with these hops can be encoded at all.
pub fn check_route(prefix: &IpNet, hops: &[FibNextHop]) -> Result<(), HopError> {
    if hops.is_empty() {
        return Err(HopError::NoNextHop);
    }
    for h in hops {
        if matches!(prefix, IpNet::V6(_)) && h.gateway.is_ipv4() {
            return Err(HopError::V4GatewayForV6(h.gateway));
        }
        if h.ifindex.is_none() && matches!(h.gateway, IpAddr::V6(g) if g.is_unicast_link_local()) {
            return Err(HopError::LinkLocalWithoutInterface(h.gateway));
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
    hops: &[FibNextHop],
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
        put_gateway(b, v4, &h.gateway);
        if let Some(ix) = h.ifindex {
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
                .extend_from_slice(&(h.ifindex.unwrap_or(0) as i32).to_ne_bytes());
            put_gateway(b, v4, &h.gateway);
            let len = (b.buf.len() - at) as u16;
            b.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        b.close_nest(mp);
    }
    b.end();
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
    pub hops: Vec<FibNextHop>,
    pub nh_id: Option<u32>,
}

pub(super) fn addr_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => {
            let a: [u8; 4] = b.get(0..4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        }
        AF_INET6 => {
            let a: [u8; 16] = b.get(0..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn via_from(b: &[u8]) -> Option<IpAddr> {
    let fam = u16_at(b, 0)?;
    addr_from(fam as u8, b.get(2..)?)
}

/// Parse an RTM_NEWROUTE payload.
pub fn parse_route(payload: &[u8]) -> Option<KernelRoute> {
    let hdr = payload.get(0..12)?;
    let family = hdr[0];
    let dst_len = hdr[1];
    let mut table = hdr[4] as u32;
    let protocol = hdr[5];
    let rtype = hdr[7];
    let mut dst = None;
    let mut metric = 0;
    let mut prefsrc = None;
    let mut gw = None;
    let mut oif = None;
    let mut hops = Vec::new();
    let mut nh_id = None;
    for (ty, p) in attrs(payload.get(12..)?) {
        match ty {
            RTA_DST => dst = addr_from(family, p),
            RTA_TABLE => table = u32_at(p, 0)?,
            RTA_PRIORITY => metric = u32_at(p, 0)?,
            RTA_PREFSRC => prefsrc = addr_from(family, p),
            RTA_GATEWAY => gw = addr_from(family, p),
            RTA_VIA => gw = via_from(p),
            RTA_OIF => oif = u32_at(p, 0),
            RTA_NH_ID => nh_id = u32_at(p, 0),
            RTA_MULTIPATH => {
                let mut rest = p;
                while rest.len() >= 8 {
                    let len = u16_at(rest, 0)? as usize;
                    if len < 8 || len > rest.len() {
                        break;
                    }
                    let ifindex = u32_at(rest, 4)?;
                    let mut hgw = None;
                    for (t, q) in attrs(rest.get(8..len)?) {
                        match t {
                            RTA_GATEWAY => hgw = addr_from(family, q),
                            RTA_VIA => hgw = via_from(q),
                            _ => {}
                        }
                    }
                    if let Some(g) = hgw {
                        hops.push(FibNextHop {
                            gateway: g,
                            ifindex: (ifindex != 0).then_some(ifindex),
                        });
                    }
                    rest = rest.get(align(len)..).unwrap_or(&[]);
                }
            }
            _ => {}
        }
    }
    if let Some(g) = gw {
        hops.push(FibNextHop {
            gateway: g,
            ifindex: oif,
        });
    }
    hops.sort();
    let prefix = match (family, dst) {
        (AF_INET, Some(IpAddr::V4(a))) => IpNet::V4(Ipv4Net::new(a, dst_len).ok()?),
        (AF_INET, None) => IpNet::V4(Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).ok()?),
        (AF_INET6, Some(IpAddr::V6(a))) => IpNet::V6(Ipv6Net::new(a, dst_len).ok()?),
        (AF_INET6, None) => IpNet::V6(Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0).ok()?),
        _ => return None,
    };
    Some(KernelRoute {
        prefix,
        table,
        protocol,
        rtype,
        metric,
        prefsrc,
        hops,
        nh_id,
    })
}

/// A filtered route dump request: the kernel filters by table and, when
/// non-zero, protocol (needs NETLINK_GET_STRICT_CHK).
pub fn route_dump_request(family: u8, table: u32, protocol: u8) -> MsgBuf {
    let mut b = MsgBuf::with_capacity(64);
    b.begin(RTM_GETROUTE, NLM_F_DUMP, 0);
    let table8 = if table < 256 { table as u8 } else { 0 };
    b.put(&[family, 0, 0, 0, table8, protocol, 0, 0, 0, 0, 0, 0]);
    b.attr_u32(RTA_TABLE, table);
    b.end();
    b
}
