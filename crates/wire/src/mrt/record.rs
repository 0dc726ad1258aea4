//! Typed MRT records and the parsers of their bodies (RFC 6396 §4,
//! RFC 8050). Parsing here is strict: every length is checked against the
//! record, and a field that does not fit is an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::count::{count_update_prefixes, PrefixCounts};
use super::{subtypes as st, types as ty};
use crate::types::{AFI_IPV4, AFI_IPV6};

/// The common MRT header (RFC 6396 §2), plus where the record starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MrtHeader {
    /// Byte offset of the record's first header byte in the decompressed stream.
    pub offset: u64,
    pub timestamp: u32,
    /// Microseconds, present only in the `_ET` types (RFC 6396 §3).
    pub microseconds: Option<u32>,
    pub mrt_type: u16,
    pub subtype: u16,
    /// The header's length field: body bytes, including the microsecond
    /// field of `_ET` records.
    pub length: u32,
}

/// Size of the AS numbers in a BGP4MP record, and so of the AS numbers in
/// the AS_PATH of the BGP message it carries (RFC 6396 §4.4.3: the `_AS4`
/// subtypes mean the session negotiated 4-octet AS, RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsSize {
    Two,
    Four,
}

impl AsSize {
    /// Octets per AS number.
    pub fn octets(self) -> usize {
        match self {
            AsSize::Two => 2,
            AsSize::Four => 4,
        }
    }
}

/// A legacy TABLE_DUMP record: one prefix as seen from one peer (RFC 6396 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDumpEntry {
    pub header: MrtHeader,
    pub view: u16,
    pub sequence: u16,
    /// As recorded; host bits are kept (RFC 4271 §4.3 says they are irrelevant).
    pub prefix: IpNet,
    pub status: u8,
    pub originated_time: u32,
    pub peer_ip: IpAddr,
    pub peer_as: u32,
    /// Path attributes exactly as recorded (2-octet AS_PATH unless the
    /// subtype is one of the 4-octet-AS ones).
    pub attributes: Vec<u8>,
}

/// One peer of a PEER_INDEX_TABLE (RFC 6396 §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub bgp_id: Ipv4Addr,
    pub ip: IpAddr,
    pub asn: u32,
}

/// TABLE_DUMP_V2 PEER_INDEX_TABLE (RFC 6396 §4.3.1). The RIB records that
/// follow name their peers by index into `peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIndexTable {
    pub header: MrtHeader,
    pub collector_bgp_id: Ipv4Addr,
    /// View name; not required to be UTF-8, so decoded lossily.
    pub view_name: String,
    pub peers: Vec<Peer>,
}

/// One RIB entry (RFC 6396 §4.3.4; path identifier per RFC 8050 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibEntry {
    pub peer_index: u16,
    pub originated_time: u32,
    /// Present in the `_ADDPATH` subtypes only.
    pub path_id: Option<u32>,
    /// Path attributes as recorded. AS numbers are 4 octets, and
    /// MP_REACH_NLRI holds only the next-hop length and next hop
    /// (RFC 6396 §4.3.4).
    pub attributes: Vec<u8>,
}

/// RIB_IPV4/IPV6_UNICAST/MULTICAST and their ADD-PATH variants
/// (RFC 6396 §4.3.2, RFC 8050 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rib {
    pub header: MrtHeader,
    pub afi: u16,
    pub safi: u8,
    pub add_path: bool,
    pub sequence: u32,
    /// As recorded; host bits are kept.
    pub prefix: IpNet,
    pub entries: Vec<RibEntry>,
}

/// RIB_GENERIC and RIB_GENERIC_ADDPATH (RFC 6396 §4.3.3, RFC 8050 §3): any
/// AFI/SAFI, with the NLRI kept in its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibGeneric {
    pub header: MrtHeader,
    pub add_path: bool,
    pub sequence: u32,
    pub afi: u16,
    pub safi: u8,
    /// One NLRI in its RFC 4760 encoding (length prefix included).
    pub nlri: Vec<u8>,
    pub entries: Vec<RibEntry>,
}

/// A BGP message as captured by BGP4MP / BGP4MP_ET (RFC 6396 §4.4.2,
/// §4.4.3, §4.4.5, §4.4.6; RFC 8050 §4 for ADD-PATH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgp4mpMessage {
    pub header: MrtHeader,
    pub as_size: AsSize,
    /// The message was sent by the collector (`_LOCAL` subtypes), not received.
    pub local: bool,
    /// NLRI in the message carry RFC 7911 path identifiers.
    pub add_path: bool,
    pub peer_as: u32,
    pub local_as: u32,
    pub interface_index: u16,
    /// `None` only for the address-less records old Zebra versions wrote
    /// (the BGP marker follows the AS numbers), which bgpdump also accepts.
    pub peer_ip: Option<IpAddr>,
    pub local_ip: Option<IpAddr>,
    /// The whole BGP message, marker included, as captured.
    pub message: Vec<u8>,
}

