//! The owner's per-prefix map, keyed compactly: a full IPv4 table is a
//! million entries, so an IPv4 prefix is a 5-byte key (address and
//! length) instead of an 18-byte `IpNet`, which also hashes in one step.
//! The key has alignment 1, like the planner's `Route`, so that a slot of
//! the IPv4 table is 16 bytes: 17 MB for a full table's 1M buckets
//! (with the 8-byte aligned key and 4-byte aligned state it was 24 bytes,
//! 26 MB).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Seeded per process, so peers cannot aim prefixes at one bucket.
pub(crate) type FastHash = foldhash::fast::RandomState;

/// An IPv4 prefix as a key: the address's bytes and the length, 5 bytes
/// with alignment 1; hashed as one integer.
#[derive(Clone, Copy, PartialEq, Eq)]
struct V4Key([u8; 5]);

impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, len] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, len, 0, 0, 0]));
    }
}

impl V4Key {
    fn new(p: &Ipv4Net) -> V4Key {
        let [a, b, c, d] = p.addr().octets();
        V4Key([a, b, c, d, p.prefix_len()])
    }

    fn net(self) -> IpNet {
        let [a, b, c, d, len] = self.0;
        // The key came from a valid prefix, so the length fits; the
        // fallback is never taken.
        Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len)
            .map_or(IpNet::V4(Ipv4Net::default()), IpNet::V4)
    }
}

/// Prefix -> `V`, one table per family.
pub(crate) struct RouteMap<V> {
    v4: HashMap<V4Key, V, FastHash>,
    v6: HashMap<Ipv6Net, V, FastHash>,
}

impl<V> Default for RouteMap<V> {
    fn default() -> Self {
        RouteMap {
            v4: HashMap::with_hasher(FastHash::default()),
            v6: HashMap::with_hasher(FastHash::default()),
        }
    }
}

impl<V> RouteMap<V> {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(crate) fn get(&self, p: &IpNet) -> Option<&V> {
        match p {
            IpNet::V4(n) => self.v4.get(&V4Key::new(n)),
            IpNet::V6(n) => self.v6.get(n),
        }
    }

    pub(crate) fn get_mut(&mut self, p: &IpNet) -> Option<&mut V> {
        match p {
            IpNet::V4(n) => self.v4.get_mut(&V4Key::new(n)),
            IpNet::V6(n) => self.v6.get_mut(n),
        }
    }

    pub(crate) fn insert(&mut self, p: IpNet, v: V) -> Option<V> {
        match p {
            IpNet::V4(n) => self.v4.insert(V4Key::new(&n), v),
            IpNet::V6(n) => self.v6.insert(n, v),
        }
    }

    /// The value for `p`, made with `new` if absent.
    pub(crate) fn get_or_insert(&mut self, p: IpNet, new: V) -> &mut V {
        match p {
            IpNet::V4(n) => self.v4.entry(V4Key::new(&n)).or_insert(new),
            IpNet::V6(n) => self.v6.entry(n).or_insert(new),
        }
    }

    pub(crate) fn remove(&mut self, p: &IpNet) -> Option<V> {
        match p {
            IpNet::V4(n) => self.v4.remove(&V4Key::new(n)),
            IpNet::V6(n) => self.v6.remove(n),
        }
    }

    /// Room for `n` more IPv6 (`v6`) or IPv4 prefixes: a batch of changes
    /// is nearly always one family.
    pub(crate) fn reserve(&mut self, n: usize, v6: bool) {
        if v6 {
            self.v6.reserve(n);
        } else {
            self.v4.reserve(n);
        }
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut V)> {
        self.v4
            .iter_mut()
            .map(|(k, v)| (k.net(), v))
            .chain(self.v6.iter_mut().map(|(k, v)| (IpNet::V6(*k), v)))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.v4.values().chain(self.v6.values())
    }

    /// Gives memory back once a table holds less than a quarter of its
    /// room (after a mass withdrawal).
    pub(crate) fn shrink_if_sparse(&mut self) {
        if self.v4.capacity() > 4096 && self.v4.len() * 4 < self.v4.capacity() {
            self.v4.shrink_to_fit();
        }
        if self.v6.capacity() > 4096 && self.v6.len() * 4 < self.v6.capacity() {
            self.v6.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_lengths_are_distinct_keys() {
        let mut m = RouteMap::default();
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "10.0.0.0/16".parse().unwrap();
        let c: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(m.insert(a, 1).is_none());
        assert!(m.insert(b, 2).is_none());
        assert!(m.insert(c, 3).is_none());
        assert_eq!(m.insert(a, 4), Some(1));
        assert_eq!(
            (m.get(&a), m.get(&b), m.get(&c)),
            (Some(&4), Some(&2), Some(&3))
        );
        *m.get_or_insert("192.0.2.0/24".parse().unwrap(), 0) += 5;
        assert_eq!(m.len(), 4);
        let mut all: Vec<(IpNet, i32)> = m.iter_mut().map(|(p, v)| (p, *v)).collect();
        all.sort();
        assert_eq!(all.first(), Some(&(a, 4)));
        assert!(all.contains(&("192.0.2.0/24".parse().unwrap(), 5)));
        assert_eq!(m.remove(&b), Some(2));
        assert_eq!(m.get(&b), None);
        assert_eq!(m.values().count(), 3);
    }

    #[test]
    fn an_ipv4_key_is_small() {
        assert_eq!(std::mem::size_of::<V4Key>(), 5);
        assert_eq!(std::mem::align_of::<V4Key>(), 1);
    }
}
