//! Errors of the lab runner. Every variant says what was being done, so a
//! failed scenario reads like a log line, not a backtrace.

use std::time::Duration;

/// What went wrong while building, driving or inspecting a lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program could not be started at all (missing binary, no permission).
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    /// A command ran but exited non-zero.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    /// File or directory handling for the lab's run directory.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A condition did not hold within its time budget. `evidence` is the
    /// state of every host at the moment of giving up.
    #[error(
        "timed out after {waited:?} waiting for: {what}\nlast observation: {last}\n{evidence}"
    )]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
        evidence: String,
    },
    /// Output of a tool could not be understood (e.g. `via6ctl --json`).
    #[error("cannot parse output of `{cmd}`: {reason}")]
    Parse { cmd: String, reason: String },
    /// A scenario's own check failed outside of a wait.
    #[error("check failed: {0}")]
    Check(String),
    /// A prerequisite of the lab is missing (not root, no `bird`, ...).
    #[error("prerequisite missing: {0}")]
    Prerequisite(String),
    /// The raw BGP test peer failed (connect, build, or an unexpected
    /// answer).
    #[error("raw peer: {0}")]
    RawPeer(#[from] rawpeer::Error),
}

/// Result alias used across the runner.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what the runner was doing.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
