//! The streaming record reader: MRT framing (RFC 6396 §2, §3) over any
//! `Read`, and opening files that may or may not be gzip-compressed.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::error::MrtError;
use super::record::{parse_record, MrtHeader, MrtRecord, ParseState};
use super::types as ty;

/// Largest record body accepted (64 MiB). Real records stay far below
/// (a BGP4MP record holds one message of at most 65535 bytes, RFC 8654; a
/// RIB record one prefix from every peer); the cap stops a corrupt length
/// field from making us buffer the rest of a huge file.
pub const MAX_RECORD_LENGTH: u32 = 64 << 20;

/// MRT common header size (RFC 6396 §2).
const HEADER_LEN: u64 = 12;

/// A file opened by [`MrtReader::open_gz`]: decompressed if it starts
/// with the gzip magic (RFC 1952 §2.3.1), read as is otherwise.
pub enum MrtFile {
    /// Gzip, possibly several members back to back (as `cat a.gz b.gz`).
    Gzip(MultiGzDecoder<File>),
    Plain(BufReader<File>),
}

impl Read for MrtFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MrtFile::Gzip(r) => r.read(buf),
            MrtFile::Plain(r) => r.read(buf),
        }
    }
}

/// Iterator over the records of an MRT stream.
///
/// Yields `Err` for a record that cannot be read; the error names its byte
/// offset in the (decompressed) stream. After a framing error (stream cut
/// short, read failure, impossible length) iteration ends; after a record
/// whose body does not parse, iteration goes on with the next record, since
/// the length field still frames it.
pub struct MrtReader<R: Read> {
    inner: R,
    offset: u64,
    done: bool,
    state: ParseState,
}

impl MrtReader<MrtFile> {
    /// Opens an MRT file, gzip-compressed or plain (detected by the gzip
    /// magic bytes `1f 8b`, not by the file name).
    pub fn open_gz(path: impl AsRef<Path>) -> Result<Self, MrtError> {
        let path = path.as_ref();
        let open_err = |source| MrtError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(open_err)?;
        let mut magic = [0u8; 2];
        let n = read_full(&mut file, &mut magic).map_err(open_err)?;
        file.seek(SeekFrom::Start(0)).map_err(open_err)?;
        let source = if n == 2 && magic == [0x1f, 0x8b] {
            MrtFile::Gzip(MultiGzDecoder::new(file))
        } else {
            MrtFile::Plain(BufReader::with_capacity(1 << 16, file))
        };
        Ok(MrtReader::new(source))
    }
}

impl<R: Read> MrtReader<R> {
    /// Reads MRT records from an already decompressed stream.
    pub fn new(inner: R) -> Self {
        MrtReader {
            inner,
            offset: 0,
            done: false,
            state: ParseState::default(),
        }
    }

    /// Bytes of the decompressed stream consumed so far: the offset of the
    /// next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn next_record(&mut self) -> Option<Result<MrtRecord, MrtError>> {
        let start = self.offset;
        let mut head = [0u8; HEADER_LEN as usize];
        let n = match read_full(&mut self.inner, &mut head) {
            Ok(n) => n,
            Err(source) => {
                self.done = true;
                return Some(Err(MrtError::Read {
                    offset: start,
                    source,
                }));
            }
        };
        if n == 0 {
            self.done = true;
            return None;
        }
        if n < head.len() {
            self.done = true;
            return Some(Err(MrtError::Truncated {
                offset: start,
                needed: HEADER_LEN,
                available: n as u64,
            }));
        }
        let [t0, t1, t2, t3, y0, y1, s0, s1, l0, l1, l2, l3] = head;
        let mut header = MrtHeader {
            offset: start,
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            microseconds: None,
            mrt_type: u16::from_be_bytes([y0, y1]),
            subtype: u16::from_be_bytes([s0, s1]),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        };
        let (mrt_type, subtype) = (header.mrt_type, header.subtype);
        let corrupt = move |reason: String| MrtError::Corrupt {
            offset: start,
            mrt_type,
            subtype,
            reason,
        };
        if header.length > MAX_RECORD_LENGTH {
            self.done = true;
            return Some(Err(corrupt(format!(
                "length {} exceeds the {MAX_RECORD_LENGTH}-byte limit",
                header.length
            ))));
        }
        let len = u64::from(header.length);
        // Grow the buffer as bytes arrive rather than trusting the length.
        let mut body = Vec::with_capacity(header.length.min(1 << 16) as usize);
        if let Err(source) = (&mut self.inner).take(len).read_to_end(&mut body) {
            self.done = true;
            return Some(Err(MrtError::Read {
                offset: start,
                source,
            }));
        }
        if (body.len() as u64) < len {
            self.done = true;
            return Some(Err(MrtError::Truncated {
                offset: start,
                needed: HEADER_LEN + len,
                available: HEADER_LEN + body.len() as u64,
            }));
        }
        self.offset = start + HEADER_LEN + len;

