//! OPEN (RFC 4271 §4.2), capabilities (RFC 5492) and extended optional
//! parameters (RFC 9072). Decoded with nom: this is not a hot path and the
//! nested length-prefixed lists read naturally as parsers.

use std::net::Ipv4Addr;

use nom::multi::length_data;
use nom::number::complete::{be_u16, be_u24, be_u32, be_u8};
use nom::{IResult, Parser};

use crate::error::{notify, DecodeError, EncodeError};
use crate::types::*;

type Res<'a, T> = IResult<&'a [u8], T, ()>;

/// Optional parameter type carrying capabilities (RFC 5492 §4).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 §2: "Non-Ext OP Type" marking the extended form.
const PARAM_EXTENDED: u8 = 255;

/// Capability codes (IANA).
pub mod cap {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
}

fn open_err(subcode: u8, data: Vec<u8>, reason: &'static str) -> DecodeError {
    DecodeError::Open {
        subcode,
        data,
        reason,
    }
}

fn malformed(reason: &'static str) -> DecodeError {
    open_err(notify::OPEN_UNSPECIFIC, Vec::new(), reason)
}

struct Fixed {
    version: u8,
    my_as: u16,
    hold_time: u16,
    router_id: u32,
    opt_len: u8,
}

fn fixed(i: &[u8]) -> Res<'_, Fixed> {
    let (i, (version, my_as, hold_time, router_id, opt_len)) =
        (be_u8, be_u16, be_u16, be_u32, be_u8).parse(i)?;
    Ok((
        i,
        Fixed {
            version,
            my_as,
            hold_time,
            router_id,
            opt_len,
        },
    ))
}

/// Decodes an OPEN body (after the header).
pub(crate) fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let (params, f) = fixed(body).map_err(|_| DecodeError::BadLength {
        length: (body.len() + crate::HEADER_LEN) as u16,
    })?;
    // RFC 4271 §6.2: version 4 only; the data names the largest supported.
    if f.version != 4 {
        return Err(open_err(
            notify::UNSUPPORTED_VERSION,
            vec![0, 4],
            "unsupported version",
        ));
    }
    // RFC 4271 §6.2: hold time 1 or 2 seconds is unacceptable.
    if f.hold_time == 1 || f.hold_time == 2 {
        return Err(open_err(
            notify::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
            "hold time of 1 or 2 seconds",
        ));
    }
    // RFC 6286 §2.2: the BGP Identifier must be non-zero.
    if f.router_id == 0 {
        return Err(open_err(
            notify::BAD_BGP_IDENTIFIER,
            Vec::new(),
            "BGP identifier is zero",
        ));
    }
    let extended = f.opt_len == 255 && params.first() == Some(&PARAM_EXTENDED);
    let list = if extended {
        // RFC 9072 §2: 255, 255, then a 2-octet length; parameters then
        // have 2-octet lengths too.
        let (rest, list) = (be_u8::<_, ()>, length_data(be_u16))
            .parse(params)
            .map_err(|_| malformed("extended optional parameters overrun the message"))?;
        if !rest.is_empty() {
            return Err(DecodeError::BadLength {
                length: (body.len() + crate::HEADER_LEN) as u16,
            });
        }
        list.1
    } else {
        // RFC 4271 §6.2: the parameters must fill the message exactly; when
        // Opt Parm Len disagrees they cannot be located, an OPEN error with
        // the Unspecific subcode (the header's Length is not at fault).
        if params.len() != f.opt_len as usize {
            return Err(malformed("Opt Parm Len disagrees with the message length"));
        }
        params
    };
    let mut open = Open {
        version: f.version,
        my_as: f.my_as,
        hold_time: f.hold_time,
        router_id: Ipv4Addr::from(f.router_id),
        capabilities: Vec::new(),
        other_params: Vec::new(),
    };
    let mut rest = list;
    while !rest.is_empty() {
        let parsed: Res<'_, (u8, &[u8])> = if extended {
            (be_u8, length_data(be_u16)).parse(rest)
        } else {
            (be_u8, length_data(be_u8)).parse(rest)
        };
        let (next, (ty, value)) =
            parsed.map_err(|_| malformed("optional parameter overruns the parameter list"))?;
        rest = next;
        if ty == PARAM_CAPABILITIES {
            decode_capabilities(value, &mut open.capabilities)?;
        } else {
            open.other_params.push((ty, value.to_vec()));
        }
    }
    Ok(open)
}

