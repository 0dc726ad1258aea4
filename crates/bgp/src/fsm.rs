//! The BGP finite-state machine of RFC 4271 §8, pure: `handle(event)`
//! returns the actions the driver must carry out. Timers are actions
//! (start/stop) and their expiry is an event, so the whole protocol can be
//! replayed in tests without sockets or clocks.
//!
//! Deviations, on purpose: a failed outgoing TCP connection waits in Active
//! for the ConnectRetryTimer instead of going Idle (what deployed speakers
//! do); an error in OpenSent or later goes Idle with an exponentially
//! growing IdleHoldTimer (RFC 4271 §8.1.1 DampPeerOscillations). DelayOpen is
//! not supported.

use std::fmt;

use wire::{Notification, Open};

use crate::negotiate::{code, negotiate, LocalIdentity, Negotiated};

/// RFC 4271 §8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Timers the driver runs on behalf of the FSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// Back-off before an automatic restart (RFC 4271 §8.1.1).
    IdleHold,
}

/// Inputs to the FSM (RFC 4271 §8.1, the subset via6 uses).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Event 1. Also clears the flap back-off.
    ManualStart,
    /// Event 2, with the Cease to send (RFC 4486 subcode, RFC 9003 text).
    ManualStop(Notification),
    /// Stop because of a local decision that should restart later, e.g.
    /// Cease/1 on max-prefix: send this NOTIFICATION, go Idle, back off.
    ErrorStop(Notification),
    /// The IdleHoldTimer ran out: automatic start (event 3).
    IdleHoldTimerExpires,
    /// Event 9.
    ConnectRetryTimerExpires,
    /// Event 10.
    HoldTimerExpires,
    /// Event 11.
    KeepaliveTimerExpires,
    /// RFC 9687: our writes made no progress for too long.
    SendHoldTimerExpires,
    /// Events 16/17: a TCP connection is up (outgoing completed or incoming
    /// accepted).
    TcpConnected,
    /// Event 18.
    TcpConnectionFails,
    /// Event 19.
    OpenReceived(Box<Open>),
    /// Event 26.
    KeepaliveReceived,
    /// Event 27.
    UpdateReceived,
    /// A ROUTE-REFRESH (RFC 2918); legal only in Established.
    RouteRefreshReceived,
    /// Events 24/25.
    NotificationReceived(Notification),
    /// Events 21/22/28: a message failed to decode; answer with this.
    MessageError(Notification),
    /// Event 23: collision detection chose the other connection.
    OpenCollisionDump,
    /// The interface of a link-local session went down: the connection is
    /// dead even though TCP has not noticed yet.
    LinkDown(String),
    /// The neighbour's BFD session went Down, and the neighbour's BFD
    /// shares fate with its control plane (C bit clear) and we were told
    /// to take that as the neighbour restarting (RFC 5882 §4.3.2): close
    /// so that both sides keep their routes through graceful restart,
    /// with Cease/10 where N was negotiated (RFC 8538: not a Hard Reset,
    /// so a restart), else without a NOTIFICATION (RFC 4724 §4: one
    /// would end the restart).
    BfdDownRestart,
    /// Collision detection (RFC 4271 §6.8) kept the peer's new connection
    /// over the current one; the driver already sent Cease/7 on the old
    /// one. The FSM starts over on the new connection with our OPEN.
    ConnectionReplaced,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start an outgoing TCP connection.
    Connect,
    /// Close the TCP connection (after writing anything queued before).
    Disconnect,
    SendOpen(Box<Open>),
    SendKeepalive,
    SendNotification(Notification),
    /// (Re)start a timer; seconds are never 0.
    StartTimer(Timer, u32),
    StopTimer(Timer),
    /// Entered Established with these parameters.
    Established(Box<Negotiated>),
    /// Left Established: the peer's routes go, or stay stale through its
    /// graceful restart.
    Down(crate::graceful::DownKind),
}

