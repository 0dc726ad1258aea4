use super::*;

const A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

/// An Ethernet + IPv6 + TCP frame.
fn frame(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hlim: u8,
    seq: u32,
    flags: u8,
    md5: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut opts = Vec::new();
    if md5 {
        opts.extend_from_slice(&[1, 1, TCP_OPT_MD5, 18]);
        opts.extend_from_slice(&[0xaa; 16]);
    }
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&40000u16.to_be_bytes());
    tcp.extend_from_slice(&179u16.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&0u32.to_be_bytes());
    tcp.push((((20 + opts.len()) / 4) as u8) << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    tcp.extend_from_slice(&opts);
    tcp.extend_from_slice(payload);
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    f.push(6);
    f.push(hlim);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&tcp);
    f
}

fn file(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 262144, 1] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v.truncate(24);
    for f in frames {
        for w in [0u32, 0, f.len() as u32, f.len() as u32] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(f);
    }
    v
}

fn update_with_nh(nh: &[u8]) -> Vec<u8> {
    let mut mp = vec![0, 1, 1, nh.len() as u8];
    mp.extend_from_slice(nh);
    mp.extend_from_slice(&[0, 24, 10, 1, 0]);
    let mut attrs = vec![0x80, 14, mp.len() as u8];
    attrs.extend_from_slice(&mp);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    msg.push(2);
    msg.extend_from_slice(&body);
    msg
}

#[test]
fn reads_flags_md5_and_hop_limit() {
    let bytes = file(&[
        frame(A, B, 1, 100, SYN, true, &[]),
        frame(B, A, 255, 500, SYN | ACK, false, &[]),
    ]);
    let segs = parse(&bytes).expect("parses");
    assert_eq!(segs.len(), 2);
    assert!(segs[0].is_syn() && segs[0].md5 && segs[0].hop_limit == 1);
    assert!(segs[1].is_syn_ack() && !segs[1].md5 && segs[1].hop_limit == 255);
    assert_eq!(segs[0].src, IpAddr::V6(A));
    // A record cut short by a writer still at work is left out.
    let cut = &bytes[..bytes.len() - 3];
    assert_eq!(parse(cut).expect("parses").len(), 1);
    assert!(parse(b"not a pcap file at all.....").is_err());
}

#[test]
fn reassembles_bgp_messages_and_reads_next_hops() {
    let nh = next_hop_pair(Ipv6Addr::UNSPECIFIED, A);
    let msg = update_with_nh(&nh);
    let (first, second) = msg.split_at(30);
    let bytes = file(&[
        frame(A, B, 64, 99, SYN, false, &[]),
        frame(A, B, 64, 100 + 30, ACK, false, second),
        frame(A, B, 64, 100, ACK, false, first),
        // A retransmission of the first part counts once.
        frame(A, B, 64, 100, ACK, false, first),
    ]);
    let segs = parse(&bytes).expect("parses");
    let msgs = bgp_messages(&segs, IpAddr::V6(A), IpAddr::V6(B));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(mp_reach_next_hops(&msgs, 1, 1), vec![nh.clone()]);
    assert_eq!(show_next_hop(&nh), "[::, fe80::1]");
    assert!(mp_reach_next_hops(&msgs, 2, 1).is_empty());
    assert!(bgp_messages(&segs, IpAddr::V6(B), IpAddr::V6(A)).is_empty());
}
