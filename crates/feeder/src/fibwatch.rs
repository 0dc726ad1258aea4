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
//! The notifications are counted in the kernel by an eBPF socket filter
//! (`feeder::routecount`) and read every 2 ms: reading each one costs a
//! `recv` per route, about 1 s of CPU per full table. Where eBPF cannot be
//! loaded, the socket is drained every 10 ms instead; the `start` event
//! says which (`counting`).
//!
//! With `--rib-via6d SOCKET` or `--rib-bird SOCKET` it also asks the
//! receiver over its control socket, every `--rib-every` ms (20), how many
//! routes its RIB took, and says when that reaches N: the benchmark's RIB
//! time, with no process started per look.
//!
//! usage: via6-fibwatch --add N [--then-empty] [--timeout SECS]
//!        [--rib-via6d SOCKET | --rib-bird SOCKET] [--rib-every MS] [--progress-ms MS]
//! Prints JSON lines: `start` (baseline), `rib` (the receiver's RIB holds
//! N), `full` (baseline + N reached, confirmed), `empty` (baseline reached
//! again), `progress` every `--progress-ms` (1000; with the RIB count as
//! `rib` while it is watched).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use feeder::routecount::KernelRouteCount;

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
/// The same when the kernel counts: reading two counters is cheap.
const KERNEL_POLL: Duration = Duration::from_millis(2);

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
    rib: Option<RibSource>,
    rib_every: Duration,
    progress: Duration,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        add: -1,
        then_empty: false,
        timeout: Duration::from_secs(600),
        rib: None,
        rib_every: Duration::from_millis(20),
        progress: Duration::from_secs(1),
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
            "--rib-via6d" => {
                let p = it.next().ok_or("--rib-via6d SOCKET")?;
                a.rib = Some(RibSource::Via6d(p.into()));
            }
            "--rib-bird" => {
                let p = it.next().ok_or("--rib-bird SOCKET")?;
                a.rib = Some(RibSource::Bird(p.into(), None));
            }
            "--rib-every" => a.rib_every = millis(it.next(), "--rib-every MS", 1)?,
            "--progress-ms" => a.progress = millis(it.next(), "--progress-ms MS", 10)?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if a.add < 0 {
        return Err(USAGE.into());
    }
    Ok(a)
}

/// A duration option's value in milliseconds, at least `min`.
fn millis(v: Option<String>, usage: &str, min: u64) -> Result<Duration, String> {
    let ms: u64 = v.and_then(|v| v.parse().ok()).ok_or(usage)?;
    Ok(Duration::from_millis(ms.max(min)))
}

const USAGE: &str = "usage: via6-fibwatch --add N [--then-empty] [--timeout SECS] \
                     [--rib-via6d SOCKET | --rib-bird SOCKET] [--rib-every MS] [--progress-ms MS]";

/// The receiver's own count of routes taken into its RIB, asked over its
/// control socket (no process started per look, unlike `via6ctl` or
/// `birdc` in a shell loop).
enum RibSource {
    /// via6d: the largest `accepted` count of `neighbors` (control
    /// protocol version 1).
    Via6d(std::path::PathBuf),
    /// BIRD: `Routes: N imported` of `show protocols all feed`, on one
    /// connection kept open.
    Bird(std::path::PathBuf, Option<BufReader<UnixStream>>),
}

impl RibSource {
    fn count(&mut self) -> io::Result<i64> {
        match self {
            RibSource::Via6d(path) => {
                let mut s = UnixStream::connect(&*path)?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"{\"version\":1,\"command\":\"neighbors\"}\n")?;
                let mut reply = String::new();
                BufReader::new(s).read_line(&mut reply)?;
                Ok(max_after(&reply, "accepted\":"))
            }
            RibSource::Bird(path, conn) => {
                if conn.is_none() {
                    let s = UnixStream::connect(&*path)?;
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    let mut r = BufReader::new(s);
                    bird_reply(&mut r)?;
                    *conn = Some(r);
                }
                let Some(r) = conn.as_mut() else {
                    return Ok(0);
                };
                r.get_mut().write_all(b"show protocols all feed\n")?;
                let text = bird_reply(r)?;
                Ok(text
                    .lines()
                    .filter_map(|l| l.split_once("Routes:"))
                    .filter_map(|(_, v)| v.split_whitespace().next()?.parse().ok())
                    .max()
                    .unwrap_or(0))
            }
        }
    }
}