fn decode_capabilities(mut rest: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    while !rest.is_empty() {
        let (next, (code, value)) = (be_u8::<_, ()>, length_data(be_u8))
            .parse(rest)
            .map_err(|_| malformed("capability overruns its optional parameter"))?;
        rest = next;
        out.push(
            decode_capability(code, value)
                .ok_or_else(|| malformed("malformed capability value"))?,
        );
    }
    Ok(())
}

/// Runs a parser that must consume `value` entirely.
fn all<'a, T>(value: &'a [u8], p: impl Parser<&'a [u8], Output = T, Error = ()>) -> Option<T> {
    nom::combinator::all_consuming(p)
        .parse(value)
        .ok()
        .map(|(_, v)| v)
}

fn decode_capability(code: u8, v: &[u8]) -> Option<Capability> {
    use nom::multi::many0;
    Some(match code {
        // RFC 4760 §8: AFI, reserved, SAFI.
        cap::MULTIPROTOCOL => {
            let (afi, _, safi) = all(v, (be_u16, be_u8, be_u8))?;
            Capability::Multiprotocol { afi, safi }
        }
        cap::ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
        // RFC 8950 §4: any number of triples, unknown ones included.
        cap::EXTENDED_NEXT_HOP => Capability::ExtendedNextHop(all(
            v,
            many0(
                (be_u16, be_u16, be_u16).map(|(afi, safi, next_hop_afi)| ExtendedNextHopEntry {
                    afi,
                    safi,
                    next_hop_afi,
                }),
            ),
        )?),
        cap::EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
        // RFC 4724 §3: 4 bits of flags, 12 bits of restart time, then
        // (AFI, SAFI, flags) per family.
        cap::GRACEFUL_RESTART => {
            let (head, families) = all(v, (be_u16, many0((be_u16, be_u8, be_u8))))?;
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: (head >> 12) as u8,
                restart_time: head & 0x0fff,
                families,
            })
        }
        cap::FOUR_OCTET_AS => Capability::FourOctetAs(all(v, be_u32)?),
        // RFC 7911 §4.
        cap::ADD_PATH => Capability::AddPath(all(
            v,
            many0(
                (be_u16, be_u8, be_u8).map(|(afi, safi, send_receive)| AddPathEntry {
                    afi,
                    safi,
                    send_receive,
                }),
            ),
        )?),
        cap::ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
        // RFC 9494 §2: AFI, SAFI, flags, 24-bit stale time.
        cap::LONG_LIVED_GRACEFUL_RESTART => Capability::LongLivedGracefulRestart(all(
            v,
            many0(
                (be_u16, be_u8, be_u8, be_u24).map(|(afi, safi, flags, stale_time)| LlgrEntry {
                    afi,
                    safi,
                    flags,
                    stale_time,
                }),
            ),
        )?),
        // A value on a capability defined as empty (route refresh, extended
        // message, enhanced route refresh) is not understood: it is kept
        // raw, so the capability is not negotiated and the session lives.
        _ => Capability::Unknown {
            code,
            value: v.to_vec(),
        },
    })
}

