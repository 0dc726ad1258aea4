//! The FIB owner thread: all state, both netlink sockets, one loop.
//!
//! It runs on its own OS thread (with a current-thread runtime) so that
//! a multi-second full-table write never blocks the daemon's workers, and
//! so it can enter a network namespace without affecting anyone else.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::hopsets::{Freed, HopSetId, HopSets, UNKNOWN};
use crate::nl::{self, KernelRoute, MsgBuf, NlSocket, RouteOp, RouteParams};
use crate::routes::{FastHash, RouteMap};
use crate::sender::{send_and_collect, Done, Job, Pipeline};
use crate::{
    Cmd, FailedRoute, FibChange, FibConfig, FibError, FibNextHop, FibStatus, ForeignConflict,
    STATUS_LIST_MAX,
};

const ROUTE_GROUPS: [u32; 2] = [nl::RTNLGRP_IPV4_ROUTE, nl::RTNLGRP_IPV6_ROUTE];
/// A flush this large stops listening to route events while it runs.
const BULK: usize = 10_000;
/// Audit this long after the last bulk flush (covers what happened while
/// not listening; bulk loads come in runs, so one audit after the run).
const AUDIT_AFTER_BULK: Duration = Duration::from_secs(30);
/// `lo` is interface 1 in every network namespace.
const LO_IFINDEX: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Not in the kernel (as far as we know).
    Absent,
    /// Installed by us (or adopted) with this hop set.
    Ours(HopSetId),
    /// Found with our protocol at start; not wanted again yet.
    Stale(HopSetId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    Failed(String),
    Conflict(String),
    LinkDown,
}

/// Per-prefix state: 16 bytes, as a full table holds a million of them.
/// The rare problem text lives in `Owner::problems`.
#[derive(Clone, Copy)]
struct Route {
    /// The wanted hop set, or `NO_WANT`.
    want: HopSetId,
    kernel: Kernel,
    dirty: bool,
    has_problem: bool,
}

/// `Route::want` when the route is not wanted.
const NO_WANT: HopSetId = u32::MAX - 1;

impl Route {
    const NEW: Route = Route {
        want: NO_WANT,
        kernel: Kernel::Absent,
        dirty: false,
        has_problem: false,
    };

    fn want(&self) -> Option<HopSetId> {
        (self.want != NO_WANT).then_some(self.want)
    }
}

/// Change what a route wants, moving its hold on hop sets.
fn set_want(hopsets: &mut HopSets, r: &mut Route, h: Option<HopSetId>) {
    let h = h.unwrap_or(NO_WANT);
    hopsets.hold(h);
    hopsets.release(r.want);
    r.want = h;
}

/// A route leaves the map: its holds on hop sets go.
fn release_route(hopsets: &mut HopSets, r: &Route) {
    hopsets.release(r.want);
    if let Some(h) = kernel_set(r.kernel) {
        hopsets.release(h);
    }
}

/// The hop set a kernel state holds.
fn kernel_set(k: Kernel) -> Option<HopSetId> {
    match k {
        Kernel::Absent => None,
        Kernel::Ours(h) | Kernel::Stale(h) => Some(h),
    }
}

type Problems = HashMap<IpNet, Problem, FastHash>;

/// Record (or clear) the problem of one route.
fn set_problem(problems: &mut Problems, prefix: IpNet, r: &mut Route, p: Option<Problem>) {
    match p {
        Some(p) => {
            problems.insert(prefix, p);
            r.has_problem = true;
        }
        None => {
            if r.has_problem {
                problems.remove(&prefix);
                r.has_problem = false;
            }
        }
    }
}

/// A create or delete waiting for its turn in the spread-out order.
#[derive(Clone, Copy)]
struct Planned {
    prefix: IpNet,
    op: RouteOp,
    hops: HopSetId,
    prev: Kernel,
}

struct InFlight {
    prefix: IpNet,
    op: RouteOp,
    /// Kernel state before this request, restored if it fails.
    prev: Kernel,
    /// The nexthop object the route was sent with.
    nh_id: Option<u32>,
    /// A delete of our route at another metric: no route entry to update.
    other_metric: bool,
}

struct Owner {
    cfg: FibConfig,
    params: RouteParams,
    sock: NlSocket,
    routes: RouteMap<Route>,
    problems: Problems,
    hopsets: HopSets,
    dirty: Vec<IpNet>,
    /// Our routes at another metric (config changed): removed at sync.
    stale_other: Vec<(IpNet, u32)>,
    links_down: HashSet<u32>,
    synced: bool,
    src_added: Option<Ipv4Addr>,
    /// Routes we hold in the kernel (Ours or Stale), for `max_routes`.
    in_kernel: usize,
    batch: MsgBuf,
    base_seq: u32,
    inflight: Vec<InFlight>,
    pipe: Pipeline<Vec<InFlight>>,
    /// Remove unused nexthop objects after the next flush.
    gc_nexthops: bool,
    /// The route event socket, and whether we listen on it now (not
    /// during bulk writes, whose own events would only flood it).
    route_mon_fd: std::os::fd::RawFd,
    route_mon_on: bool,
    /// An audit is due then (after bulk writes, or a monitor overrun).
    audit_at: Option<Instant>,
    /// Reused buffer of creates and deletes of one flush.
    reshape: Vec<Planned>,
    /// Recycled batch buffers.
    spare: Vec<(MsgBuf, Vec<InFlight>)>,
    to_describe: Vec<IpNet>,
    nh: NhObjects,
}

/// Our nexthop objects, one per (gateway, interface).
#[derive(Default)]
struct NhObjects {
    enabled: bool,
    by_hop: HashMap<FibNextHop, NhObj, FastHash>,
    /// Every id of ours ever seen or made (deleted at shutdown).
    ours: HashMap<u32, FibNextHop>,
    /// Multipath groups of our single objects, by their (sorted) hops.
    groups: HashMap<Vec<FibNextHop>, NhObj, FastHash>,
    /// Every group id of ours ever seen or made.
    ours_groups: HashMap<u32, Vec<FibNextHop>>,
    /// Ids held by others.
    taken: HashSet<u32>,
    next_id: u32,
}

#[derive(Clone, Copy)]
struct NhObj {
    id: u32,
    /// False once the kernel flushed it (link down) or a route using it
    /// failed; it is then made again before use.
    present: bool,
}

