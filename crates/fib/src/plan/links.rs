//! Following links, nexthop objects and the source address: the kernel
//! drops routes on its own when they go, and sends no per-route notice.

use ipnet::IpNet;
use tracing::info;

use super::{mark_dirty, set_kernel, set_problem, Kernel, Planner, Problem};
use crate::hopsets::HopSetId;

/// A link changed state (the executor then updates nexthop objects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkChange {
    Down,
    Up,
}

impl Planner {
    /// A link's state from an event or dump. Returns what changed, if
    /// anything: a link going down took every route whose next hops are
    /// all down with it (they wait for a link to return); one coming back
    /// makes its waiting routes dirty.
    pub fn link_state(&mut self, ix: u32, up: bool) -> Option<LinkChange> {
        let was_down = self.links_down.contains(&ix);
        if !up && !was_down {
            self.links_down.insert(ix);
            info!(
                ifindex = ix,
                "link down; its routes are gone from the kernel"
            );
            self.link_down(ix);
            Some(LinkChange::Down)
        } else if up && was_down {
            self.links_down.remove(&ix);
            info!(ifindex = ix, "link up; reinstalling its routes");
            // Only live sets are looked at (freed ones read as empty).
            let uses: Vec<bool> = (0..self.hopsets.slots() as HopSetId)
                .map(|h| self.hopsets.uses_link(h, ix))
                .collect();
            for (p, r) in self.routes.iter_mut() {
                if let Some(h) = r.want() {
                    if r.has_problem && uses.get(h as usize).copied().unwrap_or(false) {
                        mark_dirty(&mut self.dirty, p, r);
                    }
                }
            }
            Some(LinkChange::Up)
        } else {
            None
        }
    }

    /// The kernel flushed the routes on link `ix` whose every next hop is
    /// now down.
    fn link_down(&mut self, ix: u32) {
        let gone: Vec<bool> = (0..self.hopsets.slots() as HopSetId)
            .map(|h| {
                self.hopsets.uses_link(h, ix)
                    && super::all_hops_down(&self.hopsets, &self.links_down, h)
            })
            .collect();
        let is_gone = |h: HopSetId| gone.get(h as usize).copied().unwrap_or(false);
        let mut drop = Vec::new();
        for (p, r) in self.routes.iter_mut() {
            match r.kernel() {
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
    }

    /// Links a full dump no longer lists that we hold as down (they are
    /// down for good; the caller reports them down again).
    pub fn vanished_links(&self, present: &[u32]) -> Vec<u32> {
        self.links_down
            .iter()
            .copied()
            .filter(|ix| !present.contains(ix))
            .collect()
    }

    /// Our nexthop object (or group) for `hops` was deleted, and with it
    /// every route using it: those are written again if still wanted.
    pub fn set_gone(&mut self, hops: &[crate::Gateway]) {
        let Some(set) = self.hopsets.id_of(hops) else {
            return;
        };
        let gone: Vec<IpNet> = self
            .routes
            .iter_mut()
            .filter(|(_, r)| matches!(r.kernel(), Kernel::Ours(h) | Kernel::Stale(h) if h == set))
            .map(|(p, _)| p)
            .collect();
        let mut drop = Vec::new();
        for p in gone {
            self.gone_from_kernel(p, &mut drop);
        }
        for p in drop {
            self.remove_route(&p);
        }
    }

    /// The kernel flushed our IPv4 routes when their preferred source
    /// address went (the executor puts it back): write them again, and
    /// retry the ones refused while it was missing.
    pub fn source_lost(&mut self) {
        let mut gone = Vec::new();
        for (p, r) in self.routes.iter_mut() {
            if !matches!(p, IpNet::V4(_)) {
                continue;
            }
            if r.kernel() == Kernel::Absent {
                if r.want().is_some() && r.has_problem {
                    mark_dirty(&mut self.dirty, p, r);
                }
                continue;
            }
            gone.push(p);
        }
        let mut drop = Vec::new();
        for p in gone {
            self.gone_from_kernel(p, &mut drop);
        }
        for p in drop {
            self.remove_route(&p);
        }
    }
}
