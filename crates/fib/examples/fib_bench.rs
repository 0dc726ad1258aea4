//! Full-table FIB benchmark in a fresh network namespace.
//!
//! Installs, replaces (new gateway) and deletes every IPv4 prefix of the
//! shared real-table sample via a link-local IPv6 gateway, then does the
//! same with `ip -batch` for comparison, printing routes/s per phase.
//!
//!     cargo run --release -p fib --example fib_bench [-- --limit N] [--no-ip-batch]
//!         [--plain] [--ecmp] [--shuffle] [--batch-bytes N] [--source IPV4]
//!
//! `--plain` installs routes without nexthop objects; `--shuffle` feeds
//! the prefixes in a fixed random order instead of the file's sorted one;
//! `--ecmp` gives every route a second next hop on a second link;
//! `--source` sets `fib.source-address` (every route then carries it as
//! its preferred source, as via6d's IPv4 routes do).
//!
//! Needs root. The sample is read in place from ../shared/data (override
//! with FIB_PREFIXES=path).

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use fib::{Fib, FibChange, FibConfig, Gateway};
use ipnet::IpNet;

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(ns: &str, args: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args.split_whitespace())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "ip {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn count_bgp(ns: &str) -> Result<usize, String> {
    Ok(ip(ns, "-4 route show proto bgp")?.lines().count())
}

fn load(limit: usize) -> Result<Vec<IpNet>, String> {
    let path = std::env::var("FIB_PREFIXES").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/prefixes.txt.gz"
        )
        .into()
    });
    let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut v = Vec::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(f)).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let t = line.trim();
        if t.contains(':') {
            continue;
        }
        if let Ok(n) = t.parse::<IpNet>() {
            v.push(n.trunc());
            if v.len() >= limit {
                break;
            }
        }
    }
    Ok(v)
}

/// CPU seconds (user + system) of the FIB owner thread ("fib") and of its
/// batch sender thread ("fib-send").
fn fib_thread_cpu() -> [f64; 2] {
    let mut out = [0.0; 2];
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let slot = match comm.trim() {
            "fib" => 0,
            "fib-send" => 1,
            _ => continue,
        };
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        // Fields after the ")" ending comm: utime is the 12th, stime the 13th.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
        out[slot] = ticks / 100.0;
    }
    out
}

fn rss() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
        .unwrap_or_default()
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n} routes in {:.3} s = {:.0} routes/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    )
}

/// Feed one change per prefix in chunks of 10,000 (built as they go, as a
/// RIB would) and wait until the kernel has them all.
async fn fib_phase(
    fib: &Fib,
    prefixes: &[IpNet],
    change: impl Fn(IpNet) -> FibChange,
) -> Result<Duration, String> {
    let c0 = fib_thread_cpu();
    let t = Instant::now();
    for chunk in prefixes.chunks(10_000) {
        let ch: Vec<FibChange> = chunk.iter().map(|p| change(*p)).collect();
        fib.apply(ch).await.map_err(|e| e.to_string())?;
    }
    fib.flush().await.map_err(|e| e.to_string())?;
    let d = t.elapsed();
    let c1 = fib_thread_cpu();
    let (owner, sender) = (c1[0] - c0[0], c1[1] - c0[1]);
    println!(
        "       CPU: owner thread {owner:.2} s, sender thread {sender:.2} s \
         (the two overlap; with a free core the wall time is about the larger)"
    );
    Ok(d)
}

fn ip_batch_phase(ns: &str, lines: impl Iterator<Item = String>) -> Result<Duration, String> {
    let path = std::env::temp_dir().join(format!("fib_bench_{}.batch", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| e.to_string())?);
    for l in lines {
        writeln!(f, "{l}").map_err(|e| e.to_string())?;
    }
    f.flush().map_err(|e| e.to_string())?;
    drop(f);
    let t = Instant::now();
    let st = Command::new("ip")
        .args(["-n", ns, "-batch"])
        .arg(&path)
        .status()
        .map_err(|e| e.to_string())?;
    let d = t.elapsed();
    let _ = std::fs::remove_file(&path);
    if !st.success() {
        return Err("ip -batch failed".into());
    }
    Ok(d)
}

/// The command line; see the crate doc above.
struct Opts {
    limit: usize,
    ip_batch: bool,
    nexthop_objects: bool,
    batch_bytes: usize,
    source_address: Option<std::net::Ipv4Addr>,
    shuffle: bool,
    ecmp: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Opts {
        let flag = |name: &str| args.iter().any(|a| a == name);
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
        };
        Opts {
            limit: value("--limit")
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX),
            ip_batch: !flag("--no-ip-batch"),
            nexthop_objects: !flag("--plain"),
            batch_bytes: value("--batch-bytes")
                .and_then(|s| s.parse().ok())
                .unwrap_or(FibConfig::default().batch_bytes),
            source_address: value("--source").and_then(|s| s.parse().ok()),
            shuffle: flag("--shuffle"),
            ecmp: flag("--ecmp"),
        }
    }
}

