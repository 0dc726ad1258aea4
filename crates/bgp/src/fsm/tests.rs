use super::*;
use crate::negotiate::build_open;
use std::net::Ipv4Addr;
use wire::{Capability, AS_TRANS};

fn cfg(passive: bool) -> FsmConfig {
    let mut n = crate::negotiate::tests_support::neighbor("fe80::1", 65001);
    n.passive = passive;
    FsmConfig {
        identity: LocalIdentity {
            local_as: 65002,
            remote_as: 65001,
            router_id: Ipv4Addr::new(192, 0, 2, 2),
        },
        open: build_open(&n, 65002, Ipv4Addr::new(192, 0, 2, 2), true),
        passive,
        connect_retry_secs: 5,
        idle_hold_base_secs: 1,
        idle_hold_max_secs: 8,
    }
}

fn peer_open(hold: u16) -> Box<Open> {
    Box::new(Open {
        version: 4,
        my_as: 65001,
        hold_time: hold,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::FourOctetAs(65001),
        ],
        other_params: vec![],
    })
}

fn has(actions: &[Action], pred: impl Fn(&Action) -> bool) -> bool {
    actions.iter().any(pred)
}

fn sent(actions: &[Action]) -> Option<(u8, u8)> {
    actions.iter().find_map(|a| match a {
        Action::SendNotification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

/// Drives a fresh FSM to Established and returns it.
fn established() -> Fsm {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(peer_open(90)));
    let a = f.handle(Event::KeepaliveReceived);
    assert!(has(&a, |a| matches!(a, Action::Established(_))));
    f
}

#[test]
fn active_open_to_established() {
    let mut f = Fsm::new(cfg(false));
    let a = f.handle(Event::ManualStart);
    assert_eq!(f.state(), State::Connect);
    assert!(has(&a, |a| *a == Action::Connect));
    assert!(has(&a, |a| *a == Action::StartTimer(Timer::ConnectRetry, 5)));
    let a = f.handle(Event::TcpConnected);
    assert_eq!(f.state(), State::OpenSent);
    assert!(has(
        &a,
        |a| matches!(a, Action::SendOpen(o) if o.my_as == 65002)
    ));
    assert!(has(&a, |a| *a
        == Action::StartTimer(Timer::Hold, OPEN_HOLD_SECS)));
    let a = f.handle(Event::OpenReceived(peer_open(30)));
    assert_eq!(f.state(), State::OpenConfirm);
    assert_eq!(
        a,
        vec![
            Action::StopTimer(Timer::ConnectRetry),
            Action::SendKeepalive,
            Action::StartTimer(Timer::Keepalive, 10),
            Action::StartTimer(Timer::Hold, 30),
        ]
    );
    let a = f.handle(Event::KeepaliveReceived);
    assert_eq!(f.state(), State::Established);
    assert_eq!(a.first(), Some(&Action::StartTimer(Timer::Hold, 30)));
    let neg = a.iter().find_map(|a| match a {
        Action::Established(n) => Some(n.clone()),
        _ => None,
    });
    assert_eq!(neg.map(|n| n.hold_time), Some(30));
    // Keepalives out, hold timer restarted by traffic in.
    let a = f.handle(Event::KeepaliveTimerExpires);
    assert_eq!(
        a,
        vec![
            Action::SendKeepalive,
            Action::StartTimer(Timer::Keepalive, 10)
        ]
    );
    let a = f.handle(Event::UpdateReceived);
    assert_eq!(a, vec![Action::StartTimer(Timer::Hold, 30)]);
}

#[test]
fn passive_waits_in_active() {
    let mut f = Fsm::new(cfg(true));
    let a = f.handle(Event::ManualStart);
    assert_eq!(f.state(), State::Active);
    assert!(!has(&a, |a| *a == Action::Connect));
    let a = f.handle(Event::ConnectRetryTimerExpires);
    assert_eq!(f.state(), State::Active);
    assert!(!has(&a, |a| *a == Action::Connect));
    assert!(f.accepts_incoming());
    f.handle(Event::TcpConnected);
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn connect_failure_retries_after_connect_retry() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    let a = f.handle(Event::TcpConnectionFails);
    assert_eq!(f.state(), State::Active);
    assert!(a.is_empty());
    let a = f.handle(Event::ConnectRetryTimerExpires);
    assert_eq!(f.state(), State::Connect);
    assert!(has(&a, |a| *a == Action::Connect));
    // A hung attempt is abandoned and retried.
    let a = f.handle(Event::ConnectRetryTimerExpires);
    assert_eq!(a[1..], [Action::Disconnect, Action::Connect]);
}

#[test]
fn hold_timer_expiry_sends_4_0_and_backs_off() {
    let mut f = established();
    let a = f.handle(Event::HoldTimerExpires);
    assert_eq!(sent(&a), Some((4, 0)));
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
    assert!(has(&a, |a| *a == Action::Disconnect));
    assert!(has(&a, |a| *a == Action::StartTimer(Timer::IdleHold, 1)));
    assert_eq!(f.state(), State::Idle);
    assert!(f.accepts_incoming(), "back-off slows our connects only");
    assert_eq!(
        f.last_error().map(|e| e.to_string()).as_deref(),
        Some("sent NOTIFICATION 4/0 (hold timer expired)")
    );
    // Automatic restart after the idle hold.
    let a = f.handle(Event::IdleHoldTimerExpires);
    assert_eq!(f.state(), State::Connect);
    assert!(has(&a, |a| *a == Action::Connect));
}

#[test]
fn flapping_backs_off_exponentially_with_cap() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    let mut holds = Vec::new();
    for _ in 0..6 {
        f.handle(Event::TcpConnected);
        let a = f.handle(Event::NotificationReceived(cease_notification(5, None)));
        holds.extend(a.iter().filter_map(|a| match a {
            Action::StartTimer(Timer::IdleHold, s) => Some(*s),
            _ => None,
        }));
        f.handle(Event::IdleHoldTimerExpires);
    }
    assert_eq!(holds, vec![1, 2, 4, 8, 8, 8]);
    // ManualStart clears the back-off.
    f.handle(Event::ManualStop(cease_notification(2, None)));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    let a = f.handle(Event::TcpConnectionFails);
    assert!(has(&a, |a| *a == Action::StartTimer(Timer::IdleHold, 1)));
}

#[test]
fn stable_session_clears_backoff() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    for _ in 0..3 {
        f.handle(Event::TcpConnected);
        f.handle(Event::TcpConnectionFails);
        f.handle(Event::IdleHoldTimerExpires);
    }
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(peer_open(90)));
    f.handle(Event::KeepaliveReceived);
    for _ in 0..2 {
        f.handle(Event::KeepaliveTimerExpires);
    }
    let a = f.handle(Event::TcpConnectionFails);
    assert!(
        has(&a, |a| *a == Action::StartTimer(Timer::IdleHold, 1)),
        "{a:?}"
    );
}

