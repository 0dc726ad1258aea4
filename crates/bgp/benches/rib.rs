//! RIB insert + best path for a full IPv4 table (901,899 real prefixes from
//! `../shared/data/prefixes.txt.gz`), fed as UPDATEs the way a peer sends
//! them: about 2.5 prefixes per attribute set, AS paths of 1 to 7 hops,
//! communities on about half, one `[::, LL]` next hop.
//!
//! Before the criterion runs it prints prefixes/s and heap bytes per route
//! (a counting allocator) for one full insert.
//!
//! Data: `VIA6_PREFIXES` or the first of `../shared/data/prefixes.txt.gz`
//! relative to the workspace and its parents.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use bgp::rib::Rib;
use bgp::{EstablishedSession, NeighborConfig, PeerId, PolicyRef, SpeakerConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use ipnet::{IpNet, Ipv4Net};
use wire::{
    AsPath, AsSegment, CodecContext, Family, MpNextHop, MpReach, Origin, PathAttributes, Update,
};

/// Counts live heap bytes. The one `unsafe` of the benchmark: a global
/// allocator is an `unsafe` trait; each method passes its caller's
/// contract on, unchanged, to the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn data_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VIA6_PREFIXES") {
        return Some(p.into());
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let p = dir.join("../shared/data/prefixes.txt.gz");
        if p.exists() {
            return Some(p);
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn load_prefixes() -> Vec<Ipv4Net> {
    let path =
        data_path().unwrap_or_else(|| panic!("prefixes.txt.gz not found; set VIA6_PREFIXES"));
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    r.lines()
        .map_while(Result::ok)
        .filter_map(|l| l.trim_end_matches(['\r', '\n']).parse::<Ipv4Net>().ok())
        .collect()
}

/// A tiny deterministic generator (xorshift) for attribute diversity.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn updates(prefixes: &[Ipv4Net]) -> Vec<Update> {
    let nh = MpNextHop::V6Pair(
        Ipv6Addr::UNSPECIFIED,
        "fe80::1".parse().unwrap_or(Ipv6Addr::LOCALHOST),
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let mut i = 0;
    while i < prefixes.len() {
        // 1 to 4 prefixes per UPDATE: 2.5 on average.
        let n = 1 + (rng.next() % 4) as usize;
        let hops = 1 + (rng.next() % 7) as usize;
        let mut path = vec![65001u32];
        for _ in 1..hops {
            path.push(1 + (rng.next() % 60000) as u32);
        }
        let communities = if rng.next() & 1 == 0 {
            vec![
                (65001 << 16) | (rng.next() % 100) as u32,
                (65001 << 16) | 1000,
            ]
        } else {
            Vec::new()
        };
        let nlri: Vec<IpNet> = prefixes
            .iter()
            .skip(i)
            .take(n)
            .map(|p| IpNet::V4(*p))
            .collect();
        i += n;
        out.push(Update {
            withdrawn: vec![],
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath {
                    segments: vec![AsSegment::Sequence(path)],
                }),
                communities,
                mp_reach: Some(MpReach {
                    family: Family::Ipv4Unicast,
                    next_hop: nh,
                    nlri,
                }),
                ..Default::default()
            },
            nlri: vec![],
        });
    }
    out
}

/// A link-local IPv4 neighbour on eth0 that accepts everything.
fn neighbor(address: Ipv6Addr, remote_as: u32, export: PolicyRef) -> NeighborConfig {
    NeighborConfig {
        address: address.into(),
        interface: Some("eth0".into()),
        remote_as,
        port: 179,
        families: vec![Family::Ipv4Unicast],
        extended_next_hop: true,
        passive: false,
        hold_time: 90,
        connect_retry: std::time::Duration::from_secs(5),
        import: PolicyRef::AcceptAll,
        export,
        max_prefix: None,
        link_local_form: wire::LinkLocalForm::Native,
        description: None,
        password: None,
        ttl_security: false,
        graceful_restart: Default::default(),
    }
}

fn config() -> SpeakerConfig {
    SpeakerConfig {
        router_id: [192, 0, 2, 2].into(),
        asn: 65002,
        listen: None,
        neighbors: vec![
            neighbor(
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                65001,
                PolicyRef::Default,
            ),
            neighbor(
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3),
                65003,
                PolicyRef::Default,
            ),
            neighbor(
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 4),
                65004,
                PolicyRef::AcceptAll,
            ),
        ],
        originate_v4: vec![],
        originate_v6: vec![],
        policies: Default::default(),
        max_paths: 1,
        multipath_relax: false,
    }
}

