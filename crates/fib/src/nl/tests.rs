//! Encoding and parsing round trips, without a kernel.

use std::net::Ipv4Addr;

use ipnet::IpNet;

use super::*;
use crate::Gateway;

fn hop(g: &str, ix: Option<u32>) -> Gateway {
    Gateway::new(g.parse().unwrap(), ix).unwrap()
}

const P: RouteParams = RouteParams {
    table: 254,
    protocol: 186,
    metric: 20,
    prefsrc: Some(Ipv4Addr::new(192, 0, 2, 1)),
};

/// Encoding an IPv4-via-IPv6 route yields RTA_VIA with AF_INET6, the
/// interface and prefsrc, and our own parser reads it back.
#[test]
fn v4_via_v6_roundtrip() {
    let mut b = MsgBuf::with_capacity(256);
    let prefix: IpNet = "198.51.100.0/24".parse().unwrap();
    let hops = [hop("fe80::1", Some(7))];
    put_route(&mut b, RouteOp::Create, 9, &P, &prefix, &hops, None);
    let m = Messages::new(b.bytes()).next().unwrap();
    assert_eq!(m.ty, RTM_NEWROUTE);
    assert_eq!(m.seq, 9);
    assert_eq!(
        m.flags,
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
        "create must be exclusive"
    );
    let r = parse_route(m.payload).unwrap();
    assert_eq!(r.prefix, prefix);
    assert_eq!(r.hops, hops.to_vec());
    assert_eq!(r.metric, 20);
    assert_eq!(r.protocol, 186);
    assert_eq!(r.prefsrc, Some("192.0.2.1".parse().unwrap()));
    let via = attrs(&m.payload[12..])
        .find(|(t, _)| *t == RTA_VIA)
        .unwrap();
    assert_eq!(u16_at(via.1, 0), Some(AF_INET6 as u16));
}

#[test]
fn multipath_roundtrip() {
    let mut b = MsgBuf::with_capacity(256);
    let prefix: IpNet = "10.0.0.0/8".parse().unwrap();
    let mut hops = vec![hop("fe80::2", Some(3)), hop("192.0.2.9", Some(4))];
    put_route(&mut b, RouteOp::Replace, 1, &P, &prefix, &hops, None);
    let m = Messages::new(b.bytes()).next().unwrap();
    let r = parse_route(m.payload).unwrap();
    hops.sort();
    assert_eq!(r.hops, hops);
}

#[test]
fn delete_is_protocol_scoped() {
    let mut b = MsgBuf::with_capacity(256);
    let prefix: IpNet = "2001:db8::/32".parse().unwrap();
    put_route(&mut b, RouteOp::Delete, 1, &P, &prefix, &[], None);
    let m = Messages::new(b.bytes()).next().unwrap();
    assert_eq!(m.ty, RTM_DELROUTE);
    assert_eq!(m.payload[5], 186);
    let r = parse_route(m.payload).unwrap();
    assert!(r.prefsrc.is_none(), "no prefsrc on deletes");
}

#[test]
fn ack_only_on_last() {
    let mut b = MsgBuf::with_capacity(1024);
    let prefix: IpNet = "10.0.0.0/8".parse().unwrap();
    let hops = [hop("fe80::1", Some(1))];
    put_route(&mut b, RouteOp::Create, 1, &P, &prefix, &hops, None);
    put_route(&mut b, RouteOp::Create, 2, &P, &prefix, &hops, None);
    b.add_ack_last();
    let f: Vec<u16> = Messages::new(b.bytes())
        .map(|m| m.flags & NLM_F_ACK)
        .collect();
    assert_eq!(f, vec![0, NLM_F_ACK]);
}

