//! Everything that can stop the feeder, each with the context an operator
//! needs to fix it.

use std::io;
use std::path::PathBuf;

/// A feeder failure. The binary prints it and exits 1 (runtime) or 2
/// (usage).
#[derive(Debug, thiserror::Error)]
pub enum FeederError {
    #[error("usage: {0}")]
    Usage(String),
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: not a prefix: {text:?}")]
    BadPrefix {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}: {source}")]
    Mrt {
        path: PathBuf,
        source: wire::mrt::MrtError,
    },
    #[error("the table source holds no prefix")]
    EmptyTable,
    #[error("encoding the table: {0}")]
    Encode(#[from] wire::EncodeError),
    #[error("interface {0:?} does not exist")]
    NoInterface(String),
    #[error("interface {0:?} has no link-local IPv6 address: give --next-hop-ll")]
    NoLinkLocal(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("could not connect to {target} within {secs} s: {source}")]
    Connect {
        target: String,
        secs: u64,
        source: io::Error,
    },
    #[error("the peer closed the session before it was established")]
    ClosedEarly,
    #[error("the peer sent a NOTIFICATION: code {code}, subcode {subcode}")]
    Notified { code: u8, subcode: u8 },
    #[error("the peer sent a malformed message: {0}")]
    Decode(#[from] wire::DecodeError),
    #[error("unexpected {0} before the session was established")]
    Unexpected(&'static str),
    #[error("the peer did not negotiate {0}, which the pre-encoded table needs")]
    Capability(&'static str),
    #[error("stopped by a signal")]
    Stopped,
    #[error("the peer's AS is {got}, --remote-as says {want}")]
    RemoteAs { got: u32, want: u32 },
}

impl FeederError {
    /// Wraps an I/O error with what we were doing.
    pub fn io(what: &'static str) -> impl FnOnce(io::Error) -> FeederError {
        move |source| FeederError::Io { what, source }
    }
}
