//! Hash-consed, reference-counted value store.
//!
//! A full table holds about 900k routes but only a few hundred thousand
//! distinct attribute sets, and a handful of distinct next hops. Each
//! distinct value is stored once and routes refer to it by a 4-byte id, so
//! a route costs no heap allocation of its own. Ids are plain indices: the
//! single RIB task owns the store, so no atomics are needed.
//!
//! Layout, for the 360k attribute sets of a full table: the slots live in
//! fixed chunks of [`CHUNK`] rather than one doubling `Vec`, which at 360k
//! sets held room for 524k (29 MB where 17 MB are used) and needed old and
//! new buffers at once while growing; and a slot keeps a 32-bit hash, so
//! that a 40-byte value makes a 48-byte slot instead of 56.

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

/// Index of a value in a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u32);

struct Slot<T> {
    value: Option<T>,
    refs: u32,
    /// Kept so that releasing and rehashing never hash the value again;
    /// the table is given [`widen`] of it.
    hash: u32,
}

/// Slots per chunk (a power of two). The first chunk grows as a `Vec`
/// does, so a small store stays small; later ones are allocated full size
/// at once and never move.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// The 64-bit hash folded to the 32 bits a slot keeps.
fn narrow(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

/// What the index is given for a slot's 32-bit hash: the table takes its
/// bucket from the low bits and its 7-bit tag from the top ones, so the
/// same 32 bits go in both halves (independent up to 2^25 buckets).
fn widen(h: u32) -> u64 {
    u64::from(h) << 32 | u64::from(h)
}

/// Slot storage in chunks of [`CHUNK`]; every chunk but the last is full.
struct Slots<T> {
    chunks: Vec<Vec<Slot<T>>>,
}

impl<T> Slots<T> {
    fn get(&self, i: u32) -> Option<&Slot<T>> {
        let i = i as usize;
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }
    fn get_mut(&mut self, i: u32) -> Option<&mut Slot<T>> {
        let i = i as usize;
        self.chunks
            .get_mut(i >> CHUNK_BITS)?
            .get_mut(i & (CHUNK - 1))
    }
    fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |c| (self.chunks.len() - 1) * CHUNK + c.len())
    }
    /// Appends `slot`; returns its index.
    fn push(&mut self, slot: Slot<T>) -> u32 {
        let i = self.len() as u32;
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(slot),
            _ => {
                let mut c = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
                c.push(slot);
                self.chunks.push(c);
            }
        }
        i
    }
}

/// Interns values of type `T`; equal values share one id.
pub struct Store<T> {
    slots: Slots<T>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<T: Hash + Eq> Default for Store<T> {
    fn default() -> Self {
        Store {
            slots: Slots { chunks: Vec::new() },
            free: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<T: Hash + Eq> Store<T> {
    /// Returns the id of `value`, adding it if new; takes one reference.
    pub fn intern(&mut self, value: T) -> Id {
        let hash = narrow(self.hasher.hash_one(&value));
        let slots = &self.slots;
        let entry = self.index.entry(
            widen(hash),
            |&i| slot_value(slots, i) == Some(&value),
            |&i| slots.get(i).map_or(0, |s| widen(s.hash)),
        );
        match entry {
            Entry::Occupied(o) => {
                let i = *o.get();
                if let Some(slot) = self.slots.get_mut(i) {
                    slot.refs = slot.refs.saturating_add(1);
                }
                Id(i)
            }
            Entry::Vacant(v) => {
                let i = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.slots.get_mut(i) {
                            *slot = Slot {
                                value: Some(value),
                                refs: 1,
                                hash,
                            };
                        }
                        i
                    }
                    None => self.slots.push(Slot {
                        value: Some(value),
                        refs: 1,
                        hash,
                    }),
                };
                v.insert(i);
                Id(i)
            }
        }
    }

    /// Takes one more reference to `id`.
    pub fn retain(&mut self, id: Id) {
        if let Some(slot) = self.slots.get_mut(id.0) {
            slot.refs = slot.refs.saturating_add(1);
        }
    }

    /// Drops one reference; returns the value when it was the last one so
    /// the caller can release what the value itself refers to.
    pub fn release(&mut self, id: Id) -> Option<T> {
        self.release_n(id, 1)
    }

    /// Drops `n` references at once (a peer going down releases many
    /// paths that share a value).
    pub fn release_n(&mut self, id: Id, n: u32) -> Option<T> {
        let slot = self.slots.get_mut(id.0)?;
        slot.refs = slot.refs.saturating_sub(n);
        if slot.refs > 0 {
            return None;
        }
        let value = slot.value.take()?;
        let hash = slot.hash;
        if let Ok(o) = self.index.find_entry(widen(hash), |&i| i == id.0) {
            o.remove();
        }
        self.free.push(id.0);
        Some(value)
    }

    /// The value behind `id`. Ids handed out by this store and not yet
    /// released always resolve.
    pub fn get(&self, id: Id) -> Option<&T> {
        slot_value(&self.slots, id.0)
    }

    /// Number of distinct live values.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when the store holds no value.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// References held on `id` (0 when free); for tests and accounting.
    pub fn refs(&self, id: Id) -> u32 {
        self.slots.get(id.0).map_or(0, |s| s.refs)
    }
}

fn slot_value<T>(slots: &Slots<T>, i: u32) -> Option<&T> {
    slots.get(i).and_then(|s| s.value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_an_id_and_free_on_last_release() {
        let mut s: Store<String> = Store::default();
        let a = s.intern("a".to_string());
        let b = s.intern("a".to_string());
        assert_eq!(a, b);
        assert_eq!(s.refs(a), 2);
        let c = s.intern("c".to_string());
        assert_ne!(a, c);
        assert_eq!(s.len(), 2);
        assert_eq!(s.release(a), None);
        assert_eq!(s.release(a).as_deref(), Some("a"));
        assert_eq!(s.len(), 1);
        assert!(s.get(a).is_none());
        // The freed slot is reused, and lookups still find "c".
        let d = s.intern("d".to_string());
        assert_eq!(d, a);
        assert_eq!(s.intern("c".to_string()), c);
        assert_eq!(s.get(c).map(String::as_str), Some("c"));
    }

    /// Ids run on across chunk boundaries; every value stays reachable.
    #[test]
    fn values_past_the_first_chunks_resolve() {
        let mut s: Store<u64> = Store::default();
        let n = 2 * CHUNK as u64 + 7;
        let ids: Vec<Id> = (0..n).map(|v| s.intern(v)).collect();
        for (v, id) in (0..n).zip(&ids) {
            assert_eq!(id.0 as u64, v);
            assert_eq!(s.get(*id), Some(&v));
            assert_eq!(s.intern(v), *id);
        }
        assert_eq!(s.len(), n as usize);
        assert_eq!(s.release_n(ids[CHUNK + 1], 2), Some(CHUNK as u64 + 1));
        assert_eq!(s.get(ids[CHUNK + 1]), None);
        assert_eq!(s.intern(u64::MAX), ids[CHUNK + 1]);
        assert_eq!(s.slots.chunks.len(), 3);
    }

    /// A slot of the RIB's attribute sets is 48 bytes.
    #[test]
    fn an_attribute_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Slot<crate::attrs::Attrs>>(), 48);
    }
}