#[test]
fn nexthop_roundtrip_and_nh_id_route() {
    let h = hop("fe80::1", Some(4));
    let b = nexthop_request(77, 186, &h);
    let m = Messages::new(b.bytes()).next().unwrap();
    assert_eq!(m.ty, RTM_NEWNEXTHOP);
    assert_eq!(parse_nexthop(m.payload), Some((77, 186, NhKind::Single(h))));
    let b = nexthop_group_request(false, 78, 186, &[77, 79]);
    let m = Messages::new(b.bytes()).next().unwrap();
    assert_eq!(
        parse_nexthop(m.payload),
        Some((78, 186, NhKind::Group(vec![77, 79])))
    );
    let mut b = MsgBuf::with_capacity(256);
    let prefix: IpNet = "10.0.0.0/8".parse().unwrap();
    put_route(&mut b, RouteOp::Create, 1, &P, &prefix, &[h], Some(77));
    let m = Messages::new(b.bytes()).next().unwrap();
    let r = parse_route(m.payload).unwrap();
    assert_eq!(r.nh_id, Some(77));
    assert!(r.hops.is_empty(), "nh id and gateway are exclusive");
}

#[test]
fn check_rejects_bad_hops() {
    let v6: IpNet = "2001:db8::/32".parse().unwrap();
    let v4: IpNet = "10.0.0.0/8".parse().unwrap();
    let v4gw = hop("192.0.2.1", None).ip();
    assert_eq!(
        check_route(&v6, &[hop("192.0.2.1", None)]),
        Err(HopError::V4GatewayForV6(v4gw))
    );
    // A link-local gateway without an interface cannot reach here:
    // `Gateway::new` refuses it (tested in the nexthop crate).
    assert_eq!(check_route(&v4, &[]), Err(HopError::NoNextHop));
    assert!(check_route(&v4, &[hop("fe80::1", Some(2))]).is_ok());
    assert!(check_route(&v4, &[hop("2001:db8::1", None)]).is_ok());
}

#[test]
fn truncated_input_is_safe() {
    let mut b = MsgBuf::with_capacity(256);
    let prefix: IpNet = "10.0.0.0/8".parse().unwrap();
    put_route(
        &mut b,
        RouteOp::Create,
        1,
        &P,
        &prefix,
        &[hop("fe80::1", Some(2))],
        None,
    );
    let bytes = b.bytes();
    for n in 0..bytes.len() {
        for m in Messages::new(&bytes[..n]) {
            let _ = parse_route(m.payload);
        }
        let _ = parse_route(&bytes[NLMSG_HDRLEN.min(n)..n]);
    }
}

/// The hand-built hot-path encoder writes byte for byte what
/// netlink-packet-route writes for the same request, so its message
/// types, flags and attribute codes are the library's.
#[test]
fn hand_built_routes_match_the_library() {
    let v4: IpNet = "198.51.100.0/24".parse().unwrap();
    let v6: IpNet = "2001:db8::/32".parse().unwrap();
    let cases: Vec<(RouteOp, IpNet, Vec<Gateway>, Option<u32>)> = vec![
        (RouteOp::Create, v4, vec![hop("fe80::1", Some(7))], None),
        (RouteOp::Replace, v4, vec![hop("192.0.2.1", None)], None),
        (RouteOp::Create, v6, vec![hop("fe80::1", Some(3))], None),
        (
            RouteOp::Replace,
            v4,
            vec![hop("fe80::2", Some(3)), hop("192.0.2.9", Some(4))],
            None,
        ),
        (
            RouteOp::Create,
            v6,
            vec![hop("fe80::2", Some(3)), hop("2001:db8::9", None)],
            None,
        ),
        (
            RouteOp::Create,
            v4,
            vec![hop("fe80::1", Some(7))],
            Some(186_001),
        ),
        (RouteOp::Delete, v4, vec![], None),
        (RouteOp::Delete, v6, vec![], None),
    ];
    for (op, prefix, hops, nh) in cases {
        let mut b = MsgBuf::with_capacity(256);
        put_route(&mut b, op, 42, &P, &prefix, &hops, nh);
        let mut lib = MsgBuf::with_capacity(256);
        put_route_typed(&mut lib, op, 42, &P, &prefix, &hops, nh);
        assert_eq!(b.bytes(), lib.bytes(), "{op:?} {prefix} {hops:?} {nh:?}");
    }
}

