//! The RIB: Adj-RIB-In of every peer and the Loc-RIB in one table per
//! family, the RFC 4271 §9.1 decision process with ECMP, and the changes
//! it makes to the FIB.
//!
//! Layout: one hash table per family maps a prefix to the list of paths
//! received for it (one per peer, pre-policy and post-policy attributes as
//! 4-byte ids into a hash-consed [`store::Store`]). The list is kept in
//! decision order: the best path first, then the rest of the multipath set
//! (`Entry::nbest` paths in all), then the others. A prefix with one path
//! costs one table slot and no heap allocation.
//!
//! [`Rib`] is a plain data structure (no tasks, no I/O); [`spawn_rib`]
//! wraps it in the task that owns it.
//!
//! Where things are: ingestion, withdrawals, peers and FIB changes here;
//! `decision` (best path, ECMP, FIB view), `nexthop` (which gateway a next
//! hop gives), `store` and `attrs` (interned attribute sets), `reconfig`
//! (soft reconfiguration), `status` (what `via6ctl` shows), `task` (the
//! owning task and its channels). Advertising is in `crate::outbound`,
//! policy evaluation in `crate::policy`.

/// The decision context over the RIB's stores. A macro rather than a
/// method so that `self.tables` stays free to be borrowed mutably beside it.
macro_rules! decision_ctx {
    ($rib:expr, $hint:expr) => {
        Ctx {
            attrs: &$rib.attrs,
            nexthops: &$rib.nexthops,
            peers: &$rib.peers,
            max_paths: $rib.config.max_paths,
            relax: $rib.config.multipath_relax,
            hint: $hint,
        }
    };
}

pub mod attrs;
mod decision;
mod fibq;
mod nexthop;
mod reconfig;
mod stale;
mod status;
pub mod store;
mod task;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use smallvec::SmallVec;
use wire::{Family, NextHop, Update};

use crate::config::{NeighborConfig, PolicyRef, SpeakerConfig};
use crate::events::{EstablishedSession, PeerId, PeerOutput, RouteChange, RouteNextHop};
use crate::policy::{self, Direction, RejectReason, Verdict};
use attrs::Attrs;
use store::{Id, Store};

pub(crate) use decision::{best_key, set_of, Ctx, FibView};
pub use nexthop::resolve_next_hop;
pub use status::{PeerCounts, RouteFilter, RouteStatus};
pub use task::{spawn_rib, RibHandle};

/// Default LOCAL_PREF when a route carries none (RFC 4271 §5.1.5 leaves it
/// to the implementation; 100 is what every router uses).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Why a received path is not a candidate for the Loc-RIB, or `Usable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PathState {
    Usable,
    /// Our own ASN is in the AS path (RFC 4271 §9.1.2).
    AsLoop,
    /// Next hop `::` or `0.0.0.0`: never installable.
    NextHopUnspecified,
    /// Multicast or broadcast next hop.
    NextHopMulticast,
    /// The next hop is one of our own addresses.
    NextHopSelf,
    /// Only a link-local next hop, and the session has no interface to
    /// scope it with.
    NextHopLinkLocalNoInterface,
    PolicyNoPolicyEbgp,
    PolicyDenyAll,
    PolicyNotOriginated,
    PolicyNamed,
    PolicyUnknown,
}

