//! The BGP side: connect or accept, OPEN exchange, Established, then a
//! writer shared by the bulk sender and the keepalive timer, and a reader
//! that answers nothing but drains whatever the peer sends (RFC 4271 §8).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use wire::{
    decode_message, encode_message, frame_length, Capability, CodecContext, ExtendedNextHopEntry,
    Message, Open, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_UNICAST,
};

use crate::error::FeederError;
use crate::events;

/// What we announce in our OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time (RFC 4271 §4.2: 0 or at least 3).
    pub hold_time: u16,
    /// The peer's AS must be this one, if given.
    pub remote_as: Option<u32>,
    /// IPv6 unicast prefixes are in the table.
    pub ipv6: bool,
}

/// Our OPEN: multiprotocol IPv4 and IPv6 unicast (RFC 4760), extended
/// next hop for IPv4 over IPv6 (RFC 8950 §4, triple 1/1/2), 4-octet AS
/// (RFC 6793) and route refresh (RFC 2918).
pub fn our_open(local: &Local) -> Open {
    let my_as = u16::try_from(local.asn).unwrap_or(AS_TRANS);
    Open::new(
        my_as,
        local.hold_time,
        local.router_id,
        vec![
            Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            },
            Capability::Multiprotocol {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
            },
            Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                afi: AFI_IPV4,
                safi: u16::from(SAFI_UNICAST),
                next_hop_afi: AFI_IPV6,
            }]),
            Capability::FourOctetAs(local.asn),
            Capability::RouteRefresh,
        ],
    )
}

/// Checks that the peer's OPEN allows the pre-encoded table: 4-octet AS
/// paths, and IPv4 with IPv6 next hops (RFC 8950 §4: never send them
/// otherwise). Returns the negotiated hold time (RFC 4271 §4.2: the
/// smaller of both).
pub fn check_peer_open(peer: &Open, local: &Local) -> Result<u16, FeederError> {
    if peer.four_octet_asn().is_none() {
        return Err(FeederError::Capability("4-octet AS (RFC 6793)"));
    }
    if let Some(want) = local.remote_as {
        if peer.asn() != want {
            return Err(FeederError::RemoteAs {
                got: peer.asn(),
                want,
            });
        }
    }
    let has_mp = |afi| {
        peer.multiprotocol()
            .any(|(a, s)| a == afi && s == SAFI_UNICAST)
    };
    if !has_mp(AFI_IPV4) {
        return Err(FeederError::Capability("IPv4 unicast (RFC 4760)"));
    }
    if !peer.extended_next_hop().any(|e| {
        e.afi == AFI_IPV4 && e.safi == u16::from(SAFI_UNICAST) && e.next_hop_afi == AFI_IPV6
    }) {
        return Err(FeederError::Capability(
            "extended next hop for IPv4 unicast (RFC 8950)",
        ));
    }
    if local.ipv6 && !has_mp(AFI_IPV6) {
        return Err(FeederError::Capability("IPv6 unicast (RFC 4760)"));
    }
    Ok(peer.hold_time.min(local.hold_time))
}

