//! The socket edge: every session of the process on one thread of its
//! own with a single-threaded tokio runtime, so that no other work (the
//! RIB loading a full table) can delay a transmit or detection timer.
//! One receive socket per family; packets are matched to sessions by Your
//! Discriminator, or by source address and interface while it is 0
//! (RFC 5880 §6.8.6). State changes leave on an unbounded channel: they
//! are rare, and the BFD thread must never wait for a slow consumer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};
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
    List(oneshot::Sender<Vec<SessionInfo>>),
    Counters(oneshot::Sender<Counters>),
}

struct Entry {
    session: Session,
    endpoint: Endpoint,
    sock: Socket,
    port: u16,
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

pub(crate) struct Driver {
    rx4: AsyncFd<Socket>,
    rx6: AsyncFd<Socket>,
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
        Ok(Driver {
            rx4: open(false)?,
            rx6: open(true)?,
            sessions: HashMap::new(),
            by_peer: HashMap::new(),
            changes,
            counters: Counters::default(),
            rng: Rng(seed | 1),
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
                    let _ = e
                        .sock
                        .send_to(&p.encode(), &SockAddr::from(e.endpoint.destination()));
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
                    let to = SockAddr::from(e.endpoint.destination());
                    match e.sock.send_to(&p.encode(), &to) {
                        Ok(_) => e.tx_packets += 1,
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
            Command::List(reply) => {
                let now = Instant::now();
                let list = self.sessions.values().map(|e| info_of(e, now)).collect();
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
        let start = 49152 + (self.rng.next() % 16384) as u16;
        let (sock, port) =
            sockets::sender(&endpoint, start).map_err(|source| BfdError::Socket {
                what: "send socket",
                source,
            })?;
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
                sock,
                port,
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

fn info_of(e: &Entry, now: Instant) -> SessionInfo {
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
        source_port: e.port,
        tx_packets: e.tx_packets,
        rx_packets: e.rx_packets,
        tx_errors: e.tx_errors,
    }
}