/// Why the session last went down, for `via6ctl neighbors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    Sent(Notification),
    Received(Notification),
    ConnectionLost,
    LinkDown(String),
    /// BFD went Down and was taken as the peer restarting (see
    /// [`Event::BfdDownRestart`]); `notified`: Cease/10 was sent.
    BfdDownRestart {
        notified: bool,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Sent(n) => write!(f, "sent {}", describe(n)),
            SessionError::Received(n) => write!(f, "received {}", describe(n)),
            SessionError::ConnectionLost => f.write_str("connection lost"),
            SessionError::LinkDown(i) => write!(f, "interface {i} went down"),
            SessionError::BfdDownRestart { notified } => write!(
                f,
                "BFD down, taken as the peer restarting{}",
                if *notified { " (sent Cease/10)" } else { "" }
            ),
        }
    }
}

/// Cease subcodes (RFC 4486, RFC 9003).
pub mod cease {
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMIN_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMIN_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIG_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// RFC 9384: the BFD session protecting this one went Down.
    pub const BFD_DOWN: u8 = 10;
}

/// RFC 9003 §2: at most 255 octets of UTF-8.
const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

/// A Cease NOTIFICATION. For Administrative Shutdown and Reset a shutdown
/// communication (RFC 9003 §2: length octet + UTF-8, at most 255 octets,
/// cut on a character boundary) is carried when given.
pub fn cease_notification(subcode: u8, communication: Option<&str>) -> Notification {
    let mut data = Vec::new();
    if let (Some(text), cease::ADMIN_SHUTDOWN | cease::ADMIN_RESET) = (communication, subcode) {
        let mut end = text.len().min(MAX_SHUTDOWN_COMMUNICATION);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = text.as_bytes().get(..end).unwrap_or_default();
        data.push(u8::try_from(bytes.len()).unwrap_or(0));
        data.extend_from_slice(bytes);
    }
    Notification {
        code: code::CEASE,
        subcode,
        data,
    }
}

/// Cease/1 with AFI, SAFI and the prefix limit as data (RFC 4486).
pub fn max_prefix_notification(afi: u16, safi: u8, limit: u32) -> Notification {
    let mut data = afi.to_be_bytes().to_vec();
    data.push(safi);
    data.extend_from_slice(&limit.to_be_bytes());
    Notification {
        code: code::CEASE,
        subcode: cease::MAX_PREFIXES,
        data,
    }
}

/// The shutdown communication of a received Cease/2 or Cease/4, if well
/// formed (RFC 9003 §2: a bad length or bad UTF-8 is ignored, not an error).
pub fn shutdown_communication(n: &Notification) -> Option<String> {
    if n.code != code::CEASE || !matches!(n.subcode, cease::ADMIN_SHUTDOWN | cease::ADMIN_RESET) {
        return None;
    }
    let (&len, rest) = n.data.split_first()?;
    let text = rest.get(..usize::from(len))?;
    if text.is_empty() {
        return None;
    }
    std::str::from_utf8(text).ok().map(str::to_owned)
}

/// A human description: "NOTIFICATION 6/2 (Cease: administrative shutdown: "text")".
pub fn describe(n: &Notification) -> String {
    // RFC 8538 §3: Hard Reset carries the NOTIFICATION it stands for.
    if let (6, 9, [code, subcode, rest @ ..]) = (n.code, n.subcode, n.data.as_slice()) {
        let inner = Notification {
            code: *code,
            subcode: *subcode,
            data: rest.to_vec(),
        };
        return format!(
            "NOTIFICATION 6/9 (Cease: hard reset, for {})",
            describe(&inner)
        );
    }
    let what = match (n.code, n.subcode) {
        (1, 1) => "message header error: connection not synchronized",
        (1, 2) => "message header error: bad message length",
        (1, 3) => "message header error: bad message type",
        (1, _) => "message header error",
        (2, 1) => "OPEN error: unsupported version number",
        (2, 2) => "OPEN error: bad peer AS",
        (2, 3) => "OPEN error: bad BGP identifier",
        (2, 4) => "OPEN error: unsupported optional parameter",
        (2, 6) => "OPEN error: unacceptable hold time",
        (2, 7) => "OPEN error: unsupported capability",
        (2, _) => "OPEN error",
        (3, _) => "UPDATE error",
        (4, _) => "hold timer expired",
        (5, 1) => "FSM error: unexpected message in OpenSent",
        (5, 2) => "FSM error: unexpected message in OpenConfirm",
        (5, 3) => "FSM error: unexpected message in Established",
        (5, _) => "FSM error",
        (6, 1) => "Cease: maximum number of prefixes reached",
        (6, 2) => "Cease: administrative shutdown",
        (6, 3) => "Cease: peer de-configured",
        (6, 4) => "Cease: administrative reset",
        (6, 5) => "Cease: connection rejected",
        (6, 6) => "Cease: other configuration change",
        (6, 7) => "Cease: connection collision resolution",
        (6, 8) => "Cease: out of resources",
        (6, 9) => "Cease: hard reset",
        (6, 10) => "Cease: BFD down",
        (6, _) => "Cease",
        (7, _) => "ROUTE-REFRESH error",
        (8, _) => "send hold timer expired",
        _ => "unknown error",
    };
    match shutdown_communication(n) {
        Some(text) => format!("NOTIFICATION {}/{} ({what}: {text:?})", n.code, n.subcode),
        None => format!("NOTIFICATION {}/{} ({what})", n.code, n.subcode),
    }
}

