//! A lab: hosts (network namespaces), links (veth pairs carrying only IPv6
//! link-local addresses) and the daemons running on them. Everything a lab
//! creates is removed when it is dropped, on panic, and on Ctrl-C.

use std::fs;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cleanup;
use crate::error::{Error, Result};
use crate::exec;

/// Every namespace this crate makes starts with this, then the pid of the
/// test process, `n`, a per-process counter: unique per run and
/// recognisable by the stale sweep.
pub const NS_PREFIX: &str = "v6i";

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One host: a network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Short name used in messages and file names ("bird", "via6", "a").
    pub name: String,
    /// The namespace's name (`ip netns`), unique per run.
    pub ns: String,
}

/// One end of a veth link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEnd {
    pub host: Host,
    pub ifname: String,
    /// The only address on the interface (`/64`, `nodad`).
    pub ll: Ipv6Addr,
}

impl LinkEnd {
    /// `fe80::1%eth0`: how BIRD and via6 name a link-local neighbour.
    pub fn scoped(&self) -> String {
        format!("{}%{}", self.ll, self.ifname)
    }
}

/// A veth pair between two hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: LinkEnd,
    pub b: LinkEnd,
}

/// Which daemon a record is, for evidence collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonKind {
    Bird,
    Via6d,
    Other,
}

/// A running (or stopped) daemon of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub name: String,
    pub kind: DaemonKind,
    pub host: Host,
    pub pid: u32,
    /// stdout and stderr of the daemon.
    pub log: PathBuf,
    /// Control socket (BIRD's `-s`, via6d's `control-socket`).
    pub socket: PathBuf,
}

struct Tracked {
    daemon: Daemon,
    child: Option<Child>,
}

/// A set of hosts, links and daemons that lives as long as this value.
pub struct Lab {
    id: String,
    scenario: String,
    dir: PathBuf,
    hosts: Mutex<Vec<Host>>,
    daemons: Mutex<Vec<Tracked>>,
    evidence_shown: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fails unless we are root and the tools a lab needs are on PATH.
pub fn check_prerequisites() -> Result<()> {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Prerequisite(
            "network namespaces need root: run `cargo test -p interop` as root".into(),
        ));
    }
    for tool in ["ip", "bird", "birdc", "ping"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(Error::Prerequisite(format!(
                "`{tool}` not found on PATH (Debian: apt-get install bird2 iproute2 iputils-ping)"
            )));
        }
    }
    Ok(())
}