        // RFC 6396 §3: the _ET types carry microseconds first, counted in
        // the length.
        if header.mrt_type == ty::BGP4MP_ET {
            match body.get(..4) {
                Some(&[a, b, c, d]) => {
                    header.microseconds = Some(u32::from_be_bytes([a, b, c, d]));
                    body.drain(..4);
                }
                _ => return Some(Err(corrupt("no room for the microsecond field".into()))),
            }
        }
        Some(parse_record(header, body, &mut self.state).map_err(corrupt))
    }
}

impl<R: Read> Iterator for MrtReader<R> {
    type Item = Result<MrtRecord, MrtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_record()
    }
}

/// Fills `buf` as far as the stream allows; returns the bytes read, which
/// is less than `buf.len()` only at end of stream.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::record::{AsSize, MrtRecord};
    use super::super::{stats_reader, subtypes as st, types as ty, MrtStats};
    use super::*;

    /// One MRT record: header and body.
    fn rec(mrt_type: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
        let mut r = 1_000_000u32.to_be_bytes().to_vec();
        r.extend_from_slice(&mrt_type.to_be_bytes());
        r.extend_from_slice(&subtype.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// An UPDATE announcing `n` IPv4 /24s and withdrawing one /8.
    fn update(n: u8) -> Vec<u8> {
        let mut body = vec![0, 2, 8, 10, 0, 0];
        for i in 0..n {
            body.extend_from_slice(&[24, 192, 0, i]);
        }
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(&body);
        m
    }

    /// BGP4MP_MESSAGE_AS4 between IPv4 peers carrying `update(n)`.
    fn bgp4mp_as4(n: u8) -> Vec<u8> {
        let mut b = 4_200_000_000u32.to_be_bytes().to_vec();
        b.extend_from_slice(&65001u32.to_be_bytes());
        b.extend_from_slice(&[0, 7, 0, 1, 192, 0, 2, 1, 192, 0, 2, 2]);
        b.extend_from_slice(&update(n));
        rec(ty::BGP4MP, st::BGP4MP_MESSAGE_AS4, &b)
    }

    fn state_change_v6() -> Vec<u8> {
        let mut b = vec![0xfd, 0xe9, 0xfd, 0xea, 0, 3, 0, 2];
        b.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        b.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
        b.extend_from_slice(&[0, 5, 0, 6]);
        rec(ty::BGP4MP, st::BGP4MP_STATE_CHANGE, &b)
    }

    fn peer_index(peers: u16) -> Vec<u8> {
        let mut b = vec![10, 0, 0, 1, 0, 3, b'r', b'i', b's'];
        b.extend_from_slice(&peers.to_be_bytes());
        for i in 0..peers {
            // peer type 3: IPv6 address, 4-octet AS
            b.extend_from_slice(&[3, 10, 0, 0, i as u8]);
            b.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i).octets());
            b.extend_from_slice(&(65000 + u32::from(i)).to_be_bytes());
        }
        rec(ty::TABLE_DUMP_V2, st::PEER_INDEX_TABLE, &b)
    }

    /// RIB_IPV6_UNICAST(_ADDPATH) for 2001:db8::/32 with entries from the
    /// given peer indexes.
    fn rib_v6(add_path: bool, peers: &[u16]) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 9, 32, 0x20, 0x01, 0x0d, 0xb8];
        b.extend_from_slice(&(peers.len() as u16).to_be_bytes());
        for (i, p) in peers.iter().enumerate() {
            b.extend_from_slice(&p.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, 1]);
            if add_path {
                b.extend_from_slice(&(100 + i as u32).to_be_bytes());
            }
            b.extend_from_slice(&[0, 4, 0x40, 1, 1, 0]); // ORIGIN IGP
        }
        let sub = if add_path {
            st::RIB_IPV6_UNICAST_ADDPATH
        } else {
            st::RIB_IPV6_UNICAST
        };
        rec(ty::TABLE_DUMP_V2, sub, &b)
    }

    fn read_all(bytes: &[u8]) -> Vec<Result<MrtRecord, MrtError>> {
        MrtReader::new(bytes).collect()
    }

    #[test]
    fn bgp4mp_message_fields() {
        let recs = read_all(&bgp4mp_as4(3));
        let [Ok(MrtRecord::Bgp4mpMessage(m))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!(m.as_size, AsSize::Four);
        assert_eq!((m.peer_as, m.local_as), (4_200_000_000, 65001));
        assert_eq!(m.interface_index, 7);
        assert_eq!(m.peer_ip, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(m.local_ip, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))));
        assert!(!m.local && !m.add_path);
        assert_eq!(m.message, update(3));
        assert_eq!(m.header.timestamp, 1_000_000);
        assert_eq!(m.header.microseconds, None);
        let c = m.prefix_counts();
        assert_eq!((c.announced, c.withdrawn), (3, 1));
    }

    #[test]
    fn extended_timestamp_is_split_off() {
        let mut b = 123_456u32.to_be_bytes().to_vec();
        let plain = bgp4mp_as4(1);
        b.extend_from_slice(plain.get(12..).unwrap_or_default());
        let et = rec(ty::BGP4MP_ET, st::BGP4MP_MESSAGE_AS4, &b);
        let recs = read_all(&et);
        let [Ok(MrtRecord::Bgp4mpMessage(m))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!(m.header.microseconds, Some(123_456));
        assert_eq!(m.message, update(1));
    }

    #[test]
    fn local_and_add_path_subtypes() {
        let plain = bgp4mp_as4(1);
        let body = plain.get(12..).unwrap_or_default();
        let r = rec(ty::BGP4MP, st::BGP4MP_MESSAGE_AS4_LOCAL_ADDPATH, body);
        let recs = read_all(&r);
        let [Ok(MrtRecord::Bgp4mpMessage(m))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert!(m.local && m.add_path);
        assert_eq!(m.as_size, AsSize::Four);
    }

    #[test]
    fn zebra_address_less_message() {
        // AS numbers, then the BGP message straight away.
        let mut b = vec![0xfd, 0xe9, 0xfd, 0xea];
        b.extend_from_slice(&update(2));
        let recs = read_all(&rec(ty::BGP4MP, st::BGP4MP_MESSAGE, &b));
        let [Ok(MrtRecord::Bgp4mpMessage(m))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!((m.peer_as, m.peer_ip, m.local_ip), (65001, None, None));
        assert_eq!(m.prefix_counts().announced, 2);
    }

    #[test]
    fn unknown_address_family_is_corrupt() {
        let mut b = vec![0xfd, 0xe9, 0xfd, 0xea, 0, 1, 0, 3];
        b.extend_from_slice(&update(1));
        let recs = read_all(&rec(ty::BGP4MP, st::BGP4MP_MESSAGE, &b));
        match recs.as_slice() {
            [Err(e @ MrtError::Corrupt { .. })] => {
                assert!(e.to_string().contains("unknown address family 3"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_change_fields_and_bad_length() {
        let recs = read_all(&state_change_v6());
        let [Ok(MrtRecord::Bgp4mpStateChange(s))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!((s.peer_as, s.local_as), (65001, 65002));
        assert_eq!((s.old_state, s.new_state), (5, 6));
        assert_eq!(
            s.peer_ip,
            Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
        );

        // One byte too many: corrupt, but the next record is still read.
        let mut long = state_change_v6();
        long.push(0);
        if let Some(l) = long.get_mut(11) {
            *l += 1;
        }
        let second = long.len() as u64;
        long.extend(state_change_v6());
        let recs = read_all(&long);
        assert_eq!(recs.len(), 2);
        match recs.first() {
            Some(Err(MrtError::Corrupt { offset: 0, .. })) => {}
            other => panic!("{other:?}"),
        }
        match recs.get(1) {
            Some(Ok(r)) => assert_eq!(r.header().offset, second),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zebra_eight_byte_state_change() {
        let r = rec(
            ty::BGP4MP,
            st::BGP4MP_STATE_CHANGE,
            &[0, 1, 0, 2, 0, 1, 0, 2],
        );
        let recs = read_all(&r);
        let [Ok(MrtRecord::Bgp4mpStateChange(s))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!((s.old_state, s.new_state, s.peer_ip), (1, 2, None));
    }

    #[test]
    fn legacy_table_dump_ipv4_and_ipv6() {
        let mut v4 = vec![0, 0, 0, 5, 10, 1, 0, 0, 16, 1, 0x3d, 0x3c, 0x6c, 0x00];
        v4.extend_from_slice(&[192, 0, 2, 9, 0xfd, 0xe8, 0, 0]);
        let mut v6 = vec![0, 0, 0, 6];
        v6.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0).octets());
        v6.extend_from_slice(&[32, 1, 0, 0, 0, 0]);
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0xfd, 0xe9, 0, 4, 0x40, 1, 1, 2]);
        v6.extend_from_slice(&[0xee, 0xee]); // trailing bytes are ignored
        let mut bytes = rec(ty::TABLE_DUMP, st::TABLE_DUMP_AFI_IPV4, &v4);
        bytes.extend(rec(ty::TABLE_DUMP, st::TABLE_DUMP_AFI_IPV6, &v6));
        let recs = read_all(&bytes);
        let [Ok(MrtRecord::TableDump(a)), Ok(MrtRecord::TableDump(b))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!(a.prefix.to_string(), "10.1.0.0/16");
        assert_eq!((a.sequence, a.peer_as), (5, 65000));
        assert_eq!(b.prefix.to_string(), "2001:db8::/32");
        assert_eq!(b.peer_ip, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(b.attributes, vec![0x40, 1, 1, 2]);
    }

    #[test]
    fn peer_index_then_add_path_rib() {
        let mut bytes = peer_index(3);
        bytes.extend(rib_v6(true, &[0, 2]));
        let recs = read_all(&bytes);
        let [Ok(MrtRecord::PeerIndexTable(t)), Ok(MrtRecord::Rib(r))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!(t.view_name, "ris");
        assert_eq!(t.peers.len(), 3);
        assert_eq!(t.peers.get(2).map(|p| p.asn), Some(65002));
        assert_eq!(r.prefix.to_string(), "2001:db8::/32");
        assert!(r.add_path);
        let ids: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.peer_index, e.path_id))
            .collect();
        assert_eq!(ids, vec![(0, Some(100)), (2, Some(101))]);
        let (s, err) = stats_reader(MrtReader::new(bytes.as_slice()));
        assert!(err.is_none());
        assert_eq!((s.records, s.rib_entries), (2, 2));
    }

    #[test]
    fn rib_needs_a_peer_index_table_that_names_its_peers() {
        let recs = read_all(&rib_v6(false, &[0]));
        assert!(matches!(
            recs.as_slice(),
            [Err(MrtError::Corrupt { offset: 0, .. })]
        ));

        let mut bytes = peer_index(1);
        let at = bytes.len() as u64;
        bytes.extend(rib_v6(false, &[1]));
        let recs = read_all(&bytes);
        match recs.get(1) {
            Some(Err(MrtError::Corrupt { offset, reason, .. })) => {
                assert_eq!(*offset, at);
                assert!(reason.contains("peer index 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rib_generic_keeps_its_nlri() {
        let mut b = vec![0, 0, 0, 1, 0, 1, 2, 24, 10, 1, 2, 0, 1];
        b.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0]);
        let mut bytes = peer_index(1);
        bytes.extend(rec(ty::TABLE_DUMP_V2, st::RIB_GENERIC, &b));
        let recs = read_all(&bytes);
        let [Ok(_), Ok(MrtRecord::RibGeneric(g))] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!((g.afi, g.safi), (1, 2));
        assert_eq!(g.nlri, vec![24, 10, 1, 2]);
        assert_eq!(g.entries.len(), 1);
    }

    #[test]
    fn unknown_types_pass_through() {
        let bytes = rec(11, 0, &[1, 2, 3]); // OSPFv2
        let recs = read_all(&bytes);
        let [Ok(MrtRecord::Unknown { header, body })] = recs.as_slice() else {
            panic!("{recs:?}");
        };
        assert_eq!((header.mrt_type, body.as_slice()), (11, &[1u8, 2, 3][..]));
    }

    #[test]
    fn truncated_body_gives_offset_and_partial_counts() {
        let mut bytes = bgp4mp_as4(2);
        bytes.extend(state_change_v6());
        let third = bytes.len() as u64;
        let full = bgp4mp_as4(5);
        bytes.extend(full.get(..full.len() - 3).unwrap_or_default());
        let (s, err) = stats_reader(MrtReader::new(bytes.as_slice()));
        assert_eq!(
            s,
            MrtStats {
                records: 2,
                announced: 2,
                withdrawn: 1,
                state_changes: 1,
                rib_entries: 0
            }
        );
        match err {
            Some(MrtError::Truncated {
                offset,
                needed,
                available,
            }) => {
                assert_eq!(offset, third);
                assert_eq!(needed, full.len() as u64);
                assert_eq!(available, full.len() as u64 - 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_header_gives_offset() {
        let mut bytes = state_change_v6();
        let at = bytes.len() as u64;
        bytes.extend_from_slice(&[0, 0, 0, 1, 0]);
        let mut reader = MrtReader::new(bytes.as_slice());
        assert!(matches!(reader.next(), Some(Ok(_))));
        match reader.next() {
            Some(Err(e @ MrtError::Truncated { .. })) => {
                assert_eq!(e.offset(), Some(at));
                assert!(e.to_string().contains(&format!("at byte {at}")), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            reader.next().is_none(),
            "reading stops after a framing error"
        );
    }

    #[test]
    fn absurd_length_is_refused_without_buffering() {
        let mut bytes = rec(ty::BGP4MP, st::BGP4MP_MESSAGE, &[]);
        if let Some(len) = bytes.get_mut(8..12) {
            len.copy_from_slice(&u32::MAX.to_be_bytes());
        }
        let recs = read_all(&bytes);
        assert!(matches!(
            recs.as_slice(),
            [Err(MrtError::Corrupt { offset: 0, .. })]
        ));
    }

    #[test]
    fn short_et_record_is_corrupt() {
        let recs = read_all(&rec(ty::BGP4MP_ET, st::BGP4MP_MESSAGE, &[0, 0]));
        assert!(matches!(recs.as_slice(), [Err(MrtError::Corrupt { .. })]));
    }

    #[test]
    fn empty_stream_has_no_records() {
        assert!(read_all(&[]).is_empty());
    }

    proptest::proptest! {
        /// Any byte stream: the reader never panics and always ends.
        #[test]
        fn arbitrary_streams_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let n = MrtReader::new(bytes.as_slice()).take(1000).count();
            proptest::prop_assert!(n <= bytes.len() / 12 + 1);
        }

        /// A valid stream cut anywhere: the records wholly before the cut
        /// are returned, then one error naming the offset of the cut record.
        #[test]
        fn cut_anywhere_names_the_cut_record(cut in 0usize..400) {
            let mut bytes = peer_index(2);
            bytes.extend(rib_v6(true, &[0, 1]));
            bytes.extend(bgp4mp_as4(3));
            bytes.extend(state_change_v6());
            let starts = [0, peer_index(2).len(), peer_index(2).len() + rib_v6(true, &[0, 1]).len()];
            let third_end = starts[2] + bgp4mp_as4(3).len();
            let all = [starts[0], starts[1], starts[2], third_end, bytes.len()];
            let cut = cut.min(bytes.len());
            let recs = read_all(bytes.get(..cut).unwrap_or_default());
            let whole = all.iter().skip(1).filter(|&&end| end <= cut).count();
            let ok = recs.iter().filter(|r| r.is_ok()).count();
            proptest::prop_assert_eq!(ok, whole);
            match recs.get(whole) {
                None => proptest::prop_assert!(all.contains(&cut)),
                Some(Err(e)) => proptest::prop_assert_eq!(e.offset(), all.get(whole).map(|&o| o as u64)),
                Some(Ok(r)) => proptest::prop_assert!(false, "unexpected record {:?}", r),
            }
        }
    }
}