impl Capability {
    /// The capability code (IANA).
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => cap::MULTIPROTOCOL,
            Capability::RouteRefresh => cap::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => cap::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => cap::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => cap::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => cap::FOUR_OCTET_AS,
            Capability::AddPath(_) => cap::ADD_PATH,
            Capability::EnhancedRouteRefresh => cap::ENHANCED_ROUTE_REFRESH,
            Capability::LongLivedGracefulRestart(_) => cap::LONG_LIVED_GRACEFUL_RESTART,
            Capability::Unknown { code, .. } => *code,
        }
    }

    fn put_value(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.push(0);
                out.push(*safi);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    out.extend_from_slice(&e.afi.to_be_bytes());
                    out.extend_from_slice(&e.safi.to_be_bytes());
                    out.extend_from_slice(&e.next_hop_afi.to_be_bytes());
                }
            }
            Capability::GracefulRestart(gr) => {
                let head = ((gr.restart_flags as u16 & 0x0f) << 12) | (gr.restart_time & 0x0fff);
                out.extend_from_slice(&head.to_be_bytes());
                for (afi, safi, flags) in &gr.families {
                    out.extend_from_slice(&afi.to_be_bytes());
                    out.push(*safi);
                    out.push(*flags);
                }
            }
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::AddPath(entries) => {
                for e in entries {
                    out.extend_from_slice(&e.afi.to_be_bytes());
                    out.push(e.safi);
                    out.push(e.send_receive);
                }
            }
            Capability::LongLivedGracefulRestart(entries) => {
                for e in entries {
                    out.extend_from_slice(&e.afi.to_be_bytes());
                    out.push(e.safi);
                    out.push(e.flags);
                    out.extend_from_slice(&e.stale_time.to_be_bytes()[1..]);
                }
            }
            Capability::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }

    /// Appends code, length and value (RFC 5492 §4).
    fn put(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let at = out.len();
        out.extend_from_slice(&[self.code(), 0]);
        self.put_value(out);
        let len = out.len() - at - 2;
        let len8 = u8::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            what: "capability",
            length: len,
        })?;
        if let Some(l) = out.get_mut(at + 1) {
            *l = len8;
        }
        Ok(())
    }
}

