//! via6 wire codec: BGP-4 messages (RFC 4271) with multiprotocol (RFC 4760)
//! and extended next hop (RFC 8950) support.
//!
//! Pure: bytes in, typed values out, and back. No I/O, no async.

pub mod mrt;
pub mod types;

pub use types::*;
