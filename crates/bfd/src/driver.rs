//! The socket edge: every session of the process on one thread of its
//! own with a single-threaded tokio runtime, so that no other work (the
//! RIB loading a full table) can delay a transmit or detection timer.
//! One socket pair per family for every session (a receive socket on
//! port 3784, a send socket on one source port); packets are matched to
//! sessions by Your Discriminator, or by source address and interface
//! while it is 0 (RFC 5880 §6.8.6), and must come from the session's peer
//! on its interface either way (single hop, RFC 5881). State changes leave on an unbounded channel: they
//! are rare, and the BFD thread must never wait for a slow consumer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;
use tracing::{debug, info, warn};

use crate::fsm::{Action, Event, Jitter, Session};
use crate::packet::{ControlPacket, State};
use crate::sockets::{self, Endpoint, TTL};
use crate::sys;
use crate::{BfdError, Counters, PeerKey, PeerSpec, SessionInfo, StateChange};

pub(crate) enum Command {
    Add(PeerSpec, oneshot::Sender<Result<PeerKey, BfdError>>),
    Remove(PeerKey),
    Admin(PeerKey, bool),
    Update(PeerKey, Update),
    List(oneshot::Sender<Vec<SessionInfo>>),
    Counters(oneshot::Sender<Counters>),
}

/// New settings for a running session: timers are negotiated with a
/// Poll sequence (RFC 5880 §6.8.3), the source address applies to the
/// next packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    pub config: crate::Config,
    pub local: Option<IpAddr>,
}

struct Entry {
    session: Session,
    endpoint: Endpoint,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    up_since: Option<Instant>,
    tx_packets: u64,
    rx_packets: u64,
    tx_errors: u64,
}

/// A small xorshift generator: jitter and discriminators need to differ
/// between systems and over time, not to be secret.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn jitter(&mut self) -> Jitter {
        Jitter((self.next() >> 56) as u8)
    }
}

/// The send socket of one family and its source port.
struct Sender {
    sock: Socket,
    port: u16,
}

pub(crate) struct Driver {
    rx4: AsyncFd<Socket>,
    rx6: AsyncFd<Socket>,
    tx4: Sender,
    tx6: Sender,
    sessions: HashMap<u32, Entry>,
    by_peer: HashMap<PeerKey, u32>,
    changes: mpsc::UnboundedSender<StateChange>,
    counters: Counters,
    rng: Rng,
}

