//! The FIB side of the RIB: next-hop sets interned once, and the queue of
//! changes not yet handed to the FIB sync, coalesced per prefix.
//!
//! A full table has a handful of distinct next-hop sets, so a change
//! carries a shared [`NextHopSet`] (no heap per route), and the queue is
//! handed out in bounded chunks that each own exactly their memory.

use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use ipnet::IpNet;

use crate::events::{Gateway, NextHopSet, RouteChange};

/// Interned next-hop sets. A set stays while a change or the FIB sync
/// still holds it; unused ones are dropped as the store grows.
#[derive(Default)]
pub(crate) struct HopSets {
    sets: HashSet<NextHopSet>,
    /// The last set asked for: full tables repeat it route after route.
    last: Option<NextHopSet>,
    /// Size after the last clean-up; the next one runs at twice that.
    prune_at: usize,
}

/// Below this many sets the store is never cleaned.
const PRUNE_MIN: usize = 1024;

impl HopSets {
    /// The shared set equal to `hops` (sorted, no duplicates).
    pub(crate) fn intern(&mut self, hops: &[Gateway]) -> NextHopSet {
        if let Some(l) = &self.last {
            if **l == *hops {
                return l.clone();
            }
        }
        let set = match self.sets.get(hops) {
            Some(s) => s.clone(),
            None => {
                if self.sets.len() >= self.prune_at.max(PRUNE_MIN) {
                    self.sets.retain(|s| Arc::strong_count(s) > 1);
                    self.prune_at = self.sets.len() * 2;
                }
                let s: NextHopSet = Arc::from(hops);
                self.sets.insert(s.clone());
                s
            }
        };
        self.last = Some(set.clone());
        set
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sets.len()
    }
}

/// Changes waiting for the FIB sync, at most one per prefix, oldest first.
#[derive(Default)]
pub(crate) struct FibQueue {
    changes: Vec<RouteChange>,
    /// Position in `changes` by prefix key, for coalescing.
    index: HashMap<(u128, u16), u32>,
}

/// A prefix as one hashable key; the length says the family (IPv4
/// 0..=32, IPv6 256..=384).
fn key(prefix: IpNet) -> (u128, u16) {
    match prefix {
        IpNet::V4(p) => (u128::from(u32::from(p.addr())), u16::from(p.prefix_len())),
        IpNet::V6(p) => (u128::from(p.addr()), 256 + u16::from(p.prefix_len())),
    }
}

impl FibQueue {
    pub(crate) fn push(&mut self, change: RouteChange) {
        let prefix = match &change {
            RouteChange::Install { prefix, .. } | RouteChange::Remove { prefix } => *prefix,
        };
        let pos = self.changes.len() as u32;
        match self.index.entry(key(prefix)) {
            hashbrown::hash_map::Entry::Occupied(o) => {
                if let Some(slot) = self.changes.get_mut(*o.get() as usize) {
                    *slot = change;
                }
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(pos);
                self.changes.push(change);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.changes.len()
    }

    /// Everything waiting, oldest first.
    pub(crate) fn take_all(&mut self) -> Vec<RouteChange> {
        self.index.clear();
        std::mem::take(&mut self.changes)
    }

    /// Everything waiting, in chunks of at most `max` changes (oldest
    /// first), each with a capacity of its own length: a chunk never keeps
    /// the memory of the ones after it alive.
    pub(crate) fn take_chunks(&mut self, max: usize, out: &mut impl Extend<Vec<RouteChange>>) {
        let max = max.max(1);
        let all = self.take_all();
        if all.len() <= max {
            if !all.is_empty() {
                out.extend(std::iter::once(all));
            }
            return;
        }
        let mut it = all.into_iter();
        loop {
            let chunk: Vec<RouteChange> = it.by_ref().take(max).collect();
            if chunk.is_empty() {
                break;
            }
            out.extend(std::iter::once(chunk));
        }
    }

    /// Drops the big buffers once the queue is empty again (a peer's
    /// routes removed at once must not keep their queue's size forever).
    pub(crate) fn shrink(&mut self, keep: usize) {
        if self.changes.is_empty() && self.changes.capacity() > keep {
            self.changes = Vec::new();
            self.index = HashMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(i: u8) -> Gateway {
        let a = std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i.into());
        Gateway::on_link(a.into(), 7)
    }

    fn install(p: &str, hops: NextHopSet) -> RouteChange {
        RouteChange::Install {
            prefix: p.parse().unwrap(),
            next_hops: hops,
        }
    }

    #[test]
    fn equal_sets_share_one_allocation_and_unused_ones_go() {
        let mut h = HopSets::default();
        let a = h.intern(&[hop(1)]);
        let b = h.intern(&[hop(2)]);
        let a2 = h.intern(&[hop(1)]);
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        drop((a, a2, b));
        for i in 0..=PRUNE_MIN {
            h.intern(&[
                hop(1),
                Gateway::new(std::net::Ipv4Addr::from(i as u32).into(), None).unwrap(),
            ]);
        }
        // The clean-up ran once the store reached PRUNE_MIN: only the set
        // held as `last` survived it.
        assert!(h.len() < PRUNE_MIN, "{}", h.len());
    }

    #[test]
    fn chunks_coalesce_keep_order_and_own_their_memory() {
        let mut q = FibQueue::default();
        let mut h = HopSets::default();
        let s = h.intern(&[hop(1)]);
        for i in 0..10u32 {
            q.push(install(&format!("10.0.{i}.0/24"), s.clone()));
        }
        // A later change of a prefix replaces its earlier one in place.
        q.push(RouteChange::Remove {
            prefix: "10.0.3.0/24".parse().unwrap(),
        });
        assert_eq!(q.len(), 10);
        let mut out: Vec<Vec<RouteChange>> = Vec::new();
        q.take_chunks(4, &mut out);
        assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert!(out.iter().all(|c| c.capacity() == c.len()));
        assert!(matches!(out[0][3], RouteChange::Remove { .. }));
        assert_eq!(q.len(), 0);
        // After taking, the same prefix queues again as a new change.
        q.push(install("10.0.3.0/24", s));
        assert_eq!(q.len(), 1);
    }
}
