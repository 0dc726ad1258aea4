//! The tokio driver of one neighbour: runs the pure FSM (`crate::fsm`)
//! against real sockets and clocks, resolves connection collisions
//! (RFC 4271 §6.8), and connects the session to the RIB task.
//!
//! One task per neighbour. Per TCP connection a reader task (framing and
//! decoding) and a writer task (so a peer that stops reading never blocks
//! the session loop: timers keep firing, RFC 9687 send hold applies).
//!
//! Here: the task's loop, the FSM's actions and the messages in;
//! `handle` (config, commands, status, the handles others hold), `connect`
//! (connecting, accepting, collisions), `io` (the reader and writer
//! tasks), `local` (our addresses and interfaces).

mod connect;
mod handle;
pub mod io;
pub mod local;

use connect::{join_connect, recv_conn};
pub use handle::{
    Counters, SessionCommand, SessionCommander, SessionConfig, SessionHandle, SessionStatus,
};

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wire::{
    encode_message, merge_as4_path, Decoded, Family, Message, Notification, Open, AS_TRANS,
};

use crate::config::NeighborConfig;
use crate::events::{
    EstablishedSession, PeerId, ReceivedUpdate, RibInput, BATCH_PREFIXES, UPDATE_BATCH,
};
use crate::fsm::{
    cease, cease_notification, resolve_collision, Action, CollisionWinner, Event, Fsm, FsmConfig,
    State, Timer,
};
use crate::negotiate::{build_open, LocalIdentity, Negotiated};
use io::{Conn, ConnEvent, ConnectError};
use local::{canonical, if_index, interface_addresses, local_facts};

/// Queue of encoded messages from the RIB to one peer.
pub const OUTBOUND_QUEUE: usize = 128;
/// Commands to a session task.
const COMMAND_QUEUE: usize = 16;
/// When the hold timer runs out while we still hold unread input, look
/// again this much later.
const HOLD_RECHECK: Duration = Duration::from_secs(1);
/// How often a link-local session looks at its interface's state.
const LINK_CHECK: Duration = Duration::from_millis(500);
/// RFC 9687 send hold time while no hold time is negotiated (before the
/// OPEN, or hold time 0): its suggested 8 minutes. Once negotiated it is
/// twice the hold time, as BIRD does: a peer that stops reading is dropped
/// on the scale of the hold timer.
const DEFAULT_SEND_HOLD: Duration = Duration::from_secs(480);

/// Starts the task of one neighbour; it connects (unless passive) at once.
pub fn spawn_session(cfg: SessionConfig, rib_tx: mpsc::Sender<RibInput>) -> SessionHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (status_tx, status_rx) = watch::channel(SessionStatus::idle());
    let peer = cfg.peer;
    let neighbor = cfg.neighbor.clone();
    let fsm_cfg = cfg.fsm_config();
    let our_open = Arc::new(fsm_cfg.open.clone());
    let counters = Arc::new(Counters::default());
    let driver = Driver {
        fsm: Fsm::new(fsm_cfg),
        our_open,
        cfg,
        rib_tx,
        cmd_rx,
        cmd_closed: false,
        status_tx,
        conn: None,
        candidate: None,
        connecting: None,
        timers: [None; 4],
        to_rib: VecDeque::new(),
        batch_prefixes: 0,
        last_words: None,
        exit: false,
        silent: false,
        established_at: None,
        connect_error: None,
        error_at: None,
        link_down_checks: 0,
        counters: counters.clone(),
        published: None,
        batch_now: None,
        flushing: Vec::new(),
    };
    let task = tokio::spawn(driver.run());
    SessionHandle {
        peer,
        neighbor,
        cmd: cmd_tx,
        status: status_rx,
        counters,
        task,
    }
}