fn session(cfg: &SpeakerConfig) -> EstablishedSession {
    session_of(cfg, 0)
}

fn session_of(cfg: &SpeakerConfig, i: usize) -> EstablishedSession {
    EstablishedSession {
        peer: PeerId(i as u32),
        peer_address: cfg.neighbors[i].address,
        peer_as: cfg.neighbors[i].remote_as,
        peer_router_id: [10, 0, 0, 1 + i as u8].into(),
        local_as: cfg.asn,
        local_address: "fe80::2"
            .parse()
            .unwrap_or(std::net::IpAddr::V6(Ipv6Addr::LOCALHOST)),
        local_link_local: "fe80::2".parse().ok(),
        local_global_v6: None,
        local_ipv4: None,
        ifindex: Some(2),
        ebgp: true,
        families: vec![Family::Ipv4Unicast],
        codec: CodecContext {
            four_octet_as: true,
            extended_message: false,
            extended_next_hop_ipv4: true,
        },
        route_refresh: true,
        enhanced_route_refresh: false,
        graceful_restart: None,
    }
}

/// Inserts everything, draining FIB changes as the task does; returns the
/// number of FIB changes.
fn insert_all(rib: &mut Rib, ups: &[Update]) -> usize {
    let mut changes = 0;
    for (i, u) in ups.iter().enumerate() {
        rib.update(PeerId(0), u, false);
        if i % 256 == 255 {
            changes += rib.take_fib_changes().len();
        }
    }
    changes + rib.take_fib_changes().len()
}

/// CPU seconds of this thread: steadier than wall time on a busy machine.
fn cpu_secs() -> f64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9
}

fn vm_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn bench(c: &mut Criterion) {
    let prefixes = load_prefixes();
    let ups = updates(&prefixes);
    let cfg = config();

    // One measured run: throughput and memory per route.
    let live0 = LIVE.load(Ordering::Relaxed);
    let rss0 = vm_rss_kib().unwrap_or(0);
    let mut rib = Rib::new(cfg.clone());
    rib.peer_up(session(&cfg), None);
    let t = Instant::now();
    let cpu = cpu_secs();
    let changes = insert_all(&mut rib, &ups);
    let cpu = cpu_secs() - cpu;
    let dt = t.elapsed();
    let live = LIVE.load(Ordering::Relaxed) - live0;
    let rss = vm_rss_kib().unwrap_or(0).saturating_sub(rss0);
    let stats = rib.stats();
    assert_eq!(stats.prefixes, changes, "every prefix reaches the FIB once");
    println!(
        "rib: {} prefixes in {} UPDATEs, {} attribute sets: {:.3} s wall, {:.3} s CPU, \
         {:.0} prefixes/s (CPU), heap {:.1} MB = {:.1} bytes/route, VmRSS +{:.1} MB",
        stats.prefixes,
        ups.len(),
        stats.attr_sets,
        dt.as_secs_f64(),
        cpu,
        stats.prefixes as f64 / cpu,
        live as f64 / 1e6,
        live as f64 / stats.prefixes.max(1) as f64,
        rss as f64 / 1024.0,
    );
    // A second peer with the same table and longer paths: every prefix
    // gets a second path, the best stays.
    let second: Vec<Update> = ups
        .iter()
        .map(|u| {
            let mut u = u.clone();
            if let Some(p) = u.attributes.as_path.as_mut() {
                p.segments
                    .insert(0, AsSegment::Sequence(vec![65003, 65003]));
            }
            if let Some(mp) = u.attributes.mp_reach.as_mut() {
                mp.next_hop = MpNextHop::V6Pair(
                    Ipv6Addr::UNSPECIFIED,
                    "fe80::3".parse().unwrap_or(Ipv6Addr::LOCALHOST),
                );
            }
            u
        })
        .collect();
    rib.peer_up(session_of(&cfg, 1), None);
    let live1 = LIVE.load(Ordering::Relaxed);
    let rss1 = vm_rss_kib().unwrap_or(0);
    let cpu = cpu_secs();
    let mut changes = 0;
    for (i, u) in second.iter().enumerate() {
        rib.update(PeerId(1), u, false);
        if i % 256 == 255 {
            changes += rib.take_fib_changes().len();
        }
    }
    changes += rib.take_fib_changes().len();
    println!(
        "rib: second peer, same table with longer paths: {:.3} s CPU, {changes} FIB changes, \
         heap +{:.1} bytes/prefix, VmRSS +{:.1} bytes/prefix",
        cpu_secs() - cpu,
        (LIVE.load(Ordering::Relaxed) - live1) as f64 / stats.prefixes.max(1) as f64,
        vm_rss_kib().unwrap_or(0).saturating_sub(rss1) as f64 * 1024.0
            / stats.prefixes.max(1) as f64
    );
    drop(second);
    let cpu = cpu_secs();
    rib.peer_down(PeerId(1));
    println!(
        "rib: second peer down: {:.3} s CPU, {} FIB changes",
        cpu_secs() - cpu,
        rib.take_fib_changes().len()
    );
    // A downstream peer that takes everything: the initial dump.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel(1 << 20);
    let live1 = LIVE.load(Ordering::Relaxed);
    let cpu = cpu_secs();
    rib.peer_up(session_of(&cfg, 2), Some(out_tx));
    let queued = LIVE.load(Ordering::Relaxed) - live1;
    loop {
        rib.drain_outputs();
        if !rib.pump_dumps() {
            break;
        }
    }
    rib.drain_outputs();
    let cpu = cpu_secs() - cpu;
    let (mut bytes, mut msgs) = (0usize, 0usize);
    while let Ok(bgp::PeerOutput::Messages(m)) = out_rx.try_recv() {
        bytes += m.len();
        msgs += 1;
    }
    println!(
        "rib: initial dump to a new peer: {:.3} s CPU, {:.1} MB in {msgs} chunks, \
         first step queued heap {:.1} MB, advertised {}",
        cpu,
        bytes as f64 / 1e6,
        queued as f64 / 1e6,
        rib.peer_counts(PeerId(2)).advertised
    );
    rib.peer_down(PeerId(2));
    // Withdraw everything by UPDATE (the feeder's withdraw-all), then
    // insert again and drop the session.
    let withdrawals: Vec<Update> = prefixes
        .chunks(1000)
        .map(|c| Update {
            withdrawn: c.to_vec(),
            ..Default::default()
        })
        .collect();
    let cpu = cpu_secs();
    let removed = insert_all(&mut rib, &withdrawals);
    println!(
        "rib: withdraw-all by UPDATE, {removed} removals in {:.3} s CPU, {} prefixes left",
        cpu_secs() - cpu,
        rib.stats().prefixes
    );
    insert_all(&mut rib, &ups);
    let cpu = cpu_secs();
    rib.peer_down(PeerId(0));
    let removed = rib.take_fib_changes().len();
    println!(
        "rib: peer down, {removed} removals in {:.3} s CPU",
        cpu_secs() - cpu
    );
    drop(rib);
    pipeline(&cfg, &ups);

    let mut g = c.benchmark_group("rib");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(prefixes.len() as u64));
    g.bench_function("insert_best_path_full_table", |b| {
        b.iter_with_large_drop(|| {
            let mut rib = Rib::new(cfg.clone());
            rib.peer_up(session(&cfg), None);
            insert_all(&mut rib, &ups);
            rib
        })
    });
    g.finish();
}

