//! The RFC 5880 asynchronous-mode session, pure: [`Session::handle`] takes
//! an event (a received packet, a timer running out, an administrative
//! command) and returns the actions the driver carries out, in order.
//! Timers are actions and their expiry is an event, and the transmit
//! jitter (§6.8.7) is an input, so every transition can be replayed in a
//! test without sockets, clocks or randomness.
//!
//! Left out on purpose: demand mode, echo mode, authentication (a packet
//! with the A bit never reaches this module) and the passive role (we
//! always send first, §6.1).
#![forbid(unsafe_code)]

use std::time::Duration;

use crate::packet::{ControlPacket, Diag, State};

/// §6.8.3: "When bfd.SessionState is not Up, the system MUST set
/// bfd.DesiredMinTxInterval to a value of not less than one second".
pub const SLOW_TX_US: u32 = 1_000_000;

/// Local timer configuration, intervals in microseconds as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    /// Never 0 (§6.8.1); the config layer refuses 0.
    pub detect_mult: u8,
}

impl Default for Config {
    /// 300 ms x 3, the project's default.
    fn default() -> Self {
        Config {
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            detect_mult: 3,
        }
    }
}

/// Where in its allowed range a transmit interval falls: 0 is the
/// shortest (75 %), 255 the longest (100 %, or 90 % with a detect
/// multiplier of 1, §6.8.7). The driver draws it at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Jitter(pub u8);

/// Inputs to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A packet that passed [`ControlPacket::decode`] and was matched to
    /// this session (§6.8.6).
    Received(ControlPacket),
    /// The transmit timer ran out: time for the next periodic packet.
    TxTimerExpired,
    /// The detection timer ran out (§6.8.4).
    DetectTimerExpired,
    /// §6.8.16.
    AdminDown,
    AdminUp,
    /// New local timers; while Up they are negotiated with a Poll sequence.
    Configure(Config),
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(ControlPacket),
    /// (Re)start the transmit timer.
    StartTxTimer(Duration),
    /// (Re)start the detection timer.
    StartDetectTimer(Duration),
    StopDetectTimer,
    /// The local state changed; `diag` says why.
    StateChanged {
        from: State,
        to: State,
        diag: Diag,
    },
}

/// One session and its §6.8.1 variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    config: Config,
    state: State,
    remote_state: State,
    /// The remote's C bit: its BFD does not share fate with its control
    /// plane (RFC 5880 §4.1, RFC 5882 §4.3.2).
    remote_cpi: bool,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    remote_diag: Diag,
    /// bfd.DesiredMinTxInterval, as advertised.
    desired_min_tx: u32,
    /// bfd.RequiredMinRxInterval, as advertised.
    required_min_rx: u32,
    /// The transmit interval in force: an increase waits for the Final.
    tx_in_use: u32,
    /// The receive interval detection uses: a decrease waits for the Final.
    rx_in_use: u32,
    remote_min_rx: u32,
    remote_desired_min_tx: u32,
    remote_detect_mult: u8,
    /// A Poll sequence is running (§6.5).
    polling: bool,
}

impl Session {
    /// A new session in Down; `local_discr` must be non-zero and unique
    /// on this system (§6.8.1), which the driver guarantees.
    pub fn new(local_discr: u32, config: Config) -> Session {
        let desired = config.desired_min_tx.max(SLOW_TX_US);
        Session {
            config,
            state: State::Down,
            remote_state: State::Down,
            remote_cpi: false,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            desired_min_tx: desired,
            required_min_rx: config.required_min_rx,
            tx_in_use: desired,
            rx_in_use: config.required_min_rx,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            polling: false,
        }
    }

