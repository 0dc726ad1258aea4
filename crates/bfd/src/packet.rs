//! The BFD Control packet (RFC 5880 §4.1) and the reception checks of
//! §6.8.6 that need nothing but the packet itself. Bytes in, a typed
//! packet out, and back; a packet that §6.8.6 says to discard is a typed
//! [`DecodeError`], never a panic.
#![forbid(unsafe_code)]

use std::fmt;

/// Length of a Control packet without authentication (RFC 5880 §4.1).
pub const MIN_LEN: usize = 24;
/// With the Authentication Section, at least its 2-byte header (§6.8.6).
pub const MIN_LEN_AUTH: usize = 26;
/// The only version there is (§4.1).
pub const VERSION: u8 = 1;

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

/// Session states as carried in the Sta field (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Diagnostic codes (§4.1); values 9-31 are reserved but must survive a
/// decode/encode round trip, so they are kept as `Reserved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// 9..=31.
    Reserved(u8),
}

impl Diag {
    /// The 5-bit code; anything above 31 is masked off.
    pub fn from_code(c: u8) -> Diag {
        match c & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            n => Diag::Reserved(n),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(n) => n & 0x1f,
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Diag::None => "none",
            Diag::ControlDetectionTimeExpired => "control detection time expired",
            Diag::EchoFunctionFailed => "echo function failed",
            Diag::NeighborSignaledSessionDown => "neighbor signaled session down",
            Diag::ForwardingPlaneReset => "forwarding plane reset",
            Diag::PathDown => "path down",
            Diag::ConcatenatedPathDown => "concatenated path down",
            Diag::AdministrativelyDown => "administratively down",
            Diag::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Diag::Reserved(n) => return write!(f, "reserved ({n})"),
        };
        f.write_str(s)
    }
}

/// One Control packet. Intervals are in microseconds, as on the wire.
/// Authentication is not supported, so a packet never carries a section;
/// the Multipoint bit is always 0 (§4.1) and rejected on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    /// C: the forwarding plane is independent of the control plane.
    pub cpi: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

/// Why a received packet is discarded (RFC 5880 §6.8.6, in its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes, shorter than a Control packet")]
    Truncated(usize),
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("length field {length} invalid for {available} bytes received")]
    Length { length: u8, available: usize },
    #[error("detect multiplier 0")]
    ZeroDetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator 0")]
    ZeroMyDiscriminator,
    #[error("your discriminator 0 in state {0}")]
    ZeroYourDiscriminator(State),
    #[error("authentication present but not configured")]
    AuthNotConfigured,
    /// §6.5: "A Control packet MUST NOT have both the Poll (P) and Final
    /// (F) bits set."
    #[error("poll and final both set")]
    PollAndFinal,
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

impl ControlPacket {
    /// Decodes and applies the packet-only reception checks of §6.8.6.
    /// Checks needing session state (discriminator lookup) are the
    /// caller's.
    pub fn decode(b: &[u8]) -> Result<ControlPacket, DecodeError> {
        let Some(&[b0, b1, detect_mult, length]) = b.first_chunk::<4>() else {
            return Err(DecodeError::Truncated(b.len()));
        };
        if b.len() < MIN_LEN {
            return Err(DecodeError::Truncated(b.len()));
        }
        let version = b0 >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let auth = b1 & FLAG_AUTH != 0;
        let min = if auth { MIN_LEN_AUTH } else { MIN_LEN };
        if usize::from(length) < min || usize::from(length) > b.len() {
            return Err(DecodeError::Length {
                length,
                available: b.len(),
            });
        }
        if detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if b1 & FLAG_MULTIPOINT != 0 {
            return Err(DecodeError::Multipoint);
        }
        let state = State::from_bits(b1 >> 6);
        let my_discr = be32(b, 4);
        let your_discr = be32(b, 8);
        if my_discr == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        if auth {
            return Err(DecodeError::AuthNotConfigured);
        }
        let (poll, final_) = (b1 & FLAG_POLL != 0, b1 & FLAG_FINAL != 0);
        if poll && final_ {
            return Err(DecodeError::PollAndFinal);
        }
        Ok(ControlPacket {
            diag: Diag::from_code(b0),
            state,
            poll,
            final_,
            cpi: b1 & FLAG_CPI != 0,
            demand: b1 & FLAG_DEMAND != 0,
            detect_mult,
            my_discr,
            your_discr,
            desired_min_tx: be32(b, 12),
            required_min_rx: be32(b, 16),
            required_min_echo_rx: be32(b, 20),
        })
    }

    /// The 24 bytes of this packet (no authentication section).
    pub fn encode(&self) -> [u8; MIN_LEN] {
        let mut b = [0u8; MIN_LEN];
        b[0] = (VERSION << 5) | self.diag.code();
        let mut flags = self.state.bits() << 6;
        for (set, bit) in [
            (self.poll, FLAG_POLL),
            (self.final_, FLAG_FINAL),
            (self.cpi, FLAG_CPI),
            (self.demand, FLAG_DEMAND),
        ] {
            if set {
                flags |= bit;
            }
        }
        b[1] = flags;
        b[2] = self.detect_mult;
        b[3] = MIN_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
