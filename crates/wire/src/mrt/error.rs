//! Errors of the MRT reader. Every error about the data names the byte
//! offset, in the decompressed stream, of the record it is about, so that a
//! bad file can be inspected with `zcat FILE | xxd -s OFFSET`.

use std::io;
use std::path::PathBuf;

/// Why an MRT file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum MrtError {
    /// The file could not be opened or its first bytes not read.
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading (or decompressing) failed inside the record starting at `offset`.
    #[error("read error in MRT record at byte {offset}: {source}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// The stream ended inside the record starting at `offset`: its header
    /// announced `needed` bytes (header included), only `available` followed.
    #[error(
        "truncated MRT record at byte {offset}: needs {needed} bytes, only {available} present"
    )]
    Truncated {
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// The record starting at `offset` is complete but its content does not
    /// parse (RFC 6396 field layout violated).
    #[error("corrupt MRT record (type {mrt_type}, subtype {subtype}) at byte {offset}: {reason}")]
    Corrupt {
        offset: u64,
        mrt_type: u16,
        subtype: u16,
        reason: String,
    },
}

impl MrtError {
    /// Byte offset of the offending record in the decompressed stream, if
    /// the error is about a record (not about opening the file).
    pub fn offset(&self) -> Option<u64> {
        match self {
            MrtError::Open { .. } => None,
            MrtError::Read { offset, .. }
            | MrtError::Truncated { offset, .. }
            | MrtError::Corrupt { offset, .. } => Some(*offset),
        }
    }
}