/// The largest number following `key` anywhere in `text`.
fn max_after(text: &str, key: &str) -> i64 {
    text.match_indices(key)
        .filter_map(|(at, _)| {
            let rest = text.get(at + key.len()..)?.trim_start();
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest.get(..end)?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// One reply of BIRD's control socket: lines up to the one whose
/// four-digit code is followed by a space (continuations have '-' or
/// start with a space).
fn bird_reply(r: &mut BufReader<UnixStream>) -> io::Result<String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::other("BIRD closed its control socket"));
        }
        let last = line.len() > 4
            && line
                .as_bytes()
                .get(..4)
                .is_some_and(|c| c.iter().all(u8::is_ascii_digit))
            && line.as_bytes().get(4) == Some(&b' ');
        text.push_str(&line);
        if last {
            return Ok(text);
        }
    }
}

/// Looks at the receiver's RIB count every `every` until it holds
/// `target`, then emits `rib` with the time of that look.
struct RibWatch {
    source: RibSource,
    target: i64,
    every: Duration,
    next: Instant,
    seen: bool,
    errors: u32,
    /// The count at the last look.
    last: i64,
}

impl RibWatch {
    fn look(&mut self) {
        if self.seen || Instant::now() < self.next {
            return;
        }
        self.next = Instant::now() + self.every;
        match self.source.count() {
            Ok(c) if c >= self.target => {
                emit("rib", now(), c, "");
                self.seen = true;
                self.last = c;
            }
            Ok(c) => self.last = c,
            Err(e) => {
                // The receiver may be busy or restarting its socket: say so
                // once in a while, keep looking.
                if self.errors.is_multiple_of(50) {
                    emit(
                        "rib_error",
                        now(),
                        0,
                        &format!(",\"error\":{:?}", e.to_string()),
                    );
                }
                self.errors += 1;
                if let RibSource::Bird(_, conn) = &mut self.source {
                    *conn = None;
                }
            }
        }
    }
}

/// Where the running count comes from.
enum Source {
    /// The kernel counts (see `feeder::routecount`); nothing is queued.
    Kernel(KernelRouteCount),
    /// Every notification is read (when eBPF is not available).
    Notifications(Vec<u8>),
}

/// The main table's route count, followed between reads of `fib_triestat`.
struct Follow {
    mon: Monitor,
    source: Source,
    /// count = offset + net, where net is what the source saw since attach.
    offset: i64,
    net: i64,
}

impl Follow {
    fn count(&self) -> i64 {
        self.offset + self.net
    }

    fn rebase(&mut self, exact: i64) {
        self.offset = exact - self.net;
    }

    /// Takes in what happened since the last call (re-reading the count
    /// when notifications were lost).
    fn poll(&mut self) -> io::Result<()> {
        match &mut self.source {
            Source::Kernel(k) => {
                let (added, removed) = k.added_removed()?;
                self.net = added as i64 - removed as i64;
                Ok(())
            }
            Source::Notifications(buf) => loop {
                match self.mon.recv(buf) {
                    Ok(Some(n)) => match delta(buf.get(..n).unwrap_or(&[])) {
                        Some(d) => self.net += d,
                        None => return self.overflow(),
                    },
                    Ok(None) => return Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        return self.overflow();
                    }
                    Err(e) => return Err(e),
                }
            },
        }
    }

    fn overflow(&mut self) -> io::Result<()> {
        let exact = triestat()?;
        self.rebase(exact);
        emit("overflow", now(), exact, "");
        Ok(())
    }
}

