#![no_main]
//! Random bytes through the Control packet decoder, and every packet it
//! accepts through a session; see README.md for the invariants checked.
use bfd::{Action, Config, ControlPacket, Event, Jitter, Session};
use libfuzzer_sys::fuzz_target;

/// Our own packets must pass the peer's reception checks (RFC 5880
/// §6.8.6) and timers must never be armed for 0.
fn check(actions: &[Action]) {
    for a in actions {
        match a {
            Action::Send(p) => {
                assert_eq!(ControlPacket::decode(&p.encode()), Ok(*p), "{p:?}")
            }
            Action::StartTxTimer(d) | Action::StartDetectTimer(d) => {
                assert!(!d.is_zero(), "{a:?}")
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // decode never panics; what it accepts survives encode/decode.
    if let Ok(p) = ControlPacket::decode(data) {
        assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
    }
    // The input as a sequence: each chunk is one event, a packet when it
    // decodes, else a timer or an admin command chosen by its first byte.
    let mut s = Session::new(7, Config::default());
    check(&s.start(Jitter(0)));
    for chunk in data.chunks(25) {
        let (&sel, rest) = match chunk.split_first() {
            Some(x) => x,
            None => continue,
        };
        let event = match ControlPacket::decode(rest) {
            Ok(mut p) => {
                if sel & 1 == 0 && p.your_discr != 0 {
                    p.your_discr = 7;
                }
                Event::Received(p)
            }
            Err(_) => match sel % 5 {
                0 => Event::TxTimerExpired,
                1 => Event::DetectTimerExpired,
                2 => Event::AdminDown,
                3 => Event::AdminUp,
                _ => Event::Configure(Config {
                    desired_min_tx: 1 + u32::from(sel) * 10_000,
                    required_min_rx: 1 + u32::from(sel) * 20_000,
                    detect_mult: sel.max(1),
                }),
            },
        };
        check(&s.handle(event, Jitter(sel)));
    }
});