#[test]
fn bad_open_answered_with_open_error() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    let mut o = peer_open(90);
    o.router_id = Ipv4Addr::UNSPECIFIED;
    let a = f.handle(Event::OpenReceived(o));
    assert_eq!(sent(&a), Some((2, 3)));
    assert_eq!(f.state(), State::Idle);
    assert!(
        !has(&a, |a| matches!(a, Action::Down(_))),
        "never was Established"
    );

    for (mutate, sub) in [
        (
            Box::new(|o: &mut Open| o.hold_time = 2) as Box<dyn Fn(&mut Open)>,
            6,
        ),
        (Box::new(|o: &mut Open| o.version = 5), 1),
        (
            Box::new(|o: &mut Open| {
                o.my_as = AS_TRANS;
                o.capabilities = vec![Capability::FourOctetAs(70000)];
            }),
            2,
        ),
    ] {
        let mut f = Fsm::new(cfg(false));
        f.handle(Event::ManualStart);
        f.handle(Event::TcpConnected);
        let mut o = peer_open(90);
        mutate(&mut o);
        let a = f.handle(Event::OpenReceived(o));
        assert_eq!(sent(&a), Some((2, sub)));
    }
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    assert_eq!(sent(&f.handle(Event::UpdateReceived)), Some((5, 1)));

    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(peer_open(90)));
    assert_eq!(sent(&f.handle(Event::UpdateReceived)), Some((5, 2)));

    let mut f = established();
    let a = f.handle(Event::OpenReceived(peer_open(90)));
    assert_eq!(sent(&a), Some((5, 3)));
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
}

