//! The planner: every per-prefix state, and what the kernel needs.
//!
//! No I/O. Inputs are wanted changes, the kernel's dumps and events (as
//! parsed values) and its answers to our requests; the output is one
//! [`Planned`] operation per dirty prefix. The executor (`owner.rs`,
//! `exec.rs`) writes them and reports each refusal back through
//! [`Planner::failed`], which undoes the optimistic update of
//! [`Planner::plan`]. Reconcile at start and audits are in `reconcile.rs`,
//! link and address following in `links.rs`, status in `status.rs`.

mod links;
mod reconcile;
mod status;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ipnet::IpNet;

pub(crate) use links::LinkChange;

use crate::hopsets::{Freed, HopSetId, HopSets, UNKNOWN};
use crate::nexthops::NhError;
use crate::nl::{self, RouteOp, RouteParams};
use crate::routes::{FastHash, RouteMap};
use crate::sender::BatchError;
use crate::FibChange;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Not in the kernel (as far as we know).
    Absent,
    /// Installed by us (or adopted) with this hop set.
    Ours(HopSetId),
    /// Found with our protocol at start; not wanted again yet.
    Stale(HopSetId),
}

/// Why a wanted route is not in the kernel (`status().failed`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Hops(#[from] nl::HopError),
    #[error("max-routes {0} reached")]
    MaxRoutes(usize),
    #[error(transparent)]
    Nexthop(#[from] NhError),
    /// The kernel's refusal, as it worded it.
    #[error(transparent)]
    Kernel(#[from] nl::Refusal),
    /// The batch carrying the request went unanswered.
    #[error(transparent)]
    Batch(Arc<BatchError>),
}

#[derive(Debug)]
pub(crate) enum Problem {
    Failed(Failure),
    /// What the kernel has in the way.
    Conflict(String),
    LinkDown,
}

/// Per-prefix state. Its fields are byte arrays, so it is 11 bytes with
/// alignment 1: with the 5-byte IPv4 key of `RouteMap` a map slot is 16
/// bytes (24 with `u32` fields: 8 MB more for a full table). The rare
/// problem text lives in `Planner::problems`.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    /// The wanted hop set, or `NO_WANT` (native byte order).
    want: [u8; 4],
    kernel: PackedKernel,
    dirty: bool,
    has_problem: bool,
}

/// `Kernel` without alignment: a tag and the hop set's bytes.
#[derive(Clone, Copy)]
pub(crate) struct PackedKernel {
    tag: u8,
    set: [u8; 4],
}

impl PackedKernel {
    const ABSENT: PackedKernel = PackedKernel {
        tag: 0,
        set: [0; 4],
    };

    pub(crate) fn new(k: Kernel) -> PackedKernel {
        match k {
            Kernel::Absent => PackedKernel::ABSENT,
            Kernel::Ours(h) => PackedKernel {
                tag: 1,
                set: h.to_ne_bytes(),
            },
            Kernel::Stale(h) => PackedKernel {
                tag: 2,
                set: h.to_ne_bytes(),
            },
        }
    }

    pub(crate) fn get(self) -> Kernel {
        let h = HopSetId::from_ne_bytes(self.set);
        match self.tag {
            1 => Kernel::Ours(h),
            2 => Kernel::Stale(h),
            _ => Kernel::Absent,
        }
    }
}

/// `Route::want` when the route is not wanted.
const NO_WANT: HopSetId = u32::MAX - 1;

impl Route {
    const NEW: Route = Route {
        want: NO_WANT.to_ne_bytes(),
        kernel: PackedKernel::ABSENT,
        dirty: false,
        has_problem: false,
    };

    pub fn want(&self) -> Option<HopSetId> {
        let w = self.want_raw();
        (w != NO_WANT).then_some(w)
    }

    /// The wanted hop set, `NO_WANT` included.
    fn want_raw(&self) -> HopSetId {
        HopSetId::from_ne_bytes(self.want)
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel.get()
    }
}

/// One request for the kernel, decided for a dirty prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Planned {
    pub prefix: IpNet,
    pub op: RouteOp,
    /// The hop set to write (`UNKNOWN` for deletes).
    pub hops: HopSetId,
    /// Kernel state before this request, restored if it fails.
    pub prev: Kernel,
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

/// Change what a route wants, moving its hold on hop sets.
fn set_want(hopsets: &mut HopSets, r: &mut Route, h: Option<HopSetId>) {
    let h = h.unwrap_or(NO_WANT);
    hopsets.hold(h);
    hopsets.release(r.want_raw());
    r.want = h.to_ne_bytes();
}

/// The hop set a kernel state holds.
fn kernel_set(k: Kernel) -> Option<HopSetId> {
    match k {
        Kernel::Absent => None,
        Kernel::Ours(h) | Kernel::Stale(h) => Some(h),
    }
}

