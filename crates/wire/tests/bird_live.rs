//! Runs `tests/capture/capture-bird.sh` against live BIRD 2 instances in
//! network namespaces (needs root, bird, tcpdump, python3; fails loudly if
//! one is missing) and checks that every freshly captured message decodes
//! without RFC 7606 findings and re-encodes byte for byte.

use std::process::Command;

use wire::*;

#[test]
fn fresh_bird_capture_round_trips() {
    let dir = std::env::temp_dir().join(format!("via6-bird-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("bird.hex");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/capture/capture-bird.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&out)
        .status()
        .expect("run capture-bird.sh");
    assert!(status.success(), "capture-bird.sh failed: {status}");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let session = CodecContext {
        four_octet_as: true,
        extended_message: false,
        extended_next_hop_ipv4: true,
    };
    let mut updates = 0;
    for line in text.lines() {
        let (dir, hex) = line.split_once(' ').unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let ctx = if bytes[18] == 1 {
            CodecContext::default()
        } else {
            session
        };
        let d = decode_message(&bytes, &ctx).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!((d.treat_as_withdraw, d.discarded.len()), (None, 0), "{dir}");
        let mut re = Vec::new();
        encode_message(&d.message, &ctx, &mut re).unwrap();
        assert_eq!(re, bytes, "{dir}");
        updates += usize::from(bytes[18] == 2);
    }
    assert!(updates >= 8, "only {updates} UPDATEs captured");
}