/// Read every queued event from a non-blocking socket. The flag says the
/// socket overran (ENOBUFS: events were lost).
fn drain_events(sock: &mut NlSocket) -> (Vec<(u16, Vec<u8>)>, bool) {
    let mut events = Vec::new();
    let mut errors = 0;
    loop {
        match sock.recv() {
            Ok(data) => {
                for m in nl::Messages::new(data) {
                    events.push((m.ty, m.payload.to_vec()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return (events, errors > 0),
            // ENOBUFS is reported once; what is still queued follows.
            Err(_) if errors < 8 => errors += 1,
            Err(_) => return (events, true),
        }
    }
}

/// Thread entry point.
pub(crate) fn run(
    cfg: FibConfig,
    rx: mpsc::Receiver<Cmd>,
    ready: oneshot::Sender<Result<(), FibError>>,
) {
    if let Some(p) = &cfg.netns {
        if let Err(e) = enter_netns(p) {
            let _ = ready.send(Err(FibError::Netns {
                path: p.display().to_string(),
                source: e,
            }));
            return;
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(FibError::Thread(e)));
            return;
        }
    };
    rt.block_on(async move {
        let (mut owner, monitor, route_mon) = match Owner::init(cfg) {
            Ok(o) => o,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        owner.main_loop(rx, monitor, route_mon).await;
    });
}

/// Move this thread into a network namespace (setns affects only the
/// calling thread; sockets opened afterwards live in that namespace).
fn enter_netns(path: &Path) -> std::io::Result<()> {
    let f = File::open(path)?;
    // SAFETY: setns on an open namespace file descriptor.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Every next hop of the set is on a link that is down.
fn all_hops_down(hopsets: &HopSets, links_down: &HashSet<u32>, h: HopSetId) -> bool {
    let hops = hopsets.get(h);
    !hops.is_empty()
        && hops
            .iter()
            .all(|x| x.ifindex.is_some_and(|ix| links_down.contains(&ix)))
}

/// A permutation of 0..n that sends neighbours far apart: i*step mod n
/// with step near n/phi. (Interleaving a few sequential runs instead is
/// kinder to our cache but costs the kernel 30-40% more.)
fn spread_order(n: usize) -> impl Fn(usize) -> usize {
    let n = n.max(1);
    let step = coprime_near(n, 0.618_033_988_7) as u64;
    move |i: usize| ((i as u64 * step) % n as u64) as usize
}

/// The smallest step >= n*frac that is coprime to n (so i*step mod n
/// visits every index once).
fn coprime_near(n: usize, frac: f64) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = ((n as f64 * frac) as usize).max(1);
    while gcd(s, n) != 1 {
        s += 1;
    }
    s
}

/// Our route `p` is no longer in the kernel: write it again if still
/// wanted, else drop it from our map (`drop`, removed by the caller).
fn gone_from_kernel(
    in_kernel: &mut usize,
    hopsets: &mut HopSets,
    dirty: &mut Vec<IpNet>,
    drop: &mut Vec<IpNet>,
    p: IpNet,
    r: &mut Route,
) {
    set_kernel(in_kernel, hopsets, r, Kernel::Absent);
    if r.want().is_some() {
        Owner::mark_dirty(dirty, p, r);
    } else {
        drop.push(p);
    }
}

fn set_kernel(in_kernel: &mut usize, hopsets: &mut HopSets, r: &mut Route, k: Kernel) {
    if let Some(h) = kernel_set(k) {
        hopsets.hold(h);
    }
    if let Some(h) = kernel_set(r.kernel) {
        hopsets.release(h);
    }
    let was = r.kernel != Kernel::Absent;
    let is = k != Kernel::Absent;
    if was && !is {
        *in_kernel = in_kernel.saturating_sub(1);
    } else if !was && is {
        *in_kernel += 1;
    }
    r.kernel = k;
}

fn describe(r: &KernelRoute) -> String {
    let mut s = format!("proto {} metric {}", r.protocol, r.metric);
    if r.rtype != nl::RTN_UNICAST {
        s.push_str(&format!(" type {}", r.rtype));
    }
    if let Some(id) = r.nh_id {
        s.push_str(&format!(" nhid {id}"));
    }
    for h in &r.hops {
        s.push_str(&format!(" via {}", h.gateway));
        if let Some(ix) = h.ifindex {
            s.push_str(&format!(" dev {ix}"));
        }
    }
    s
}

impl Owner {
    fn init(cfg: FibConfig) -> Result<(Owner, AsyncFd<NlSocket>, AsyncFd<NlSocket>), FibError> {
        let mut sock = NlSocket::open(&[], false).map_err(nl::NlError::Io)?;
        let groups = [
            nl::RTNLGRP_LINK,
            nl::RTNLGRP_IPV4_IFADDR,
            nl::RTNLGRP_NEXTHOP,
        ];
        let monitor = NlSocket::open(&groups, true).map_err(nl::NlError::Io)?;
        // SAFETY: NlSocket owns its descriptor and always returns the same
        // one; it is closed only when the AsyncFd (and so the socket) drops.
        let monitor = unsafe { AsyncFd::register_with_interest(monitor, Interest::READABLE) }
            .map_err(|e| nl::NlError::Io(e.into()))?;
        // Route events on their own socket: a burst of them (they come for
        // our own writes too) must not crowd out link events.
        let route_mon = NlSocket::open(&ROUTE_GROUPS, true).map_err(nl::NlError::Io)?;
        let route_mon_fd = route_mon.as_raw_fd();
        // SAFETY: as above.
        let route_mon = unsafe { AsyncFd::register_with_interest(route_mon, Interest::READABLE) }
            .map_err(|e| nl::NlError::Io(e.into()))?;

        let batch_sock = NlSocket::open(&[], false).map_err(nl::NlError::Io)?;
        // A batch must fit the socket's send buffer (the kernel refuses a
        // larger sendmsg), with room for the one message that overshoots.
        let mut cfg = cfg;
        let room = batch_sock.send_buffer().saturating_sub(16 * 1024);
        cfg.batch_bytes = cfg.batch_bytes.min(room).max(4096);
        let pipe = Pipeline::start(batch_sock).map_err(FibError::Thread)?;
        let nh = load_nexthops(&mut sock, &cfg)?;
        let mut links_down = HashSet::new();
        loop {
            links_down.clear();
            let ok = sock.dump(nl::link_dump_request(), |m| {
                if m.ty == nl::RTM_NEWLINK {
                    if let Some((ix, flags)) = nl::parse_link(m.payload) {
                        if !nl::link_usable(flags, nh.enabled) {
                            links_down.insert(ix);
                        }
                    }
                }
            })?;
            if ok {
                break;
            }
        }

        let params = RouteParams {
            table: cfg.table,
            protocol: cfg.protocol,
            metric: cfg.metric,
            prefsrc: cfg.source_address,
        };
        let mut o = Owner {
            batch: MsgBuf::with_capacity(cfg.batch_bytes + 4096),
            cfg,
            params,
            sock,
            routes: RouteMap::default(),
            problems: Problems::default(),
            hopsets: HopSets::default(),
            dirty: Vec::new(),
            stale_other: Vec::new(),
            links_down,
            synced: false,
            src_added: None,
            in_kernel: 0,
            base_seq: 0,
            inflight: Vec::new(),
            pipe,
            reshape: Vec::new(),
            gc_nexthops: false,
            spare: Vec::new(),
            to_describe: Vec::new(),
            nh,
            route_mon_fd,
            route_mon_on: true,
            audit_at: None,
        };
        o.ensure_source_address()?;
        o.load_stale()?;
        Ok((o, monitor, route_mon))
    }

    /// Whether the host has `a`: None, Some(false) (someone's), or
    /// Some(true) (on `lo` with our label: added by an earlier run).
    fn find_address(&mut self, a: Ipv4Addr) -> Result<Option<bool>, FibError> {
        let mut found = None;
        self.sock.dump(nl::addr_dump_request(nl::AF_INET), |m| {
            if m.ty == nl::RTM_NEWADDR {
                if let Some((ix, x, label)) = nl::parse_addr4(m.payload) {
                    if x == a {
                        let ours = label && ix == LO_IFINDEX;
                        found = Some(found.unwrap_or(false) || ours);
                    }
                }
            }
        })?;
        Ok(found)
    }

    /// Add `source_address` as a /32 on `lo` unless the host has it.
    fn ensure_source_address(&mut self) -> Result<(), FibError> {
        let Some(a) = self.cfg.source_address else {
            return Ok(());
        };
        match self.find_address(a)? {
            Some(true) => {
                info!(address = %a, "source address on lo is ours from an earlier run");
                self.src_added = Some(a);
                return Ok(());
            }
            Some(false) => return Ok(()),
            None => {}
        }
        self.sock
            .request(nl::addr_request(true, LO_IFINDEX, a))
            .map_err(|e| FibError::SourceAddress {
                what: "add",
                addr: a,
                source: e,
            })?;
        info!(address = %a, "added source address to lo");
        self.src_added = Some(a);
        Ok(())
    }

    /// Dump routes of our protocol in our table: they are stale candidates,
    /// adopted without a kernel write when wanted again with the same hops.
    fn load_stale(&mut self) -> Result<(), FibError> {
        for family in [nl::AF_INET, nl::AF_INET6] {
            let mut found = Vec::new();
            loop {
                found.clear();
                let req = nl::route_dump_request(family, self.cfg.table, self.cfg.protocol);
                let ok = self.sock.dump(req, |m| {
                    if m.ty == nl::RTM_NEWROUTE {
                        if let Some(r) = nl::parse_route(m.payload) {
                            found.push(r);
                        }
                    }
                })?;
                if ok {
                    break;
                }
            }
            for r in found.drain(..) {
                // Strict checking filters, but be sure: only ours counts.
                if r.protocol != self.cfg.protocol || r.table != self.cfg.table {
                    continue;
                }
                if r.metric != self.params.metric_for(&r.prefix) {
                    self.stale_other.push((r.prefix, r.metric));
                    continue;
                }
                let prefix = r.prefix;
                let hops = self.kernel_hopset(r);
                self.hopsets.hold(hops);
                let route = Route {
                    kernel: Kernel::Stale(hops),
                    ..Route::NEW
                };
                match self.routes.insert(prefix, route) {
                    None => self.in_kernel += 1,
                    Some(old) => release_route(&mut self.hopsets, &old),
                }
            }
        }
        info!(
            stale = self.in_kernel,
            other_metric = self.stale_other.len(),
            "found routes of our protocol at start"
        );
        Ok(())
    }

    /// The hop set of a route of our protocol found in the kernel, or
    /// UNKNOWN when it must be rewritten whatever we want (other prefsrc,
    /// not unicast, through a nexthop object that is not ours).
    fn kernel_hopset(&mut self, r: KernelRoute) -> HopSetId {
        let prefsrc_ok = match r.prefix {
            IpNet::V4(_) => r.prefsrc == self.cfg.source_address.map(Into::into),
            IpNet::V6(_) => true,
        };
        // A route through one of our nexthop objects is adopted as that
        // object's hop; one through anybody else's is replaced.
        match r.nh_id {
            _ if r.rtype != nl::RTN_UNICAST || !prefsrc_ok => UNKNOWN,
            None => self.hopsets.intern(r.hops.into()),
            Some(id) => {
                if let Some(h) = self.nh.ours.get(&id) {
                    if self.nh.by_hop.get(h).is_some_and(|o| o.id == id) {
                        return self.hopsets.intern(Arc::from([*h]));
                    }
                }
                if let Some(hops) = self.nh.ours_groups.get(&id) {
                    if self.nh.groups.get(hops).is_some_and(|g| g.id == id) {
                        return self.hopsets.intern(hops.as_slice().into());
                    }
                }
                UNKNOWN
            }
        }
    }

    /// Compare the kernel's routes of our protocol with what we believe
    /// is there, and repair: a route of ours deleted by someone else is
    /// reinstalled if wanted, and one of our protocol we did not know of
    /// is handled like one found at start (adopted, or removed once synced).
    fn audit(&mut self) {
        let mut found = Vec::new();
        for family in [nl::AF_INET, nl::AF_INET6] {
            let req = nl::route_dump_request(family, self.cfg.table, self.cfg.protocol);
            match self.sock.dump(req, |m| {
                if m.ty == nl::RTM_NEWROUTE {
                    if let Some(r) = nl::parse_route(m.payload) {
                        found.push(r);
                    }
                }
            }) {
                Ok(true) => {}
                Ok(false) => {
                    debug!("route dump interrupted; audit skipped");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "route dump failed; audit skipped");
                    return;
                }
            }
        }
        let mut seen: HashSet<IpNet, FastHash> =
            HashSet::with_capacity_and_hasher(found.len(), FastHash::default());
        let (mut unknown, mut missing) = (0usize, 0usize);
        for r in found {
            if r.protocol != self.cfg.protocol
                || r.table != self.cfg.table
                || r.metric != self.params.metric_for(&r.prefix)
            {
                continue;
            }
            let prefix = r.prefix;
            seen.insert(prefix);
            if self
                .routes
                .get(&prefix)
                .is_some_and(|x| x.kernel != Kernel::Absent)
            {
                continue;
            }
            unknown += 1;
            let h = self.kernel_hopset(r);
            let route = self.routes.get_or_insert(prefix, Route::NEW);
            set_kernel(
                &mut self.in_kernel,
                &mut self.hopsets,
                route,
                Kernel::Stale(h),
            );
            set_problem(&mut self.problems, prefix, route, None);
            Self::mark_dirty(&mut self.dirty, prefix, route);
        }
        let mut drop = Vec::new();
        for (p, r) in self.routes.iter_mut() {
            if r.kernel == Kernel::Absent || seen.contains(&p) {
                continue;
            }
            missing += 1;
            gone_from_kernel(
                &mut self.in_kernel,
                &mut self.hopsets,
                &mut self.dirty,
                &mut drop,
                p,
                r,
            );
        }
        for p in drop {
            self.remove_route(&p);
        }
        if unknown + missing > 0 {
            warn!(
                unknown,
                missing, "kernel routes of our protocol differed from ours; repairing"
            );
        }
    }

    async fn main_loop(
        &mut self,
        mut rx: mpsc::Receiver<Cmd>,
        mut monitor: AsyncFd<NlSocket>,
        mut route_mon: AsyncFd<NlSocket>,
    ) {
        let stale_deadline = Instant::now() + self.cfg.stale_timeout;
        let mut retry = tokio::time::interval(self.cfg.retry_interval);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retry.tick().await;
        let audit_every = self.cfg.audit_interval.unwrap_or(Duration::from_secs(3600));
        let mut audit = tokio::time::interval_at(Instant::now() + audit_every, audit_every);
        audit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            let mut shutdown = None;
            let audit_at = self.audit_at;
            // Kernel events before commands: they change what may be written.
            tokio::select! {
                biased;
                // Readiness only: both sockets are drained below, link
                // events first, whichever woke us.
                r = route_mon.readable_mut() => match r {
                    Ok(mut g) => g.clear_ready(),
                    Err(e) => {
                        warn!(error = %e, "route event socket failed");
                        return;
                    }
                },
                r = monitor.readable_mut() => match r {
                    Ok(mut g) => g.clear_ready(),
                    Err(e) => {
                        warn!(error = %e, "link event socket failed");
                        return;
                    }
                },
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else {
                        debug!("all FIB handles dropped; leaving routes in place");
                        return;
                    };
                    // Drain what is queued so changes to one prefix coalesce.
                    let mut next = Some(cmd);
                    let mut n = 0;
                    while let Some(c) = next.take() {
                        match c {
                            // The permit goes with the changes taken:
                            // the sender may queue more while these are
                            // written.
                            Cmd::Apply(ch, _room) => self.apply(ch),
                            Cmd::Flush(t) => waiters.push(t),
                            Cmd::SyncDone(t) => {
                                self.sync_done();
                                waiters.push(t);
                            }
                            Cmd::Status(t) => {
                                let _ = t.send(self.status());
                            }
                            Cmd::Shutdown(t) => {
                                shutdown = Some(t);
                                break;
                            }
                        }
                        n += 1;
                        if n < 4096 {
                            next = rx.try_recv().ok();
                        }
                    }
                }
                _ = tokio::time::sleep_until(stale_deadline), if !self.synced => {
                    info!("stale timeout: removing routes not wanted again");
                    self.sync_done();
                }
                _ = retry.tick() => self.retry(),
                _ = audit.tick(), if self.cfg.audit_interval.is_some() => self.audit(),
                _ = tokio::time::sleep_until(audit_at.unwrap_or_else(Instant::now)),
                    if audit_at.is_some() =>
                {
                    self.audit_at = None;
                    self.audit();
                }
            }
            self.kernel_events(monitor.get_mut(), route_mon.get_mut());
            self.flush();
            if self.gc_nexthops && self.synced {
                self.gc_nexthops = false;
                self.collect_nexthops();
            }
            for w in waiters {
                let _ = w.send(());
            }
            if let Some(t) = shutdown {
                let r = self.shutdown();
                let _ = t.send(r);
                return;
            }
        }
    }

    /// Handle what the kernel told us since the last look: link and
    /// address events first (a route event may be their consequence), then
    /// route events.
    fn kernel_events(&mut self, monitor: &mut NlSocket, route_mon: &mut NlSocket) {
        let (events, overrun) = drain_events(monitor);
        for (ty, p) in events {
            self.event(ty, &p);
        }
        if overrun {
            warn!("link events overran; resyncing links");
            self.resync_links();
        }
        let (events, overrun) = drain_events(route_mon);
        for (ty, p) in events {
            self.route_event(ty, &p);
        }
        if overrun {
            debug!("route events overran; auditing");
            self.audit_at = Some(Instant::now());
        }
    }

    fn remove_route(&mut self, prefix: &IpNet) {
        let Some(r) = self.routes.remove(prefix) else {
            return;
        };
        release_route(&mut self.hopsets, &r);
        if r.has_problem {
            self.problems.remove(prefix);
        }
    }

    fn mark_dirty(dirty: &mut Vec<IpNet>, prefix: IpNet, r: &mut Route) {
        if !r.dirty {
            r.dirty = true;
            dirty.push(prefix);
        }
    }

    fn apply(&mut self, changes: Vec<FibChange>) {
        let v6 = matches!(
            changes.first(),
            Some(
                FibChange::Install {
                    prefix: IpNet::V6(_),
                    ..
                } | FibChange::Remove {
                    prefix: IpNet::V6(_)
                }
            )
        );
        self.routes.reserve(changes.len(), v6);
        for c in changes {
            match c {
                FibChange::Install { prefix, next_hops } => {
                    let prefix = prefix.trunc();
                    let h = self.hopsets.intern(next_hops);
                    let r = self.routes.get_or_insert(prefix, Route::NEW);
                    set_want(&mut self.hopsets, r, Some(h));
                    Self::mark_dirty(&mut self.dirty, prefix, r);
                }
                FibChange::Remove { prefix } => {
                    let prefix = prefix.trunc();
                    if let Some(r) = self.routes.get_mut(&prefix) {
                        set_want(&mut self.hopsets, r, None);
                        // An explicit withdraw of a stale route removes it now.
                        if let Kernel::Stale(k) = r.kernel {
                            r.kernel = Kernel::Ours(k);
                        }
                        Self::mark_dirty(&mut self.dirty, prefix, r);
                    }
                }
            }
        }
    }

    fn sync_done(&mut self) {
        if self.synced {
            return;
        }
        self.synced = true;
        self.gc_nexthops = true;
        for (p, r) in self.routes.iter_mut() {
            if matches!(r.kernel, Kernel::Stale(_)) {
                Self::mark_dirty(&mut self.dirty, p, r);
            }
        }
        let other = std::mem::take(&mut self.stale_other);
        for (prefix, metric) in other {
            let p = RouteParams {
                metric,
                ..self.params
            };
            let seq = self.sock.next_seq(1);
            self.start_batch_if_empty(seq);
            nl::put_route(
                &mut self.batch,
                RouteOp::Delete,
                seq,
                &p,
                &prefix,
                &[],
                None,
            );
            self.inflight.push(InFlight {
                prefix,
                op: RouteOp::Delete,
                prev: Kernel::Absent,
                nh_id: None,
                other_metric: true,
            });
            if self.batch.len() >= self.cfg.batch_bytes {
                self.send_batch();
            }
        }
    }

    /// Try failed and blocked routes again.
    fn retry(&mut self) {
        for (p, r) in self.routes.iter_mut() {
            if r.want().is_some()
                && r.has_problem
                && matches!(
                    self.problems.get(&p),
                    Some(Problem::Failed(_) | Problem::Conflict(_))
                )
            {
                Self::mark_dirty(&mut self.dirty, p, r);
            }
        }
    }

    fn all_hops_down(&self, h: HopSetId) -> bool {
        all_hops_down(&self.hopsets, &self.links_down, h)
    }

    fn uses_link(&self, h: HopSetId, ifindex: u32) -> bool {
        self.hopsets.uses_link(h, ifindex)
    }

    fn event(&mut self, ty: u16, payload: &[u8]) {
        match ty {
            nl::RTM_NEWLINK | nl::RTM_DELLINK => {
                if let Some((ix, flags)) = nl::parse_link(payload) {
                    let up = ty == nl::RTM_NEWLINK && nl::link_usable(flags, self.nh.enabled);
                    self.link_state(ix, up);
                }
            }
            nl::RTM_DELNEXTHOP => {
                if let Some((id, _, _)) = nl::parse_nexthop(payload) {
                    self.nexthop_deleted(id);
                }
            }
            nl::RTM_DELADDR => {
                if let (Some(a), Some((_, x, _))) =
                    (self.cfg.source_address, nl::parse_addr4(payload))
                {
                    if a == x {
                        self.source_address_lost(a);
                    }
                }
            }
            _ => {}
        }
    }

    /// Once stale routes are gone: delete our nexthop objects (e.g. left by
    /// an earlier run for a gateway no longer used) that no route of ours
    /// uses. A route through one of our objects is always through the one
    /// `by_hop` names (anything else was replaced), so that is the test.
    fn collect_nexthops(&mut self) {
        let mut used = HashSet::new();
        for r in self.routes.values() {
            if let Kernel::Ours(h) | Kernel::Stale(h) = r.kernel {
                let hops = self.hopsets.get(h);
                if let [hop] = hops {
                    if let Some(o) = self.nh.by_hop.get(hop) {
                        used.insert(o.id);
                    }
                } else if let Some(g) = self.nh.groups.get(hops) {
                    used.insert(g.id);
                    for hop in hops {
                        if let Some(o) = self.nh.by_hop.get(hop) {
                            used.insert(o.id);
                        }
                    }
                }
            }
        }
        // Groups first: a member in use by a group cannot go before it.
        let unused: Vec<u32> = self
            .nh
            .ours_groups
            .keys()
            .chain(self.nh.ours.keys())
            .filter(|id| !used.contains(*id))
            .copied()
            .collect();
        for id in unused {
            self.nh.remove(&mut self.sock, id);
        }
    }

    /// Someone deleted one of our nexthop objects, and with it every route
    /// using it: make it again and reinstall those routes.
    fn nexthop_deleted(&mut self, id: u32) {
        let set = if let Some(hop) = self.nh.ours.get(&id).copied() {
            if !self
                .nh
                .by_hop
                .get(&hop)
                .is_some_and(|o| o.id == id && o.present)
            {
                return;
            }
            self.nh.forget(id);
            warn!(id, gateway = %hop.gateway, "our nexthop object was deleted; reinstalling");
            // Groups lost it as a member: make it again and put it back.
            let links_down = &self.links_down;
            self.nh
                .refresh_groups(&mut self.sock, self.cfg.protocol, links_down, |h| *h == hop);
            self.hopsets.id_of(&[hop])
        } else if let Some(hops) = self.nh.ours_groups.get(&id).cloned() {
            if !self
                .nh
                .groups
                .get(&hops)
                .is_some_and(|g| g.id == id && g.present)
            {
                return;
            }
            self.nh.forget(id);
            warn!(id, "our nexthop group was deleted; reinstalling its routes");
            self.hopsets.id_of(&hops)
        } else {
            return;
        };
        let mut drop = Vec::new();
        for (p, r) in self.routes.iter_mut() {
            match r.kernel {
                Kernel::Ours(h) | Kernel::Stale(h) if Some(h) == set => {
                    set_kernel(&mut self.in_kernel, &mut self.hopsets, r, Kernel::Absent);
                    if r.want().is_some() {
                        Self::mark_dirty(&mut self.dirty, p, r);
                    } else {
                        drop.push(p);
                    }
                }
                _ => {}
            }
        }
        for p in drop {
            self.remove_route(&p);
        }
    }

    fn link_state(&mut self, ix: u32, up: bool) {
        let was_down = self.links_down.contains(&ix);
        if !up && !was_down {
            self.links_down.insert(ix);
            info!(
                ifindex = ix,
                "link down; its routes are gone from the kernel"
            );
            // The kernel removes nexthop objects on a link that goes down.
            self.nh.link_down(ix, &self.links_down);
            // The kernel flushes routes whose every next hop is on a link
            // that went down; it sends no per-route notification.
            let gone: Vec<bool> = (0..self.hopsets.slots() as HopSetId)
                .map(|h| self.uses_link(h, ix) && self.all_hops_down(h))
                .collect();
            let is_gone = |h: HopSetId| gone.get(h as usize).copied().unwrap_or(false);
            let mut drop = Vec::new();
            for (p, r) in self.routes.iter_mut() {
                match r.kernel {
                    Kernel::Ours(h) | Kernel::Stale(h) if is_gone(h) => {
                        set_kernel(&mut self.in_kernel, &mut self.hopsets, r, Kernel::Absent);
                        if r.want().is_some() {
                            set_problem(&mut self.problems, p, r, Some(Problem::LinkDown));
                        } else {
                            drop.push(p);
                        }
                    }
                    // Wanted but not in the kernel (e.g. refused while the
                    // link was going down): it now waits for the link.
                    Kernel::Absent if r.want().is_some_and(is_gone) => {
                        set_problem(&mut self.problems, p, r, Some(Problem::LinkDown));
                    }
                    _ => {}
                }
            }
            for p in drop {
                self.remove_route(&p);
            }
        } else if up && was_down {
            self.links_down.remove(&ix);
            info!(ifindex = ix, "link up; reinstalling its routes");
            let uses: Vec<bool> = (0..self.hopsets.slots() as HopSetId)
                .map(|h| self.uses_link(h, ix))
                .collect();
            for (p, r) in self.routes.iter_mut() {
                if let Some(h) = r.want() {
                    if r.has_problem && uses.get(h as usize).copied().unwrap_or(false) {
                        Self::mark_dirty(&mut self.dirty, p, r);
                    }
                }
            }
            // Routes through a group that lost this link's member stayed;
            // give the group its member back.
            if self.nh.enabled {
                let links_down = &self.links_down;
                self.nh
                    .refresh_groups(&mut self.sock, self.cfg.protocol, links_down, |h| {
                        h.ifindex == Some(ix)
                    });
            }
        }
    }

    fn resync_links(&mut self) {
        let mut states = Vec::new();
        let need_carrier = self.nh.enabled;
        let res = self.sock.dump(nl::link_dump_request(), |m| {
            if m.ty == nl::RTM_NEWLINK {
                if let Some((ix, flags)) = nl::parse_link(m.payload) {
                    states.push((ix, nl::link_usable(flags, need_carrier)));
                }
            }
        });
        if let Err(e) = res {
            warn!(error = %e, "link dump failed");
            return;
        }
        let present: HashSet<u32> = states.iter().map(|s| s.0).collect();
        let vanished: Vec<u32> = self
            .links_down
            .iter()
            .copied()
            .filter(|ix| !present.contains(ix))
            .collect();
        for (ix, up) in states {
            self.link_state(ix, up);
        }
        for ix in vanished {
            self.link_state(ix, false);
        }
    }

    /// The kernel flushes IPv4 routes whose prefsrc disappeared: put the
    /// address back (we are configured to need it) and reinstall.
    fn source_address_lost(&mut self, a: Ipv4Addr) {
        match self.find_address(a) {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "address dump failed");
                return;
            }
        }
        warn!(address = %a, "source address removed; re-adding it and reinstalling IPv4 routes");
        match self.sock.request(nl::addr_request(true, LO_IFINDEX, a)) {
            Ok(()) => self.src_added = Some(a),
            Err(e) => warn!(error = %e, "cannot re-add source address"),
        }
        let mut drop = Vec::new();
        for (p, r) in self.routes.iter_mut() {
            if !matches!(p, IpNet::V4(_)) {
                continue;
            }
            if r.kernel == Kernel::Absent {
                // Refused while the address was missing: try again.
                if r.want().is_some() && r.has_problem {
                    Self::mark_dirty(&mut self.dirty, p, r);
                }
                continue;
            }
            gone_from_kernel(
                &mut self.in_kernel,
                &mut self.hopsets,
                &mut self.dirty,
                &mut drop,
                p,
                r,
            );
        }
        for p in drop {
            self.remove_route(&p);
        }
    }

    fn start_batch_if_empty(&mut self, seq: u32) {
        if self.batch.count() == 0 {
            self.sock.ensure_seq_room(1 << 20);
            self.base_seq = seq;
            self.inflight.clear();
        }
    }

    /// Decide what the kernel needs for one dirty prefix. The route's state
    /// is updated as if the kernel will accept the request (one map lookup
    /// per route on the hot path); `failed` rolls back the rare refusal.
    fn plan(&mut self, prefix: IpNet) -> Option<(RouteOp, HopSetId, Kernel)> {
        let limit = self.cfg.max_routes;
        let r = self.routes.get_mut(&prefix)?;
        r.dirty = false;
        // Set by the arms that drop the route from the map.
        let mut remove = false;
        let hopsets = &mut self.hopsets;
        let problems = &mut self.problems;
        let in_kernel = &mut self.in_kernel;
        let prev = r.kernel;
        let planned = match (r.want(), r.kernel) {
            (Some(h), Kernel::Absent) => {
                if let Err(t) = nl::check_route(&prefix, hopsets.get(h)) {
                    set_problem(problems, prefix, r, Some(Problem::Failed(t)));
                    None
                } else if all_hops_down(hopsets, &self.links_down, h) {
                    set_problem(problems, prefix, r, Some(Problem::LinkDown));
                    None
                } else if let Some(m) = limit.filter(|m| *in_kernel >= *m) {
                    set_problem(
                        problems,
                        prefix,
                        r,
                        Some(Problem::Failed(format!("max-routes {m} reached"))),
                    );
                    None
                } else {
                    set_kernel(in_kernel, hopsets, r, Kernel::Ours(h));
                    set_problem(problems, prefix, r, None);
                    Some((RouteOp::Create, h, prev))
                }
            }
            (Some(h), Kernel::Ours(k) | Kernel::Stale(k)) => {
                if hopsets.same(h, k) {
                    // Adopted as the kernel has it: its interfaces (and
                    // nexthop objects) are what link events touch.
                    set_kernel(in_kernel, hopsets, r, Kernel::Ours(k));
                    set_problem(problems, prefix, r, None);
                    None
                } else if let Err(t) = nl::check_route(&prefix, hopsets.get(h)) {
                    set_problem(problems, prefix, r, Some(Problem::Failed(t)));
                    None
                } else {
                    set_kernel(in_kernel, hopsets, r, Kernel::Ours(h));
                    set_problem(problems, prefix, r, None);
                    Some((RouteOp::Replace, h, prev))
                }
            }
            (None, Kernel::Stale(_)) if !self.synced => None,
            (None, Kernel::Ours(_) | Kernel::Stale(_)) => {
                *in_kernel = in_kernel.saturating_sub(1);
                remove = true;
                Some((RouteOp::Delete, UNKNOWN, prev))
            }
            (None, Kernel::Absent) => {
                remove = true;
                None
            }
        };
        if remove {
            self.remove_route(&prefix);
        }
        planned
    }

    /// Write every dirty prefix to the kernel in packed batches.
    fn flush(&mut self) {
        let bulk = self.dirty.len() >= BULK;
        if bulk {
            self.listen_routes(false);
        }
        self.flush_inner();
        if bulk {
            self.listen_routes(true);
            self.audit_at = Some(Instant::now() + AUDIT_AFTER_BULK);
        }
        self.free_unused_sets();
    }

    /// Free the hop sets no route uses any more (nothing is in flight
    /// now, so no refusal can restore a route to one), and once synced
    /// their nexthop objects (before, stale routes may still use them;
    /// the collection at sync covers those).
    fn free_unused_sets(&mut self) {
        let freed = self.hopsets.sweep();
        if self.nh.enabled && self.synced && !freed.sets.is_empty() {
            self.nh.remove_freed(&mut self.sock, &freed);
        }
    }

    fn listen_routes(&mut self, on: bool) {
        if self.route_mon_on == on {
            return;
        }
        for g in ROUTE_GROUPS {
            if let Err(e) = NlSocket::set_membership(self.route_mon_fd, g, on) {
                warn!(error = %e, "cannot change route event membership");
            }
        }
        self.route_mon_on = on;
    }

    /// A route event from the kernel. A route of another protocol at our
    /// key means someone replaced ours: it is theirs now, and reported as
    /// a conflict (never overwritten). A route of ours deleted by someone
    /// else is reinstalled if still wanted.
    fn route_event(&mut self, ty: u16, payload: &[u8]) {
        let Some(k) = nl::parse_route(payload) else {
            return;
        };
        if k.table != self.cfg.table || k.metric != self.params.metric_for(&k.prefix) {
            return;
        }
        let prefix = k.prefix;
        let foreign_new = ty == nl::RTM_NEWROUTE && k.protocol != self.cfg.protocol;
        let ours_gone = ty == nl::RTM_DELROUTE && k.protocol == self.cfg.protocol;
        if !foreign_new && !ours_gone {
            return;
        }
        let Some(r) = self.routes.get_mut(&prefix) else {
            return;
        };
        if r.kernel == Kernel::Absent {
            return;
        }
        set_kernel(&mut self.in_kernel, &mut self.hopsets, r, Kernel::Absent);
        if r.want().is_none() {
            self.remove_route(&prefix);
            return;
        }
        if foreign_new {
            let text = describe(&k);
            warn!(%prefix, existing = %text, "a foreign route replaced ours; leaving it alone");
            set_problem(&mut self.problems, prefix, r, Some(Problem::Conflict(text)));
        } else {
            debug!(%prefix, "our route was deleted; reinstalling");
            Self::mark_dirty(&mut self.dirty, prefix, r);
        }
    }

    fn flush_inner(&mut self) {
        let mut written = 0usize;
        for _round in 0..3 {
            if self.dirty.is_empty() && self.batch.count() == 0 {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            written += dirty.len();
            // Replaces go out in the order given (for a sorted feed the
            // kernel walks its trie cache-hot); creates and deletes change
            // the trie's shape and go out spread over the prefix space,
            // which needs far less trie rebalancing (and so fewer RCU
            // grace periods) than long runs of adjacent prefixes: sorted
            // deletes cost the kernel over twice as much.
            let mut reshape = std::mem::take(&mut self.reshape);
            for prefix in dirty {
                let Some((op, h, prev)) = self.plan(prefix) else {
                    continue;
                };
                if op == RouteOp::Replace {
                    self.emit(prefix, op, h, prev);
                } else {
                    reshape.push(Planned {
                        prefix,
                        op,
                        hops: h,
                        prev,
                    });
                }
            }
            let n = reshape.len();
            let order = spread_order(n);
            for i in 0..n {
                if let Some(p) = reshape.get(order(i)) {
                    let p = *p;
                    self.emit(p.prefix, p.op, p.hops, p.prev);
                }
            }
            reshape.clear();
            // Keep a small buffer, not a full table's worth.
            if reshape.capacity() <= 1 << 16 {
                self.reshape = reshape;
            }
            self.send_batch();
            self.drain();
            self.describe_conflicts();
        }
        // After bulk work, hand freed heap back to the kernel: the changes'
        // next-hop vectors were allocated by the sender of the changes and
        // freed here, and a full table's worth would otherwise stay in the
        // process as free heap (about 60 MB).
        if written >= 100_000 {
            trim_heap();
        }
        // Give memory back after a mass withdrawal.
        self.routes.shrink_if_sparse();
        if self.problems.capacity() > 4096 && self.problems.len() * 4 < self.problems.capacity() {
            self.problems.shrink_to_fit();
        }
    }

    /// Pack one planned request into the batch (sending it when full).
    fn emit(&mut self, prefix: IpNet, op: RouteOp, h: HopSetId, prev: Kernel) {
        let mut nh_id = None;
        let hops = self.hopsets.get(h);
        // The kernel wants an interface on every gateway nexthop object; a
        // hop without one keeps the route inline (resolved by lookup).
        if op != RouteOp::Delete && self.nh.enabled && hops.iter().all(|x| x.ifindex.is_some()) {
            let made = match hops {
                [hop] => self.nh.ensure(&mut self.sock, self.cfg.protocol, *hop),
                _ => {
                    self.nh
                        .ensure_group(&mut self.sock, self.cfg.protocol, hops, &self.links_down)
                }
            };
            match made {
                Ok(id) => nh_id = Some(id),
                Err(t) => {
                    let f = InFlight {
                        prefix,
                        op,
                        prev,
                        nh_id: None,
                        other_metric: false,
                    };
                    self.failed(&f, t, 0);
                    return;
                }
            }
        }
        let seq = self.sock.next_seq(1);
        self.start_batch_if_empty(seq);
        let hops = self.hopsets.get(h);
        nl::put_route(&mut self.batch, op, seq, &self.params, &prefix, hops, nh_id);
        self.inflight.push(InFlight {
            prefix,
            op,
            prev,
            nh_id,
            other_metric: false,
        });
        if self.batch.len() >= self.cfg.batch_bytes {
            self.send_batch();
        }
    }

    /// Hand the packed batch to the sender thread; while it is in the
    /// kernel the next one is packed. At most two are in flight.
    fn send_batch(&mut self) {
        if self.batch.count() == 0 {
            return;
        }
        self.batch.add_ack_last();
        if self.pipe.full() {
            self.complete_one();
        }
        let spare = self.spare.pop().unwrap_or_else(|| {
            (
                MsgBuf::with_capacity(self.cfg.batch_bytes + 4096),
                Vec::new(),
            )
        });
        let buf = std::mem::replace(&mut self.batch, spare.0);
        let meta = std::mem::replace(&mut self.inflight, spare.1);
        let job = Job {
            buf,
            base: self.base_seq,
        };
        if let Err((job, meta)) = self.pipe.submit(job, meta) {
            // No sender thread: do it here.
            let (errors, fatal) = send_and_collect(&mut self.sock, &job.buf, job.base);
            self.settle(
                Done {
                    buf: job.buf,
                    errors,
                    fatal,
                },
                meta,
            );
        }
    }

    /// Wait for every batch in flight and settle its replies.
    fn drain(&mut self) {
        while self.pipe.in_flight() > 0 {
            self.complete_one();
        }
    }

    fn complete_one(&mut self) {
        if let Some((done, meta)) = self.pipe.wait() {
            self.settle(done, meta);
        }
    }

    fn settle(&mut self, mut done: Done, mut meta: Vec<InFlight>) {
        if let Some(t) = done.fatal.take() {
            warn!(error = %t, routes = meta.len(), "netlink batch failed");
            for f in &meta {
                self.failed(f, t.clone(), 0);
            }
        } else {
            for (i, t, e) in std::mem::take(&mut done.errors) {
                if let Some(f) = meta.get(i) {
                    self.failed(f, t, e);
                }
            }
        }
        done.buf.clear();
        meta.clear();
        if self.spare.len() < 4 {
            self.spare.push((done.buf, meta));
        }
    }

    /// The kernel refused a request: undo the optimistic update of `plan`.
    fn failed(&mut self, f: &InFlight, text: String, errno: i32) {
        if f.other_metric {
            warn!(prefix = %f.prefix, error = %text, "cannot remove our route at an old metric");
            return;
        }
        match f.op {
            RouteOp::Create | RouteOp::Replace => {
                let Some(r) = self.routes.get_mut(&f.prefix) else {
                    return;
                };
                set_kernel(&mut self.in_kernel, &mut self.hopsets, r, f.prev);
                if f.op == RouteOp::Create && errno == libc::EEXIST {
                    let c = Problem::Conflict("unknown route".into());
                    set_problem(&mut self.problems, f.prefix, r, Some(c));
                    self.to_describe.push(f.prefix);
                } else {
                    // Make the nexthop object again before the next try,
                    // in case someone removed it.
                    if let Some(id) = f.nh_id {
                        self.nh.forget(id);
                    }
                    debug!(prefix = %f.prefix, error = %text, "route failed");
                    set_problem(&mut self.problems, f.prefix, r, Some(Problem::Failed(text)));
                }
            }
            // Already gone is as good as deleted.
            RouteOp::Delete if errno == libc::ESRCH => {}
            RouteOp::Delete => {
                let r = self.routes.get_or_insert(f.prefix, Route::NEW);
                set_kernel(&mut self.in_kernel, &mut self.hopsets, r, f.prev);
                set_problem(&mut self.problems, f.prefix, r, Some(Problem::Failed(text)));
            }
        }
    }

    /// Find out what blocks routes that got EEXIST. A route of our own
    /// protocol and metric (installed behind our back, e.g. by another
    /// instance before our start dump) is adopted and replaced; anything
    /// else is a foreign conflict and is left alone.
    fn describe_conflicts(&mut self) {
        if self.to_describe.is_empty() {
            return;
        }
        let wanted: HashSet<IpNet> = self.to_describe.drain(..).collect();
        let mut found: HashMap<IpNet, Vec<KernelRoute>> = HashMap::new();
        for family in [nl::AF_INET, nl::AF_INET6] {
            let req = nl::route_dump_request(family, self.cfg.table, 0);
            let res = self.sock.dump(req, |m| {
                if m.ty == nl::RTM_NEWROUTE {
                    if let Some(r) = nl::parse_route(m.payload) {
                        if wanted.contains(&r.prefix) {
                            found.entry(r.prefix).or_default().push(r);
                        }
                    }
                }
            });
            if let Err(e) = res {
                warn!(error = %e, "route dump failed");
            }
        }
        for prefix in wanted {
            let list = found.remove(&prefix).unwrap_or_default();
            let metric = self.params.metric_for(&prefix);
            let ours = list
                .iter()
                .any(|k| k.protocol == self.cfg.protocol && k.metric == metric);
            let Some(r) = self.routes.get_mut(&prefix) else {
                continue;
            };
            if ours {
                set_kernel(
                    &mut self.in_kernel,
                    &mut self.hopsets,
                    r,
                    Kernel::Stale(UNKNOWN),
                );
                set_problem(&mut self.problems, prefix, r, None);
                Self::mark_dirty(&mut self.dirty, prefix, r);
                continue;
            }
            let text = list
                .iter()
                .filter(|k| k.metric == metric)
                .chain(list.iter().filter(|k| k.metric != metric))
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ");
            warn!(%prefix, existing = %text, "foreign route in the way; not touching it");
            let c = Problem::Conflict(if text.is_empty() {
                "route with the same key (gone since)".into()
            } else {
                text
            });
            set_problem(&mut self.problems, prefix, r, Some(c));
        }
    }

    fn status(&self) -> FibStatus {
        let mut s = FibStatus {
            pending: self.dirty.len(),
            initial_sync_done: self.synced,
            source_address_added: self.src_added.is_some(),
            hop_sets: self.hopsets.live(),
            nexthop_objects: self.nh.ours.len() + self.nh.ours_groups.len(),
            ..FibStatus::default()
        };
        for r in self.routes.values() {
            match r.kernel {
                Kernel::Ours(_) if r.want().is_some() => s.installed += 1,
                Kernel::Stale(_) => s.stale += 1,
                _ => {}
            }
        }
        for (p, problem) in &self.problems {
            match problem {
                Problem::Failed(e) => {
                    s.failed_count += 1;
                    s.failed.push(FailedRoute {
                        prefix: *p,
                        error: e.clone(),
                    });
                }
                Problem::Conflict(e) => {
                    s.conflict_count += 1;
                    s.conflicts.push(ForeignConflict {
                        prefix: *p,
                        existing: e.clone(),
                    });
                }
                Problem::LinkDown => s.link_down += 1,
            }
        }
        s.failed.sort_by_key(|f| f.prefix);
        s.failed.truncate(STATUS_LIST_MAX);
        s.conflicts.sort_by_key(|c| c.prefix);
        s.conflicts.truncate(STATUS_LIST_MAX);
        s
    }

    fn shutdown(&mut self) -> Result<(), FibError> {
        if !self.cfg.keep_on_exit {
            self.synced = true;
            for (p, r) in self.routes.iter_mut() {
                set_want(&mut self.hopsets, r, None);
                if r.kernel != Kernel::Absent {
                    Self::mark_dirty(&mut self.dirty, p, r);
                }
            }
            self.flush();
            info!(left = self.in_kernel, "removed our routes");
            self.nh.remove_all(&mut self.sock);
        }
        // With keep_on_exit the kept IPv4 routes need their prefsrc.
        if let Some(a) = self.src_added.take().filter(|_| !self.cfg.keep_on_exit) {
            self.sock
                .request(nl::addr_request(false, LO_IFINDEX, a))
                .map_err(|e| FibError::SourceAddress {
                    what: "remove",
                    addr: a,
                    source: e,
                })?;
            info!(address = %a, "removed source address from lo");
        }
        Ok(())
    }
}

