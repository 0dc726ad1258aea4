//! Interned next-hop sets, counted by the routes that use them.
//!
//! A route refers to a set by a 4-byte id (a full table has a handful of
//! distinct sets). Every route holds one reference for the set it wants
//! and one for the set the kernel has; a set nobody holds is freed by
//! [`HopSets::sweep`] and its id reused, so a daemon with churn in next
//! hops does not grow this state (nor its nexthop objects) for ever.

use std::collections::HashMap;
use std::sync::Arc;

use crate::routes::FastHash;
use crate::{Gateway, NextHopSet};

pub(crate) type HopSetId = u32;
/// A hop set we cannot compare (foreign shape); forces a replace.
pub(crate) const UNKNOWN: HopSetId = u32::MAX;
/// Ids from here up are markers, not sets (never counted).
const FIRST_MARKER: HopSetId = u32::MAX - 1;

struct Slot {
    hops: Vec<Gateway>,
    refs: u32,
}

/// What [`HopSets::sweep`] freed: sets (sorted hops) and the single hops
/// no live set contains any more (their nexthop objects can go).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Freed {
    pub sets: Vec<Vec<Gateway>>,
    pub hops: Vec<Gateway>,
}

#[derive(Default)]
pub(crate) struct HopSets {
    slots: Vec<Option<Slot>>,
    ids: HashMap<Vec<Gateway>, HopSetId, FastHash>,
    /// Ids of freed slots, reused first.
    free_ids: Vec<HopSetId>,
    /// Sets whose count reached zero since the last sweep. Not freed at
    /// once: a refused request may still restore a route to one.
    unused: Vec<HopSetId>,
    /// Live sets containing each hop.
    hop_users: HashMap<Gateway, u32, FastHash>,
    live: usize,
    /// The last set asked for, as given: full tables repeat it (mostly as
    /// the very same allocation).
    last: Option<(NextHopSet, HopSetId)>,
}

impl HopSets {
    /// The id of `hops` (order and duplicates do not matter). A new set
    /// starts unheld: it is freed by the next sweep unless held.
    pub fn intern(&mut self, hops: NextHopSet) -> HopSetId {
        if let Some((l, id)) = &self.last {
            if Arc::ptr_eq(l, &hops) || **l == *hops {
                return *id;
            }
        }
        let id = self.intern_slow(hops.to_vec());
        self.last = Some((hops, id));
        id
    }

