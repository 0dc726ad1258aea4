//! AS_PATH and AS4_PATH (RFC 4271 §4.3, RFC 5065 §3, RFC 6793).

use crate::types::{AsPath, AsSegment, AS_TRANS};

const AS_SET: u8 = 1;
const AS_SEQUENCE: u8 = 2;
const AS_CONFED_SEQUENCE: u8 = 3;
const AS_CONFED_SET: u8 = 4;

/// An AS path whose segments do not parse (RFC 7606 §7.2: unknown segment
/// type, zero-length segment, segment overrun or underrun).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadAsPath;

/// Parses AS path segments with 2- or 4-octet ASNs.
pub(crate) fn parse(buf: &[u8], four_octet: bool) -> Result<AsPath, BadAsPath> {
    let width = if four_octet { 4 } else { 2 };
    // Count segments first so the outer Vec is allocated once.
    let mut nseg = 0usize;
    let mut pos = 0usize;
    while pos < buf.len() {
        let count = *buf.get(pos + 1).ok_or(BadAsPath)? as usize;
        if count == 0 {
            return Err(BadAsPath);
        }
        pos += 2 + count * width;
        nseg += 1;
    }
    if pos != buf.len() {
        return Err(BadAsPath);
    }
    let mut segments = Vec::with_capacity(nseg);
    let mut rest = buf;
    while let [kind, count, tail @ ..] = rest {
        let n = *count as usize * width;
        let (body, next) = tail.split_at_checked(n).ok_or(BadAsPath)?;
        let asns: Vec<u32> = if four_octet {
            body.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            body.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                .collect()
        };
        segments.push(match *kind {
            AS_SET => AsSegment::Set(asns),
            AS_SEQUENCE => AsSegment::Sequence(asns),
            AS_CONFED_SEQUENCE => AsSegment::ConfedSequence(asns),
            AS_CONFED_SET => AsSegment::ConfedSet(asns),
            _ => return Err(BadAsPath),
        });
        rest = next;
    }
    if !rest.is_empty() {
        return Err(BadAsPath);
    }
    Ok(AsPath { segments })
}

fn kind_of(seg: &AsSegment) -> (u8, &[u32]) {
    match seg {
        AsSegment::Set(v) => (AS_SET, v),
        AsSegment::Sequence(v) => (AS_SEQUENCE, v),
        AsSegment::ConfedSequence(v) => (AS_CONFED_SEQUENCE, v),
        AsSegment::ConfedSet(v) => (AS_CONFED_SET, v),
    }
}

/// Writes the segments; a segment longer than 255 ASNs is split into
/// several of the same type, empty segments are skipped (a zero-length
/// segment is malformed, RFC 7606 §7.2). In 2-octet form an ASN above
/// 65535 is written as AS_TRANS (RFC 6793 §4.2.2).
pub(crate) fn put(out: &mut Vec<u8>, path: &AsPath, four_octet: bool) {
    for seg in &path.segments {
        let (kind, asns) = kind_of(seg);
        for chunk in asns.chunks(255) {
            out.push(kind);
            out.push(chunk.len() as u8);
            for &asn in chunk {
                if four_octet {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    out.extend_from_slice(&as2(asn).to_be_bytes());
                }
            }
        }
    }
}

/// A 4-octet ASN as a 2-octet field: itself, or AS_TRANS (RFC 6793 §9).
pub(crate) fn as2(asn: u32) -> u16 {
    u16::try_from(asn).unwrap_or(AS_TRANS)
}

/// True if some ASN does not fit 2 octets, so an OLD peer needs AS4_PATH.
pub(crate) fn needs_as4(path: &AsPath) -> bool {
    path.segments
        .iter()
        .any(|s| kind_of(s).1.iter().any(|&a| a > u16::MAX as u32))
}

/// The AS4_PATH a NEW speaker sends to an OLD one: the path without
/// confederation segments (RFC 6793 §3, §4.2.2).
pub(crate) fn as4_path_for(path: &AsPath) -> AsPath {
    AsPath {
        segments: path
            .segments
            .iter()
            .filter(|s| matches!(s, AsSegment::Set(_) | AsSegment::Sequence(_)))
            .cloned()
            .collect(),
    }
}

impl AsPath {
    /// Path length for route selection and RFC 6793 §4.2.3: each
    /// AS_SEQUENCE ASN counts 1, each AS_SET counts 1, confederation
    /// segments count 0 (RFC 5065 §5.3).
    pub fn length(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(v) => v.len(),
                AsSegment::Set(_) => 1,
                AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_) => 0,
            })
            .sum()
    }

    /// The ASN this path was learned from (first ASN of a leading
    /// AS_SEQUENCE), for the RFC 4271 §6.3 first-AS check.
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment::Sequence(v)) => v.first().copied(),
            _ => None,
        }
    }
}