/// Dump nexthop objects: ours are reused, others' ids avoided. Kernels
/// without nexthop objects (before 5.3) answer with an error: plain routes.
fn load_nexthops(sock: &mut NlSocket, cfg: &FibConfig) -> Result<NhObjects, FibError> {
    let mut nh = NhObjects {
        next_id: cfg.protocol as u32 * 1000,
        ..NhObjects::default()
    };
    let mut found = Vec::new();
    match sock.dump(nl::nexthop_dump_request(), |m| {
        if m.ty == nl::RTM_NEWNEXTHOP {
            if let Some(x) = nl::parse_nexthop(m.payload) {
                found.push(x);
            }
        }
    }) {
        Ok(_) => {}
        Err(nl::NlError::Kernel(e, t)) => {
            if cfg.nexthop_objects {
                warn!(error = %nl::error_text(e, t.as_deref()), "no nexthop objects; using plain routes");
            }
            return Ok(nh);
        }
        Err(e) => return Err(e.into()),
    }
    let mut groups = Vec::new();
    for (id, proto, kind) in found {
        match kind {
            nl::NhKind::Single(h) if proto == cfg.protocol => {
                nh.ours.insert(id, h);
                nh.by_hop.entry(h).or_insert(NhObj { id, present: true });
            }
            nl::NhKind::Group(m) if proto == cfg.protocol => groups.push((id, m)),
            _ => {
                nh.taken.insert(id);
            }
        }
    }
    for (id, members) in groups {
        // Usable only if made of our own objects (as we make them).
        let hops: Option<Vec<FibNextHop>> =
            members.iter().map(|m| nh.ours.get(m).copied()).collect();
        match hops {
            Some(mut hops) => {
                hops.sort();
                nh.ours_groups.insert(id, hops.clone());
                nh.groups.entry(hops).or_insert(NhObj { id, present: true });
            }
            None => {
                nh.taken.insert(id);
            }
        }
    }
    nh.enabled = cfg.nexthop_objects;
    Ok(nh)
}

