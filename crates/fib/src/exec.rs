//! The executor's write path: the planner's operations packed into
//! batches, the nexthop objects they need, ACKs and errors per route.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::hopsets::UNKNOWN;
use crate::nl::{self, KernelRoute, MsgBuf, RouteOp, RouteParams};
use crate::owner::{Owner, AUDIT_AFTER_BULK, BULK, ROUTE_GROUPS};
use crate::plan::{Failure, Kernel, PackedKernel, Planned};
use crate::sender::{send_and_collect, Done, Job};

/// A create or delete of one flush waiting for its turn in the spread
/// order. Its prefix stays in the flush's dirty list, found by index: 16
/// bytes a request instead of the 32 of a [`Planned`], which for a full
/// table loaded or withdrawn in one flush is 15 MB instead of 30 MB.
#[derive(Clone, Copy)]
pub(crate) struct Reshape {
    /// Index in the flush's dirty list.
    at: u32,
    hops: crate::hopsets::HopSetId,
    prev: PackedKernel,
    op: RouteOp,
}

impl Reshape {
    fn new(at: usize, p: &Planned) -> Reshape {
        Reshape {
            at: at as u32,
            hops: p.hops,
            prev: PackedKernel::new(p.prev),
            op: p.op,
        }
    }

    fn planned(self, prefix: IpNet) -> Planned {
        Planned {
            prefix,
            op: self.op,
            hops: self.hops,
            prev: self.prev.get(),
        }
    }
}

/// A request in a batch, to match the kernel's answer to.
pub(crate) struct InFlight {
    pub planned: Planned,
    /// The nexthop object the route was sent with.
    pub nh_id: Option<u32>,
    /// A delete of our route at another metric: no route entry to update.
    pub other_metric: bool,
}