    fn intern_slow(&mut self, mut hops: Vec<Gateway>) -> HopSetId {
        hops.sort();
        hops.dedup();
        if let Some(id) = self.ids.get(&hops) {
            return *id;
        }
        for h in &hops {
            *self.hop_users.entry(*h).or_default() += 1;
        }
        let slot = Slot {
            hops: hops.clone(),
            refs: 0,
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    *s = Some(slot);
                }
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as HopSetId
            }
        };
        self.ids.insert(hops, id);
        self.unused.push(id);
        self.live += 1;
        id
    }

    /// One more route uses set `id` (markers are not counted).
    pub fn hold(&mut self, id: HopSetId) {
        if let Some(Some(s)) = self.slots.get_mut(id as usize) {
            s.refs += 1;
        }
    }

    /// One route less uses set `id`.
    pub fn release(&mut self, id: HopSetId) {
        if id >= FIRST_MARKER {
            return;
        }
        if let Some(Some(s)) = self.slots.get_mut(id as usize) {
            s.refs = s.refs.saturating_sub(1);
            if s.refs == 0 {
                self.unused.push(id);
            }
        }
    }

    /// Free every set that stayed unused since it was released. Call only
    /// when no request that could roll a route back to a set is pending.
    pub fn sweep(&mut self) -> Freed {
        let mut freed = Freed::default();
        for id in std::mem::take(&mut self.unused) {
            let Some(slot) = self.slots.get_mut(id as usize) else {
                continue;
            };
            if slot.as_ref().is_none_or(|s| s.refs > 0) {
                continue;
            }
            let Some(s) = slot.take() else {
                continue;
            };
            self.ids.remove(&s.hops);
            self.free_ids.push(id);
            self.live -= 1;
            if self.last.as_ref().is_some_and(|(_, l)| *l == id) {
                self.last = None;
            }
            for h in &s.hops {
                if let Some(n) = self.hop_users.get_mut(h) {
                    *n -= 1;
                    if *n == 0 {
                        self.hop_users.remove(h);
                        freed.hops.push(*h);
                    }
                }
            }
            freed.sets.push(s.hops);
        }
        // Trailing free slots can go; the rest wait for reuse.
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let len = self.slots.len() as HopSetId;
        self.free_ids.retain(|id| *id < len);
        freed
    }

    /// Sets currently interned (held, or new since the last sweep).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Ids of live sets, for per-set tables (`slots()` long).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, id: HopSetId) -> &[Gateway] {
        match self.slots.get(id as usize) {
            Some(Some(s)) => &s.hops,
            _ => &[],
        }
    }

    /// The id of a set given sorted and deduplicated, if live.
    pub fn id_of(&self, hops: &[Gateway]) -> Option<HopSetId> {
        self.ids.get(hops).copied()
    }

    /// A hop of set `id` is on link `ifindex`.
    pub fn uses_link(&self, id: HopSetId, ifindex: u32) -> bool {
        self.get(id).iter().any(|x| x.ifindex() == Some(ifindex))
    }

    /// Wanted hops equal kernel hops; a wanted hop without interface
    /// matches whatever interface the kernel resolved.
    pub fn same(&self, want: HopSetId, kernel: HopSetId) -> bool {
        if want == kernel {
            return want != UNKNOWN;
        }
        if want == UNKNOWN || kernel == UNKNOWN {
            return false;
        }
        let (w, k) = (self.get(want), self.get(kernel));
        w.len() == k.len()
            && w.iter().all(|a| {
                k.iter().any(|b| {
                    a.ip() == b.ip() && (a.ifindex().is_none() || a.ifindex() == b.ifindex())
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(g: &str, ix: Option<u32>) -> Gateway {
        Gateway::new(g.parse().unwrap(), ix).unwrap()
    }

    /// A wanted hop without interface matches the kernel's resolved one;
    /// a different gateway never matches.
    #[test]
    fn hop_sets_compare() {
        let mut hs = HopSets::default();
        let want = hs.intern(vec![gw("2001:db8::1", None)].into());
        let kernel = hs.intern(vec![gw("2001:db8::1", Some(3))].into());
        let other = hs.intern(vec![gw("2001:db8::2", Some(3))].into());
        assert!(hs.same(want, kernel));
        assert!(!hs.same(want, other));
        assert!(!hs.same(UNKNOWN, UNKNOWN));
        let a = hs.intern(vec![gw("fe80::1", Some(1)), gw("fe80::2", Some(2))].into());
        let b = hs.intern(vec![gw("fe80::2", Some(2)), gw("fe80::1", Some(1))].into());
        assert_eq!(a, b, "order of hops does not matter");
    }

    /// A held set survives a sweep; released, it is freed, its id reused,
    /// and hops no other set contains are reported for their objects.
    #[test]
    fn unused_sets_are_freed_and_ids_reused() {
        let mut hs = HopSets::default();
        let (h1, h2) = (gw("fe80::1", Some(2)), gw("fe80::2", Some(2)));
        let single = hs.intern(vec![h1].into());
        let group = hs.intern(vec![h1, h2].into());
        hs.hold(single);
        hs.hold(group);
        hs.hold(group);
        assert_eq!(hs.sweep(), Freed::default());
        assert_eq!(hs.live(), 2);
        hs.release(group);
        assert_eq!(hs.sweep(), Freed::default(), "still held once");
        hs.release(group);
        let freed = hs.sweep();
        assert_eq!(freed.sets, vec![vec![h1, h2]]);
        assert_eq!(freed.hops, vec![h2], "h1 is still in the single set");
        assert_eq!((hs.live(), hs.get(group)), (1, &[][..]));
        // Released then held again before the sweep: kept.
        hs.release(single);
        hs.hold(single);
        assert_eq!(hs.sweep(), Freed::default());
        hs.release(single);
        assert_eq!(hs.sweep().hops, vec![h1]);
        assert_eq!((hs.live(), hs.slots()), (0, 0));
        // Never held: gone at the next sweep; the cache does not return it.
        let x = hs.intern(vec![h2].into());
        assert_eq!(hs.sweep().sets.len(), 1);
        let y = hs.intern(vec![h2].into());
        assert_eq!(hs.get(y), &[h2][..]);
        assert_eq!(x, y, "the id is reused");
        assert_eq!(hs.live(), 1);
    }

    /// Markers (no set, unknown set) are never counted nor freed.
    #[test]
    fn markers_are_not_counted() {
        let mut hs = HopSets::default();
        hs.hold(UNKNOWN);
        hs.release(UNKNOWN);
        hs.release(FIRST_MARKER);
        assert_eq!((hs.live(), hs.sweep()), (0, Freed::default()));
    }
}
