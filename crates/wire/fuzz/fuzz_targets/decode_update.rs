#![no_main]
//! UPDATE bodies behind a valid header, so the fuzzer spends its time in
//! the attribute and NLRI decoders.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else { return };
    let ctx = common::ctx(b);
    common::check(&common::wrap(2, rest), &ctx);
});
