//! Message framing (RFC 4271 §4.1) and the four small message types:
//! OPEN (§4.2, RFC 5492, RFC 9072), NOTIFICATION (§4.5), KEEPALIVE (§4.4)
//! and ROUTE-REFRESH (RFC 2918, RFC 7313). UPDATE lives in `update`.

use std::net::Ipv4Addr;

use crate::error::{notify, DecodeError, EncodeError};
use crate::open::{decode_open, encode_open};
use crate::types::*;
use crate::update::{decode_update, encode_update, Decoded};

/// Negotiated session facts the codec needs, used for decode and encode.
/// Default = OPEN-time (all false).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecContext {
    /// RFC 6793 negotiated: AS_PATH and AGGREGATOR carry 4-octet ASNs.
    pub four_octet_as: bool,
    /// RFC 8654: maximum message 65535 instead of 4096.
    pub extended_message: bool,
    /// RFC 8950 negotiated for IPv4 unicast with an IPv6 next hop.
    pub extended_next_hop_ipv4: bool,
}

impl CodecContext {
    /// What two OPENs negotiate: each feature needs both sides'
    /// capability (RFC 6793 §3, RFC 8654 §3, RFC 8950 §4 for the triple
    /// IPv4/unicast/IPv6).
    pub fn negotiate(local: &Open, remote: &Open) -> CodecContext {
        let both = |code| local.has_capability(code) && remote.has_capability(code);
        let enh = |o: &Open| {
            o.extended_next_hop().any(|e| {
                e.afi == AFI_IPV4 && e.safi == SAFI_UNICAST as u16 && e.next_hop_afi == AFI_IPV6
            })
        };
        CodecContext {
            four_octet_as: both(crate::open::cap::FOUR_OCTET_AS),
            extended_message: both(crate::open::cap::EXTENDED_MESSAGE),
            extended_next_hop_ipv4: enh(local) && enh(remote),
        }
    }

    /// Largest UPDATE/NOTIFICATION/ROUTE-REFRESH allowed (RFC 4271 §4.1,
    /// RFC 8654 §4).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

/// Size of the message header: marker, length, type (RFC 4271 §4.1).
pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4.1.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// RFC 8654 §4.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Checks the header of one message: marker all ones, a known type, and a
/// length within the minimum for the type and the negotiated maximum
/// (RFC 4271 §6.1; RFC 8654 §4 keeps OPEN and KEEPALIVE at 4096).
fn check_header(hdr: &[u8; HEADER_LEN], ctx: &CodecContext) -> Result<usize, DecodeError> {
    let [marker @ .., l0, l1, ty] = *hdr;
    if marker.iter().any(|&b| b != 0xff) {
        return Err(DecodeError::BadMarker);
    }
    let length = u16::from_be_bytes([l0, l1]);
    let len = length as usize;
    let (min, max) = match ty {
        msg_type::OPEN => (29, MAX_MESSAGE_LEN),
        msg_type::UPDATE => (23, ctx.max_message_len()),
        msg_type::NOTIFICATION => (21, ctx.max_message_len()),
        msg_type::KEEPALIVE => (19, 19),
        msg_type::ROUTE_REFRESH => (23, ctx.max_message_len()),
        _ => return Err(DecodeError::BadType { msg_type: ty }),
    };
    if len < min || len > max {
        return Err(DecodeError::BadLength { length });
    }
    Ok(len)
}

/// Looks at the start of a receive buffer: `Ok(None)` = need more bytes,
/// `Ok(Some(n))` = a whole message of `n` bytes is there. Checks marker,
/// type and length (RFC 4271 §6.1) so the caller can answer with the
/// NOTIFICATION.
pub fn frame_length(buf: &[u8], ctx: &CodecContext) -> Result<Option<usize>, DecodeError> {
    let Some(hdr) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = check_header(hdr, ctx)?;
    Ok((buf.len() >= len).then_some(len))
}

/// Decodes one whole message (header included).
pub fn decode_message(frame: &[u8], ctx: &CodecContext) -> Result<Decoded, DecodeError> {
    let Some(hdr) = frame.first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::FrameMismatch {
            got: frame.len(),
            length: 0,
        });
    };
    let len = check_header(hdr, ctx)?;
    if len != frame.len() {
        return Err(DecodeError::FrameMismatch {
            got: frame.len(),
            length: len as u16,
        });
    }
    let body = frame.get(HEADER_LEN..).unwrap_or(&[]);
    let plain = |message| Decoded {
        message,
        treat_as_withdraw: None,
        discarded: Vec::new(),
    };
    let [.., ty] = *hdr;
    match ty {
        msg_type::OPEN => decode_open(body).map(|o| plain(Message::Open(o))),
        msg_type::UPDATE => decode_update(body, ctx),
        msg_type::NOTIFICATION => Ok(plain(Message::Notification(decode_notification(body)))),
        msg_type::KEEPALIVE => Ok(plain(Message::Keepalive)),
        _ => decode_route_refresh(frame, body).map(|r| plain(Message::RouteRefresh(r))),
    }
}