/// Connects to `target`, retrying until `timeout` (the receiver may still
/// be starting).
pub fn connect(target: SocketAddrV6, timeout: Duration) -> Result<TcpStream, FeederError> {
    let start = Instant::now();
    loop {
        match TcpStream::connect_timeout(&SocketAddr::V6(target), Duration::from_secs(2)) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() >= timeout => {
                return Err(FeederError::Connect {
                    target: target.to_string(),
                    secs: timeout.as_secs(),
                    source: e,
                })
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Accepts one connection on `addr`.
pub fn accept(addr: SocketAddrV6) -> Result<TcpStream, FeederError> {
    let l = TcpListener::bind(SocketAddr::V6(addr)).map_err(FeederError::io("bind"))?;
    let (s, _) = l.accept().map_err(FeederError::io("accept"))?;
    Ok(s)
}

/// Reads one whole message from a blocking stream (used before
/// Established; afterwards the reader thread owns the read side).
fn read_message(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    ctx: &CodecContext,
) -> Result<Message, FeederError> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(n) = frame_length(buf, ctx)? {
            let frame: Vec<u8> = buf.drain(..n).collect();
            return Ok(decode_message(&frame, ctx)?.message);
        }
        let n = stream.read(&mut chunk).map_err(FeederError::io("read"))?;
        if n == 0 {
            return Err(FeederError::ClosedEarly);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}

/// An established session.
pub struct Session {
    writer: Arc<Mutex<TcpStream>>,
    /// Set by the reader when the peer closes or sends a NOTIFICATION.
    pub closed: Arc<AtomicBool>,
    /// Messages received since Established.
    pub received: Arc<AtomicU64>,
    pub local_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub hold_time: u16,
}

/// Runs the OPEN exchange (RFC 4271 §8.2.2: OpenSent, OpenConfirm) and
/// returns once both KEEPALIVEs crossed.
pub fn establish(mut stream: TcpStream, local: &Local) -> Result<Session, FeederError> {
    stream
        .set_nodelay(true)
        .map_err(FeederError::io("TCP_NODELAY"))?;
    let open_ctx = CodecContext::default();
    let mut out = Vec::new();
    encode_message(&Message::Open(our_open(local)), &open_ctx, &mut out)?;
    stream
        .write_all(&out)
        .map_err(FeederError::io("send OPEN"))?;
    let mut buf = Vec::new();
    let peer = match read_message(&mut stream, &mut buf, &open_ctx)? {
        Message::Open(o) => o,
        Message::Notification(n) => {
            return Err(FeederError::Notified {
                code: n.code,
                subcode: n.subcode,
            })
        }
        _ => return Err(FeederError::Unexpected("message instead of OPEN")),
    };
    let hold_time = check_peer_open(&peer, local)?;
    let ctx = crate::table::context();
    out.clear();
    encode_message(&Message::Keepalive, &ctx, &mut out)?;
    stream
        .write_all(&out)
        .map_err(FeederError::io("send KEEPALIVE"))?;
    match read_message(&mut stream, &mut buf, &ctx)? {
        Message::Keepalive => {}
        Message::Notification(n) => {
            return Err(FeederError::Notified {
                code: n.code,
                subcode: n.subcode,
            })
        }
        _ => return Err(FeederError::Unexpected("message instead of KEEPALIVE")),
    }
    let local_addr = stream
        .local_addr()
        .map_err(FeederError::io("local address"))?;
    let peer_addr = stream
        .peer_addr()
        .map_err(FeederError::io("peer address"))?;
    let reader = stream
        .try_clone()
        .map_err(FeederError::io("clone socket"))?;
    let session = Session {
        writer: Arc::new(Mutex::new(stream)),
        closed: Arc::new(AtomicBool::new(false)),
        received: Arc::new(AtomicU64::new(0)),
        local_addr,
        peer_addr,
        hold_time,
    };
    spawn_reader(
        reader,
        buf,
        session.closed.clone(),
        session.received.clone(),
    );
    if hold_time > 0 {
        spawn_keepalive(
            session.writer.clone(),
            session.closed.clone(),
            Duration::from_secs(u64::from(hold_time / 3).max(1)),
        );
        let watch = lock(&session.writer)
            .try_clone()
            .map_err(FeederError::io("clone socket"))?;
        spawn_hold_timer(
            watch,
            session.closed.clone(),
            session.received.clone(),
            Duration::from_secs(u64::from(hold_time)),
        );
    }
    Ok(session)
}

/// The hold timer (RFC 4271 §6.5, §10): a peer that sends nothing, not
/// even a KEEPALIVE, for the hold time is gone. The socket is shut down
/// from this thread, which unblocks a bulk write stuck on a peer that
/// stopped reading; no NOTIFICATION, since such a peer would not read it.
fn spawn_hold_timer(
    stream: TcpStream,
    closed: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    hold: Duration,
) {
    thread::spawn(move || {
        let mut seen = received.load(Ordering::Relaxed);
        let mut since = Instant::now();
        while !closed.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(200));
            let now = received.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= hold {
                events::emit("hold_timer_expired", &[]);
                closed.store(true, Ordering::SeqCst);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    });
}

/// Drains the peer: counts messages, reports a NOTIFICATION or close.
fn spawn_reader(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    closed: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
) {
    thread::spawn(move || {
        let ctx = crate::table::context();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            loop {
                match frame_length(&buf, &ctx) {
                    Ok(Some(n)) => {
                        let frame: Vec<u8> = buf.drain(..n).collect();
                        received.fetch_add(1, Ordering::Relaxed);
                        if frame.get(18) == Some(&3) {
                            if let Ok(d) = decode_message(&frame, &ctx) {
                                if let Message::Notification(n) = d.message {
                                    events::notification(n.code, n.subcode);
                                }
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        events::error(&format!("peer stream: {e}"));
                        closed.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) => {
                    closed.store(true, Ordering::SeqCst);
                    events::simple("peer_closed");
                    return;
                }
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed.store(true, Ordering::SeqCst);
                    events::simple("peer_closed");
                    return;
                }
            }
        }
    });
}

/// KEEPALIVE every hold/3 (RFC 4271 §10). Shares the writer lock with
/// the bulk sender, which only releases it at message boundaries.
fn spawn_keepalive(writer: Arc<Mutex<TcpStream>>, closed: Arc<AtomicBool>, every: Duration) {
    thread::spawn(move || {
        let mut ka = Vec::new();
        if encode_message(&Message::Keepalive, &CodecContext::default(), &mut ka).is_err() {
            return;
        }
        while !closed.load(Ordering::SeqCst) {
            thread::sleep(every);
            let mut w = lock(&writer);
            if w.write_all(&ka).is_err() {
                closed.store(true, Ordering::SeqCst);
                return;
            }
        }
    });
}

fn lock(m: &Mutex<TcpStream>) -> MutexGuard<'_, TcpStream> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The end of the last whole message in `bytes` that ends at or before
/// `limit` (at least one message, so sending always progresses).
fn message_boundary(bytes: &[u8], limit: usize) -> usize {
    let mut at = 0;
    while let Some(len) = bytes.get(at + 16..at + 18) {
        let next = at + usize::from(u16::from_be_bytes([len[0], len[1]])).max(19);
        if next > limit && at > 0 {
            break;
        }
        at = next.min(bytes.len());
        if next >= limit {
            break;
        }
    }
    if at == 0 {
        bytes.len()
    } else {
        at
    }
}

impl Session {
    /// Writes whole messages as fast as the peer reads, in chunks of about
    /// 1 MiB cut at message boundaries so a KEEPALIVE never lands inside
    /// an UPDATE.
    pub fn send(&self, mut bytes: &[u8]) -> Result<(), FeederError> {
        const CHUNK: usize = 1 << 20;
        while !bytes.is_empty() {
            let cut = message_boundary(bytes, CHUNK);
            let (now, rest) = bytes.split_at(cut.min(bytes.len()));
            lock(&self.writer)
                .write_all(now)
                .map_err(FeederError::io("send"))?;
            bytes = rest;
        }
        Ok(())
    }

    /// Bytes written but not yet acknowledged by the peer (SIOCOUTQ); 0
    /// means the peer's kernel has everything.
    pub fn unacked(&self) -> Option<usize> {
        let fd = lock(&self.writer).as_raw_fd();
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one c_int through the pointer, which
        // points at a live local.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
        (rc == 0).then_some(usize::try_from(n).unwrap_or(0))
    }

    /// Waits until the peer acknowledged every byte, or the session ends.
    pub fn wait_acked(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout && !self.closed.load(Ordering::SeqCst) {
            if self.unacked() == Some(0) {
                return true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Sends a Cease NOTIFICATION (RFC 4486 subcode 2, administrative
    /// shutdown) and closes.
    pub fn shutdown(&self) {
        let mut out = Vec::new();
        let n = Message::Notification(wire::Notification::cease(2));
        if encode_message(&n, &crate::table::context(), &mut out).is_ok() {
            let mut w = lock(&self.writer);
            let _ = w.write_all(&out);
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// The link-local address of `ifname`, from `/proc/net/if_inet6`.
pub fn link_local_of(ifname: &str) -> Result<Ipv6Addr, FeederError> {
    let text = std::fs::read_to_string("/proc/net/if_inet6")
        .map_err(FeederError::io("read /proc/net/if_inet6"))?;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [hex, _, _, scope, _, name] = f.as_slice() {
            if *name == ifname && *scope == "20" {
                if let Ok(v) = u128::from_str_radix(hex, 16) {
                    return Ok(Ipv6Addr::from(v));
                }
            }
        }
    }
    Err(FeederError::NoLinkLocal(ifname.to_string()))
}

/// The index of `ifname` (the scope id of a link-local socket address).
pub fn if_index(ifname: &str) -> Result<u32, FeederError> {
    let path = format!("/sys/class/net/{ifname}/ifindex");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| FeederError::NoInterface(ifname.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Local {
        Local {
            asn: 65001,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: 90,
            remote_as: Some(65002),
            ipv6: false,
        }
    }

    #[test]
    fn our_open_offers_what_the_table_needs_and_passes_our_own_check() {
        let mut o = our_open(&local());
        assert_eq!(o.my_as, 65001);
        o.capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        o.capabilities.push(Capability::FourOctetAs(65002));
        o.hold_time = 30;
        assert_eq!(check_peer_open(&o, &local()).unwrap(), 30);
    }

    #[test]
    fn large_asn_goes_as_as_trans() {
        let l = Local {
            asn: 4_200_000_001,
            ..local()
        };
        assert_eq!(our_open(&l).my_as, AS_TRANS);
    }

    #[test]
    fn peer_without_extended_next_hop_is_refused() {
        let mut o = our_open(&local());
        o.capabilities.retain(|c| {
            !matches!(
                c,
                Capability::ExtendedNextHop(_) | Capability::FourOctetAs(_)
            )
        });
        o.capabilities.push(Capability::FourOctetAs(65002));
        assert!(matches!(
            check_peer_open(&o, &local()),
            Err(FeederError::Capability(_))
        ));
    }

    #[test]
    fn wrong_remote_as_is_refused() {
        let o = our_open(&local());
        assert!(matches!(
            check_peer_open(&o, &local()),
            Err(FeederError::RemoteAs {
                got: 65001,
                want: 65002
            })
        ));
    }

    /// A minimal peer on loopback: answers OPEN and KEEPALIVE, then
    /// counts announced prefixes until End-of-RIB. Returns its socket so
    /// that the session stays open until the test drops it.
    fn fake_peer(listener: TcpListener) -> thread::JoinHandle<(usize, bool, TcpStream)> {
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let peer_local = Local {
                asn: 65002,
                remote_as: Some(65001),
                ..local()
            };
            let open = read_message(&mut s, &mut buf, &CodecContext::default()).unwrap();
            assert!(matches!(open, Message::Open(_)));
            let mut out = Vec::new();
            let ctx = crate::table::context();
            encode_message(&Message::Open(our_open(&peer_local)), &ctx, &mut out).unwrap();
            encode_message(&Message::Keepalive, &ctx, &mut out).unwrap();
            s.write_all(&out).unwrap();
            let mut prefixes = 0;
            loop {
                match read_message(&mut s, &mut buf, &ctx).unwrap() {
                    Message::Keepalive => {}
                    Message::Update(u) => {
                        if wire::is_end_of_rib(&u).is_some() {
                            return (prefixes, true, s);
                        }
                        prefixes += u.attributes.mp_reach.map_or(0, |m| m.nlri.len());
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
    }

    #[test]
    fn table_reaches_a_peer_over_tcp_then_end_of_rib() {
        let listener = TcpListener::bind("[::1]:0").unwrap();
        let SocketAddr::V6(addr) = listener.local_addr().unwrap() else {
            panic!("not IPv6")
        };
        let peer = fake_peer(listener);
        let stream = connect(addr, Duration::from_secs(5)).unwrap();
        let l = Local {
            remote_as: Some(65002),
            ..local()
        };
        let s = establish(stream, &l).unwrap();
        assert_eq!(s.hold_time, 90);
        let ps: Vec<wire::IpNet> = (0..3000u32)
            .map(|i| {
                wire::IpNet::V4(wire::Ipv4Net::new((0x0b00_0000 + (i << 8)).into(), 24).unwrap())
            })
            .collect();
        let shape = crate::table::Shape {
            local_as: 65001,
            avoid_as: Some(65002),
            seed: 1,
        };
        let nh = crate::table::NextHopSpec {
            link_local: "fe80::1".parse().unwrap(),
            global: None,
            form: wire::LinkLocalForm::Native,
        };
        let enc = crate::table::encode(&crate::table::group(&ps, &shape), &nh).unwrap();
        s.send(&enc.announce).unwrap();
        let mut eor = Vec::new();
        wire::end_of_rib(wire::Family::Ipv4Unicast, &mut eor);
        s.send(&eor).unwrap();
        assert!(s.wait_acked(Duration::from_secs(5)));
        let (prefixes, eor, _stream) = peer.join().unwrap();
        assert_eq!((prefixes, eor), (3000, true));
    }

    #[test]
    fn a_silent_peer_is_dropped_after_the_hold_time() {
        let listener = TcpListener::bind("[::1]:0").unwrap();
        let SocketAddr::V6(addr) = listener.local_addr().unwrap() else {
            panic!("not IPv6")
        };
        let peer = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            read_message(&mut s, &mut buf, &CodecContext::default()).unwrap();
            let peer_local = Local {
                asn: 65002,
                hold_time: 3,
                ..local()
            };
            let mut out = Vec::new();
            let ctx = crate::table::context();
            encode_message(&Message::Open(our_open(&peer_local)), &ctx, &mut out).unwrap();
            encode_message(&Message::Keepalive, &ctx, &mut out).unwrap();
            s.write_all(&out).unwrap();
            // Silent from now on, but keeps the connection.
            thread::sleep(Duration::from_secs(4));
            drop(s);
        });
        let stream = connect(addr, Duration::from_secs(5)).unwrap();
        let start = Instant::now();
        let s = establish(stream, &local()).unwrap();
        assert_eq!(s.hold_time, 3);
        while !s.closed.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(s.closed.load(Ordering::SeqCst), "still open after 5 s");
        assert!(start.elapsed() >= Duration::from_millis(2800));
        peer.join().unwrap();
    }

    #[test]
    fn boundaries_fall_between_messages() {
        let mut bytes = Vec::new();
        for n in [100usize, 200, 300] {
            let start = bytes.len();
            bytes.extend_from_slice(&[0xff; 16]);
            bytes.extend_from_slice(&(n as u16).to_be_bytes());
            bytes.resize(start + n, 2);
        }
        assert_eq!(message_boundary(&bytes, 350), 300);
        assert_eq!(message_boundary(&bytes, 50), 100);
        assert_eq!(message_boundary(&bytes, 10_000), 600);
    }
}
