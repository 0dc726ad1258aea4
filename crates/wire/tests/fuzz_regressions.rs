//! Inputs found by `cargo +nightly fuzz` (crates/wire/fuzz), kept as
//! regression tests. The first byte picks the session context as in the
//! fuzz targets: bit 0 four_octet_as, bit 1 extended_message, bit 2
//! extended_next_hop_ipv4. Every case names its expected outcome: what
//! decodes and which RFC 7606 outcomes it carries, or which error ends the
//! session; a decoded message must also survive encode and decode.

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

/// The outcome a case must have.
#[derive(Debug)]
enum Want {
    /// Decodes with this treat-as-withdraw cause (type code, kind), this
    /// many discarded attributes and this many unknown attributes.
    Decodes {
        treat_as_withdraw: Option<(u8, AttributeErrorKind)>,
        discarded: usize,
        unknown: usize,
    },
    /// Fails with this RFC 4271 §6 NOTIFICATION (code, subcode).
    Fails { code: u8, subcode: u8 },
}

fn check(frame: &[u8], ctx: &CodecContext, want: Want) {
    let decoded = decode_message(frame, ctx);
    let d = match (decoded, &want) {
        (Err(e), Want::Fails { code, subcode }) => {
            let n = e.notification();
            assert_eq!((n.code, n.subcode), (*code, *subcode), "{e}");
            return;
        }
        (Err(e), Want::Decodes { .. }) => panic!("expected {want:?}, decode failed: {e}"),
        (Ok(d), Want::Fails { .. }) => panic!("expected {want:?}, decoded: {d:?}"),
        (Ok(d), Want::Decodes { .. }) => d,
    };
    let Want::Decodes {
        treat_as_withdraw,
        discarded,
        unknown,
    } = want
    else {
        unreachable!("matched above")
    };
    assert_eq!(
        d.treat_as_withdraw.map(|e| (e.type_code, e.kind)),
        treat_as_withdraw
    );
    assert_eq!(d.discarded.len(), discarded, "{:?}", d.discarded);
    let Message::Update(u) = &d.message else {
        panic!("not an UPDATE: {:?}", d.message)
    };
    assert_eq!(u.attributes.unknown.len(), unknown);
    let mut out = Vec::new();
    encode_message(&d.message, ctx, &mut out).expect("a decoded message encodes");
    let again = decode_message(&out, ctx).expect("re-encoded message decodes");
    assert_eq!(again.message, normalized(d.message));
}

/// The decoded form of both partial-bit findings: an MP_REACH with
/// well-known flags (RFC 7606 §3 (c): treat-as-withdraw), two repeated
/// type-0 attributes and a repeated ORIGIN (RFC 7606 §3 (g): discarded),
/// and an unknown optional transitive attribute without the Partial bit,
/// which re-encoding must set (RFC 4271 §5).
fn partial_bit_outcome() -> Want {
    Want::Decodes {
        treat_as_withdraw: Some((14, AttributeErrorKind::Flags)),
        discarded: 3,
        unknown: 1,
    }
}

#[test]
fn unknown_transitive_without_partial_bit_decode_message() {
    let data = include_bytes!("data/fuzz/decode_message-partial-bit");
    check(&data[1..], &ctx(data[0]), partial_bit_outcome());
}

#[test]
fn unknown_transitive_without_partial_bit_decode_update() {
    // The same UPDATE body behind a header built here, as the
    // `decode_update` fuzz target feeds it.
    let data = include_bytes!("data/fuzz/decode_update-partial-bit");
    check(&wrap(2, &data[1..]), &ctx(data[0]), partial_bit_outcome());
}

#[test]
fn partial_bit_finding_cut_short_is_a_header_error() {
    // One byte short of what its header says: Bad Message Length (RFC
    // 4271 §6.1), never a partial decode.
    let data = include_bytes!("data/fuzz/decode_message-partial-bit");
    let frame = &data[1..data.len() - 1];
    check(
        frame,
        &ctx(data[0]),
        Want::Fails {
            code: 1,
            subcode: 2,
        },
    );
}
