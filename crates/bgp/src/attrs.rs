//! Compact, hashable path attributes as the RIB keeps them.
//!
//! Its own module, not part of the RIB: policy reads and rewrites these
//! sets and depends on nothing in the RIB; the RIB calls policy.
//!
//! `wire::PathAttributes` is the codec's full view (about 350 bytes before
//! its heap parts); the RIB keeps only what the decision process and
//! re-advertisement need, with the rarely used attributes boxed away.

use std::net::Ipv4Addr;

use wire::{Aggregator, AsPath, AsSegment, LargeCommunity, Origin, PathAttributes, RawAttribute};

use crate::store::Id;

/// Segment type tags in the flat AS path encoding (RFC 4271 §4.3 and
/// RFC 5065 values).
const SEG_SET: u32 = 1;
const SEG_SEQUENCE: u32 = 2;
const SEG_CONFED_SEQUENCE: u32 = 3;
const SEG_CONFED_SET: u32 = 4;

/// Attributes seldom present; boxed so the common set stays small.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Extra {
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub extended_communities: Vec<[u8; 8]>,
    pub large_communities: Vec<LargeCommunity>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Unknown optional transitive attributes, passed on (RFC 4271 §5).
    pub unknown: Vec<RawAttribute>,
}

/// One attribute set. `next_hop` is an id in the RIB's next-hop store.
/// 40 bytes: AS path and communities share one allocation, LOCAL_PREF and
/// MED carry their presence in `flags`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attrs {
    pub next_hop: Id,
    local_pref: u32,
    med: u32,
    flags: u8,
    pub origin: Origin,
    /// `[n, n words of flat AS path, communities...]`; the flat path has
    /// per segment a header `type << 24 | count`, then the ASNs.
    words: Box<[u32]>,
    pub extra: Option<Box<Extra>>,
}

const HAS_LOCAL_PREF: u8 = 1;
const HAS_MED: u8 = 2;

impl Attrs {
    /// Builds the compact form from decoded attributes. AS4_PATH has been
    /// merged into AS_PATH by the session already (RFC 6793 §4.2.3,
    /// `session::fix_as4`), so only AS_PATH is kept.
    pub fn from_wire(a: &PathAttributes, next_hop: Id) -> Attrs {
        let path = a.as_path.as_ref();
        let has_extra = a.atomic_aggregate
            || a.aggregator.is_some()
            || a.as4_aggregator.is_some()
            || !a.extended_communities.is_empty()
            || !a.large_communities.is_empty()
            || a.originator_id.is_some()
            || !a.cluster_list.is_empty()
            || a.unknown.iter().any(|r| r.flags & 0x40 != 0);
        let extra = has_extra.then(|| {
            Box::new(Extra {
                atomic_aggregate: a.atomic_aggregate,
                aggregator: a.as4_aggregator.or(a.aggregator),
                extended_communities: a.extended_communities.clone(),
                large_communities: a.large_communities.clone(),
                originator_id: a.originator_id,
                cluster_list: a.cluster_list.clone(),
                // Only transitive unknown attributes travel further.
                unknown: a
                    .unknown
                    .iter()
                    .filter(|r| r.flags & 0x40 != 0)
                    .cloned()
                    .collect(),
            })
        });
        // One allocation: `[n, path..., communities...]`.
        let path_words: usize = path.map_or(0, |p| {
            p.segments.iter().map(|s| 1 + seg_parts(s).1.len()).sum()
        });
        let mut words = Vec::with_capacity(1 + path_words + a.communities.len());
        words.push(0);
        if let Some(p) = path {
            push_path(p, &mut words);
        }
        let n = (words.len() - 1) as u32;
        if let Some(first) = words.first_mut() {
            *first = n;
        }
        // Communities sorted and unique, so equal sets hash equal.
        if a.communities.windows(2).all(|w| w.first() < w.get(1)) {
            words.extend_from_slice(&a.communities);
        } else {
            let mut c = a.communities.clone();
            c.sort_unstable();
            c.dedup();
            words.extend_from_slice(&c);
        }
        let mut attrs = Attrs {
            next_hop,
            local_pref: 0,
            med: 0,
            flags: 0,
            origin: a.origin.unwrap_or(Origin::Incomplete),
            words: Box::new([]),
            extra,
        };
        attrs.words = words.into_boxed_slice();
        attrs.set_local_pref(a.local_pref);
        attrs.set_med(a.med);
        attrs
    }