/// Fixed parameters of one FSM.
#[derive(Debug, Clone, PartialEq)]
pub struct FsmConfig {
    pub identity: LocalIdentity,
    /// The OPEN we send (see `negotiate::build_open`).
    pub open: Open,
    /// Never connect out; wait for the peer (RFC 4271 PassiveTcpEstablishment).
    pub passive: bool,
    pub connect_retry_secs: u32,
    /// First IdleHoldTimer after a failure; doubles per failure up to the cap.
    pub idle_hold_base_secs: u32,
    pub idle_hold_max_secs: u32,
}

/// RFC 4271 §8: "a large value" for the hold timer while waiting for OPEN.
pub const OPEN_HOLD_SECS: u32 = 240;
/// Established this long (in keepalive ticks) clears the flap back-off.
const STABLE_SECS: u32 = 60;

/// One session's FSM.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    /// False after ManualStop: no automatic restart.
    enabled: bool,
    negotiated: Option<Negotiated>,
    /// Failures since the session was last stable; drives the back-off.
    flaps: u32,
    idle_hold_running: bool,
    /// Max-prefix hold-down: refuse the peer until the idle hold ends.
    held_down: bool,
    stable_secs: u32,
    last_error: Option<SessionError>,
    /// RFC 4271 ConnectRetryCounter.
    connect_retry_counter: u32,
}

