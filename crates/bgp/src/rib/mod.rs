//! The RIB: Adj-RIB-In of every peer and the Loc-RIB in one table per
//! family, the RFC 4271 §9.1 decision process with ECMP, and the changes
//! it makes to the FIB.
//!
//! Layout: one hash table per family maps a prefix to the list of paths
//! received for it (one per peer, pre-policy and post-policy attributes as
//! 4-byte ids into a hash-consed [`crate::store::Store`]). The list is kept in
//! decision order: the best path first, then the rest of the multipath set
//! (`Entry::nbest` paths in all), then the others. A prefix with one path
//! costs one table slot and no heap allocation.
//!
//! [`Rib`] is a plain data structure (no tasks, no I/O); [`spawn_rib`]
//! wraps it in the task that owns it.
//!
//! Where things are: ingestion, withdrawals and FIB changes here; `table`
//! (paths, entries, the per-family tables), `peers` (sessions up and
//! down, draining a peer's paths), `stale` (graceful restart),
//! `decision` (best path, ECMP, FIB view), `nexthop` (which gateway a next
//! hop gives), `reconfig` (soft reconfiguration), `runtime` (prefixes announced at run time and
//! the watch events), `status` (what `via6ctl` shows), `task` (the
//! owning task and its channels). The interned attribute sets are
//! `crate::attrs` in a `crate::store`, outside the RIB so that
//! `crate::policy` works on them without depending on the RIB; the RIB
//! calls policy (import), `crate::outbound` does (export).

mod decision;
mod fibq;
mod nexthop;
mod peers;
mod reconfig;
mod runtime;
mod stale;
mod status;
mod table;
mod task;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use smallvec::SmallVec;
use wire::{Family, NextHop, Update};

use crate::attrs::Attrs;
use crate::config::{NeighborConfig, PolicyRef, SpeakerConfig};
use crate::events::{self, EstablishedSession, Gateway, PeerId, PeerOutput, RouteChange};
use crate::policy::{self, Direction, Verdict};
use crate::store::{Id, Store};

pub(crate) use decision::{best_key, set_of, Ctx, FibDelta, FibView};
pub use nexthop::resolve_next_hop;
pub(crate) use peers::Drain;
pub use runtime::{Announced, RuntimeError};
pub use status::{community_string, PeerCounts, RouteFilter, RouteStatus};
pub(crate) use table::{Entry, Path, PathList, PrefixSet, NO_ATTRS};
pub use table::{PathState, Prefix, Table, Tables};
pub use task::{spawn_rib, RibHandle};

/// Default LOCAL_PREF when a route carries none (RFC 4271 §5.1.5 leaves it
/// to the implementation; 100 is what every router uses).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// A peer while its session is Established.
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) session: EstablishedSession,
    /// Shared so that reading the policies per UPDATE costs no copy.
    pub(crate) neighbor: Option<Arc<NeighborConfig>>,
    /// Paths in Adj-RIB-In.
    pub(crate) received: u64,
    /// Paths that passed loop, next-hop and policy checks.
    pub(crate) accepted: u64,
    pub(crate) eor: Vec<Family>,
    /// Max-prefix exceeded: the session is being closed, ignore its input.
    pub(crate) closing: bool,
    /// The session is gone but its paths stay, stale, while the peer
    /// restarts (graceful restart): still candidates, no longer a peer to
    /// send to.
    pub(crate) stale: bool,
    /// Its stale paths are long-lived stale (RFC 9494): they lose to
    /// every other path and are not advertised.
    pub(crate) long_lived_stale: bool,
    /// Messages for the session, drained by the task.
    pub(crate) out: Vec<PeerOutput>,
    pub(crate) outbound: Option<tokio::sync::mpsc::Sender<PeerOutput>>,
    /// Prefixes advertised to this peer (our Adj-RIB-Out, prefixes only:
    /// what is sent is recomputed from the Loc-RIB).
    pub(crate) advertised: PrefixSet,
    /// Prefixes whose advertisement must be recomputed.
    pub(crate) dirty: PrefixSet,
    /// Families whose initial dump (and End-of-RIB) went out.
    /// Initial table still to send, in send order from the end (grouped
    /// by attribute set so UPDATEs stay full), then End-of-RIB for
    /// `dump_eor`. Sent a step at a time as the session drains.
    pub(crate) dump: Vec<IpNet>,
    pub(crate) dump_eor: Vec<Family>,
}