impl NhObjects {
    /// The id of our object for `hop`, made now if needed.
    fn ensure(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        hop: FibNextHop,
    ) -> Result<u32, String> {
        let reuse = match self.by_hop.get(&hop) {
            Some(o) if o.present => return Ok(o.id),
            Some(o) => Some(o.id),
            None => None,
        };
        let id = self.claim_id(
            reuse,
            |nh, id| match sock.request(nl::nexthop_request(id, protocol, &hop)) {
                // Our own object for this hop is still there.
                Err(nl::NlError::Kernel(e, _))
                    if e == libc::EEXIST && nh.ours.get(&id) == Some(&hop) =>
                {
                    Ok(())
                }
                r => r,
            },
            || format!("nexthop object for {}", hop.gateway),
        )?;
        self.ours.insert(id, hop);
        self.by_hop.insert(hop, NhObj { id, present: true });
        Ok(id)
    }

    /// Makes an object under a free id: `reuse` first, then fresh ones. An
    /// id the kernel already holds for someone else (EEXIST from `make`)
    /// is remembered as taken and skipped.
    fn claim_id(
        &mut self,
        mut reuse: Option<u32>,
        mut make: impl FnMut(&Self, u32) -> Result<(), nl::NlError>,
        what: impl Fn() -> String,
    ) -> Result<u32, String> {
        for _ in 0..64 {
            let id = match reuse.take() {
                Some(id) => id,
                None => self.alloc(),
            };
            match make(self, id) {
                Ok(()) => return Ok(id),
                Err(nl::NlError::Kernel(e, _)) if e == libc::EEXIST => {
                    self.taken.insert(id);
                }
                Err(e) => return Err(format!("{}: {e}", what())),
            }
        }
        Err("no free nexthop id".into())
    }