impl PathState {
    pub fn as_str(self) -> &'static str {
        match self {
            PathState::Usable => "usable",
            PathState::AsLoop => "AS path contains our ASN (loop)",
            PathState::NextHopUnspecified => "next hop is unspecified (:: or 0.0.0.0)",
            PathState::NextHopMulticast => "next hop is multicast or broadcast",
            PathState::NextHopSelf => "next hop is our own address",
            PathState::NextHopLinkLocalNoInterface => {
                "link-local next hop but the session has no interface"
            }
            PathState::PolicyNoPolicyEbgp => RejectReason::NoPolicyEbgp.as_str(),
            PathState::PolicyDenyAll => RejectReason::DenyAll.as_str(),
            PathState::PolicyNotOriginated => RejectReason::NotOriginated.as_str(),
            PathState::PolicyNamed => RejectReason::Named.as_str(),
            PathState::PolicyUnknown => RejectReason::UnknownPolicy.as_str(),
        }
    }

    fn from_reject(r: RejectReason) -> PathState {
        match r {
            RejectReason::NoPolicyEbgp => PathState::PolicyNoPolicyEbgp,
            RejectReason::DenyAll => PathState::PolicyDenyAll,
            RejectReason::NotOriginated => PathState::PolicyNotOriginated,
            RejectReason::Named => PathState::PolicyNamed,
            RejectReason::UnknownPolicy => PathState::PolicyUnknown,
        }
    }
}

/// No attribute id (a path rejected before policy, or by it).
const NO_ATTRS: Id = Id(u32::MAX);

/// One path in Adj-RIB-In: 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Path {
    /// Index into `Rib::peers`.
    pub(crate) peer: u16,
    pub(crate) state: PathState,
    /// Attributes as received (kept for soft reconfiguration).
    pub(crate) pre: Id,
    /// Attributes after import policy; `NO_ATTRS` unless `state` is
    /// `Usable`.
    pub(crate) post: Id,
}

/// The paths of one prefix. Usually one, so that case is inline.
#[derive(Debug)]
pub(crate) enum PathList {
    One(Path),
    /// Boxed so that the list stays one pointer wide and an entry fits
    /// 24 bytes; two paths (two upstreams) live in that one allocation.
    Many(Box<SmallVec<[Path; 2]>>),
}

impl PathList {
    pub(crate) fn as_slice(&self) -> &[Path] {
        match self {
            PathList::One(p) => std::slice::from_ref(p),
            PathList::Many(v) => v,
        }
    }
    fn as_mut_slice(&mut self) -> &mut [Path] {
        match self {
            PathList::One(p) => std::slice::from_mut(p),
            PathList::Many(v) => v,
        }
    }
    fn push(&mut self, path: Path) {
        match self {
            PathList::One(p) => *self = PathList::Many(Box::new(SmallVec::from_buf([*p, path]))),
            PathList::Many(v) => v.push(path),
        }
    }
    /// Removes the path at `i`; returns false when the list would become
    /// empty (the caller removes the whole entry instead).
    fn remove(&mut self, i: usize) -> bool {
        match self {
            PathList::One(_) => false,
            PathList::Many(v) => {
                if i < v.len() {
                    v.remove(i);
                }
                if v.len() == 1 {
                    if let Some(p) = v.first() {
                        *self = PathList::One(*p);
                    }
                }
                true
            }
        }
    }
}

pub(crate) struct Entry<P> {
    pub(crate) paths: PathList,
    pub(crate) prefix: P,
    /// Leading paths that form the installed multipath set (0 = no usable
    /// path).
    pub(crate) nbest: u8,
}

/// A prefix type with its own table.
pub trait Prefix: Copy + Eq + Hash + std::fmt::Debug + Into<IpNet> {
    const FAMILY: Family;
    /// What the table hashes: the prefix as plain integers (cheaper than
    /// the derived byte-wise hash).
    type HKey: Hash;
    fn hkey(self) -> Self::HKey;
    fn table(t: &mut Tables) -> &mut Table<Self>;
    fn table_ref(t: &Tables) -> &Table<Self>;
    fn normalize(self) -> Self;
}

impl Prefix for Ipv4Net {
    const FAMILY: Family = Family::Ipv4Unicast;
    type HKey = u64;
    fn hkey(self) -> u64 {
        u64::from(u32::from(self.addr())) << 8 | u64::from(self.prefix_len())
    }
    fn table(t: &mut Tables) -> &mut Table<Self> {
        &mut t.v4
    }
    fn table_ref(t: &Tables) -> &Table<Self> {
        &t.v4
    }
    fn normalize(self) -> Self {
        self.trunc()
    }
}