impl Peer {
    fn import(&self) -> &PolicyRef {
        self.neighbor
            .as_ref()
            .map_or(&PolicyRef::Default, |n| &n.import)
    }
}

/// Sizes of the RIB's tables and stores.
#[derive(Debug, Default)]
pub struct Stats {
    pub prefixes: usize,
    pub attr_sets: usize,
    pub next_hops: usize,
}

/// Adj-RIB-In, Loc-RIB and the outbound state of every peer.
pub struct Rib {
    pub(crate) config: Arc<SpeakerConfig>,
    pub(crate) nexthops: Store<NextHop>,
    pub(crate) attrs: Store<Attrs>,
    pub(crate) tables: Tables,
    pub(crate) peers: Vec<Option<Peer>>,
    pub(crate) slots: HashMap<PeerId, u16>,
    /// FIB changes not yet handed out, coalesced per prefix.
    pub(crate) fib: fibq::FibQueue,
    /// Next-hop sets of FIB changes, shared by every route that has them.
    pub(crate) hop_sets: fibq::HopSets,
    /// eBGP neighbours already warned about RFC 8212 default deny.
    pub(crate) warned: HashSet<PeerId>,
    /// Configured neighbours (by index) that sent End-of-RIB for all
    /// their families.
    pub(crate) eor_done: HashSet<usize>,
    pub(crate) initial_tables_in: bool,
    /// Peers whose paths are being removed.
    pub(crate) draining: Vec<Drain>,
    /// Slots kept for restarting peers (graceful restart).
    pub(crate) stale: Vec<stale::StaleSlot>,
    /// We restarted with our routes kept (graceful restart, restarting
    /// side): nothing is advertised until the initial tables are in
    /// (RFC 4724 §4.1), then each peer gets its table and End-of-RIB.
    pub(crate) restarting: bool,
    /// Prefixes announced at run time (`via6ctl announce`) with their
    /// communities, sorted; kept across reconfigurations.
    pub(crate) runtime: BTreeMap<IpNet, Vec<u32>>,
    /// Route changes for watchers (`via6ctl watch`).
    pub(crate) events: crate::events::WatchSender,
    /// Someone watched at the last [`Rib::refresh_watching`]: asked once
    /// per batch, not per route change (a full table is a million).
    pub(crate) watching: bool,
}

/// The stale slots of `family` out of those of both families.
fn stale_for<'a>(family: Family, v4: &'a [u16], v6: &'a [u16]) -> &'a [u16] {
    match family {
        Family::Ipv4Unicast => v4,
        Family::Ipv6Unicast => v6,
    }
}

/// The prefixes of `table` that have a path of `slot` (none unless `want`).
fn slot_prefixes<P: Prefix>(table: &Table<P>, slot: u16, want: bool) -> Vec<P> {
    if !want {
        return Vec::new();
    }
    let of = |e: &PathList| e.as_slice().iter().any(|p| p.peer == slot);
    table
        .map
        .iter()
        .filter(|e| of(&e.paths))
        .map(|e| e.prefix)
        .collect()
}

impl Rib {
    pub fn new(config: SpeakerConfig) -> Rib {
        Rib {
            nexthops: Store::default(),
            attrs: Store::default(),
            tables: Tables::default(),
            peers: Vec::new(),
            slots: HashMap::new(),
            fib: fibq::FibQueue::default(),
            hop_sets: fibq::HopSets::default(),
            warned: HashSet::new(),
            eor_done: HashSet::new(),
            initial_tables_in: false,
            draining: Vec::new(),
            stale: Vec::new(),
            restarting: config
                .neighbors
                .iter()
                .any(|n| n.graceful_restart.enabled && n.graceful_restart.restarting),
            config: Arc::new(config),
            runtime: BTreeMap::new(),
            events: crate::events::WatchSender::default(),
            watching: false,
        }
    }

