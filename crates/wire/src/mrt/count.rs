//! Lenient prefix counting inside captured BGP UPDATE messages.
//!
//! MRT archives hold whatever peers sent, including messages a strict
//! RFC 7606 decoder rejects or treats as withdraw (the codec in this crate
//! does exactly that, as a speaker must). For statistics we want the number
//! operators get from `bgpdump -m`, so this walker follows bgpdump 1.6's
//! reading rules rather than the codec's:
//!
//! - The message is bounded by its BGP length field, clipped to the bytes
//!   captured; a marker that is not all ones counts nothing.
//! - Reading past the end of a field yields zeros instead of failing, and a
//!   field that claims more bytes than remain is clipped.
//! - A prefix counts when its length octet and the octets it implies are
//!   present; prefix lengths are not checked against the address size, and
//!   host bits do not matter (RFC 4271 §4.3: "the value of trailing bits is
//!   irrelevant").
//! - MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3, §4) count for AFI 1, 2
//!   and SAFI 1, 2, 3 only; a second attribute for the same AFI/SAFI is
//!   ignored, and a next hop whose length is not 4, 16 or 32 is not skipped.
//! - BGP messages of any length are accepted (RFC 8654 extended messages).

/// Prefixes one UPDATE announces and withdraws.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixCounts {
    pub announced: u64,
    pub withdrawn: u64,
}

/// BGP message type UPDATE (RFC 4271 §4.1).
const UPDATE: u8 = 2;
/// Path attribute type codes (RFC 4760 §3, §4).
const MP_REACH_NLRI: u8 = 14;
const MP_UNREACH_NLRI: u8 = 15;
/// Extended Length flag (RFC 4271 §4.3).
const EXTENDED_LENGTH: u8 = 0x10;

/// A byte reader that never fails: past the end it yields zeros and stays
/// at the end.
#[derive(Clone, Copy)]
struct Lenient<'a> {
    rest: &'a [u8],
}

impl<'a> Lenient<'a> {
    fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, tail)) => {
                self.rest = tail;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next `n` bytes, or all that remain if fewer.
    fn take(&mut self, n: usize) -> Lenient<'a> {
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        Lenient { rest: head }
    }

    fn skip(&mut self, n: usize) {
        self.take(n);
    }

    fn len(&self) -> usize {
        self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn first(&self) -> Option<u8> {
        self.rest.first().copied()
    }
}

/// Counts the prefixes of one BGP message (marker included) if it is an
/// UPDATE; anything else counts zero. `add_path` says every NLRI starts
/// with a 4-octet path identifier (RFC 7911 §3).
pub fn count_update_prefixes(message: &[u8], add_path: bool) -> PrefixCounts {
    let mut counts = PrefixCounts::default();
    let mut s = Lenient { rest: message };
    let marker = s.take(16);
    if marker.len() != 16 || marker.rest.iter().any(|&b| b != 0xff) {
        return counts;
    }
    // The length field counts the 19-byte header; what follows it is the
    // type octet and the body. A length below 18 reads to the end.
    let length = usize::from(s.u16());
    let mut m = match length.checked_sub(18) {
        Some(n) => s.take(n),
        None => s,
    };
    if m.u8() != UPDATE {
        return counts;
    }

    // RFC 4271 §4.3: Withdrawn Routes Length, Withdrawn Routes.
    let withdrawn_len = usize::from(m.u16());
    counts.withdrawn += count_prefixes(m.take(withdrawn_len), add_path);

    // Total Path Attribute Length, Path Attributes.
    let attrs_len = usize::from(m.u16());
    let mut attrs = m.take(attrs_len);
    let mut seen = Seen::default();
    while !attrs.is_empty() {
        let flags = attrs.u8();
        let type_code = attrs.u8();
        let len = if flags & EXTENDED_LENGTH != 0 {
            usize::from(attrs.u16())
        } else {
            usize::from(attrs.u8())
        };
        let value = attrs.take(len);
        if value.len() != len {
            break; // attribute runs past the attribute block
        }
        match type_code {
            MP_REACH_NLRI => counts.announced += mp_reach(value, add_path, &mut seen),
            MP_UNREACH_NLRI => counts.withdrawn += mp_unreach(value, add_path, &mut seen),
            _ => {}
        }
    }

    // Network Layer Reachability Information: the rest of the message.
    counts.announced += count_prefixes(m, add_path);
    counts
}

/// Which (AFI, SAFI) already had an MP_REACH / MP_UNREACH in this message,
/// for AFI 0..=2 and SAFI 0..=3.
#[derive(Default)]
struct Seen {
    reach: [[bool; 4]; 3],
    unreach: [[bool; 4]; 3],
}

/// Index of a family bgpdump tracks, or `None` for one it ignores.
fn family_slot(afi: u16, safi: u8) -> Option<(usize, usize)> {
    (afi <= 2 && safi <= 3).then_some((usize::from(afi), usize::from(safi)))
}

