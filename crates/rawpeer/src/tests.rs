//! Builders against `wire`'s decoder: what is meant to be well formed
//! decodes to the values it was built from, and the Extended Length rule
//! of RFC 4271 §4.3 holds in both directions.

use std::net::{Ipv4Addr, Ipv6Addr};

use wire::{AsSegment, CodecContext, Decoded, Message, MpNextHop, Notification, Update};

use crate::build::{self, *};
use crate::{OpenSpec, Result};

const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fn session() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        extended_message: true,
        extended_next_hop_ipv4: true,
    }
}

fn decode(bytes: &[u8]) -> Decoded {
    match wire::decode_message(bytes, &session()) {
        Ok(d) => d,
        Err(e) => panic!("does not decode ({e}): {bytes:02x?}"),
    }
}

fn decode_update(bytes: &[u8]) -> (Update, Decoded) {
    let d = decode(bytes);
    match &d.message {
        Message::Update(u) => (u.clone(), d),
        other => panic!("not an UPDATE: {other:?}"),
    }
}

#[test]
fn open_spec_encodes_what_the_codec_decodes() {
    let spec = OpenSpec::new(4_200_000_010, Ipv4Addr::new(10, 0, 0, 1)).extended_message();
    let d = wire::decode_message(&spec.encode(), &CodecContext::default());
    let Ok(Decoded {
        message: Message::Open(o),
        ..
    }) = d
    else {
        panic!("OPEN does not decode: {d:?}");
    };
    assert_eq!(o.my_as, wire::AS_TRANS);
    assert_eq!(o.asn(), 4_200_000_010);
    assert_eq!(o.hold_time, 240);
    assert!(o.has_capability(wire::open::cap::EXTENDED_MESSAGE));
    // RFC 8950 §4: the triple (IPv4, unicast, IPv6).
    assert!(o
        .extended_next_hop()
        .any(|e| e.afi == 1 && e.safi == 1 && e.next_hop_afi == 2));
    assert!(spec.has_capability(5) && spec.has_capability(6) && !spec.has_capability(70));
    assert!(!spec.without_extended_next_hop().has_capability(5));
}

#[test]
fn keepalive_and_notification_round_trip() -> Result<()> {
    let k = keepalive()?;
    assert_eq!(k.len(), 19);
    assert_eq!(decode(&k).message, Message::Keepalive);
    let n = notification(3, 4, &[9, 8])?;
    let want = Notification {
        code: 3,
        subcode: 4,
        data: vec![9, 8],
    };
    assert_eq!(decode(&n).message, Message::Notification(want));
    Ok(())
}

#[test]
fn announcement_round_trips_through_the_decoder() -> Result<()> {
    let prefixes = [
        (Ipv4Addr::new(10, 9, 0, 0), 24),
        (Ipv4Addr::new(10, 8, 0, 0), 16),
    ];
    let m = announce_v4(&[65010, 4_200_000_001], LL, &prefixes, &[])?;
    let (u, d) = decode_update(&m);
    assert_eq!(d.treat_as_withdraw, None);
    assert!(d.discarded.is_empty());
    assert_eq!(u.attributes.origin, Some(wire::Origin::Igp));
    let path = u.attributes.as_path.map(|p| p.segments);
    assert_eq!(
        path,
        Some(vec![AsSegment::Sequence(vec![65010, 4_200_000_001])])
    );
    let reach = u.attributes.mp_reach.as_ref();
    assert_eq!(
        reach.map(|r| r.next_hop),
        Some(MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, LL))
    );
    let nlri: Vec<String> = reach
        .map(|r| r.nlri.iter().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(nlri, ["10.9.0.0/24", "10.8.0.0/16"]);
    Ok(())
}

#[test]
fn withdrawals_and_classic_fields_round_trip() -> Result<()> {
    let m = update(&mp_unreach_v4(&[(Ipv4Addr::new(10, 7, 0, 0), 24)])?);
    let (u, _) = decode_update(&m);
    let gone = u.attributes.mp_unreach.map(|w| w.withdrawn);
    assert_eq!(gone.map(|w| w.len()), Some(1));
    let mut a = origin_igp()?;
    a.extend(as_path4(&[65010])?);
    a.extend(attribute(TRANSITIVE, NEXT_HOP, &[192, 0, 2, 10]));
    let nlri = prefix_v4(Ipv4Addr::new(10, 6, 0, 0), 24);
    let withdrawn = prefix_v4(Ipv4Addr::new(10, 5, 0, 0), 16);
    let (u, _) = decode_update(&update_raw(&withdrawn, &a, &nlri));
    assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::new(192, 0, 2, 10)));
    assert_eq!(
        u.nlri.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        ["10.6.0.0/24"]
    );
    assert_eq!(
        u.withdrawn
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["10.5.0.0/16"]
    );
    Ok(())
}