    /// Looks again whether anyone watches; until the next look, route
    /// changes are sent to watchers only if someone did.
    pub fn refresh_watching(&mut self) {
        self.watching = self.events.watched();
    }

    /// Sends route changes to `events` from now on (the speaker shares
    /// one sender between the RIB and the sessions).
    pub fn set_watch_sender(&mut self, events: crate::events::WatchSender) {
        self.events = events;
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// Sizes of the tables and stores.
    pub fn stats(&self) -> Stats {
        Stats {
            prefixes: self.tables.v4.len() + self.tables.v6.len(),
            attr_sets: self.attrs.len(),
            next_hops: self.nexthops.len(),
        }
    }

    /// The configured neighbour a session belongs to: `PeerId(n)` is the
    /// n-th neighbour; otherwise matched by address.
    fn neighbor_index(&self, id: PeerId, addr: IpAddr) -> Option<usize> {
        let n = &self.config.neighbors;
        match n.get(id.0 as usize) {
            Some(c) if c.address == addr => Some(id.0 as usize),
            _ => n.iter().position(|c| c.address == addr),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.attrs, &self.nexthops, &self.peers, &self.config, None)
    }

    /// The decision context and the tables it decides on, borrowed apart:
    /// an entry of `tables` changes while the stores and peers are read.
    /// `hint`: the path being inserted and its resolved next hop, if any.
    fn decision_parts(&mut self, hint: Option<(u16, Id, Gateway)>) -> (Ctx<'_>, &mut Tables) {
        let ctx = Ctx::new(&self.attrs, &self.nexthops, &self.peers, &self.config, hint);
        (ctx, &mut self.tables)
    }

    fn slot(&self, id: PeerId) -> Option<u16> {
        self.slots.get(&id).copied()
    }

    fn peer_mut(&mut self, slot: u16) -> Option<&mut Peer> {
        self.peers.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Applies one UPDATE from `id`. Withdrawals come from the classic
    /// field and MP_UNREACH (RFC 4760 §4); with `treat_as_withdraw`
    /// (RFC 7606 §2) announced prefixes are withdrawn too.
    pub fn update(&mut self, id: PeerId, update: &Update, treat_as_withdraw: bool) {
        let Some(slot) = self.slot(id) else { return };
        if self
            .peers
            .get(slot as usize)
            .and_then(Option::as_ref)
            .is_none_or(|p| p.closing)
        {
            return;
        }
        if !treat_as_withdraw {
            if let Some(family) = wire::is_end_of_rib(update) {
                self.end_of_rib(slot, family);
                return;
            }
        }
        // A restarting peer's stale paths (RFC 4724 §4.2): replaced or
        // withdrawn by what its new session sends.
        let (stale4, stale6) = if self.stale.is_empty() {
            (SmallVec::new(), SmallVec::new())
        } else {
            (
                self.stale_slots(id, Family::Ipv4Unicast),
                self.stale_slots(id, Family::Ipv6Unicast),
            )
        };
        let stale_of = |f: Family| stale_for(f, &stale4, &stale6);
        for p in &update.withdrawn {
            self.withdraw_with_stale(slot, IpNet::V4(*p), &stale4);
        }
        let a = &update.attributes;
        if let Some(mp) = &a.mp_unreach {
            for p in &mp.withdrawn {
                self.withdraw_with_stale(slot, *p, stale_of(mp.family));
            }
        }
        let classic_nh = a.next_hop.map(NextHop::V4);
        if treat_as_withdraw || (classic_nh.is_none() && !update.nlri.is_empty()) {
            for p in &update.nlri {
                self.withdraw_with_stale(slot, IpNet::V4(*p), &stale4);
            }
            if let Some(mp) = &a.mp_reach {
                for p in &mp.nlri {
                    self.withdraw_with_stale(slot, *p, stale_of(mp.family));
                }
            }
        } else {
            if let Some(nh) = classic_nh.filter(|_| !update.nlri.is_empty()) {
                let v4 = update.nlri.iter().map(|p| IpNet::V4(*p));
                self.announce(slot, nh, a, v4, &stale4);
            }
            if let Some(mp) = &a.mp_reach {
                let nh = mp.next_hop.normalize();
                self.announce(slot, nh, a, mp.nlri.iter().copied(), stale_of(mp.family));
            }
        }
        self.check_max_prefix(slot);
    }

    /// Withdraws `p` from `slot` and from the stale slots of its peer.
    fn withdraw_with_stale(&mut self, slot: u16, p: IpNet, stale: &[u16]) {
        for s in std::iter::once(slot).chain(stale.iter().copied()) {
            match p {
                IpNet::V4(p) => self.withdraw_one(s, p.normalize()),
                IpNet::V6(p) => self.withdraw_one(s, p.normalize()),
            }
        }
    }

    fn end_of_rib(&mut self, slot: u16, family: Family) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        if !peer.eor.contains(&family) {
            peer.eor.push(family);
        }
        let done = peer.session.families.iter().all(|f| peer.eor.contains(f));
        let (id, addr) = (peer.id, peer.session.peer_address);
        tracing::debug!(peer = %addr, ?family, "End-of-RIB received");
        if done {
            if let Some(i) = self.neighbor_index(id, addr) {
                self.eor_done.insert(i);
            }
        }
        if !self.stale.is_empty() {
            self.stale_end_of_rib(id, family);
        }
    }

    /// True once every configured neighbour sent End-of-RIB for all of its
    /// families (the task adds a timeout). Reported once.
    pub fn take_initial_tables_in(&mut self, timed_out: bool) -> bool {
        if self.initial_tables_in {
            return false;
        }
        let all = (0..self.config.neighbors.len()).all(|i| self.eor_done.contains(&i));
        if all || timed_out {
            self.initial_tables_in = true;
            return true;
        }
        false
    }

    fn intern_attrs(&mut self, a: Attrs) -> Id {
        let nh = a.next_hop;
        let before = self.attrs.len();
        let id = self.attrs.intern(a);
        if self.attrs.len() > before {
            self.nexthops.retain(nh);
        }
        id
    }

    fn release_attrs(&mut self, id: Id) {
        if id == NO_ATTRS {
            return;
        }
        if let Some(a) = self.attrs.release(id) {
            self.nexthops.release(a.next_hop);
        }
    }

    fn announce(
        &mut self,
        slot: u16,
        nh: NextHop,
        wire_attrs: &wire::PathAttributes,
        prefixes: impl Iterator<Item = IpNet>,
        stale: &[u16],
    ) {
        let Some(peer) = self.peers.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let ebgp = peer.session.ebgp;
        let resolved = resolve_next_hop(&nh, &peer.session);
        let base_state = if peer_loop(wire_attrs, self.config.asn) {
            Some(PathState::AsLoop)
        } else {
            resolved.err()
        };
        let resolved = resolved.ok();
        let neighbor = peer.neighbor.clone();
        let import = neighbor.as_ref().map_or(&PolicyRef::Default, |n| &n.import);
        let nh_id = self.nexthops.intern(nh);
        let mut a = Attrs::from_wire(wire_attrs, nh_id);
        if ebgp {
            // LOCAL_PREF from an eBGP peer is ignored (RFC 4271 §5.1.5).
            a.set_local_pref(None);
        }
        let pre = self.intern_attrs(a);
        self.nexthops.release(nh_id);
        // Post-policy attribute ids per policy term, shared by the
        // prefixes of this UPDATE.
        let mut by_term: Vec<(usize, Id)> = Vec::new();
        let config = Arc::clone(&self.config);
        for prefix in prefixes {
            let prefix = prefix.trunc();
            let (state, post) = match base_state {
                Some(s) => (s, NO_ATTRS),
                None => {
                    let verdict = policy::evaluate(
                        import,
                        &config.policies,
                        Direction::Import,
                        ebgp,
                        prefix,
                        self.attrs.get(pre),
                        false,
                    );
                    match verdict {
                        Verdict::Reject(r) => (PathState::from_reject(r), NO_ATTRS),
                        Verdict::Accept { set: None, .. } => {
                            self.attrs.retain(pre);
                            (PathState::Usable, pre)
                        }
                        Verdict::Accept {
                            term,
                            set: Some(set),
                        } => {
                            let t = term.unwrap_or(usize::MAX);
                            let id = match by_term.iter().find(|(k, _)| *k == t) {
                                Some(&(_, id)) => {
                                    self.attrs.retain(id);
                                    id
                                }
                                None => {
                                    let changed =
                                        self.attrs.get(pre).map(|a| policy::apply_set(set, a));
                                    match changed {
                                        Some(c) => {
                                            let id = self.intern_attrs(c);
                                            self.attrs.retain(id);
                                            by_term.push((t, id));
                                            id
                                        }
                                        None => NO_ATTRS,
                                    }
                                }
                            };
                            (PathState::Usable, id)
                        }
                    }
                }
            };
            self.attrs.retain(pre);
            let path = Path {
                peer: slot,
                state,
                pre,
                post,
            };
            match prefix {
                IpNet::V4(p) => self.upsert(p, path, resolved, stale),
                IpNet::V6(p) => self.upsert(p, path, resolved, stale),
            }
        }
        for (_, id) in by_term {
            self.release_attrs(id);
        }
        self.release_attrs(pre);
    }

    /// Inserts or replaces `path` (its references already taken) and
    /// reruns the decision for the prefix. A path of one of the `stale`
    /// slots (the same peer before its restart) is replaced too.
    fn upsert<P: Prefix>(
        &mut self,
        prefix: P,
        path: Path,
        resolved: Option<Gateway>,
        stale: &[u16],
    ) {
        let mut released: [Id; 2] = [NO_ATTRS; 2];
        let mut stale_replaced = None;
        let (mut d_received, mut d_accepted) = (1i64, i64::from(path.state == PathState::Usable));
        let (ctx, tables) = self.decision_parts(resolved.map(|r| (path.peer, path.pre, r)));
        let table = P::table(tables);
        let h = table.hasher.hash_one(prefix.hkey());
        let hasher = &table.hasher;
        let entry = table.map.entry(
            h,
            |e| e.prefix == prefix,
            |e| hasher.hash_one(e.prefix.hkey()),
        );
        let (fib, old_best, new_best) = match entry {
            hashbrown::hash_table::Entry::Vacant(v) => {
                let mut e = Entry {
                    paths: PathList::One(path),
                    prefix,
                    nbest: 0,
                };
                e.nbest = ctx.decide(e.paths.as_mut_slice());
                let new_fib = ctx.fib_view(e.paths.as_slice(), e.nbest);
                let new_best = best_key(e.paths.as_slice(), e.nbest);
                v.insert(e);
                let fib = (new_fib != FibView::None).then_some(FibDelta {
                    was_empty: true,
                    view: new_fib,
                });
                (fib, None, new_best)
            }
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                let old_set = set_of(e.paths.as_slice(), e.nbest);
                let old_best = best_key(e.paths.as_slice(), e.nbest);
                let paths = e.paths.as_slice();
                // Our own path, else a stale one of the same peer it replaces.
                let existing = paths
                    .iter()
                    .position(|p| p.peer == path.peer)
                    .or_else(|| paths.iter().position(|p| stale.contains(&p.peer)));
                match existing.and_then(|i| e.paths.as_mut_slice().get_mut(i)) {
                    Some(old) => {
                        released = [old.pre, old.post];
                        if old.peer == path.peer {
                            d_received -= 1;
                            d_accepted -= i64::from(old.state == PathState::Usable);
                        } else {
                            stale_replaced = Some(*old);
                        }
                        *old = path;
                    }
                    None => e.paths.push(path),
                }
                e.nbest = ctx.decide(e.paths.as_mut_slice());
                let fib = ctx.fib_change(&old_set, e.paths.as_slice(), e.nbest);
                let new_best = best_key(e.paths.as_slice(), e.nbest);
                (fib, old_best, new_best)
            }
        };
        self.after_change(prefix.into(), fib, old_best != new_best);
        for id in released {
            self.release_attrs(id);
        }
        if let Some(peer) = self.peer_mut(path.peer) {
            peer.received = peer.received.saturating_add_signed(d_received);
            peer.accepted = peer.accepted.saturating_add_signed(d_accepted);
        }
        if let Some(old) = stale_replaced {
            if let Some(peer) = self.peer_mut(old.peer) {
                peer.received = peer.received.saturating_sub(1);
                peer.accepted = peer
                    .accepted
                    .saturating_sub(u64::from(old.state == PathState::Usable));
            }
        }
    }

