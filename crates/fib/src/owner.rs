//! The FIB owner thread: both netlink sockets, the planner, one loop.
//!
//! It runs on its own OS thread (with a current-thread runtime) so that
//! a multi-second full-table write never blocks the daemon's workers, and
//! so it can enter a network namespace without affecting anyone else.
//! This is the executor: it feeds the planner (`plan/`) what the kernel
//! says and writes what the planner decides (`exec.rs`).

use std::collections::HashSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use netlink_packet_route::AddressFamily;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::exec::InFlight;
use crate::nexthops::{self, NhObjects};
use crate::nl::{self, KernelRoute, MsgBuf, NlSocket, RouteParams};
use crate::plan::{LinkChange, Planner};
use crate::sender::Pipeline;
use crate::{Cmd, FibConfig, FibError, FibStatus};

pub(crate) const ROUTE_GROUPS: [u32; 2] = [nl::RTNLGRP_IPV4_ROUTE, nl::RTNLGRP_IPV6_ROUTE];
/// A flush this large stops listening to route events while it runs.
pub(crate) const BULK: usize = 10_000;
/// Audit this long after the last bulk flush (covers what happened while
/// not listening; bulk loads come in runs, so one audit after the run).
pub(crate) const AUDIT_AFTER_BULK: Duration = Duration::from_secs(30);
/// `lo` is interface 1 in every network namespace.
const LO_IFINDEX: u32 = 1;

pub(crate) struct Owner {
    pub cfg: FibConfig,
    pub plan: Planner,
    pub sock: NlSocket,
    src_added: Option<Ipv4Addr>,
    pub batch: MsgBuf,
    pub base_seq: u32,
    pub inflight: Vec<InFlight>,
    pub pipe: Pipeline<Vec<InFlight>>,
    /// Remove unused nexthop objects after the next flush.
    gc_nexthops: bool,
    /// The route event socket, and whether we listen on it now (not
    /// during bulk writes, whose own events would only flood it).
    pub route_groups: nl::Groups,
    pub route_mon_on: bool,
    /// An audit is due then (after bulk writes, or a monitor overrun).
    pub audit_at: Option<Instant>,
    /// Reused buffer of creates and deletes of one flush.
    pub reshape: Vec<crate::exec::Reshape>,
    /// Recycled batch buffers.
    pub spare: Vec<(MsgBuf, Vec<InFlight>)>,
    pub nh: NhObjects,
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
    crate::sys::enter_netns(&File::open(path)?)
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
        let monitor = crate::sys::register(monitor).map_err(nl::NlError::Io)?;
        // Route events on their own socket: a burst of them (they come for
        // our own writes too) must not crowd out link events.
        let route_mon = NlSocket::open(&ROUTE_GROUPS, true).map_err(nl::NlError::Io)?;
        let route_groups = route_mon.groups_handle().map_err(nl::NlError::Io)?;
        let route_mon = crate::sys::register(route_mon).map_err(nl::NlError::Io)?;