/// Rebuilds the true AS path from an OLD speaker's AS_PATH and AS4_PATH
/// (RFC 6793 §4.2.3): if AS_PATH is shorter than AS4_PATH, AS4_PATH is
/// ignored; otherwise the leading ASNs of AS_PATH that AS4_PATH does not
/// cover are kept and AS4_PATH is appended. Confederation segments in
/// AS4_PATH are dropped (RFC 6793 §6). The caller also ignores AS4_PATH
/// when AGGREGATOR holds an ASN other than AS_TRANS (RFC 6793 §4.2.3).
pub fn merge_as4_path(as_path: &AsPath, as4_path: &AsPath) -> AsPath {
    let as4 = as4_path_for(as4_path);
    let (n, n4) = (as_path.length(), as4.length());
    if n < n4 {
        return as_path.clone();
    }
    let mut keep = n - n4;
    let mut segments: Vec<AsSegment> =
        Vec::with_capacity(as_path.segments.len() + as4.segments.len());
    for seg in &as_path.segments {
        if keep == 0 {
            break;
        }
        match seg {
            AsSegment::Sequence(v) => {
                let take = keep.min(v.len());
                segments.push(AsSegment::Sequence(v.get(..take).unwrap_or(v).to_vec()));
                keep -= take;
            }
            AsSegment::Set(_) => {
                segments.push(seg.clone());
                keep -= 1;
            }
            AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_) => segments.push(seg.clone()),
        }
    }
    for seg in as4.segments {
        match (segments.last_mut(), seg) {
            (Some(AsSegment::Sequence(prev)), AsSegment::Sequence(next)) => prev.extend(next),
            (_, seg) => segments.push(seg),
        }
    }
    AsPath { segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(v: &[u32]) -> AsSegment {
        AsSegment::Sequence(v.to_vec())
    }

    #[test]
    fn two_and_four_octet_bytes_both_ways() {
        let path = AsPath {
            segments: vec![seq(&[65001, 65002]), AsSegment::Set(vec![1, 2])],
        };
        let b2 = [2, 2, 0xfd, 0xe9, 0xfd, 0xea, 1, 2, 0, 1, 0, 2];
        assert_eq!(parse(&b2, false).unwrap(), path);
        let mut out = Vec::new();
        put(&mut out, &path, false);
        assert_eq!(out, b2);
        let b4 = [2, 1, 0, 1, 0, 0];
        let p4 = AsPath {
            segments: vec![seq(&[65536])],
        };
        assert_eq!(parse(&b4, true).unwrap(), p4);
        out.clear();
        put(&mut out, &p4, true);
        assert_eq!(out, b4);
        out.clear();
        put(&mut out, &p4, false);
        assert_eq!(out, [2, 1, 0x5b, 0xa0]); // AS_TRANS
    }

    #[test]
    fn malformed_paths() {
        assert_eq!(parse(&[2, 0], true), Err(BadAsPath)); // zero-length segment
        assert_eq!(parse(&[5, 1, 0, 1], false), Err(BadAsPath)); // unknown type
        assert_eq!(parse(&[2, 2, 0, 1], false), Err(BadAsPath)); // overrun
        assert_eq!(parse(&[2], false), Err(BadAsPath)); // underrun
        assert_eq!(parse(&[], false), Ok(AsPath::default()));
    }

    #[test]
    fn long_segments_split() {
        let asns: Vec<u32> = (1..=300).collect();
        let path = AsPath {
            segments: vec![AsSegment::Sequence(asns.clone())],
        };
        let mut out = Vec::new();
        put(&mut out, &path, true);
        let back = parse(&out, true).unwrap();
        assert_eq!(back.segments, vec![seq(&asns[..255]), seq(&asns[255..])]);
    }

    #[test]
    fn merge_as4_per_rfc6793() {
        let t = AS_TRANS as u32;
        let as_path = AsPath {
            segments: vec![seq(&[65001, t, t, 65002])],
        };
        let as4 = AsPath {
            segments: vec![seq(&[200000, 300000, 65002])],
        };
        assert_eq!(
            merge_as4_path(&as_path, &as4).segments,
            vec![seq(&[65001, 200000, 300000, 65002])]
        );
        // AS4_PATH longer than AS_PATH: ignored.
        let short = AsPath {
            segments: vec![seq(&[t])],
        };
        assert_eq!(merge_as4_path(&short, &as4), short);
        // Confed segments of AS4_PATH are dropped, those of AS_PATH kept.
        let with_confed = AsPath {
            segments: vec![AsSegment::ConfedSequence(vec![64512]), seq(&[65001, t])],
        };
        let as4c = AsPath {
            segments: vec![AsSegment::ConfedSequence(vec![1]), seq(&[400000])],
        };
        assert_eq!(
            merge_as4_path(&with_confed, &as4c).segments,
            vec![
                AsSegment::ConfedSequence(vec![64512]),
                seq(&[65001, 400000])
            ]
        );
    }
}
