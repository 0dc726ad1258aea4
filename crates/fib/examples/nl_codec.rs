//! Netlink codec timing without a kernel: the hand-built route encoder
//! against netlink-packet-route's typed messages, and the hand-built route
//! parser against netlink-packet-route's, over every IPv4 prefix of the
//! shared real-table sample (the numbers in README.md, "Why hand-built
//! where it is").
//!
//!     cargo run --release -p fib --example nl_codec [-- --rounds N]
//!
//! Encoding packs create requests into 256 KiB buffers as the FIB does
//! (a route through a nexthop object, and an inline `RTA_VIA` one);
//! parsing reads a dump-shaped buffer of the same routes. Each figure is
//! the thread's CPU time, best of `--rounds` runs (default 5). Reads the sample in place from
//! ../shared/data (override with FIB_PREFIXES=path).

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::time::Duration;

use fib::codec::{self, KernelRoute, Messages, MsgBuf, RouteOp, RouteParams};
use fib::Gateway;
use ipnet::IpNet;

const BATCH: usize = 256 * 1024;

type Encode = fn(&mut MsgBuf, RouteOp, u32, &RouteParams, &IpNet, &[Gateway], Option<u32>);
type Parse = fn(&[u8]) -> Option<KernelRoute>;

/// CPU time of this thread (from /proc/thread-self/schedstat): on a
/// shared machine wall time counts the time other processes ran, and
/// more of it the longer a run is.
struct Cpu(u64);

impl Cpu {
    fn now() -> Cpu {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        Cpu(s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(Cpu::now().0.saturating_sub(self.0))
    }
}

fn load() -> Result<Vec<IpNet>, String> {
    let path = std::env::var("FIB_PREFIXES").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/prefixes.txt.gz"
        )
        .into()
    });
    let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for line in r.lines() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        if let Ok(p @ IpNet::V4(_)) = line.trim().parse::<IpNet>() {
            out.push(p);
        }
    }
    Ok(out)
}

/// Encode every prefix into 256 KiB batches; returns the time and the
/// bytes written (so the two encoders can be seen to agree).
fn encode(
    f: Encode,
    prefixes: &[IpNet],
    p: &RouteParams,
    hops: &[Gateway],
    nh: Option<u32>,
) -> (Duration, usize) {
    let mut b = MsgBuf::with_capacity(BATCH + 4096);
    let mut bytes = 0;
    let t = Cpu::now();
    for (i, prefix) in prefixes.iter().enumerate() {
        f(&mut b, RouteOp::Create, i as u32, p, prefix, hops, nh);
        if b.len() >= BATCH {
            bytes += b.len();
            std::hint::black_box(b.bytes());
            b.clear();
        }
    }
    bytes += b.len();
    std::hint::black_box(b.bytes());
    (t.elapsed(), bytes)
}

/// Parse a dump-shaped buffer; returns the time and the routes read.
fn parse(f: Parse, dump: &[u8]) -> (Duration, usize) {
    let t = Cpu::now();
    let mut n = 0;
    for m in Messages::new(dump) {
        if let Some(r) = f(m.payload) {
            std::hint::black_box(&r);
            n += 1;
        }
    }
    (t.elapsed(), n)
}

fn best<T>(rounds: usize, mut f: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut out = f();
    for _ in 1..rounds {
        let r = f();
        if r.0 < out.0 {
            out = r;
        }
    }
    out
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

fn main() -> Result<(), String> {
    let mut rounds = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--rounds N")?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let prefixes = load()?;
    if Cpu::now().0 == 0 {
        return Err("no /proc/thread-self/schedstat: cannot measure CPU time".into());
    }
    let n = prefixes.len();
    let p = RouteParams {
        table: 254,
        protocol: 186,
        metric: 20,
        prefsrc: Some(Ipv4Addr::new(10, 255, 0, 2)),
    };
    let hops = [Gateway::on_link(
        "fe80::1".parse().map_err(|_| "gateway")?,
        2,
    )];
    println!("{n} IPv4 prefixes, best of {rounds} rounds");
    let encoders: [(&str, Encode); 2] = [
        ("hand-built", codec::put_route),
        ("netlink-packet-route", codec::put_route_typed),
    ];
    for (what, nh) in [("nexthop object", Some(186_001)), ("inline RTA_VIA", None)] {
        for (name, f) in encoders {
            let (d, bytes) = best(rounds, || encode(f, &prefixes, &p, &hops, nh));
            println!(
                "encode {what:<15} {name:<21} {:>7.1} ms  {:>6.1} ns/route  {bytes} bytes",
                d.as_secs_f64() * 1e3,
                ns_per(d, n)
            );
        }
    }
    // A dump as the kernel sends it for routes without nexthop objects.
    let mut dump = MsgBuf::with_capacity(n * 100);
    for (i, prefix) in prefixes.iter().enumerate() {
        codec::put_route(
            &mut dump,
            RouteOp::Create,
            i as u32,
            &p,
            prefix,
            &hops,
            None,
        );
    }
    let parsers: [(&str, Parse); 2] = [
        ("hand-built", codec::parse_route_raw),
        ("netlink-packet-route", codec::parse_route),
    ];
    for (name, f) in parsers {
        let (d, routes) = best(rounds, || parse(f, dump.bytes()));
        println!(
            "parse  dump            {name:<21} {:>7.1} ms  {:>6.1} ns/route  {routes} routes",
            d.as_secs_f64() * 1e3,
            ns_per(d, n)
        );
    }
    Ok(())
}
