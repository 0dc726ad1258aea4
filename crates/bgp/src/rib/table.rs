//! The RIB's data layout: a path (12 bytes) and why it may not be a
//! candidate, the paths of one prefix (inline when there is one), one
//! hash table per family keyed by the prefix as plain integers, and
//! compact prefix sets for what each peer was sent.

use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use smallvec::SmallVec;
use wire::Family;

use crate::policy::RejectReason;
use crate::store::Id;

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

    pub(crate) fn from_reject(r: RejectReason) -> PathState {
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
pub(crate) const NO_ATTRS: Id = Id(u32::MAX);

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
    pub(crate) fn as_mut_slice(&mut self) -> &mut [Path] {
        match self {
            PathList::One(p) => std::slice::from_mut(p),
            PathList::Many(v) => v,
        }
    }
    pub(crate) fn push(&mut self, path: Path) {
        match self {
            PathList::One(p) => *self = PathList::Many(Box::new(SmallVec::from_buf([*p, path]))),
            PathList::Many(v) => v.push(path),
        }
    }
    /// Removes the path at `i`; returns false when the list would become
    /// empty (the caller removes the whole entry instead).
    pub(crate) fn remove(&mut self, i: usize) -> bool {
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
