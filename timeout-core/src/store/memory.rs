//! The embedded store: sharded, lock-light, for one process.
//!
//! The request path takes one shard's read lock and does a few atomic
//! operations on the key's entry: no allocation, no global lock. Deadlines
//! are filed in a time index once per key and rescheduled lazily: a touch
//! only records the last activity, and the sweeper, finding an entry due,
//! checks the real deadline and files it again if activity moved it. So each
//! key is re-filed at most once per idle period, and a sweep visits only the
//! entries that are due.

use std::{
    cmp::Ordering as CmpOrdering,
    collections::{BTreeMap, BinaryHeap},
    fmt,
    hash::BuildHasher,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicU8, AtomicU64, Ordering::Relaxed},
    },
};

use async_trait::async_trait;
use hashbrown::{DefaultHashBuilder, HashTable};
use thin_vec::ThinVec;

use self::{names::Names, remembered::RememberedSessions};

use super::{
    Cause, Due, DueWarning, Expired, Store, StoreError, Timing, Touch, TouchOutcome, TrackedKey,
};
use crate::{RequestKind, Scope, Timestamp, clock::duration_millis};

const SHARDS: usize = 64;
/// Width of a time-index bucket. Entries are ordered exactly only once their
/// bucket is reached, which keeps the index to one small vector per second.
const BUCKET_MS: u64 = 1_000;

const LIVE: u8 = 0;
/// Expired and claimed by exactly one caller.
const CLAIMED: u8 = 1;
/// Removed without an event (explicit logout).
const REMOVED: u8 = 2;

/// The timing of one tracked key, shared by its table slot and the index.
///
/// Atomics are `Relaxed`: every decision that counts (a touch, a claim, a
/// removal) happens under the shard lock, which orders them; the sweeper's
/// lock-free reads are hints it checks again under the lock.
struct Entry {
    /// The key, and the user when it differs from the key (scope session).
    names: Names,
    /// Whether the key is itself a session id (scope session).
    key_is_session: bool,
    absolute_deadline: u64,
    last_activity: AtomicU64,
    timeout_ms: AtomicU64,
    /// The deadline a warning was last claimed for: a different deadline
    /// means activity started a new period.
    warned_for: AtomicU64,
    state: AtomicU8,
}

impl Entry {
    fn idle_deadline(&self) -> u64 {
        self.last_activity
            .load(Relaxed)
            .saturating_add(self.timeout_ms.load(Relaxed))
    }

    fn deadline(&self) -> u64 {
        self.idle_deadline().min(self.absolute_deadline)
    }

    fn cause(&self) -> Cause {
        if self.absolute_deadline <= self.idle_deadline() {
            Cause::Absolute
        } else {
            Cause::Idle
        }
    }

    /// When the sweeper next has something to do for this key.
    fn next_due(&self, warn_ms: u64) -> u64 {
        let deadline = self.deadline();
        if warn_ms > 0 && self.warned_for.load(Relaxed) != deadline {
            deadline.saturating_sub(warn_ms)
        } else {
            deadline
        }
    }

    fn key(&self) -> &str {
        self.names.key()
    }

    fn user(&self) -> &str {
        self.names.user()
    }

    fn is_live(&self) -> bool {
        self.state.load(Relaxed) == LIVE
    }
}

/// What a shard's table holds per key. The session list lives here, under
/// the shard lock, so the request path reads it without a lock of its own.
struct Slot {
    entry: Arc<Entry>,
    /// Sessions sharing the key besides the key itself (scope user); a thin
    /// vector, so a slot is two words and a key without others allocates
    /// nothing here.
    others: ThinVec<Box<str>>,
}

impl Slot {
    fn has_session(&self, session: &str) -> bool {
        (self.entry.key_is_session && self.entry.names.is_key(session))
            || self.others.iter().any(|s| &**s == session)
    }

    fn sessions(&self) -> Vec<String> {
        let mut all = Vec::with_capacity(self.others.len() + 1);
        if self.entry.key_is_session {
            all.push(self.entry.key().to_owned());
        }
        all.extend(self.others.iter().map(|s| s.to_string()));
        all
    }
}

