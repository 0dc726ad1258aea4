#![no_main]
//! MRT streams (RFC 6396): every record the reader yields, its prefix
//! counts, and the embedded BGP messages counted leniently. Nothing may
//! panic or allocate beyond the record length bound.
use libfuzzer_sys::fuzz_target;
use wire::mrt::{count_update_prefixes, AsSize, MrtReader, MrtRecord, MAX_RECORD_LENGTH};

fuzz_target!(|data: &[u8]| {
    let mut reader = MrtReader::new(std::io::Cursor::new(data));
    let mut n = 0usize;
    while let Some(item) = reader.next() {
        n += 1;
        if let Ok(record) = item {
            assert!(record.header().length <= MAX_RECORD_LENGTH);
            if let MrtRecord::Bgp4mpMessage(m) = &record {
                let _ = m.prefix_counts();
                let _ = count_update_prefixes(&m.message, false);
                let _ = count_update_prefixes(&m.message, true);
                // The captured message through the session decoder too.
                let ctx = wire::CodecContext {
                    four_octet_as: m.as_size == AsSize::Four,
                    extended_message: true,
                    extended_next_hop_ipv4: true,
                };
                let _ = wire::decode_message(&m.message, &ctx);
            }
        }
        // A record takes at least its 12-byte header.
        assert!(n <= data.len() / 12 + 1);
    }
    let (_stats, _err) = wire::mrt::stats_reader(MrtReader::new(std::io::Cursor::new(data)));
});
