//! Errors of the raw peer: each says what the peer was doing or expecting.

use std::time::Duration;

/// What went wrong while connecting, building bytes or reading the peer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket or namespace file operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The interface named for a link-local connection is not there.
    #[error("no interface {ifname} in {ns_path}")]
    NoInterface { ns_path: String, ifname: String },
    /// An interface name with a NUL byte cannot reach the kernel.
    #[error("bad interface name {0:?}")]
    BadInterfaceName(String),
    /// The thread that entered the namespace died.
    #[error("namespace thread panicked")]
    NamespaceThread,
    /// `wire` refused to encode a message the builders meant to be well
    /// formed (e.g. longer than 65535 bytes).
    #[error("cannot encode: {0}")]
    Encode(#[from] wire::EncodeError),
    /// A well-formed builder was given an IPv4 prefix longer than 32.
    #[error("{prefix}/{len} is not an IPv4 prefix")]
    PrefixLength { prefix: std::net::Ipv4Addr, len: u8 },
    /// The other side sent something else than the step expected.
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    /// The other side closed the connection while `expected` was awaited.
    #[error("the other side closed the connection; expected {expected}")]
    Closed { expected: &'static str },
    /// Nothing arrived in time.
    #[error("no {expected} within {waited:?}")]
    TimedOut {
        expected: &'static str,
        waited: Duration,
    },
    /// The connection was still open after the deadline.
    #[error("connection still open after {0:?}")]
    StillOpen(Duration),
    /// A frame `wire` cannot decode: the other side is broken.
    #[error("undecodable frame ({error}): {frame:02x?}")]
    Undecodable {
        frame: Vec<u8>,
        error: wire::DecodeError,
    },
}

/// Result alias of the raw peer.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what the peer was doing.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
