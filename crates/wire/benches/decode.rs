//! UPDATE decoding throughput on the real global table.
//!
//! Reads the 901,899 real IPv4 prefixes of `../shared/data/prefixes.txt.gz`
//! (in place) and builds the feed the full-table benchmark (`bench/`) sends: MP_REACH
//! IPv4 unicast UPDATEs with the 32-byte `[::, LL]` next hop and about 2.5
//! prefixes per UPDATE, each with its own AS path, communities and MED, as
//! a real table has. A second set packs the same prefixes into as few
//! UPDATEs as fit 4096 bytes. Both are decoded from one byte stream with
//! `frame_length` + `decode_message`, as the session reader does.

use std::io::{BufRead, BufReader};
use std::net::Ipv6Addr;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use wire::*;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/prefixes.txt.gz"
);

/// CPU time of the benchmark thread, in nanoseconds. The machines this
/// runs on have two cores shared with other jobs; wall time would charge
/// the decoder for time it spent descheduled, CPU time measures what one
/// core does.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Same unit (nanoseconds) as wall time, so its formatter fits.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

const CTX: CodecContext = CodecContext {
    four_octet_as: true,
    extended_message: false,
    extended_next_hop_ipv4: true,
};

fn real_ipv4_prefixes() -> Vec<IpNet> {
    let file = std::fs::File::open(DATA).unwrap_or_else(|e| panic!("{DATA}: {e}"));
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.trim().parse::<Ipv4Net>().ok())
        .map(IpNet::V4)
        .collect()
}

fn next_hop() -> NextHop {
    NextHop::V6(Ipv6NextHop {
        global: None,
        link_local: Some("fe80::1".parse::<Ipv6Addr>().unwrap()),
    })
}

/// Attributes varying per UPDATE like a real feed: path of 2 to 6 ASNs,
/// one to three communities, sometimes a MED.
fn attrs_for(i: usize) -> PathAttributes {
    let len = 2 + i % 5;
    let path: Vec<u32> = (0..len)
        .map(|k| 64500 + ((i * 7 + k * 13) % 3000) as u32)
        .collect();
    PathAttributes {
        origin: Some(if i.is_multiple_of(3) {
            Origin::Incomplete
        } else {
            Origin::Igp
        }),
        as_path: Some(AsPath {
            segments: vec![AsSegment::Sequence(path)],
        }),
        med: i.is_multiple_of(4).then_some(i as u32 % 1000),
        communities: (0..1 + i % 3)
            .map(|k| (65001u32 << 16) | (k as u32 + i as u32 % 50))
            .collect(),
        ..Default::default()
    }
}

/// ~2.5 prefixes per UPDATE: chunk sizes cycle 1, 2, 3, 4.
fn small_updates(prefixes: &[IpNet]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(prefixes.len() * 40);
    let (mut pos, mut i, mut msgs) = (0, 0, 0);
    while pos < prefixes.len() {
        let n = (1 + i % 4).min(prefixes.len() - pos);
        msgs += pack_announcements(
            &attrs_for(i),
            next_hop(),
            LinkLocalForm::Native,
            &prefixes[pos..pos + n],
            &CTX,
            &mut out,
        )
        .unwrap();
        pos += n;
        i += 1;
    }
    (out, msgs)
}

fn packed_updates(prefixes: &[IpNet]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let msgs = pack_announcements(
        &attrs_for(1),
        next_hop(),
        LinkLocalForm::Native,
        prefixes,
        &CTX,
        &mut out,
    )
    .unwrap();
    (out, msgs)
}

/// Decodes every message of the stream; returns the prefix count.
fn decode_stream(mut buf: &[u8]) -> usize {
    let mut prefixes = 0;
    while let Ok(Some(n)) = frame_length(buf, &CTX) {
        let (frame, rest) = buf.split_at(n);
        if let Ok(Decoded {
            message: Message::Update(u),
            ..
        }) = decode_message(frame, &CTX)
        {
            prefixes += u.nlri.len() + u.attributes.mp_reach.map_or(0, |m| m.nlri.len());
        }
        buf = rest;
    }
    prefixes
}

/// Real UPDATEs as RIPE RIS recorded them (BGP4MP, 4-octet AS subtypes).
fn ris_updates() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/mrt/updates.20160811.1600.gz"
    );
    wire::mrt::MrtReader::open_gz(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .filter_map(|r| match r {
            Ok(wire::mrt::MrtRecord::Bgp4mpMessage(m))
                if m.as_size == wire::mrt::AsSize::Four && !m.add_path =>
            {
                Some(m.message)
            }
            _ => None,
        })
        .filter(|m| m.get(18) == Some(&2))
        .collect()
}

fn bench_ris(c: &mut Criterion<ThreadCpuTime>) {
    let msgs = ris_updates();
    let ctx = CodecContext {
        extended_message: true,
        ..CTX
    };
    let count = |msgs: &[Vec<u8>]| -> usize {
        msgs.iter()
            .filter_map(|m| match decode_message(m, &ctx) {
                Ok(Decoded {
                    message: Message::Update(u),
                    ..
                }) => Some(
                    u.nlri.len()
                        + u.withdrawn.len()
                        + u.attributes.mp_reach.map_or(0, |r| r.nlri.len())
                        + u.attributes.mp_unreach.map_or(0, |r| r.withdrawn.len()),
                ),
                _ => None,
            })
            .sum()
    };
    let prefixes = count(&msgs);
    eprintln!(
        "ris_updates_2016: {} UPDATEs, {prefixes} prefixes (announced + withdrawn)",
        msgs.len()
    );
    let mut g = c.benchmark_group("decode_update");
    g.throughput(Throughput::Elements(prefixes as u64));
    g.bench_function("ris_updates_2016", |b| b.iter(|| count(black_box(&msgs))));
    g.finish();
}

fn bench(c: &mut Criterion<ThreadCpuTime>) {
    let prefixes = real_ipv4_prefixes();
    assert!(
        prefixes.len() > 900_000,
        "only {} IPv4 prefixes in {DATA}",
        prefixes.len()
    );
    let mut g = c.benchmark_group("decode_update");
    g.sample_size(20);
    for (name, (stream, msgs)) in [
        ("mp_reach_ll_2.5_per_update", small_updates(&prefixes)),
        ("mp_reach_ll_packed_4096", packed_updates(&prefixes)),
    ] {
        assert_eq!(decode_stream(&stream), prefixes.len());
        eprintln!(
            "{name}: {} prefixes in {msgs} UPDATEs, {} bytes",
            prefixes.len(),
            stream.len()
        );
        g.throughput(Throughput::Elements(prefixes.len() as u64));
        g.bench_function(name, |b| b.iter(|| decode_stream(black_box(&stream))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench, bench_ris
}
criterion_main!(benches);