#[test]
fn decode_errors_are_answered_with_their_notification() {
    let mut f = established();
    let n = Notification {
        code: 3,
        subcode: 1,
        data: vec![],
    };
    let a = f.handle(Event::MessageError(n.clone()));
    assert_eq!(a.first(), Some(&Action::SendNotification(n)));
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
}

#[test]
fn manual_stop_sends_cease_and_stays_down() {
    let mut f = established();
    let n = cease_notification(cease::ADMIN_SHUTDOWN, Some("maintenance"));
    let a = f.handle(Event::ManualStop(n.clone()));
    assert_eq!(a.first(), Some(&Action::SendNotification(n)));
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
    assert!(!has(&a, |a| matches!(a, Action::StartTimer(..))));
    assert_eq!(f.state(), State::Idle);
    assert!(!f.accepts_incoming());
    assert!(f.handle(Event::IdleHoldTimerExpires).is_empty());
    assert_eq!(f.state(), State::Idle);
    // An incoming connection while stopped is refused.
    assert_eq!(f.handle(Event::TcpConnected), vec![Action::Disconnect]);
}

#[test]
fn peer_notification_closes_without_reply() {
    let mut f = established();
    let n = cease_notification(cease::ADMIN_SHUTDOWN, Some("bye"));
    let a = f.handle(Event::NotificationReceived(n));
    assert!(sent(&a).is_none());
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
    assert_eq!(
        f.last_error().map(|e| e.to_string()).as_deref(),
        Some("received NOTIFICATION 6/2 (Cease: administrative shutdown: \"bye\")")
    );
}

#[test]
fn collision_dump_sends_cease_7() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(peer_open(90)));
    let a = f.handle(Event::OpenCollisionDump);
    assert_eq!(sent(&a), Some((6, 7)));
    assert_eq!(f.state(), State::Idle);
    assert_eq!(
        resolve_collision(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)),
        CollisionWinner::Ours
    );
    assert_eq!(
        resolve_collision(Ipv4Addr::new(9, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)),
        CollisionWinner::Theirs
    );
}

#[test]
fn connection_replaced_restarts_on_new_connection() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(peer_open(90)));
    assert_eq!(f.state(), State::OpenConfirm);
    let a = f.handle(Event::ConnectionReplaced);
    assert_eq!(f.state(), State::OpenSent);
    assert!(f.negotiated().is_none());
    assert!(has(&a, |a| matches!(a, Action::SendOpen(_))));
    assert!(!has(&a, |a| *a == Action::Disconnect));
    f.handle(Event::OpenReceived(peer_open(90)));
    f.handle(Event::KeepaliveReceived);
    assert_eq!(f.state(), State::Established);
    assert!(f.handle(Event::ConnectionReplaced).is_empty());
    assert_eq!(f.state(), State::Established);
}

#[test]
fn max_prefix_stop_waits_the_longest_idle_hold() {
    let mut f = established();
    let a = f.handle(Event::ErrorStop(max_prefix_notification(1, 1, 100)));
    assert_eq!(sent(&a), Some((6, 1)));
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
    assert!(has(&a, |a| *a == Action::StartTimer(Timer::IdleHold, 8)));
    assert!(!f.accepts_incoming(), "held down after max-prefix");
    assert_eq!(f.handle(Event::TcpConnected), vec![Action::Disconnect]);
    f.handle(Event::IdleHoldTimerExpires);
    assert_eq!(f.state(), State::Connect);
    assert!(f.accepts_incoming());
}

