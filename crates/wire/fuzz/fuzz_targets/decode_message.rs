#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else { return };
    let ctx = common::ctx(b);
    let _ = wire::decode_message(rest, &ctx).map_err(|e| e.notification());
    common::check(rest, &ctx);
});
