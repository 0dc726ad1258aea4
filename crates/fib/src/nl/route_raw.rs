//! The hand-built route parser, kept for the start-up dump of a full
//! table (its measurement against netlink-packet-route is in README.md,
//! "Why hand-built where it is"). Every field it reads is checked
//! against netlink-packet-route's parser in `tests.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::*;

fn addr_from(family: u8, b: &[u8]) -> Option<IpAddr> {
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

/// Parse an RTM_NEWROUTE payload by hand: the start-up dump of a full
/// table (see README.md, "Why hand-built where it is").
pub fn parse_route_raw(payload: &[u8]) -> Option<KernelRoute> {
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
                        hops.extend(kernel_hop(g, (ifindex != 0).then_some(ifindex)));
                    }
                    rest = rest.get(align(len)..).unwrap_or(&[]);
                }
            }
            _ => {}
        }
    }
    if let Some(g) = gw {
        hops.extend(kernel_hop(g, oif));
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
