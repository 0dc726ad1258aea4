//! Prefix (NLRI) encoding, RFC 4271 §4.3 and RFC 4760 §5: one length
//! octet in bits, then the fewest octets that hold that many bits.
//!
//! This is the hot path of UPDATE decoding, so it is hand-written over
//! slices: one bounds check per prefix, no per-prefix allocation, and an
//! exact-capacity `Vec` per list (a counting pass first).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::types::{IpNet, Ipv4Net, Ipv6Net};

/// A prefix list that cannot be parsed (RFC 7606 §5.3): a length above the
/// family's maximum, or a prefix running past the end of its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadNlri;

/// Walks the list once to validate it and count prefixes.
#[inline]
fn count(buf: &[u8], max_len: u8) -> Result<usize, BadNlri> {
    let mut pos = 0usize;
    let mut n = 0usize;
    while pos < buf.len() {
        let len = buf[pos];
        if len > max_len {
            return Err(BadNlri);
        }
        pos += 1 + (len as usize).div_ceil(8);
        n += 1;
    }
    if pos != buf.len() {
        return Err(BadNlri);
    }
    Ok(n)
}

/// Reads the prefix at `pos`. The four address octets are read
/// speculatively (octets past the prefix belong to the next one, or are
/// past the end and read as zero) and then masked, which keeps the loop
/// free of variable-length copies.
#[inline(always)]
fn v4_at(buf: &[u8], pos: usize, len: u8) -> Ipv4Net {
    let at = |i: usize| buf.get(pos + 1 + i).copied().unwrap_or(0);
    let raw = u32::from_be_bytes([at(0), at(1), at(2), at(3)]);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    // `count` bounds len to 32, so the default is never used.
    Ipv4Net::new(Ipv4Addr::from(raw & mask), len).unwrap_or_default()
}

#[inline(always)]
fn v6_at(buf: &[u8], pos: usize, len: u8) -> Ipv6Net {
    let nbytes = (len as usize).div_ceil(8);
    let mut octets = [0u8; 16];
    if let (Some(dst), Some(src)) = (octets.get_mut(..nbytes), buf.get(pos + 1..pos + 1 + nbytes)) {
        dst.copy_from_slice(src);
    }
    let raw = u128::from_be_bytes(octets);
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    Ipv6Net::new(Ipv6Addr::from(raw & mask), len).unwrap_or_default()
}

/// Parses IPv4 prefixes. Host bits beyond the prefix length are cleared
/// (RFC 4271 §4.3: trailing bits are irrelevant).
pub(crate) fn parse_v4(buf: &[u8]) -> Result<Vec<Ipv4Net>, BadNlri> {
    let n = count(buf, 32)?;
    let mut out = Vec::with_capacity(n);
    let mut pos = 0usize;
    while let Some(&len) = buf.get(pos) {
        out.push(v4_at(buf, pos, len));
        pos += 1 + (len as usize).div_ceil(8);
    }
    Ok(out)
}

/// Parses IPv4 prefixes into the family-neutral form MP_REACH carries.
pub(crate) fn parse_v4_ipnet(buf: &[u8]) -> Result<Vec<IpNet>, BadNlri> {
    let n = count(buf, 32)?;
    let mut out = Vec::with_capacity(n);
    let mut pos = 0usize;
    while let Some(&len) = buf.get(pos) {
        out.push(IpNet::V4(v4_at(buf, pos, len)));
        pos += 1 + (len as usize).div_ceil(8);
    }
    Ok(out)
}

/// Parses IPv6 prefixes.
pub(crate) fn parse_v6_ipnet(buf: &[u8]) -> Result<Vec<IpNet>, BadNlri> {
    let n = count(buf, 128)?;
    let mut out = Vec::with_capacity(n);
    let mut pos = 0usize;
    while let Some(&len) = buf.get(pos) {
        out.push(IpNet::V6(v6_at(buf, pos, len)));
        pos += 1 + (len as usize).div_ceil(8);
    }
    Ok(out)
}

/// Encoded size of one prefix.
pub(crate) fn encoded_len(net: &IpNet) -> usize {
    1 + (net.prefix_len() as usize).div_ceil(8)
}

pub(crate) fn put_v4(out: &mut Vec<u8>, net: &Ipv4Net) {
    let len = net.prefix_len();
    let nbytes = (len as usize).div_ceil(8);
    out.push(len);
    let octets = net.network().octets();
    out.extend_from_slice(octets.get(..nbytes).unwrap_or(&octets));
}

pub(crate) fn put_v6(out: &mut Vec<u8>, net: &Ipv6Net) {
    let len = net.prefix_len();
    let nbytes = (len as usize).div_ceil(8);
    out.push(len);
    let octets = net.network().octets();
    out.extend_from_slice(octets.get(..nbytes).unwrap_or(&octets));
}

pub(crate) fn put(out: &mut Vec<u8>, net: &IpNet) {
    match net {
        IpNet::V4(n) => put_v4(out, n),
        IpNet::V6(n) => put_v6(out, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn v4_bytes_both_ways() {
        let bytes = [24, 10, 1, 2, 0, 32, 192, 0, 2, 1, 9, 10, 128];
        let nets = parse_v4(&bytes).unwrap();
        assert_eq!(
            nets,
            vec![
                v4("10.1.2.0/24"),
                v4("0.0.0.0/0"),
                v4("192.0.2.1/32"),
                v4("10.128.0.0/9")
            ]
        );
        let mut out = Vec::new();
        for n in &nets {
            put_v4(&mut out, n);
        }
        assert_eq!(out, bytes);
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(parse_v4(&[23, 10, 1, 3]).unwrap(), vec![v4("10.1.2.0/23")]);
    }

    #[test]
    fn bad_lengths_rejected() {
        assert_eq!(parse_v4(&[33, 1, 2, 3, 4, 5]), Err(BadNlri));
        assert_eq!(parse_v4(&[24, 10, 1]), Err(BadNlri));
        assert_eq!(parse_v6_ipnet(&[129; 17]), Err(BadNlri));
        assert_eq!(parse_v6_ipnet(&[64, 0x20, 1, 0xd, 0xb8]), Err(BadNlri));
    }

    #[test]
    fn v6_bytes_both_ways() {
        let bytes = [
            48, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 1,
        ];
        let nets = parse_v6_ipnet(&bytes).unwrap();
        assert_eq!(
            nets,
            vec![
                "2001:db8:100::/48".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        let mut out = Vec::new();
        for n in &nets {
            put(&mut out, n);
        }
        assert_eq!(out, bytes);
    }
}