impl Prefix for Ipv6Net {
    const FAMILY: Family = Family::Ipv6Unicast;
    type HKey = (u128, u8);
    fn hkey(self) -> (u128, u8) {
        (u128::from(self.addr()), self.prefix_len())
    }
    fn table(t: &mut Tables) -> &mut Table<Self> {
        &mut t.v6
    }
    fn table_ref(t: &Tables) -> &Table<Self> {
        &t.v6
    }
    fn normalize(self) -> Self {
        self.trunc()
    }
}

/// One family's prefixes.
pub struct Table<P> {
    pub(crate) map: HashTable<Entry<P>>,
    pub(crate) hasher: DefaultHashBuilder,
}

impl<P: Prefix> Default for Table<P> {
    fn default() -> Self {
        Table {
            map: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<P: Prefix> Table<P> {
    pub(crate) fn get(&self, prefix: &P) -> Option<&Entry<P>> {
        let h = self.hasher.hash_one(prefix.hkey());
        self.map.find(h, |e| e.prefix == *prefix)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Both families.
#[derive(Default)]
pub struct Tables {
    pub v4: Table<Ipv4Net>,
    pub v6: Table<Ipv6Net>,
}

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

/// A set of prefixes kept as plain integers: 8 bytes per IPv4 prefix
/// instead of 24 for `IpNet`, which matters for a peer sent a full table.
#[derive(Debug, Default)]
pub(crate) struct PrefixSet {
    v4: hashbrown::HashSet<u64>,
    v6: hashbrown::HashSet<(u128, u8)>,
}

impl PrefixSet {
    pub(crate) fn insert(&mut self, p: IpNet) -> bool {
        match p {
            IpNet::V4(n) => self.v4.insert(n.hkey()),
            IpNet::V6(n) => self.v6.insert(n.hkey()),
        }
    }
    pub(crate) fn remove(&mut self, p: &IpNet) -> bool {
        match p {
            IpNet::V4(n) => self.v4.remove(&n.hkey()),
            IpNet::V6(n) => self.v6.remove(&n.hkey()),
        }
    }
    pub(crate) fn contains(&self, p: &IpNet) -> bool {
        match p {
            IpNet::V4(n) => self.v4.contains(&n.hkey()),
            IpNet::V6(n) => self.v6.contains(&n.hkey()),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = IpNet> + '_ {
        let v4 = self.v4.iter().filter_map(|&k| {
            let addr = std::net::Ipv4Addr::from((k >> 8) as u32);
            Ipv4Net::new(addr, (k & 0xff) as u8).ok().map(IpNet::V4)
        });
        let v6 = self.v6.iter().filter_map(|&(a, l)| {
            Ipv6Net::new(std::net::Ipv6Addr::from(a), l)
                .ok()
                .map(IpNet::V6)
        });
        v4.chain(v6)
    }
}

impl Extend<IpNet> for PrefixSet {
    fn extend<I: IntoIterator<Item = IpNet>>(&mut self, iter: I) {
        for p in iter {
            self.insert(p);
        }
    }
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

/// The paths of a peer that went away, still to be removed.
pub(crate) struct Drain {
    slot: u16,
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
    /// The session is gone: free the slot when done.
    unmapped: bool,
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
        }
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
        decision_ctx!(self, None)
    }

    fn slot(&self, id: PeerId) -> Option<u16> {
        self.slots.get(&id).copied()
    }

    fn peer_mut(&mut self, slot: u16) -> Option<&mut Peer> {
        self.peers.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// A session reached Established.
    pub fn peer_up(
        &mut self,
        session: EstablishedSession,
        outbound: Option<tokio::sync::mpsc::Sender<PeerOutput>>,
    ) {
        let id = session.peer;
        if self.slots.contains_key(&id) {
            self.begin_peer_down(id);
        }
        let neighbor = self
            .neighbor_index(id, session.peer_address)
            .and_then(|i| self.config.neighbors.get(i))
            .cloned()
            .map(Arc::new);
        let peer = Peer {
            id,
            session,
            neighbor,
            received: 0,
            accepted: 0,
            eor: Vec::new(),
            closing: false,
            stale: false,
            long_lived_stale: false,
            out: Vec::new(),
            outbound,
            advertised: PrefixSet::default(),
            dirty: PrefixSet::default(),
            dump: Vec::new(),
            dump_eor: Vec::new(),
        };
        self.warn_default_deny(&peer);
        let slot = match self.peers.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.peers.push(None);
                self.peers.len() - 1
            }
        };
        if let Some(s) = self.peers.get_mut(slot) {
            *s = Some(peer);
        }
        self.slots.insert(id, slot as u16);
        if self.stale.iter().any(|s| s.peer == id) {
            self.stale_peer_returned(id, slot as u16, std::time::Instant::now());
        }
        self.initial_dump(slot as u16);
    }

    /// RFC 8212: say once per eBGP neighbour that no policy means deny.
    fn warn_default_deny(&mut self, peer: &Peer) {
        if !peer.session.ebgp {
            return;
        }
        let (import, export) = peer
            .neighbor
            .as_ref()
            .map_or((&PolicyRef::Default, &PolicyRef::Default), |n| {
                (&n.import, &n.export)
            });
        let import_default = *import == PolicyRef::Default;
        let export_default = *export == PolicyRef::Default;
        if !(import_default || export_default) || !self.warned.insert(peer.id) {
            return;
        }
        let what = match (import_default, export_default) {
            (true, true) => {
                "no import and no export policy: nothing is accepted from it or sent to it"
            }
            (true, false) => "no import policy: nothing is accepted from it",
            _ => "no export policy: nothing is sent to it",
        };
        tracing::warn!(
            peer = %peer.session.peer_address,
            "eBGP neighbour has {what} (RFC 8212 default deny); set `import:`/`export:` \
             to accept-all or a named policy to change this"
        );
    }

    /// The session left Established: every path from it goes (RFC 4271
    /// §9.1.3 / §8.2.2). Done at once; the task uses
    /// [`Rib::begin_peer_down`] and [`Rib::drain`] to spread the work.
    pub fn peer_down(&mut self, id: PeerId) {
        self.begin_peer_down(id);
        self.drain(usize::MAX);
    }

    /// The session left Established: its paths stop being candidates now
    /// and leave the table over the next [`Rib::drain`] calls, so that a
    /// full table going away never queues a million FIB changes at once.
    /// A new session of the same peer gets a fresh slot meanwhile.
    pub fn begin_peer_down(&mut self, id: PeerId) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if let Some(peer) = self.peer_mut(slot) {
            peer.closing = true;
        }
        self.drain_families(slot, &[], true);
    }

    /// Makes `slot`'s paths ineligible and lists them for removal.
    fn begin_drain(&mut self, slot: u16) {
        if let Some(peer) = self.peer_mut(slot) {
            peer.closing = true;
        }
        self.drain_families(slot, &[Family::Ipv4Unicast, Family::Ipv6Unicast], false);
    }

    /// Lists `slot`'s paths of `families` (of every family with
    /// `free_slot`) for removal over the next [`Rib::drain`] calls; with
    /// `free_slot` the slot is freed once they are gone.
    fn drain_families(&mut self, slot: u16, families: &[Family], free_slot: bool) {
        let wants = |f: Family| free_slot || families.contains(&f);
        let v4 = slot_prefixes(&self.tables.v4, slot, wants(Family::Ipv4Unicast));
        let v6 = slot_prefixes(&self.tables.v6, slot, wants(Family::Ipv6Unicast));
        if let Some(d) = self.draining.iter_mut().find(|d| d.slot == slot) {
            d.v4.extend(v4);
            d.v6.extend(v6);
            d.unmapped |= free_slot;
        } else if free_slot || !v4.is_empty() || !v6.is_empty() {
            self.draining.push(Drain {
                slot,
                v4,
                v6,
                unmapped: free_slot,
            });
        }
    }

    /// Whether some peer's paths are still being removed.
    pub fn draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// Removes up to `budget` paths of peers that went away; returns how
    /// many were removed.
    pub fn drain(&mut self, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(d) = self.draining.last_mut() else {
                break;
            };
            let slot = d.slot;
            if let Some(p) = d.v4.pop() {
                self.withdraw_one(slot, p);
            } else if let Some(p) = d.v6.pop() {
                self.withdraw_one(slot, p);
            } else {
                let unmapped = d.unmapped;
                self.draining.pop();
                if unmapped {
                    if let Some(s) = self.peers.get_mut(slot as usize) {
                        *s = None;
                    }
                }
                continue;
            }
            done += 1;
        }
        done
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
        let stale_of = |f: Family| match f {
            Family::Ipv4Unicast => stale4.clone(),
            Family::Ipv6Unicast => stale6.clone(),
        };
        for p in &update.withdrawn {
            self.withdraw_with_stale(slot, IpNet::V4(*p), &stale4);
        }
        let a = &update.attributes;
        if let Some(mp) = &a.mp_unreach {
            for p in &mp.withdrawn {
                self.withdraw_with_stale(slot, *p, &stale_of(mp.family));
            }
        }
        let classic_nh = a.next_hop.map(NextHop::V4);
        if treat_as_withdraw || (classic_nh.is_none() && !update.nlri.is_empty()) {
            for p in &update.nlri {
                self.withdraw_with_stale(slot, IpNet::V4(*p), &stale4);
            }
            if let Some(mp) = &a.mp_reach {
                for p in &mp.nlri {
                    self.withdraw_with_stale(slot, *p, &stale_of(mp.family));
                }
            }
        } else {
            if let Some(nh) = classic_nh.filter(|_| !update.nlri.is_empty()) {
                let v4 = update.nlri.iter().map(|p| IpNet::V4(*p));
                self.announce(slot, nh, a, v4, &stale4);
            }
            if let Some(mp) = &a.mp_reach {
                let nh = mp.next_hop.normalize();
                self.announce(slot, nh, a, mp.nlri.iter().copied(), &stale_of(mp.family));
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
        resolved: Option<RouteNextHop>,
        stale: &[u16],
    ) {
        let mut released: [Id; 2] = [NO_ATTRS; 2];
        let mut stale_replaced = None;
        let (mut d_received, mut d_accepted) = (1i64, i64::from(path.state == PathState::Usable));
        let ctx = decision_ctx!(self, resolved.map(|r| (path.peer, path.pre, r)));
        let table = P::table(&mut self.tables);
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
                let fib = (new_fib != FibView::None).then_some(new_fib);
                (fib, None, new_best)
            }
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                let old_set = set_of(e.paths.as_slice(), e.nbest);
                let old_best = best_key(e.paths.as_slice(), e.nbest);
                let paths = e.paths.as_slice();
                let existing = paths.iter().position(|p| p.peer == path.peer).or_else(|| {
                    (!stale.is_empty())
                        .then(|| paths.iter().position(|p| stale.contains(&p.peer)))
                        .flatten()
                });
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
        let ctx = decision_ctx!(self, None);
        let table = P::table(&mut self.tables);
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
                self.after_change(prefix.into(), Some(FibView::None), true);
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
    fn after_change(&mut self, prefix: IpNet, fib: Option<FibView>, best_changed: bool) {
        if let Some(view) = fib {
            if !self.is_originated(prefix) {
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

    /// Whether we originate exactly this prefix (then a learned path for it
    /// is not installed: our own route wins).
    pub fn is_originated(&self, prefix: IpNet) -> bool {
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