fn timer_ix(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

const TIMERS: [(Timer, Event); 4] = [
    (Timer::ConnectRetry, Event::ConnectRetryTimerExpires),
    (Timer::Hold, Event::HoldTimerExpires),
    (Timer::Keepalive, Event::KeepaliveTimerExpires),
    (Timer::IdleHold, Event::IdleHoldTimerExpires),
];

type ConnectTask = JoinHandle<Result<TcpStream, ConnectError>>;

struct Driver {
    cfg: SessionConfig,
    fsm: Fsm,
    our_open: Arc<Open>,
    rib_tx: mpsc::Sender<RibInput>,
    cmd_rx: mpsc::Receiver<SessionCommand>,
    cmd_closed: bool,
    status_tx: watch::Sender<SessionStatus>,
    /// The connection the FSM runs on.
    conn: Option<Conn>,
    /// A second connection from the peer, waiting for its OPEN to resolve
    /// the collision (RFC 4271 §6.8).
    candidate: Option<Conn>,
    connecting: Option<ConnectTask>,
    timers: [Option<tokio::time::Instant>; 4],
    /// Messages for the RIB, in order; while any wait, the connection is not
    /// read (back-pressure to TCP) but timers and commands still run.
    to_rib: VecDeque<RibInput>,
    /// Prefixes in the last batch of `to_rib` (see `BATCH_PREFIXES`).
    batch_prefixes: usize,
    /// NOTIFICATION bytes to write before the next disconnect.
    last_words: Option<Vec<u8>>,
    exit: bool,
    /// Stopping without a NOTIFICATION (a graceful restart to a peer
    /// without N): the FSM's NOTIFICATION is not written.
    silent: bool,
    established_at: Option<Instant>,
    connect_error: Option<String>,
    /// When the last connect failure or session end happened.
    error_at: Option<SystemTime>,
    /// Consecutive link checks that found the interface down: one alone
    /// may be a new veth not yet marked running.
    link_down_checks: u8,
    /// Shared with the handle: counted per UPDATE without republishing.
    counters: Arc<Counters>,
    published: Option<(State, Option<String>, Option<SystemTime>)>,
    batch_now: Option<tokio::time::Instant>,
    /// Closing connections still flushing their last words.
    flushing: Vec<JoinHandle<()>>,
}

impl Driver {
    fn name(&self) -> String {
        match &self.cfg.neighbor.interface {
            Some(i) => format!("{}%{}", self.cfg.neighbor.address, i),
            None => self.cfg.neighbor.address.to_string(),
        }
    }

    async fn run(mut self) {
        self.feed(Event::ManualStart);
        self.publish();
        let mut link_check = tokio::time::interval(LINK_CHECK);
        link_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let watch_link = self.cfg.neighbor.interface.is_some();
        loop {
            let next = self.timers.iter().flatten().min().copied();
            // A local handle so the permit does not borrow `self`.
            let rib_tx = self.rib_tx.clone();
            tokio::select! {
                biased;
                cmd = self.cmd_rx.recv(), if !self.cmd_closed => match cmd {
                    Some(c) => self.command(c),
                    None => {
                        self.cmd_closed = true;
                        self.feed(Event::ManualStop(cease_notification(cease::ADMIN_SHUTDOWN, None)));
                        self.exit = true;
                    }
                },
                permit = rib_tx.reserve(), if !self.to_rib.is_empty() => match permit {
                    Ok(p) => {
                        if let Some(m) = self.to_rib.pop_front() {
                            p.send(m);
                        }
                        self.flush_rib();
                    }
                    // The RIB is gone (speaker shutting down).
                    Err(_) => self.to_rib.clear(),
                },
                ev = recv_conn(&mut self.conn), if self.to_rib.is_empty() => self.conn_event(ev),
                ev = recv_conn(&mut self.candidate) => self.candidate_event(ev),
                res = join_connect(&mut self.connecting) => {
                    self.connecting = None;
                    self.connected(res);
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                    self.fire_timers();
                }
                _ = link_check.tick(), if watch_link && self.conn.is_some() => self.check_link(),
            }
            self.publish();
            if self.exit && self.to_rib.is_empty() {
                break;
            }
        }
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        // Let the last NOTIFICATION (Cease) reach the peer before the task
        // ends; each flush is bounded by its own grace period.
        for h in self.flushing.drain(..) {
            let _ = h.await;
        }
    }

    fn publish(&mut self) {
        // While trying to connect, why the last attempt failed is the news;
        // otherwise why the last session ended.
        let connecting = matches!(self.fsm.state(), State::Connect | State::Active);
        let fsm_error = self.fsm.last_error().map(|e| e.to_string());
        let last_error = match (&self.connect_error, connecting) {
            (Some(e), true) => Some(e.clone()),
            _ => fsm_error.or_else(|| self.connect_error.clone()),
        };
        let error_at = self.error_at.filter(|_| last_error.is_some());
        let key = (self.fsm.state(), last_error.clone(), error_at);
        if self.published.as_ref() == Some(&key) {
            return;
        }
        if let Some((old, _, _)) = &self.published {
            if *old != key.0 {
                info!(neighbor = %self.name(), from = %old, to = %key.0, "state change");
                if let Some(events) = self.cfg.events.as_ref().filter(|e| e.watched()) {
                    events.send(crate::events::WatchEvent::Session {
                        neighbor: self.cfg.neighbor.address,
                        interface: self.cfg.neighbor.interface.clone(),
                        old: *old,
                        new: key.0,
                    });
                }
            }
        }
        self.published = Some(key);
        let established = self.fsm.state() == State::Established;
        let status = SessionStatus {
            state: self.fsm.state(),
            established_at: self.established_at.filter(|_| established),
            negotiated: self.fsm.negotiated().filter(|_| established).cloned(),
            last_error,
            last_error_at: error_at,
            local_address: self.conn.as_ref().map(|c| c.local),
            remote_address: self.conn.as_ref().map(|c| c.remote),
            updates_received: 0,
            updates_sent: 0,
        };
        self.status_tx.send_replace(status);
    }

    /// Runs the FSM on `ev` and everything it leads to.
    fn feed(&mut self, ev: Event) {
        // `VecDeque::new` does not allocate: the common single event is free.
        let mut queue = VecDeque::new();
        let mut first = Some(ev);
        while let Some(ev) = first.take().or_else(|| queue.pop_front()) {
            let actions = self.fsm.handle(ev);
            for a in actions {
                self.act(a, &mut queue);
            }
        }
        if let (Some(bytes), Some(conn)) = (self.last_words.take(), &self.conn) {
            conn.send(bytes);
        }
    }

    fn encode(&self, msg: &Message) -> Option<Vec<u8>> {
        let ctx = self.fsm.negotiated().map(|n| n.codec()).unwrap_or_default();
        let mut out = Vec::new();
        match encode_message(msg, &ctx, &mut out) {
            Ok(()) => Some(out),
            Err(e) => {
                warn!(neighbor = %self.name(), error = %e, "cannot encode message");
                None
            }
        }
    }

    fn send(&self, msg: &Message) {
        if let (Some(conn), Some(bytes)) = (&self.conn, self.encode(msg)) {
            if !conn.send(bytes) {
                debug!(neighbor = %self.name(), "writer behind, message dropped");
            }
        }
    }

    fn act(&mut self, a: Action, queue: &mut VecDeque<Event>) {
        match a {
            Action::Connect => self.start_connect(queue),
            Action::Disconnect => {
                if let Some(c) = self.connecting.take() {
                    c.abort();
                }
                if let Some(conn) = self.conn.take() {
                    self.flushing.retain(|h| !h.is_finished());
                    self.flushing.extend(conn.close(self.last_words.take()));
                }
                self.last_words = None;
                if let Some(c) = self.candidate.take() {
                    c.close(None);
                }
            }
            Action::SendOpen(o) => self.send(&Message::Open(*o)),
            Action::SendKeepalive => self.send(&Message::Keepalive),
            Action::SendNotification(n) => {
                if !self.silent {
                    self.last_words = self.encode(&Message::Notification(n));
                }
            }
            Action::StartTimer(t, s) => {
                self.timers[timer_ix(t)] = Some(self.now() + Duration::from_secs(u64::from(s)));
            }
            Action::StopTimer(t) => self.timers[timer_ix(t)] = None,
            Action::Established(neg) => self.established(&neg),
            Action::Down(kind) => {
                self.established_at = None;
                self.error_at = Some(SystemTime::now());
                if let crate::graceful::DownKind::Graceful { restart_time, .. } = &kind {
                    info!(neighbor = %self.name(), restart_time = ?restart_time,
                        "peer restarting: its routes stay, marked stale (RFC 4724)");
                }
                self.to_rib.push_back(RibInput::Down {
                    peer: self.cfg.peer,
                    kind,
                });
                info!(neighbor = %self.name(), error = ?self.fsm.last_error().map(|e| e.to_string()), "session down");
            }
        }
    }

    fn send_hold(&self) -> Duration {
        self.cfg.send_hold.unwrap_or(DEFAULT_SEND_HOLD)
    }

    fn negotiated_send_hold(&self, hold_time: u16) -> Duration {
        send_hold_for(self.cfg.send_hold, hold_time)
    }

    fn command(&mut self, c: SessionCommand) {
        match c {
            SessionCommand::Incoming(stream) => self.incoming(stream),
            SessionCommand::Reset(text) => {
                self.feed(Event::ManualStop(cease_notification(
                    cease::ADMIN_RESET,
                    text.as_deref(),
                )));
                self.feed(Event::ManualStart);
            }
            SessionCommand::HardReset(text) => {
                let n = cease_notification(cease::ADMIN_RESET, text.as_deref());
                self.feed(Event::ManualStop(self.for_good(n)));
                self.feed(Event::ManualStart);
            }
            SessionCommand::Refresh(reply) => {
                let sent = self.send_refresh();
                let _ = reply.send(sent);
            }
            SessionCommand::Stop(n) => {
                self.feed(Event::ManualStop(n));
                self.exit = true;
            }
            SessionCommand::StopAs(kind, n) => {
                match crate::graceful::stop_notification(kind, self.graceful(), n.clone()) {
                    Some(told) => self.feed(Event::ManualStop(told)),
                    None => {
                        // The FSM stops as usual; the wire only sees the
                        // connection close.
                        self.silent = true;
                        self.feed(Event::ManualStop(n));
                    }
                }
                self.exit = true;
            }
            SessionCommand::BfdDown { restart } => {
                // Without a connection there is nothing to tear down, and
                // a BFD session that is not Up must not hold BGP back.
                let connected = matches!(
                    self.fsm.state(),
                    State::OpenSent | State::OpenConfirm | State::Established
                );
                if connected && restart && self.graceful().is_some() {
                    self.feed(Event::BfdDownRestart);
                } else if connected {
                    // The forwarding path is dead: no graceful restart
                    // keeps these routes (RFC 5882 §4.3.2), so a peer that
                    // set N gets a Hard Reset (RFC 8538 §3).
                    let n = self.for_good(cease_notification(cease::BFD_DOWN, None));
                    self.feed(Event::ErrorStop(n));
                }
            }
        }
    }

    /// The session's graceful restart, while it is Established with one.
    fn graceful(&self) -> Option<&crate::graceful::PeerRestart> {
        self.fsm
            .negotiated()
            .and_then(|neg| neg.graceful_restart.as_ref())
    }

    /// The Cease `n` said so that the peer drops our routes: a Hard Reset
    /// where it set N (RFC 8538 §3), else `n` itself.
    fn for_good(&self, n: Notification) -> Notification {
        let kind = crate::graceful::StopKind::Shutdown;
        crate::graceful::stop_notification(kind, self.graceful(), n.clone()).unwrap_or(n)
    }

    fn send_refresh(&mut self) -> bool {
        if self.fsm.state() != State::Established {
            return false;
        }
        let Some(neg) = self.fsm.negotiated().cloned() else {
            return false;
        };
        // RFC 2918 §3: only to a peer that advertised the capability.
        if !neg.route_refresh {
            return false;
        }
        for f in &neg.families {
            self.send(&Message::RouteRefresh(wire::RouteRefresh {
                afi: f.afi(),
                subtype: 0,
                safi: f.safi(),
            }));
        }
        true
    }

    /// Handles a batch until the connection it came on goes away. One
    /// clock reading serves the whole batch (timer restarts per UPDATE).
    fn messages(&mut self, batch: impl IntoIterator<Item = Decoded>) {
        self.batch_now = Some(tokio::time::Instant::now());
        for d in batch {
            self.message(d);
            if self.conn.is_none() {
                break;
            }
        }
        self.batch_now = None;
    }

    fn now(&self) -> tokio::time::Instant {
        self.batch_now.unwrap_or_else(tokio::time::Instant::now)
    }

    /// Hands queued RIB input over without waiting; what does not fit
    /// waits for `reserve` in the main loop.
    fn flush_rib(&mut self) {
        while let Some(m) = self.to_rib.pop_front() {
            match self.rib_tx.try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(m)) => {
                    self.to_rib.push_front(m);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.to_rib.clear();
                    return;
                }
            }
        }
    }

    fn message(&mut self, d: Decoded) {
        let Decoded {
            message,
            treat_as_withdraw,
            discarded,
        } = d;
        match message {
            Message::Open(o) => self.feed(Event::OpenReceived(Box::new(o))),
            Message::Keepalive => self.feed(Event::KeepaliveReceived),
            Message::Notification(n) => {
                if n.code == crate::negotiate::code::CEASE
                    && n.subcode == cease::CONNECTION_COLLISION
                    && self.candidate.is_some()
                {
                    // The peer resolved the collision for its connection
                    // before we read its OPEN: continue on that one.
                    if let (Some(old), Some(new)) = (self.conn.take(), self.candidate.take()) {
                        old.close(None);
                        self.conn = Some(new);
                        self.feed(Event::ConnectionReplaced);
                        return;
                    }
                }
                info!(neighbor = %self.name(), notification = %crate::fsm::describe(&n), "peer sent NOTIFICATION");
                self.feed(Event::NotificationReceived(n));
            }
            Message::Update(u) => {
                let established = self.fsm.state() == State::Established;
                self.feed(Event::UpdateReceived);
                if !established {
                    return;
                }
                self.counters
                    .updates_received
                    .fetch_add(1, Ordering::Relaxed);
                for e in &discarded {
                    debug!(neighbor = %self.name(), error = ?e, "attribute discarded (RFC 7606)");
                }
                if let Some(e) = &treat_as_withdraw {
                    warn!(neighbor = %self.name(), error = ?e, "treat-as-withdraw (RFC 7606)");
                }
                let four = self.fsm.negotiated().is_some_and(|n| n.four_octet_as);
                let update = fix_as4(u, four);
                let received = ReceivedUpdate {
                    update,
                    treat_as_withdraw: treat_as_withdraw.is_some(),
                };
                let peer = self.cfg.peer;
                let size = received.prefixes();
                match self.to_rib.back_mut() {
                    Some(RibInput::Updates { peer: p, updates })
                        if *p == peer
                            && updates.len() < UPDATE_BATCH
                            && self.batch_prefixes + size <= BATCH_PREFIXES =>
                    {
                        updates.push(received);
                        self.batch_prefixes += size;
                    }
                    _ => {
                        let mut updates = Vec::with_capacity(UPDATE_BATCH);
                        updates.push(received);
                        self.to_rib.push_back(RibInput::Updates { peer, updates });
                        self.batch_prefixes = size;
                    }
                }
            }
            Message::RouteRefresh(rr) => {
                let established = self.fsm.state() == State::Established;
                self.feed(Event::RouteRefreshReceived);
                if !established || rr.subtype != 0 {
                    // BoRR/EoRR (RFC 7313) only bracket the peer's resend.
                    return;
                }
                let family = Family::from_afi_safi(rr.afi, rr.safi);
                let ok = family.filter(|f| {
                    self.fsm
                        .negotiated()
                        .is_some_and(|n| n.families.contains(f))
                });
                match ok {
                    Some(family) => self.to_rib.push_back(RibInput::RouteRefresh {
                        peer: self.cfg.peer,
                        family,
                    }),
                    // RFC 2918 §4: a family we did not advertise is ignored.
                    None => {
                        debug!(neighbor = %self.name(), afi = rr.afi, safi = rr.safi, "ROUTE-REFRESH for unknown family ignored")
                    }
                }
            }
        }
    }

    fn established(&mut self, neg: &Negotiated) {
        let Some(conn) = &self.conn else {
            return;
        };
        let scope = match conn.remote {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
            _ => None,
        }
        .or_else(|| self.cfg.neighbor.interface.as_deref().and_then(if_index));
        let addrs = interface_addresses().unwrap_or_default();
        let facts = local_facts(conn.local, scope, &addrs);
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        conn.set_send_hold(self.negotiated_send_hold(neg.hold_time));
        conn.attach(out_rx);
        let session = EstablishedSession {
            peer: self.cfg.peer,
            peer_address: self.cfg.neighbor.address,
            peer_as: neg.peer_as,
            peer_router_id: neg.peer_router_id,
            local_as: self.cfg.local_as,
            local_address: canonical(conn.local.ip()),
            local_link_local: facts.link_local,
            local_global_v6: facts.global_v6,
            local_ipv4: facts.ipv4,
            ifindex: facts.ifindex,
            ebgp: neg.peer_as != self.cfg.local_as,
            families: neg.families.clone(),
            codec: neg.codec(),
            route_refresh: neg.route_refresh,
            enhanced_route_refresh: neg.enhanced_route_refresh,
            graceful_restart: neg.graceful_restart.clone(),
        };
        info!(
            neighbor = %self.name(),
            peer_as = neg.peer_as,
            families = ?neg.families,
            extended_next_hop = ?neg.extended_next_hop,
            local_link_local = ?facts.link_local,
            "session established"
        );
        self.established_at = Some(Instant::now());
        // RFC 4271 §6.8: an Established session wins over a connection
        // still waiting to show its OPEN.
        if let Some(c) = self.candidate.take() {
            let cease7 = self.encode(&Message::Notification(cease_notification(
                cease::CONNECTION_COLLISION,
                None,
            )));
            c.close(cease7);
        }
        self.to_rib.push_back(RibInput::Established {
            session,
            outbound: out_tx,
        });
    }

    /// A link-local session ends when its interface goes down, as BIRD
    /// does, instead of waiting for the hold timer.
    fn check_link(&mut self) {
        let Some(ifname) = self.cfg.neighbor.interface.clone() else {
            return;
        };
        if local::link_is_up(&ifname) {
            self.link_down_checks = 0;
            return;
        }
        self.link_down_checks = self.link_down_checks.saturating_add(1);
        if self.link_down_checks == 2 {
            warn!(neighbor = %self.name(), interface = %ifname, "interface down, closing session");
            self.feed(Event::LinkDown(ifname));
        }
    }

    fn fire_timers(&mut self) {
        let now = tokio::time::Instant::now();
        for (t, ev) in TIMERS {
            let ix = timer_ix(t);
            if self.timers[ix].is_some_and(|d| d <= now) {
                self.timers[ix] = None;
                if t == Timer::Hold && self.behind_on_input() {
                    // The peer did send; we have not read it yet because
                    // the RIB is pushing back. Its silence is ours.
                    self.timers[ix] = Some(now + HOLD_RECHECK);
                    continue;
                }
                self.feed(ev);
            }
        }
    }

    /// Messages from the peer wait unprocessed (the hold timer must not
    /// blame the peer for our back-pressure).
    fn behind_on_input(&self) -> bool {
        !self.to_rib.is_empty() || self.conn.as_ref().is_some_and(|c| !c.events.is_empty())
    }
}