impl Bgp4mpMessage {
    /// Prefixes this message announces and withdraws, counted as bgpdump
    /// counts them (see [`count_update_prefixes`]).
    pub fn prefix_counts(&self) -> PrefixCounts {
        count_update_prefixes(&self.message, self.add_path)
    }
}

/// A BGP FSM state change (RFC 6396 §4.4.1, §4.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgp4mpStateChange {
    pub header: MrtHeader,
    pub as_size: AsSize,
    pub peer_as: u32,
    pub local_as: u32,
    pub interface_index: u16,
    /// `None` only for the 8-byte record old Zebra versions wrote (AS
    /// numbers and states, no addresses), which bgpdump also accepts.
    pub peer_ip: Option<IpAddr>,
    pub local_ip: Option<IpAddr>,
    /// RFC 4271 §8.2.2 state numbers: 1 Idle .. 6 Established.
    pub old_state: u16,
    pub new_state: u16,
}

/// One MRT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MrtRecord {
    TableDump(TableDumpEntry),
    PeerIndexTable(PeerIndexTable),
    Rib(Rib),
    RibGeneric(RibGeneric),
    Bgp4mpMessage(Bgp4mpMessage),
    Bgp4mpStateChange(Bgp4mpStateChange),
    /// A type or subtype this reader does not interpret (OSPF, ISIS, the
    /// deprecated BGP4MP_ENTRY, ...), kept raw so that reading goes on.
    Unknown {
        header: MrtHeader,
        body: Vec<u8>,
    },
}

impl MrtRecord {
    pub fn header(&self) -> &MrtHeader {
        match self {
            MrtRecord::TableDump(r) => &r.header,
            MrtRecord::PeerIndexTable(r) => &r.header,
            MrtRecord::Rib(r) => &r.header,
            MrtRecord::RibGeneric(r) => &r.header,
            MrtRecord::Bgp4mpMessage(r) => &r.header,
            MrtRecord::Bgp4mpStateChange(r) => &r.header,
            MrtRecord::Unknown { header, .. } => header,
        }
    }
}

