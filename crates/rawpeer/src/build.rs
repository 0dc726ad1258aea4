//! Message builders: plain functions from values to bytes.
//!
//! Two kinds live here. The well-formed pieces (KEEPALIVE, NOTIFICATION,
//! ORIGIN, AS_PATH, MP_REACH_NLRI, MP_UNREACH_NLRI, a whole RFC 8950
//! announcement) are encoded by `wire`, so they are exactly what via6d
//! itself would send, and they return `Result` because `wire` checks
//! what it encodes. Everything else is built by hand from RFC 4271 §4,
//! RFC 4760 §3-4, RFC 5492 §4 and RFC 8950 §3, and never checks what it
//! is given: making bad messages (wrong markers and lengths, wrong flags,
//! truncated fields, OPENs with any field wrong) is its purpose, and
//! `wire`'s encoder cannot produce them.

use std::net::{Ipv4Addr, Ipv6Addr};

use wire::{
    AsPath, AsSegment, CodecContext, Family, IpNet, Ipv4Net, Message, MpNextHop, MpReach,
    MpUnreach, Notification, Origin, PathAttributes, Update,
};

use crate::error::{Error, Result};

/// RFC 4271 §4.1 message types.
pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;
pub const KEEPALIVE: u8 = 4;

/// Path attribute flags (RFC 4271 §4.3).
pub const OPTIONAL: u8 = 0x80;
pub const TRANSITIVE: u8 = 0x40;
pub const PARTIAL: u8 = 0x20;
/// RFC 4271 §4.3: set iff the Attribute Length field is two octets.
pub const EXTENDED_LENGTH: u8 = 0x10;

/// Path attribute type codes used by the suites.
pub const ORIGIN: u8 = 1;
pub const AS_PATH: u8 = 2;
pub const NEXT_HOP: u8 = 3;
pub const MED: u8 = 4;
pub const AGGREGATOR: u8 = 7;
pub const COMMUNITIES: u8 = 8;
pub const MP_REACH: u8 = 14;
pub const MP_UNREACH: u8 = 15;

/// Header, withdrawn-routes length and attribute-length fields that
/// precede the attributes of an UPDATE `wire` encoded with no withdrawn
/// routes (RFC 4271 §4.3).
const UPDATE_ATTRS_AT: usize = 19 + 2 + 2;

/// What the well-formed builders encode with: 4-octet ASNs, RFC 8950
/// next hops, and room for long AS paths (RFC 6793, RFC 8950, RFC 8654).
const ENCODE_CTX: CodecContext = CodecContext {
    four_octet_as: true,
    extended_message: true,
    extended_next_hop_ipv4: true,
};

/// A message with a correct marker and length (RFC 4271 §4.1). The
/// length wraps above 65535: callers that want a wrong length use
/// [`raw_message`].
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    raw_message(&[0xff; 16], (19 + body.len()) as u16, kind, body)
}

/// A message with every header field chosen by the caller.
pub fn raw_message(marker: &[u8; 16], length: u16, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = marker.to_vec();
    m.extend_from_slice(&length.to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// Encodes one well-formed message with `wire`.
pub fn encoded(msg: &Message) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    wire::encode_message(msg, &ENCODE_CTX, &mut out)?;
    Ok(out)
}

/// KEEPALIVE (RFC 4271 §4.4), encoded by `wire`.
pub fn keepalive() -> Result<Vec<u8>> {
    encoded(&Message::Keepalive)
}

/// NOTIFICATION (RFC 4271 §4.5), encoded by `wire`.
pub fn notification(code: u8, subcode: u8, data: &[u8]) -> Result<Vec<u8>> {
    encoded(&Message::Notification(Notification {
        code,
        subcode,
        data: data.to_vec(),
    }))
}

/// One capability TLV (RFC 5492 §4).
pub fn capability(code: u8, value: &[u8]) -> Vec<u8> {
    let mut c = vec![code, value.len() as u8];
    c.extend_from_slice(value);
    c
}

/// Multiprotocol capability (RFC 4760 §8).
pub fn cap_multiprotocol(afi: u16, safi: u8) -> Vec<u8> {
    let a = afi.to_be_bytes();
    capability(1, &[a[0], a[1], 0, safi])
}

/// Extended next hop for IPv4 unicast over IPv6 (RFC 8950 §4).
pub fn cap_extended_next_hop() -> Vec<u8> {
    capability(5, &[0, 1, 0, 1, 0, 2])
}

/// Extended message (RFC 8654 §3).
pub fn cap_extended_message() -> Vec<u8> {
    capability(6, &[])
}

/// 4-octet AS (RFC 6793 §3).
pub fn cap_four_octet_as(asn: u32) -> Vec<u8> {
    capability(65, &asn.to_be_bytes())
}

/// OPEN (RFC 4271 §4.2) with every field given, `params` as the optional
/// parameters and `params_len` as their claimed length. Hand-built: the
/// hostile suites need wrong versions, lengths and parameters.
pub fn open_raw(
    version: u8,
    my_as: u16,
    hold: u16,
    router_id: Ipv4Addr,
    params_len: u8,
    params: &[u8],
) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&router_id.octets());
    b.push(params_len);
    b.extend_from_slice(params);
    message(OPEN, &b)
}

/// Optional parameter type 2 holding `caps` (RFC 5492 §4).
pub fn capabilities_param(caps: &[u8]) -> Vec<u8> {
    let mut p = vec![2, caps.len() as u8];
    p.extend_from_slice(caps);
    p
}

