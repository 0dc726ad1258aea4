//! Reconcile with what the kernel has: routes of our protocol found at
//! start or by an audit, route events, and what blocks a refused create.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;
use tracing::{debug, info, warn};

use super::{mark_dirty, set_kernel, set_problem, Kernel, PackedKernel, Planner, Problem, Route};
use crate::hopsets::{HopSetId, UNKNOWN};
use crate::nl::{self, KernelRoute};
use crate::routes::FastHash;
use crate::Gateway;

/// The hops of one of our current nexthop objects or groups, by id
/// (the executor knows them).
pub(crate) trait NhLookup {
    fn hops_of(&self, id: u32) -> Option<Vec<Gateway>>;
}

impl<F: Fn(u32) -> Option<Vec<Gateway>>> NhLookup for F {
    fn hops_of(&self, id: u32) -> Option<Vec<Gateway>> {
        self(id)
    }
}

/// How `ip route` would say what a kernel route is, for conflict reports.
pub(crate) fn describe(r: &KernelRoute) -> String {
    let mut s = format!("proto {} metric {}", r.protocol, r.metric);
    if r.rtype != nl::RTN_UNICAST {
        s.push_str(&format!(" type {}", r.rtype));
    }
    if let Some(id) = r.nh_id {
        s.push_str(&format!(" nhid {id}"));
    }
    for h in &r.hops {
        // `ADDRESS dev N`, as `ip route` writes a gateway.
        s.push_str(&format!(" via {h}"));
    }
    s
}

impl Planner {
    /// A route of ours: our protocol and table, at our metric.
    fn is_ours(&self, r: &KernelRoute) -> bool {
        r.protocol == self.params.protocol
            && r.table == self.params.table
            && r.metric == self.params.metric_for(&r.prefix)
    }

    /// Routes of our protocol in our table found at start (one family's
    /// dump): stale candidates, adopted without a kernel write when wanted
    /// again with the same hops.
    pub fn load_stale(&mut self, found: Vec<KernelRoute>, nh: &impl NhLookup) {
        let before = (self.in_kernel, self.stale_other.len());
        for r in found {
            // Strict checking filters, but be sure: only ours counts.
            if r.protocol != self.params.protocol || r.table != self.params.table {
                continue;
            }
            if r.metric != self.params.metric_for(&r.prefix) {
                self.stale_other.push((r.prefix, r.metric));
                continue;
            }
            let prefix = r.prefix;
            let hops = self.kernel_hopset(r, nh);
            self.hopsets.hold(hops);
            let route = Route {
                kernel: PackedKernel::new(Kernel::Stale(hops)),
                ..Route::NEW
            };
            match self.routes.insert(prefix, route) {
                None => self.in_kernel += 1,
                Some(old) => {
                    self.hopsets.release(old.want_raw());
                    if let Some(h) = super::kernel_set(old.kernel()) {
                        self.hopsets.release(h);
                    }
                }
            }
        }
        info!(
            stale = self.in_kernel - before.0,
            other_metric = self.stale_other.len() - before.1,
            "found routes of our protocol at start"
        );
    }

    /// The hop set of a route of our protocol found in the kernel, or
    /// UNKNOWN when it must be rewritten whatever we want (other prefsrc,
    /// not unicast, through a nexthop object that is not ours).
    fn kernel_hopset(&mut self, r: KernelRoute, nh: &impl NhLookup) -> HopSetId {
        let prefsrc_ok = match r.prefix {
            IpNet::V4(_) => r.prefsrc == self.params.prefsrc.map(Into::into),
            IpNet::V6(_) => true,
        };
        // A route through one of our nexthop objects is adopted as that
        // object's hops; one through anybody else's is replaced.
        match r.nh_id {
            _ if r.rtype != nl::RTN_UNICAST || !prefsrc_ok => UNKNOWN,
            None => self.hopsets.intern(r.hops.into()),
            Some(id) => match nh.hops_of(id) {
                Some(hops) => self.hopsets.intern(hops.into()),
                None => UNKNOWN,
            },
        }
    }