/// A bounds-checked cursor over a record body.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Cursor { rest }
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err(format!(
                "{what}: needs {n} bytes, only {} left in the record",
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn asn(&mut self, size: AsSize, what: &str) -> Result<u32, String> {
        match size {
            AsSize::Two => self.u16(what).map(u32::from),
            AsSize::Four => self.u32(what),
        }
    }

    fn ipv4(&mut self, what: &str) -> Result<Ipv4Addr, String> {
        Ok(Ipv4Addr::from(self.array::<4>(what)?))
    }

    fn ipv6(&mut self, what: &str) -> Result<Ipv6Addr, String> {
        Ok(Ipv6Addr::from(self.array::<16>(what)?))
    }

    fn ip(&mut self, afi: u16, what: &str) -> Result<IpAddr, String> {
        match afi {
            AFI_IPV4 => self.ipv4(what).map(IpAddr::V4),
            AFI_IPV6 => self.ipv6(what).map(IpAddr::V6),
            other => Err(format!("{what}: unknown address family {other}")),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// A prefix in RIB form: length in bits, then the minimum number of octets
/// (RFC 6396 §4.3.2). Host bits are kept as recorded.
fn rib_prefix(c: &mut Cursor<'_>, afi: u16) -> Result<IpNet, String> {
    let len = c.u8("prefix length")?;
    let nbytes = usize::from(len).div_ceil(8);
    let raw = c.bytes(nbytes, "prefix")?;
    let net = match afi {
        AFI_IPV4 => {
            let mut a = [0u8; 4];
            let dst = a
                .get_mut(..nbytes)
                .ok_or_else(|| format!("IPv4 prefix length {len} exceeds 32"))?;
            dst.copy_from_slice(raw);
            ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).map(IpNet::V4)
        }
        _ => {
            let mut a = [0u8; 16];
            let dst = a
                .get_mut(..nbytes)
                .ok_or_else(|| format!("IPv6 prefix length {len} exceeds 128"))?;
            dst.copy_from_slice(raw);
            ipnet::Ipv6Net::new(Ipv6Addr::from(a), len).map(IpNet::V6)
        }
    };
    net.map_err(|_| format!("prefix length {len} too long for AFI {afi}"))
}

/// Context the reader keeps between records: RIB records name peers by
/// index into the last PEER_INDEX_TABLE (RFC 6396 §4.3.4).
#[derive(Debug, Default)]
pub(crate) struct ParseState {
    pub(crate) peer_count: Option<usize>,
}

/// Parses one record body. `body` excludes the MRT header and, for `_ET`
/// types, the microsecond field (already moved into `header`).
pub(crate) fn parse_record(
    header: MrtHeader,
    body: Vec<u8>,
    state: &mut ParseState,
) -> Result<MrtRecord, String> {
    match (header.mrt_type, header.subtype) {
        (ty::TABLE_DUMP, st::TABLE_DUMP_AFI_IPV4..=st::TABLE_DUMP_AFI_IPV6_AS4) => {
            table_dump(header, &body).map(MrtRecord::TableDump)
        }
        (ty::TABLE_DUMP_V2, st::PEER_INDEX_TABLE) => {
            let t = peer_index_table(header, &body)?;
            state.peer_count = Some(t.peers.len());
            Ok(MrtRecord::PeerIndexTable(t))
        }
        (ty::TABLE_DUMP_V2, st::RIB_GENERIC | st::RIB_GENERIC_ADDPATH) => {
            rib_generic(header, &body, state).map(MrtRecord::RibGeneric)
        }
        (ty::TABLE_DUMP_V2, sub) => match rib_family(sub) {
            Some((afi, safi, add_path)) => {
                rib(header, &body, afi, safi, add_path, state).map(MrtRecord::Rib)
            }
            None => Ok(MrtRecord::Unknown { header, body }),
        },
        (ty::BGP4MP | ty::BGP4MP_ET, st::BGP4MP_STATE_CHANGE) => {
            state_change(header, &body, AsSize::Two).map(MrtRecord::Bgp4mpStateChange)
        }
        (ty::BGP4MP | ty::BGP4MP_ET, st::BGP4MP_STATE_CHANGE_AS4) => {
            state_change(header, &body, AsSize::Four).map(MrtRecord::Bgp4mpStateChange)
        }
        (ty::BGP4MP | ty::BGP4MP_ET, sub) => match message_kind(sub) {
            Some((as_size, local, add_path)) => {
                bgp4mp_message(header, body, as_size, local, add_path).map(MrtRecord::Bgp4mpMessage)
            }
            None => Ok(MrtRecord::Unknown { header, body }),
        },
        _ => Ok(MrtRecord::Unknown { header, body }),
    }
}

/// (AFI, SAFI, ADD-PATH) of the AFI/SAFI-specific RIB subtypes
/// (RFC 6396 §4.3.2, RFC 8050 §3).
fn rib_family(subtype: u16) -> Option<(u16, u8, bool)> {
    Some(match subtype {
        st::RIB_IPV4_UNICAST => (AFI_IPV4, 1, false),
        st::RIB_IPV4_MULTICAST => (AFI_IPV4, 2, false),
        st::RIB_IPV6_UNICAST => (AFI_IPV6, 1, false),
        st::RIB_IPV6_MULTICAST => (AFI_IPV6, 2, false),
        st::RIB_IPV4_UNICAST_ADDPATH => (AFI_IPV4, 1, true),
        st::RIB_IPV4_MULTICAST_ADDPATH => (AFI_IPV4, 2, true),
        st::RIB_IPV6_UNICAST_ADDPATH => (AFI_IPV6, 1, true),
        st::RIB_IPV6_MULTICAST_ADDPATH => (AFI_IPV6, 2, true),
        _ => return None,
    })
}

/// (AS size, sent by the local side, ADD-PATH) of the BGP4MP message
/// subtypes (RFC 6396 §4.4, RFC 8050 §4).
fn message_kind(subtype: u16) -> Option<(AsSize, bool, bool)> {
    Some(match subtype {
        st::BGP4MP_MESSAGE => (AsSize::Two, false, false),
        st::BGP4MP_MESSAGE_AS4 => (AsSize::Four, false, false),
        st::BGP4MP_MESSAGE_LOCAL => (AsSize::Two, true, false),
        st::BGP4MP_MESSAGE_AS4_LOCAL => (AsSize::Four, true, false),
        st::BGP4MP_MESSAGE_ADDPATH => (AsSize::Two, false, true),
        st::BGP4MP_MESSAGE_AS4_ADDPATH => (AsSize::Four, false, true),
        st::BGP4MP_MESSAGE_LOCAL_ADDPATH => (AsSize::Two, true, true),
        st::BGP4MP_MESSAGE_AS4_LOCAL_ADDPATH => (AsSize::Four, true, true),
        _ => return None,
    })
}

/// RFC 6396 §4.2. Subtypes 3 and 4 are bgpdump's 4-octet-AS variants.
fn table_dump(header: MrtHeader, body: &[u8]) -> Result<TableDumpEntry, String> {
    let (afi, as_size) = match header.subtype {
        st::TABLE_DUMP_AFI_IPV4 => (AFI_IPV4, AsSize::Two),
        st::TABLE_DUMP_AFI_IPV6 => (AFI_IPV6, AsSize::Two),
        st::TABLE_DUMP_AFI_IPV4_AS4 => (AFI_IPV4, AsSize::Four),
        _ => (AFI_IPV6, AsSize::Four),
    };
    let mut c = Cursor::new(body);
    let view = c.u16("view number")?;
    let sequence = c.u16("sequence number")?;
    let addr = c.ip(afi, "prefix")?;
    let len = c.u8("prefix length")?;
    let prefix = IpNet::new(addr, len).map_err(|_| format!("prefix length {len} too long"))?;
    let status = c.u8("status")?;
    let originated_time = c.u32("originated time")?;
    let peer_ip = c.ip(afi, "peer IP address")?;
    let peer_as = c.asn(as_size, "peer AS")?;
    let attr_len = c.u16("attribute length")?;
    let attributes = c.bytes(usize::from(attr_len), "attributes")?.to_vec();
    // Bytes after the attributes are ignored, as bgpdump ignores them.
    Ok(TableDumpEntry {
        header,
        view,
        sequence,
        prefix,
        status,
        originated_time,
        peer_ip,
        peer_as,
        attributes,
    })
}

/// RFC 6396 §4.3.1. Peer type bit 0: IPv6 address; bit 1: 4-octet AS.
fn peer_index_table(header: MrtHeader, body: &[u8]) -> Result<PeerIndexTable, String> {
    let mut c = Cursor::new(body);
    let collector_bgp_id = c.ipv4("collector BGP ID")?;
    let name_len = c.u16("view name length")?;
    let view_name = String::from_utf8_lossy(c.bytes(usize::from(name_len), "view name")?).into();
    let count = c.u16("peer count")?;
    let mut peers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let peer_type = c.u8("peer type")?;
        let bgp_id = c.ipv4("peer BGP ID")?;
        let ip = if peer_type & 0x01 != 0 {
            IpAddr::V6(c.ipv6("peer IPv6 address")?)
        } else {
            IpAddr::V4(c.ipv4("peer IPv4 address")?)
        };
        let asn = if peer_type & 0x02 != 0 {
            c.u32("peer AS")?
        } else {
            u32::from(c.u16("peer AS")?)
        };
        peers.push(Peer { bgp_id, ip, asn });
    }
    Ok(PeerIndexTable {
        header,
        collector_bgp_id,
        view_name,
        peers,
    })
}

/// RIB entries (RFC 6396 §4.3.4), with a path identifier after the
/// originated time in the ADD-PATH subtypes (RFC 8050 §3).
fn rib_entries(
    c: &mut Cursor<'_>,
    add_path: bool,
    state: &ParseState,
) -> Result<Vec<RibEntry>, String> {
    let count = c.u16("entry count")?;
    if count > 0 && state.peer_count.is_none() {
        return Err("RIB entries before any PEER_INDEX_TABLE".into());
    }
    let peers = state.peer_count.unwrap_or(0);
    let mut entries = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let peer_index = c.u16("peer index")?;
        if usize::from(peer_index) >= peers {
            return Err(format!(
                "entry {i}: peer index {peer_index} beyond the {peers} peers of the index table"
            ));
        }
        let originated_time = c.u32("originated time")?;
        let path_id = if add_path {
            Some(c.u32("path identifier")?)
        } else {
            None
        };
        let attr_len = c.u16("attribute length")?;
        let attributes = c.bytes(usize::from(attr_len), "attributes")?.to_vec();
        entries.push(RibEntry {
            peer_index,
            originated_time,
            path_id,
            attributes,
        });
    }
    // Bytes after the last entry are ignored, as bgpdump ignores them.
    Ok(entries)
}

/// RFC 6396 §4.3.2.
fn rib(
    header: MrtHeader,
    body: &[u8],
    afi: u16,
    safi: u8,
    add_path: bool,
    state: &ParseState,
) -> Result<Rib, String> {
    let mut c = Cursor::new(body);
    let sequence = c.u32("sequence number")?;
    let prefix = rib_prefix(&mut c, afi)?;
    let entries = rib_entries(&mut c, add_path, state)?;
    Ok(Rib {
        header,
        afi,
        safi,
        add_path,
        sequence,
        prefix,
        entries,
    })
}

/// RFC 6396 §4.3.3. The NLRI is one RFC 4760 NLRI: a length in bits and
/// that many bits rounded up to octets, except for Flow Specification
/// (SAFI 133/134, RFC 8955 §4) whose length is in octets, one or two of them.
fn rib_generic(header: MrtHeader, body: &[u8], state: &ParseState) -> Result<RibGeneric, String> {
    let add_path = header.subtype == st::RIB_GENERIC_ADDPATH;
    let mut c = Cursor::new(body);
    let sequence = c.u32("sequence number")?;
    let afi = c.u16("AFI")?;
    let safi = c.u8("SAFI")?;
    let start = c.rest;
    let first = c.u8("NLRI length")?;
    let (len_octets, data_len) = match safi {
        133 | 134 if first >= 0xf0 => {
            let second = c.u8("NLRI length")?;
            (2, (usize::from(first & 0x0f) << 8) | usize::from(second))
        }
        133 | 134 => (1, usize::from(first)),
        _ => (1, usize::from(first).div_ceil(8)),
    };
    c.bytes(data_len, "NLRI")?;
    let nlri = start
        .get(..len_octets + data_len)
        .ok_or("NLRI beyond the record")?
        .to_vec();
    let entries = rib_entries(&mut c, add_path, state)?;
    Ok(RibGeneric {
        header,
        add_path,
        sequence,
        afi,
        safi,
        nlri,
        entries,
    })
}

/// RFC 6396 §4.4.2 (and §4.4.3, §4.4.5, §4.4.6): the field order is the
/// same in every message subtype; `_LOCAL` only says who sent the message.
fn bgp4mp_message(
    header: MrtHeader,
    body: Vec<u8>,
    as_size: AsSize,
    local: bool,
    add_path: bool,
) -> Result<Bgp4mpMessage, String> {
    let mut c = Cursor::new(&body);
    let peer_as = c.asn(as_size, "peer AS")?;
    let local_as = c.asn(as_size, "local AS")?;
    if c.rest.starts_with(&[0xff; 4]) {
        // Old Zebra wrote some messages (OPENs) with neither interface,
        // family nor addresses: the BGP marker follows the AS numbers.
        // bgpdump accepts these, so do we.
        let message = c.rest().to_vec();
        return Ok(Bgp4mpMessage {
            header,
            as_size,
            local,
            add_path,
            peer_as,
            local_as,
            interface_index: 0,
            peer_ip: None,
            local_ip: None,
            message,
        });
    }
    let interface_index = c.u16("interface index")?;
    let afi = c.u16("address family")?;
    let peer_ip = Some(c.ip(afi, "peer IP address")?);
    let local_ip = Some(c.ip(afi, "local IP address")?);
    let message = c.rest().to_vec();
    Ok(Bgp4mpMessage {
        header,
        as_size,
        local,
        add_path,
        peer_as,
        local_as,
        interface_index,
        peer_ip,
        local_ip,
        message,
    })
}

/// RFC 6396 §4.4.1 and §4.4.4. The record must be exactly as long as its
/// fields, as bgpdump requires too.
fn state_change(
    header: MrtHeader,
    body: &[u8],
    as_size: AsSize,
) -> Result<Bgp4mpStateChange, String> {
    let mut c = Cursor::new(body);
    let peer_as = c.asn(as_size, "peer AS")?;
    let local_as = c.asn(as_size, "local AS")?;
    if as_size == AsSize::Two && body.len() == 8 {
        // Old Zebra wrote AS numbers and states only.
        let old_state = c.u16("old state")?;
        let new_state = c.u16("new state")?;
        return Ok(Bgp4mpStateChange {
            header,
            as_size,
            peer_as,
            local_as,
            interface_index: 0,
            peer_ip: None,
            local_ip: None,
            old_state,
            new_state,
        });
    }
    let interface_index = c.u16("interface index")?;
    let afi = c.u16("address family")?;
    let peer_ip = c.ip(afi, "peer IP address")?;
    let local_ip = c.ip(afi, "local IP address")?;
    let old_state = c.u16("old state")?;
    let new_state = c.u16("new state")?;
    if !c.is_empty() {
        return Err(format!("{} bytes after the new state", c.rest().len()));
    }
    Ok(Bgp4mpStateChange {
        header,
        as_size,
        peer_as,
        local_as,
        interface_index,
        peer_ip: Some(peer_ip),
        local_ip: Some(local_ip),
        old_state,
        new_state,
    })
}
