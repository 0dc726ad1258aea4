//! `via6-fibwatch`: tells the benchmark harness, with millisecond
//! precision and almost no load, when the IPv4 main table of the network
//! namespace it runs in reaches a route count, and when it is back to
//! where it started.
//!
//! The count of record is `Prefixes:` of the `Main:` section of
//! `/proc/net/fib_triestat`. Reading that file walks the whole trie (about
//! 0.1 s of kernel time at a full table), so polling it every few
//! milliseconds would slow down the daemon being measured. Instead the
//! count is followed through the rtnetlink route notifications
//! (RTM_NEWROUTE +1 unless it replaced a route, RTM_DELROUTE -1), and
//! every milestone is confirmed by one read of `fib_triestat`. When the
//! two disagree, or the notifications overflowed, or nothing moved for a
//! while (routes flushed without notification, e.g. with their nexthop
//! object), the count is taken from `fib_triestat` again.
//!
//! The socket is drained every 10 ms rather than read blocking, so the
//! kernel queues notifications without waking the watcher per route.
//!
//! usage: via6-fibwatch --add N [--then-empty] [--timeout SECS]
//! Prints JSON lines: `start` (baseline), `full` (baseline + N reached,
//! confirmed), `empty` (baseline reached again), `progress` every second.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_OVERRUN: u16 = 4;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLM_F_REPLACE: u16 = 0x100;
const RT_TABLE_MAIN: u8 = 254;
const RTA_TABLE: u16 = 15;
/// Sleep between drains of the notification queue: the resolution of the
/// times reported.
const POLL: Duration = Duration::from_millis(10);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn emit(event: &str, t: f64, count: i64, extra: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{{\"event\":\"{event}\",\"t\":{t:.6},\"count\":{count}{extra}}}"
    );
    let _ = out.flush();
}

/// `Prefixes:` of the `Main:` section (the local table is merged into it
/// while no policy rules exist, and the baseline absorbs it either way).
fn triestat() -> io::Result<i64> {
    let text = std::fs::read_to_string("/proc/net/fib_triestat")?;
    let main = text
        .split_once("Main:")
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("no Main: section in fib_triestat"))?;
    main.lines()
        .find_map(|l| l.trim().strip_prefix("Prefixes:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Prefixes: line in fib_triestat"))
}

/// A netlink socket on the IPv4 route notification group, with a receive
/// buffer large enough for a full table arriving in a burst.
struct Monitor {
    fd: libc::c_int,
}