#[test]
fn link_down_ends_the_session_at_once() {
    let mut f = established();
    let a = f.handle(Event::LinkDown("eth0".into()));
    assert!(sent(&a).is_none());
    assert!(has(&a, |a| *a == Action::Down(crate::graceful::DownKind::Hard)));
    assert_eq!(
        f.last_error().map(|e| e.to_string()).as_deref(),
        Some("interface eth0 went down")
    );
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn hold_time_zero_runs_no_timers() {
    let mut f = Fsm::new(cfg(false));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    let a = f.handle(Event::OpenReceived(peer_open(0)));
    assert!(has(&a, |a| *a == Action::StopTimer(Timer::Hold)));
    assert!(!has(&a, |a| matches!(
        a,
        Action::StartTimer(Timer::Keepalive, _)
    )));
    let a = f.handle(Event::KeepaliveReceived);
    assert!(!has(&a, |a| matches!(a, Action::StartTimer(..))));
    assert_eq!(f.state(), State::Established);
}

#[test]
fn incoming_taken_in_active_and_during_back_off() {
    let mut f = Fsm::new(cfg(true));
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::TcpConnectionFails);
    f.handle(Event::IdleHoldTimerExpires);
    assert_eq!(f.state(), State::Active);
    f.handle(Event::ManualStop(cease_notification(2, None)));
    f.handle(Event::ManualStart);
    assert_eq!(f.state(), State::Active);
    // Same via Idle without hold: enabled, idle hold not running.
    let mut g = Fsm::new(cfg(false));
    g.handle(Event::ManualStart);
    g.handle(Event::TcpConnected);
    g.handle(Event::TcpConnectionFails);
    assert_eq!(g.state(), State::Idle);
    assert!(g.accepts_incoming());
    let a = g.handle(Event::TcpConnected);
    assert_eq!(g.state(), State::OpenSent);
    assert!(has(&a, |a| matches!(a, Action::SendOpen(_))));
    assert!(has(&a, |a| *a == Action::StopTimer(Timer::IdleHold)));
}

#[test]
fn shutdown_communication_round_trip_and_limits() {
    let n = cease_notification(cease::ADMIN_SHUTDOWN, Some("planned work"));
    assert_eq!(n.data[0], 12);
    assert_eq!(shutdown_communication(&n).as_deref(), Some("planned work"));
    let long = "é".repeat(200); // 400 bytes
    let n = cease_notification(cease::ADMIN_RESET, Some(&long));
    assert_eq!(usize::from(n.data[0]), n.data.len() - 1);
    assert!(n.data.len() - 1 <= 255);
    assert_eq!(
        shutdown_communication(&n).map(|s| s.chars().count()),
        Some(127)
    );
    // Other subcodes carry no text; malformed text is ignored.
    assert!(cease_notification(cease::PEER_DECONFIGURED, Some("x"))
        .data
        .is_empty());
    let bad = Notification {
        code: 6,
        subcode: 2,
        data: vec![10, b'a'],
    };
    assert_eq!(shutdown_communication(&bad), None);
    let m = max_prefix_notification(1, 1, 1000);
    assert_eq!(m.data, vec![0, 1, 1, 0, 0, 3, 0xe8]);
}