/// Families whose prefixes bgpdump prints: IPv4/IPv6 with SAFI unicast,
/// multicast or both.
fn printed(afi: u16, safi: u8) -> bool {
    (1..=2).contains(&afi) && (1..=3).contains(&safi)
}

/// Marks `slot` in `table`; false if it was already marked.
fn first_time(table: &mut [[bool; 4]; 3], (a, s): (usize, usize)) -> bool {
    match table.get_mut(a).and_then(|row| row.get_mut(s)) {
        Some(cell) if !*cell => {
            *cell = true;
            true
        }
        _ => false,
    }
}

/// RFC 4760 §3. A value whose first octet is not zero is taken as the
/// abbreviated form MRT uses in RIB entries (RFC 6396 §4.3.4: next-hop
/// length and next hop only) and holds no NLRI.
fn mp_reach(mut v: Lenient<'_>, add_path: bool, seen: &mut Seen) -> u64 {
    if v.first().is_some_and(|b| b != 0) {
        // The abbreviated form occupies the IPv6 unicast slot.
        first_time(&mut seen.reach, (2, 1));
        return 0;
    }
    let afi = v.u16();
    let safi = v.u8();
    let Some(slot) = family_slot(afi, safi) else {
        return 0;
    };
    if !first_time(&mut seen.reach, slot) {
        return 0;
    }
    let nh_len = usize::from(v.u8());
    if matches!(nh_len, 4 | 16 | 32) {
        v.skip(nh_len);
    }
    // Reserved octet, once the number of SNPAs (RFC 2858 §5); skip any.
    let snpas = v.u8();
    for _ in 0..snpas {
        let len = usize::from(v.u8());
        v.skip(len);
    }
    let n = count_prefixes(v, add_path);
    if printed(afi, safi) {
        n
    } else {
        0
    }
}

/// RFC 4760 §4.
fn mp_unreach(mut v: Lenient<'_>, add_path: bool, seen: &mut Seen) -> u64 {
    let afi = v.u16();
    let safi = v.u8();
    let Some(slot) = family_slot(afi, safi) else {
        return 0;
    };
    if !first_time(&mut seen.unreach, slot) {
        return 0;
    }
    let n = count_prefixes(v, add_path);
    if printed(afi, safi) {
        n
    } else {
        0
    }
}

