#![no_main]
//! OPEN bodies behind a valid header: parameters and capabilities.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::check(&common::wrap(1, data), &wire::CodecContext::default());
});
