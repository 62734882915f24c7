//! A small bounded map for per-association caches (resolved names, rule verdicts).
//! When full it starts over: a flood of distinct keys costs lookups, never memory.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A map that never holds more than `cap` entries.
pub(crate) struct Bounded<K, V> {
    map: HashMap<K, V>,
    cap: usize,
}

impl<K: Hash + Eq, V: Copy> Bounded<K, V> {
    /// An empty map holding at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// The cached value for `k`.
    pub fn get<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(k).copied()
    }

    /// Caches `v` for `k`, first emptying the map when it is full.
    pub fn insert(&mut self, k: K, v: V) {
        if self.map.len() >= self.cap && !self.map.contains_key(&k) {
            // Clearing keeps the allocation, so the memory stays where it was.
            self.map.clear();
        }
        self.map.insert(k, v);
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut c = Bounded::new(4);
        for i in 0..1000u32 {
            c.insert(i, i * 2);
            assert!(c.len() <= 4);
            assert_eq!(c.get(&i), Some(i * 2));
        }
    }

    #[test]
    fn string_keys_are_looked_up_by_str() {
        let mut c: Bounded<String, bool> = Bounded::new(2);
        c.insert("a.test".to_string(), true);
        assert_eq!(c.get("a.test"), Some(true));
        assert_eq!(c.get("b.test"), None);
    }
}