fn decode_notification(body: &[u8]) -> Notification {
    match body {
        [code, subcode, data @ ..] => Notification {
            code: *code,
            subcode: *subcode,
            data: data.to_vec(),
        },
        // Unreachable: the header check guarantees two bytes.
        _ => Notification {
            code: 0,
            subcode: 0,
            data: Vec::new(),
        },
    }
}

/// RFC 2918 §3 and RFC 7313 §3.2/§5. Any bytes after the 4-byte body of a
/// normal request are ORF entries (RFC 5291), which via6 does not use and
/// ignores; BoRR/EoRR must be exactly 4 bytes.
fn decode_route_refresh(frame: &[u8], body: &[u8]) -> Result<RouteRefresh, DecodeError> {
    let [a0, a1, subtype, safi, rest @ ..] = body else {
        return Err(DecodeError::RouteRefreshLength {
            message: frame.to_vec(),
        });
    };
    if (*subtype == 1 || *subtype == 2) && !rest.is_empty() {
        return Err(DecodeError::RouteRefreshLength {
            message: frame.to_vec(),
        });
    }
    Ok(RouteRefresh {
        afi: u16::from_be_bytes([*a0, *a1]),
        subtype: *subtype,
        safi: *safi,
    })
}

/// Encodes one message, header included, appended to `out`.
pub fn encode_message(
    msg: &Message,
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let (ty, max) = match msg {
        Message::Open(_) => (msg_type::OPEN, MAX_MESSAGE_LEN),
        Message::Update(_) => (msg_type::UPDATE, ctx.max_message_len()),
        Message::Notification(_) => (msg_type::NOTIFICATION, ctx.max_message_len()),
        Message::Keepalive => (msg_type::KEEPALIVE, MAX_MESSAGE_LEN),
        Message::RouteRefresh(_) => (msg_type::ROUTE_REFRESH, ctx.max_message_len()),
    };
    put_header(out, ty);
    let res = match msg {
        Message::Open(o) => encode_open(o, out),
        Message::Update(u) => encode_update(u, ctx, out),
        Message::Notification(n) => {
            out.push(n.code);
            out.push(n.subcode);
            out.extend_from_slice(&n.data);
            Ok(())
        }
        Message::Keepalive => Ok(()),
        Message::RouteRefresh(r) => {
            out.extend_from_slice(&r.afi.to_be_bytes());
            out.push(r.subtype);
            out.push(r.safi);
            Ok(())
        }
    };
    let res = res.and_then(|()| finish_message(out, start, max));
    if res.is_err() {
        out.truncate(start);
    }
    res
}

/// Appends a header with a zero length, to be patched by `finish_message`.
pub(crate) fn put_header(out: &mut Vec<u8>, ty: u8) {
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, ty]);
}

/// Patches the length of the message that starts at `start`.
pub(crate) fn finish_message(out: &mut [u8], start: usize, max: usize) -> Result<(), EncodeError> {
    let length = out.len() - start;
    if length > max {
        return Err(EncodeError::MessageTooLong { length, max });
    }
    if let Some(f) = out.get_mut(start + 16..start + 18) {
        f.copy_from_slice(&(length as u16).to_be_bytes());
    }
    Ok(())
}

impl Notification {
    /// A Cease NOTIFICATION (RFC 4486 subcodes).
    pub fn cease(subcode: u8) -> Notification {
        Notification {
            code: notify::CEASE,
            subcode,
            data: Vec::new(),
        }
    }
}

impl Open {
    /// An OPEN with version 4 (RFC 4271 §4.2).
    pub fn new(
        my_as: u16,
        hold_time: u16,
        router_id: Ipv4Addr,
        capabilities: Vec<Capability>,
    ) -> Open {
        Open {
            version: 4,
            my_as,
            hold_time,
            router_id,
            capabilities,
            other_params: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_needs_both_sides() {
        let id = Ipv4Addr::new(10, 0, 0, 1);
        let enh = Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
            afi: 1,
            safi: 1,
            next_hop_afi: 2,
        }]);
        let full = Open::new(
            1,
            90,
            id,
            vec![Capability::FourOctetAs(1), Capability::ExtendedMessage, enh],
        );
        assert_eq!(
            CodecContext::negotiate(&full, &full),
            CodecContext {
                four_octet_as: true,
                extended_message: true,
                extended_next_hop_ipv4: true
            }
        );
        let junk = Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
            afi: 1,
            safi: 128,
            next_hop_afi: 2,
        }]);
        let partial = Open::new(1, 90, id, vec![Capability::FourOctetAs(1), junk]);
        assert_eq!(
            CodecContext::negotiate(&full, &partial),
            CodecContext {
                four_octet_as: true,
                extended_message: false,
                extended_next_hop_ipv4: false
            }
        );
    }
}