#[test]
fn long_as_path_splits_into_segments_of_255() -> Result<()> {
    let asns: Vec<u32> = (1..=600).collect();
    let a = as_path4(&asns)?;
    // Extended length, 3 segments: 255 + 255 + 90 ASNs.
    assert_eq!(a[0] & EXTENDED_LENGTH, EXTENDED_LENGTH);
    let len = usize::from(u16::from_be_bytes([a[2], a[3]]));
    assert_eq!(len, 3 * 2 + 600 * 4);
    Ok(())
}

/// RFC 4271 §4.3: the length is one octet with the Extended Length bit
/// clear and two with it set, whatever the value's size.
#[test]
fn attribute_length_field_follows_the_extended_length_bit() {
    let short = attribute(OPTIONAL | TRANSITIVE, 99, &[7; 255]);
    assert_eq!(short[0], OPTIONAL | TRANSITIVE);
    assert_eq!((short[2], short.len()), (255, 3 + 255));
    let long = attribute(OPTIONAL | TRANSITIVE, 99, &[7; 256]);
    assert_eq!(long[0], OPTIONAL | TRANSITIVE | EXTENDED_LENGTH);
    assert_eq!((&long[2..4], long.len()), (&[1u8, 0][..], 4 + 256));
    // The bit asked for on a short value: two length octets, not one.
    let asked = attribute(OPTIONAL | TRANSITIVE | EXTENDED_LENGTH, 99, &[1, 2, 3]);
    assert_eq!(asked, [0xd0, 99, 0, 3, 1, 2, 3]);
}

/// The same rule seen by `wire`'s decoder: each form carries the value
/// intact, and a length field of the wrong size for the bit does not.
#[test]
fn decoder_reads_both_length_forms_and_not_a_mismatch() -> Result<()> {
    let value = [1u8, 2, 3];
    let unknown_of = |attr: Vec<u8>| -> Result<Option<Vec<u8>>> {
        let mut a = origin_igp()?;
        a.extend(as_path4(&[65010])?);
        a.extend(attr);
        a.extend(mp_reach_v4_ll(LL, &[(Ipv4Addr::new(10, 4, 0, 0), 24)])?);
        let d = wire::decode_message(&update(&a), &session());
        Ok(match d {
            Ok(Decoded {
                message: Message::Update(u),
                treat_as_withdraw: None,
                ..
            }) => u.attributes.unknown.into_iter().find(|r| r.type_code == 99),
            _ => None,
        }
        .map(|r| r.value))
    };
    let flags = OPTIONAL | TRANSITIVE;
    assert_eq!(
        unknown_of(attribute(flags, 99, &value))?,
        Some(value.to_vec())
    );
    let ext = attribute(flags | EXTENDED_LENGTH, 99, &value);
    assert_eq!(unknown_of(ext)?, Some(value.to_vec()));
    // Bit set, one length octet: the decoder reads 0x03 0x01 as the
    // length, so the value cannot come back intact.
    let mismatch = attribute_raw(flags | EXTENDED_LENGTH, 99, &[3], &value);
    assert_ne!(unknown_of(mismatch)?, Some(value.to_vec()));
    Ok(())
}

#[test]
fn hand_built_mp_reach_matches_the_encoded_one_in_content() -> Result<()> {
    let mut nh = Ipv6Addr::UNSPECIFIED.octets().to_vec();
    nh.extend(LL.octets());
    let pfx = [(Ipv4Addr::new(10, 3, 0, 0), 24)];
    let raw = mp_reach_raw(1, 1, &nh, &prefixes_v4(&pfx));
    let wired = mp_reach_v4_ll(LL, &pfx)?;
    // Same value; `wire` always writes MP_REACH with two length octets.
    assert_eq!(raw.get(3..), wired.get(4..));
    assert_eq!(raw[0] | EXTENDED_LENGTH, wired[0]);
    Ok(())
}

#[test]
fn well_formed_builders_refuse_a_prefix_over_32() {
    let r = mp_reach_v4_ll(LL, &[(Ipv4Addr::new(10, 0, 0, 0), 33)]);
    assert!(matches!(r, Err(crate::Error::PrefixLength { len: 33, .. })));
    // The hand-built form writes it anyway, for the hostile suites.
    assert_eq!(prefix_v4(Ipv4Addr::new(10, 0, 0, 0), 33), [33, 10, 0, 0, 0]);
}

#[test]
fn message_header_is_raw_where_asked() {
    let m = build::raw_message(&[0; 16], 18, KEEPALIVE, &[]);
    assert_eq!(m.len(), 19);
    assert!(wire::decode_message(&m, &session()).is_err());
}
