#![allow(dead_code)]
// Shared by the fuzz targets: the first input byte picks the negotiated
// session facts, so every decoder path is reachable.

use wire::{decode_message, encode_message, CodecContext, Message};

pub fn ctx(b: u8) -> CodecContext {
    CodecContext {
        four_octet_as: b & 1 != 0,
        extended_message: b & 2 != 0,
        extended_next_hop_ipv4: b & 4 != 0,
    }
}

/// Decodes; whatever decodes and re-encodes must decode to the same value.
pub fn check(frame: &[u8], ctx: &CodecContext) {
    if let Ok(d) = decode_message(frame, ctx) {
        let mut out = Vec::new();
        if encode_message(&d.message, ctx, &mut out).is_ok() {
            let again = decode_message(&out, ctx).expect("re-encoded message must decode");
            assert_eq!(again.message, normalized(d.message.clone()));
            // A clean message stays clean.
            if let Message::Update(_) = d.message {
                if d.treat_as_withdraw.is_none() {
                    assert_eq!(again.treat_as_withdraw, None);
                }
            }
        }
    }
}

/// What re-encoding may change (RFC 4271 §5): unknown optional
/// transitive attributes gain the Partial bit, and attributes are written
/// in ascending type order.
pub fn normalized(mut m: Message) -> Message {
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

/// Wraps a body in a header of the given type.
pub fn wrap(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19).min(65535) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}