/// R and F go in the first OPEN after a restart only: once a session was
/// Established the restart is over, and a reconnect says so.
#[test]
fn restart_bits_only_until_the_first_session() {
    let gr_of = |a: &[Action]| {
        a.iter().find_map(|a| match a {
            Action::SendOpen(o) => o.capabilities.iter().find_map(|c| match c {
                Capability::GracefulRestart(g) => Some(g.clone()),
                _ => None,
            }),
            _ => None,
        })
    };
    let mut n = crate::negotiate::tests_support::neighbor("fe80::1", 65001);
    n.graceful_restart.enabled = true;
    n.graceful_restart.keeps_forwarding = true;
    n.graceful_restart.restarting = true;
    let mut c = cfg(false);
    c.open = build_open(&n, 65002, Ipv4Addr::new(192, 0, 2, 2), true);
    let mut f = Fsm::new(c);
    f.handle(Event::ManualStart);
    let first = gr_of(&f.handle(Event::TcpConnected)).expect("capability 64");
    assert_ne!(first.restart_flags & crate::graceful::FLAG_RESTARTING, 0);
    assert!(first
        .families
        .iter()
        .all(|(_, _, fl)| fl & crate::graceful::FAMILY_FORWARDING != 0));
    assert!(!first.families.is_empty());
    f.handle(Event::OpenReceived(peer_open(90)));
    f.handle(Event::KeepaliveReceived);
    assert_eq!(f.state(), State::Established);
    f.handle(Event::TcpConnectionFails);
    assert_eq!(f.state(), State::Idle);
    f.handle(Event::IdleHoldTimerExpires);
    let again = gr_of(&f.handle(Event::TcpConnected)).expect("capability 64");
    assert_eq!(again.restart_flags & crate::graceful::FLAG_RESTARTING, 0);
    assert_eq!(again.families.len(), first.families.len());
    assert!(again
        .families
        .iter()
        .all(|(_, _, fl)| fl & crate::graceful::FAMILY_FORWARDING == 0));
}

/// An Established session where both sides sent graceful restart, the
/// peer with N or without.
fn established_with_gr(peer_n: bool) -> Fsm {
    let mut n = crate::negotiate::tests_support::neighbor("fe80::1", 65001);
    n.graceful_restart.enabled = true;
    let mut c = cfg(false);
    c.open = build_open(&n, 65002, Ipv4Addr::new(192, 0, 2, 2), true);
    let mut open = peer_open(90);
    open.capabilities
        .push(Capability::GracefulRestart(wire::GracefulRestart {
            restart_flags: if peer_n {
                crate::graceful::FLAG_NOTIFICATION
            } else {
                0
            },
            restart_time: 120,
            families: vec![(1, 1, crate::graceful::FAMILY_FORWARDING)],
        }));
    let mut f = Fsm::new(c);
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(open));
    f.handle(Event::KeepaliveReceived);
    assert_eq!(f.state(), State::Established);
    f
}

/// RFC 5882 §4.3.2: a BFD Down taken as the peer restarting keeps its
/// routes through graceful restart: Cease/10 itself (not a Hard Reset)
/// where N was negotiated, no NOTIFICATION without N (RFC 4724 §4).
#[test]
fn bfd_down_taken_as_a_restart_keeps_the_routes() {
    let graceful = |a: &[Action]| {
        has(a, |a| {
            matches!(a, Action::Down(crate::graceful::DownKind::Graceful { .. }))
        })
    };
    let mut f = established_with_gr(true);
    let a = f.handle(Event::BfdDownRestart);
    assert_eq!(sent(&a), Some((code::CEASE, cease::BFD_DOWN)));
    assert!(graceful(&a), "{a:?}");
    assert!(has(&a, |a| *a == Action::Disconnect));
    assert_eq!(
        f.last_error(),
        Some(&SessionError::BfdDownRestart { notified: true })
    );

    let mut f = established_with_gr(false);
    let a = f.handle(Event::BfdDownRestart);
    assert_eq!(sent(&a), None, "a NOTIFICATION would end the restart");
    assert!(graceful(&a), "{a:?}");

    // Cease/10 as an error stop (the default coupling) is never graceful.
    let mut f = established_with_gr(true);
    let a = f.handle(Event::ErrorStop(cease_notification(cease::BFD_DOWN, None)));
    assert!(!graceful(&a), "{a:?}");
}
