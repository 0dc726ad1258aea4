//! The RFC 4271 §9.1.2 decision process with ECMP, and the FIB view of a
//! prefix's multipath set.

use ipnet::IpNet;
use smallvec::SmallVec;
use wire::NextHop;

use super::fibq::HopSets;
use super::nexthop::resolve_next_hop;
use super::table::{Path, PathState};
use super::{Peer, DEFAULT_LOCAL_PREF};
use crate::attrs::Attrs;
use crate::config::SpeakerConfig;
use crate::events::{Gateway, RouteChange};
use crate::store::{Id, Store};

/// What the FIB has for one prefix, computed from the multipath set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FibView {
    None,
    One(Gateway),
    Many(Vec<Gateway>),
}

impl FibView {
    /// The change that makes the FIB show this view, its next-hop set
    /// shared through `hop_sets`.
    pub(crate) fn into_change(self, prefix: IpNet, hop_sets: &mut HopSets) -> RouteChange {
        match self {
            FibView::None => RouteChange::Remove { prefix },
            FibView::One(nh) => RouteChange::Install {
                prefix,
                next_hops: hop_sets.intern(&[nh]),
            },
            FibView::Many(v) => RouteChange::Install {
                prefix,
                next_hops: hop_sets.intern(&v),
            },
        }
    }
}

/// The borrowed parts the decision process reads: built by the RIB
/// beside its mutable tables (`Rib::decision_parts`), read only here.
pub(crate) struct Ctx<'a> {
    attrs: &'a Store<Attrs>,
    nexthops: &'a Store<NextHop>,
    peers: &'a [Option<Peer>],
    max_paths: usize,
    relax: bool,
    /// The resolved next hop of the path being inserted (peer slot,
    /// pre-policy id): saves resolving it again for the FIB view.
    hint: Option<(u16, Id, Gateway)>,
}