    /// Removes the path of `slot` for `prefix`, if any.
    fn withdraw_one<P: Prefix>(&mut self, slot: u16, prefix: P) {
        let (ctx, tables) = self.decision_parts(None);
        let table = P::table(tables);
        let h = table.hasher.hash_one(prefix.hkey());
        let Ok(mut o) = table.map.find_entry(h, |e| e.prefix == prefix) else {
            return;
        };
        let e = o.get_mut();
        let Some(i) = e.paths.as_slice().iter().position(|p| p.peer == slot) else {
            return;
        };
        let Some(&gone) = e.paths.as_slice().get(i) else {
            return;
        };
        if let PathList::One(_) = e.paths {
            // The only path: the FIB loses the prefix if it had it, no
            // need to resolve anything.
            let had = e.nbest > 0;
            o.remove();
            if had {
                let gone = FibDelta {
                    was_empty: false,
                    view: FibView::None,
                };
                self.after_change(prefix.into(), Some(gone), true);
            }
            self.release_path_refs(slot, gone);
            return;
        }
        let old_set = set_of(e.paths.as_slice(), e.nbest);
        let old_best = best_key(e.paths.as_slice(), e.nbest);
        e.paths.remove(i);
        e.nbest = ctx.decide(e.paths.as_mut_slice());
        let fib = ctx.fib_change(&old_set, e.paths.as_slice(), e.nbest);
        let new_best = best_key(e.paths.as_slice(), e.nbest);
        self.after_change(prefix.into(), fib, old_best != new_best);
        self.release_path_refs(slot, gone);
    }

