//! Event replay: every transition of the RFC 5880 §6.8.6 state diagram,
//! Poll/Final, timer negotiation (§6.8.3), detection time (§6.8.4) and
//! transmit jitter (§6.8.7).

use super::*;

const LOCAL: u32 = 0x1111;
const REMOTE: u32 = 0x2222;
const J: Jitter = Jitter(255);

/// A packet from the remote as it looks before it is Up: 1 s transmit,
/// 300 ms receive, multiplier 3.
fn from_remote(state: State) -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_discr: REMOTE,
        your_discr: if state == State::Down { 0 } else { LOCAL },
        desired_min_tx: SLOW_TX_US,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
    }
}

fn rx(state: State) -> Event {
    Event::Received(from_remote(state))
}

fn session() -> Session {
    Session::new(LOCAL, Config::default())
}

/// A session driven into `state` by replaying events.
fn session_in(state: State) -> Session {
    let mut s = session();
    let path: &[Event] = match state {
        State::Down => &[],
        State::Init => &[rx(State::Down)],
        State::Up => &[rx(State::Init)],
        State::AdminDown => &[Event::AdminDown],
    };
    for e in path {
        s.handle(e.clone(), J);
    }
    assert_eq!(s.state(), state, "setting up {state}");
    s
}

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn change(actions: &[Action]) -> Option<(State, State, Diag)> {
    actions.iter().find_map(|a| match a {
        Action::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
        _ => None,
    })
}

/// Input of the §6.8.6 diagram: a received state or the detection timer.
#[derive(Debug, Clone, Copy)]
enum Input {
    Recv(State),
    Timer,
}

#[test]
fn every_transition_of_the_state_diagram() {
    use Input::*;
    use State::*;
    let nsd = Diag::NeighborSignaledSessionDown;
    let expired = Diag::ControlDetectionTimeExpired;
    // (from, input, to, the diagnostic of the change if there is one)
    let table: &[(State, Input, State, Option<Diag>)] = &[
        (Down, Recv(Down), Init, Some(Diag::None)),
        (Down, Recv(Init), Up, Some(Diag::None)),
        (Down, Recv(Up), Down, None),
        (Down, Recv(AdminDown), Down, None),
        (Down, Timer, Down, None),
        (Init, Recv(Down), Init, None),
        (Init, Recv(Init), Up, Some(Diag::None)),
        (Init, Recv(Up), Up, Some(Diag::None)),
        (Init, Recv(AdminDown), Down, Some(nsd)),
        (Init, Timer, Down, Some(expired)),
        (Up, Recv(Down), Down, Some(nsd)),
        (Up, Recv(Init), Up, None),
        (Up, Recv(Up), Up, None),
        (Up, Recv(AdminDown), Down, Some(nsd)),
        (Up, Timer, Down, Some(expired)),
        (AdminDown, Recv(Down), AdminDown, None),
        (AdminDown, Recv(Init), AdminDown, None),
        (AdminDown, Recv(Up), AdminDown, None),
        (AdminDown, Recv(AdminDown), AdminDown, None),
        (AdminDown, Timer, AdminDown, None),
    ];
    for &(from, input, to, diag) in table {
        let mut s = session_in(from);
        let event = match input {
            Recv(st) => rx(st),
            Timer => Event::DetectTimerExpired,
        };
        let out = s.handle(event, J);
        assert_eq!(s.state(), to, "{from} + {input:?}");
        assert_eq!(
            change(&out),
            diag.map(|d| (from, to, d)),
            "{from} + {input:?}: {out:?}"
        );
        if let Some(d) = diag {
            assert_eq!(s.local_diag(), d);
            // A state change goes out at once with the new state.
            assert_eq!(sent(&out).last().map(|p| p.state), Some(to), "{out:?}");
        }
    }
}

