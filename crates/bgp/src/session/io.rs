//! Socket I/O of one TCP connection: a reader task that frames and decodes
//! messages, and a writer task that never blocks the session or the RIB.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wire::{decode_message, frame_length, CodecContext, Decoded, Message, Notification, Open};

use crate::events::PeerOutput;
use crate::negotiate::codec_context;
use crate::session::local::if_index;
use crate::session::Counters;

/// What a connection reports to its session.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Messages decoded from one read, in order.
    Messages(Vec<Decoded>),
    /// A message failed to decode; answer with this and close.
    DecodeError(Notification),
    /// The peer closed the connection or reading failed.
    Closed,
    /// Writing failed.
    WriteFailed,
    /// RFC 9687: a write made no progress for the send hold time.
    SendHoldExpired,
    /// The RIB asked to close the session with this NOTIFICATION.
    LocalClose(Notification),
}

pub(crate) enum WriterCmd {
    Send(Vec<u8>),
    /// Write these last bytes (a NOTIFICATION), then close.
    Last(Vec<u8>),
    /// From now on also write what the RIB sends.
    Attach(mpsc::Receiver<PeerOutput>),
    /// The negotiated send hold time (RFC 9687).
    SendHold(Duration),
}

/// Control queue to the writer; keepalives beyond it are dropped (the
/// send hold timer deals with a writer that is that far behind).
const WRITER_QUEUE: usize = 32;
/// Events from reader/writer to the session. A batch holds a whole read
/// (up to 64 KiB of messages, decoded ~5x larger), so a few are enough to
/// keep the session busy; beyond that TCP pushes back on the peer.
const EVENT_QUEUE: usize = 4;
/// How long a closing connection may take to flush its last words.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Read buffer growth step; an extended message is at most 65535 bytes.
const READ_CHUNK: usize = 64 * 1024;

/// One live TCP connection.
pub(crate) struct Conn {
    pub events: mpsc::Receiver<ConnEvent>,
    writer: mpsc::Sender<WriterCmd>,
    reader_task: Option<JoinHandle<()>>,
    writer_task: Option<JoinHandle<()>>,
    /// Tells the reader to stop decoding and only drain (see `close`).
    drain: Option<oneshot::Sender<()>>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The peer opened it (passive side).
    pub incoming: bool,
}

impl Conn {
    /// Starts reader and writer tasks on `stream`. `our_open` lets the
    /// reader switch codec context right after the peer's OPEN.
    pub fn start(
        stream: TcpStream,
        incoming: bool,
        our_open: Arc<Open>,
        send_hold: Duration,
        counters: Arc<Counters>,
    ) -> std::io::Result<Conn> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let (ev_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (writer, wr_rx) = mpsc::channel(WRITER_QUEUE);
        let (drain, drain_rx) = oneshot::channel();
        let reader_task = Some(tokio::spawn(reader(rd, ev_tx.clone(), our_open, drain_rx)));
        let writer_task = Some(tokio::spawn(writer_loop(
            wr, wr_rx, ev_tx, send_hold, counters,
        )));
        Ok(Conn {
            events,
            writer,
            reader_task,
            writer_task,
            drain: Some(drain),
            local,
            remote,
            incoming,
        })
    }

    /// Queues bytes; false when the writer is gone or too far behind.
    pub fn send(&self, bytes: Vec<u8>) -> bool {
        self.writer.try_send(WriterCmd::Send(bytes)).is_ok()
    }

    pub fn set_send_hold(&self, d: Duration) -> bool {
        self.writer.try_send(WriterCmd::SendHold(d)).is_ok()
    }

    pub fn attach(&self, rx: mpsc::Receiver<PeerOutput>) -> bool {
        self.writer.try_send(WriterCmd::Attach(rx)).is_ok()
    }

    /// Closes the connection, after `last` (a NOTIFICATION) when given.
    /// The writer sends it and a FIN; the reader keeps reading (and
    /// discarding) until the peer closes too. Closing a socket with unread
    /// data would send a RST, and a RST can make the peer drop our
    /// NOTIFICATION unread. Both get a short grace period, then are cut
    /// off. The returned task ends when the socket is closed.
    pub fn close(mut self, last: Option<Vec<u8>>) -> Option<JoinHandle<()>> {
        if let Some(d) = self.drain.take() {
            let _ = d.send(());
        }
        let _ = self
            .writer
            .try_send(WriterCmd::Last(last.unwrap_or_default()));
        let tasks: Vec<JoinHandle<()>> = [self.writer_task.take(), self.reader_task.take()]
            .into_iter()
            .flatten()
            .collect();
        if tasks.is_empty() {
            return None;
        }
        Some(tokio::spawn(async move {
            for task in tasks {
                let abort = task.abort_handle();
                if tokio::time::timeout(CLOSE_GRACE, task).await.is_err() {
                    abort.abort();
                }
            }
        }))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(t) = &self.reader_task {
            t.abort();
        }
        if let Some(t) = &self.writer_task {
            t.abort();
        }
    }
}

