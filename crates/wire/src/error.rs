//! Error values of the codec.
//!
//! Decoding has three outcomes for bad input, following RFC 7606 §2:
//! a malformed attribute is dropped ("attribute discard"), or every prefix
//! of the UPDATE is handled as withdrawn ("treat-as-withdraw"), or the
//! session is reset with a NOTIFICATION. The first two are reported in
//! [`crate::Decoded`] next to the message; only the third is an `Err`
//! ([`DecodeError`]). Each outcome carries the RFC section that asks for it.

use crate::types::{Family, Notification};

/// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, §6; RFC 7313 §5).
pub mod notify {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    pub const OPEN: u8 = 2;
    pub const OPEN_UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;

    pub const UPDATE: u8 = 3;
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;

    pub const ROUTE_REFRESH: u8 = 7;
    pub const ROUTE_REFRESH_INVALID_LENGTH: u8 = 1;
}

/// The RFC 7606 §2 error-handling approaches, weakest first, so that
/// `max()` picks the one RFC 7606 §3 (h) asks for when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorAction {
    /// Drop the attribute, keep processing the UPDATE.
    AttributeDiscard,
    /// Handle every prefix of the UPDATE as withdrawn.
    TreatAsWithdraw,
    /// Stop using this AFI/SAFI on the session (RFC 4760 §7).
    AfiSafiDisable,
    /// Send the NOTIFICATION and close the session.
    SessionReset,
}

/// Why an attribute was found malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeErrorKind {
    /// Optional/Transitive bits differ from the attribute's definition.
    Flags,
    /// Length is not the one the attribute's definition allows.
    Length,
    /// Value is outside its defined range (ORIGIN) or does not parse
    /// (AS_PATH segments).
    Value,
    /// The attribute appeared more than once; later copies are dropped.
    Duplicate,
    /// A well-known mandatory attribute is missing.
    Missing,
    /// The attribute list could not be split into attributes (an attribute
    /// overruns the Total Path Attribute Length, or a trailing fragment is
    /// shorter than a header).
    Framing,
    /// Received from a peer that must not send it (AS4_PATH/AS4_AGGREGATOR
    /// between two 4-octet-AS speakers).
    NotExpected,
}

/// One malformed attribute handled without resetting the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeError {
    /// Attribute type code (0 for list-level framing errors).
    pub type_code: u8,
    pub kind: AttributeErrorKind,
    pub action: ErrorAction,
    /// The RFC section that prescribes `action`.
    pub rule: &'static str,
}

/// A decoding error that ends the session: the peer gets the
/// NOTIFICATION from [`DecodeError::notification`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// RFC 4271 §6.1: the marker is not all ones.
    #[error("message header: marker is not all ones (RFC 4271 §6.1)")]
    BadMarker,
    /// RFC 4271 §6.1 (maximum raised by RFC 8654): the length field is out
    /// of range for the message type.
    #[error("message header: bad length {length} (RFC 4271 §6.1)")]
    BadLength { length: u16 },
    /// RFC 4271 §6.1: unknown message type.
    #[error("message header: unknown message type {msg_type} (RFC 4271 §6.1)")]
    BadType { msg_type: u8 },
    /// The slice handed to `decode_message` is not exactly one message.
    #[error("frame is {got} bytes but its header says {length}")]
    FrameMismatch { got: usize, length: u16 },
    /// An OPEN error (RFC 4271 §6.2, RFC 5492 §3, RFC 9072).
    #[error("OPEN: {reason}")]
    Open {
        subcode: u8,
        data: Vec<u8>,
        reason: &'static str,
    },
    /// An UPDATE error that resets the session. `family` is set when
    /// RFC 4760 §7 allows "AFI/SAFI disable" instead of a reset.
    #[error("UPDATE: {reason} ({rule})")]
    Update {
        subcode: u8,
        data: Vec<u8>,
        reason: &'static str,
        rule: &'static str,
        family: Option<Family>,
    },
    /// RFC 7313 §5: a BoRR/EoRR ROUTE-REFRESH whose length is not 23; the
    /// NOTIFICATION data is the whole message.
    #[error("ROUTE-REFRESH: invalid message length (RFC 7313 §5)")]
    RouteRefreshLength { message: Vec<u8> },
}

impl DecodeError {
    /// The NOTIFICATION to send before closing (RFC 4271 §6, RFC 7606).
    pub fn notification(&self) -> Notification {
        use notify::*;
        let (code, subcode, data) = match self {
            DecodeError::BadMarker => (MESSAGE_HEADER, CONNECTION_NOT_SYNCHRONIZED, Vec::new()),
            DecodeError::BadLength { length } => (
                MESSAGE_HEADER,
                BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
            ),
            DecodeError::FrameMismatch { length, .. } => (
                MESSAGE_HEADER,
                BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
            ),
            DecodeError::BadType { msg_type } => {
                (MESSAGE_HEADER, BAD_MESSAGE_TYPE, vec![*msg_type])
            }
            DecodeError::Open { subcode, data, .. } => (OPEN, *subcode, data.clone()),
            DecodeError::Update { subcode, data, .. } => (UPDATE, *subcode, data.clone()),
            DecodeError::RouteRefreshLength { message } => {
                (ROUTE_REFRESH, ROUTE_REFRESH_INVALID_LENGTH, message.clone())
            }
        };
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// RFC 7606 §2: what the receiver does. Always a reset, unless RFC 4760
    /// §7 allows disabling the family instead.
    pub fn action(&self) -> ErrorAction {
        if self.afi_safi_disable().is_some() {
            ErrorAction::AfiSafiDisable
        } else {
            ErrorAction::SessionReset
        }
    }

    /// The family a receiver may disable instead of resetting the session
    /// (RFC 4760 §7, RFC 7606 §7.11/§7.12); `None` means reset is the only
    /// option.
    pub fn afi_safi_disable(&self) -> Option<Family> {
        match self {
            DecodeError::Update { family, .. } => *family,
            _ => None,
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the negotiated maximum (RFC 4271 §4.1,
    /// RFC 8654 §4).
    #[error("message of {length} bytes exceeds the maximum of {max}")]
    MessageTooLong { length: usize, max: usize },
    /// An IPv6 next hop for IPv4 NLRI to a peer that did not negotiate
    /// RFC 8950 extended next hop for IPv4 unicast (RFC 8950 §4).
    #[error("IPv6 next hop for IPv4 NLRI without the extended next hop capability (RFC 8950 §4)")]
    NoExtendedNextHop,
    /// The next hop cannot carry this prefix family (an IPv4 next hop for
    /// IPv6 NLRI), or a prefix does not match its MP_REACH/MP_UNREACH family.
    #[error("next hop or prefix family mismatch")]
    FamilyMismatch,
    /// An IPv6 next hop with neither a global nor a link-local address.
    #[error("IPv6 next hop has no address")]
    EmptyNextHop,
    /// `pack_announcements` builds NEXT_HOP and MP_REACH/MP_UNREACH itself.
    #[error("attribute set for packing must not hold NEXT_HOP, MP_REACH_NLRI or MP_UNREACH_NLRI")]
    ReservedAttribute,
    /// The attributes alone leave no room for a single prefix.
    #[error("path attributes of {length} bytes leave no room for NLRI within {max} bytes")]
    AttributesTooLarge { length: usize, max: usize },
    /// A length-prefixed field is longer than its length field can say.
    #[error("{what} is {length} bytes, more than its length field allows")]
    FieldTooLong { what: &'static str, length: usize },
}