#[test]
fn admin_down_and_up_from_every_state() {
    for from in [State::Down, State::Init, State::Up] {
        let mut s = session_in(from);
        let out = s.handle(Event::AdminDown, J);
        assert_eq!(
            change(&out),
            Some((from, State::AdminDown, Diag::AdministrativelyDown))
        );
        assert!(out.contains(&Action::StopDetectTimer));
        let p = sent(&out);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].state, State::AdminDown);
        assert_eq!(p[0].diag, Diag::AdministrativelyDown);
        // Still sent periodically so the peer learns why (§6.8.16).
        let tick = s.handle(Event::TxTimerExpired, J);
        assert_eq!(sent(&tick)[0].state, State::AdminDown);
        let out = s.handle(Event::AdminUp, J);
        assert_eq!(s.state(), State::Down);
        assert_eq!(change(&out).map(|c| c.1), Some(State::Down));
    }
    // Admin commands that change nothing do nothing.
    assert!(session_in(State::AdminDown)
        .handle(Event::AdminDown, J)
        .is_empty());
    assert!(session().handle(Event::AdminUp, J).is_empty());
}

#[test]
fn one_second_until_up_then_poll_to_the_configured_interval() {
    let mut s = session();
    let first = s.start(J);
    let p = sent(&first)[0];
    assert_eq!(
        (p.state, p.desired_min_tx, p.required_min_rx),
        (State::Down, 1_000_000, 300_000)
    );
    assert_eq!(p.your_discr, 0);
    assert_eq!(s.tx_interval(), Duration::from_secs(1));
    s.handle(rx(State::Down), J);
    assert_eq!(s.state(), State::Init);
    assert_eq!(s.tx_interval(), Duration::from_secs(1), "Init is not Up");
    let out = s.handle(rx(State::Up), J);
    assert_eq!(s.state(), State::Up);
    let p = sent(&out)[0];
    assert!(p.poll && !p.final_, "{p:?}");
    assert_eq!(p.desired_min_tx, 300_000);
    assert_eq!(p.your_discr, REMOTE);
    // A faster interval applies at once.
    assert_eq!(s.tx_interval(), Duration::from_millis(300));
    // P on every packet until the Final.
    assert!(sent(&s.handle(Event::TxTimerExpired, J))[0].poll);
    let fin = ControlPacket {
        final_: true,
        ..from_remote(State::Up)
    };
    s.handle(Event::Received(fin), J);
    assert!(!s.polling());
    assert!(!sent(&s.handle(Event::TxTimerExpired, J))[0].poll);
}

#[test]
fn a_poll_is_answered_at_once_with_final() {
    let mut s = session_in(State::Up);
    s.handle(
        Event::Received(ControlPacket {
            final_: true,
            ..from_remote(State::Up)
        }),
        J,
    );
    let poll = ControlPacket {
        poll: true,
        desired_min_tx: 50_000,
        ..from_remote(State::Up)
    };
    let out = s.handle(Event::Received(poll), J);
    let p = sent(&out);
    assert_eq!(p.len(), 1, "{out:?}");
    assert!(p[0].final_ && !p[0].poll);
    assert_eq!(p[0].state, State::Up);
    // Its new transmit interval counts for detection at once (§6.8.4).
    assert_eq!(s.detection_time(), Duration::from_millis(900));
}

/// An Up session whose Poll sequence has finished, at 300 ms x 3 both ways.
fn settled() -> Session {
    let mut s = session_in(State::Up);
    let fast = ControlPacket {
        final_: true,
        desired_min_tx: 300_000,
        ..from_remote(State::Up)
    };
    s.handle(Event::Received(fast), J);
    assert!(!s.polling());
    s
}

#[test]
fn detection_time_is_remote_mult_times_the_slower_side() {
    let mut s = session_in(State::Init);
    // Remote still at 1 s: 3 x max(300 ms, 1 s).
    assert_eq!(s.detection_time(), Duration::from_secs(3));
    let p = ControlPacket {
        desired_min_tx: 100_000,
        detect_mult: 5,
        ..from_remote(State::Up)
    };
    let out = s.handle(Event::Received(p), J);
    // 5 x max(local 300 ms, remote 100 ms)
    assert_eq!(s.detection_time(), Duration::from_millis(1500));
    assert_eq!(
        out[0],
        Action::StartDetectTimer(Duration::from_millis(1500))
    );
    assert_eq!(settled().detection_time(), Duration::from_millis(900));
}