/// Change what the kernel has for a route, keeping the count of routes
/// we hold there and the holds on hop sets.
fn set_kernel(in_kernel: &mut usize, hopsets: &mut HopSets, r: &mut Route, k: Kernel) {
    if let Some(h) = kernel_set(k) {
        hopsets.hold(h);
    }
    if let Some(h) = kernel_set(r.kernel()) {
        hopsets.release(h);
    }
    let was = r.kernel() != Kernel::Absent;
    let is = k != Kernel::Absent;
    if was && !is {
        *in_kernel = in_kernel.saturating_sub(1);
    } else if !was && is {
        *in_kernel += 1;
    }
    r.kernel = PackedKernel::new(k);
}

fn mark_dirty(dirty: &mut Vec<IpNet>, prefix: IpNet, r: &mut Route) {
    if !r.dirty {
        r.dirty = true;
        dirty.push(prefix);
    }
}

/// Every next hop of the set is on a link that is down.
fn all_hops_down(hopsets: &HopSets, links_down: &HashSet<u32>, h: HopSetId) -> bool {
    let hops = hopsets.get(h);
    !hops.is_empty()
        && hops
            .iter()
            .all(|x| x.ifindex().is_some_and(|ix| links_down.contains(&ix)))
}

pub(crate) struct Planner {
    pub params: RouteParams,
    max_routes: Option<usize>,
    routes: RouteMap<Route>,
    problems: Problems,
    pub hopsets: HopSets,
    dirty: Vec<IpNet>,
    /// Our routes at another metric (config changed): removed at sync.
    stale_other: Vec<(IpNet, u32)>,
    pub links_down: HashSet<u32>,
    synced: bool,
    /// Routes we hold in the kernel (Ours or Stale), for `max_routes`.
    in_kernel: usize,
    /// Prefixes refused with EEXIST: what is in the way is looked up.
    to_describe: Vec<IpNet>,
}

impl Planner {
    pub fn new(params: RouteParams, max_routes: Option<usize>, links_down: HashSet<u32>) -> Self {
        Planner {
            params,
            max_routes,
            routes: RouteMap::default(),
            problems: Problems::default(),
            hopsets: HopSets::default(),
            dirty: Vec::new(),
            stale_other: Vec::new(),
            links_down,
            synced: false,
            in_kernel: 0,
            to_describe: Vec::new(),
        }
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn in_kernel(&self) -> usize {
        self.in_kernel
    }

    pub fn pending(&self) -> usize {
        self.dirty.len()
    }

    /// The prefixes to plan now; planning may make more dirty.
    pub fn take_dirty(&mut self) -> Vec<IpNet> {
        std::mem::take(&mut self.dirty)
    }

    /// The kernel hop sets of our routes there (Ours or Stale).
    pub fn kernel_sets(&self) -> impl Iterator<Item = HopSetId> + '_ {
        self.routes.values().filter_map(|r| kernel_set(r.kernel()))
    }

    /// Drop a route from the map, with its holds and its problem.
    fn remove_route(&mut self, prefix: &IpNet) {
        let Some(r) = self.routes.remove(prefix) else {
            return;
        };
        self.hopsets.release(r.want_raw());
        if let Some(h) = kernel_set(r.kernel()) {
            self.hopsets.release(h);
        }
        if r.has_problem {
            self.problems.remove(prefix);
        }
    }

    /// Our route `p` is no longer in the kernel: write it again if still
    /// wanted, else drop it from our map (`drop`, removed by the caller).
    fn gone_from_kernel(&mut self, p: IpNet, drop: &mut Vec<IpNet>) {
        let Some(r) = self.routes.get_mut(&p) else {
            return;
        };
        set_kernel(&mut self.in_kernel, &mut self.hopsets, r, Kernel::Absent);
        if r.want().is_some() {
            mark_dirty(&mut self.dirty, p, r);
        } else {
            drop.push(p);
        }
    }

