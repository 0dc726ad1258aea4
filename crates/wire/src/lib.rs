//! via6 wire codec: BGP-4 messages (RFC 4271) with multiprotocol (RFC 4760)
//! and extended next hop (RFC 8950) support, RFC 7606 error handling.
//!
//! Pure: bytes in, typed values out, and back. No I/O, no async.
//!
//! Entry points: [`frame_length`] to cut messages out of a byte stream,
//! [`decode_message`] / [`encode_message`] for single messages, and
//! [`pack_announcements`] / [`pack_withdrawals`] / [`end_of_rib`] to build
//! outbound UPDATEs. A [`CodecContext`] carries what the session
//! negotiated.

pub mod aspath;
pub mod error;
pub mod message;
pub mod mrt;
pub mod nexthop;
mod nlri;
pub mod open;
pub mod pack;
pub mod types;
pub mod update;

pub use aspath::merge_as4_path;
pub use error::{
    notify, AttributeError, AttributeErrorKind, DecodeError, EncodeError, ErrorAction,
};
pub use message::{
    decode_message, encode_message, frame_length, CodecContext, HEADER_LEN,
    MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
};
pub use nexthop::is_link_local;
pub use pack::{end_of_rib, pack_announcements, pack_withdrawals};
pub use types::*;
pub use update::{is_end_of_rib, Decoded};