    /// The id of our multipath group for `hops` (sorted, two or more, all
    /// with an interface), made now if needed. Members on links that are
    /// down are left out; `refresh_groups` adds them when they return.
    fn ensure_group(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        hops: &[FibNextHop],
        links_down: &HashSet<u32>,
    ) -> Result<u32, String> {
        if let Some(g) = self.groups.get(hops) {
            if g.present {
                return Ok(g.id);
            }
        }
        let members = self.members(sock, protocol, hops, links_down)?;
        let reuse = self.groups.get(hops).map(|g| g.id);
        let id = self.claim_id(
            reuse,
            |nh, id| {
                // Our own group id may still exist with other members: replace.
                let mine = nh.ours_groups.get(&id).is_some_and(|h| h == hops);
                sock.request(nl::nexthop_group_request(mine, id, protocol, &members))
            },
            || "nexthop group".to_owned(),
        )?;
        self.ours_groups.insert(id, hops.to_vec());
        self.groups
            .insert(hops.to_vec(), NhObj { id, present: true });
        Ok(id)
    }

    /// Member object ids for the hops whose link is up.
    fn members(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        hops: &[FibNextHop],
        links_down: &HashSet<u32>,
    ) -> Result<Vec<u32>, String> {
        let mut ids = Vec::with_capacity(hops.len());
        let mut last_err = None;
        for h in hops {
            if h.ifindex.is_some_and(|ix| links_down.contains(&ix)) {
                continue;
            }
            match self.ensure(sock, protocol, *h) {
                Ok(id) => ids.push(id),
                Err(e) => last_err = Some(e),
            }
        }
        if ids.is_empty() {
            return Err(last_err.unwrap_or_else(|| "every next hop is down".into()));
        }
        Ok(ids)
    }

