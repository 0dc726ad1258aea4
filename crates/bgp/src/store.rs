//! Hash-consed, reference-counted value store.
//!
//! A full table holds about 900k routes but only a few hundred thousand
//! distinct attribute sets, and a handful of distinct next hops. Each
//! distinct value is stored once and routes refer to it by a 4-byte id, so
//! a route costs no heap allocation of its own. Ids are plain indices: the
//! single RIB task owns the store, so no atomics are needed.

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

/// Index of a value in a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u32);

struct Slot<T> {
    value: Option<T>,
    refs: u32,
    /// Kept so that releasing and rehashing never hash the value again.
    hash: u64,
}

/// Interns values of type `T`; equal values share one id.
pub struct Store<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<T: Hash + Eq> Default for Store<T> {
    fn default() -> Self {
        Store {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<T: Hash + Eq> Store<T> {
    /// Returns the id of `value`, adding it if new; takes one reference.
    pub fn intern(&mut self, value: T) -> Id {
        let hash = self.hasher.hash_one(&value);
        let slots = &self.slots;
        let entry = self.index.entry(
            hash,
            |&i| slot_value(slots, i) == Some(&value),
            |&i| slots.get(i as usize).map_or(0, |s| s.hash),
        );
        match entry {
            Entry::Occupied(o) => {
                let i = *o.get();
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    slot.refs = slot.refs.saturating_add(1);
                }
                Id(i)
            }
            Entry::Vacant(v) => {
                let i = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.slots.get_mut(i as usize) {
                            *slot = Slot {
                                value: Some(value),
                                refs: 1,
                                hash,
                            };
                        }
                        i
                    }
                    None => {
                        let i = self.slots.len() as u32;
                        self.slots.push(Slot {
                            value: Some(value),
                            refs: 1,
                            hash,
                        });
                        i
                    }
                };
                v.insert(i);
                Id(i)
            }
        }
    }

    /// Takes one more reference to `id`.
    pub fn retain(&mut self, id: Id) {
        if let Some(slot) = self.slots.get_mut(id.0 as usize) {
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
        let slot = self.slots.get_mut(id.0 as usize)?;
        slot.refs = slot.refs.saturating_sub(n);
        if slot.refs > 0 {
            return None;
        }
        let value = slot.value.take()?;
        let hash = slot.hash;
        if let Ok(o) = self.index.find_entry(hash, |&i| i == id.0) {
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
        self.slots.get(id.0 as usize).map_or(0, |s| s.refs)
    }
}

fn slot_value<T>(slots: &[Slot<T>], i: u32) -> Option<&T> {
    slots.get(i as usize).and_then(|s| s.value.as_ref())
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
}
