//! The connected raw peer: reaches Established with capabilities of the
//! test's choosing, then sends whatever bytes a test builds (well formed
//! or not) and reads back, decoded with the `wire` codec, what the other
//! side answers: a NOTIFICATION, UPDATEs, or the connection closing.
//! Reads are on demand with deadlines, so a test sees exactly the order of
//! events; KEEPALIVEs run on a background thread once Established, and can
//! be stopped to play a peer that hangs.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wire::{CodecContext, Message, Notification, Open, Update};

use crate::build;
use crate::error::{Error, Result};
use crate::netns::connect_in_netns;

/// The OPEN a raw peer sends. Every field can be made wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSpec {
    pub version: u8,
    pub asn: u32,
    /// The 2-octet My AS field; `None` = `asn` or AS_TRANS (RFC 6793 §9).
    pub my_as: Option<u16>,
    pub hold: u16,
    pub router_id: Ipv4Addr,
    /// Capability TLVs, concatenated (see `build::cap_*`).
    pub capabilities: Vec<u8>,
}

impl OpenSpec {
    /// A dual-stack speaker: MP IPv4 and IPv6 unicast, route refresh,
    /// extended next hop for IPv4 (RFC 8950), 4-octet AS; no extended
    /// message. Hold time 240 s: the test drives time, not the peer.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> OpenSpec {
        let mut caps = build::cap_multiprotocol(1, 1);
        caps.extend(build::cap_multiprotocol(2, 1));
        caps.extend(build::capability(2, &[]));
        caps.extend(build::cap_extended_next_hop());
        caps.extend(build::cap_four_octet_as(asn));
        OpenSpec {
            version: 4,
            asn,
            my_as: None,
            hold: 240,
            router_id,
            capabilities: caps,
        }
    }

    /// Adds the extended message capability (RFC 8654).
    pub fn extended_message(mut self) -> Self {
        self.capabilities.extend(build::cap_extended_message());
        self
    }

    /// Same capabilities minus extended next hop (code 5).
    pub fn without_extended_next_hop(self) -> Self {
        let asn = self.asn;
        let mut caps = build::cap_multiprotocol(1, 1);
        caps.extend(build::cap_multiprotocol(2, 1));
        caps.extend(build::capability(2, &[]));
        caps.extend(build::cap_four_octet_as(asn));
        OpenSpec {
            capabilities: caps,
            ..self
        }
    }

    pub fn hold(mut self, hold: u16) -> Self {
        self.hold = hold;
        self
    }

    /// The OPEN message bytes. Hand-built, not by `wire`: the version,
    /// My AS and the capability TLVs are whatever the test put there.
    pub fn encode(&self) -> Vec<u8> {
        let my_as = self
            .my_as
            .unwrap_or_else(|| u16::try_from(self.asn).unwrap_or(wire::AS_TRANS));
        let param = build::capabilities_param(&self.capabilities);
        build::open_raw(
            self.version,
            my_as,
            self.hold,
            self.router_id,
            param.len() as u8,
            &param,
        )
    }

    pub(crate) fn has_capability(&self, code: u8) -> bool {
        let mut rest = self.capabilities.as_slice();
        while let [c, len, tail @ ..] = rest {
            if *c == code {
                return true;
            }
            rest = tail.get(usize::from(*len)..).unwrap_or(&[]);
        }
        false
    }
}

/// One thing read from the other side.
// Read one at a time in tests; boxing the message buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Message(Message),
    /// A whole frame the codec refused: the other side sent something
    /// malformed.
    Undecodable {
        frame: Vec<u8>,
        error: wire::DecodeError,
    },
    /// The TCP connection ended (FIN or RST).
    Closed,
    /// Nothing within the deadline.
    TimedOut,
}