/// An entry whose bucket has been reached, ordered by exact due time.
struct Near {
    due: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // BinaryHeap is a max-heap; the earliest due must come out first.
        other.due.cmp(&self.due)
    }
}

/// Due times of the tracked keys.
#[derive(Default)]
struct Index {
    buckets: BTreeMap<u64, Vec<Arc<Entry>>>,
    near: BinaryHeap<Near>,
}

impl Index {
    fn file(&mut self, entry: Arc<Entry>, due: u64) {
        self.buckets.entry(due / BUCKET_MS).or_default().push(entry);
    }
}

/// Counters that show what the store does, for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemoryStoreStats {
    /// Keys tracked now.
    pub tracked: u64,
    /// Entries examined by sweeps since the store was created.
    pub sweep_visits: u64,
    /// Timed-out sessions remembered (refused) now.
    pub remembered: u64,
}

/// The embedded default store: everything in this process's memory.
///
/// ```
/// use std::sync::Arc;
/// use timeout_core::{MemoryStore, Policy, Tracker};
///
/// let store = Arc::new(MemoryStore::new());
/// let tracker = Tracker::builder(Policy::builder().enabled(true).build()?)
///     .store(store.clone())
///     .build();
/// assert_eq!(store.stats().tracked, 0);
/// # let _ = tracker;
/// # Ok::<(), timeout_core::ConfigError>(())
/// ```
pub struct MemoryStore {
    shards: Box<[RwLock<HashTable<Slot>>]>,
    hasher: DefaultHashBuilder,
    index: Mutex<Index>,
    remembered: RememberedSessions,
    sweep_visits: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("stats", &self.stats())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            hasher: DefaultHashBuilder::default(),
            index: Mutex::new(Index::default()),
            remembered: RememberedSessions::new(),
            sweep_visits: AtomicU64::new(0),
        }
    }

    /// What the store holds and has done.
    pub fn stats(&self) -> MemoryStoreStats {
        let tracked = self.shards.iter().map(|s| read(s).len() as u64).sum();
        MemoryStoreStats {
            tracked,
            sweep_visits: self.sweep_visits.load(Relaxed),
            remembered: self.remembered.len(),
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<HashTable<Slot>> {
        // Bits 40..46: hashbrown uses the low bits for the bucket and the top
        // seven for its tags, so these leave both evenly spread per shard.
        &self.shards[((hash >> 40) as usize) % SHARDS]
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn rehash(&self) -> impl Fn(&Slot) -> u64 + '_ {
        |slot| self.hasher.hash_one(slot.entry.key())
    }

    fn lookup(&self, hash: u64, key: &str) -> Option<Arc<Entry>> {
        read(self.shard(hash))
            .find(hash, |slot| slot.entry.names.is_key(key))
            .map(|slot| slot.entry.clone())
    }

    /// The whole touch, without I/O: the common case under the shard's read
    /// lock, everything else (new key, new session, expiry) under its write
    /// lock.
    fn touch_now(&self, t: &Touch<'_>) -> TouchOutcome {
        let hash = self.hash(t.key);
        let now = t.now.as_millis();
        let shortened = {
            let table = read(self.shard(hash));
            match table.find(hash, |slot| slot.entry.names.is_key(t.key)) {
                Some(slot) if slot.has_session(t.session) && now < slot.entry.deadline() => {
                    let (deadline, shortened) = record(&slot.entry, t, now);
                    if !shortened {
                        return TouchOutcome::Live { deadline };
                    }
                    Some((slot.entry.clone(), deadline))
                }
                _ => None,
            }
        };
        if let Some((entry, deadline)) = shortened {
            self.refile(entry, t.timing);
            return TouchOutcome::Live { deadline };
        }
        self.touch_exclusive(hash, t, now)
    }

    /// The rare cases of a touch, under the shard's write lock.
    fn touch_exclusive(&self, hash: u64, t: &Touch<'_>, now: u64) -> TouchOutcome {
        let mut table = write(self.shard(hash));
        let mut expired = None;
        if let Ok(mut found) = table.find_entry(hash, |slot| slot.entry.names.is_key(t.key)) {
            let member = found.get().has_session(t.session);
            if now < found.get().entry.deadline() {
                // A member got here because another request held the slot
                // first; a new session joins unless it timed out before.
                if !member {
                    if self.is_remembered(t.session, now) {
                        return TouchOutcome::Refused;
                    }
                    let slot = found.get_mut();
                    let sessions = slot.others.len() + usize::from(slot.entry.key_is_session);
                    if sessions >= t.timing.max_sessions as usize {
                        return TouchOutcome::SessionLimit;
                    }
                    slot.others.push(t.session.into());
                }
                let entry = found.get().entry.clone();
                let (deadline, shortened) = record(&entry, t, now);
                drop(table);
                if shortened {
                    self.refile(entry, t.timing);
                }
                return TouchOutcome::Live { deadline };
            }
            // The deadline has passed: this caller claims the expiry.
            let (slot, _) = found.remove();
            let claimed = self.claim(slot, now, t.timing);
            if member || self.is_remembered(t.session, now) {
                return TouchOutcome::Expired(claimed);
            }
            // A new session of a user whose old sessions timed out unswept:
            // log those out, and start afresh.
            expired = Some(claimed);
        } else if self.is_remembered(t.session, now) {
            return TouchOutcome::Refused;
        }
        let entry = Arc::new(new_entry(t, now));
        let mut others = ThinVec::new();
        if !entry.key_is_session {
            others.push(t.session.into());
        }
        table.insert_unique(
            hash,
            Slot {
                entry: entry.clone(),
                others,
            },
            self.rehash(),
        );
        drop(table);
        let deadline = Timestamp::from_millis(entry.deadline());
        let due = entry.next_due(duration_millis(t.timing.warn_before));
        lock(&self.index).file(entry, due);
        match expired {
            Some(expired) => TouchOutcome::Replaced { deadline, expired },
            None => TouchOutcome::Live { deadline },
        }
    }

    /// Files `entry` again at its next due time: after its timeout got
    /// shorter, the time it is filed under may be too late. A second filing
    /// is harmless: whichever comes out second finds nothing to do.
    fn refile(&self, entry: Arc<Entry>, timing: Timing) {
        let due = entry.next_due(duration_millis(timing.warn_before));
        lock(&self.index).file(entry, due);
    }

    /// Marks a slot just removed from its table as claimed and remembers its
    /// sessions as timed out. Called under the shard's write lock, so no
    /// request sees the key neither tracked nor remembered.
    fn claim(&self, slot: Slot, now: u64, timing: Timing) -> Expired {
        let sessions = slot.sessions();
        let entry = slot.entry;
        entry.state.store(CLAIMED, Relaxed);
        let until = now.saturating_add(duration_millis(timing.remember));
        for session in &sessions {
            self.remembered.remember(session, until);
        }
        Expired {
            key: entry.key().to_owned(),
            user: entry.user().to_owned(),
            sessions,
            deadline: Timestamp::from_millis(entry.deadline()),
            cause: entry.cause(),
            claim: None,
        }
    }

    fn is_remembered(&self, session: &str, now: u64) -> bool {
        self.remembered.is_remembered(session, now)
    }

    /// Claims `entry` if it is still tracked and due at `now`; `Err` with
    /// the entry if activity rescued it.
    fn claim_if_due(
        &self,
        entry: Arc<Entry>,
        now: u64,
        timing: Timing,
    ) -> Result<Option<Expired>, Arc<Entry>> {
        let hash = self.hash(entry.key());
        let mut table = write(self.shard(hash));
        let Ok(found) = table.find_entry(hash, |slot| Arc::ptr_eq(&slot.entry, &entry)) else {
            return Ok(None); // claimed at the gate or removed meanwhile
        };
        if found.get().entry.deadline() > now {
            return Err(entry);
        }
        let (slot, _) = found.remove();
        Ok(Some(self.claim(slot, now, timing)))
    }

    fn claim_due_now(&self, now: u64, timing: Timing, limit: usize) -> Vec<Due> {
        let warn_ms = duration_millis(timing.warn_before);
        let mut visits = 0u64;
        let mut out = Vec::new();
        let mut due_expiries = Vec::new();
        {
            let mut guard = lock(&self.index);
            let index = &mut *guard;
            while let Some(first) = index.buckets.first_entry() {
                if first.key().saturating_mul(BUCKET_MS) > now {
                    break;
                }
                for entry in first.remove() {
                    visits += 1;
                    if entry.is_live() {
                        let due = entry.next_due(warn_ms);
                        index.near.push(Near { due, entry });
                    }
                }
            }
            while out.len() + due_expiries.len() < limit {
                let Some(top) = index.near.peek() else { break };
                if top.due > now {
                    break;
                }
                let Some(Near { entry, .. }) = index.near.pop() else {
                    break;
                };
                visits += 1;
                if !entry.is_live() {
                    continue; // logged out at the gate or explicitly
                }
                let deadline = entry.deadline();
                if deadline <= now {
                    due_expiries.push(entry);
                } else if warn_ms > 0
                    && entry.warned_for.load(Relaxed) != deadline
                    && deadline.saturating_sub(warn_ms) <= now
                {
                    entry.warned_for.store(deadline, Relaxed);
                    out.push(Due::Warning(DueWarning {
                        key: entry.key().to_owned(),
                        deadline: Timestamp::from_millis(deadline),
                        claim: None,
                    }));
                    index.file(entry, deadline);
                } else {
                    // Activity moved the deadline since it was filed.
                    let due = entry.next_due(warn_ms);
                    index.file(entry, due);
                }
            }
        }
        let mut rescued = Vec::new();
        for entry in due_expiries {
            match self.claim_if_due(entry, now, timing) {
                Ok(Some(expired)) => out.push(Due::Expiry(expired)),
                Ok(None) => {}
                Err(entry) => rescued.push(entry),
            }
        }
        if !rescued.is_empty() {
            let mut index = lock(&self.index);
            for entry in rescued {
                let due = entry.next_due(warn_ms);
                index.file(entry, due);
            }
        }
        self.remembered.purge(now);
        self.sweep_visits.fetch_add(visits, Relaxed);
        out
    }

    /// The tracked keys of `user`, in every shard: session scope files a
    /// user's sessions under their own ids.
    fn keys_of(&self, user: &str) -> Vec<TrackedKey> {
        let mut keys = Vec::new();
        for shard in &self.shards {
            keys.extend(
                read(shard)
                    .iter()
                    .filter(|slot| slot.entry.user() == user)
                    .map(tracked),
            );
        }
        keys
    }

    /// Claims `key`'s logout now, whatever its deadline.
    fn claim_key_now(&self, key: &str, now: u64, timing: Timing) -> Option<Expired> {
        let hash = self.hash(key);
        let mut table = write(self.shard(hash));
        let found = table
            .find_entry(hash, |slot| slot.entry.names.is_key(key))
            .ok()?;
        let (slot, _) = found.remove();
        let mut expired = self.claim(slot, now, timing);
        expired.cause = Cause::SignedOut;
        Some(expired)
    }

    /// Removes `key` without an event; with `session`, only that session
    /// (the key when it was the last), remembered as ended until its
    /// deadline and `remember` after.
    fn remove_key(&self, key: &str, session: Option<(&str, Timing)>) -> bool {
        let hash = self.hash(key);
        let mut table = write(self.shard(hash));
        let Ok(mut found) = table.find_entry(hash, |slot| slot.entry.names.is_key(key)) else {
            return false;
        };
        if let Some((session, timing)) = session {
            let slot = found.get_mut();
            if !slot.has_session(session) {
                return false;
            }
            let until = slot
                .entry
                .deadline()
                .saturating_add(duration_millis(timing.remember));
            self.remembered.remember(session, until);
            slot.others.retain(|s| &**s != session);
            let key_session_goes_on = slot.entry.key_is_session && session != key;
            if key_session_goes_on || !slot.others.is_empty() {
                return true; // other sessions go on
            }
        }
        let (slot, _) = found.remove();
        slot.entry.state.store(REMOVED, Relaxed);
        true
    }
}

fn tracked(slot: &Slot) -> TrackedKey {
    TrackedKey::new(
        slot.entry.key(),
        slot.entry.user(),
        slot.sessions(),
        Timestamp::from_millis(slot.entry.deadline()),
    )
}

fn new_entry(t: &Touch<'_>, now: u64) -> Entry {
    Entry {
        names: Names::new(t.key, t.user),
        key_is_session: t.session == t.key,
        absolute_deadline: t
            .absolute_lifetime
            .map_or(u64::MAX, |d| now.saturating_add(duration_millis(d))),
        last_activity: AtomicU64::new(now),
        timeout_ms: AtomicU64::new(duration_millis(t.timeout)),
        warned_for: AtomicU64::new(0),
        state: AtomicU8::new(LIVE),
    }
}

/// Records a request of a live key (under a shard lock) and returns its
/// deadline, and whether its timeout got shorter (the user's groups
/// changed), so it must be filed again. The caller has checked the deadline
/// is still ahead.
fn record(entry: &Entry, t: &Touch<'_>, now: u64) -> (Timestamp, bool) {
    let mut shortened = false;
    if t.kind == RequestKind::Activity {
        let timeout = duration_millis(t.timeout);
        let before = entry.timeout_ms.load(Relaxed);
        if before != timeout {
            entry.timeout_ms.store(timeout, Relaxed);
            shortened = timeout < before;
        }
        // Most requests of a hot key arrive within the same millisecond:
        // skip the write (and the cache-line transfer) when it changes
        // nothing.
        if entry.last_activity.load(Relaxed) < now {
            entry.last_activity.fetch_max(now, Relaxed);
        }
    }
    (Timestamp::from_millis(entry.deadline()), shortened)
}

// Locks here guard plain data and no user code runs under them; a poisoned
// lock still holds consistent data, so serve on rather than panic.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl Store for MemoryStore {
    fn try_touch(&self, touch: &Touch<'_>) -> Option<TouchOutcome> {
        Some(self.touch_now(touch))
    }

    async fn touch(&self, touch: &Touch<'_>) -> Result<TouchOutcome, StoreError> {
        Ok(self.touch_now(touch))
    }

    async fn deadline(&self, key: &str, _timing: Timing) -> Result<Option<Timestamp>, StoreError> {
        let hash = self.hash(key);
        Ok(self
            .lookup(hash, key)
            .map(|e| Timestamp::from_millis(e.deadline())))
    }

    async fn end_session(
        &self,
        key: &str,
        session: &str,
        timing: Timing,
    ) -> Result<bool, StoreError> {
        Ok(self.remove_key(key, Some((session, timing))))
    }

    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.remove_key(key, None))
    }

    async fn forget_timed_out(&self, _key: &str, session: &str) -> Result<(), StoreError> {
        self.remembered.forget(session);
        Ok(())
    }

    fn try_timed_out(&self, session: &str, now: Timestamp) -> Option<bool> {
        Some(self.is_remembered(session, now.as_millis()))
    }

    async fn timed_out(&self, session: &str, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.is_remembered(session, now.as_millis()))
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        timing: Timing,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        Ok(self.claim_due_now(now.as_millis(), timing, limit))
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        Ok(self.stats().tracked)
    }

    async fn keys_of_user(&self, user: &str, scope: Scope) -> Result<Vec<TrackedKey>, StoreError> {
        Ok(match scope {
            Scope::User => {
                let hash = self.hash(user);
                read(self.shard(hash))
                    .find(hash, |slot| slot.entry.names.is_key(user))
                    .map(tracked)
                    .into_iter()
                    .collect()
            }
            _ => self.keys_of(user),
        })
    }

    async fn claim_now(
        &self,
        key: &str,
        now: Timestamp,
        timing: Timing,
    ) -> Result<Option<Expired>, StoreError> {
        Ok(self.claim_key_now(key, now.as_millis(), timing))
    }
}

mod names;
mod remembered;
#[cfg(test)]
mod tests;
