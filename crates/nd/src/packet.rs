//! The four neighbour discovery messages BGP unnumbered needs (RFC 4861
//! §4.1 to §4.4) and the source/target link-layer address options (§4.6.1).
//! Pure: bytes in, typed values out, and back. The ICMPv6 checksum is the
//! kernel's (a raw ICMPv6 socket computes and verifies it, RFC 3542 §3.1),
//! so it is written as zero and not checked here.

use std::net::Ipv6Addr;

/// ICMPv6 types (RFC 4861 §4).
pub const ROUTER_SOLICITATION: u8 = 133;
pub const ROUTER_ADVERTISEMENT: u8 = 134;
pub const NEIGHBOR_SOLICITATION: u8 = 135;
pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;

/// Option types (RFC 4861 §4.6).
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;

/// Why bytes are not a neighbour discovery message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes is shorter than the {1}-byte minimum of ICMPv6 type {2}")]
    Short(usize, usize, u8),
    #[error("ICMPv6 type {0} is not neighbour discovery")]
    NotNd(u8),
    #[error("ICMPv6 code {0} is not 0 (RFC 4861 §6.1)")]
    BadCode(u8),
    /// RFC 4861 §4.6: a zero length is invalid, and an option may not run
    /// past the end of the packet.
    #[error("option at offset {0} has a bad length")]
    BadOption(usize),
    #[error("target {0} is a multicast address (RFC 4861 §7.1)")]
    MulticastTarget(Ipv6Addr),
}

/// A link-layer (Ethernet) address.
pub type Mac = [u8; 6];

/// One decoded message. Options other than the link-layer addresses
/// (prefix information, MTU, ...) are skipped, as §4.6 asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdMessage {
    /// §4.1.
    RouterSolicitation { source_ll: Option<Mac> },
    /// §4.2. `router_lifetime` 0: not a default router (§6.2.1).
    RouterAdvertisement {
        cur_hop_limit: u8,
        flags: u8,
        router_lifetime: u16,
        reachable_time: u32,
        retrans_timer: u32,
        source_ll: Option<Mac>,
    },
    /// §4.3.
    NeighborSolicitation {
        target: Ipv6Addr,
        source_ll: Option<Mac>,
    },
    /// §4.4. `flags` holds R (0x80), S (0x40), O (0x20).
    NeighborAdvertisement {
        flags: u8,
        target: Ipv6Addr,
        target_ll: Option<Mac>,
    },
}

impl NdMessage {
    /// A Router Advertisement that says "a router is here" and nothing
    /// else: lifetime 0, so hosts never take it as a default router.
    pub fn bare_ra(source_ll: Option<Mac>) -> Self {
        NdMessage::RouterAdvertisement {
            cur_hop_limit: 0,
            flags: 0,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
            source_ll,
        }
    }

    /// The ICMPv6 type.
    pub fn icmp_type(&self) -> u8 {
        match self {
            NdMessage::RouterSolicitation { .. } => ROUTER_SOLICITATION,
            NdMessage::RouterAdvertisement { .. } => ROUTER_ADVERTISEMENT,
            NdMessage::NeighborSolicitation { .. } => NEIGHBOR_SOLICITATION,
            NdMessage::NeighborAdvertisement { .. } => NEIGHBOR_ADVERTISEMENT,
        }
    }