/// A connected raw BGP peer.
pub struct RawPeer {
    reader: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    buf: Vec<u8>,
    closed: bool,
    /// Codec facts negotiated by the OPEN exchange (all off before it).
    pub ctx: CodecContext,
    /// The other side's OPEN, once read.
    pub their_open: Option<Open>,
    keepalives: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RawPeer {
    /// Connects from namespace `ns` to `[peer%ifname]:port`, retrying for
    /// up to `timeout` while the other side starts listening.
    pub fn connect(
        ns: &str,
        ifname: &str,
        peer: Ipv6Addr,
        port: u16,
        timeout: Duration,
    ) -> Result<RawPeer> {
        let start = Instant::now();
        let stream = loop {
            match connect_in_netns(ns, ifname, peer, port) {
                Ok(s) => break s,
                Err(e) if start.elapsed() >= timeout => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        RawPeer::from_stream(stream)
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> Result<RawPeer> {
        let _ = stream.set_nodelay(true);
        let writer = stream
            .try_clone()
            .map_err(|e| Error::io("clone raw peer socket", e))?;
        Ok(RawPeer {
            reader: stream,
            writer: Arc::new(Mutex::new(writer)),
            buf: Vec::new(),
            closed: false,
            ctx: CodecContext::default(),
            their_open: None,
            keepalives: None,
        })
    }

    /// Sends raw bytes (any number of messages, or garbage).
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        lock(&self.writer)
            .write_all(bytes)
            .map_err(|e| Error::io("send to the other side", e))
    }

    /// Whether the other side closed the connection (as far as we have read).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Shrinks our receive buffer: with `stop reading`, the other side's writes
    /// stall sooner (a zero window).
    pub fn set_recv_buffer(&self, bytes: i32) {
        use std::os::fd::AsRawFd;
        // SAFETY: setsockopt on a valid socket with a properly sized int.
        unsafe {
            libc::setsockopt(
                self.reader.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&bytes as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            );
        }
    }

    /// Takes one whole frame out of the buffer, if there is one.
    fn frame(&mut self) -> Option<Vec<u8>> {
        let len_bytes = self.buf.get(16..18)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]])).max(19);
        if self.buf.len() < len {
            return None;
        }
        Some(self.buf.drain(..len).collect())
    }

    /// Reads the next message, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Incoming {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.frame() {
                return match wire::decode_message(&frame, &self.ctx) {
                    Ok(d) => Incoming::Message(d.message),
                    Err(error) => Incoming::Undecodable { frame, error },
                };
            }
            if self.closed {
                return Incoming::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Incoming::TimedOut;
            }
            let _ = self.reader.set_read_timeout(Some(left));
            let mut chunk = [0u8; 65536];
            match self.reader.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Incoming::TimedOut
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    /// Sends `open`, reads the other side's OPEN (skipping nothing: the first
    /// message must be it) and records the negotiated codec facts.
    pub fn open_exchange(&mut self, open: &OpenSpec, timeout: Duration) -> Result<Open> {
        self.send(&open.encode())?;
        match self.recv(timeout) {
            Incoming::Message(Message::Open(o)) => {
                self.ctx = CodecContext {
                    four_octet_as: open.has_capability(65)
                        && o.has_capability(wire::open::cap::FOUR_OCTET_AS),
                    extended_message: open.has_capability(6)
                        && o.has_capability(wire::open::cap::EXTENDED_MESSAGE),
                    extended_next_hop_ipv4: open.has_capability(5)
                        && o.extended_next_hop()
                            .any(|e| e.afi == 1 && e.safi == 1 && e.next_hop_afi == 2),
                };
                self.their_open = Some(o.clone());
                Ok(o)
            }
            other => Err(Error::Unexpected {
                expected: "the other side's OPEN",
                got: format!("{other:?}"),
            }),
        }
    }

    /// OPEN exchange, then KEEPALIVE both ways: Established. Starts
    /// sending KEEPALIVEs every third of the negotiated hold time.
    pub fn establish(&mut self, open: &OpenSpec, timeout: Duration) -> Result<Open> {
        let theirs = self.open_exchange(open, timeout)?;
        self.send(&build::keepalive()?)?;
        match self.recv(timeout) {
            Incoming::Message(Message::Keepalive) => {}
            other => {
                return Err(Error::Unexpected {
                    expected: "KEEPALIVE",
                    got: format!("{other:?}"),
                })
            }
        }
        // RFC 4271 §4.4: a third of the negotiated hold time.
        let hold = open.hold.min(theirs.hold_time);
        if hold > 0 {
            self.start_keepalives(Duration::from_millis(u64::from(hold) * 1000 / 3))?;
        }
        Ok(theirs)
    }

    /// KEEPALIVE every `every` from a background thread.
    pub fn start_keepalives(&mut self, every: Duration) -> Result<()> {
        self.stop_keepalives();
        let keepalive = build::keepalive()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (self.writer.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let tick = Duration::from_millis(50);
            let mut since = Duration::ZERO;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                since += tick;
                if since >= every {
                    since = Duration::ZERO;
                    if lock(&w).write_all(&keepalive).is_err() {
                        break;
                    }
                }
            }
        });
        self.keepalives = Some((stop, handle));
        Ok(())
    }

    /// Stops our KEEPALIVEs (a peer that hangs).
    pub fn stop_keepalives(&mut self) {
        if let Some((stop, handle)) = self.keepalives.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }

    /// Reads until a NOTIFICATION arrives, skipping KEEPALIVEs and
    /// UPDATEs. Fails on close without one, on timeout, and on a frame
    /// that does not decode.
    pub fn expect_notification(&mut self, timeout: Duration) -> Result<Notification> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Incoming::Message(Message::Notification(n)) => return Ok(n),
                Incoming::Message(_) => {}
                Incoming::Closed => {
                    return Err(Error::Closed {
                        expected: "a NOTIFICATION",
                    })
                }
                Incoming::TimedOut => {
                    return Err(Error::TimedOut {
                        expected: "NOTIFICATION",
                        waited: timeout,
                    })
                }
                Incoming::Undecodable { frame, error } => {
                    return Err(Error::Undecodable { frame, error })
                }
            }
        }
    }

    /// Reads until the connection closes; fails if a NOTIFICATION or
    /// anything undecodable comes first, or on timeout.
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Incoming::Closed => return Ok(()),
                Incoming::Message(Message::Notification(n)) => {
                    return Err(Error::Unexpected {
                        expected: "the connection to close",
                        got: format!("{n:?}"),
                    })
                }
                Incoming::Message(_) => {}
                Incoming::TimedOut => return Err(Error::StillOpen(timeout)),
                Incoming::Undecodable { frame, error } => {
                    return Err(Error::Undecodable { frame, error })
                }
            }
        }
    }

    /// The NOTIFICATION the other side sends, then the close that must follow
    /// (RFC 4271 §6: the connection is closed after it).
    pub fn expect_notification_and_close(&mut self, timeout: Duration) -> Result<Notification> {
        let n = self.expect_notification(timeout)?;
        self.expect_closed(timeout)?;
        Ok(n)
    }

    /// Reads for `window`, failing if the session ends or the other side sends
    /// anything undecodable; returns the UPDATEs seen.
    pub fn stays_up(&mut self, window: Duration) -> Result<Vec<Update>> {
        let deadline = Instant::now() + window;
        let mut updates = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(updates);
            }
            match self.recv(left) {
                Incoming::TimedOut => return Ok(updates),
                Incoming::Message(Message::Update(u)) => updates.push(u),
                Incoming::Message(Message::Notification(n)) => {
                    return Err(Error::Unexpected {
                        expected: "the session to stay up",
                        got: format!("{n:?}"),
                    })
                }
                Incoming::Message(_) => {}
                Incoming::Closed => {
                    return Err(Error::Closed {
                        expected: "the session to stay up",
                    })
                }
                Incoming::Undecodable { frame, error } => {
                    return Err(Error::Undecodable { frame, error })
                }
            }
        }
    }

    /// Closes our side: the peer going away.
    pub fn close(mut self) {
        self.stop_keepalives();
        let _ = self.reader.shutdown(Shutdown::Both);
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.stop_keepalives();
        let _ = self.reader.shutdown(Shutdown::Both);
    }
}