impl<'a> Ctx<'a> {
    /// The context over the RIB's stores and peers, with the settings of
    /// `config` that the decision reads.
    pub(crate) fn new(
        attrs: &'a Store<Attrs>,
        nexthops: &'a Store<NextHop>,
        peers: &'a [Option<Peer>],
        config: &SpeakerConfig,
        hint: Option<(u16, Id, Gateway)>,
    ) -> Ctx<'a> {
        Ctx {
            attrs,
            nexthops,
            peers,
            max_paths: config.max_paths,
            relax: config.multipath_relax,
            hint,
        }
    }

    pub(crate) fn attrs(&self, id: Id) -> Option<&Attrs> {
        self.attrs.get(id)
    }
    pub(crate) fn peer(&self, slot: u16) -> Option<&Peer> {
        self.peers.get(slot as usize).and_then(Option::as_ref)
    }
    pub(crate) fn next_hop(&self, p: &Path) -> Option<Gateway> {
        if let Some((peer, pre, r)) = self.hint {
            if p.peer == peer && p.pre == pre {
                return Some(r);
            }
        }
        let a = self.attrs(p.post)?;
        let nh = self.nexthops.get(a.next_hop)?;
        resolve_next_hop(nh, &self.peer(p.peer)?.session).ok()
    }

    pub(crate) fn fib_view(&self, paths: &[Path], nbest: u8) -> FibView {
        let set = paths.get(..nbest as usize).unwrap_or(&[]);
        match set {
            [] => FibView::None,
            [one] => self.next_hop(one).map_or(FibView::None, FibView::One),
            many => {
                let mut v: Vec<Gateway> = many.iter().filter_map(|p| self.next_hop(p)).collect();
                v.sort_unstable();
                v.dedup();
                match v.len() {
                    0 => FibView::None,
                    1 => v.pop().map_or(FibView::None, FibView::One),
                    _ => FibView::Many(v),
                }
            }
        }
    }

    /// RFC 4271 §9.1.2.2 tie-breaking, applied by elimination, then the
    /// multipath set. Reorders `paths` (best first, then the rest of the
    /// set) and returns the size of the set.
    pub(crate) fn decide(&self, paths: &mut [Path]) -> u8 {
        if let [only] = paths {
            return u8::from(
                only.state == PathState::Usable
                    && self.attrs(only.post).is_some()
                    && self.peer(only.peer).is_some_and(|p| !p.closing),
            );
        }
        struct Cand<'a> {
            i: usize,
            a: &'a Attrs,
            peer: &'a Peer,
        }
        // Decisions run per prefix change: no heap for up to 4 paths.
        let mut c: SmallVec<[Cand; 4]> = paths
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PathState::Usable)
            .filter_map(|(i, p)| {
                Some(Cand {
                    i,
                    a: self.attrs(p.post)?,
                    peer: self.peer(p.peer).filter(|x| !x.closing)?,
                })
            })
            .collect();
        if c.is_empty() {
            return 0;
        }
        // Long-lived stale paths lose to every other (RFC 9494 §4.3):
        // those of a peer gone long-lived here, and those a peer sent
        // marked LLGR_STALE.
        let long_lived = |x: &Cand| {
            x.peer.long_lived_stale || x.a.communities().contains(&crate::graceful::LLGR_STALE)
        };
        if c.iter().any(|x| !long_lived(x)) {
            c.retain(|x| !long_lived(x));
        }
        // a) highest LOCAL_PREF (degree of preference, §9.1.1).
        let lp = |x: &Cand| x.a.local_pref().unwrap_or(DEFAULT_LOCAL_PREF);
        let best_lp = c.iter().map(lp).max().unwrap_or(0);
        c.retain(|x| lp(x) == best_lp);
        // b) shortest AS path.
        let min_len = c.iter().map(|x| x.a.as_path_len()).min().unwrap_or(0);
        c.retain(|x| x.a.as_path_len() == min_len);
        // c) lowest ORIGIN.
        let min_origin = c.iter().map(|x| x.a.origin).min();
        c.retain(|x| Some(x.a.origin) == min_origin);
        // d) lowest MED among routes from the same neighbouring AS; a
        // missing MED is the lowest value (§9.1.2.2 c).
        let nas = |x: &Cand| x.a.neighbor_as().unwrap_or(x.peer.session.local_as);
        let med = |x: &Cand| x.a.med().unwrap_or(0);
        let keep: SmallVec<[bool; 4]> = c
            .iter()
            .map(|x| !c.iter().any(|y| nas(y) == nas(x) && med(y) < med(x)))
            .collect();
        let mut k = keep.iter();
        c.retain(|_| k.next().copied().unwrap_or(true));
        // e) eBGP over iBGP.
        if c.iter().any(|x| x.peer.session.ebgp) {
            c.retain(|x| x.peer.session.ebgp);
        }
        // f) IGP cost to the next hop: all equal here (no IGP).
        // Multipath candidates are what is left; g) lowest router id
        // (ORIGINATOR_ID when present, RFC 4456 §9), h) lowest peer
        // address pick the best among them.
        let rank = |x: &Cand| {
            (
                x.a.originator_id().unwrap_or(x.peer.session.peer_router_id),
                x.peer.session.peer_address,
            )
        };
        c.sort_by_key(|x| rank(x));
        let Some(best) = c.first() else { return 0 };
        let best_as = nas(best);
        let set: SmallVec<[usize; 4]> = c
            .iter()
            .filter(|x| self.relax || nas(x) == best_as)
            .take(self.max_paths.clamp(1, 255))
            .map(|x| x.i)
            .collect();
        let n = set.len();
        // Move the set to the front in order, keep the rest after it.
        let mut order: SmallVec<[Path; 4]> =
            set.iter().filter_map(|&i| paths.get(i).copied()).collect();
        order.extend(
            paths
                .iter()
                .enumerate()
                .filter(|(i, _)| !set.contains(i))
                .map(|(_, p)| *p),
        );
        for (dst, src) in paths.iter_mut().zip(order) {
            *dst = src;
        }
        n as u8
    }
}

/// A copy of the multipath set (`nbest` leading paths), kept across a
/// change so the FIB view is recomputed only when the set changed.
pub(crate) fn set_of(paths: &[Path], nbest: u8) -> SmallVec<[Path; 4]> {
    paths.iter().take(nbest as usize).copied().collect()
}

impl Ctx<'_> {
    /// The new FIB view when it differs from the one of `old_set`. Equal
    /// sets (same peers, same attributes) give equal views, so the common
    /// case, a path that does not win, resolves no next hop at all.
    pub(crate) fn fib_change(
        &self,
        old_set: &[Path],
        paths: &[Path],
        nbest: u8,
    ) -> Option<FibDelta> {
        let new_set = paths.get(..nbest as usize).unwrap_or(&[]);
        let same = old_set.len() == new_set.len()
            && old_set
                .iter()
                .zip(new_set)
                .all(|(a, b)| a.peer == b.peer && a.post == b.post);
        if same {
            return None;
        }
        let old = self.fib_view(old_set, old_set.len() as u8);
        let new = self.fib_view(paths, nbest);
        (old != new).then_some(FibDelta {
            was_empty: old == FibView::None,
            view: new,
        })
    }
}

/// A prefix's FIB view changed: the new one, and whether there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FibDelta {
    pub(crate) was_empty: bool,
    pub(crate) view: FibView,
}

/// What changed in one prefix's best path, for the outbound side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BestKey {
    pub(crate) peer: u16,
    pub(crate) post: Id,
}

pub(crate) fn best_key(e_paths: &[Path], nbest: u8) -> Option<BestKey> {
    if nbest == 0 {
        return None;
    }
    e_paths.first().map(|p| BestKey {
        peer: p.peer,
        post: p.post,
    })
}