/// Counts `(path id,) length, prefix` items until the bytes run out; an
/// item whose prefix octets are cut short ends the list uncounted.
fn count_prefixes(mut s: Lenient<'_>, add_path: bool) -> u64 {
    let mut n = 0;
    while !s.is_empty() {
        if add_path {
            s.skip(4);
        }
        let bits = usize::from(s.u8());
        let octets = bits.div_ceil(8);
        if s.len() < octets {
            break;
        }
        s.skip(octets);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BGP message: marker, length, type, body.
    fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(kind);
        m.extend_from_slice(body);
        m
    }

    /// An UPDATE from its three parts.
    fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(withdrawn);
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(attrs);
        b.extend_from_slice(nlri);
        msg(UPDATE, &b)
    }

    fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
        let mut a = vec![flags, code];
        if flags & EXTENDED_LENGTH != 0 {
            a.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            a.push(value.len() as u8);
        }
        a.extend_from_slice(value);
        a
    }

    fn counts(announced: u64, withdrawn: u64) -> PrefixCounts {
        PrefixCounts {
            announced,
            withdrawn,
        }
    }

    #[test]
    fn classic_withdrawn_and_nlri() {
        // withdraw 10.0.0.0/8 and 192.168.1.0/24; announce 0/0, 1.2.3.0/24, 5.0.0.0/8
        let w = [8, 10, 24, 192, 168, 1];
        let origin = attr(0x40, 1, &[0]);
        let nlri = [0, 24, 1, 2, 3, 8, 5];
        assert_eq!(
            count_update_prefixes(&update(&w, &origin, &nlri), false),
            counts(3, 2)
        );
    }

    #[test]
    fn host_bits_do_not_matter() {
        // 11.13.0.0/13: the second octet has bits beyond the mask.
        let m = update(&[], &[], &[13, 11, 13]);
        assert_eq!(count_update_prefixes(&m, false), counts(1, 0));
    }

    #[test]
    fn mp_reach_and_unreach_both_families() {
        let mut reach = vec![0, 2, 1, 32];
        reach.extend_from_slice(&[0x20; 16]);
        reach.extend_from_slice(&[0xfe; 16]);
        reach.push(0); // reserved
        reach.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 32, 0x20, 0x01, 0x0d, 0xb8]);
        let unreach = [0, 1, 1, 24, 10, 0, 0];
        let mut attrs = attr(0x80, MP_REACH_NLRI, &reach);
        attrs.extend(attr(0x80, MP_UNREACH_NLRI, &unreach));
        let m = update(&[], &attrs, &[]);
        assert_eq!(count_update_prefixes(&m, false), counts(2, 1));
    }

    #[test]
    fn ipv4_in_mp_reach_with_ipv6_next_hop() {
        // RFC 8950: IPv4 NLRI, 32-byte [::, LL] next hop.
        let mut reach = vec![0, 1, 1, 32];
        reach.extend_from_slice(&[0; 16]);
        reach.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        reach.extend_from_slice(&[0, 24, 198, 51, 100]);
        let m = update(&[], &attr(0x80, MP_REACH_NLRI, &reach), &[]);
        assert_eq!(count_update_prefixes(&m, false), counts(1, 0));
    }

    #[test]
    fn multicast_counts_other_safis_do_not() {
        let multicast = [0, 1, 2, 24, 10, 0, 0];
        let vpn = [0, 1, 128, 24, 10, 0, 0];
        let mut attrs = attr(0x80, MP_UNREACH_NLRI, &multicast);
        attrs.extend(attr(0x80, MP_UNREACH_NLRI, &vpn));
        let m = update(&[], &attrs, &[]);
        assert_eq!(count_update_prefixes(&m, false), counts(0, 1));
    }

    #[test]
    fn second_mp_unreach_for_same_family_is_ignored() {
        let one = [0, 2, 1, 32, 0x20, 0x01, 0x0d, 0xb8];
        let mut attrs = attr(0x80, MP_UNREACH_NLRI, &one);
        attrs.extend(attr(0x80, MP_UNREACH_NLRI, &one));
        let m = update(&[], &attrs, &[]);
        assert_eq!(count_update_prefixes(&m, false), counts(0, 1));
    }

    #[test]
    fn add_path_identifiers_are_skipped() {
        let w = [0, 0, 0, 1, 8, 10, 0, 0, 0, 2, 8, 10];
        let nlri = [0, 0, 0, 7, 24, 1, 2, 3];
        let m = update(&w, &[], &nlri);
        assert_eq!(count_update_prefixes(&m, true), counts(1, 2));
        // Read without ADD-PATH the same bytes mean something else.
        assert_ne!(count_update_prefixes(&m, false), counts(1, 2));
    }

    #[test]
    fn cut_prefix_is_not_counted() {
        // The last prefix claims 3 octets, only 2 follow.
        let m = update(&[], &[], &[8, 10, 24, 1, 2]);
        assert_eq!(count_update_prefixes(&m, false), counts(1, 0));
    }

    #[test]
    fn extended_message_with_4096_withdrawals() {
        // RFC 8654: one message far above 4096 bytes.
        let mut unreach = vec![0, 2, 1];
        for i in 0..4096u16 {
            unreach.extend_from_slice(&[64, 0x20, 0x01, 0x0d, 0xb8, 0, 0]);
            unreach.extend_from_slice(&i.to_be_bytes());
        }
        let m = update(&[], &attr(0x90, MP_UNREACH_NLRI, &unreach), &[]);
        assert!(m.len() > 4096);
        assert_eq!(count_update_prefixes(&m, false), counts(0, 4096));
    }

    #[test]
    fn bytes_beyond_the_bgp_length_are_ignored() {
        let mut m = update(&[], &[], &[8, 10]);
        m.extend_from_slice(&[8, 11, 8, 12]);
        assert_eq!(count_update_prefixes(&m, false), counts(1, 0));
    }

    #[test]
    fn attribute_running_past_its_block_stops_attribute_walk() {
        let reach_hdr = [0x80, MP_UNREACH_NLRI, 200, 0, 2, 1, 32];
        let m = update(&[], &reach_hdr, &[8, 10]);
        // The attribute claims 200 bytes, 4 follow in the block: no MP prefixes,
        // but the NLRI after the block still count.
        assert_eq!(count_update_prefixes(&m, false), counts(1, 0));
    }

    #[test]
    fn non_updates_and_bad_markers_count_nothing() {
        assert_eq!(count_update_prefixes(&msg(4, &[]), false), counts(0, 0));
        let mut bad = update(&[], &[], &[8, 10]);
        if let Some(b) = bad.get_mut(3) {
            *b = 0;
        }
        assert_eq!(count_update_prefixes(&bad, false), counts(0, 0));
        assert_eq!(count_update_prefixes(&[0xff; 10], false), counts(0, 0));
        assert_eq!(count_update_prefixes(&[], false), counts(0, 0));
    }

    proptest::proptest! {
        /// Any bytes at all: counting never panics, and a message can never
        /// hold more prefixes than it has bytes.
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..600), add_path: bool) {
            let mut m = vec![0xff; 16];
            m.extend_from_slice(&tail);
            let c = count_update_prefixes(&m, add_path);
            proptest::prop_assert!(c.announced + c.withdrawn <= m.len() as u64);
        }
    }
}
