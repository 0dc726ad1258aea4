//! MRT reader (RFC 6396, with the ADD-PATH subtypes of RFC 8050).
//!
//! A streaming reader over MRT files as the route collectors publish them
//! (gzip-compressed or plain): one typed [`MrtRecord`] per MRT record, and
//! [`stats`] that counts prefixes the way `bgpdump -m` prints them, so that
//! our numbers can be checked against a tool operators already trust.
//!
//! This is the only part of `wire` that touches files (std only, no async):
//! the MRT format is a file format, and replaying real files is how the
//! codec and the RIB are tested against the global table.
//!
//! Layering:
//! - The MRT framing and the MRT-level fields are parsed strictly. A record
//!   that is cut short or does not fit its own length is an [`MrtError`]
//!   carrying the byte offset of the record in the decompressed stream.
//! - BGP messages inside BGP4MP records are carried as raw bytes. Counting
//!   their prefixes ([`count_update_prefixes`]) is deliberately lenient, as
//!   bgpdump is: a malformed UPDATE counts what can be read, it never fails
//!   the file.

mod count;
mod error;
mod reader;
mod record;
mod stats;

pub use count::{count_update_prefixes, PrefixCounts};
pub use error::MrtError;
pub use reader::{MrtFile, MrtReader, MAX_RECORD_LENGTH};
pub use record::{
    AsSize, Bgp4mpMessage, Bgp4mpStateChange, MrtHeader, MrtRecord, Peer, PeerIndexTable, Rib,
    RibEntry, RibGeneric, TableDumpEntry,
};
pub use stats::{stats, stats_partial, stats_reader, MrtStats};

/// MRT type codes (RFC 6396 §4, IANA "MRT Types").
pub mod types {
    /// Legacy RIB dump, one prefix and one peer per record (RFC 6396 §4.2).
    pub const TABLE_DUMP: u16 = 12;
    /// RIB dump with a peer index table (RFC 6396 §4.3).
    pub const TABLE_DUMP_V2: u16 = 13;
    /// BGP messages and state changes (RFC 6396 §4.4).
    pub const BGP4MP: u16 = 16;
    /// BGP4MP with a microsecond timestamp in the header (RFC 6396 §3).
    pub const BGP4MP_ET: u16 = 17;
}

/// MRT subtype codes (RFC 6396 §4.3, §4.4; RFC 8050 §3 and §4).
pub mod subtypes {
    pub const TABLE_DUMP_AFI_IPV4: u16 = 1;
    pub const TABLE_DUMP_AFI_IPV6: u16 = 2;
    /// Not in RFC 6396: bgpdump's 4-octet-AS forms of the legacy dump.
    pub const TABLE_DUMP_AFI_IPV4_AS4: u16 = 3;
    pub const TABLE_DUMP_AFI_IPV6_AS4: u16 = 4;

    pub const PEER_INDEX_TABLE: u16 = 1;
    pub const RIB_IPV4_UNICAST: u16 = 2;
    pub const RIB_IPV4_MULTICAST: u16 = 3;
    pub const RIB_IPV6_UNICAST: u16 = 4;
    pub const RIB_IPV6_MULTICAST: u16 = 5;
    pub const RIB_GENERIC: u16 = 6;
    pub const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
    pub const RIB_IPV4_MULTICAST_ADDPATH: u16 = 9;
    pub const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;
    pub const RIB_IPV6_MULTICAST_ADDPATH: u16 = 11;
    pub const RIB_GENERIC_ADDPATH: u16 = 12;

    pub const BGP4MP_STATE_CHANGE: u16 = 0;
    pub const BGP4MP_MESSAGE: u16 = 1;
    pub const BGP4MP_MESSAGE_AS4: u16 = 4;
    pub const BGP4MP_STATE_CHANGE_AS4: u16 = 5;
    pub const BGP4MP_MESSAGE_LOCAL: u16 = 6;
    pub const BGP4MP_MESSAGE_AS4_LOCAL: u16 = 7;
    pub const BGP4MP_MESSAGE_ADDPATH: u16 = 8;
    pub const BGP4MP_MESSAGE_AS4_ADDPATH: u16 = 9;
    pub const BGP4MP_MESSAGE_LOCAL_ADDPATH: u16 = 10;
    pub const BGP4MP_MESSAGE_AS4_LOCAL_ADDPATH: u16 = 11;
}