impl Fsm {
    pub fn new(cfg: FsmConfig) -> Fsm {
        Fsm {
            cfg,
            state: State::Idle,
            enabled: false,
            negotiated: None,
            flaps: 0,
            idle_hold_running: false,
            held_down: false,
            stable_secs: 0,
            last_error: None,
            connect_retry_counter: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Parameters of the current session once the peer's OPEN was accepted.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn last_error(&self) -> Option<&SessionError> {
        self.last_error.as_ref()
    }

    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    /// Whether an incoming TCP connection may be taken now. Idle refuses
    /// while administratively stopped and while held down after
    /// max-prefix; the flap back-off only slows our own connection attempts
    /// (refusing the peer's would make it back off in turn, as BIRD's error
    /// wait does, and both sides end up waiting minutes). Connect and Active
    /// take it.
    pub fn accepts_incoming(&self) -> bool {
        match self.state {
            State::Idle => self.enabled && !self.held_down,
            State::Connect | State::Active => true,
            _ => false,
        }
    }

    /// Feeds one event; returns the actions to carry out, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Idle => self.idle(event, &mut out),
            State::Connect | State::Active => self.connecting(event, &mut out),
            State::OpenSent => self.open_sent(event, &mut out),
            State::OpenConfirm => self.open_confirm(event, &mut out),
            State::Established => self.established(event, &mut out),
        }
        out
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        self.idle_hold_running = false;
        self.held_down = false;
        out.push(Action::StopTimer(Timer::IdleHold));
        out.push(Action::StartTimer(
            Timer::ConnectRetry,
            self.cfg.connect_retry_secs.max(1),
        ));
        if self.cfg.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Action::Connect);
        }
    }

    fn idle(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart => {
                self.enabled = true;
                self.flaps = 0;
                self.connect_retry_counter = 0;
                self.start(out);
            }
            Event::IdleHoldTimerExpires if self.enabled => self.start(out),
            Event::ConnectionReplaced => out.push(Action::Disconnect),
            Event::IdleHoldTimerExpires => {
                self.idle_hold_running = false;
                self.held_down = false;
            }
            Event::TcpConnected if self.enabled && !self.held_down => {
                // Automatic start with passive TCP establishment (event 5),
                // the connection already here.
                self.idle_hold_running = false;
                out.push(Action::StopTimer(Timer::IdleHold));
                out.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.cfg.connect_retry_secs.max(1),
                ));
                self.tcp_up(out);
            }
            Event::ManualStop(_) => {
                self.enabled = false;
                self.idle_hold_running = false;
                out.push(Action::StopTimer(Timer::IdleHold));
            }
            Event::TcpConnected => out.push(Action::Disconnect),
            // RFC 4271 §8.2.2: Idle ignores everything else.
            _ => {}
        }
    }

    /// Sends our OPEN on a fresh connection and waits for the peer's.
    fn tcp_up(&mut self, out: &mut Vec<Action>) {
        out.push(Action::StopTimer(Timer::ConnectRetry));
        out.push(Action::SendOpen(Box::new(self.cfg.open.clone())));
        out.push(Action::StartTimer(Timer::Hold, OPEN_HOLD_SECS));
        self.state = State::OpenSent;
    }

    fn connecting(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart => {}
            Event::ConnectRetryTimerExpires => {
                out.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.cfg.connect_retry_secs.max(1),
                ));
                if !self.cfg.passive {
                    if self.state == State::Connect {
                        // Give up the attempt in flight and try again.
                        out.push(Action::Disconnect);
                    }
                    out.push(Action::Connect);
                    self.state = State::Connect;
                }
            }
            Event::TcpConnected | Event::ConnectionReplaced => self.tcp_up(out),
            Event::TcpConnectionFails => {
                // Wait in Active for the next ConnectRetryTimer expiry.
                self.state = State::Active;
            }
            Event::ManualStop(_) => {
                out.push(Action::Disconnect);
                out.push(Action::StopTimer(Timer::ConnectRetry));
                self.enabled = false;
                self.connect_retry_counter = 0;
                self.state = State::Idle;
            }
            Event::ErrorStop(_) => {
                out.push(Action::Disconnect);
                out.push(Action::StopTimer(Timer::ConnectRetry));
                self.enter_idle_backoff(out);
            }
            // Timers that are not running here, stale expiries; a link that
            // is down just makes the next attempt fail; no session to keep.
            Event::LinkDown(_)
            | Event::BfdDownRestart
            | Event::HoldTimerExpires
            | Event::KeepaliveTimerExpires
            | Event::IdleHoldTimerExpires
            | Event::SendHoldTimerExpires => {}
            // No connection, so no message can arrive: an FSM error
            // (RFC 4271 §8.2.2 Connect, "any other event").
            Event::OpenReceived(_)
            | Event::KeepaliveReceived
            | Event::UpdateReceived
            | Event::RouteRefreshReceived
            | Event::NotificationReceived(_)
            | Event::MessageError(_)
            | Event::OpenCollisionDump => {
                out.push(Action::Disconnect);
                out.push(Action::StopTimer(Timer::ConnectRetry));
                self.enter_idle_backoff(out);
            }
        }
    }

    /// Shared tail of every failure: stop timers, count the flap, back off.
    fn enter_idle_backoff(&mut self, out: &mut Vec<Action>) {
        out.push(Action::StopTimer(Timer::Hold));
        out.push(Action::StopTimer(Timer::Keepalive));
        out.push(Action::StopTimer(Timer::ConnectRetry));
        if self.state == State::Established {
            let gr = self
                .negotiated
                .as_ref()
                .and_then(|n| n.graceful_restart.as_ref());
            out.push(Action::Down(crate::graceful::down_kind(
                gr,
                self.last_error.as_ref(),
            )));
        }
        self.negotiated = None;
        self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
        self.state = State::Idle;
        self.stable_secs = 0;
        if self.enabled {
            let shift = self.flaps.min(16);
            let secs = self
                .cfg
                .idle_hold_base_secs
                .max(1)
                .saturating_mul(1 << shift)
                .min(self.cfg.idle_hold_max_secs.max(1));
            self.flaps = self.flaps.saturating_add(1);
            self.idle_hold_running = true;
            out.push(Action::StartTimer(Timer::IdleHold, secs));
        }
    }

    /// Send a NOTIFICATION, close, back off.
    fn fail_with(&mut self, n: Notification, out: &mut Vec<Action>) {
        out.push(Action::SendNotification(n.clone()));
        out.push(Action::Disconnect);
        self.last_error = Some(SessionError::Sent(n));
        self.enter_idle_backoff(out);
    }

    /// Close without sending (the peer closed or notified us).
    fn drop_with(&mut self, err: SessionError, out: &mut Vec<Action>) {
        out.push(Action::Disconnect);
        self.last_error = Some(err);
        self.enter_idle_backoff(out);
    }

    /// ManualStop in OpenSent or later: Cease, close, stay Idle.
    fn manual_stop(&mut self, n: Notification, out: &mut Vec<Action>) {
        out.push(Action::SendNotification(n.clone()));
        out.push(Action::Disconnect);
        self.last_error = Some(SessionError::Sent(n));
        self.enabled = false;
        self.enter_idle_backoff(out);
        self.connect_retry_counter = 0;
    }

    fn fsm_error(subcode: u8) -> Notification {
        // RFC 6608: the subcode names the state the surprise came in.
        Notification {
            code: code::FSM,
            subcode,
            data: Vec::new(),
        }
    }

    fn hold_expired() -> Notification {
        Notification {
            code: code::HOLD_TIMER_EXPIRED,
            subcode: 0,
            data: Vec::new(),
        }
    }

    /// Events every state with a connection treats alike.
    fn common_connected(&mut self, event: Event, fsm_subcode: u8, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart => {}
            Event::ManualStop(n) => self.manual_stop(n, out),
            Event::ErrorStop(n) => {
                if n.code == code::CEASE && n.subcode == cease::MAX_PREFIXES {
                    // RFC 4486: after max-prefix, stay down for the full
                    // (maximum) idle hold instead of re-flooding the RIB.
                    self.flaps = 16;
                    self.fail_with(n, out);
                    self.held_down = self.enabled;
                    return;
                }
                self.fail_with(n, out)
            }
            Event::HoldTimerExpires => self.fail_with(Self::hold_expired(), out),
            Event::SendHoldTimerExpires => self.fail_with(
                Notification {
                    code: code::SEND_HOLD_TIMER_EXPIRED,
                    subcode: 0,
                    data: Vec::new(),
                },
                out,
            ),
            Event::TcpConnectionFails => self.drop_with(SessionError::ConnectionLost, out),
            Event::LinkDown(i) => self.drop_with(SessionError::LinkDown(i), out),
            Event::BfdDownRestart => {
                let notified = self
                    .negotiated
                    .as_ref()
                    .and_then(|n| n.graceful_restart.as_ref())
                    .is_some_and(|g| g.notification);
                if notified {
                    out.push(Action::SendNotification(cease_notification(
                        cease::BFD_DOWN,
                        None,
                    )));
                }
                self.drop_with(SessionError::BfdDownRestart { notified }, out)
            }
            Event::NotificationReceived(n) => self.drop_with(SessionError::Received(n), out),
            Event::MessageError(n) => self.fail_with(n, out),
            Event::OpenCollisionDump => {
                self.fail_with(cease_notification(cease::CONNECTION_COLLISION, None), out)
            }
            Event::ConnectionReplaced if self.state != State::Established => {
                out.push(Action::StopTimer(Timer::Keepalive));
                self.negotiated = None;
                self.tcp_up(out);
            }
            // RFC 4271 §6.8: an Established session is never replaced.
            Event::ConnectionReplaced => {}
            // A second connection is the driver's business (collision
            // detection); the FSM of this one ignores it.
            Event::TcpConnected | Event::ConnectRetryTimerExpires | Event::IdleHoldTimerExpires => {
            }
            Event::OpenReceived(_)
            | Event::KeepaliveReceived
            | Event::UpdateReceived
            | Event::RouteRefreshReceived
            | Event::KeepaliveTimerExpires => self.fail_with(Self::fsm_error(fsm_subcode), out),
        }
    }

    fn open_sent(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::OpenReceived(open) => {
                match negotiate(&self.cfg.identity, &self.cfg.open, &open) {
                    Ok(neg) => {
                        out.push(Action::StopTimer(Timer::ConnectRetry));
                        out.push(Action::SendKeepalive);
                        if neg.hold_time > 0 {
                            out.push(Action::StartTimer(
                                Timer::Keepalive,
                                u32::from(neg.keepalive.max(1)),
                            ));
                            out.push(Action::StartTimer(Timer::Hold, u32::from(neg.hold_time)));
                        } else {
                            out.push(Action::StopTimer(Timer::Hold));
                        }
                        self.negotiated = Some(neg);
                        self.state = State::OpenConfirm;
                    }
                    Err(n) => self.fail_with(n, out),
                }
            }
            Event::NotificationReceived(n) if n.code == code::OPEN_MESSAGE && n.subcode == 1 => {
                // RFC 4271 §8.2.2 OpenSent, event 24: version error, no
                // ConnectRetryCounter increase; we only speak v4 anyway.
                self.drop_with(SessionError::Received(n), out);
            }
            other => self.common_connected(other, 1, out),
        }
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        if let Some(neg) = &self.negotiated {
            if neg.hold_time > 0 {
                out.push(Action::StartTimer(Timer::Hold, u32::from(neg.hold_time)));
            }
        }
    }

    fn keepalive_tick(&mut self, out: &mut Vec<Action>) {
        out.push(Action::SendKeepalive);
        if let Some(neg) = &self.negotiated {
            if neg.hold_time > 0 {
                let k = u32::from(neg.keepalive.max(1));
                out.push(Action::StartTimer(Timer::Keepalive, k));
                if self.state == State::Established {
                    self.stable_secs = self.stable_secs.saturating_add(k);
                    if self.stable_secs >= STABLE_SECS {
                        self.flaps = 0;
                    }
                }
            }
        }
    }

    fn open_confirm(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::KeepaliveReceived => {
                self.restart_hold(out);
                self.state = State::Established;
                self.stable_secs = 0;
                self.connect_retry_counter = 0;
                crate::graceful::restart_over(&mut self.cfg.open);
                if let Some(neg) = &self.negotiated {
                    out.push(Action::Established(Box::new(neg.clone())));
                }
            }
            Event::KeepaliveTimerExpires => self.keepalive_tick(out),
            other => self.common_connected(other, 2, out),
        }
    }

    fn established(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::KeepaliveReceived | Event::UpdateReceived | Event::RouteRefreshReceived => {
                self.restart_hold(out)
            }
            Event::KeepaliveTimerExpires => self.keepalive_tick(out),
            // RFC 4271 §6.8: a collision with an Established session keeps
            // the Established one; the driver never asks us to dump it.
            other => self.common_connected(other, 3, out),
        }
    }
}

/// Which connection survives a collision (RFC 4271 §6.8): the one opened
/// by the speaker with the higher BGP Identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionWinner {
    /// The connection we initiated.
    Ours,
    /// The connection the peer initiated.
    Theirs,
}

/// RFC 4271 §6.8: compare the identifiers as unsigned integers.
pub fn resolve_collision(
    local_id: std::net::Ipv4Addr,
    remote_id: std::net::Ipv4Addr,
) -> CollisionWinner {
    if u32::from(local_id) > u32::from(remote_id) {
        CollisionWinner::Ours
    } else {
        CollisionWinner::Theirs
    }
}

#[cfg(test)]
mod tests;
