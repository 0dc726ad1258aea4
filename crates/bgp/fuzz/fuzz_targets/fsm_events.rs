#![no_main]
//! Random event sequences through the pure BGP FSM; see README.md for
//! the invariants checked.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bgp::fsm::{Action, Event, Fsm, FsmConfig, State};
use bgp::negotiate::{build_open, LocalIdentity};
use bgp::{NeighborConfig, PolicyRef};
use libfuzzer_sys::fuzz_target;
use wire::{Capability, ExtendedNextHopEntry, Family, LinkLocalForm, Notification, Open};

const LOCAL_AS: u32 = 65002;
const REMOTE_AS: u32 = 65001;
const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Reads bytes off the front of the fuzz input, zero once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn config(passive: bool, hold: u16) -> FsmConfig {
    let neighbor = NeighborConfig {
        address: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        interface: Some("eth0".into()),
        remote_as: REMOTE_AS,
        port: 179,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_next_hop: true,
        passive,
        hold_time: hold,
        connect_retry: Duration::from_secs(5),
        import: PolicyRef::AcceptAll,
        export: PolicyRef::AcceptAll,
        max_prefix: None,
        link_local_form: LinkLocalForm::Native,
        description: None,
        password: None,
        ttl_security: false,
        graceful_restart: Default::default(),
    };
    FsmConfig {
        identity: LocalIdentity {
            local_as: LOCAL_AS,
            remote_as: REMOTE_AS,
            router_id: LOCAL_ID,
        },
        open: build_open(&neighbor, LOCAL_AS, LOCAL_ID, true),
        passive,
        connect_retry_secs: 5,
        idle_hold_base_secs: 1,
        idle_hold_max_secs: 60,
    }
}

fn notification(b: &mut Bytes) -> Notification {
    let code = b.u8() % 9;
    let subcode = b.u8() % 12;
    let len = usize::from(b.u8() % 8);
    Notification {
        code,
        subcode,
        data: (0..len).map(|_| b.u8()).collect(),
    }
}

/// An OPEN that is usually acceptable, with each field sometimes wrong.
fn open(b: &mut Bytes) -> Open {
    let flags = b.u8();
    let version = if flags & 1 != 0 { b.u8() } else { 4 };
    let asn = match (flags >> 1) & 3 {
        0 => REMOTE_AS,
        1 => LOCAL_AS,
        2 => 0,
        _ => b.u32(),
    };
    let hold = match (flags >> 3) & 3 {
        0 => 90,
        1 => 0,
        2 => u16::from(b.u8() % 4),
        _ => b.u16(),
    };
    let router_id = match (flags >> 5) & 3 {
        0 => Ipv4Addr::new(192, 0, 2, 1),
        1 => Ipv4Addr::UNSPECIFIED,
        2 => LOCAL_ID,
        _ => Ipv4Addr::from(b.u32()),
    };
    let mut capabilities = Vec::new();
    let caps = b.u8();
    if caps & 1 != 0 {
        capabilities.push(Capability::Multiprotocol { afi: 1, safi: 1 });
    }
    if caps & 2 != 0 {
        capabilities.push(Capability::Multiprotocol { afi: 2, safi: 1 });
    }
    if caps & 4 != 0 {
        capabilities.push(Capability::Multiprotocol {
            afi: b.u16(),
            safi: b.u8(),
        });
    }
    if caps & 8 != 0 {
        capabilities.push(Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
            afi: 1,
            safi: 1,
            next_hop_afi: 2,
        }]));
    }
    if caps & 16 != 0 {
        capabilities.push(Capability::ExtendedMessage);
    }
    if caps & 32 != 0 {
        capabilities.push(Capability::FourOctetAs(asn));
    }
    if caps & 64 != 0 {
        capabilities.push(Capability::RouteRefresh);
    }
    let other_params = if caps & 128 != 0 {
        vec![(b.u8(), vec![b.u8()])]
    } else {
        Vec::new()
    };
    Open {
        version,
        my_as: u16::try_from(asn).unwrap_or(wire::AS_TRANS),
        hold_time: hold,
        router_id,
        capabilities,
        other_params,
    }
}

fn event(b: &mut Bytes) -> Event {
    match b.u8() % 20 {
        0 => Event::ManualStart,
        1 => Event::ManualStop(notification(b)),
        2 => Event::ErrorStop(notification(b)),
        3 => Event::IdleHoldTimerExpires,
        4 => Event::ConnectRetryTimerExpires,
        5 => Event::HoldTimerExpires,
        6 => Event::KeepaliveTimerExpires,
        7 => Event::SendHoldTimerExpires,
        8 | 9 => Event::TcpConnected,
        10 => Event::TcpConnectionFails,
        11 | 12 => Event::OpenReceived(Box::new(open(b))),
        13 | 14 => Event::KeepaliveReceived,
        15 => Event::UpdateReceived,
        16 => Event::RouteRefreshReceived,
        17 => Event::NotificationReceived(notification(b)),
        18 => Event::MessageError(notification(b)),
        _ => {
            if b.u8() & 1 == 0 {
                Event::OpenCollisionDump
            } else {
                Event::ConnectionReplaced
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mode = b.u8();
    let hold = match mode >> 1 & 3 {
        0 => 90,
        1 => 0,
        2 => 3,
        _ => 240,
    };
    let mut fsm = Fsm::new(config(mode & 1 != 0, hold));
    let mut steps = 0;
    while !b.empty() && steps < 512 {
        steps += 1;
        let before = fsm.state();
        let ev = event(&mut b);
        let manual_stop = matches!(ev, Event::ManualStop(_));
        let actions = fsm.handle(ev);
        let after = fsm.state();
        let mut established = 0;
        let mut down = 0;
        for a in &actions {
            match a {
                Action::StartTimer(t, secs) => assert!(*secs > 0, "timer {t:?} started with 0 s"),
                Action::Established(neg) => {
                    established += 1;
                    assert!(neg.hold_time == 0 || neg.hold_time >= 3, "hold {}", neg.hold_time);
                    assert_eq!(neg.peer_as, REMOTE_AS);
                }
                Action::Down(_) => down += 1,
                Action::SendOpen(_) => assert_eq!(after, State::OpenSent, "OPEN sent from {before:?}"),
                _ => {}
            }
        }
        let entered = before != State::Established && after == State::Established;
        let left = before == State::Established && after != State::Established;
        assert_eq!(established, usize::from(entered), "{before:?} -> {after:?}: {actions:?}");
        assert_eq!(down, usize::from(left), "{before:?} -> {after:?}: {actions:?}");
        if after == State::Established || after == State::OpenConfirm {
            assert!(fsm.negotiated().is_some(), "{after:?} without negotiated parameters");
        }
        if matches!(after, State::OpenSent | State::OpenConfirm | State::Established) {
            assert!(!fsm.accepts_incoming());
        }
        if manual_stop {
            assert_eq!(after, State::Idle, "ManualStop left the FSM in {after:?}");
            assert!(!fsm.accepts_incoming(), "stopped FSM accepts connections");
        }
    }
});