impl Lab {
    /// Creates an empty lab for `scenario`, with its run directory under
    /// the system temp dir.
    pub fn new(scenario: &str) -> Result<Lab> {
        check_prerequisites()?;
        cleanup::install_signal_teardown();
        cleanup::sweep_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{NS_PREFIX}{}n{n}", std::process::id());
        let dir = std::env::temp_dir().join("via6-interop").join(&id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Lab {
            id,
            scenario: scenario.to_string(),
            dir,
            hosts: Mutex::new(Vec::new()),
            daemons: Mutex::new(Vec::new()),
            evidence_shown: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The unique id of this lab (prefix of its namespace names).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Directory for configs, sockets and logs of this lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds a host: a namespace with `lo` up, forwarding on for both
    /// families and DAD off (addresses usable at once).
    pub fn add_host(&self, name: &str) -> Result<Host> {
        let ns = format!("{}{}", self.id, name);
        exec::run_args(&["ip", "netns", "add", &ns])?;
        cleanup::register_namespace(&self.id, &ns);
        let host = Host {
            name: name.to_string(),
            ns,
        };
        lock(&self.hosts).push(host.clone());
        self.ip(&host, &["link", "set", "lo", "up"])?;
        for (key, value) in [
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv4.conf.all.forwarding", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
        ] {
            self.sysctl(&host, key, value)?;
        }
        Ok(host)
    }

    /// Sets a sysctl inside a host (`/proc/sys/net` is per namespace).
    pub fn sysctl(&self, host: &Host, key: &str, value: &str) -> Result<()> {
        self.exec(host, &["sysctl", "-qw", &format!("{key}={value}")])
            .map(|_| ())
    }

    /// `ip -n NS ARGS...`, stdout on success.
    pub fn ip(&self, host: &Host, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &host.ns]).args(args);
        exec::run(&mut cmd)
    }

    /// Runs a program inside a host, stdout on success.
    pub fn exec(&self, host: &Host, args: &[&str]) -> Result<String> {
        exec::run(&mut self.command(host, args))
    }

    /// A `Command` that runs `args` inside `host` (`ip netns exec`).
    pub fn command(&self, host: &Host, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns]).args(args);
        cmd
    }

    /// Links `a` and `b` with a veth pair, `fe80::1` on a's end and
    /// `fe80::2` on b's.
    pub fn link(&self, a: &Host, a_if: &str, b: &Host, b_if: &str) -> Result<Link> {
        self.link_ll(
            a,
            a_if,
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            b,
            b_if,
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
        )
    }

    /// Links `a` and `b` with a veth pair created directly inside both
    /// namespaces (so names only need to be unique per host), each end
    /// carrying exactly one link-local address and nothing generated by
    /// the kernel (`addrgenmode none`).
    pub fn link_ll(
        &self,
        a: &Host,
        a_if: &str,
        a_ll: Ipv6Addr,
        b: &Host,
        b_if: &str,
        b_ll: Ipv6Addr,
    ) -> Result<Link> {
        for name in [a_if, b_if] {
            if name.is_empty() || name.len() > IFNAME_MAX {
                return Err(Error::Check(format!(
                    "interface name {name:?} must be 1..={IFNAME_MAX} bytes"
                )));
            }
        }
        exec::run_args(&[
            "ip", "link", "add", a_if, "netns", &a.ns, "type", "veth", "peer", "name", b_if,
            "netns", &b.ns,
        ])?;
        let link = Link {
            a: LinkEnd {
                host: a.clone(),
                ifname: a_if.to_string(),
                ll: a_ll,
            },
            b: LinkEnd {
                host: b.clone(),
                ifname: b_if.to_string(),
                ll: b_ll,
            },
        };
        for end in [&link.a, &link.b] {
            let h = &end.host;
            let ifn = end.ifname.as_str();
            self.ip(h, &["link", "set", ifn, "addrgenmode", "none"])?;
            self.sysctl(h, &format!("net.ipv6.conf.{ifn}.accept_dad"), "0")?;
            self.ip(
                h,
                &[
                    "addr",
                    "add",
                    &format!("{}/64", end.ll),
                    "dev",
                    ifn,
                    "nodad",
                ],
            )?;
            self.ip(h, &["link", "set", ifn, "up"])?;
        }
        Ok(link)
    }

    /// Adds an address (`10.255.0.1/32`, `2001:db8::1/64`) to an interface,
    /// without DAD.
    pub fn add_addr(&self, host: &Host, dev: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(host, &args).map(|_| ())
    }

    /// Brings an interface up or down.
    pub fn set_link(&self, host: &Host, dev: &str, up: bool) -> Result<()> {
        self.ip(host, &["link", "set", dev, if up { "up" } else { "down" }])
            .map(|_| ())
    }

    /// Takes one end of a link down or up, like a flapping port. Linux
    /// drops link-local addresses on admin down whatever
    /// `keep_addr_on_down` says, and with `addrgenmode none` nothing
    /// regenerates them; so on up the end's configured link-local address
    /// is put back, as the kernel would regenerate an EUI-64 one.
    pub fn set_link_end(&self, end: &LinkEnd, up: bool) -> Result<()> {
        self.set_link(&end.host, &end.ifname, up)?;
        if up {
            let have = self.ip(&end.host, &["-6", "addr", "show", "dev", &end.ifname])?;
            if !have.contains(&format!("{}/64", end.ll)) {
                self.ip(
                    &end.host,
                    &[
                        "addr",
                        "add",
                        &format!("{}/64", end.ll),
                        "dev",
                        &end.ifname,
                        "nodad",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// What the kernel of `host` has for exactly `prefix` in the main
    /// table (`ip route show exact`); empty when there is no such route.
    /// IPv4 routes with an IPv6 gateway read `via inet6 fe80::1 dev eth0`.
    pub fn kernel_route(&self, host: &Host, prefix: &str) -> Result<String> {
        let fam = if prefix.contains(':') { "-6" } else { "-4" };
        self.ip(host, &[fam, "route", "show", "exact", prefix])
            .map(|s| s.trim().to_string())
    }

    /// Spawns a long-running daemon inside `host`, stdout and stderr to
    /// `<dir>/<name>.log`, in its own process group.
    pub fn spawn_daemon(
        &self,
        host: &Host,
        name: &str,
        kind: DaemonKind,
        socket: PathBuf,
        args: &[&str],
    ) -> Result<Daemon> {
        use std::os::unix::process::CommandExt;
        let log = self.dir.join(format!("{name}.log"));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
        let err_file = file
            .try_clone()
            .map_err(|e| Error::io(format!("dup {}", log.display()), e))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            // Plain logs in the evidence (tracing honours NO_COLOR).
            .env("NO_COLOR", "1")
            .process_group(0);
        let line = exec::describe(&cmd);
        let child = cmd
            .spawn()
            .map_err(|source| Error::Spawn { cmd: line, source })?;
        let pid = child.id();
        cleanup::register_pid(&self.id, pid as i32);
        let daemon = Daemon {
            name: name.to_string(),
            kind,
            host: host.clone(),
            pid,
            log,
            socket,
        };
        let mut ds = lock(&self.daemons);
        // A restarted daemon replaces its old record (same name).
        ds.retain(|t| t.daemon.name != name || t.child.is_some());
        ds.push(Tracked {
            daemon: daemon.clone(),
            child: Some(child),
        });
        Ok(daemon)
    }

    /// Kills a daemon with SIGKILL (no goodbye on the wire: the peer only
    /// learns through TCP or its hold timer) and reaps it.
    pub fn kill(&self, daemon: &Daemon) -> Result<()> {
        self.stop(daemon, libc::SIGKILL)
    }

    /// Stops a daemon with `signal`, waits up to 10 s for it to exit, then
    /// kills it.
    pub fn stop(&self, daemon: &Daemon, signal: i32) -> Result<()> {
        let mut ds = lock(&self.daemons);
        let Some(t) = ds
            .iter_mut()
            .find(|t| t.daemon.pid == daemon.pid && t.child.is_some())
        else {
            return Ok(());
        };
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(daemon.pid as i32, signal);
        }
        if let Some(mut child) = t.child.take() {
            let start = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if start.elapsed() > Duration::from_secs(10) => {
                        cleanup::kill_group(daemon.pid as i32);
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        cleanup::forget_pid(&self.id, daemon.pid as i32);
        Ok(())
    }

    /// Sends `signal` to a daemon without waiting (e.g. SIGSTOP to freeze
    /// it: its TCP sessions stay open but silent, so only hold timers end
    /// them; SIGCONT to resume).
    pub fn signal(&self, daemon: &Daemon, signal: i32) -> Result<()> {
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(daemon.pid as i32, signal) } != 0 {
            return Err(Error::io(
                format!("signal {signal} to {} (pid {})", daemon.name, daemon.pid),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Whether a daemon is still running (it may have crashed).
    pub fn is_running(&self, daemon: &Daemon) -> bool {
        let mut ds = lock(&self.daemons);
        ds.iter_mut()
            .find(|t| t.daemon.pid == daemon.pid)
            .and_then(|t| t.child.as_mut())
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    /// Hosts of the lab, in creation order.
    pub fn hosts(&self) -> Vec<Host> {
        lock(&self.hosts).clone()
    }

    /// Daemons of the lab (latest record per name), in start order.
    pub fn daemons(&self) -> Vec<Daemon> {
        lock(&self.daemons)
            .iter()
            .map(|t| t.daemon.clone())
            .collect()
    }

    /// Polls `check` until it returns `Ok(true)` or `timeout` passes. An
    /// `Err` from `check` means "not yet" and is kept as the last
    /// observation. On timeout the error carries the evidence of every
    /// host (see [`Lab::evidence`]).
    pub fn wait_until<F>(&self, timeout: Duration, what: &str, check: F) -> Result<()>
    where
        F: FnMut() -> Result<bool>,
    {
        match crate::wait::wait_until(timeout, what, check) {
            Err(Error::Timeout {
                what, waited, last, ..
            }) => {
                self.evidence_shown
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err(Error::Timeout {
                    what,
                    waited,
                    last,
                    evidence: self.evidence(),
                })
            }
            other => other,
        }
    }

    /// The state of every host and daemon as text: kernel routes, BIRD's
    /// protocols and routes, via6's neighbours, routes and FIB, and the
    /// tail of every daemon log.
    pub fn evidence(&self) -> String {
        crate::evidence::collect(self)
    }

    /// Marks that the evidence was already printed (no second copy on drop).
    pub(crate) fn evidence_printed(&self) {
        self.evidence_shown
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The scenario name given to [`Lab::new`].
    pub fn scenario(&self) -> &str {
        &self.scenario
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed
            && !self
                .evidence_shown
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            eprintln!(
                "==== evidence for failed scenario {} ====\n{}",
                self.scenario,
                self.evidence()
            );
        }
        let mut ds = lock(&self.daemons);
        for t in ds.iter_mut() {
            if let Some(mut child) = t.child.take() {
                cleanup::kill_group(t.daemon.pid as i32);
                let _ = child.wait();
            }
        }
        drop(ds);
        let entry = cleanup::take(&self.id);
        cleanup::teardown(&entry);
        if failed || std::env::var_os("INTEROP_KEEP").is_some() {
            eprintln!("interop: run directory kept: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs one scenario in a fresh lab. On `Err` the evidence of every host
/// is printed and the test fails; the lab is torn down in every case.
pub fn scenario<F>(name: &str, body: F)
where
    F: FnOnce(&Lab) -> Result<()>,
{
    let lab = match Lab::new(name) {
        Ok(lab) => lab,
        Err(e) => panic!("scenario {name}: cannot build the lab: {e}"),
    };
    if let Err(e) = body(&lab) {
        let evidence = if matches!(e, Error::Timeout { .. }) {
            String::new()
        } else {
            lab.evidence()
        };
        lab.evidence_printed();
        // Print before the panic so the evidence sits in the captured
        // output even when the panic message is truncated by a reporter.
        eprintln!("scenario {name} failed: {e}\n{evidence}");
        let head: Vec<String> = e.to_string().lines().take(2).map(str::to_string).collect();
        panic!(
            "scenario {name} failed (evidence above): {}",
            head.join(" / ")
        );
    }
}
