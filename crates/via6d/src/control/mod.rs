//! The control socket: a Unix stream socket (mode 0660) speaking one JSON
//! request line and one JSON reply line per connection (a stream of event
//! lines for `watch`), in the versioned protocol of [`protocol`]. `via6ctl`
//! is its client; anything that can write a line of JSON can be another.

pub mod convert;
pub mod protocol;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};

pub use convert::interface_name;
use protocol::{
    ErrorReply, ReplyBody, ReplyLine, Request, RequestLine, Response, VersionProbe, WatchLine,
    PROTOCOL_VERSION,
};

/// The socket's mode: owner and group may connect, and whoever may connect
/// may do everything `via6ctl` does (announce, withdraw, shutdown).
pub const SOCKET_MODE: u32 = 0o660;

/// Longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Anyone could replace the socket with their own and receive the
    /// requests of `via6ctl`.
    #[error("control socket {path}: its directory {dir} is writable by others (mode {mode:o}) without the sticky bit; use a directory only via6d may write to (e.g. /run/via6d)")]
    UnsafeDirectory {
        path: PathBuf,
        dir: PathBuf,
        mode: u32,
    },
    /// Anyone could announce and withdraw routes, or stop via6d.
    #[error("control socket {path}: writable by others (mode {mode:o}); it must not be")]
    UnsafeSocket { path: PathBuf, mode: u32 },
    #[error("control socket {path}: cannot connect: {source} (is via6d running, and is this its control-socket?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("control socket: malformed reply: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("control socket: via6d speaks control protocol {}, this via6ctl {client} (use the via6ctl of the same version)", protocol::version_name(*daemon))]
    VersionMismatch { client: u32, daemon: Option<u32> },
    #[error("control socket: via6d closed the connection without a reply")]
    NoReply,
    #[error("control socket: via6d ended the watch (it stopped)")]
    WatchEnded,
    #[error("control socket: via6d answered something else than {0}")]
    Unexpected(&'static str),
    #[error("via6d: {0}")]
    Daemon(ErrorReply),
}

