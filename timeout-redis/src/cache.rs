//! Deadlines this replica learnt from Redis, so a hot session's request is
//! answered without a round trip, and the activity it saw since, flushed in
//! batches.
//!
//! An answer from here is only given when it is certain: the session is a
//! known member of the key, its timeout is the one Redis holds, and the
//! deadline Redis reported is further away than the margin (a flush
//! interval and more). Activity elsewhere only moves a deadline later, and
//! what could end a key early (an explicit logout, a shorter timeout) is
//! either sent to Redis or announced to every replica, which drops the
//! entry. Everything else goes to Redis.

use std::{
    hash::BuildHasher,
    sync::{Mutex, MutexGuard, PoisonError},
};

use hashbrown::{DefaultHashBuilder, HashMap};
use timeout_core::{RequestKind, Timestamp, events::KnownKey, store::TouchOutcome};

const SHARDS: usize = 32;

#[derive(Debug)]
struct Cached {
    /// Deadline as Redis last reported it (server ms).
    deadline: u64,
    /// Absolute deadline, `u64::MAX` for none.
    absolute: u64,
    timeout: u64,
    /// Sessions Redis confirmed as members of the key.
    sessions: Vec<Box<str>>,
    /// The user, when it differs from the key (scope session): for the
    /// logout of a key whose state Redis lost.
    user: Option<Box<str>>,
    /// Server time of the last activity not yet flushed; 0 for none.
    pending: u64,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Box<str>, Cached>,
    /// Keys with pending activity, each once.
    dirty: Vec<Box<str>>,
}

/// Activity of one key taken for a flush.
#[derive(Debug)]
pub(crate) struct PendingActivity {
    pub(crate) key: Box<str>,
    /// Server time of the activity.
    pub(crate) at: u64,
    /// The key's timeout, ms: the deadline the activity gives.
    pub(crate) timeout: u64,
}

#[derive(Debug)]
pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    hasher: DefaultHashBuilder,
}

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let n = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[n])
    }

    /// Answers a touch at server time `now` when certain; records activity.
    pub(crate) fn touch(
        &self,
        key: &str,
        session: &str,
        kind: RequestKind,
        timeout: u64,
        now: u64,
        margin: u64,
    ) -> Option<TouchOutcome> {
        let mut guard = self.shard(key);
        let shard = &mut *guard;
        let entry = shard.map.get_mut(key)?;
        if entry.timeout != timeout
            || now.saturating_add(margin) >= entry.deadline
            || !entry.sessions.iter().any(|s| **s == *session)
        {
            return None;
        }
        if kind == RequestKind::Activity && entry.pending < now {
            if entry.pending == 0 {
                shard.dirty.push(key.into());
            }
            entry.pending = now;
        }
        let since_activity = if entry.pending > 0 {
            entry.pending.saturating_add(timeout).min(entry.absolute)
        } else {
            0
        };
        Some(TouchOutcome::Live {
            deadline: Timestamp::from_millis(entry.deadline.max(since_activity)),
        })
    }

    /// Takes the unflushed activity of `key`, for a call to Redis that
    /// carries it.
    pub(crate) fn take_pending(&self, key: &str) -> Option<u64> {
        let mut shard = self.shard(key);
        let entry = shard.map.get_mut(key)?;
        let at = std::mem::take(&mut entry.pending);
        (at > 0).then_some(at)
    }

    /// The deadline the unflushed activity of `key` gives it, if any.
    pub(crate) fn pending_deadline(&self, key: &str) -> Option<u64> {
        let shard = self.shard(key);
        let entry = shard.map.get(key)?;
        (entry.pending > 0).then(|| {
            entry
                .pending
                .saturating_add(entry.timeout)
                .min(entry.absolute)
        })
    }

    /// Puts back activity whose flush failed, so it is sent again.
    pub(crate) fn restore(&self, key: &str, at: u64) {
        let mut guard = self.shard(key);
        let shard = &mut *guard;
        if let Some(entry) = shard.map.get_mut(key) {
            if entry.pending == 0 {
                shard.dirty.push(key.into());
            }
            entry.pending = entry.pending.max(at);
        }
    }

    /// Whether Redis confirmed `session` as a member of `key` to this
    /// replica: if Redis no longer knows the key, it lost it.
    pub(crate) fn knows(&self, key: &str, session: &str) -> bool {
        self.shard(key)
            .map
            .get(key)
            .is_some_and(|e| e.sessions.iter().any(|s| **s == *session))
    }

    /// What is known of `key`.
    pub(crate) fn known(&self, key: &str) -> Option<KnownKey> {
        self.shard(key).map.get(key).map(|e| known_entry(key, e))
    }

    /// Takes every entry whose key `pick` selects (the keys of a shard whose
    /// state Redis lost).
    pub(crate) fn drain_where(&self, pick: impl Fn(&str) -> bool) -> Vec<KnownKey> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut guard = lock(shard);
            let shard = &mut *guard;
            shard.map.retain(|key, entry| {
                if pick(key) {
                    out.push(known_entry(key, entry));
                    false
                } else {
                    true
                }
            });
            shard.dirty.retain(|key| !pick(key));
        }
        out
    }

    /// What Redis answered for `key` and `session`.
    pub(crate) fn confirm(
        &self,
        key: &str,
        user: &str,
        session: &str,
        deadline: u64,
        absolute: u64,
        timeout: u64,
    ) {
        let mut shard = self.shard(key);
        let absolute = if absolute == 0 { u64::MAX } else { absolute };
        match shard.map.get_mut(key) {
            Some(entry) => {
                entry.deadline = deadline;
                entry.absolute = absolute;
                entry.timeout = timeout;
                if !entry.sessions.iter().any(|s| **s == *session) {
                    entry.sessions.push(session.into());
                }
            }
            None => {
                shard.map.insert(
                    key.into(),
                    Cached {
                        deadline,
                        absolute,
                        timeout,
                        sessions: vec![session.into()],
                        user: (user != key).then(|| user.into()),
                        pending: 0,
                    },
                );
            }
        }
    }

    /// A flush reported `deadline` for `key` (0: no longer tracked).
    pub(crate) fn refresh(&self, key: &str, deadline: u64) {
        let mut shard = self.shard(key);
        if deadline == 0 {
            shard.map.remove(key);
        } else if let Some(entry) = shard.map.get_mut(key) {
            entry.deadline = entry.deadline.max(deadline);
        }
    }

    /// Drops `key` (timed out, removed) or one of its sessions.
    pub(crate) fn forget(&self, key: &str, session: Option<&str>) {
        let mut shard = self.shard(key);
        match session {
            None => {
                shard.map.remove(key);
            }
            Some(session) => {
                if let Some(entry) = shard.map.get_mut(key) {
                    entry.sessions.retain(|s| **s != *session);
                    if entry.sessions.is_empty() {
                        shard.map.remove(key);
                    }
                }
            }
        }
    }

    /// Takes every key's pending activity, for a flush.
    pub(crate) fn take_dirty(&self) -> Vec<PendingActivity> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut guard = lock(shard);
            let shard = &mut *guard;
            for key in shard.dirty.drain(..) {
                if let Some(entry) = shard.map.get_mut(&key) {
                    let at = std::mem::take(&mut entry.pending);
                    if at > 0 {
                        out.push(PendingActivity {
                            key,
                            at,
                            timeout: entry.timeout,
                        });
                    }
                }
            }
        }
        out
    }

    /// Drops entries whose deadline passed before `before` and which have
    /// nothing to flush: their key was logged out elsewhere, or will be.
    pub(crate) fn prune(&self, before: u64) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let len = shard.map.len();
            shard
                .map
                .retain(|_, entry| entry.pending > 0 || entry.deadline >= before);
            dropped += len - shard.map.len();
        }
        dropped
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }
}