    /// The ICMPv6 message, checksum zero (the kernel fills it in).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.icmp_type(), 0, 0, 0];
        let ll_opt = |b: &mut Vec<u8>, kind: u8, mac: &Option<Mac>| {
            if let Some(m) = mac {
                b.extend_from_slice(&[kind, 1]);
                b.extend_from_slice(m);
            }
        };
        match self {
            NdMessage::RouterSolicitation { source_ll } => {
                b.extend_from_slice(&[0; 4]);
                ll_opt(&mut b, OPT_SOURCE_LL, source_ll);
            }
            NdMessage::RouterAdvertisement {
                cur_hop_limit,
                flags,
                router_lifetime,
                reachable_time,
                retrans_timer,
                source_ll,
            } => {
                b.push(*cur_hop_limit);
                b.push(*flags);
                b.extend_from_slice(&router_lifetime.to_be_bytes());
                b.extend_from_slice(&reachable_time.to_be_bytes());
                b.extend_from_slice(&retrans_timer.to_be_bytes());
                ll_opt(&mut b, OPT_SOURCE_LL, source_ll);
            }
            NdMessage::NeighborSolicitation { target, source_ll } => {
                b.extend_from_slice(&[0; 4]);
                b.extend_from_slice(&target.octets());
                ll_opt(&mut b, OPT_SOURCE_LL, source_ll);
            }
            NdMessage::NeighborAdvertisement {
                flags,
                target,
                target_ll,
            } => {
                b.extend_from_slice(&[*flags, 0, 0, 0]);
                b.extend_from_slice(&target.octets());
                ll_opt(&mut b, OPT_TARGET_LL, target_ll);
            }
        }
        b
    }

    /// Decodes an ICMPv6 message (starting at the type byte) and checks
    /// what RFC 4861 §6.1.1, §6.1.2, §7.1.1 and §7.1.2 ask of its content;
    /// the IP-level checks (hop limit 255, link-local source) are
    /// [`acceptable`]'s.
    pub fn decode(b: &[u8]) -> Result<NdMessage, DecodeError> {
        let (&kind, rest) = b.split_first().ok_or(DecodeError::Short(0, 4, 0))?;
        let min = match kind {
            ROUTER_SOLICITATION => 8,
            ROUTER_ADVERTISEMENT => 16,
            NEIGHBOR_SOLICITATION | NEIGHBOR_ADVERTISEMENT => 24,
            other => return Err(DecodeError::NotNd(other)),
        };
        if b.len() < min {
            return Err(DecodeError::Short(b.len(), min, kind));
        }
        let code = rest.first().copied().unwrap_or(0);
        if code != 0 {
            return Err(DecodeError::BadCode(code));
        }
        let (fixed, opts) = b.split_at(min);
        let options = options(opts, min)?;
        let want = |t: u8| options.iter().find(|(k, _)| *k == t).map(|(_, m)| *m);
        let u32_at = |i: usize| {
            fixed
                .get(i..i + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map_or(0, u32::from_be_bytes)
        };
        let target = || {
            let mut o = [0u8; 16];
            if let Some(s) = fixed.get(8..24) {
                o.copy_from_slice(s);
            }
            Ipv6Addr::from(o)
        };
        let byte = |i: usize| fixed.get(i).copied().unwrap_or(0);
        Ok(match kind {
            ROUTER_SOLICITATION => NdMessage::RouterSolicitation {
                source_ll: want(OPT_SOURCE_LL),
            },
            ROUTER_ADVERTISEMENT => NdMessage::RouterAdvertisement {
                cur_hop_limit: byte(4),
                flags: byte(5),
                router_lifetime: u16::from_be_bytes([byte(6), byte(7)]),
                reachable_time: u32_at(8),
                retrans_timer: u32_at(12),
                source_ll: want(OPT_SOURCE_LL),
            },
            NEIGHBOR_SOLICITATION => {
                let t = target();
                if t.is_multicast() {
                    return Err(DecodeError::MulticastTarget(t));
                }
                NdMessage::NeighborSolicitation {
                    target: t,
                    source_ll: want(OPT_SOURCE_LL),
                }
            }
            _ => {
                let t = target();
                if t.is_multicast() {
                    return Err(DecodeError::MulticastTarget(t));
                }
                NdMessage::NeighborAdvertisement {
                    flags: byte(4),
                    target: t,
                    target_ll: want(OPT_TARGET_LL),
                }
            }
        })
    }
}

/// The link-layer address options of `b` (type, MAC); other options are
/// skipped. `base` is the offset of `b` in the message, for errors.
fn options(mut b: &[u8], base: usize) -> Result<Vec<(u8, Mac)>, DecodeError> {
    let mut out = Vec::new();
    let mut at = base;
    while !b.is_empty() {
        let (kind, units) = match b {
            [k, l, ..] => (*k, usize::from(*l)),
            _ => return Err(DecodeError::BadOption(at)),
        };
        let len = units * 8;
        if len == 0 || len > b.len() {
            return Err(DecodeError::BadOption(at));
        }
        let (this, rest) = b.split_at(len);
        if kind == OPT_SOURCE_LL || kind == OPT_TARGET_LL {
            // Ethernet: 6 bytes after type and length (RFC 2464 §6).
            if let Some(mac) = this.get(2..8).and_then(|s| Mac::try_from(s).ok()) {
                out.push((kind, mac));
            }
        }
        b = rest;
        at += len;
    }
    Ok(out)
}

