//! Reading tcpdump's capture files (`-w FILE`) ourselves instead of its
//! text decoding: the classic pcap format (libpcap's `savefile`) has been
//! stable for decades, while tcpdump's `-v` wording changes between
//! releases. Scenarios count TCP segments by flags, see whether a segment
//! carries a TCP MD5 signature option (RFC 2385 §3.0, kind 19), read the
//! hop limit a peer sent with (GTSM, RFC 5082 §3), and take BGP messages
//! out of a TCP stream.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::{Error, Result};

/// TCP flag bits (RFC 9293 §3.1).
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// TCP option kind of the MD5 signature (RFC 2385 §3.0).
const TCP_OPT_MD5: u8 = 19;

/// One TCP segment of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as it arrived on the captured interface.
    pub hop_limit: u8,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub flags: u8,
    /// The segment carries a TCP MD5 signature option.
    pub md5: bool,
    pub payload: Vec<u8>,
}

impl Segment {
    /// A connection request: SYN without ACK.
    pub fn is_syn(&self) -> bool {
        self.flags & (SYN | ACK) == SYN
    }

    /// The answer to a connection request: SYN and ACK.
    pub fn is_syn_ack(&self) -> bool {
        self.flags & (SYN | ACK) == SYN | ACK
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Parse {
        cmd: "pcap reader".into(),
        reason: reason.into(),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a capture file written by `tcpdump -w` (while tcpdump may still
/// be writing: a truncated last record is ignored).
pub fn read(path: &Path) -> Result<Vec<Segment>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    parse(&bytes)
}

/// Parses a classic pcap file (either byte order, µs or ns timestamps;
/// link types Ethernet and Linux cooked v1) into its TCP segments.
pub fn parse(bytes: &[u8]) -> Result<Vec<Segment>> {
    let magic = bytes
        .get(..4)
        .ok_or_else(|| bad("shorter than a pcap header"))?;
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(bad(format!("not a pcap file (magic {magic:02x?})"))),
    };
    let word = |at: usize| -> Option<u32> {
        let s = bytes.get(at..at + 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let linktype = word(20).ok_or_else(|| bad("truncated pcap header"))?;
    let mut out = Vec::new();
    let mut at = 24;
    while let (Some(incl), Some(_)) = (word(at + 8), word(at + 12)) {
        let start = at + 16;
        let Some(frame) = bytes.get(start..start + incl as usize) else {
            break;
        };
        if let Some(seg) = frame_segment(linktype, frame) {
            out.push(seg);
        }
        at = start + incl as usize;
    }
    Ok(out)
}

/// The TCP segment in one captured frame, if it is one.
fn frame_segment(linktype: u32, frame: &[u8]) -> Option<Segment> {
    // DLT_EN10MB = 1 (ethertype at 12), DLT_LINUX_SLL = 113 (at 14).
    let (mut ethertype, mut ip_at) = match linktype {
        1 => (u16_at(frame, 12)?, 14),
        113 => (u16_at(frame, 14)?, 16),
        _ => return None,
    };
    if ethertype == 0x8100 {
        ethertype = u16_at(frame, ip_at + 2)?;
        ip_at += 4;
    }
    let ip = frame.get(ip_at..)?;
    let (src, dst, hop_limit, tcp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if *ip.get(9)? != 6 {
                return None;
            }
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            let total = usize::from(u16_at(ip, 2)?).min(ip.len());
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                *ip.get(8)?,
                ip.get(ihl..total)?,
            )
        }
        0x86dd => {
            // Only TCP directly after the fixed header: BGP sessions here
            // carry no extension headers.
            if *ip.get(6)? != 6 {
                return None;
            }
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + usize::from(u16_at(ip, 4)?)).min(ip.len());
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                *ip.get(7)?,
                ip.get(40..end)?,
            )
        }
        _ => return None,
    };
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    Some(Segment {
        src,
        dst,
        hop_limit,
        sport: u16_at(tcp, 0)?,
        dport: u16_at(tcp, 2)?,
        seq: u32_at(tcp, 4)?,
        flags: *tcp.get(13)?,
        md5: has_md5_option(tcp.get(20..doff)?),
        payload: tcp.get(doff..)?.to_vec(),
    })
}

/// Walks TCP options (RFC 9293 §3.1): kind 0 ends, kind 1 is one byte,
/// every other kind has a length byte.
fn has_md5_option(mut opts: &[u8]) -> bool {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return false,
            1 => opts = &opts[1..],
            TCP_OPT_MD5 => return true,
            _ => {
                let len = usize::from(opts.get(1).copied().unwrap_or(0));
                if len < 2 || len > opts.len() {
                    return false;
                }
                opts = &opts[len..];
            }
        }
    }
    false
}

/// One BGP message: type (RFC 4271 §4.1) and body after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpMessage {
    pub kind: u8,
    pub body: Vec<u8>,
}

