//! Inputs found by `cargo +nightly fuzz` (crates/wire/fuzz), kept as
//! regression tests. The first byte picks the session context as in the
//! fuzz targets: bit 0 four_octet_as, bit 1 extended_message, bit 2
//! extended_next_hop_ipv4.

use wire::*;

fn ctx(b: u8) -> CodecContext {
    CodecContext {
        four_octet_as: b & 1 != 0,
        extended_message: b & 2 != 0,
        extended_next_hop_ipv4: b & 4 != 0,
    }
}

fn wrap(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// What re-encoding may change (RFC 4271 §5): unknown optional
/// transitive attributes gain the Partial bit, and attributes are written
/// in ascending type order.
fn normalized(mut m: Message) -> Message {
    if let Message::Update(u) = &mut m {
        for a in &mut u.attributes.unknown {
            if a.flags & 0xc0 == 0xc0 {
                a.flags |= 0x20;
            }
        }
        u.attributes.unknown.sort_by_key(|a| a.type_code);
    }
    m
}

fn check(frame: &[u8], ctx: &CodecContext) {
    if let Ok(d) = decode_message(frame, ctx) {
        let mut out = Vec::new();
        if encode_message(&d.message, ctx, &mut out).is_ok() {
            let again = decode_message(&out, ctx).expect("re-encoded message decodes");
            assert_eq!(again.message, normalized(d.message));
        }
    }
}

#[test]
fn unknown_transitive_without_partial_bit_decode_message() {
    // An MP_REACH with well-known flags (treat-as-withdraw) and an unknown
    // optional transitive attribute sent without the Partial bit.
    let data = include_bytes!("data/fuzz/decode_message-partial-bit");
    check(&data[1..], &ctx(data[0]));
}

#[test]
fn unknown_transitive_without_partial_bit_decode_update() {
    let data = include_bytes!("data/fuzz/decode_update-partial-bit");
    check(&wrap(2, &data[1..]), &ctx(data[0]));
}