/// One path attribute with a consistent length field (RFC 4271 §4.3):
/// two octets iff the Extended Length bit is set. The bit is set when the
/// caller sets it or when the value does not fit in one octet; a value
/// over 65535 bytes gets a wrapped length (use [`attribute_raw`] to make
/// the length field disagree with the flag or the value on purpose).
pub fn attribute(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    if value.len() > 255 || flags & EXTENDED_LENGTH != 0 {
        let len = (value.len() as u16).to_be_bytes();
        attribute_raw(flags | EXTENDED_LENGTH, code, &len, value)
    } else {
        attribute_raw(flags, code, &[value.len() as u8], value)
    }
}

/// A path attribute with the flags, length field and value exactly as
/// given, whatever they say about each other: for attributes whose length
/// field has the wrong size for its Extended Length bit, or the wrong
/// value.
pub fn attribute_raw(flags: u8, code: u8, length_field: &[u8], value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code];
    a.extend_from_slice(length_field);
    a.extend_from_slice(value);
    a
}

/// The path attribute bytes of `attrs` as `wire` encodes them in an
/// UPDATE (MP_REACH / MP_UNREACH first, RFC 7606 §5.1).
fn wire_attributes(attributes: PathAttributes) -> Result<Vec<u8>> {
    let m = encoded(&Message::Update(Update {
        attributes,
        ..Update::default()
    }))?;
    Ok(m.get(UPDATE_ATTRS_AT..).unwrap_or_default().to_vec())
}

/// ORIGIN IGP, encoded by `wire`.
pub fn origin_igp() -> Result<Vec<u8>> {
    wire_attributes(PathAttributes {
        origin: Some(Origin::Igp),
        ..PathAttributes::default()
    })
}

/// AS_PATH of 4-octet ASNs, encoded by `wire`, which splits it into
/// AS_SEQUENCE segments of at most 255 ASNs (RFC 4271 §4.3).
pub fn as_path4(asns: &[u32]) -> Result<Vec<u8>> {
    let segments = if asns.is_empty() {
        Vec::new()
    } else {
        vec![AsSegment::Sequence(asns.to_vec())]
    };
    wire_attributes(PathAttributes {
        as_path: Some(AsPath { segments }),
        ..PathAttributes::default()
    })
}

/// Classic NLRI encoding: length, then the significant octets. Any
/// length, 33 and above included.
pub fn prefix_v4(prefix: Ipv4Addr, len: u8) -> Vec<u8> {
    let n = usize::from(len.min(32)).div_ceil(8);
    let mut v = vec![len];
    v.extend_from_slice(prefix.octets().get(..n).unwrap_or(&[]));
    v
}

/// Several IPv4 prefixes in NLRI encoding.
pub fn prefixes_v4(prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
    prefixes
        .iter()
        .flat_map(|(p, l)| prefix_v4(*p, *l))
        .collect()
}

/// IPv4 prefixes as `wire` values; a length over 32 is refused here
/// (use [`prefix_v4`] to put one on the wire on purpose).
fn nets_v4(prefixes: &[(Ipv4Addr, u8)]) -> Result<Vec<IpNet>> {
    prefixes
        .iter()
        .map(|&(prefix, len)| {
            Ipv4Net::new(prefix, len)
                .map(IpNet::V4)
                .map_err(|_| Error::PrefixLength { prefix, len })
        })
        .collect()
}

/// MP_REACH_NLRI with every field given: AFI, SAFI, next-hop bytes,
/// NLRI bytes (RFC 4760 §3). Hand-built: for wrong next-hop lengths,
/// families and NLRI.
pub fn mp_reach_raw(afi: u16, safi: u8, next_hop: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = afi.to_be_bytes().to_vec();
    v.push(safi);
    v.push(next_hop.len() as u8);
    v.extend_from_slice(next_hop);
    v.push(0);
    v.extend_from_slice(nlri);
    attribute(OPTIONAL, MP_REACH, &v)
}

/// MP_REACH_NLRI for IPv4 unicast with the 32-byte `[::, LL]` next hop
/// (RFC 8950 §3, BIRD's form), encoded by `wire`.
pub fn mp_reach_v4_ll(ll: Ipv6Addr, prefixes: &[(Ipv4Addr, u8)]) -> Result<Vec<u8>> {
    wire_attributes(PathAttributes {
        mp_reach: Some(MpReach {
            family: Family::Ipv4Unicast,
            next_hop: MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll),
            nlri: nets_v4(prefixes)?,
        }),
        ..PathAttributes::default()
    })
}

/// MP_UNREACH_NLRI for IPv4 unicast (RFC 4760 §4), encoded by `wire`.
pub fn mp_unreach_v4(prefixes: &[(Ipv4Addr, u8)]) -> Result<Vec<u8>> {
    wire_attributes(PathAttributes {
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv4Unicast,
            withdrawn: nets_v4(prefixes)?,
        }),
        ..PathAttributes::default()
    })
}

/// UPDATE with classic withdrawn routes, attributes and NLRI as given.
pub fn update_raw(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    message(UPDATE, &b)
}

/// UPDATE carrying only path attributes.
pub fn update(attrs: &[u8]) -> Vec<u8> {
    update_raw(&[], attrs, &[])
}

/// An RFC 8950 announcement: ORIGIN, AS_PATH, `extra` attributes as
/// given (well formed or not), then MP_REACH `[::, ll]` with `prefixes`.
pub fn announce_v4(
    as_path: &[u32],
    ll: Ipv6Addr,
    prefixes: &[(Ipv4Addr, u8)],
    extra: &[u8],
) -> Result<Vec<u8>> {
    let mut a = origin_igp()?;
    a.extend(as_path4(as_path)?);
    a.extend_from_slice(extra);
    a.extend(mp_reach_v4_ll(ll, prefixes)?);
    Ok(update(&a))
}