/// The same table through `spawn_rib`: UPDATEs in over the bounded input
/// channel, FIB changes out in chunks, timed until the last route and
/// `InitialTablesIn` arrived.
fn pipeline(cfg: &SpeakerConfig, ups: &[Update]) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        return;
    };
    let inputs: Vec<bgp::RibInput> = ups
        .iter()
        .cloned()
        .map(|u| bgp::RibInput::update(PeerId(0), u))
        .collect();
    // One neighbour: End-of-RIB from it completes the initial tables.
    let mut cfg = cfg.clone();
    cfg.neighbors.truncate(1);
    rt.block_on(async move {
        let (fib_tx, mut fib_rx) = tokio::sync::mpsc::channel(64);
        let (tx, _handle) = bgp::spawn_rib(&cfg, fib_tx);
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while out_rx.recv().await.is_some() {} });
        let t = Instant::now();
        let _ = tx
            .send(bgp::RibInput::Established {
                session: session(&cfg),
                outbound: out_tx,
            })
            .await;
        let feeder = tokio::spawn(async move {
            for i in inputs {
                if tx.send(i).await.is_err() {
                    return;
                }
            }
            // End-of-RIB.
            let _ = tx
                .send(bgp::RibInput::update(PeerId(0), Update::default()))
                .await;
            std::future::pending::<()>().await;
        });
        let (mut n, mut batches) = (0usize, 0usize);
        while let Some(ev) = fib_rx.recv().await {
            match ev {
                bgp::FibEvent::Changes(c) => {
                    n += c.len();
                    batches += 1;
                }
                bgp::FibEvent::InitialTablesIn => break,
            }
        }
        println!(
            "rib task: {n} FIB changes in {batches} batches, InitialTablesIn after {:.3} s",
            t.elapsed().as_secs_f64()
        );
        feeder.abort();
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