    /// Wanted changes, coalesced per prefix (the last one wins).
    pub fn apply(&mut self, changes: Vec<FibChange>) {
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
                    mark_dirty(&mut self.dirty, prefix, r);
                }
                FibChange::Remove { prefix } => {
                    let prefix = prefix.trunc();
                    if let Some(r) = self.routes.get_mut(&prefix) {
                        set_want(&mut self.hopsets, r, None);
                        // An explicit withdraw of a stale route removes it now.
                        if let Kernel::Stale(k) = r.kernel() {
                            r.kernel = PackedKernel::new(Kernel::Ours(k));
                        }
                        mark_dirty(&mut self.dirty, prefix, r);
                    }
                }
            }
        }
    }

    /// Every peer sent End-of-RIB (or the stale timeout passed): stale
    /// routes not wanted again go. Returns our routes at another metric,
    /// to be deleted as they are (no per-prefix state). Idempotent.
    pub fn sync_done(&mut self) -> Vec<(IpNet, u32)> {
        if self.synced {
            return Vec::new();
        }
        self.synced = true;
        for (p, r) in self.routes.iter_mut() {
            if matches!(r.kernel(), Kernel::Stale(_)) {
                mark_dirty(&mut self.dirty, p, r);
            }
        }
        std::mem::take(&mut self.stale_other)
    }

    /// Try failed and blocked routes again.
    pub fn retry(&mut self) {
        for (p, r) in self.routes.iter_mut() {
            if r.want().is_some()
                && r.has_problem
                && matches!(
                    self.problems.get(&p),
                    Some(Problem::Failed(_) | Problem::Conflict(_))
                )
            {
                mark_dirty(&mut self.dirty, p, r);
            }
        }
    }

    /// Shutdown without keeping routes: nothing is wanted any more, and
    /// stale routes go too.
    pub fn withdraw_all(&mut self) {
        self.synced = true;
        for (p, r) in self.routes.iter_mut() {
            set_want(&mut self.hopsets, r, None);
            if r.kernel() != Kernel::Absent {
                mark_dirty(&mut self.dirty, p, r);
            }
        }
    }

    /// Decide what the kernel needs for one dirty prefix. The route's state
    /// is updated as if the kernel will accept the request (one map lookup
    /// per route on the hot path); `failed` rolls back the rare refusal.
    pub fn plan(&mut self, prefix: IpNet) -> Option<Planned> {
        let limit = self.max_routes;
        let r = self.routes.get_mut(&prefix)?;
        r.dirty = false;
        let hopsets = &mut self.hopsets;
        let problems = &mut self.problems;
        let in_kernel = &mut self.in_kernel;
        let prev = r.kernel();
        let planned = |op, hops| {
            Some(Planned {
                prefix,
                op,
                hops,
                prev,
            })
        };
        match (r.want(), r.kernel()) {
            (Some(h), Kernel::Absent) => {
                // Checked here only: an installed route was checked when
                // it went in, a replace below checks its new set.
                let problem = if let Err(e) = nl::check_route(&prefix, hopsets.get(h)) {
                    Problem::Failed(e.into())
                } else if all_hops_down(hopsets, &self.links_down, h) {
                    Problem::LinkDown
                } else if let Some(m) = limit.filter(|m| *in_kernel >= *m) {
                    Problem::Failed(Failure::MaxRoutes(m))
                } else {
                    set_kernel(in_kernel, hopsets, r, Kernel::Ours(h));
                    set_problem(problems, prefix, r, None);
                    return planned(RouteOp::Create, h);
                };
                set_problem(problems, prefix, r, Some(problem));
                None
            }
            (Some(h), Kernel::Ours(k) | Kernel::Stale(k)) => {
                if hopsets.same(h, k) {
                    // Adopted as the kernel has it: its interfaces (and
                    // nexthop objects) are what link events touch.
                    set_kernel(in_kernel, hopsets, r, Kernel::Ours(k));
                    set_problem(problems, prefix, r, None);
                    None
                } else if let Err(e) = nl::check_route(&prefix, hopsets.get(h)) {
                    set_problem(problems, prefix, r, Some(Problem::Failed(e.into())));
                    None
                } else {
                    set_kernel(in_kernel, hopsets, r, Kernel::Ours(h));
                    set_problem(problems, prefix, r, None);
                    planned(RouteOp::Replace, h)
                }
            }
            (None, Kernel::Stale(_)) if !self.synced => None,
            (None, Kernel::Ours(_) | Kernel::Stale(_)) => {
                *in_kernel = in_kernel.saturating_sub(1);
                self.remove_route(&prefix);
                planned(RouteOp::Delete, UNKNOWN)
            }
            (None, Kernel::Absent) => {
                self.remove_route(&prefix);
                None
            }
        }
    }

    /// The kernel refused `p` (or its nexthop object could not be made):
    /// undo the optimistic update of `plan`. True when the route's nexthop
    /// object should be made again before the next try (someone may have
    /// removed it).
    pub fn failed(&mut self, p: &Planned, why: Failure, errno: i32) -> bool {
        match p.op {
            RouteOp::Create | RouteOp::Replace => {
                let Some(r) = self.routes.get_mut(&p.prefix) else {
                    return false;
                };
                set_kernel(&mut self.in_kernel, &mut self.hopsets, r, p.prev);
                if p.op == RouteOp::Create && errno == libc::EEXIST {
                    let c = Problem::Conflict("unknown route".into());
                    set_problem(&mut self.problems, p.prefix, r, Some(c));
                    self.to_describe.push(p.prefix);
                    false
                } else {
                    tracing::debug!(prefix = %p.prefix, error = %why, "route failed");
                    set_problem(&mut self.problems, p.prefix, r, Some(Problem::Failed(why)));
                    true
                }
            }
            // Already gone is as good as deleted.
            RouteOp::Delete if errno == libc::ESRCH => false,
            RouteOp::Delete => {
                let r = self.routes.get_or_insert(p.prefix, Route::NEW);
                set_kernel(&mut self.in_kernel, &mut self.hopsets, r, p.prev);
                set_problem(&mut self.problems, p.prefix, r, Some(Problem::Failed(why)));
                false
            }
        }
    }

    /// Free the hop sets no route uses any more. Call when no request is
    /// in flight (a refusal could restore a route to a released set).
    pub fn sweep(&mut self) -> Freed {
        self.hopsets.sweep()
    }

    /// Give memory back after a mass withdrawal.
    pub fn shrink(&mut self) {
        self.routes.shrink_if_sparse();
        if self.problems.capacity() > 4096 && self.problems.len() * 4 < self.problems.capacity() {
            self.problems.shrink_to_fit();
        }
    }
}
