//! What the via6d end-to-end tests with a peer daemon share: the daemons
//! started in namespaces (killed on drop, also when a test fails), via6ctl
//! as JSON, the kernel route of one prefix, and polling with a bound.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How via6d names its peer on the veth `va`.
#[derive(Clone, Copy)]
pub enum Peering {
    /// `address: fe80::2%va`
    Address,
    /// `interface: va`: the peer is whoever neighbour discovery finds.
    Interface,
}

impl Peering {
    /// The neighbour's first line in via6d's YAML (after `- `).
    pub fn via6_neighbor(self) -> &'static str {
        match self {
            Peering::Address => "address: \"fe80::2%va\"",
            Peering::Interface => "interface: va",
        }
    }
}

/// Daemons and their directory, cleaned up on drop, last started first.
pub struct Procs {
    children: Vec<Child>,
    pub dir: PathBuf,
}

impl Procs {
    /// A fresh directory `via6-TAG-PID` under the temporary directory.
    pub fn new(tag: &str) -> Procs {
        let dir = std::env::temp_dir().join(format!("via6-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Procs {
            children: Vec::new(),
            dir,
        }
    }

    /// Starts `args` in namespace `ns`, its stderr in `log` in the directory.
    pub fn spawn(&mut self, ns: &str, args: &[&str], log: &str) {
        self.spawn_to(ns, args, log, Stdio::null());
    }

    /// [`Procs::spawn`] with stdout to `out` (the feeder's JSON events).
    pub fn spawn_to(&mut self, ns: &str, args: &[&str], log: &str, out: impl Into<Stdio>) {
        let log =
            std::fs::File::create(self.dir.join(log)).unwrap_or_else(|e| panic!("{log}: {e}"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(out)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        self.children.push(child);
    }

    /// Writes BIRD's config `conf`, has BIRD check it (`bird -p`, failing
    /// loudly with BIRD's words) and starts BIRD in `ns`; returns its
    /// control socket.
    pub fn start_bird(&mut self, ns: &str, conf: &str) -> String {
        let path = self.dir.join("bird.conf");
        std::fs::write(&path, conf).unwrap_or_else(|e| panic!("{e}"));
        let path = path.to_string_lossy().into_owned();
        let sock = self.dir.join("bird.ctl").to_string_lossy().into_owned();
        match Command::new("bird").args(["-p", "-c", &path]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("bird -p: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("bird: {e} (is BIRD 2 installed?)"),
        }
        self.spawn(ns, &["bird", "-f", "-c", &path, "-s", &sock], "bird.log");
        sock
    }

    /// Writes via6d's config `yaml` and starts via6d in `ns`; returns its
    /// control socket, in a directory of its own (the test directory may
    /// be world-writable for FRR, and via6d refuses such a directory).
    pub fn start_via6d(&mut self, ns: &str, yaml: impl FnOnce(&Path) -> String) -> PathBuf {
        let sock = self.dir.join("via6d").join("via6d.sock");
        let conf = self.dir.join("via6d.yaml");
        std::fs::write(&conf, yaml(&sock)).unwrap_or_else(|e| panic!("{e}"));
        let conf = conf.to_string_lossy().into_owned();
        self.spawn(
            ns,
            &[env!("CARGO_BIN_EXE_via6d"), "--config", &conf],
            "via6d.log",
        );
        sock
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `via6ctl --json ARGS` against `sock`, `None` if it fails.
pub fn via6ctl(sock: &Path, args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_via6ctl"))
        .arg("--socket")
        .arg(sock)
        .arg("--json")
        .args(args)
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// The kernel's IPv4 route to `prefix` in namespace `ns`, as `ip` shows it.
pub fn route(ns: &str, prefix: &str) -> String {
    crate::common::sh(&["ip", "-n", ns, "-4", "route", "show", prefix])
}

/// Polls `f` every 10 ms until it holds; panics naming `what` after `limit`.
/// Returns how long it took.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

/// `birdc -s SOCK CMD...`, panicking with BIRD's answer when it fails.
pub fn birdc(sock: &str, cmd: &[&str]) -> String {
    let mut args = vec!["birdc", "-s", sock];
    args.extend_from_slice(cmd);
    crate::common::sh(&args)
}

/// BIRD's row for peer `peer` in `show bfd sessions` (address, interface,
/// state, since), empty when BIRD has none.
pub fn bird_bfd_row(sock: &str, peer: &str) -> String {
    birdc(sock, &["show", "bfd", "sessions"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(peer))
        .map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// BIRD's `show protocols NAME` row (name, protocol, table, state, since,
/// info), empty when there is none.
pub fn bird_protocol_row(sock: &str, name: &str) -> String {
    birdc(sock, &["show", "protocols", name])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