#[test]
fn a_slower_transmit_interval_waits_for_the_final() {
    let mut s = settled();
    let slow = Config {
        desired_min_tx: 600_000,
        ..Config::default()
    };
    let out = s.handle(Event::Configure(slow), J);
    let p = sent(&out);
    assert!(p[0].poll);
    assert_eq!(p[0].desired_min_tx, 600_000);
    assert_eq!(s.tx_interval(), Duration::from_millis(300), "old until F");
    let fin = ControlPacket {
        final_: true,
        desired_min_tx: 300_000,
        ..from_remote(State::Up)
    };
    s.handle(Event::Received(fin), J);
    assert_eq!(s.tx_interval(), Duration::from_millis(600));
}

#[test]
fn a_faster_receive_interval_waits_for_the_final() {
    let mut s = settled();
    let fast = Config {
        required_min_rx: 100_000,
        ..Config::default()
    };
    let out = s.handle(Event::Configure(fast), J);
    assert!(sent(&out)[0].poll);
    assert_eq!(sent(&out)[0].required_min_rx, 100_000);
    let remote_fast = ControlPacket {
        desired_min_tx: 100_000,
        ..from_remote(State::Up)
    };
    s.handle(Event::Received(remote_fast), J);
    assert_eq!(
        s.detection_time(),
        Duration::from_millis(900),
        "old 300 ms until F"
    );
    s.handle(
        Event::Received(ControlPacket {
            final_: true,
            ..remote_fast
        }),
        J,
    );
    assert_eq!(s.detection_time(), Duration::from_millis(300));
}

#[test]
fn leaving_up_returns_to_one_second_without_poll() {
    let mut s = settled();
    let out = s.handle(Event::DetectTimerExpired, J);
    let p = sent(&out)[0];
    assert_eq!(p.state, State::Down);
    assert_eq!(p.desired_min_tx, SLOW_TX_US);
    assert!(!p.poll);
    assert_eq!(p.your_discr, 0, "§6.8.1: forgotten on expiry");
    assert_eq!(s.tx_interval(), Duration::from_secs(1));
}

#[test]
fn detection_expiry_in_down_forgets_the_remote() {
    let mut s = session();
    s.handle(rx(State::Up), J); // stays Down but learns the discriminator
    assert_eq!(s.remote_discr(), REMOTE);
    assert!(s.handle(Event::DetectTimerExpired, J).is_empty());
    assert_eq!(s.remote_discr(), 0);
}

#[test]
fn jitter_is_75_to_100_percent_or_90_with_multiplier_1() {
    let s = settled();
    assert_eq!(s.jittered(Jitter(0)), Duration::from_micros(225_000));
    assert_eq!(s.jittered(Jitter(255)), Duration::from_micros(300_000));
    let one = Config {
        detect_mult: 1,
        ..Config::default()
    };
    let mut s1 = Session::new(LOCAL, one);
    s1.handle(rx(State::Init), J);
    s1.handle(
        Event::Received(ControlPacket {
            final_: true,
            desired_min_tx: 300_000,
            ..from_remote(State::Up)
        }),
        J,
    );
    assert_eq!(s1.jittered(Jitter(0)), Duration::from_micros(225_000));
    assert_eq!(s1.jittered(Jitter(255)), Duration::from_micros(270_000));
}