impl Driver {
    pub(crate) fn new(
        port: u16,
        changes: mpsc::UnboundedSender<StateChange>,
    ) -> Result<Driver, BfdError> {
        let open = |v6: bool| {
            let what = if v6 { "IPv6" } else { "IPv4" };
            sockets::receiver(v6, port)
                .and_then(sys::register)
                .map_err(|source| BfdError::Socket { what, source })
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        let mut rng = Rng(seed | 1);
        let mut sender = |v6: bool| {
            let start = 49152 + (rng.next() % 16384) as u16;
            sockets::sender(v6, start)
                .map(|(sock, port)| Sender { sock, port })
                .map_err(|source| BfdError::Socket {
                    what: if v6 { "IPv6 send" } else { "IPv4 send" },
                    source,
                })
        };
        let (tx4, tx6) = (sender(false)?, sender(true)?);
        Ok(Driver {
            rx4: open(false)?,
            rx6: open(true)?,
            tx4,
            tx6,
            sessions: HashMap::new(),
            by_peer: HashMap::new(),
            changes,
            counters: Counters::default(),
            rng,
        })
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = [0u8; 512];
        loop {
            self.fire_timers(Instant::now());
            let next = self
                .sessions
                .values()
                .flat_map(|e| [e.tx_at, e.detect_at])
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = sleep_until(next.into()) => {}
                r = self.rx6.readable() => match r {
                    Ok(mut g) => { g.clear_ready(); self.drain(true, &mut buf); }
                    Err(e) => warn!("bfd: IPv6 socket: {e}"),
                },
                r = self.rx4.readable() => match r {
                    Ok(mut g) => { g.clear_ready(); self.drain(false, &mut buf); }
                    Err(e) => warn!("bfd: IPv4 socket: {e}"),
                },
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    None => break,
                },
            }
        }
        for (_, e) in self.sessions.drain() {
            // Tell the peers we go away on purpose (§6.8.16).
            let mut s = e.session.clone();
            for a in s.handle(Event::AdminDown, Jitter(0)) {
                if let Action::Send(p) = a {
                    let tx = if e.endpoint.peer.is_ipv6() {
                        &self.tx6
                    } else {
                        &self.tx4
                    };
                    let _ = transmit(tx, &e.endpoint, &p.encode());
                }
            }
        }
    }

    fn drain(&mut self, v6: bool, buf: &mut [u8]) {
        loop {
            let sock = if v6 { &self.rx6 } else { &self.rx4 };
            match sys::recv(sock.get_ref().as_fd(), buf) {
                Ok(meta) => {
                    let bytes = buf.get(..meta.len).unwrap_or_default();
                    self.receive(bytes, meta);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("bfd: receive: {e}");
                    return;
                }
            }
        }
    }

    /// RFC 5881 §5 (TTL 255), then §6.8.6 (decode, session lookup).
    fn receive(&mut self, bytes: &[u8], meta: sys::Meta) {
        if meta.ttl != Some(TTL) {
            self.counters.rx_bad_ttl += 1;
            debug!(
                "bfd: from {} TTL {:?}, not 255: dropped",
                meta.source, meta.ttl
            );
            return;
        }
        let p = match ControlPacket::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.counters.rx_bad_packet += 1;
                debug!("bfd: from {}: {e}", meta.source);
                return;
            }
        };
        let peer = match meta.source {
            SocketAddr::V6(a) => a.ip().to_canonical(),
            SocketAddr::V4(a) => IpAddr::V4(*a.ip()),
        };
        let discr = if p.your_discr != 0 {
            Some(p.your_discr)
        } else {
            self.by_peer
                .get(&PeerKey {
                    peer,
                    ifindex: meta.ifindex,
                })
                .or_else(|| self.by_peer.get(&PeerKey { peer, ifindex: 0 }))
                .copied()
        };
        let Some(discr) = discr.filter(|d| self.sessions.contains_key(d)) else {
            self.counters.rx_no_session += 1;
            debug!(
                "bfd: from {} (if {}): no session",
                meta.source, meta.ifindex
            );
            return;
        };
        if !self
            .sessions
            .get(&discr)
            .is_some_and(|e| e.endpoint.accepts(peer, meta.ifindex))
        {
            self.counters.rx_wrong_source += 1;
            debug!(
                "bfd: from {} (if {}): not the peer of session {discr}",
                meta.source, meta.ifindex
            );
            return;
        }
        self.counters.rx_packets += 1;
        if let Some(e) = self.sessions.get_mut(&discr) {
            e.rx_packets += 1;
        }
        self.event(discr, Event::Received(p));
    }

    fn fire_timers(&mut self, now: Instant) {
        let due: Vec<(u32, Event)> = self
            .sessions
            .iter()
            .flat_map(|(&d, e)| {
                let detect = e
                    .detect_at
                    .filter(|t| *t <= now)
                    .map(|_| (d, Event::DetectTimerExpired));
                let tx = e
                    .tx_at
                    .filter(|t| *t <= now)
                    .map(|_| (d, Event::TxTimerExpired));
                detect.into_iter().chain(tx)
            })
            .collect();
        for (d, ev) in due {
            if let Some(e) = self.sessions.get_mut(&d) {
                match ev {
                    Event::DetectTimerExpired => e.detect_at = None,
                    _ => e.tx_at = None,
                }
            }
            self.event(d, ev);
        }
    }

    fn event(&mut self, discr: u32, ev: Event) {
        let jitter = self.rng.jitter();
        let Some(e) = self.sessions.get_mut(&discr) else {
            return;
        };
        let actions = e.session.handle(ev, jitter);
        self.apply(discr, actions);
    }

    fn apply(&mut self, discr: u32, actions: Vec<Action>) {
        let Some(e) = self.sessions.get_mut(&discr) else {
            return;
        };
        let now = Instant::now();
        for a in actions {
            match a {
                Action::Send(p) => {
                    let tx = if e.endpoint.peer.is_ipv6() {
                        &self.tx6
                    } else {
                        &self.tx4
                    };
                    match transmit(tx, &e.endpoint, &p.encode()) {
                        Ok(()) => e.tx_packets += 1,
                        Err(err) => {
                            e.tx_errors += 1;
                            debug!("bfd: send to {}: {err}", e.endpoint.peer);
                        }
                    }
                }
                Action::StartTxTimer(d) => e.tx_at = Some(now + d),
                Action::StartDetectTimer(d) => e.detect_at = Some(now + d),
                Action::StopDetectTimer => e.detect_at = None,
                Action::StateChanged { from, to, diag } => {
                    e.up_since = (to == State::Up).then_some(now);
                    info!(
                        "bfd: {} {:?}: {from} -> {to} ({diag})",
                        e.endpoint.peer,
                        e.endpoint.interface.as_ref().map(|i| &i.0)
                    );
                    let _ = self.changes.send(StateChange {
                        peer: e.endpoint.peer,
                        interface: e.endpoint.interface.as_ref().map(|i| i.0.clone()),
                        from,
                        to,
                        diag,
                        remote: e.session.remote_state(),
                        remote_control_plane_independent: e
                            .session
                            .remote_control_plane_independent(),
                        at: now,
                    });
                }
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Add(spec, reply) => {
                let r = self.add(spec);
                let _ = reply.send(r);
            }
            Command::Remove(key) => {
                if let Some(d) = self.by_peer.remove(&key) {
                    self.event(d, Event::AdminDown);
                    self.sessions.remove(&d);
                }
            }
            Command::Admin(key, down) => {
                if let Some(&d) = self.by_peer.get(&key) {
                    self.event(
                        d,
                        if down {
                            Event::AdminDown
                        } else {
                            Event::AdminUp
                        },
                    );
                }
            }
            Command::Update(key, u) => {
                if let Some(&d) = self.by_peer.get(&key) {
                    if let Some(e) = self.sessions.get_mut(&d) {
                        e.endpoint.local = u.local;
                    }
                    if self.sessions.get(&d).map(|e| e.session.config()) != Some(u.config) {
                        self.event(d, Event::Configure(u.config));
                    }
                }
            }
            Command::List(reply) => {
                let now = Instant::now();
                let list = self
                    .sessions
                    .values()
                    .map(|e| {
                        let port = if e.endpoint.peer.is_ipv6() {
                            self.tx6.port
                        } else {
                            self.tx4.port
                        };
                        info_of(e, port, now)
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Command::Counters(reply) => {
                let _ = reply.send(self.counters);
            }
        }
    }

    fn add(&mut self, spec: PeerSpec) -> Result<PeerKey, BfdError> {
        let interface = match &spec.interface {
            Some(name) => Some((
                name.clone(),
                sys::if_index(name).ok_or_else(|| BfdError::NoInterface(name.clone()))?,
            )),
            None if sys::is_link_local(spec.peer) => {
                return Err(BfdError::LinkLocalNeedsInterface(spec.peer))
            }
            None => None,
        };
        if spec.config.detect_mult == 0 {
            return Err(BfdError::ZeroDetectMult);
        }
        let key = PeerKey {
            peer: spec.peer,
            ifindex: interface.as_ref().map_or(0, |i| i.1),
        };
        if self.by_peer.contains_key(&key) {
            return Err(BfdError::Duplicate(spec.peer));
        }
        let endpoint = Endpoint {
            peer: spec.peer,
            interface,
            local: spec.local,
        };
        let discr = loop {
            let d = self.rng.next() as u32;
            if d != 0 && !self.sessions.contains_key(&d) {
                break d;
            }
        };
        let session = Session::new(discr, spec.config);
        self.sessions.insert(
            discr,
            Entry {
                session,
                endpoint,
                tx_at: None,
                detect_at: None,
                up_since: None,
                tx_packets: 0,
                rx_packets: 0,
                tx_errors: 0,
            },
        );
        self.by_peer.insert(key.clone(), discr);
        let jitter = self.rng.jitter();
        let first = self
            .sessions
            .get_mut(&discr)
            .map(|e| e.session.start(jitter))
            .unwrap_or_default();
        self.apply(discr, first);
        Ok(key)
    }
}

/// Sends one packet of `e`'s session. A source address that is no longer
/// ours (EADDRNOTAVAIL, EINVAL) is not worth losing the session over: the
/// packet then goes from the kernel's choice.
fn transmit(tx: &Sender, e: &Endpoint, bytes: &[u8]) -> std::io::Result<()> {
    let fd = tx.sock.as_fd();
    let to = e.destination();
    match sys::send(fd, bytes, to, e.local, e.ifindex()) {
        Err(err)
            if e.local.is_some()
                && matches!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::EINVAL)) =>
        {
            sys::send(fd, bytes, to, None, e.ifindex()).map(|_| ())
        }
        r => r.map(|_| ()),
    }
}

fn info_of(e: &Entry, port: u16, now: Instant) -> SessionInfo {
    let s = &e.session;
    SessionInfo {
        peer: e.endpoint.peer,
        interface: e.endpoint.interface.as_ref().map(|i| i.0.clone()),
        state: s.state(),
        remote_state: s.remote_state(),
        local_diag: s.local_diag(),
        remote_diag: s.remote_diag(),
        local_discr: s.local_discr(),
        remote_discr: s.remote_discr(),
        config: s.config(),
        tx_interval: s.tx_interval(),
        detection_time: s.detection_time(),
        uptime: e.up_since.map(|t| now.saturating_duration_since(t)),
        source_port: port,
        local: e.endpoint.local,
        tx_packets: e.tx_packets,
        rx_packets: e.rx_packets,
        tx_errors: e.tx_errors,
    }
}