    /// Drops the references of a removed path and counts it out.
    fn release_path_refs(&mut self, slot: u16, gone: Path) {
        self.release_attrs(gone.pre);
        self.release_attrs(gone.post);
        if let Some(peer) = self.peer_mut(slot) {
            peer.received = peer.received.saturating_sub(1);
            peer.accepted = peer
                .accepted
                .saturating_sub(u64::from(gone.state == PathState::Usable));
        }
    }

    /// Records the FIB change and marks the prefix for re-advertisement.
    /// `fib` is the new FIB view when it differs from the old one.
    fn after_change(&mut self, prefix: IpNet, fib: Option<FibDelta>, best_changed: bool) {
        if let Some(FibDelta { was_empty, view }) = fib {
            if !self.is_originated(prefix) {
                let kind = match (&view, was_empty) {
                    (FibView::None, _) => events::RouteEventKind::Removed,
                    (_, true) => events::RouteEventKind::Added,
                    (_, false) => events::RouteEventKind::Changed,
                };
                self.learned_event(prefix, kind, &view);
                let change = view.into_change(prefix, &mut self.hop_sets);
                self.push_fib(change);
            }
        }
        if best_changed {
            for peer in self.peers.iter_mut().flatten() {
                if peer.exports_learned() && !peer.closing && !peer.stale {
                    peer.dirty.insert(prefix);
                }
            }
        }
    }