fn known_entry(key: &str, entry: &Cached) -> KnownKey {
    KnownKey::new(
        key.to_owned(),
        entry.user.as_deref().unwrap_or(key).to_owned(),
        entry.sessions.iter().map(|s| s.to_string()).collect(),
    )
}

// Plain data under the lock and no user code: a poisoned lock still holds
// consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn live(outcome: Option<TouchOutcome>) -> Option<u64> {
        match outcome? {
            TouchOutcome::Live { deadline } => Some(deadline.as_millis()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_only_when_certain() {
        let cache = Cache::new();
        let t =
            |session, kind, timeout, now| cache.touch("alice", session, kind, timeout, now, 1_000);
        assert_eq!(t("s1", RequestKind::Activity, MIN, 0), None, "unknown key");
        cache.confirm("alice", "alice", "s1", 10 * MIN, 0, 10 * MIN);
        assert_eq!(
            t("s2", RequestKind::Activity, 10 * MIN, 1),
            None,
            "unknown session"
        );
        assert_eq!(
            t("s1", RequestKind::Activity, MIN, 1),
            None,
            "timeout changed"
        );
        assert_eq!(
            t("s1", RequestKind::Passive, 10 * MIN, 10 * MIN - 500),
            None,
            "too close"
        );
        assert_eq!(
            live(t("s1", RequestKind::Passive, 10 * MIN, 5)),
            Some(10 * MIN)
        );
        assert_eq!(
            cache.take_dirty().len(),
            0,
            "passive requests flush nothing"
        );
        assert_eq!(
            live(t("s1", RequestKind::Activity, 10 * MIN, 7)),
            Some(10 * MIN + 7)
        );
        assert_eq!(
            live(t("s1", RequestKind::Activity, 10 * MIN, 9)),
            Some(10 * MIN + 9)
        );
        let dirty = cache.take_dirty();
        assert_eq!(dirty.len(), 1, "a key is flushed once per interval");
        assert_eq!((&*dirty[0].key, dirty[0].at), ("alice", 9));
        assert_eq!(cache.pending_deadline("alice"), None);
        cache.restore("alice", 9);
        assert_eq!(cache.pending_deadline("alice"), Some(10 * MIN + 9));
        assert_eq!(cache.take_pending("alice"), Some(9));
        assert_eq!(cache.take_pending("alice"), None);
    }

    #[test]
    fn the_absolute_deadline_caps_activity() {
        let cache = Cache::new();
        cache.confirm("alice", "alice", "s1", 5 * MIN, 6 * MIN, 5 * MIN);
        let deadline = live(cache.touch("alice", "s1", RequestKind::Activity, 5 * MIN, 2 * MIN, 0));
        assert_eq!(deadline, Some(6 * MIN));
    }

    #[test]
    fn forgetting_and_pruning() {
        let cache = Cache::new();
        cache.confirm("alice", "alice", "s1", MIN, 0, MIN);
        cache.confirm("alice", "alice", "s2", MIN, 0, MIN);
        cache.forget("alice", Some("s1"));
        assert!(
            cache
                .touch("alice", "s1", RequestKind::Passive, MIN, 0, 0)
                .is_none()
        );
        assert!(
            cache
                .touch("alice", "s2", RequestKind::Passive, MIN, 0, 0)
                .is_some()
        );
        cache.confirm("bob", "bob", "s3", MIN, 0, MIN);
        cache.refresh("bob", 0);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.prune(MIN + 1), 1);
        assert_eq!(cache.len(), 0);
    }
}
