//! Soft reconfiguration: new policies and settings applied to the kept
//! pre-policy Adj-RIB-In, without asking peers to resend.

use std::hash::BuildHasher;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::decision::{best_key, set_of, FibView};
use super::nexthop::resolve_next_hop;
use super::table::{Path, PathState, Prefix, NO_ATTRS};
use super::Rib;
use crate::config::SpeakerConfig;
use crate::events::{RouteChange, RouteEventKind, RouteOrigin};
use crate::policy::{self, Direction, Verdict};

impl Rib {
    /// New configuration: import policies are re-applied to the kept
    /// pre-policy paths (soft reconfiguration, RFC 4271 §9.1 with the
    /// Adj-RIB-In kept unmodified), and every peer's advertisements are
    /// recomputed.
    pub fn reconfigure(&mut self, config: SpeakerConfig) {
        let old = std::mem::replace(&mut self.config, Arc::new(config));
        // Prefixes that became (or stopped being) ours through the
        // configuration; a run-time announcement keeps a prefix ours
        // whatever the configuration says.
        let mut changed_origin: Vec<IpNet> = Vec::new();
        for p in old
            .originate_v4
            .iter()
            .chain(self.config.originate_v4.iter())
        {
            if old.originate_v4.contains(p) != self.config.originate_v4.contains(p) {
                changed_origin.push(IpNet::V4(*p));
            }
        }
        for p in old
            .originate_v6
            .iter()
            .chain(self.config.originate_v6.iter())
        {
            if old.originate_v6.contains(p) != self.config.originate_v6.contains(p) {
                changed_origin.push(IpNet::V6(*p));
            }
        }
        changed_origin.sort_unstable();
        changed_origin.dedup();
        changed_origin.retain(|p| !self.runtime.contains_key(p));
        for slot in 0..self.peers.len() {
            let Some((id, addr)) = self
                .peers
                .get(slot)
                .and_then(Option::as_ref)
                .map(|p| (p.id, p.session.peer_address))
            else {
                continue;
            };
            let neighbor = self
                .neighbor_index(id, addr)
                .and_then(|i| self.config.neighbors.get(i))
                .cloned()
                .map(Arc::new);
            if let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) {
                p.neighbor = neighbor;
            }
        }
        self.reapply_import::<Ipv4Net>();
        self.reapply_import::<Ipv6Net>();
        // Our own route wins over a learned one in the FIB.
        for prefix in changed_origin {
            let view = self.learned_fib_view(prefix);
            if self.is_originated(prefix) {
                self.origin_event(prefix, RouteEventKind::Added, RouteOrigin::Config);
                if view != FibView::None {
                    self.push_fib(RouteChange::Remove { prefix });
                }
            } else {
                self.origin_event(prefix, RouteEventKind::Removed, RouteOrigin::Config);
                if view != FibView::None {
                    self.learned_event(prefix, RouteEventKind::Added, &view);
                    let change = view.into_change(prefix, &mut self.hop_sets);
                    self.push_fib(change);
                }
            }
        }
        for slot in 0..self.peers.len() {
            let Some(peer) = self.peers.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            let mut prefixes: Vec<IpNet> = peer.advertised.iter().collect();
            for f in peer.session.families.clone() {
                self.all_prefixes(f, true, &mut prefixes);
            }
            prefixes.sort_unstable();
            prefixes.dedup();
            self.send_prefixes(slot as u16, &prefixes, &[]);
        }
    }

    pub(crate) fn current_fib_view<P: Prefix>(&self, prefix: P) -> FibView {
        let ctx = self.ctx();
        P::table_ref(&self.tables)
            .get(&prefix)
            .map_or(FibView::None, |e| ctx.fib_view(e.paths.as_slice(), e.nbest))
    }

    /// Recomputes every path's state and post-policy attributes from its
    /// pre-policy attributes, then the decision for every prefix.
    fn reapply_import<P: Prefix>(&mut self) {
        let prefixes: Vec<P> = P::table_ref(&self.tables)
            .map
            .iter()
            .map(|e| e.prefix)
            .collect();
        let config = Arc::clone(&self.config);
        for prefix in prefixes {
            let Some(paths) = P::table_ref(&self.tables)
                .get(&prefix)
                .map(|e| e.paths.as_slice().to_vec())
            else {
                continue;
            };
            for old in paths {
                let Some(peer) = self.peers.get(old.peer as usize).and_then(Option::as_ref) else {
                    continue;
                };
                let Some(pre) = self.attrs.get(old.pre) else {
                    continue;
                };
                let nh = self.nexthops.get(pre.next_hop).copied();
                let base = if pre.as_path_contains(config.asn) {
                    Some(PathState::AsLoop)
                } else {
                    nh.and_then(|nh| resolve_next_hop(&nh, &peer.session).err())
                };
                let (state, post) = match base {
                    Some(s) => (s, NO_ATTRS),
                    None => match policy::evaluate(
                        peer.import(),
                        &config.policies,
                        Direction::Import,
                        peer.session.ebgp,
                        prefix.into(),
                        Some(pre),
                        false,
                    ) {
                        Verdict::Reject(r) => (PathState::from_reject(r), NO_ATTRS),
                        Verdict::Accept { set: None, .. } => {
                            self.attrs.retain(old.pre);
                            (PathState::Usable, old.pre)
                        }
                        Verdict::Accept { set: Some(set), .. } => {
                            let changed = policy::apply_set(set, pre);
                            (PathState::Usable, self.intern_attrs(changed))
                        }
                    },
                };
                if state == old.state && post == old.post {
                    self.release_attrs(post);
                    continue;
                }
                self.attrs.retain(old.pre);
                self.upsert(
                    prefix,
                    Path {
                        peer: old.peer,
                        state,
                        pre: old.pre,
                        post,
                    },
                    None,
                    &[],
                );
            }
            // Settings such as max-paths may change the set even when no
            // path changed.
            self.redecide(prefix);
        }
    }

    /// Runs the decision for `prefix` again: a setting or a path's
    /// standing changed, not the path (also used for long-lived stale).
    pub(crate) fn redecide<P: Prefix>(&mut self, prefix: P) {
        let (ctx, tables) = self.decision_parts(None);
        let table = P::table(tables);
        let h = table.hasher.hash_one(prefix.hkey());
        let Ok(mut o) = table.map.find_entry(h, |e| e.prefix == prefix) else {
            return;
        };
        let e = o.get_mut();
        let old_set = set_of(e.paths.as_slice(), e.nbest);
        let old_best = best_key(e.paths.as_slice(), e.nbest);
        e.nbest = ctx.decide(e.paths.as_mut_slice());
        let fib = ctx.fib_change(&old_set, e.paths.as_slice(), e.nbest);
        let new_best = best_key(e.paths.as_slice(), e.nbest);
        self.after_change(prefix.into(), fib, old_best != new_best);
    }
}