/// Refuses a socket directory that others may write to without the
/// sticky bit: they could remove the socket and put their own in its
/// place. World-writable with the sticky bit (`/tmp`) only lets the owner
/// remove it.
fn check_directory(path: &Path, dir: &Path) -> Result<(), ControlError> {
    let meta = std::fs::metadata(dir).map_err(|source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(ControlError::UnsafeDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Binds the socket, replacing a stale one left by a dead daemon but never
/// one a live daemon still answers on; refuses (see
/// [`ControlError::UnsafeDirectory`], [`ControlError::UnsafeSocket`]) a
/// socket others could take over or write to.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let bind_err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(bind_err)?;
    check_directory(path, &dir)?;
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(bind_err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another via6d answers on it",
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(bind_err)?;
    let mode = std::fs::metadata(path)
        .map_err(bind_err)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o002 != 0 {
        let _ = std::fs::remove_file(path);
        return Err(ControlError::UnsafeSocket {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(listener)
}

/// Parses a request line: its version first, so that a client of another
/// version is told so rather than that a field is missing.
pub fn parse_request(line: &str) -> Result<Request, ErrorReply> {
    let bad = |e: serde_json::Error| ErrorReply::BadRequest {
        message: e.to_string(),
    };
    let probe: VersionProbe = serde_json::from_str(line).map_err(bad)?;
    if probe.version != Some(PROTOCOL_VERSION) {
        return Err(ErrorReply::VersionMismatch {
            daemon: PROTOCOL_VERSION,
            client: probe.version,
        });
    }
    let req: RequestLine = serde_json::from_str(line).map_err(bad)?;
    Ok(req.request)
}

/// Reads one request from a connection; the inner error is the reply for
/// a line that is not a request of our version.
pub async fn read_request(
    read: &mut OwnedReadHalf,
) -> Result<Result<Request, ErrorReply>, ControlError> {
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST);
    reader.read_line(&mut line).await?;
    Ok(parse_request(&line))
}

/// Writes one JSON line.
pub async fn write_line<T: Serialize, W: AsyncWriteExt + Unpin>(
    w: &mut W,
    value: &T,
) -> Result<(), ControlError> {
    let mut out = serde_json::to_vec(value)?;
    out.push(b'\n');
    w.write_all(&out).await?;
    Ok(())
}

/// The reply line for `body`, in our version.
pub fn reply_line(body: ReplyBody) -> ReplyLine {
    ReplyLine {
        version: PROTOCOL_VERSION,
        body,
    }
}

/// Parses a reply line, refusing another version by name.
pub fn parse_reply(line: &str) -> Result<Response, ControlError> {
    if line.trim().is_empty() {
        return Err(ControlError::NoReply);
    }
    let probe: VersionProbe = serde_json::from_str(line)?;
    if probe.version != Some(PROTOCOL_VERSION) {
        return Err(ControlError::VersionMismatch {
            client: PROTOCOL_VERSION,
            daemon: probe.version,
        });
    }
    match serde_json::from_str::<ReplyLine>(line)?.body {
        ReplyBody::Ok(r) => Ok(r),
        ReplyBody::Error(e) => Err(ControlError::Daemon(e)),
    }
}

async fn send(path: &Path, request: &Request) -> Result<BufReader<UnixStream>, ControlError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let line = RequestLine {
        version: PROTOCOL_VERSION,
        request: request.clone(),
    };
    write_line(&mut stream, &line).await?;
    Ok(BufReader::new(stream))
}

/// Client side: one request, one reply.
pub async fn call(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let mut reader = send(path, request).await?;
    let mut reply = String::new();
    reader.read_line(&mut reply).await?;
    parse_reply(&reply)
}

/// A `watch` in progress, client side.
pub struct Watch {
    reader: BufReader<UnixStream>,
    line: String,
}

impl Watch {
    /// The next event; `None` when via6d ends the stream (it stopped).
    pub async fn next(&mut self) -> Result<Option<WatchLine>, ControlError> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        let probe: VersionProbe = serde_json::from_str(&self.line)?;
        if probe.version != Some(PROTOCOL_VERSION) {
            return Err(ControlError::VersionMismatch {
                client: PROTOCOL_VERSION,
                daemon: probe.version,
            });
        }
        Ok(Some(serde_json::from_str(&self.line)?))
    }
}

/// Server side of `watch`: the `watching` reply, then one line per event
/// until the client hangs up or the events end. The channel is a bounded
/// broadcast: a client that reads too slowly loses the oldest events and
/// gets a `lagged` line saying how many, while the RIB and the sessions
/// never wait for it.
pub async fn stream_events(
    mut rx: tokio::sync::broadcast::Receiver<bgp::WatchEvent>,
    mut read: OwnedReadHalf,
    mut write: tokio::net::unix::OwnedWriteHalf,
) {
    use tokio::sync::broadcast::error::RecvError;
    let ok = reply_line(ReplyBody::Ok(Response::Watching));
    if write_line(&mut write, &ok).await.is_err() {
        return;
    }
    let mut buf = [0u8; 64];
    loop {
        let event = tokio::select! {
            // The client hung up (or wrote something: ignored).
            n = read.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            e = rx.recv() => match e {
                Ok(e) => protocol::WatchEventRow::from(e),
                Err(RecvError::Lagged(missed)) => protocol::WatchEventRow::Lagged { missed },
                Err(RecvError::Closed) => return,
            },
        };
        let line = WatchLine {
            version: PROTOCOL_VERSION,
            event,
        };
        if write_line(&mut write, &line).await.is_err() {
            return;
        }
    }
}

/// Client side: asks for the event stream.
pub async fn watch(path: &Path) -> Result<Watch, ControlError> {
    let mut reader = send(path, &Request::Watch).await?;
    let mut reply = String::new();
    reader.read_line(&mut reply).await?;
    match parse_reply(&reply)? {
        Response::Watching => Ok(Watch {
            reader,
            line: String::new(),
        }),
        _ => Err(ControlError::Unexpected("watching")),
    }
}

#[cfg(test)]
mod tests;
