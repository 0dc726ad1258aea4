//! UPDATE encoding throughput on the real table: the feeder's
//! pre-encoding, which is `wire::pack_announcements` per attribute set
//! (RFC 8950 `[::, LL]` next hop, about 2.5 prefixes per set) and
//! `wire::pack_withdrawals` for withdraw-all. Measured in thread CPU time,
//! since the machines this runs on share two cores with other jobs.
//!
//!     cargo bench -p feeder --bench encode

use std::path::Path;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use feeder::table::{self, NextHopSpec, Select, Shape};
use wire::{CodecContext, IpNet, LinkLocalForm};

/// Prefixes per iteration: a ninth of the table keeps one sample short.
const PREFIXES: usize = 100_000;

struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
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
        WallTime.formatter()
    }
}

fn prefixes() -> Vec<IpNet> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/prefixes.txt.gz");
    let select = Select {
        ipv6: false,
        limit: Some(PREFIXES),
    };
    match table::load_text(&path, select) {
        Ok(p) => p,
        Err(e) => panic!("the encode bench needs the shared table: {e}"),
    }
}

fn bench(c: &mut Criterion<ThreadCpuTime>) {
    let ps = prefixes();
    let shape = Shape {
        local_as: 65001,
        avoid_as: Some(65002),
        seed: 1,
    };
    let groups = table::group(&ps, &shape);
    let nh = NextHopSpec {
        link_local: "fe80::1".parse().unwrap_or(std::net::Ipv6Addr::LOCALHOST),
        global: None,
        form: LinkLocalForm::Native,
    };
    let ctx = CodecContext {
        four_octet_as: true,
        extended_message: false,
        extended_next_hop_ipv4: true,
    };
    let mut g = c.benchmark_group("encode_update");
    g.throughput(Throughput::Elements(ps.len() as u64));
    g.bench_function("pack_announcements_2.5_per_update", |b| {
        let mut out = Vec::with_capacity(ps.len() * 50);
        b.iter(|| {
            out.clear();
            for grp in &groups {
                let _ = wire::pack_announcements(
                    &grp.attrs,
                    wire::NextHop::V6(wire::Ipv6NextHop {
                        global: nh.global,
                        link_local: Some(nh.link_local),
                    }),
                    nh.form,
                    &grp.prefixes,
                    &ctx,
                    &mut out,
                );
            }
            black_box(out.len())
        })
    });
    g.bench_function("pack_withdrawals", |b| {
        let mut out = Vec::with_capacity(ps.len() * 5);
        b.iter(|| {
            out.clear();
            let _ = wire::pack_withdrawals(black_box(&ps), &ctx, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

fn config() -> Criterion<ThreadCpuTime> {
    Criterion::default()
        .with_measurement(ThreadCpuTime)
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