/// Whether a received message may teach us the peer's address: the IP hop
/// limit is 255, so it was not forwarded (RFC 4861 §6.1.1, §6.1.2,
/// §7.1.1, §7.1.2), and the source is a link-local address that is not
/// ours (an RA must come from one, §6.1.2; an NS from `::` is DAD and
/// names nobody, §7.1.1).
pub fn acceptable(hop_limit: Option<u8>, source: &Ipv6Addr, ours: &[Ipv6Addr]) -> bool {
    hop_limit == Some(255) && source.is_unicast_link_local() && !ours.contains(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];

    fn both_ways(m: NdMessage, bytes: &[u8]) {
        assert_eq!(m.encode(), bytes, "encode {m:?}");
        assert_eq!(NdMessage::decode(bytes), Ok(m), "decode {bytes:02x?}");
    }

    #[test]
    fn router_advertisement_bytes() {
        both_ways(
            NdMessage::bare_ra(Some(MAC)),
            &[
                134, 0, 0, 0, // type, code, checksum
                0, 0, 0, 0, // hop limit, flags, router lifetime 0
                0, 0, 0, 0, 0, 0, 0, 0, // reachable, retrans
                1, 1, 2, 0, 0, 0, 0, 1, // source link-layer address
            ],
        );
        both_ways(
            NdMessage::RouterAdvertisement {
                cur_hop_limit: 64,
                flags: 0x80,
                router_lifetime: 1800,
                reachable_time: 30000,
                retrans_timer: 1000,
                source_ll: None,
            },
            &[
                134, 0, 0, 0, 64, 0x80, 0x07, 0x08, 0, 0, 0x75, 0x30, 0, 0, 0x03, 0xe8,
            ],
        );
    }

    #[test]
    fn router_solicitation_bytes() {
        both_ways(
            NdMessage::RouterSolicitation { source_ll: None },
            &[133, 0, 0, 0, 0, 0, 0, 0],
        );
        both_ways(
            NdMessage::RouterSolicitation {
                source_ll: Some(MAC),
            },
            &[133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1],
        );
    }

    #[test]
    fn neighbor_solicitation_and_advertisement_bytes() {
        let t: Ipv6Addr = "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
        ns.extend_from_slice(&t.octets());
        ns.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        both_ways(
            NdMessage::NeighborSolicitation {
                target: t,
                source_ll: Some(MAC),
            },
            &ns,
        );
        let mut na = vec![136, 0, 0, 0, 0xe0, 0, 0, 0];
        na.extend_from_slice(&t.octets());
        na.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 1]);
        both_ways(
            NdMessage::NeighborAdvertisement {
                flags: 0xe0,
                target: t,
                target_ll: Some(MAC),
            },
            &na,
        );
    }

    #[test]
    fn unknown_options_are_skipped() {
        // An RA with an MTU option (type 5, 8 bytes) then the source LL.
        let b = [
            134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0, 0, 5, 220, 1, 1, 2, 0,
            0, 0, 0, 1,
        ];
        assert_eq!(NdMessage::decode(&b), Ok(NdMessage::bare_ra(Some(MAC))));
    }

    #[test]
    fn malformed_is_refused() {
        assert_eq!(
            NdMessage::decode(&[134, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Short(7, 16, 134))
        );
        assert_eq!(NdMessage::decode(&[]), Err(DecodeError::Short(0, 4, 0)));
        assert_eq!(
            NdMessage::decode(&[128, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::NotNd(128))
        );
        assert_eq!(
            NdMessage::decode(&[133, 1, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::BadCode(1))
        );
        // Zero-length option (RFC 4861 §4.6: silently discard the packet).
        assert_eq!(
            NdMessage::decode(&[133, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::BadOption(8))
        );
        // Option longer than the packet.
        assert_eq!(
            NdMessage::decode(&[133, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::BadOption(8))
        );
        // One trailing byte: no room for type and length.
        assert_eq!(
            NdMessage::decode(&[133, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(DecodeError::BadOption(8))
        );
        let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
        ns.extend_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets());
        assert!(matches!(
            NdMessage::decode(&ns),
            Err(DecodeError::MulticastTarget(_))
        ));
    }

    #[test]
    fn every_prefix_of_a_message_decodes_or_errs_without_panic() {
        let full = NdMessage::NeighborAdvertisement {
            flags: 0x40,
            target: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9),
            target_ll: Some(MAC),
        }
        .encode();
        for n in 0..=full.len() {
            let _ = NdMessage::decode(&full[..n]);
        }
        for fill in 0..=255u8 {
            let mut b = full.clone();
            b.iter_mut().skip(24).for_each(|x| *x = fill);
            let _ = NdMessage::decode(&b);
        }
    }

    #[test]
    fn acceptance_rules() {
        let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let me = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
        assert!(acceptable(Some(255), &peer, &[me]));
        // Forwarded (hop limit below 255) or unknown hop limit: no.
        assert!(!acceptable(Some(254), &peer, &[me]));
        assert!(!acceptable(None, &peer, &[me]));
        // Our own packet looped back, DAD's `::`, a global source: no.
        assert!(!acceptable(Some(255), &me, &[me]));
        assert!(!acceptable(Some(255), &Ipv6Addr::UNSPECIFIED, &[me]));
        assert!(!acceptable(
            Some(255),
            &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            &[me]
        ));
    }
}