/// Fisher-Yates with a fixed xorshift seed: reproducible.
fn shuffle(prefixes: &mut [IpNet]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..prefixes.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        prefixes.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

fn link_index(ns: &str, dev: &str) -> Result<u32, String> {
    ip(ns, &format!("-o link show dev {dev}"))?
        .split(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "no ifindex".to_owned())
}

/// A veth pair, both ends up, in `ns`; returns the first end's index.
fn add_link(ns: &str, a: &str, b: &str) -> Result<u32, String> {
    ip(ns, &format!("link add {a} type veth peer name {b}"))?;
    ip(ns, &format!("link set {a} up"))?;
    ip(ns, &format!("link set {b} up"))?;
    link_index(ns, a)
}

/// A fresh namespace with loopback up and the link the routes point to.
fn make_ns() -> Result<(Ns, u32), String> {
    let name = format!("fibbench-{}", std::process::id());
    Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .map_err(|e| e.to_string())?;
    let ns = Ns(name);
    ip(&ns.0, "link set lo up")?;
    let ix = add_link(&ns.0, "veth0", "veth1")?;
    Ok((ns, ix))
}

/// Install, replace (to fe80::2) and delete through the FIB, each
/// checked against what the kernel then has.
async fn fib_phases<F: Fn(IpNet) -> FibChange>(
    fib: &Fib,
    ns: &str,
    prefixes: &[IpNet],
    install: impl Fn(&'static str) -> F,
) -> Result<(), String> {
    let n = prefixes.len();
    let d = fib_phase(fib, prefixes, install("fe80::1")).await?;
    let c = count_bgp(ns)?;
    println!("fib    install: {}  (kernel has {c})", rate(n, d));
    let st = fib.status().await;
    println!(
        "       installed {} failed {} conflicts {}; process RSS {}",
        st.installed,
        st.failed_count,
        st.conflict_count,
        rss()
    );
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe { libc::malloc_trim(0) };
    println!("       process RSS after malloc_trim: {}", rss());
    let d = fib_phase(fib, prefixes, install("fe80::2")).await?;
    let c2 = ip(ns, "-4 route show proto bgp")?
        .lines()
        .filter(|l| l.contains("fe80::2"))
        .count();
    println!(
        "fib    replace: {}  (kernel has {c2} via fe80::2)",
        rate(n, d)
    );
    let d = fib_phase(fib, prefixes, |prefix| FibChange::Remove { prefix }).await?;
    let c = count_bgp(ns)?;
    println!("fib    delete:  {}  (kernel has {c})", rate(n, d));
    let st = fib.status().await;
    if st.failed_count > 0 || st.conflict_count > 0 {
        println!("failed {} conflicts {}", st.failed_count, st.conflict_count);
    }
    Ok(())
}

/// The same three phases with `ip -batch`, for comparison.
fn ip_batch_phases(ns: &str, prefixes: &[IpNet]) -> Result<(), String> {
    let n = prefixes.len();
    let d = ip_batch_phase(
        ns,
        prefixes
            .iter()
            .map(|p| format!("route add {p} via inet6 fe80::1 dev veth0 proto bgp metric 20")),
    )?;
    println!(
        "ip -batch install: {}  (kernel has {})",
        rate(n, d),
        count_bgp(ns)?
    );
    let d = ip_batch_phase(
        ns,
        prefixes
            .iter()
            .map(|p| format!("route replace {p} via inet6 fe80::2 dev veth0 proto bgp metric 20")),
    )?;
    println!("ip -batch replace: {}", rate(n, d));
    let d = ip_batch_phase(
        ns,
        prefixes
            .iter()
            .map(|p| format!("route del {p} proto bgp metric 20")),
    )?;
    println!(
        "ip -batch delete:  {}  (kernel has {})",
        rate(n, d),
        count_bgp(ns)?
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let o = Opts::parse(&args);
    let mut prefixes = load(o.limit)?;
    if o.shuffle {
        shuffle(&mut prefixes);
    }
    println!(
        "{} IPv4 prefixes; batch {} bytes; nexthop objects {}",
        prefixes.len(),
        o.batch_bytes,
        o.nexthop_objects
    );
    let (ns, ix) = make_ns()?;
    let fib = Fib::start(FibConfig {
        netns: Some(format!("/run/netns/{}", ns.0).into()),
        batch_bytes: o.batch_bytes,
        nexthop_objects: o.nexthop_objects,
        source_address: o.source_address,
        ..FibConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    // --ecmp: every route has a second hop, `fe80::3 dev veth2`.
    let ix2 = if o.ecmp {
        add_link(&ns.0, "veth2", "veth3")?
    } else {
        0
    };
    let ecmp = o.ecmp;
    let hop = |g: &str, ix: u32| {
        Gateway::on_link(
            g.parse().unwrap_or(std::net::Ipv6Addr::LOCALHOST.into()),
            ix,
        )
    };
    let install = |g: &'static str| {
        move |prefix| FibChange::Install {
            prefix,
            next_hops: if ecmp {
                vec![hop(g, ix), hop("fe80::3", ix2)].into()
            } else {
                vec![hop(g, ix)].into()
            },
        }
    };
    println!("       process RSS before: {}", rss());
    fib_phases(&fib, &ns.0, &prefixes, install).await?;
    fib.shutdown().await.map_err(|e| e.to_string())?;
    if o.ip_batch {
        ip_batch_phases(&ns.0, &prefixes)?;
    }
    Ok(())
}