/// A permutation of 0..n that sends neighbours far apart: i*step mod n
/// with step near n/phi. (Interleaving a few sequential runs instead is
/// kinder to our cache but costs the kernel 30-40% more.)
pub(crate) fn spread_order(n: usize) -> impl Fn(usize) -> usize {
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

impl Owner {
    /// Write every dirty prefix to the kernel in packed batches.
    pub(crate) fn flush(&mut self) {
        let bulk = self.plan.pending() >= BULK;
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
        let freed = self.plan.sweep();
        if self.nh.enabled && self.plan.synced() && !freed.sets.is_empty() {
            self.nh.remove_freed(&mut self.sock, &freed);
        }
    }

    fn listen_routes(&mut self, on: bool) {
        if self.route_mon_on == on {
            return;
        }
        for g in ROUTE_GROUPS {
            if let Err(e) = self.route_groups.set(g, on) {
                warn!(error = %e, "cannot change route event membership");
            }
        }
        self.route_mon_on = on;
    }

    fn flush_inner(&mut self) {
        let mut written = 0usize;
        for _round in 0..3 {
            if self.plan.pending() == 0 && self.batch.count() == 0 {
                break;
            }
            let dirty = self.plan.take_dirty();
            written += dirty.len();
            // Replaces go out in the order given (for a sorted feed the
            // kernel walks its trie cache-hot); creates and deletes change
            // the trie's shape and go out spread over the prefix space,
            // which needs far less trie rebalancing (and so fewer RCU
            // grace periods) than long runs of adjacent prefixes: sorted
            // deletes cost the kernel over twice as much.
            let mut reshape = std::mem::take(&mut self.reshape);
            for (at, &prefix) in dirty.iter().enumerate() {
                let Some(p) = self.plan.plan(prefix) else {
                    continue;
                };
                if p.op == RouteOp::Replace {
                    self.emit(p);
                } else {
                    reshape.push(Reshape::new(at, &p));
                }
            }
            let n = reshape.len();
            let order = spread_order(n);
            for i in 0..n {
                if let Some(r) = reshape.get(order(i)) {
                    if let Some(&prefix) = dirty.get(r.at as usize) {
                        self.emit(r.planned(prefix));
                    }
                }
            }
            drop(dirty);
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
            crate::sys::trim_heap();
        }
        self.plan.shrink();
    }

    /// Pack one planned request into the batch (sending it when full).
    fn emit(&mut self, p: Planned) {
        let mut nh_id = None;
        let hops = self.plan.hopsets.get(p.hops);
        // The kernel wants an interface on every gateway nexthop object; a
        // hop without one keeps the route inline (resolved by lookup).
        if p.op != RouteOp::Delete && self.nh.enabled && hops.iter().all(|x| x.ifindex().is_some())
        {
            let proto = self.cfg.protocol;
            let made = match hops {
                [hop] => self.nh.ensure(&mut self.sock, proto, *hop),
                _ => {
                    let down = &self.plan.links_down;
                    self.nh.ensure_group(&mut self.sock, proto, hops, down)
                }
            };
            match made {
                Ok(id) => nh_id = Some(id),
                Err(e) => {
                    self.plan.failed(&p, Failure::Nexthop(e), 0);
                    return;
                }
            }
        }
        let seq = self.sock.next_seq(1);
        self.start_batch_if_empty(seq);
        let hops = self.plan.hopsets.get(p.hops);
        let params = &self.plan.params;
        nl::put_route(&mut self.batch, p.op, seq, params, &p.prefix, hops, nh_id);
        self.inflight.push(InFlight {
            planned: p,
            nh_id,
            other_metric: false,
        });
        if self.batch.len() >= self.cfg.batch_bytes {
            self.send_batch();
        }
    }

    /// Delete our routes at another metric (found at start; the metric
    /// setting changed). No per-prefix state: a failure is only logged.
    pub(crate) fn delete_other_metric(&mut self, other: Vec<(IpNet, u32)>) {
        for (prefix, metric) in other {
            let p = RouteParams {
                metric,
                ..self.plan.params
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
                planned: Planned {
                    prefix,
                    op: RouteOp::Delete,
                    hops: UNKNOWN,
                    prev: Kernel::Absent,
                },
                nh_id: None,
                other_metric: true,
            });
            if self.batch.len() >= self.cfg.batch_bytes {
                self.send_batch();
            }
        }
    }

    fn start_batch_if_empty(&mut self, seq: u32) {
        if self.batch.count() == 0 {
            self.sock.ensure_seq_room(1 << 20);
            self.base_seq = seq;
            self.inflight.clear();
        }
    }

    /// Hand the packed batch to the sender thread; while it is in the
    /// kernel the next one is packed.
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
        if let Some(e) = done.fatal.take() {
            warn!(error = %e, routes = meta.len(), "netlink batch failed");
            let e = Arc::new(e);
            for f in &meta {
                self.refused(f, Failure::Batch(e.clone()), 0);
            }
        } else {
            for (i, r) in std::mem::take(&mut done.errors) {
                if let Some(f) = meta.get(i) {
                    let errno = r.errno;
                    self.refused(f, Failure::Kernel(r), errno);
                }
            }
        }
        done.buf.clear();
        meta.clear();
        if self.spare.len() < 4 {
            self.spare.push((done.buf, meta));
        }
    }

    /// The kernel refused a request: the planner undoes its update.
    fn refused(&mut self, f: &InFlight, why: Failure, errno: i32) {
        if f.other_metric {
            warn!(prefix = %f.planned.prefix, error = %why, "cannot remove our route at an old metric");
            return;
        }
        let remake = self.plan.failed(&f.planned, why, errno);
        // Make the nexthop object again before the next try, in case
        // someone removed it.
        if let (true, Some(id)) = (remake, f.nh_id) {
            self.nh.forget(id);
        }
    }

    /// Look up what blocks routes that got EEXIST, for the planner.
    fn describe_conflicts(&mut self) {
        let wanted = self.plan.take_to_describe();
        if wanted.is_empty() {
            return;
        }
        let mut found: HashMap<IpNet, Vec<KernelRoute>> = HashMap::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let req = nl::route_dump_request(family, self.cfg.table, 0);
            let res = self.sock.dump(req, |m| {
                if m.ty == nl::RTM_NEWROUTE {
                    if let Some(r) = nl::parse_route_raw(m.payload) {
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
        debug!(n = wanted.len(), "looked up conflicting routes");
        self.plan.conflicts_found(wanted, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A create or delete waiting in a flush is small.
    #[test]
    fn a_waiting_request_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Reshape>(), 16);
    }

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
}
