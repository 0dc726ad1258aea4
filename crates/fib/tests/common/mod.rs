//! Test hosts: a fresh network namespace per test, removed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fib::{FibConfig, Gateway};
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

pub fn ll(gw: &str, ifindex: u32) -> Gateway {
    Gateway::on_link(gw.parse().expect("gateway"), ifindex)
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
    // The shared data directory sits beside the repository; FIB_PREFIXES
    // names the file, VIA6_DATA its directory.
    let path = std::env::var("FIB_PREFIXES").unwrap_or_else(|_| {
        let dir = std::env::var("VIA6_DATA").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").into()
        });
        format!("{dir}/prefixes.txt.gz")
    });
    let f = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "shared data {path} cannot be opened ({e}): set FIB_PREFIXES to the \
             prefixes.txt.gz file or VIA6_DATA to its directory"
        )
    });
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

/// `ip monitor route` in a namespace, for "nothing changed" checks over a
/// whole interval. Readiness and completeness are proven with a marker
/// route instead of sleeps: the monitor is listening once it printed a
/// marker change made after it started, and everything before the last
/// marker change is printed once that change is (netlink delivers in
/// order), however slow the machine is.
pub struct RouteMonitor {
    ns_name: String,
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    marked: bool,
}

/// A blackhole needs no interface; no test installs this prefix.
const MARKER: &str = "192.0.2.250";

/// How long a marker may take to show: generous for a busy machine; a
/// healthy one prints it in milliseconds.
const MARKER_WAIT_SECS: u64 = 30;

impl RouteMonitor {
    pub fn start(ns: &Ns) -> RouteMonitor {
        let mut child = Command::new("ip")
            .args(["-n", &ns.name, "monitor", "route"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ip monitor route");
        let out = child.stdout.take().expect("piped stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let mut m = RouteMonitor {
            ns_name: ns.name.clone(),
            child,
            lines,
            reader: Some(reader),
            marked: false,
        };
        // The first change may come before the monitor subscribed: repeat
        // until one is printed.
        let end = Instant::now() + Duration::from_secs(MARKER_WAIT_SECS);
        loop {
            m.toggle_marker();
            if wait_for(1, || m.marker_lines() > 0) {
                return m;
            }
            assert!(
                Instant::now() < end,
                "ip monitor route never printed a change"
            );
        }
    }

    fn toggle_marker(&mut self) {
        let verb = if self.marked { "del" } else { "add" };
        run(&[
            "ip",
            "-n",
            &self.ns_name,
            "-4",
            "route",
            verb,
            "blackhole",
            MARKER,
        ])
        .expect("marker route");
        self.marked = !self.marked;
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn is_marker(line: &str) -> bool {
        line.split_whitespace().any(|w| w == MARKER)
    }

    fn marker_lines(&self) -> usize {
        self.snapshot()
            .iter()
            .filter(|l| Self::is_marker(l))
            .count()
    }

    /// Every route event since the start, once everything up to now has
    /// been printed; markers excluded. Stops the monitor.
    pub fn finish(mut self) -> Vec<String> {
        let seen = self.marker_lines();
        self.toggle_marker();
        assert!(
            wait_for(MARKER_WAIT_SECS, || self.marker_lines() > seen),
            "ip monitor route did not print the end marker: {:?}",
            self.snapshot()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.snapshot()
            .into_iter()
            .filter(|l| !Self::is_marker(l))
            .collect()
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
