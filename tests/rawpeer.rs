//! A raw-bytes BGP test peer for the hostile-input and fault suites.
//!
//! It speaks just enough BGP to reach Established with capabilities of the
//! test's choosing, then sends whatever bytes a test builds (well formed or
//! not) and reads back, decoded with the `wire` codec, what via6d answers:
//! a NOTIFICATION, UPDATEs, or the connection closing. Reads are on demand
//! with deadlines, so a test sees exactly the order of events; KEEPALIVEs
//! towards via6d run on a background thread once Established, and can be
//! stopped to play a peer that hangs.
//!
//! The byte builders ([`build`]) follow RFC 4271 §4, RFC 4760 §3-4, RFC
//! 5492 §4 and RFC 8950 §3 and never check what they are given: making
//! bad messages is their purpose.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use interop::rawbgp::connect_in_netns;
use interop::{Error, Result};
use wire::{CodecContext, Message, Notification, Open, Update};

/// Message builders: plain functions from values to bytes.
pub mod build {
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// RFC 4271 §4.1 message types.
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;

    /// Path attribute flags (RFC 4271 §4.3).
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;

    /// Path attribute type codes used by the suites.
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;

    /// A message with a correct marker and length (RFC 4271 §4.1). The
    /// length wraps above 65535: callers that want a wrong length use
    /// [`raw_message`].
    pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        raw_message(&[0xff; 16], (19 + body.len()) as u16, kind, body)
    }

    /// A message with every header field chosen by the caller.
    pub fn raw_message(marker: &[u8; 16], length: u16, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = marker.to_vec();
        m.extend_from_slice(&length.to_be_bytes());
        m.push(kind);
        m.extend_from_slice(body);
        m
    }

    pub fn keepalive() -> Vec<u8> {
        message(KEEPALIVE, &[])
    }

    /// NOTIFICATION (RFC 4271 §4.5).
    pub fn notification(code: u8, subcode: u8, data: &[u8]) -> Vec<u8> {
        let mut b = vec![code, subcode];
        b.extend_from_slice(data);
        message(NOTIFICATION, &b)
    }

    /// One capability TLV (RFC 5492 §4).
    pub fn capability(code: u8, value: &[u8]) -> Vec<u8> {
        let mut c = vec![code, value.len() as u8];
        c.extend_from_slice(value);
        c
    }

    /// Multiprotocol capability (RFC 4760 §8).
    pub fn cap_multiprotocol(afi: u16, safi: u8) -> Vec<u8> {
        let a = afi.to_be_bytes();
        capability(1, &[a[0], a[1], 0, safi])
    }

    /// Extended next hop for IPv4 unicast over IPv6 (RFC 8950 §4).
    pub fn cap_extended_next_hop() -> Vec<u8> {
        capability(5, &[0, 1, 0, 1, 0, 2])
    }

    /// Extended message (RFC 8654 §3).
    pub fn cap_extended_message() -> Vec<u8> {
        capability(6, &[])
    }

    /// 4-octet AS (RFC 6793 §3).
    pub fn cap_four_octet_as(asn: u32) -> Vec<u8> {
        capability(65, &asn.to_be_bytes())
    }

    /// OPEN body fields after the version (RFC 4271 §4.2), with
    /// `params` as the optional parameters and `params_len` as their
    /// claimed length.
    pub fn open_raw(
        version: u8,
        my_as: u16,
        hold: u16,
        router_id: Ipv4Addr,
        params_len: u8,
        params: &[u8],
    ) -> Vec<u8> {
        let mut b = vec![version];
        b.extend_from_slice(&my_as.to_be_bytes());
        b.extend_from_slice(&hold.to_be_bytes());
        b.extend_from_slice(&router_id.octets());
        b.push(params_len);
        b.extend_from_slice(params);
        message(OPEN, &b)
    }

    /// Optional parameter type 2 holding `caps` (RFC 5492 §4).
    pub fn capabilities_param(caps: &[u8]) -> Vec<u8> {
        let mut p = vec![2, caps.len() as u8];
        p.extend_from_slice(caps);
        p
    }

    /// One path attribute; the extended-length flag is set when needed.
    pub fn attribute(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        if value.len() > 255 || flags & EXTENDED_LENGTH != 0 {
            a.push(flags | EXTENDED_LENGTH);
            a.push(code);
            a.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            a.push(flags);
            a.push(code);
            a.push(value.len() as u8);
        }
        a.extend_from_slice(value);
        a
    }

    /// ORIGIN IGP.
    pub fn origin_igp() -> Vec<u8> {
        attribute(TRANSITIVE, ORIGIN, &[0])
    }

    /// AS_PATH of 4-octet ASNs, split into AS_SEQUENCE segments of at most
    /// 255 ASNs (RFC 4271 §4.3).
    pub fn as_path4(asns: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        for chunk in asns.chunks(255) {
            v.push(2);
            v.push(chunk.len() as u8);
            for a in chunk {
                v.extend_from_slice(&a.to_be_bytes());
            }
        }
        attribute(TRANSITIVE, AS_PATH, &v)
    }

    /// Classic NLRI encoding: length, then the significant octets.
    pub fn prefix_v4(prefix: Ipv4Addr, len: u8) -> Vec<u8> {
        let n = usize::from(len.min(32)).div_ceil(8);
        let mut v = vec![len];
        v.extend_from_slice(prefix.octets().get(..n).unwrap_or(&[]));
        v
    }

    /// Several IPv4 prefixes in NLRI encoding.
    pub fn prefixes_v4(prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
        prefixes
            .iter()
            .flat_map(|(p, l)| prefix_v4(*p, *l))
            .collect()
    }

    /// MP_REACH_NLRI with every field given: AFI, SAFI, next-hop bytes,
    /// NLRI bytes (RFC 4760 §3).
    pub fn mp_reach_raw(afi: u16, safi: u8, next_hop: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut v = afi.to_be_bytes().to_vec();
        v.push(safi);
        v.push(next_hop.len() as u8);
        v.extend_from_slice(next_hop);
        v.push(0);
        v.extend_from_slice(nlri);
        attribute(OPTIONAL, MP_REACH, &v)
    }

    /// MP_REACH_NLRI for IPv4 unicast with the 32-byte `[::, LL]` next hop
    /// (RFC 8950 §3, BIRD's form).
    pub fn mp_reach_v4_ll(ll: Ipv6Addr, prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
        let mut nh = Ipv6Addr::UNSPECIFIED.octets().to_vec();
        nh.extend_from_slice(&ll.octets());
        mp_reach_raw(1, 1, &nh, &prefixes_v4(prefixes))
    }

    /// MP_UNREACH_NLRI for IPv4 unicast (RFC 4760 §4).
    pub fn mp_unreach_v4(prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
        let mut v = vec![0, 1, 1];
        v.extend(prefixes_v4(prefixes));
        attribute(OPTIONAL, MP_UNREACH, &v)
    }

    /// UPDATE with classic withdrawn routes, attributes and NLRI as given.
    pub fn update_raw(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(withdrawn);
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(attrs);
        b.extend_from_slice(nlri);
        message(UPDATE, &b)
    }

    /// UPDATE carrying only path attributes.
    pub fn update(attrs: &[u8]) -> Vec<u8> {
        update_raw(&[], attrs, &[])
    }

    /// A well-formed RFC 8950 announcement: ORIGIN, AS_PATH, `extra`
    /// attributes, MP_REACH `[::, ll]` with `prefixes`.
    pub fn announce_v4(
        as_path: &[u32],
        ll: Ipv6Addr,
        prefixes: &[(Ipv4Addr, u8)],
        extra: &[u8],
    ) -> Vec<u8> {
        let mut a = origin_igp();
        a.extend(as_path4(as_path));
        a.extend_from_slice(extra);
        a.extend(mp_reach_v4_ll(ll, prefixes));
        update(&a)
    }
}

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

    /// The OPEN message bytes.
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

    fn has_capability(&self, code: u8) -> bool {
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

/// One thing read from via6d.
// Read one at a time in tests; boxing the message buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Message(Message),
    /// A whole frame the codec refused: via6d sent something malformed.
    Undecodable {
        frame: Vec<u8>,
        error: String,
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
    /// via6d's OPEN, once read.
    pub their_open: Option<Open>,
    keepalives: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn check(msg: impl Into<String>) -> Error {
    Error::Check(msg.into())
}

impl RawPeer {
    /// Connects from namespace `ns` to `[peer%ifname]:port`, retrying for
    /// up to `timeout` while via6d starts listening.
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
            .map_err(|e| Error::io("send to via6d", e))
    }

    /// Whether via6d closed the connection (as far as we have read).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Shrinks our receive buffer: with `stop reading`, via6d's writes
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
                    Err(e) => Incoming::Undecodable {
                        frame,
                        error: e.to_string(),
                    },
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

    /// Sends `open`, reads via6d's OPEN (skipping nothing: the first
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
            other => Err(check(format!("expected via6d's OPEN, got {other:?}"))),
        }
    }

    /// OPEN exchange, then KEEPALIVE both ways: Established. Starts
    /// sending KEEPALIVEs every third of the negotiated hold time.
    pub fn establish(&mut self, open: &OpenSpec, timeout: Duration) -> Result<Open> {
        let theirs = self.open_exchange(open, timeout)?;
        self.send(&build::keepalive())?;
        match self.recv(timeout) {
            Incoming::Message(Message::Keepalive) => {}
            other => return Err(check(format!("expected KEEPALIVE, got {other:?}"))),
        }
        let hold = open.hold.min(theirs.hold_time);
        if hold > 0 {
            self.start_keepalives(Duration::from_millis(u64::from(hold) * 1000 / 3));
        }
        Ok(theirs)
    }

    /// KEEPALIVE every `every` from a background thread.
    pub fn start_keepalives(&mut self, every: Duration) {
        self.stop_keepalives();
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
                    if lock(&w).write_all(&build::keepalive()).is_err() {
                        break;
                    }
                }
            }
        });
        self.keepalives = Some((stop, handle));
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
                    return Err(check("via6d closed the connection without a NOTIFICATION"))
                }
                Incoming::TimedOut => {
                    return Err(check(format!("no NOTIFICATION within {timeout:?}")))
                }
                Incoming::Undecodable { frame, error } => {
                    return Err(check(format!(
                        "via6d sent an undecodable frame ({error}): {frame:02x?}"
                    )))
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
                    return Err(check(format!("unexpected NOTIFICATION {n:?}")))
                }
                Incoming::Message(_) => {}
                Incoming::TimedOut => {
                    return Err(check(format!("connection still open after {timeout:?}")))
                }
                Incoming::Undecodable { frame, error } => {
                    return Err(check(format!(
                        "via6d sent an undecodable frame ({error}): {frame:02x?}"
                    )))
                }
            }
        }
    }

    /// The NOTIFICATION via6d sends, then the close that must follow
    /// (RFC 4271 §6: the connection is closed after it).
    pub fn expect_notification_and_close(&mut self, timeout: Duration) -> Result<Notification> {
        let n = self.expect_notification(timeout)?;
        self.expect_closed(timeout)?;
        Ok(n)
    }

    /// Reads for `window`, failing if the session ends or via6d sends
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
                    return Err(check(format!("session reset by via6d: {n:?}")))
                }
                Incoming::Message(_) => {}
                Incoming::Closed => return Err(check("via6d closed the session")),
                Incoming::Undecodable { frame, error } => {
                    return Err(check(format!(
                        "via6d sent an undecodable frame ({error}): {frame:02x?}"
                    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_spec_encodes_what_the_codec_decodes() {
        let spec = OpenSpec::new(4_200_000_010, Ipv4Addr::new(10, 0, 0, 1)).extended_message();
        let bytes = spec.encode();
        let d = wire::decode_message(&bytes, &CodecContext::default());
        let Ok(wire::Decoded {
            message: Message::Open(o),
            ..
        }) = d
        else {
            panic!("OPEN does not decode: {d:?}");
        };
        assert_eq!(o.my_as, wire::AS_TRANS);
        assert_eq!(o.hold_time, 240);
        assert!(o.has_capability(wire::open::cap::EXTENDED_MESSAGE));
        assert!(spec.has_capability(5) && spec.has_capability(6) && !spec.has_capability(70));
        assert!(!spec.without_extended_next_hop().has_capability(5));
    }

    #[test]
    fn announcement_decodes_with_ll_next_hop() {
        let ll: Ipv6Addr = "fe80::2".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let m = build::announce_v4(&[65010], ll, &[(Ipv4Addr::new(10, 9, 0, 0), 24)], &[]);
        let ctx = CodecContext {
            four_octet_as: true,
            extended_message: false,
            extended_next_hop_ipv4: true,
        };
        let d = wire::decode_message(&m, &ctx).map_err(|e| e.to_string());
        let Ok(wire::Decoded {
            message: Message::Update(u),
            treat_as_withdraw: None,
            ..
        }) = d
        else {
            panic!("UPDATE does not decode cleanly: {d:?}");
        };
        let reach = u.attributes.mp_reach.as_ref().map(|r| r.nlri.len());
        assert_eq!(reach, Some(1));
    }

    #[test]
    fn long_as_path_splits_into_segments_of_255() {
        let asns: Vec<u32> = (1..=600).collect();
        let a = build::as_path4(&asns);
        // extended length, 3 segments: 255 + 255 + 90 ASNs.
        assert_eq!(a[0] & build::EXTENDED_LENGTH, build::EXTENDED_LENGTH);
        let len = usize::from(u16::from_be_bytes([a[2], a[3]]));
        assert_eq!(len, 3 * 2 + 600 * 4);
    }
}