        let batch_sock = NlSocket::open(&[], false).map_err(nl::NlError::Io)?;
        // A batch must fit the socket's send buffer (the kernel refuses a
        // larger sendmsg), with room for the one message that overshoots.
        let mut cfg = cfg;
        let room = batch_sock.send_buffer().saturating_sub(16 * 1024);
        cfg.batch_bytes = cfg.batch_bytes.min(room).max(4096);
        let pipe = Pipeline::start(batch_sock).map_err(FibError::Thread)?;
        let nh = nexthops::load_nexthops(&mut sock, &cfg)?;
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
            plan: Planner::new(params, cfg.max_routes, links_down),
            cfg,
            sock,
            src_added: None,
            base_seq: 0,
            inflight: Vec::new(),
            pipe,
            reshape: Vec::new(),
            gc_nexthops: false,
            spare: Vec::new(),
            nh,
            route_groups,
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
        self.sock
            .dump(nl::addr_dump_request(AddressFamily::Inet), |m| {
                if m.ty == nl::RTM_NEWADDR {
                    if let Some(x) = nl::parse_addr4(m.payload) {
                        if x.addr == a {
                            let ours = x.ours && x.ifindex == LO_IFINDEX;
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

    /// Dump our protocol's routes in our table, both families. `None`
    /// if the dump failed or was interrupted and `retry` is false.
    fn dump_ours(&mut self, retry: bool) -> Result<Option<Vec<KernelRoute>>, FibError> {
        let mut found = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            loop {
                let at = found.len();
                let req = nl::route_dump_request(family, self.cfg.table, self.cfg.protocol);
                let ok = self.sock.dump(req, |m| {
                    if m.ty == nl::RTM_NEWROUTE {
                        if let Some(r) = nl::parse_route_raw(m.payload) {
                            found.push(r);
                        }
                    }
                })?;
                if ok {
                    break;
                }
                found.truncate(at);
                if !retry {
                    debug!("route dump interrupted");
                    return Ok(None);
                }
            }
        }
        Ok(Some(found))
    }

    /// Routes of our protocol at start are the planner's stale candidates.
    fn load_stale(&mut self) -> Result<(), FibError> {
        let found = self.dump_ours(true)?.unwrap_or_default();
        let nh = &self.nh;
        self.plan.load_stale(found, &|id| nh.hops_of(id));
        Ok(())
    }

    /// Let the planner compare our protocol's kernel routes with its state.
    fn audit(&mut self) {
        let found = match self.dump_ours(false) {
            Ok(Some(f)) => f,
            Ok(None) => {
                debug!("audit skipped");
                return;
            }
            Err(e) => {
                warn!(error = %e, "route dump failed; audit skipped");
                return;
            }
        };
        let nh = &self.nh;
        self.plan.audit(found, &|id| nh.hops_of(id));
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
            let synced = self.plan.synced();
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
                    shutdown = self.commands(cmd, &mut rx, &mut waiters);
                }
                _ = tokio::time::sleep_until(stale_deadline), if !synced => {
                    info!("stale timeout: removing routes not wanted again");
                    self.sync_done();
                }
                _ = retry.tick() => self.plan.retry(),
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
            if self.gc_nexthops && self.plan.synced() {
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

    /// Take `first` and what else is queued (so changes to one prefix
    /// coalesce). Returns the shutdown request, which ends the batch.
    fn commands(
        &mut self,
        first: Cmd,
        rx: &mut mpsc::Receiver<Cmd>,
        waiters: &mut Vec<oneshot::Sender<()>>,
    ) -> Option<oneshot::Sender<Result<(), FibError>>> {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(c) = next.take() {
            match c {
                // The permit goes with the changes taken: the sender may
                // queue more while these are written.
                Cmd::Apply(ch, _room) => self.plan.apply(ch),
                Cmd::Flush(t) => waiters.push(t),
                Cmd::SyncDone(t) => {
                    self.sync_done();
                    waiters.push(t);
                }
                Cmd::Status(t) => {
                    let _ = t.send(self.status());
                }
                Cmd::Shutdown(t) => return Some(t),
            }
            n += 1;
            if n < 4096 {
                next = rx.try_recv().ok();
            }
        }
        None
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
            if let Some(k) = nl::parse_route_event(&p) {
                self.plan.route_event(ty == nl::RTM_NEWROUTE, &k);
            }
        }
        if overrun {
            debug!("route events overran; auditing");
            self.audit_at = Some(Instant::now());
        }
    }

    fn sync_done(&mut self) {
        if self.plan.synced() {
            return;
        }
        self.gc_nexthops = true;
        let other = self.plan.sync_done();
        self.delete_other_metric(other);
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
                if let (Some(a), Some(x)) = (self.cfg.source_address, nl::parse_addr4(payload)) {
                    if a == x.addr {
                        self.source_address_lost(a);
                    }
                }
            }
            _ => {}
        }
    }

    /// Once stale routes are gone: delete our nexthop objects (e.g. left by
    /// an earlier run for a gateway no longer used) that no route of ours
    /// uses.
    fn collect_nexthops(&mut self) {
        let mut used = HashSet::new();
        for h in self.plan.kernel_sets() {
            self.nh.ids_for(self.plan.hopsets.get(h), &mut used);
        }
        for id in self.nh.unused(&used) {
            self.nh.remove(&mut self.sock, id);
        }
    }

    /// Someone deleted one of our nexthop objects, and with it every route
    /// using it: make it again and reinstall those routes.
    fn nexthop_deleted(&mut self, id: u32) {
        let Some((hops, single)) = self.nh.deleted(id) else {
            return;
        };
        match hops.as_slice() {
            [hop] if single => {
                warn!(id, gateway = %hop.ip(), "our nexthop object was deleted; reinstalling");
                // Groups lost it as a member: make it again and put it back.
                let hop = *hop;
                let down = &self.plan.links_down;
                let proto = self.cfg.protocol;
                self.nh
                    .refresh_groups(&mut self.sock, proto, down, |h| *h == hop);
            }
            _ => warn!(id, "our nexthop group was deleted; reinstalling its routes"),
        }
        self.plan.set_gone(&hops);
    }

    /// A link changed: the planner follows its routes, we its objects.
    fn link_state(&mut self, ix: u32, up: bool) {
        match self.plan.link_state(ix, up) {
            // The kernel removes nexthop objects on a link that goes down.
            Some(LinkChange::Down) => self.nh.link_down(ix, &self.plan.links_down),
            // Routes through a group that lost this link's member stayed;
            // give the group its member back.
            Some(LinkChange::Up) if self.nh.enabled => {
                let down = &self.plan.links_down;
                let proto = self.cfg.protocol;
                self.nh
                    .refresh_groups(&mut self.sock, proto, down, |h| h.ifindex() == Some(ix));
            }
            _ => {}
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
        let present: Vec<u32> = states.iter().map(|s| s.0).collect();
        let vanished = self.plan.vanished_links(&present);
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
        self.plan.source_lost();
    }

    fn status(&self) -> FibStatus {
        FibStatus {
            source_address_added: self.src_added.is_some(),
            nexthop_objects: self.nh.count(),
            ..self.plan.status()
        }
    }

    fn shutdown(&mut self) -> Result<(), FibError> {
        if !self.cfg.keep_on_exit {
            self.plan.withdraw_all();
            self.flush();
            info!(left = self.plan.in_kernel(), "removed our routes");
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