/// The BGP messages `src` sent to `dst` on each TCP connection of the
/// capture, in order: payload reassembled by sequence number (a
/// retransmission counted once), split on the 16-byte marker and length.
/// Stops at the first gap of a connection.
pub fn bgp_messages(segments: &[Segment], src: IpAddr, dst: IpAddr) -> Vec<BgpMessage> {
    type Conn = (u16, u16);
    let mut conns: BTreeMap<Conn, BTreeMap<u32, &[u8]>> = BTreeMap::new();
    let mut isn: BTreeMap<Conn, u32> = BTreeMap::new();
    for s in segments.iter().filter(|s| s.src == src && s.dst == dst) {
        let key = (s.sport, s.dport);
        if s.flags & SYN != 0 {
            isn.insert(key, s.seq.wrapping_add(1));
        }
        if !s.payload.is_empty() {
            conns.entry(key).or_default().insert(s.seq, &s.payload);
        }
    }
    let mut out = Vec::new();
    for (key, parts) in conns {
        let base = isn
            .get(&key)
            .copied()
            .or_else(|| parts.keys().next().copied())
            .unwrap_or(0);
        let mut ordered: Vec<(u32, &[u8])> = parts
            .into_iter()
            .map(|(seq, p)| (seq.wrapping_sub(base), p))
            .collect();
        ordered.sort_by_key(|(off, _)| *off);
        let mut stream: Vec<u8> = Vec::new();
        for (off, p) in ordered {
            let off = off as usize;
            if off > stream.len() {
                break;
            }
            if let Some(new) = p.get(stream.len() - off..) {
                stream.extend_from_slice(new);
            }
        }
        split_messages(&stream, &mut out);
    }
    out
}

fn split_messages(mut stream: &[u8], out: &mut Vec<BgpMessage>) {
    while stream.len() >= 19 && stream[..16].iter().all(|&b| b == 0xff) {
        let len = usize::from(u16_at(stream, 16).unwrap_or(0));
        if len < 19 || len > stream.len() {
            return;
        }
        out.push(BgpMessage {
            kind: stream[18],
            body: stream[19..len].to_vec(),
        });
        stream = &stream[len..];
    }
}

/// The MP_REACH_NLRI next hops (RFC 4760 §3) for `afi`/`safi` in the
/// UPDATEs among `msgs`, as raw bytes (32 bytes = `[global, link-local]`,
/// RFC 8950 §3).
pub fn mp_reach_next_hops(msgs: &[BgpMessage], afi: u16, safi: u8) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for m in msgs.iter().filter(|m| m.kind == 2) {
        let b = &m.body;
        let Some(wlen) = u16_at(b, 0) else { continue };
        let at = 2 + usize::from(wlen);
        let Some(alen) = u16_at(b, at) else { continue };
        let Some(mut attrs) = b.get(at + 2..at + 2 + usize::from(alen)) else {
            continue;
        };
        while attrs.len() >= 3 {
            let (flags, code) = (attrs[0], attrs[1]);
            let (len, hdr) = if flags & 0x10 != 0 {
                (u16_at(attrs, 2).map(usize::from), 4)
            } else {
                (Some(usize::from(attrs[2])), 3)
            };
            let Some(value) = len.and_then(|l| attrs.get(hdr..hdr + l)) else {
                break;
            };
            if code == 14 && u16_at(value, 0) == Some(afi) && value.get(2) == Some(&safi) {
                let nhl = usize::from(value.get(3).copied().unwrap_or(0));
                if let Some(nh) = value.get(4..4 + nhl) {
                    out.push(nh.to_vec());
                }
            }
            attrs = &attrs[hdr + value.len()..];
        }
    }
    out
}

/// The classic IPv4 NLRI bytes at the end of an UPDATE (RFC 4271 §4.3),
/// `None` if `msg` is not a well-formed UPDATE.
pub fn classic_nlri(msg: &BgpMessage) -> Option<&[u8]> {
    if msg.kind != 2 {
        return None;
    }
    let b = &msg.body;
    let at = 2 + usize::from(u16_at(b, 0)?);
    let nlri_at = at + 2 + usize::from(u16_at(b, at)?);
    b.get(nlri_at..)
}

/// A 32-byte `[global, link-local]` next hop from two IPv6 addresses.
pub fn next_hop_pair(global: Ipv6Addr, link_local: Ipv6Addr) -> Vec<u8> {
    let mut v = global.octets().to_vec();
    v.extend_from_slice(&link_local.octets());
    v
}

/// A next hop for messages: `[global, link-local]` for 32 bytes, the
/// address for 16 or 4, hex otherwise.
pub fn show_next_hop(nh: &[u8]) -> String {
    let v6 = |b: &[u8]| -> Option<Ipv6Addr> { <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from) };
    match nh.len() {
        32 => match (v6(&nh[..16]), v6(&nh[16..])) {
            (Some(g), Some(l)) => format!("[{g}, {l}]"),
            _ => format!("{nh:02x?}"),
        },
        16 => v6(nh).map_or_else(|| format!("{nh:02x?}"), |a| a.to_string()),
        4 => Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3]).to_string(),
        _ => format!("{nh:02x?}"),
    }
}

#[cfg(test)]
mod tests;