    /// Re-make the member list of our groups with a hop matching `pick`
    /// (its link came back, or its object was deleted): the kernel drops a
    /// member from its groups when the member goes, and does not add it
    /// back by itself.
    fn refresh_groups(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        links_down: &HashSet<u32>,
        pick: impl Fn(&FibNextHop) -> bool,
    ) {
        let todo: Vec<(Vec<FibNextHop>, u32)> = self
            .groups
            .iter()
            .filter(|(hops, g)| g.present && hops.iter().any(&pick))
            .map(|(hops, g)| (hops.clone(), g.id))
            .collect();
        for (hops, id) in todo {
            let res = self
                .members(sock, protocol, &hops, links_down)
                .and_then(|m| {
                    sock.request(nl::nexthop_group_request(true, id, protocol, &m))
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = res {
                warn!(id, error = %e, "cannot refresh nexthop group");
            }
        }
    }

    /// A link went down: the kernel removed our objects on it, and every
    /// group left without members.
    fn link_down(&mut self, ix: u32, links_down: &HashSet<u32>) {
        for (h, o) in self.by_hop.iter_mut() {
            if h.ifindex == Some(ix) {
                o.present = false;
            }
        }
        for (hops, g) in self.groups.iter_mut() {
            if hops
                .iter()
                .all(|h| h.ifindex.is_some_and(|x| links_down.contains(&x)))
            {
                g.present = false;
            }
        }
    }

    /// Delete our object (single or group) `id` from the kernel and forget
    /// it; kept if the kernel refuses.
    fn remove(&mut self, sock: &mut NlSocket, id: u32) {
        match sock.request(nl::nexthop_delete_request(id)) {
            Ok(()) => {}
            Err(nl::NlError::Kernel(e, _)) if e == libc::ENOENT => {}
            Err(e) => {
                warn!(id, error = %e, "cannot remove unused nexthop object");
                return;
            }
        }
        debug!(id, "removed unused nexthop object");
        if let Some(hop) = self.ours.remove(&id) {
            if self.by_hop.get(&hop).is_some_and(|o| o.id == id) {
                self.by_hop.remove(&hop);
            }
        }
        if let Some(hops) = self.ours_groups.remove(&id) {
            if self.groups.get(&hops).is_some_and(|g| g.id == id) {
                self.groups.remove(&hops);
            }
        }
    }

    /// Delete the groups of freed hop sets, then the objects of hops no
    /// live set contains (a group goes before its members).
    fn remove_freed(&mut self, sock: &mut NlSocket, freed: &Freed) {
        let groups = freed.sets.iter().filter_map(|h| self.groups.get(h));
        let singles = freed.hops.iter().filter_map(|h| self.by_hop.get(h));
        let ids: Vec<u32> = groups.chain(singles).map(|o| o.id).collect();
        for id in ids {
            self.remove(sock, id);
        }
    }

    fn alloc(&mut self) -> u32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let id = self.next_id;
            if !self.taken.contains(&id)
                && !self.ours.contains_key(&id)
                && !self.ours_groups.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// Mark an object (single or group) as needing to be made again.
    fn forget(&mut self, id: u32) {
        if let Some(h) = self.ours.get(&id) {
            if let Some(o) = self.by_hop.get_mut(h) {
                o.present = false;
            }
        }
        if let Some(hops) = self.ours_groups.get(&id) {
            if let Some(g) = self.groups.get_mut(hops) {
                g.present = false;
            }
        }
    }

    /// Delete every nexthop object of ours, groups first (after our routes
    /// are gone; deleting an object also deletes routes that use it).
    fn remove_all(&mut self, sock: &mut NlSocket) {
        let ids: Vec<u32> = self
            .ours_groups
            .keys()
            .chain(self.ours.keys())
            .copied()
            .collect();
        for id in ids {
            match sock.request(nl::nexthop_delete_request(id)) {
                Ok(()) => {}
                Err(nl::NlError::Kernel(e, _)) if e == libc::ENOENT => {}
                Err(e) => warn!(id, error = %e, "cannot remove nexthop object"),
            }
        }
        self.ours.clear();
        self.ours_groups.clear();
        self.by_hop.clear();
        self.groups.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write order visits every planned change exactly once.
    #[test]
    fn spread_order_is_a_permutation() {
        for n in [1usize, 2, 3, 1000, 1024, 65_536, 901_899] {
            let order = spread_order(n);
            let mut seen = vec![false; n];
            for i in 0..n {
                let j = order(i);
                assert!(j < n, "n={n} i={i} j={j}");
                assert!(!seen[j], "n={n}: {j} twice");
                seen[j] = true;
            }
            if n > 1000 {
                assert!(order(1).abs_diff(order(0)) > n / 4, "neighbours stay apart");
            }
        }
    }

    /// The per-prefix state stays small (a million of them per table).
    #[test]
    fn route_state_is_compact() {
        assert!(std::mem::size_of::<Route>() <= 20);
        assert!(std::mem::size_of::<(IpNet, Route)>() <= 40);
    }
}
