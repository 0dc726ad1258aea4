//! Routes announced at run time (`via6ctl announce`): originated like the
//! configuration's `originate:` prefixes (next-hop-self per peer, never
//! installed in the kernel, our route wins over a learned one), kept in
//! the RIB and not in the configuration, so a reload leaves them alone.
//!
//! A prefix both in `originate:` and announced at run time is originated
//! once; while the run-time announcement exists its communities are the
//! ones sent. Withdrawing it at run time leaves the configuration's
//! origination in force (sent again without those communities); removing
//! it from the configuration leaves the run-time one.

use ipnet::IpNet;

use super::decision::FibView;
use super::Rib;
use crate::events::{RouteChange, RouteEventKind, RouteOrigin, WatchEvent};

/// Why a run-time announcement or withdrawal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0} was not announced at run time (prefixes of the configuration's originate: go by editing it and reloading)")]
    NotAnnounced(IpNet),
}

/// What [`Rib::announce_runtime`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced {
    /// A new run-time route.
    New,
    /// The prefix was announced at run time already: its communities were
    /// replaced.
    Replaced,
}

impl Rib {
    /// Originates `prefix` (host bits cleared) with `communities`
    /// (RFC 1997 values) until [`Rib::withdraw_runtime`].
    pub fn announce_runtime(&mut self, prefix: IpNet, communities: &[u32]) -> Announced {
        let prefix = prefix.trunc();
        let was_originated = self.is_originated(prefix);
        let mut communities = communities.to_vec();
        communities.sort_unstable();
        communities.dedup();
        let done = match self.runtime.insert(prefix, communities) {
            Some(_) => Announced::Replaced,
            None => Announced::New,
        };
        if !was_originated {
            // Our own route wins over a learned one: the kernel route goes.
            if self.learned_fib_view(prefix) != FibView::None {
                self.push_fib(RouteChange::Remove { prefix });
            }
        }
        let change = match (done, was_originated) {
            (Announced::New, false) => RouteEventKind::Added,
            _ => RouteEventKind::Changed,
        };
        self.origin_event(prefix, change, RouteOrigin::Runtime);
        self.readvertise(prefix);
        done
    }

    /// Stops the run-time origination of `prefix`: the configuration's
    /// origination (if any) or the best learned path takes over.
    pub fn withdraw_runtime(&mut self, prefix: IpNet) -> Result<(), RuntimeError> {
        let prefix = prefix.trunc();
        if self.runtime.remove(&prefix).is_none() {
            return Err(RuntimeError::NotAnnounced(prefix));
        }
        if self.is_originated(prefix) {
            self.origin_event(prefix, RouteEventKind::Changed, RouteOrigin::Config);
        } else {
            self.origin_event(prefix, RouteEventKind::Removed, RouteOrigin::Runtime);
            let view = self.learned_fib_view(prefix);
            if view != FibView::None {
                self.learned_event(prefix, RouteEventKind::Added, &view);
                let change = view.into_change(prefix, &mut self.hop_sets);
                self.push_fib(change);
            }
        }
        self.readvertise(prefix);
        Ok(())
    }

    /// The run-time routes, in prefix order, with their communities.
    pub fn runtime_routes(&self) -> impl Iterator<Item = (&IpNet, &Vec<u32>)> {
        self.runtime.iter()
    }

    /// The communities a run-time route of `prefix` carries, if it is one.
    pub(crate) fn runtime_communities(&self, prefix: IpNet) -> Option<&[u32]> {
        self.runtime.get(&prefix).map(Vec::as_slice)
    }

    /// What the kernel would get for `prefix` from learned paths.
    pub(crate) fn learned_fib_view(&self, prefix: IpNet) -> FibView {
        match prefix {
            IpNet::V4(p) => self.current_fib_view(p),
            IpNet::V6(p) => self.current_fib_view(p),
        }
    }

    /// Every peer recomputes what it is sent for `prefix`.
    fn readvertise(&mut self, prefix: IpNet) {
        for peer in self.peers.iter_mut().flatten() {
            if !peer.closing && !peer.stale {
                peer.dirty.insert(prefix);
            }
        }
    }

    /// A watch event for one of our own prefixes.
    pub(crate) fn origin_event(&self, prefix: IpNet, change: RouteEventKind, origin: RouteOrigin) {
        if self.events.watched() {
            self.events.send(WatchEvent::Route {
                prefix,
                change,
                origin,
                next_hops: Vec::new(),
            });
        }
    }

    /// A watch event for a learned route whose kernel view became `view`.
    pub(crate) fn learned_event(&self, prefix: IpNet, change: RouteEventKind, view: &FibView) {
        if !self.watching {
            return;
        }
        let next_hops = match view {
            FibView::None => Vec::new(),
            FibView::One(nh) => vec![*nh],
            FibView::Many(v) => v.clone(),
        };
        self.events.send(WatchEvent::Route {
            prefix,
            change,
            origin: RouteOrigin::Learned,
            next_hops,
        });
    }

    /// The sender watchers subscribe to.
    pub fn watch_sender(&self) -> &crate::events::WatchSender {
        &self.events
    }
}

#[cfg(test)]
mod tests;