async fn reader(
    mut rd: OwnedReadHalf,
    tx: mpsc::Sender<ConnEvent>,
    our_open: Arc<Open>,
    mut drain: oneshot::Receiver<()>,
) {
    tokio::select! {
        () = read_loop(&mut rd, tx, our_open) => return,
        _ = &mut drain => {}
    }
    drain_until_closed(&mut rd).await;
}

/// Reads and discards until the peer closes, bounded by `CLOSE_GRACE`.
async fn drain_until_closed<R: tokio::io::AsyncRead + Unpin>(rd: &mut R) {
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Ok(n) = rd.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn read_loop(rd: &mut OwnedReadHalf, tx: mpsc::Sender<ConnEvent>, our_open: Arc<Open>) {
    let mut ctx = CodecContext::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Batches of one read tend to be alike in size: start at the last one
    // so the batch does not grow (and copy ~400-byte items) as it fills.
    let mut batch_hint = 16usize;
    // OPEN and then KEEPALIVE seen: the session can be Established.
    let (mut open_seen, mut confirmed) = (false, false);
    loop {
        // Everything whole in the buffer goes to the session as one batch:
        // one wake-up per read, not per message.
        let mut batch = Vec::with_capacity(batch_hint);
        let mut failed = None;
        let mut start = 0usize;
        loop {
            let avail = buf.get(start..).unwrap_or_default();
            let len = match frame_length(avail, &ctx) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e.notification());
                    break;
                }
            };
            let frame = avail.get(..len).unwrap_or_default();
            if !confirmed {
                if let Some(early) = early_message(frame) {
                    // RFC 6608: an UPDATE or ROUTE-REFRESH before
                    // Established is an FSM error, whatever its content;
                    // decoding it first could answer with an UPDATE error.
                    batch.push(early);
                    start += len;
                    continue;
                }
            }
            match decode_message(frame, &ctx) {
                Ok(decoded) => {
                    match &decoded.message {
                        Message::Open(o) => {
                            // Everything after the OPEN uses the negotiated codec.
                            ctx = codec_context(&our_open, o);
                            open_seen = true;
                        }
                        Message::Keepalive if open_seen => confirmed = true,
                        _ => {}
                    }
                    batch.push(decoded);
                }
                Err(e) => {
                    failed = Some(e.notification());
                    break;
                }
            }
            start += len;
        }
        batch_hint = batch.len().clamp(16, 4096);
        if !batch.is_empty() && tx.send(ConnEvent::Messages(batch)).await.is_err() {
            return;
        }
        if let Some(n) = failed {
            let _ = tx.send(ConnEvent::DecodeError(n)).await;
            return;
        }
        if start > 0 {
            buf.drain(..start.min(buf.len()));
        }
        buf.reserve(READ_CHUNK);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(ConnEvent::Closed).await;
                return;
            }
            Ok(_) => {}
        }
    }
}

/// A stand-in for an UPDATE or ROUTE-REFRESH that came before the session
/// was Established: only its type matters to the FSM.
fn early_message(frame: &[u8]) -> Option<Decoded> {
    let message = match frame.get(18) {
        Some(2) => Message::Update(wire::Update::default()),
        Some(5) => Message::RouteRefresh(wire::RouteRefresh {
            afi: 0,
            subtype: 0,
            safi: 0,
        }),
        _ => return None,
    };
    Some(Decoded {
        message,
        treat_as_withdraw: None,
        discarded: Vec::new(),
    })
}

async fn recv_rib(rib: &mut Option<mpsc::Receiver<PeerOutput>>) -> Option<PeerOutput> {
    match rib {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn writer_loop(
    mut wr: OwnedWriteHalf,
    mut ctrl: mpsc::Receiver<WriterCmd>,
    events: mpsc::Sender<ConnEvent>,
    mut send_hold: Duration,
    counters: Arc<Counters>,
) {
    let mut rib: Option<mpsc::Receiver<PeerOutput>> = None;
    loop {
        // Session traffic (KEEPALIVE, NOTIFICATION) goes before RIB output;
        // both are whole messages, so they never interleave inside one.
        let bytes = tokio::select! {
            biased;
            cmd = ctrl.recv() => match cmd {
                Some(WriterCmd::Send(b)) => b,
                Some(WriterCmd::Attach(r)) => {
                    rib = Some(r);
                    continue;
                }
                Some(WriterCmd::SendHold(d)) => {
                    send_hold = d;
                    continue;
                }
                Some(WriterCmd::Last(b)) => {
                    let _ = tokio::time::timeout(CLOSE_GRACE, async {
                        wr.write_all(&b).await?;
                        wr.shutdown().await
                    })
                    .await;
                    return;
                }
                None => return,
            },
            out = recv_rib(&mut rib) => match out {
                Some(PeerOutput::Messages(b)) => {
                    counters
                        .updates_sent
                        .fetch_add(count_updates(&b), Ordering::Relaxed);
                    b
                }
                Some(PeerOutput::Close(n)) => {
                    rib = None;
                    let _ = events.send(ConnEvent::LocalClose(n)).await;
                    continue;
                }
                None => {
                    rib = None;
                    continue;
                }
            },
        };
        match write_with_progress(&mut wr, &bytes, send_hold).await {
            Ok(()) => {}
            Err(WriteError::Failed) => {
                let _ = events.send(ConnEvent::WriteFailed).await;
                return;
            }
            Err(WriteError::Stalled) => {
                let _ = events.send(ConnEvent::SendHoldExpired).await;
                return;
            }
        }
    }
}

enum WriteError {
    Failed,
    Stalled,
}

/// Writes all of `bytes`; only a stretch of `send_hold` without any
/// progress counts as a stall (RFC 9687: the timer restarts whenever the
/// peer takes data), so a peer that reads slowly is not dropped.
async fn write_with_progress(
    wr: &mut OwnedWriteHalf,
    bytes: &[u8],
    send_hold: Duration,
) -> Result<(), WriteError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        match tokio::time::timeout(send_hold, wr.write(rest)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(WriteError::Failed),
            Ok(Ok(n)) => rest = rest.get(n..).unwrap_or_default(),
            Err(_) => return Err(WriteError::Stalled),
        }
    }
    Ok(())
}