    fn push_fib(&mut self, change: RouteChange) {
        self.fib.push(change);
    }

    /// Pending FIB changes, at most one per prefix, oldest first.
    pub fn take_fib_changes(&mut self) -> Vec<RouteChange> {
        self.fib.take_all()
    }

    /// Pending FIB changes in chunks of at most `max`, oldest first, each
    /// owning only its own memory.
    pub fn take_fib_chunks(&mut self, max: usize, out: &mut impl Extend<Vec<RouteChange>>) {
        self.fib.take_chunks(max, out);
        self.fib.shrink(4 * max);
    }

    /// Number of FIB changes waiting.
    pub fn pending_fib(&self) -> usize {
        self.fib.len()
    }

    /// Whether we originate exactly this prefix, from the configuration
    /// or at run time (then a learned path for it is not installed: our
    /// own route wins).
    pub fn is_originated(&self, prefix: IpNet) -> bool {
        self.config_originates(prefix) || self.runtime.contains_key(&prefix)
    }

    /// Whether the configuration's `originate:` has exactly this prefix.
    pub fn config_originates(&self, prefix: IpNet) -> bool {
        match prefix {
            IpNet::V4(p) => self.config.originate_v4.contains(&p),
            IpNet::V6(p) => self.config.originate_v6.contains(&p),
        }
    }

