//! Sessions that timed out, refused until a time: a sweep remembers every
//! session it logs out, for a day by default, so this holds millions of
//! entries. In B-trees, not hash tables: a hash table that grows rehashes
//! all its entries at once, and a sweep that hit that paid for it (a sweep
//! of 10,000 logouts spent 2-4 ms remembering them, and 12-17 ms when the
//! table doubled); a B-tree grows a node at a time. In shards, so requests
//! of different sessions rarely wait for one lock.

use std::{
    collections::BTreeMap,
    hash::BuildHasher,
    sync::{Arc, Mutex},
};

use hashbrown::DefaultHashBuilder;

use super::lock;

const SHARDS: usize = 16;

pub(super) struct RememberedSessions {
    shards: Box<[Mutex<Shard>]>,
    hasher: DefaultHashBuilder,
}

#[derive(Default)]
struct Shard {
    // One allocation per session, shared by both maps.
    until: BTreeMap<Arc<str>, u64>,
    by_time: BTreeMap<u64, Vec<Arc<str>>>,
}

impl RememberedSessions {
    pub(super) fn new() -> Self {
        RememberedSessions {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn shard(&self, session: &str) -> &Mutex<Shard> {
        let hash = self.hasher.hash_one(session);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// Refuses `session` until `until` (or later, if it is remembered
    /// longer already by a later timeout).
    pub(super) fn remember(&self, session: &str, until: u64) {
        let mut shard = lock(self.shard(session));
        let session: Arc<str> = session.into();
        shard
            .by_time
            .entry(until)
            .or_default()
            .push(Arc::clone(&session));
        shard.until.insert(session, until);
    }

    pub(super) fn is_remembered(&self, session: &str, now: u64) -> bool {
        lock(self.shard(session))
            .until
            .get(session)
            .is_some_and(|until| *until > now)
    }

    /// Lets `session` in again (a new login of it).
    pub(super) fn forget(&self, session: &str) {
        lock(self.shard(session)).until.remove(session);
    }

    /// Drops what was remembered until `now` or earlier.
    pub(super) fn purge(&self, now: u64) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            while let Some(first) = shard.by_time.first_entry() {
                if *first.key() > now {
                    break;
                }
                let (time, sessions) = first.remove_entry();
                for s in sessions {
                    // A later timeout of the same session id may have
                    // extended it.
                    if shard.until.get(&*s) == Some(&time) {
                        shard.until.remove(&*s);
                    }
                }
            }
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| lock(shard).until.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_refused_until_their_time_then_purged() {
        let remembered = RememberedSessions::new();
        for i in 0..100 {
            remembered.remember(&format!("s{i}"), 1_000 + i);
        }
        assert_eq!(remembered.len(), 100);
        assert!(remembered.is_remembered("s50", 1_049));
        assert!(
            !remembered.is_remembered("s50", 1_050),
            "until is exclusive"
        );
        remembered.purge(1_049);
        assert_eq!(remembered.len(), 50, "s0..s49 purged");
        assert!(!remembered.is_remembered("s10", 0));
        assert!(remembered.is_remembered("s99", 1_049));
    }

    #[test]
    fn a_later_timeout_of_the_same_session_outlives_the_first_purge() {
        let remembered = RememberedSessions::new();
        remembered.remember("s1", 1_000);
        remembered.remember("s1", 5_000);
        remembered.purge(2_000);
        assert!(remembered.is_remembered("s1", 4_999));
        remembered.forget("s1");
        assert!(!remembered.is_remembered("s1", 0));
        assert_eq!(remembered.len(), 0);
    }
}