/// The hand-built dump parser reads what netlink-packet-route's parser
/// reads, for every request shape we write and for a dumped route with
/// attributes we never write (cache info, preference, a mark).
#[test]
fn raw_parser_agrees_with_the_library() {
    use netlink_packet_core::Parseable;
    use netlink_packet_route::route::{RouteAttribute, RouteMessage, RoutePreference};
    let v4: IpNet = "198.51.100.0/24".parse().unwrap();
    let v6: IpNet = "2001:db8::/32".parse().unwrap();
    let mut msgs = MsgBuf::with_capacity(4096);
    let two = vec![hop("fe80::2", Some(3)), hop("192.0.2.9", Some(4))];
    put_route(
        &mut msgs,
        RouteOp::Create,
        1,
        &P,
        &v4,
        &[hop("fe80::1", Some(7))],
        None,
    );
    put_route(&mut msgs, RouteOp::Replace, 2, &P, &v4, &two, None);
    put_route(
        &mut msgs,
        RouteOp::Create,
        3,
        &P,
        &v6,
        &[hop("fe80::1", Some(3))],
        None,
    );
    put_route(&mut msgs, RouteOp::Create, 4, &P, &v4, &[], Some(186_001));
    put_route(&mut msgs, RouteOp::Delete, 5, &P, &v6, &[], None);
    let mut m = RouteMessage::parse(&msgs.bytes()[NLMSG_HDRLEN..]).unwrap();
    m.attributes
        .push(RouteAttribute::Preference(RoutePreference::High));
    m.attributes.push(RouteAttribute::Mark(7));
    m.attributes.push(RouteAttribute::Oif(9));
    let mut extra = MsgBuf::with_capacity(256);
    extra.append(netlink_packet_route::RouteNetlinkMessage::NewRoute(m), 0, 6);
    let mut n = 0;
    for b in [msgs.bytes(), extra.bytes()] {
        for msg in Messages::new(b) {
            let raw = parse_route_raw(msg.payload).expect("raw parser reads it");
            assert_eq!(Some(raw), parse_route(msg.payload), "seq {}", msg.seq);
            n += 1;
        }
    }
    assert_eq!(n, 6);
}

/// Our source-address requests read back through the address parser:
/// the add carries our label (so a later run knows it is ours), the
/// delete names the same /32.
#[test]
fn address_requests_roundtrip() {
    use netlink_packet_route::link::LinkFlags;
    let a = Ipv4Addr::new(10, 255, 0, 2);
    let add = addr_request(true, 1, a);
    let m = Messages::new(add.bytes()).next().unwrap();
    assert_eq!(m.ty, RTM_NEWADDR);
    assert_eq!(m.flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
    let want = Addr4 {
        ifindex: 1,
        addr: a,
        ours: true,
    };
    assert_eq!(parse_addr4(m.payload), Some(want));
    let del = addr_request(false, 1, a);
    let m = Messages::new(del.bytes()).next().unwrap();
    assert_eq!(m.ty, RTM_DELADDR);
    let got = parse_addr4(m.payload);
    assert_eq!(
        got,
        Some(Addr4 {
            ours: false,
            ..want
        })
    );
    let up = LinkFlags::Up | LinkFlags::Running;
    assert!(link_usable(up, true));
    assert!(
        link_usable(LinkFlags::Up, false),
        "plain routes need no carrier"
    );
    assert!(
        !link_usable(LinkFlags::Up, true),
        "nexthop objects need carrier"
    );
    assert!(!link_usable(LinkFlags::Running | LinkFlags::LowerUp, false));
    assert!(link_usable(LinkFlags::Up | LinkFlags::LowerUp, true));
}

/// A route event the library refuses (here a 2-byte RTA_MARK, which it
/// reads as a u32) is still read, by the dump parser.
#[test]
fn route_events_the_library_refuses_are_still_read() {
    const RTA_MARK: u16 = 16;
    let prefix: IpNet = "198.51.100.0/24".parse().unwrap();
    let hops = [hop("fe80::1", Some(7))];
    let mut b = MsgBuf::with_capacity(256);
    put_route(&mut b, RouteOp::Create, 1, &P, &prefix, &hops, None);
    b.attr(RTA_MARK, &[1, 2]);
    b.end();
    let m = Messages::new(b.bytes()).next().unwrap();
    assert_eq!(parse_route(m.payload), None, "the library refuses it");
    let r = parse_route_event(m.payload).expect("read all the same");
    assert_eq!((r.prefix, r.hops), (prefix, hops.to_vec()));
}
