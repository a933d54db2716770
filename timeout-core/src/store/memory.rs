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
        atomic::{AtomicU8, AtomicU64, Ordering::SeqCst},
    },
};

use async_trait::async_trait;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use super::{Cause, Due, DueWarning, Expired, Store, StoreError, Timing, Touch, TouchOutcome};
use crate::{RequestKind, Timestamp, clock::duration_millis};

const SHARDS: usize = 64;
/// Width of a time-index bucket. Entries are ordered exactly only once their
/// bucket is reached, which keeps the index to one small vector per second.
const BUCKET_MS: u64 = 1_000;

const LIVE: u8 = 0;
/// A sweeper or gate is deciding whether the key expired: touches wait.
const CLAIMING: u8 = 1;
/// Expired and claimed by exactly one caller.
const CLAIMED: u8 = 2;
/// Removed without an event (explicit logout).
const REMOVED: u8 = 3;

/// One tracked key.
struct Entry {
    key: Box<str>,
    /// The user, when it differs from the key (scope session).
    user: Option<Box<str>>,
    /// Whether the key is itself a session id (scope session).
    key_is_session: bool,
    /// Sessions sharing the key besides the key itself (scope user).
    others: RwLock<Vec<Box<str>>>,
    absolute_deadline: u64,
    last_activity: AtomicU64,
    timeout_ms: AtomicU64,
    /// The deadline a warning was last claimed for: a different deadline
    /// means activity started a new period.
    warned_for: AtomicU64,
    state: AtomicU8,
}

impl Entry {
    fn deadline(&self) -> u64 {
        let idle = self
            .last_activity
            .load(SeqCst)
            .saturating_add(self.timeout_ms.load(SeqCst));
        idle.min(self.absolute_deadline)
    }

    fn cause(&self) -> Cause {
        let idle = self
            .last_activity
            .load(SeqCst)
            .saturating_add(self.timeout_ms.load(SeqCst));
        if self.absolute_deadline <= idle {
            Cause::Absolute
        } else {
            Cause::Idle
        }
    }

    /// When the sweeper next has something to do for this key.
    fn next_due(&self, warn_ms: u64) -> u64 {
        let deadline = self.deadline();
        if warn_ms > 0 && self.warned_for.load(SeqCst) != deadline {
            deadline.saturating_sub(warn_ms)
        } else {
            deadline
        }
    }

    fn has_session(&self, session: &str) -> bool {
        (self.key_is_session && session == &*self.key)
            || read(&self.others).iter().any(|s| &**s == session)
    }

    fn sessions(&self) -> Vec<String> {
        let others = read(&self.others);
        let mut all = Vec::with_capacity(others.len() + 1);
        if self.key_is_session {
            all.push(self.key.to_string());
        }
        all.extend(others.iter().map(|s| s.to_string()));
        all
    }