    /// The first packet and the transmit timer.
    pub fn start(&mut self, jitter: Jitter) -> Vec<Action> {
        let mut out = Vec::new();
        self.send_now(&mut out, jitter);
        out
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn remote_state(&self) -> State {
        self.remote_state
    }
    /// Whether the remote said its BFD is independent of its control
    /// plane (the C bit of its last packet).
    pub fn remote_control_plane_independent(&self) -> bool {
        self.remote_cpi
    }
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }
    pub fn remote_diag(&self) -> Diag {
        self.remote_diag
    }
    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }
    pub fn config(&self) -> Config {
        self.config
    }
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The unjittered transmit interval (§6.8.7): the larger of ours and
    /// what the remote can receive.
    pub fn tx_interval(&self) -> Duration {
        Duration::from_micros(u64::from(self.tx_in_use.max(self.remote_min_rx)))
    }

    /// §6.8.4: the remote's detect multiplier times the larger of our
    /// required receive interval and its desired transmit interval.
    pub fn detection_time(&self) -> Duration {
        let us = u64::from(self.rx_in_use.max(self.remote_desired_min_tx));
        Duration::from_micros(us * u64::from(self.remote_detect_mult))
    }

    /// §6.8.7: 75-100 % of the interval, at most 90 % when the detect
    /// multiplier is 1.
    pub fn jittered(&self, jitter: Jitter) -> Duration {
        let base = self.tx_interval().as_micros() as u64;
        let span: u64 = if self.config.detect_mult == 1 { 15 } else { 25 };
        let us = base * 75 / 100 + base * span * u64::from(jitter.0) / (100 * 255);
        // Never a zero timer, whatever tiny interval was configured.
        Duration::from_micros(us.max(1))
    }

    /// The one entry point: event in, actions out.
    pub fn handle(&mut self, event: Event, jitter: Jitter) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Received(p) => self.receive(p, jitter, &mut out),
            Event::TxTimerExpired => {
                // §6.8.7: no periodic packets while the remote asks for none.
                if self.remote_min_rx != 0 {
                    out.push(Action::Send(self.packet(self.polling, false)));
                    out.push(Action::StartTxTimer(self.jittered(jitter)));
                }
            }
            Event::DetectTimerExpired => self.detect_expired(jitter, &mut out),
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    out.push(Action::StopDetectTimer);
                    self.set_state(State::AdminDown, Diag::AdministrativelyDown, &mut out);
                    self.send_now(&mut out, jitter);
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, self.local_diag, &mut out);
                    self.send_now(&mut out, jitter);
                }
            }
            Event::Configure(c) => self.configure(c, jitter, &mut out),
        }
        out
    }

    /// §6.8.6 from "Set bfd.RemoteDiscr to the value of My Discriminator"
    /// on; the packet-only checks were done by the decoder.
    fn receive(&mut self, p: ControlPacket, jitter: Jitter, out: &mut Vec<Action>) {
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            return;
        }
        let rx_was_zero = self.remote_min_rx == 0;
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_cpi = p.cpi;
        self.remote_diag = p.diag;
        self.remote_min_rx = p.required_min_rx;
        self.remote_desired_min_tx = p.desired_min_tx;
        self.remote_detect_mult = p.detect_mult;
        if self.polling && p.final_ {
            self.end_poll();
        }
        if self.state == State::AdminDown {
            return;
        }
        out.push(Action::StartDetectTimer(self.detection_time()));
        let before = self.state;
        match (self.state, p.state) {
            (State::Down, State::AdminDown) => {}
            (_, State::AdminDown) | (State::Up, State::Down) => {
                self.set_state(State::Down, Diag::NeighborSignaledSessionDown, out)
            }
            (State::Down, State::Down) => self.set_state(State::Init, Diag::None, out),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.set_state(State::Up, Diag::None, out)
            }
            _ => {}
        }
        if p.poll {
            // §6.8.6: answer a Poll at once, outside the transmit timer.
            out.push(Action::Send(self.packet(false, true)));
        }
        if self.state != before {
            self.send_now(out, jitter);
        } else if rx_was_zero && self.remote_min_rx != 0 {
            out.push(Action::StartTxTimer(self.jittered(jitter)));
        }
    }

    /// §6.8.4; §6.8.1: bfd.RemoteDiscr is zeroed when the time runs out.
    fn detect_expired(&mut self, jitter: Jitter, out: &mut Vec<Action>) {
        match self.state {
            State::Init | State::Up => {
                self.remote_discr = 0;
                self.remote_state = State::Down;
                self.set_state(State::Down, Diag::ControlDetectionTimeExpired, out);
                self.send_now(out, jitter);
            }
            State::Down => {
                self.remote_discr = 0;
                self.remote_state = State::Down;
            }
            State::AdminDown => {}
        }
    }

    /// §6.8.3: a change of either advertised interval starts a Poll
    /// sequence while Up; a slower transmit interval and a faster required
    /// receive interval only take effect once the Final arrives.
    fn configure(&mut self, c: Config, jitter: Jitter, out: &mut Vec<Action>) {
        self.config = c;
        let tx = if self.state == State::Up {
            c.desired_min_tx
        } else {
            c.desired_min_tx.max(SLOW_TX_US)
        };
        self.advertise(tx, c.required_min_rx);
        if self.polling {
            out.push(Action::Send(self.packet(true, false)));
            out.push(Action::StartTxTimer(self.jittered(jitter)));
        }
    }

    /// Sets the advertised intervals, deciding what applies at once.
    fn advertise(&mut self, tx: u32, rx: u32) {
        let changed = tx != self.desired_min_tx || rx != self.required_min_rx;
        self.desired_min_tx = tx;
        self.required_min_rx = rx;
        if self.state == State::Up && changed {
            self.polling = true;
            self.tx_in_use = self.tx_in_use.min(tx);
            self.rx_in_use = self.rx_in_use.max(rx);
        } else if self.state != State::Up {
            self.polling = false;
            self.tx_in_use = tx;
            self.rx_in_use = rx;
        }
    }

    fn end_poll(&mut self) {
        self.polling = false;
        self.tx_in_use = self.desired_min_tx;
        self.rx_in_use = self.required_min_rx;
    }

    fn set_state(&mut self, to: State, diag: Diag, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        out.push(Action::StateChanged { from, to, diag });
        let tx = if to == State::Up {
            self.config.desired_min_tx
        } else {
            self.config.desired_min_tx.max(SLOW_TX_US)
        };
        if from == State::Up {
            // Leaving Up: back to 1 s at once, no Poll (§6.8.3 only holds
            // the old interval while Up).
            self.polling = false;
        }
        self.advertise(tx, self.config.required_min_rx);
    }

    /// A packet now (a state change, §6.8.7 allows it) and the timer
    /// restarted from here.
    fn send_now(&mut self, out: &mut Vec<Action>, jitter: Jitter) {
        out.push(Action::Send(self.packet(self.polling, false)));
        out.push(Action::StartTxTimer(self.jittered(jitter)));
    }

    fn packet(&self, poll: bool, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.config.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.desired_min_tx,
            required_min_rx: self.required_min_rx,
            required_min_echo_rx: 0,
        }
    }
}

#[cfg(test)]
#[path = "fsm_tests.rs"]
mod tests;