impl Monitor {
    fn open() -> io::Result<Monitor> {
        // SAFETY: plain socket calls on a descriptor we own; every pointer
        // passed points at a live local of the stated size.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let m = Monitor { fd };
            let size: libc::c_int = 512 << 20;
            let sz = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                sz,
            ) < 0
            {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&size as *const libc::c_int).cast(),
                    sz,
                );
            }
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            sa.nl_groups = libc::RTMGRP_IPV4_ROUTE as u32;
            if libc::bind(
                fd,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(m)
        }
    }

    /// One queued datagram, `Ok(None)` when none is queued. Never
    /// blocks: the caller sleeps between drains, so the kernel does not
    /// wake us for every route it installs (a wakeup per route would cost
    /// the daemon being measured more than the count itself).
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is a live, writable slice of the given length.
        let n = unsafe {
            libc::recv(
                self.fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(usize::try_from(n).unwrap_or(0)))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe {
            libc::close(self.fd);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// The table of one RTM_*ROUTE message: rtm_table, or RTA_TABLE when the
/// id does not fit 8 bits.
fn table_of(msg: &[u8]) -> Option<u32> {
    let rtm = msg.get(NLMSG_HDR..NLMSG_HDR + 12)?;
    if rtm.first() != Some(&(libc::AF_INET as u8)) {
        return None;
    }
    let mut table = u32::from(*rtm.get(4)?);
    let mut at = NLMSG_HDR + 12;
    while let (Some(len), Some(ty)) = (u16_at(msg, at), u16_at(msg, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if ty == RTA_TABLE {
            if let Some(t) = u32_at(msg, at + 4) {
                table = t;
            }
        }
        at += (len + 3) & !3;
    }
    Some(table)
}

/// Net change of the main table's route count in one datagram; `None`
/// when the kernel reports lost notifications.
fn delta(buf: &[u8]) -> Option<i64> {
    let mut d = 0;
    let mut at = 0;
    while let (Some(len), Some(ty), Some(flags)) =
        (u32_at(buf, at), u16_at(buf, at + 4), u16_at(buf, at + 6))
    {
        let len = len as usize;
        if len < NLMSG_HDR {
            break;
        }
        let msg = buf.get(at..at + len).unwrap_or(&[]);
        match ty {
            RTM_NEWROUTE | RTM_DELROUTE if table_of(msg) == Some(u32::from(RT_TABLE_MAIN)) => {
                if ty == RTM_DELROUTE {
                    d -= 1;
                } else if flags & NLM_F_REPLACE == 0 {
                    d += 1;
                }
            }
            NLMSG_OVERRUN | NLMSG_ERROR => return None,
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Some(d)
}

struct Args {
    add: i64,
    then_empty: bool,
    timeout: Duration,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        add: -1,
        then_empty: false,
        timeout: Duration::from_secs(600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        match f.as_str() {
            "--add" => a.add = it.next().and_then(|v| v.parse().ok()).ok_or("--add N")?,
            "--then-empty" => a.then_empty = true,
            "--timeout" => {
                let s: u64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--timeout SECS")?;
                a.timeout = Duration::from_secs(s);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if a.add < 0 {
        return Err("usage: via6-fibwatch --add N [--then-empty] [--timeout SECS]".into());
    }
    Ok(a)
}

/// Follows the count until it reaches `target` from below (`up`) or
/// above; returns the time it got there, confirmed by `fib_triestat`.
fn wait_for(
    mon: &Monitor,
    count: &mut i64,
    target: i64,
    up: bool,
    deadline: Instant,
) -> io::Result<Option<f64>> {
    let mut buf = vec![0u8; 1 << 20];
    let reached = |c: i64| if up { c >= target } else { c <= target };
    let mut last_move = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        if reached(*count) {
            let t = now();
            let exact = triestat()?;
            if reached(exact) {
                *count = exact;
                return Ok(Some(t));
            }
            emit("resync", now(), exact, &format!(",\"followed\":{count}"));
            *count = exact;
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        match mon.recv(&mut buf) {
            Ok(Some(n)) => match delta(buf.get(..n).unwrap_or(&[])) {
                Some(d) => {
                    if d != 0 {
                        last_move = Instant::now();
                    }
                    *count += d;
                }
                None => {
                    *count = triestat()?;
                    emit("overflow", now(), *count, "");
                }
            },
            Ok(None) => std::thread::sleep(POLL),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                *count = triestat()?;
                emit("overflow", now(), *count, "");
            }
            Err(e) => return Err(e),
        }
        // Routes can leave the FIB without a notification (a deleted
        // nexthop object or link takes its routes along): after a quiet
        // spell, look at the real count.
        if last_move.elapsed() > Duration::from_millis(500) {
            *count = triestat()?;
            last_move = Instant::now();
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            emit("progress", now(), *count, "");
            last_progress = Instant::now();
        }
    }
}

fn run(a: &Args) -> io::Result<bool> {
    let mon = Monitor::open()?;
    let base = triestat()?;
    emit("start", now(), base, "");
    let deadline = Instant::now() + a.timeout;
    let mut count = base;
    match wait_for(&mon, &mut count, base + a.add, true, deadline)? {
        Some(t) => emit("full", t, count, ""),
        None => {
            emit("timeout", now(), count, ",\"waiting_for\":\"full\"");
            return Ok(false);
        }
    }
    if a.then_empty {
        match wait_for(&mon, &mut count, base, false, deadline)? {
            Some(t) => emit("empty", t, count, ""),
            None => {
                emit("timeout", now(), count, ",\"waiting_for\":\"empty\"");
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("via6-fibwatch: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("via6-fibwatch: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_msg(ty: u16, flags: u16, family: u8, table: u8) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&28u32.to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&[family, 24, 0, 0, table, 3, 0, 1, 0, 0, 0, 0]);
        m
    }

    #[test]
    fn counts_adds_deletes_and_ignores_replaces_other_tables_and_ipv6() {
        let mut buf = Vec::new();
        buf.extend(route_msg(RTM_NEWROUTE, 0, 2, 254));
        buf.extend(route_msg(RTM_NEWROUTE, 0, 2, 254));
        buf.extend(route_msg(RTM_NEWROUTE, NLM_F_REPLACE, 2, 254));
        buf.extend(route_msg(RTM_NEWROUTE, 0, 2, 255));
        buf.extend(route_msg(RTM_NEWROUTE, 0, 10, 254));
        buf.extend(route_msg(RTM_DELROUTE, 0, 2, 254));
        assert_eq!(delta(&buf), Some(1));
    }

    #[test]
    fn overrun_is_reported() {
        let mut m = route_msg(NLMSG_OVERRUN, 0, 2, 254);
        m.truncate(16);
        m[0] = 16;
        assert_eq!(delta(&m), None);
    }

    #[test]
    fn triestat_of_this_namespace_parses() {
        assert!(triestat().unwrap() >= 0);
    }
}
