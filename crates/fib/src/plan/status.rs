//! The snapshot for `via6ctl fib`.

use super::{Kernel, Planner, Problem};
use crate::{FailedRoute, FibStatus, ForeignConflict, STATUS_LIST_MAX};

impl Planner {
    /// Counts and the (capped, sorted) per-route lists. The executor adds
    /// what only it knows: the source address and the nexthop objects.
    pub fn status(&self) -> FibStatus {
        let mut s = FibStatus {
            pending: self.dirty.len(),
            initial_sync_done: self.synced,
            hop_sets: self.hopsets.live(),
            ..FibStatus::default()
        };
        for r in self.routes.values() {
            match r.kernel() {
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
                        error: e.to_string(),
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
}
