//! Process-wide registry of live labs, so that Ctrl-C (SIGINT), SIGTERM and
//! SIGHUP still remove namespaces and kill daemons. A panic or a failed
//! scenario is handled by `Drop for Lab`; a signal never runs destructors,
//! hence this registry and a watcher thread woken through a self-pipe (the
//! only async-signal-safe thing the handler does is `write(2)`).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

/// What must be undone for one lab.
#[derive(Debug, Default, Clone)]
pub(crate) struct Entry {
    pub namespaces: Vec<String>,
    pub pids: Vec<i32>,
}

static REGISTRY: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());
static INSTALL: Once = Once::new();
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

fn registry() -> MutexGuard<'static, BTreeMap<String, Entry>> {
    // A panicking test must not stop the others from cleaning up.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn register_namespace(lab: &str, ns: &str) {
    registry()
        .entry(lab.to_string())
        .or_default()
        .namespaces
        .push(ns.to_string());
}

pub(crate) fn register_pid(lab: &str, pid: i32) {
    registry()
        .entry(lab.to_string())
        .or_default()
        .pids
        .push(pid);
}

pub(crate) fn forget_pid(lab: &str, pid: i32) {
    if let Some(e) = registry().get_mut(lab) {
        e.pids.retain(|p| *p != pid);
    }
}

pub(crate) fn take(lab: &str) -> Entry {
    registry().remove(lab).unwrap_or_default()
}

/// Kills every process of a lab (our children and anything else still
/// living in its namespaces) and deletes the namespaces.
pub(crate) fn teardown(entry: &Entry) {
    for pid in &entry.pids {
        kill_group(*pid);
    }
    for ns in &entry.namespaces {
        kill_namespace_processes(ns);
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
    }
}

/// Sends SIGKILL to a child's process group (children are spawned as group
/// leaders) and to the pid itself in case it changed group.
pub(crate) fn kill_group(pid: i32) {
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// `ip netns pids` lists every process whose network namespace is `ns`.
pub(crate) fn kill_namespace_processes(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        kill_group(pid);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one valid byte.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Installs the signal watcher once per process.
pub(crate) fn install_signal_teardown() {
    INSTALL.call_once(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds points to two writable c_ints as pipe(2) requires.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return;
        }
        let [read_fd, write_fd] = fds;
        PIPE_WRITE.store(write_fd, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("interop-signal-teardown".into())
            .spawn(move || {
                let mut byte = 0u8;
                // SAFETY: reads one byte into a valid local.
                let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
                if n == 1 {
                    let all: Vec<Entry> = std::mem::take(&mut *registry()).into_values().collect();
                    for entry in &all {
                        teardown(entry);
                    }
                    // Straight to fd 2: the test harness captures `eprintln!`.
                    let _ = std::io::Write::write_all(
                        &mut std::io::stderr(),
                        format!("interop: signal {byte}: removed {} lab(s)\n", all.len())
                            .as_bytes(),
                    );
                    // SAFETY: terminating the process is the point.
                    unsafe { libc::_exit(128 + i32::from(byte)) };
                }
            });
        if spawned.is_err() {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with a plain handler is valid; the
            // handler only calls write(2).
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

/// Removes namespaces left by earlier runs whose process is gone (a
/// SIGKILLed test run cannot clean up after itself). Names carry the pid:
/// `v6i<pid>n<counter>...`.
pub(crate) fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(crate::lab::NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('n').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: kill with signal 0 only probes for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            kill_namespace_processes(name);
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}
