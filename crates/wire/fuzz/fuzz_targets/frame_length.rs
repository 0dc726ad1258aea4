#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else { return };
    let ctx = common::ctx(b);
    if let Ok(Some(n)) = wire::frame_length(rest, &ctx) {
        assert!(n >= wire::HEADER_LEN && n <= rest.len() && n <= ctx.max_message_len());
    }
});