    /// Builds a set from a flat path (see [`encode_path`]) and sorted,
    /// deduplicated communities.
    pub fn new(
        next_hop: Id,
        origin: Origin,
        local_pref: Option<u32>,
        med: Option<u32>,
        flat_path: &[u32],
        communities: &[u32],
        extra: Option<Box<Extra>>,
    ) -> Attrs {
        let mut words = Vec::with_capacity(1 + flat_path.len() + communities.len());
        words.push(flat_path.len() as u32);
        words.extend_from_slice(flat_path);
        words.extend_from_slice(communities);
        let mut a = Attrs {
            next_hop,
            local_pref: 0,
            med: 0,
            flags: 0,
            origin,
            words: words.into_boxed_slice(),
            extra,
        };
        a.set_local_pref(local_pref);
        a.set_med(med);
        a
    }

    pub fn local_pref(&self) -> Option<u32> {
        (self.flags & HAS_LOCAL_PREF != 0).then_some(self.local_pref)
    }

    pub fn set_local_pref(&mut self, v: Option<u32>) {
        self.local_pref = v.unwrap_or(0);
        self.flags = (self.flags & !HAS_LOCAL_PREF) | if v.is_some() { HAS_LOCAL_PREF } else { 0 };
    }

    pub fn med(&self) -> Option<u32> {
        (self.flags & HAS_MED != 0).then_some(self.med)
    }

    pub fn set_med(&mut self, v: Option<u32>) {
        self.med = v.unwrap_or(0);
        self.flags = (self.flags & !HAS_MED) | if v.is_some() { HAS_MED } else { 0 };
    }

    /// The flat AS path.
    pub fn path_words(&self) -> &[u32] {
        let n = self.words.first().map_or(0, |&n| n as usize);
        self.words.get(1..1 + n).unwrap_or(&[])
    }

    /// COMMUNITIES, sorted (RFC 1997).
    pub fn communities(&self) -> &[u32] {
        let n = self.words.first().map_or(0, |&n| n as usize);
        self.words.get(1 + n..).unwrap_or(&[])
    }

    /// The same set with other communities (sorted and deduplicated here).
    pub fn with_communities(&self, communities: &[u32]) -> Attrs {
        let mut c = communities.to_vec();
        c.sort_unstable();
        c.dedup();
        let mut a = Attrs::new(
            self.next_hop,
            self.origin,
            None,
            None,
            self.path_words(),
            &c,
            self.extra.clone(),
        );
        a.local_pref = self.local_pref;
        a.med = self.med;
        a.flags = self.flags;
        a
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): an
    /// AS_SET counts as one, confederation segments not at all (RFC 5065
    /// §5.3).
    pub fn as_path_len(&self) -> u32 {
        let mut n = 0u32;
        for (kind, asns) in segments(self.path_words()) {
            n = n.saturating_add(match kind {
                SEG_SEQUENCE => asns.len() as u32,
                SEG_SET => 1,
                _ => 0,
            });
        }
        n
    }

    /// The AS the route came from: the first AS of the first sequence
    /// (RFC 4271 §9.1.2.2 c); `None` for a locally originated path.
    pub fn neighbor_as(&self) -> Option<u32> {
        segments(self.path_words())
            .find(|(k, _)| *k == SEG_SEQUENCE || *k == SEG_SET)
            .and_then(|(k, asns)| {
                if k == SEG_SEQUENCE {
                    asns.first().copied()
                } else {
                    None
                }
            })
    }

    /// Whether `asn` appears anywhere in the path (loop detection,
    /// RFC 4271 §9.1.2).
    pub fn as_path_contains(&self, asn: u32) -> bool {
        segments(self.path_words()).any(|(_, asns)| asns.contains(&asn))
    }

    /// The path in the codec's form.
    pub fn as_path(&self) -> AsPath {
        AsPath {
            segments: segments(self.path_words())
                .map(|(k, asns)| {
                    let v = asns.to_vec();
                    match k {
                        SEG_SET => AsSegment::Set(v),
                        SEG_CONFED_SEQUENCE => AsSegment::ConfedSequence(v),
                        SEG_CONFED_SET => AsSegment::ConfedSet(v),
                        _ => AsSegment::Sequence(v),
                    }
                })
                .collect(),
        }
    }

    /// Every ASN of the path in order (for display).
    pub fn as_path_flat(&self) -> Vec<u32> {
        segments(self.path_words())
            .flat_map(|(_, a)| a.iter().copied())
            .collect()
    }

    /// ORIGINATOR_ID if present (RFC 4456 §9: it replaces the router id in
    /// the tie-break).
    pub fn originator_id(&self) -> Option<Ipv4Addr> {
        self.extra.as_ref().and_then(|e| e.originator_id)
    }