/// Send hold time once the hold time is negotiated (see
/// `DEFAULT_SEND_HOLD`); a configured value wins.
fn send_hold_for(configured: Option<Duration>, hold_time: u16) -> Duration {
    match (configured, hold_time) {
        (Some(d), _) => d,
        (None, 0) => DEFAULT_SEND_HOLD,
        (None, h) => Duration::from_secs(2 * u64::from(h)),
    }
}

/// RFC 6793 §4.2.3: from a 2-octet peer, rebuild the real AS path from
/// AS_PATH and AS4_PATH (unless AGGREGATOR shows a non-AS_TRANS ASN, then
/// ignore both AS4 attributes); from a 4-octet peer, AS4_PATH and
/// AS4_AGGREGATOR must not appear and are discarded (§4.1).
pub fn fix_as4(mut u: wire::Update, peer_four_octet: bool) -> wire::Update {
    let a = &mut u.attributes;
    if peer_four_octet {
        a.as4_path = None;
        a.as4_aggregator = None;
        return u;
    }
    let as4_path = a.as4_path.take();
    let as4_agg = a.as4_aggregator.take();
    if a.aggregator.is_some_and(|g| g.asn != u32::from(AS_TRANS)) {
        return u;
    }
    if let (Some(_), Some(g4)) = (a.aggregator, as4_agg) {
        a.aggregator = Some(g4);
    }
    if let (Some(p), Some(p4)) = (&a.as_path, as4_path) {
        a.as_path = Some(merge_as4_path(p, &p4));
    }
    u
}

#[cfg(test)]
mod tests;