/// Encodes an OPEN body. All capabilities go into one Capabilities
/// parameter (as BIRD does), split into several when one would pass 255
/// bytes; if the parameters together pass 255 bytes the RFC 9072 extended
/// form is used.
pub(crate) fn encode_open(o: &Open, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(o.version);
    out.extend_from_slice(&o.my_as.to_be_bytes());
    out.extend_from_slice(&o.hold_time.to_be_bytes());
    out.extend_from_slice(&o.router_id.octets());

    // Encoded capabilities, grouped into parameter-sized runs.
    let mut groups: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    for c in &o.capabilities {
        let mut one = Vec::new();
        c.put(&mut one)?;
        if current.len() + one.len() > 255 {
            groups.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(&one);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    let params: Vec<(u8, &[u8])> = groups
        .iter()
        .map(|g| (PARAM_CAPABILITIES, g.as_slice()))
        .chain(o.other_params.iter().map(|(t, v)| (*t, v.as_slice())))
        .collect();
    let short_total: usize = params.iter().map(|(_, v)| 2 + v.len()).sum();
    let any_long = params.iter().any(|(_, v)| v.len() > 255);
    if short_total <= 255 && !any_long {
        out.push(short_total as u8);
        for (t, v) in params {
            out.push(t);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        }
    } else {
        let total: usize = params.iter().map(|(_, v)| 3 + v.len()).sum();
        let total16 = u16::try_from(total).map_err(|_| EncodeError::FieldTooLong {
            what: "optional parameters",
            length: total,
        })?;
        out.extend_from_slice(&[255, PARAM_EXTENDED]);
        out.extend_from_slice(&total16.to_be_bytes());
        for (t, v) in params {
            out.push(t);
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
    Ok(())
}

impl Open {
    /// The ASN from the 4-octet AS capability (RFC 6793 §3), if present.
    pub fn four_octet_asn(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The speaker's real ASN: the capability's, else My Autonomous System.
    pub fn asn(&self) -> u32 {
        self.four_octet_asn().unwrap_or(self.my_as as u32)
    }

    /// (AFI, SAFI) pairs of every Multiprotocol capability (RFC 4760 §8).
    pub fn multiprotocol(&self) -> impl Iterator<Item = (u16, u8)> + '_ {
        self.capabilities.iter().filter_map(|c| match c {
            Capability::Multiprotocol { afi, safi } => Some((*afi, *safi)),
            _ => None,
        })
    }

    /// Every Extended Next Hop triple, over all capability-5 entries
    /// (RFC 8950 §4; FRR sends several).
    pub fn extended_next_hop(&self) -> impl Iterator<Item = ExtendedNextHopEntry> + '_ {
        self.capabilities
            .iter()
            .flat_map(|c| match c {
                Capability::ExtendedNextHop(v) => v.as_slice(),
                _ => &[],
            })
            .copied()
    }

    /// True if a capability with this code is present.
    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_message, encode_message, CodecContext, Message};

    /// OPEN with capabilities 1 (IPv4, IPv6), 2, 5, 6, 64, 65 in one
    /// Capabilities parameter, laid out by hand from RFC 4271 §4.2.
    const OPEN_BYTES: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, //
        0x00, 0x45, 0x01, // length 69, OPEN
        0x04, 0xfd, 0xe9, 0x00, 0x5a, 192, 0, 2, 1,    // v4, AS 65001, hold 90, id
        0x28, // opt param len 40
        0x02, 0x26, // capabilities, 38 bytes
        0x01, 0x04, 0x00, 0x01, 0x00, 0x01, // MP IPv4 unicast
        0x01, 0x04, 0x00, 0x02, 0x00, 0x01, // MP IPv6 unicast
        0x02, 0x00, // route refresh
        0x05, 0x06, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02, // ENH: IPv4/unicast via IPv6
        0x06, 0x00, // extended message
        0x40, 0x06, 0x80, 0x78, 0x00, 0x01, 0x01,
        0x80, // GR: R bit, 120 s, IPv4 unicast F bit
        0x41, 0x04, 0x00, 0x00, 0xfd, 0xe9, // 4-octet AS 65001
    ];

    fn sample() -> Open {
        Open::new(
            65001,
            90,
            "192.0.2.1".parse().unwrap(),
            vec![
                Capability::Multiprotocol { afi: 1, safi: 1 },
                Capability::Multiprotocol { afi: 2, safi: 1 },
                Capability::RouteRefresh,
                Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                    afi: 1,
                    safi: 1,
                    next_hop_afi: 2,
                }]),
                Capability::ExtendedMessage,
                Capability::GracefulRestart(GracefulRestart {
                    restart_flags: 8,
                    restart_time: 120,
                    families: vec![(1, 1, 0x80)],
                }),
                Capability::FourOctetAs(65001),
            ],
        )
    }

    #[test]
    fn open_bytes_both_ways() {
        let ctx = CodecContext::default();
        let d = decode_message(OPEN_BYTES, &ctx).unwrap();
        assert_eq!(d.message, Message::Open(sample()));
        let mut out = Vec::new();
        encode_message(&Message::Open(sample()), &ctx, &mut out).unwrap();
        assert_eq!(out, OPEN_BYTES);
    }

    #[test]
    fn capability_helpers() {
        let o = sample();
        assert_eq!(o.asn(), 65001);
        assert_eq!(o.multiprotocol().collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
        assert_eq!(o.extended_next_hop().count(), 1);
        assert!(o.has_capability(cap::EXTENDED_MESSAGE));
        assert!(!o.has_capability(cap::ADD_PATH));
    }

    #[test]
    fn several_enh_entries_and_unknown_triples() {
        // Two capability-5 entries, one with a junk triple (AFI 99).
        let caps = [
            5, 12, 0, 1, 0, 1, 0, 2, 0, 99, 0, 7, 0, 2, 5, 6, 0, 1, 0, 128, 0, 2,
        ];
        let mut out = Vec::new();
        decode_capabilities(&caps, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let o = Open::new(1, 0, "1.1.1.1".parse().unwrap(), out);
        let triples: Vec<_> = o
            .extended_next_hop()
            .map(|e| (e.afi, e.safi, e.next_hop_afi))
            .collect();
        assert_eq!(triples, vec![(1, 1, 2), (99, 7, 2), (1, 128, 2)]);
    }

    #[test]
    fn other_capabilities_round_trip() {
        let caps = vec![
            Capability::AddPath(vec![AddPathEntry {
                afi: 1,
                safi: 1,
                send_receive: 3,
            }]),
            Capability::EnhancedRouteRefresh,
            Capability::LongLivedGracefulRestart(vec![LlgrEntry {
                afi: 2,
                safi: 1,
                flags: 0x80,
                stale_time: 0x123456,
            }]),
            Capability::Unknown {
                code: 73,
                value: b"host".to_vec(),
            },
        ];
        let o = Open::new(23456, 180, "10.0.0.1".parse().unwrap(), caps);
        let ctx = CodecContext::default();
        let mut out = Vec::new();
        encode_message(&Message::Open(o.clone()), &ctx, &mut out).unwrap();
        assert_eq!(
            decode_message(&out, &ctx).unwrap().message,
            Message::Open(o)
        );
    }

    #[test]
    fn extended_optional_parameters_rfc9072() {
        // 60 Multiprotocol capabilities = 360 bytes: needs RFC 9072 framing.
        let caps: Vec<_> = (0..60)
            .map(|i| Capability::Multiprotocol { afi: i, safi: 1 })
            .collect();
        let o = Open::new(65001, 90, "10.0.0.1".parse().unwrap(), caps);
        let ctx = CodecContext::default();
        let mut out = Vec::new();
        encode_message(&Message::Open(o.clone()), &ctx, &mut out).unwrap();
        assert_eq!(&out[28..30], &[255, 255]);
        assert_eq!(
            decode_message(&out, &ctx).unwrap().message,
            Message::Open(o)
        );
    }

    #[test]
    fn empty_capability_with_a_value_is_kept_raw() {
        let mut out = Vec::new();
        decode_capabilities(&[2, 1, 9, 6, 0], &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Capability::Unknown {
                    code: 2,
                    value: vec![9]
                },
                Capability::ExtendedMessage
            ]
        );
        let mut bytes = Vec::new();
        for c in &out {
            c.put(&mut bytes).unwrap();
        }
        assert_eq!(bytes, [2, 1, 9, 6, 0]);
    }

    #[test]
    fn open_errors_map_to_notifications() {
        let ctx = CodecContext::default();
        let mut bad = OPEN_BYTES.to_vec();
        bad[19] = 3;
        let n = decode_message(&bad, &ctx).unwrap_err().notification();
        assert_eq!((n.code, n.subcode, n.data), (2, 1, vec![0, 4]));
        let mut bad = OPEN_BYTES.to_vec();
        bad[22..24].copy_from_slice(&[0, 2]);
        let n = decode_message(&bad, &ctx).unwrap_err().notification();
        assert_eq!((n.code, n.subcode), (2, 6));
        let mut bad = OPEN_BYTES.to_vec();
        bad[24..28].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            decode_message(&bad, &ctx)
                .unwrap_err()
                .notification()
                .subcode,
            3
        );
        // Capability length pointing past its parameter.
        let mut bad = OPEN_BYTES.to_vec();
        bad[30] = 0x25;
        let n = decode_message(&bad, &ctx).unwrap_err().notification();
        assert_eq!((n.code, n.subcode), (2, 0));
        // Optional parameter length disagreeing with the message length:
        // the parameters cannot be located, OPEN error Unspecific.
        let mut bad = OPEN_BYTES.to_vec();
        bad[28] = 0x27;
        let n = decode_message(&bad, &ctx).unwrap_err().notification();
        assert_eq!((n.code, n.subcode), (2, 0));
        // Malformed 4-octet AS capability (3 bytes).
        let caps = [65, 3, 0, 0, 1];
        assert!(decode_capabilities(&caps, &mut Vec::new()).is_err());
    }
}