    /// The attributes in the codec's form, without next hop and MP
    /// attributes (the packer adds those).
    pub fn to_wire(&self) -> PathAttributes {
        let mut a = PathAttributes {
            origin: Some(self.origin),
            as_path: Some(self.as_path()),
            med: self.med(),
            local_pref: self.local_pref(),
            communities: self.communities().to_vec(),
            ..PathAttributes::default()
        };
        if let Some(e) = &self.extra {
            a.atomic_aggregate = e.atomic_aggregate;
            a.aggregator = e.aggregator;
            a.extended_communities = e.extended_communities.clone();
            a.large_communities = e.large_communities.clone();
            a.originator_id = e.originator_id;
            a.cluster_list = e.cluster_list.clone();
            a.unknown = e.unknown.clone();
        }
        a
    }
}

/// Iterates `(segment type, asns)` over a flat path; stops at a truncated
/// segment instead of reading past the end.
pub fn segments(flat: &[u32]) -> impl Iterator<Item = (u32, &[u32])> {
    let mut rest = flat;
    std::iter::from_fn(move || {
        let (&head, tail) = rest.split_first()?;
        let n = (head & 0x00ff_ffff) as usize;
        let asns = tail.get(..n)?;
        rest = tail.get(n..).unwrap_or(&[]);
        Some((head >> 24, asns))
    })
}

/// Flattens an AS path into one allocation.
pub fn encode_path(p: &AsPath) -> Box<[u32]> {
    let total: usize = p.segments.iter().map(|s| 1 + seg_parts(s).1.len()).sum();
    let mut v = Vec::with_capacity(total);
    push_path(p, &mut v);
    v.into_boxed_slice()
}

/// Appends the flat form of `p` to `v`.
fn push_path(p: &AsPath, v: &mut Vec<u32>) {
    for s in &p.segments {
        let (k, asns) = seg_parts(s);
        if asns.is_empty() {
            continue;
        }
        let n = asns.len().min(0x00ff_ffff);
        v.push(k << 24 | n as u32);
        v.extend_from_slice(asns.get(..n).unwrap_or(&[]));
    }
}

fn seg_parts(s: &AsSegment) -> (u32, &[u32]) {
    match s {
        AsSegment::Set(v) => (SEG_SET, v),
        AsSegment::Sequence(v) => (SEG_SEQUENCE, v),
        AsSegment::ConfedSequence(v) => (SEG_CONFED_SEQUENCE, v),
        AsSegment::ConfedSet(v) => (SEG_CONFED_SET, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(v: &[u32]) -> AsSegment {
        AsSegment::Sequence(v.to_vec())
    }

    #[test]
    fn path_roundtrip_and_length_rules() {
        let p = AsPath {
            segments: vec![
                AsSegment::ConfedSequence(vec![64512]),
                seq(&[65001, 65002]),
                AsSegment::Set(vec![1, 2, 3]),
            ],
        };
        let a = Attrs::new(
            Id(0),
            Origin::Igp,
            None,
            Some(7),
            &encode_path(&p),
            &[1, 2],
            None,
        );
        assert_eq!(a.communities(), &[1, 2]);
        assert_eq!((a.local_pref(), a.med()), (None, Some(7)));
        let b = a.with_communities(&[3, 1, 3]);
        assert_eq!(b.communities(), &[1, 3]);
        assert_eq!(b.path_words(), a.path_words());
        assert_eq!(b.med(), Some(7));
        assert_eq!(a.as_path(), p);
        assert_eq!(a.as_path_len(), 3);
        assert_eq!(a.neighbor_as(), Some(65001));
        assert!(a.as_path_contains(2));
        assert!(!a.as_path_contains(4));
    }

    #[test]
    fn from_wire_keeps_repeated_asns_and_sorts_communities() {
        let w = PathAttributes {
            origin: Some(Origin::Egp),
            as_path: Some(AsPath {
                segments: vec![seq(&[65001, 65001, 65001, 7])],
            }),
            communities: vec![9, 3, 9, 1],
            local_pref: Some(5),
            ..Default::default()
        };
        let a = Attrs::from_wire(&w, Id(3));
        assert_eq!(a.as_path_flat(), vec![65001, 65001, 65001, 7]);
        assert_eq!(a.as_path_len(), 4);
        assert_eq!(a.communities(), &[1, 3, 9]);
        assert_eq!(a.local_pref(), Some(5));
        assert_eq!(a.med(), None);
        assert!(a.extra.is_none());
        // Same content in another order: the same set.
        let w2 = PathAttributes {
            communities: vec![1, 3, 9],
            ..w.clone()
        };
        assert_eq!(Attrs::from_wire(&w2, Id(3)), a);
        let back = a.to_wire();
        assert_eq!(back.as_path, w.as_path);
        assert_eq!(back.origin, Some(Origin::Egp));
    }

    #[test]
    fn truncated_flat_path_does_not_overread() {
        let flat = [SEG_SEQUENCE << 24 | 5, 1, 2];
        assert_eq!(segments(&flat).count(), 0);
    }
}
