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
//!
//! Bad UPDATEs (RFC 7606): an `Err(DecodeError)` means reset the session
//! with [`DecodeError::notification`] (or, where
//! [`DecodeError::afi_safi_disable`] names a family, RFC 4760 §7 allows
//! disabling it instead). `Ok(Decoded)` may still carry
//! `treat_as_withdraw` (handle every prefix of the UPDATE as withdrawn) and
//! `discarded` attributes. The rule for each attribute sits next to its
//! decoder in `update/attr/` (one module per attribute). Two choices worth knowing:
//! - a 16/32-byte MP_REACH next hop for IPv4 without RFC 8950 negotiated
//!   is a "next hop length inconsistent with that expected": session reset
//!   or AFI/SAFI disable (RFC 7606 §7.11);
//! - an error stronger than attribute-discard in an UPDATE without
//!   reachable NLRI resets the session (RFC 7606 §5.2).

#![forbid(unsafe_code)]

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
pub use pack::{end_of_rib, pack_announcements, pack_withdrawals};
pub use types::*;
pub use update::{is_end_of_rib, Decoded};
