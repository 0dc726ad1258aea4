//! Test hosts: a fresh network namespace per test, removed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fib::{FibConfig, FibNextHop};
use ipnet::IpNet;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with `lo` up and a veth pair `veth0`/`veth1`
/// (both ends inside, both up).
pub struct Ns {
    pub name: String,
    /// Run the FIB with nexthop objects.
    pub nh: bool,
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        Ns::with(tag, false)
    }

    pub fn with(tag: &str, nh: bool) -> Ns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("fibt-{tag}-{}-{n}", std::process::id());
        run(&["ip", "netns", "add", &name]).expect("ip netns add (tests need root)");
        let ns = Ns { name, nh };
        ns.ip("link set lo up");
        ns.ip("link add veth0 type veth peer name veth1");
        ns.ip("link set veth0 up");
        ns.ip("link set veth1 up");
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Run `ip -n NS <args>` and return stdout; panics on failure.
    pub fn ip(&self, args: &str) -> String {
        self.try_ip(args).expect("ip command")
    }

    pub fn try_ip(&self, args: &str) -> Result<String, String> {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend(args.split_whitespace());
        run(&v)
    }

    /// `ip -n NS <args>` with any `nhid N ` removed, so that assertions
    /// read the same with and without nexthop objects.
    pub fn route(&self, args: &str) -> String {
        strip_nhid(&self.ip(args))
    }

    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.ip(&format!("-o link show dev {dev}"));
        out.split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .expect("ifindex")
    }

    pub fn config(&self) -> FibConfig {
        FibConfig {
            netns: Some(self.path()),
            nexthop_objects: self.nh,
            ..FibConfig::default()
        }
    }

    /// Lines of `ip route show proto bgp` for both families.
    pub fn bgp_routes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .route("-4 route show proto bgp")
            .lines()
            .map(str::to_owned)
            .collect();
        v.extend(
            self.ip("-6 route show proto bgp")
                .lines()
                .map(str::to_owned),
        );
        v
    }

    pub fn bgp_route_count(&self) -> usize {
        self.bgp_routes().len()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

pub fn strip_nhid(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut words = s.split(' ').peekable();
    let mut first = true;
    while let Some(w) = words.next() {
        if w == "nhid" {
            words.next();
            continue;
        }
        if !first {
            out.push(' ');
        }
        out.push_str(w);
        first = false;
    }
    out
}

pub fn ll(gw: &str, ifindex: u32) -> FibNextHop {
    FibNextHop {
        gateway: gw.parse().expect("gateway"),
        ifindex: Some(ifindex),
    }
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

/// Poll `f` until it returns true or `secs` pass.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The first `limit` IPv4 prefixes of the shared real-table sample
/// (CRLF lines; IPv6 lines skipped).
pub fn real_v4_prefixes(limit: usize) -> Vec<IpNet> {
    // The shared data directory sits beside the repository.
    let path = std::env::var("FIB_PREFIXES").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/prefixes.txt.gz"
        )
        .into()
    });
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut v = Vec::new();
    for line in r.lines() {
        let line = line.expect("read line");
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
    v
}