    /// Cease/1 (RFC 4486 §4) when a peer's accepted prefixes exceed its
    /// `max-prefix`; its routes go at once and further input is ignored.
    fn check_max_prefix(&mut self, slot: u16) {
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        let Some(limit) = peer.neighbor.as_ref().and_then(|n| n.max_prefix) else {
            return;
        };
        if peer.closing || peer.accepted <= u64::from(limit) {
            return;
        }
        let family = peer
            .session
            .families
            .first()
            .copied()
            .unwrap_or(Family::Ipv4Unicast);
        let mut data = Vec::with_capacity(7);
        data.extend_from_slice(&family.afi().to_be_bytes());
        data.push(family.safi());
        data.extend_from_slice(&limit.to_be_bytes());
        tracing::warn!(
            peer = %peer.session.peer_address,
            limit,
            accepted = peer.accepted,
            "maximum prefix count exceeded, closing session (Cease/1)"
        );
        peer.closing = true;
        peer.out.push(PeerOutput::Close(wire::Notification {
            code: 6,
            subcode: 1,
            data,
        }));
        self.begin_drain(slot);
    }
}

impl Rib {
    /// Hands queued messages to the sessions without waiting; returns true
    /// while some session's channel is full and messages wait.
    pub fn drain_outputs(&mut self) -> bool {
        let mut waiting = false;
        for peer in self.peers.iter_mut().flatten() {
            if peer.out.is_empty() {
                continue;
            }
            let Some(tx) = &peer.outbound else {
                continue;
            };
            let mut sent = 0;
            for msg in peer.out.iter_mut() {
                let m = std::mem::replace(msg, PeerOutput::Messages(Vec::new()));
                match tx.try_send(m) {
                    Ok(()) => sent += 1,
                    Err(tokio::sync::mpsc::error::TrySendError::Full(m)) => {
                        *msg = m;
                        waiting = true;
                        break;
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        sent = usize::MAX;
                        break;
                    }
                }
            }
            if sent == usize::MAX {
                peer.out.clear();
            } else {
                peer.out.drain(..sent);
            }
        }
        waiting
    }
}

/// Our ASN anywhere in the path: a loop (RFC 4271 §9.1.2).
fn peer_loop(a: &wire::PathAttributes, asn: u32) -> bool {
    let in_path = |p: &Option<wire::AsPath>| {
        p.as_ref().is_some_and(|p| {
            p.segments.iter().any(|s| match s {
                wire::AsSegment::Set(v)
                | wire::AsSegment::Sequence(v)
                | wire::AsSegment::ConfedSequence(v)
                | wire::AsSegment::ConfedSet(v) => v.contains(&asn),
            })
        })
    };
    in_path(&a.as_path) || in_path(&a.as4_path)
}

#[cfg(test)]
pub(crate) mod tests;