/// UPDATE messages in a buffer of whole encoded messages (walks the
/// 19-byte headers: length at 16..18, type at 18).
fn count_updates(buf: &[u8]) -> u64 {
    let mut n = 0;
    let mut at = 0usize;
    while let Some(hdr) = buf.get(at..).and_then(|b| b.first_chunk::<19>()) {
        let len = usize::from(u16::from_be_bytes([hdr[16], hdr[17]]));
        if hdr[18] == 2 {
            n += 1;
        }
        if len < 19 {
            break;
        }
        at += len;
    }
    n
}

/// Why an outgoing connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("link-local neighbour {0} needs an interface")]
    NoInterface(IpAddr),
    #[error("interface {0} not found")]
    UnknownInterface(String),
    #[error("connect to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connect to {0}: timed out")]
    Timeout(SocketAddr),
}

/// The socket address to reach a neighbour at; a link-local address gets
/// the interface's index as its scope (`fe80::1%eth0`).
pub fn peer_socket_addr(
    address: IpAddr,
    interface: Option<&str>,
    port: u16,
) -> Result<SocketAddr, ConnectError> {
    match address {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            let name = interface.ok_or(ConnectError::NoInterface(address))?;
            let scope =
                if_index(name).ok_or_else(|| ConnectError::UnknownInterface(name.into()))?;
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)))
        }
        other => Ok(SocketAddr::new(other, port)),
    }
}

/// Socket options of a neighbour's connections.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// RFC 2385 key, set before the SYN goes out.
    pub md5_key: Option<Vec<u8>>,
    /// RFC 5082 GTSM.
    pub gtsm: bool,
}

/// One outgoing connection attempt, bounded by `limit`.
pub async fn connect(
    addr: SocketAddr,
    limit: Duration,
    options: ConnectOptions,
) -> Result<TcpStream, ConnectError> {
    let attempt = async {
        let socket = if addr.is_ipv6() {
            tokio::net::TcpSocket::new_v6()?
        } else {
            tokio::net::TcpSocket::new_v4()?
        };
        if let Some(key) = &options.md5_key {
            crate::sockopt::set_md5_key(&socket, addr.is_ipv6(), addr.ip(), key)?;
        }
        if options.gtsm {
            crate::sockopt::set_gtsm(&socket, addr.is_ipv6())?;
        }
        socket.connect(addr).await
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(ConnectError::Io { addr, source }),
        Err(_) => Err(ConnectError::Timeout(addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{encode_message, CodecContext, Message, Update};

    #[test]
    fn counts_updates_in_a_chunk() {
        let ctx = CodecContext::default();
        let mut b = Vec::new();
        encode_message(&Message::Update(Update::default()), &ctx, &mut b).unwrap_or_default();
        encode_message(&Message::Keepalive, &ctx, &mut b).unwrap_or_default();
        encode_message(&Message::Update(Update::default()), &ctx, &mut b).unwrap_or_default();
        assert_eq!(count_updates(&b), 2);
        assert_eq!(count_updates(&b[..30]), 1);
        assert_eq!(count_updates(&[0xff; 19]), 0);
    }

    #[test]
    fn link_local_needs_a_known_interface() {
        let ll: IpAddr = "fe80::1"
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        assert!(matches!(
            peer_socket_addr(ll, None, 179),
            Err(ConnectError::NoInterface(_))
        ));
        assert!(matches!(
            peer_socket_addr(ll, Some("no-such-if0"), 179),
            Err(ConnectError::UnknownInterface(_))
        ));
        match peer_socket_addr(ll, Some("lo"), 1790) {
            Ok(SocketAddr::V6(a)) => {
                assert_eq!(a.scope_id(), 1);
                assert_eq!(a.port(), 1790);
            }
            other => panic!("{other:?}"),
        }
        let g: IpAddr = "2001:db8::1".parse().unwrap_or(ll);
        assert_eq!(
            peer_socket_addr(g, None, 179).ok(),
            Some(SocketAddr::new(g, 179))
        );
    }
}
