//! Byte vectors both ways. The `BIRD_*` and `FRR_*` packets were captured
//! with tcpdump between BIRD 2.0.12 (`protocol bfd`, 300 ms x 3) and FRR
//! 8.4 bfdd on a veth with link-local addresses only.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
        .collect()
}

/// BIRD's first packet: Down, your discriminator still 0, 1 s transmit
/// interval until Up (§6.8.3) but 300 ms required receive interval.
const BIRD_DOWN: &str = "20400318 017a4acf 00000000 000f4240 000493e0 00000000";
/// BIRD Up, starting the Poll sequence that lowers its interval to 300 ms.
const BIRD_UP_POLL: &str = "20e00318 017a4acf bb181852 000493e0 000493e0 00000000";
/// BIRD's answer to FRR's Poll.
const BIRD_UP_FINAL: &str = "20d00318 017a4acf bb181852 000493e0 000493e0 00000000";
/// FRR Init, still at 1 s both ways, offering a 50 ms echo interval.
const FRR_INIT: &str = "20800318 bb181852 017a4acf 000f4240 000f4240 0000c350";
/// FRR after BIRD went away: Down with diagnostic 1, discriminator
/// forgotten (§6.8.1).
const FRR_DOWN_EXPIRED: &str = "21400318 bb181852 00000000 000493e0 000493e0 0000c350";

fn check(vector: &str, want: ControlPacket) {
    let bytes = hex(vector);
    assert_eq!(ControlPacket::decode(&bytes), Ok(want), "decode {vector}");
    assert_eq!(want.encode().to_vec(), bytes, "encode {vector}");
}

fn base() -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_discr: 0x017a_4acf,
        your_discr: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
    }
}

#[test]
fn bird_down() {
    check(BIRD_DOWN, base());
}

#[test]
fn bird_up_poll_and_final() {
    let up = ControlPacket {
        state: State::Up,
        your_discr: 0xbb18_1852,
        desired_min_tx: 300_000,
        ..base()
    };
    check(BIRD_UP_POLL, ControlPacket { poll: true, ..up });
    check(BIRD_UP_FINAL, ControlPacket { final_: true, ..up });
}

#[test]
fn frr_init_and_down() {
    let frr = ControlPacket {
        my_discr: 0xbb18_1852,
        required_min_echo_rx: 50_000,
        ..base()
    };
    check(
        FRR_INIT,
        ControlPacket {
            state: State::Init,
            your_discr: 0x017a_4acf,
            required_min_rx: 1_000_000,
            ..frr
        },
    );
    check(
        FRR_DOWN_EXPIRED,
        ControlPacket {
            diag: Diag::ControlDetectionTimeExpired,
            desired_min_tx: 300_000,
            ..frr
        },
    );
}

#[test]
fn every_flag_and_diag_round_trips() {
    let p = ControlPacket {
        diag: Diag::Reserved(31),
        state: State::AdminDown,
        cpi: true,
        demand: true,
        detect_mult: 255,
        my_discr: u32::MAX,
        desired_min_tx: u32::MAX,
        required_min_rx: 1,
        required_min_echo_rx: 7,
        ..base()
    };
    check("3f0aff18 ffffffff 00000000 ffffffff 00000001 00000007", p);
    for code in 0..32u8 {
        assert_eq!(Diag::from_code(code).code(), code);
    }
}

fn with(vector: &str, at: usize, byte: u8) -> Vec<u8> {
    let mut b = hex(vector);
    b[at] = byte;
    b
}

#[test]
fn reception_checks_of_6_8_6() {
    let up = BIRD_UP_POLL;
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (hex(up)[..23].to_vec(), DecodeError::Truncated(23)),
        (vec![], DecodeError::Truncated(0)),
        (with(up, 0, 0x40), DecodeError::Version(2)),
        (with(up, 0, 0x00), DecodeError::Version(0)),
        (
            with(up, 3, 23),
            DecodeError::Length {
                length: 23,
                available: 24,
            },
        ),
        (
            with(up, 3, 25),
            DecodeError::Length {
                length: 25,
                available: 24,
            },
        ),
        (with(up, 2, 0), DecodeError::ZeroDetectMult),
        (with(up, 1, 0xc1), DecodeError::Multipoint),
        (
            hex("20400318 00000000 00000000 000f4240 000493e0 00000000"),
            DecodeError::ZeroMyDiscriminator,
        ),
        (
            hex("20c00318 017a4acf 00000000 000493e0 000493e0 00000000"),
            DecodeError::ZeroYourDiscriminator(State::Up),
        ),
        (
            hex("20800318 017a4acf 00000000 000493e0 000493e0 00000000"),
            DecodeError::ZeroYourDiscriminator(State::Init),
        ),
        // A set, length 26 covering a 2-byte auth header: still refused.
        (
            hex("20c4031a 017a4acf bb181852 000493e0 000493e0 00000000 0102"),
            DecodeError::AuthNotConfigured,
        ),
        // A set but no room for the auth section.
        (
            with(up, 1, 0xc4),
            DecodeError::Length {
                length: 24,
                available: 24,
            },
        ),
        (with(up, 1, 0xf0), DecodeError::PollAndFinal),
    ];
    for (bytes, want) in cases {
        assert_eq!(ControlPacket::decode(&bytes), Err(want), "{bytes:02x?}");
    }
}

#[test]
fn your_discriminator_zero_is_fine_when_down_or_admin_down() {
    assert!(ControlPacket::decode(&hex(BIRD_DOWN)).is_ok());
    let admin = hex("20000318 017a4acf 00000000 000f4240 000493e0 00000000");
    assert_eq!(
        ControlPacket::decode(&admin).map(|p| p.state),
        Ok(State::AdminDown)
    );
}

#[test]
fn trailing_bytes_beyond_length_are_ignored() {
    let mut b = hex(BIRD_DOWN);
    b.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(ControlPacket::decode(&b), Ok(base()));
}

proptest::proptest! {
    #[test]
    fn decode_never_panics_and_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        if let Ok(p) = ControlPacket::decode(&bytes) {
            proptest::prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
        }
    }
}