    /// Compare the kernel's routes of our protocol (a full dump of both
    /// families) with what we believe is there, and repair: a route of
    /// ours deleted by someone else is reinstalled if wanted, and one of
    /// our protocol we did not know of is handled like one found at start
    /// (adopted, or removed once synced).
    pub fn audit(&mut self, found: Vec<KernelRoute>, nh: &impl NhLookup) {
        let mut seen: HashSet<IpNet, FastHash> =
            HashSet::with_capacity_and_hasher(found.len(), FastHash::default());
        let (mut unknown, mut missing) = (0usize, 0usize);
        for r in found {
            if !self.is_ours(&r) {
                continue;
            }
            let prefix = r.prefix;
            seen.insert(prefix);
            if self
                .routes
                .get(&prefix)
                .is_some_and(|x| x.kernel() != Kernel::Absent)
            {
                continue;
            }
            unknown += 1;
            let h = self.kernel_hopset(r, nh);
            let route = self.routes.get_or_insert(prefix, Route::NEW);
            set_kernel(
                &mut self.in_kernel,
                &mut self.hopsets,
                route,
                Kernel::Stale(h),
            );
            set_problem(&mut self.problems, prefix, route, None);
            mark_dirty(&mut self.dirty, prefix, route);
        }
        let gone: Vec<IpNet> = self
            .routes
            .iter_mut()
            .filter(|(p, r)| r.kernel() != Kernel::Absent && !seen.contains(p))
            .map(|(p, _)| p)
            .collect();
        missing += gone.len();
        let mut drop = Vec::new();
        for p in gone {
            self.gone_from_kernel(p, &mut drop);
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

    /// A route event from the kernel (`new`: RTM_NEWROUTE). A route of
    /// another protocol at our key means someone replaced ours: it is
    /// theirs now, and reported as a conflict (never overwritten). A
    /// route of ours deleted by someone else is reinstalled if still
    /// wanted.
    pub fn route_event(&mut self, new: bool, k: &KernelRoute) {
        if k.table != self.params.table || k.metric != self.params.metric_for(&k.prefix) {
            return;
        }
        let prefix = k.prefix;
        let foreign_new = new && k.protocol != self.params.protocol;
        let ours_gone = !new && k.protocol == self.params.protocol;
        if !foreign_new && !ours_gone {
            return;
        }
        let Some(r) = self.routes.get_mut(&prefix) else {
            return;
        };
        if r.kernel() == Kernel::Absent {
            return;
        }
        set_kernel(&mut self.in_kernel, &mut self.hopsets, r, Kernel::Absent);
        if r.want().is_none() {
            self.remove_route(&prefix);
            return;
        }
        if foreign_new {
            let text = describe(k);
            warn!(%prefix, existing = %text, "a foreign route replaced ours; leaving it alone");
            set_problem(&mut self.problems, prefix, r, Some(Problem::Conflict(text)));
        } else {
            debug!(%prefix, "our route was deleted; reinstalling");
            mark_dirty(&mut self.dirty, prefix, r);
        }
    }

    /// Prefixes whose create was refused with EEXIST since the last call:
    /// the executor dumps what is there for [`Planner::conflicts_found`].
    pub fn take_to_describe(&mut self) -> HashSet<IpNet> {
        self.to_describe.drain(..).collect()
    }

    /// What blocks routes that got EEXIST (every kernel route at each
    /// prefix in our table). A route of our own protocol and metric
    /// (installed behind our back, e.g. by another instance before our
    /// start dump) is adopted and replaced; anything else is a foreign
    /// conflict and is left alone.
    pub fn conflicts_found(
        &mut self,
        wanted: HashSet<IpNet>,
        mut found: HashMap<IpNet, Vec<KernelRoute>>,
    ) {
        for prefix in wanted {
            let list = found.remove(&prefix).unwrap_or_default();
            let metric = self.params.metric_for(&prefix);
            let ours = list
                .iter()
                .any(|k| k.protocol == self.params.protocol && k.metric == metric);
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
                mark_dirty(&mut self.dirty, prefix, r);
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
}
