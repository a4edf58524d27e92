//! A value read from the database, kept while a key read cheaply from it (a generation)
//! stays the same. Shared by clones of the application state.

use std::sync::{Arc, Mutex};

/// The key and the value kept under it.
type Slot<K, V> = Option<(K, Arc<V>)>;

pub struct Cached<K, V> {
    slot: Arc<Mutex<Slot<K, V>>>,
}

impl<K, V> Clone for Cached<K, V> {
    fn clone(&self) -> Self {
        Cached {
            slot: self.slot.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for Cached<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cached")
    }
}

impl<K, V> Default for Cached<K, V> {
    fn default() -> Self {
        Cached {
            slot: Arc::default(),
        }
    }
}

impl<K: PartialEq + Clone, V> Cached<K, V> {
    /// The value kept under `key`, if that is the key it was kept under.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        match self.slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some((k, v)) if k == key => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps `value` under `key`; returns it shared.
    pub fn put(&self, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, value.clone()));
        value
    }
}