/// Follows the count until it reaches `target` from below (`up`) or
/// above; returns the time it got there, confirmed by `fib_triestat`.
fn wait_for(
    f: &mut Follow,
    target: i64,
    up: bool,
    deadline: Instant,
    progress_every: Duration,
    mut rib: Option<&mut RibWatch>,
) -> io::Result<Option<f64>> {
    let reached = |c: i64| if up { c >= target } else { c <= target };
    let mut last_move = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        if let Some(r) = rib.as_deref_mut() {
            r.look();
        }
        let before = f.count();
        f.poll()?;
        if f.count() != before {
            last_move = Instant::now();
        }
        if reached(f.count()) {
            let t = now();
            let exact = triestat()?;
            if reached(exact) {
                f.rebase(exact);
                return Ok(Some(t));
            }
            emit(
                "resync",
                now(),
                exact,
                &format!(",\"followed\":{}", f.count()),
            );
            f.rebase(exact);
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        // Routes can leave the FIB without a notification (a deleted
        // nexthop object or link takes its routes along): after a quiet
        // spell, look at the real count.
        if last_move.elapsed() > Duration::from_millis(500) {
            f.rebase(triestat()?);
            last_move = Instant::now();
        }
        if last_progress.elapsed() >= progress_every {
            let rib_now = match rib.as_deref() {
                Some(r) => format!(",\"rib\":{}", r.last),
                None => String::new(),
            };
            emit("progress", now(), f.count(), &rib_now);
            last_progress = Instant::now();
        }
        std::thread::sleep(match f.source {
            Source::Kernel(_) => KERNEL_POLL,
            Source::Notifications(_) => POLL,
        });
    }
}

fn run(mut a: Args) -> io::Result<bool> {
    let mon = Monitor::open()?;
    let (source, mode) = match KernelRouteCount::attach(mon.fd) {
        Ok(k) => (Source::Kernel(k), "kernel"),
        Err(e) => {
            eprintln!("via6-fibwatch: counting in the kernel failed, reading every notification instead: {e}");
            (Source::Notifications(vec![0u8; 1 << 20]), "notifications")
        }
    };
    let base = triestat()?;
    let mut f = Follow {
        mon,
        source,
        offset: base,
        net: 0,
    };
    emit("start", now(), base, &format!(",\"counting\":\"{mode}\""));
    let deadline = Instant::now() + a.timeout;
    let mut rib = a.rib.take().map(|source| RibWatch {
        source,
        target: a.add,
        every: a.rib_every,
        next: Instant::now(),
        seen: false,
        errors: 0,
        last: 0,
    });
    match wait_for(
        &mut f,
        base + a.add,
        true,
        deadline,
        a.progress,
        rib.as_mut(),
    )? {
        Some(t) => emit("full", t, f.count(), ""),
        None => {
            emit("timeout", now(), f.count(), ",\"waiting_for\":\"full\"");
            return Ok(false);
        }
    }
    // A receiver may report its RIB full only after the FIB (its counter
    // lags): keep looking.
    if let Some(r) = rib.as_mut() {
        while !r.seen {
            if Instant::now() >= deadline {
                emit("timeout", now(), 0, ",\"waiting_for\":\"rib\"");
                return Ok(false);
            }
            r.look();
            std::thread::sleep(KERNEL_POLL);
        }
    }
    if a.then_empty {
        match wait_for(&mut f, base, false, deadline, a.progress, None)? {
            Some(t) => emit("empty", t, f.count(), ""),
            None => {
                emit("timeout", now(), f.count(), ",\"waiting_for\":\"empty\"");
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
    match run(a) {
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
    fn via6d_accepted_count_is_the_largest_of_the_neighbours() {
        let reply = r#"{"ok":[{"address":"fe80::1%eth0","accepted":901899,"received":901899},{"accepted":12}]}"#;
        assert_eq!(max_after(reply, "accepted\":"), 901_899);
        assert_eq!(max_after(r#"{"ok":[]}"#, "accepted\":"), 0);
        assert_eq!(max_after(r#"{"accepted": 7}"#, "accepted\":"), 7);
    }

    #[test]
    fn bird_reply_ends_at_the_line_with_a_code_and_a_space() {
        use std::io::Write as _;
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(
            b"2002-Name       Proto      Table      State  Since         Info\n\
              1002-feed       BGP        ---        up     13:10:00.123  Established\n\
              1006-  BGP state:          Established\n \
              Routes:         901899 imported, 0 exported, 901899 preferred\n\
              0000 \n0001 next\n",
        )
        .unwrap();
        let mut r = BufReader::new(b);
        let text = bird_reply(&mut r).unwrap();
        assert!(text.ends_with("0000 \n"));
        assert!(text.contains("901899 imported"));
        let mut rest = String::new();
        r.read_line(&mut rest).unwrap();
        assert_eq!(rest, "0001 next\n");
        drop(a);
        assert!(bird_reply(&mut r).is_err(), "a closed socket is an error");
    }

    #[test]
    fn triestat_of_this_namespace_parses() {
        assert!(triestat().unwrap() >= 0);
    }
}