#[test]
fn transmit_interval_honours_the_remote_receive_interval() {
    let mut s = settled();
    let slow_rx = ControlPacket {
        required_min_rx: 2_000_000,
        ..from_remote(State::Up)
    };
    s.handle(Event::Received(slow_rx), J);
    assert_eq!(s.tx_interval(), Duration::from_secs(2));
    // A remote that wants nothing gets nothing periodic (§6.8.7) ...
    s.handle(
        Event::Received(ControlPacket {
            required_min_rx: 0,
            ..slow_rx
        }),
        J,
    );
    assert!(s.handle(Event::TxTimerExpired, J).is_empty());
    // ... until it asks again.
    let out = s.handle(Event::Received(from_remote(State::Up)), J);
    assert!(out.contains(&Action::StartTxTimer(Duration::from_millis(300))));
}

#[test]
fn a_packet_for_another_discriminator_is_ignored() {
    let mut s = session_in(State::Init);
    let before = s.clone();
    let stray = ControlPacket {
        your_discr: LOCAL + 1,
        ..from_remote(State::Up)
    };
    assert!(s.handle(Event::Received(stray), J).is_empty());
    assert_eq!(s, before);
}

/// Two sessions wired back to back come Up and agree on 300 ms.
#[test]
fn two_sessions_come_up_against_each_other() {
    let mut a = Session::new(1, Config::default());
    let mut b = Session::new(2, Config::default());
    let mut to_b = sent(&a.start(J));
    let mut to_a = sent(&b.start(J));
    for _ in 0..6 {
        let mut next_a = Vec::new();
        for p in to_b.drain(..) {
            next_a.extend(sent(&b.handle(Event::Received(p), J)));
        }
        let mut next_b = Vec::new();
        for p in to_a.drain(..) {
            next_b.extend(sent(&a.handle(Event::Received(p), J)));
        }
        to_a = next_a;
        to_b = next_b;
        to_b.extend(sent(&a.handle(Event::TxTimerExpired, J)));
        to_a.extend(sent(&b.handle(Event::TxTimerExpired, J)));
    }
    for s in [&a, &b] {
        assert_eq!((s.state(), s.remote_state()), (State::Up, State::Up));
        assert!(!s.polling());
        assert_eq!(s.tx_interval(), Duration::from_millis(300));
        assert_eq!(s.detection_time(), Duration::from_millis(900));
    }
}

/// The driver would spin on a timer of 0: even a 1 us interval (which
/// the config layer refuses anyway) gives a timer of at least 1 us.
#[test]
fn no_timer_is_ever_zero() {
    let tiny = Config {
        desired_min_tx: 1,
        required_min_rx: 1,
        detect_mult: 1,
    };
    let mut s = Session::new(LOCAL, tiny);
    s.handle(rx(State::Init), Jitter(0));
    let p = ControlPacket {
        desired_min_tx: 1,
        required_min_rx: 1,
        final_: true,
        ..from_remote(State::Up)
    };
    let out = s.handle(Event::Received(p), Jitter(0));
    assert_eq!(s.state(), State::Up);
    assert_eq!(s.tx_interval(), Duration::from_micros(1));
    for a in out
        .iter()
        .chain(&s.handle(Event::TxTimerExpired, Jitter(0)))
    {
        if let Action::StartTxTimer(d) | Action::StartDetectTimer(d) = a {
            assert!(!d.is_zero(), "{out:?}");
        }
    }
}

#[test]
fn the_remote_c_bit_outlives_the_detection_timer() {
    let mut s = session_in(State::Up);
    assert!(!s.remote_control_plane_independent());
    let mut p = from_remote(State::Up);
    p.cpi = true;
    s.handle(Event::Received(p), J);
    assert!(s.remote_control_plane_independent());
    // When the remote falls silent, what it last said still decides
    // whether the Down may be a restart (RFC 5882 §4.3.2).
    let out = s.handle(Event::DetectTimerExpired, J);
    assert_eq!(change(&out).map(|c| c.1), Some(State::Down));
    assert!(s.remote_control_plane_independent());
    s.handle(rx(State::Down), J);
    assert!(
        !s.remote_control_plane_independent(),
        "a new packet says C clear"
    );
}