    fn user(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.key)
    }

    /// Claims the expiry if the deadline has really passed at `now`. The
    /// CLAIMING step makes a racing activity either be seen here (no expiry)
    /// or see the claim (its request is refused), never neither.
    fn try_claim(&self, now: u64) -> Option<Cause> {
        if self
            .state
            .compare_exchange(LIVE, CLAIMING, SeqCst, SeqCst)
            .is_err()
        {
            return None;
        }
        if self.deadline() <= now {
            let cause = self.cause();
            self.state.store(CLAIMED, SeqCst);
            Some(cause)
        } else {
            self.state.store(LIVE, SeqCst);
            None
        }
    }

    /// The settled state, waiting out a claim in progress (a few
    /// instructions long).
    fn settled_state(&self) -> u8 {
        loop {
            let state = self.state.load(SeqCst);
            if state != CLAIMING {
                return state;
            }
            std::hint::spin_loop();
        }
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

/// Sessions that timed out, refused until a time.
#[derive(Default)]
struct Remembered {
    until: HashMap<Box<str>, u64>,
    by_time: BTreeMap<u64, Vec<Box<str>>>,
}

impl Remembered {
    fn purge(&mut self, now: u64) {
        while let Some(first) = self.by_time.first_entry() {
            if *first.key() > now {
                break;
            }
            let (time, sessions) = first.remove_entry();
            for s in sessions {
                // A later timeout of the same session id may have extended it.
                if self.until.get(&*s) == Some(&time) {
                    self.until.remove(&*s);
                }
            }
        }
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
    shards: Box<[RwLock<HashTable<Arc<Entry>>>]>,
    hasher: DefaultHashBuilder,
    index: Mutex<Index>,
    remembered: Mutex<Remembered>,
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

enum Found {
    Done(TouchOutcome),
    /// A session the key does not know yet.
    Join(Arc<Entry>),
    /// The deadline passed.
    Expire(Arc<Entry>),
    /// No live entry: create one.
    Create,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            hasher: DefaultHashBuilder::default(),
            index: Mutex::new(Index::default()),
            remembered: Mutex::new(Remembered::default()),
            sweep_visits: AtomicU64::new(0),
        }
    }

    /// What the store holds and has done.
    pub fn stats(&self) -> MemoryStoreStats {
        let tracked = self.shards.iter().map(|s| read(s).len() as u64).sum();
        MemoryStoreStats {
            tracked,
            sweep_visits: self.sweep_visits.load(SeqCst),
            remembered: lock(&self.remembered).until.len() as u64,
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<HashTable<Arc<Entry>>> {
        // Bits 40..46: hashbrown uses the low bits for the bucket and the top
        // seven for its tags, so these leave both evenly spread per shard.
        &self.shards[((hash >> 40) as usize) % SHARDS]
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn lookup(&self, hash: u64, key: &str) -> Option<Arc<Entry>> {
        read(self.shard(hash))
            .find(hash, |e| &*e.key == key)
            .cloned()
    }

    /// The whole touch, without I/O.
    fn touch_now(&self, t: &Touch<'_>) -> TouchOutcome {
        let hash = self.hash(t.key);
        let now = t.now.as_millis();
        loop {
            let found = {
                let table = read(self.shard(hash));
                match table.find(hash, |e| &*e.key == t.key) {
                    None => Found::Create,
                    Some(entry) => touch_entry(entry, t, now),
                }
            };
            let outcome = match found {
                Found::Done(outcome) => Some(outcome),
                Found::Create => self.create(hash, t, None),
                Found::Join(entry) => self.join(hash, &entry, t),
                Found::Expire(entry) => self.expire_at_gate(hash, &entry, t),
            };
            if let Some(outcome) = outcome {
                return outcome;
            }
            // A race moved the entry under us (created, rescued, removed):
            // look again.
        }
    }

    /// A session new to an existing key.
    fn join(&self, hash: u64, entry: &Arc<Entry>, t: &Touch<'_>) -> Option<TouchOutcome> {
        let now = t.now.as_millis();
        if self.is_remembered(t.session, now) {
            return Some(TouchOutcome::Refused);
        }
        match entry.settled_state() {
            LIVE if entry.deadline() <= now => {
                // The old period is over: log its sessions out and let this
                // new one start afresh.
                let cause = entry.try_claim(now)?;
                let expired = self.finish_claim(hash, entry, cause, t.timing, now);
                self.create(hash, t, Some(expired))
            }
            LIVE => {
                let mut others = write(&entry.others);
                if !others.iter().any(|s| &**s == t.session) {
                    others.push(t.session.into());
                }
                None
            }
            _ => self.create(hash, t, None),
        }
    }

    /// Starts tracking `t.key`; `replacing` is the expired period it follows.
    fn create(&self, hash: u64, t: &Touch<'_>, replacing: Option<Expired>) -> Option<TouchOutcome> {
        let now = t.now.as_millis();
        if replacing.is_none() && self.is_remembered(t.session, now) {
            return Some(TouchOutcome::Refused);
        }
        let key_is_session = t.session == t.key;
        let entry = Arc::new(Entry {
            key: t.key.into(),
            user: (t.user != t.key).then(|| t.user.into()),
            key_is_session,
            others: RwLock::new(if key_is_session {
                Vec::new()
            } else {
                vec![t.session.into()]
            }),
            absolute_deadline: t
                .absolute_lifetime
                .map_or(u64::MAX, |d| now.saturating_add(duration_millis(d))),
            last_activity: AtomicU64::new(now),
            timeout_ms: AtomicU64::new(duration_millis(t.timeout)),
            warned_for: AtomicU64::new(0),
            state: AtomicU8::new(LIVE),
        });
        {
            let mut table = write(self.shard(hash));
            if let Some(existing) = table.find(hash, |e| &*e.key == t.key).cloned() {
                if existing.settled_state() == LIVE {
                    // Another request created it first; a replaced period
                    // was claimed by us and must still be logged out.
                    return replacing.map(|expired| TouchOutcome::Replaced {
                        deadline: Timestamp::from_millis(existing.deadline()),
                        expired,
                    });
                }
                remove_ptr(&mut table, hash, existing);
            }
            table.insert_unique(hash, entry.clone(), |e| self.hasher.hash_one(&*e.key));
        }
        let deadline = Timestamp::from_millis(entry.deadline());
        let due = entry.next_due(duration_millis(t.timing.warn_before));
        lock(&self.index).file(entry, due);
        Some(match replacing {
            Some(expired) => TouchOutcome::Replaced { deadline, expired },
            None => TouchOutcome::Live { deadline },
        })
    }

    /// A request found its key past the deadline.
    fn expire_at_gate(&self, hash: u64, entry: &Arc<Entry>, t: &Touch<'_>) -> Option<TouchOutcome> {
        let now = t.now.as_millis();
        match entry.try_claim(now) {
            Some(cause) => Some(TouchOutcome::Expired(
                self.finish_claim(hash, entry, cause, t.timing, now),
            )),
            None if entry.settled_state() == CLAIMED => Some(TouchOutcome::Refused),
            None => None,
        }
    }

    /// The claimed key's sessions are remembered as timed out, then the key
    /// is dropped: in this order, so no request finds neither.
    fn finish_claim(
        &self,
        hash: u64,
        entry: &Arc<Entry>,
        cause: Cause,
        timing: Timing,
        now: u64,
    ) -> Expired {
        let sessions = entry.sessions();
        let until = now.saturating_add(duration_millis(timing.remember));
        {
            let mut remembered = lock(&self.remembered);
            let slot = remembered.by_time.entry(until).or_default();
            slot.extend(sessions.iter().map(|s| s.as_str().into()));
            for s in &sessions {
                remembered.until.insert(s.as_str().into(), until);
            }
        }
        remove_ptr(&mut write(self.shard(hash)), hash, entry.clone());
        Expired {
            key: entry.key.to_string(),
            user: entry.user().to_owned(),
            sessions,
            deadline: Timestamp::from_millis(entry.deadline()),
            cause,
            claim: None,
        }
    }

    fn is_remembered(&self, session: &str, now: u64) -> bool {
        lock(&self.remembered)
            .until
            .get(session)
            .is_some_and(|until| *until > now)
    }

    /// Removes `entry` without an event if it is live.
    fn remove_entry(&self, hash: u64, entry: &Arc<Entry>) -> bool {
        loop {
            match entry.state.compare_exchange(LIVE, REMOVED, SeqCst, SeqCst) {
                Ok(_) => {
                    remove_ptr(&mut write(self.shard(hash)), hash, entry.clone());
                    return true;
                }
                Err(CLAIMING) => std::hint::spin_loop(),
                Err(_) => return false,
            }
        }
    }

    fn claim_due_now(&self, now: u64, timing: Timing, limit: usize) -> Vec<Due> {
        let warn_ms = duration_millis(timing.warn_before);
        let mut visits = 0u64;
        let mut out = Vec::new();
        let mut claimed = Vec::new();
        {
            let mut guard = lock(&self.index);
            let index = &mut *guard;
            while let Some(first) = index.buckets.first_entry() {
                if first.key().saturating_mul(BUCKET_MS) > now {
                    break;
                }
                for entry in first.remove() {
                    visits += 1;
                    if entry.state.load(SeqCst) == LIVE {
                        let due = entry.next_due(warn_ms);
                        index.near.push(Near { due, entry });
                    }
                }
            }
            while out.len() + claimed.len() < limit {
                let Some(top) = index.near.peek() else { break };
                if top.due > now {
                    break;
                }
                let Some(Near { entry, .. }) = index.near.pop() else {
                    break;
                };
                visits += 1;
                if entry.state.load(SeqCst) != LIVE {
                    continue; // logged out at the gate or explicitly
                }
                let deadline = entry.deadline();
                let warn_at = deadline.saturating_sub(warn_ms);
                if warn_ms > 0
                    && entry.warned_for.load(SeqCst) != deadline
                    && warn_at <= now
                    && now < deadline
                {
                    entry.warned_for.store(deadline, SeqCst);
                    out.push(Due::Warning(DueWarning {
                        key: entry.key.to_string(),
                        deadline: Timestamp::from_millis(deadline),
                        claim: None,
                    }));
                    index.file(entry, deadline);
                } else if deadline <= now {
                    match entry.try_claim(now) {
                        Some(cause) => claimed.push((entry, cause)),
                        None if entry.state.load(SeqCst) == LIVE => {
                            let due = entry.next_due(warn_ms);
                            index.file(entry, due);
                        }
                        None => {}
                    }
                } else {
                    // Activity moved the deadline since it was filed.
                    let due = entry.next_due(warn_ms);
                    index.file(entry, due);
                }
            }
        }
        for (entry, cause) in claimed {
            let hash = self.hash(&entry.key);
            out.push(Due::Expiry(
                self.finish_claim(hash, &entry, cause, timing, now),
            ));
        }
        lock(&self.remembered).purge(now);
        self.sweep_visits.fetch_add(visits, SeqCst);
        out
    }
}

/// The fast path: one entry under its shard's read lock.
fn touch_entry(entry: &Arc<Entry>, t: &Touch<'_>, now: u64) -> Found {
    if !entry.has_session(t.session) {
        return Found::Join(entry.clone());
    }
    match entry.settled_state() {
        LIVE => {}
        CLAIMED => return Found::Done(TouchOutcome::Refused),
        _ => return Found::Create,
    }
    let deadline = entry.deadline();
    if now >= deadline {
        return Found::Expire(entry.clone());
    }
    if t.kind == RequestKind::Passive {
        return Found::Done(TouchOutcome::Live {
            deadline: Timestamp::from_millis(deadline),
        });
    }
    let timeout = duration_millis(t.timeout);
    if entry.timeout_ms.load(SeqCst) != timeout {
        // The user's groups changed. A shorter timeout may now fall before
        // the time the entry is filed under; the sweeper will still see it
        // at the filed time, and the gate enforces it from now on.
        entry.timeout_ms.store(timeout, SeqCst);
    }
    // Most requests of a hot key arrive within the same millisecond: skip
    // the write (and the cache-line transfer) when it changes nothing.
    if entry.last_activity.load(SeqCst) < now {
        entry.last_activity.fetch_max(now, SeqCst);
    }
    match entry.settled_state() {
        LIVE => Found::Done(TouchOutcome::Live {
            deadline: Timestamp::from_millis(entry.deadline()),
        }),
        CLAIMED => Found::Done(TouchOutcome::Refused),
        _ => Found::Create,
    }
}

fn remove_ptr(table: &mut HashTable<Arc<Entry>>, hash: u64, entry: Arc<Entry>) {
    if let Ok(slot) = table.find_entry(hash, |e| Arc::ptr_eq(e, &entry)) {
        slot.remove();
    }
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
            .filter(|e| e.settled_state() == LIVE)
            .map(|e| Timestamp::from_millis(e.deadline())))
    }

    async fn end_session(&self, key: &str, session: &str) -> Result<bool, StoreError> {
        let hash = self.hash(key);
        let Some(entry) = self.lookup(hash, key) else {
            return Ok(false);
        };
        if entry.key_is_session && session == &*entry.key {
            return Ok(self.remove_entry(hash, &entry));
        }
        let now_empty = {
            let mut others = write(&entry.others);
            let before = others.len();
            others.retain(|s| &**s != session);
            if others.len() == before {
                return Ok(false);
            }
            others.is_empty() && !entry.key_is_session
        };
        if now_empty {
            self.remove_entry(hash, &entry);
        }
        Ok(true)
    }

    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let hash = self.hash(key);
        Ok(match self.lookup(hash, key) {
            Some(entry) => self.remove_entry(hash, &entry),
            None => false,
        })
    }

    async fn forget_timed_out(&self, session: &str) -> Result<(), StoreError> {
        lock(&self.remembered).until.remove(session);
        Ok(())
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
}

#[cfg(test)]
mod tests;
