//! Delivery of notifications to this replica's open subscriptions (the
//! WebSocket and SSE streams of each key).

use std::{
    collections::VecDeque,
    hash::BuildHasher,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use hashbrown::{DefaultHashBuilder, HashMap};
use tokio::sync::mpsc;

use crate::{KeyEvent, Notification};

/// Queued notifications per subscription. A key gets at most a warning and a
/// logout per idle period, so a full queue means the client stopped reading.
const QUEUE: usize = 16;
const SHARDS: usize = 16;
/// How long event ids are remembered to drop a second delivery of the same
/// claim: a claim is delivered again when its first claimer died before
/// acknowledging it (after the store's lease, seconds), or when a replica
/// reads events again after a reconnect.
const REMEMBER_IDS: std::time::Duration = std::time::Duration::from_secs(30);
/// At most this many ids are remembered (10,000 events a second for the
/// whole window, and more): past it the oldest go first.
const MAX_RECENT_IDS: usize = 500_000;

struct Subscriber {
    id: u64,
    session: Arc<str>,
    user: Arc<str>,
    tx: mpsc::Sender<Notification>,
}

/// A key this replica knows to be in use: one with open subscriptions here.
/// A store that lost its state logs these out rather than forgetting them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KnownKey {
    /// The key.
    pub key: String,
    /// Its user.
    pub user: String,
    /// The sessions with subscriptions here.
    pub sessions: Vec<String>,
}

impl KnownKey {
    /// `key` of `user`, with its `sessions`: for stores that know keys of
    /// their own (a cache) and log them out the same way.
    pub fn new(key: String, user: String, sessions: Vec<String>) -> KnownKey {
        KnownKey {
            key,
            user,
            sessions,
        }
    }
}

type Shard = HashMap<Box<str>, Vec<Subscriber>>;

/// The subscriptions of this replica, by key.
pub(crate) struct Hub {
    max_per_key: usize,
    shards: Box<[Mutex<Shard>]>,
    hasher: DefaultHashBuilder,
    next_id: AtomicU64,
    recent: Mutex<RecentIds>,
}

/// The event ids delivered in the last [`REMEMBER_IDS`], oldest first out.
struct RecentIds {
    set: hashbrown::HashSet<Arc<str>>,
    /// When each was delivered (ms since `origin`), in order.
    order: VecDeque<(u64, Arc<str>)>,
    origin: std::time::Instant,
}

impl Default for RecentIds {
    fn default() -> Self {
        RecentIds {
            set: hashbrown::HashSet::new(),
            order: VecDeque::new(),
            origin: std::time::Instant::now(),
        }
    }
}

impl RecentIds {
    /// Remembers `id`; false if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.insert_at(id, now)
    }

    fn insert_at(&mut self, id: &str, now_ms: u64) -> bool {
        let window = u64::try_from(REMEMBER_IDS.as_millis()).unwrap_or(u64::MAX);
        while let Some((at, _)) = self.order.front() {
            if now_ms.saturating_sub(*at) < window && self.order.len() < MAX_RECENT_IDS {
                break;
            }
            if let Some((_, oldest)) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        if self.set.contains(id) {
            return false;
        }
        let id: Arc<str> = id.into();
        self.set.insert(Arc::clone(&id));
        self.order.push_back((now_ms, id));
        true
    }
}

impl Hub {
    pub(crate) fn new(max_per_key: usize) -> Arc<Hub> {
        Arc::new(Hub {
            max_per_key: max_per_key.max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: DefaultHashBuilder::default(),
            next_id: AtomicU64::new(1),
            recent: Mutex::new(RecentIds::default()),
        })
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding the lock leaves plain data behind, still
        // consistent: keep serving rather than poisoning every later call.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn subscribe(
        self: &Arc<Self>,
        key: &str,
        session: Arc<str>,
        user: Arc<str>,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(key);
        let subscriber = Subscriber {
            id,
            session,
            user,
            tx,
        };
        match shard.get_mut(key) {
            Some(subs) => {
                subs.retain(|s| !s.tx.is_closed());
                if subs.len() >= self.max_per_key {
                    // The oldest goes: dropping its sender ends its stream.
                    subs.remove(0);
                    tracing::info!(
                        target: "timeout",
                        "a key reached {} notification subscriptions on this replica; closed \
                         its oldest",
                        self.max_per_key
                    );
                }
                subs.push(subscriber);
            }
            None => {
                shard.insert(key.into(), vec![subscriber]);
            }
        }
        Subscription {
            rx: Some(rx),
            registration: Some((Arc::clone(self), key.into(), id)),
        }
    }

    /// Sends `event` to the subscriptions of its key (only those of its
    /// sessions, if it names any); a logout also ends them. Returns how many
    /// received it.
    pub(crate) fn deliver(&self, event: &KeyEvent) -> usize {
        if let Some(id) = &event.id
            && !self
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id)
        {
            return 0; // a claim delivered again after its lease ran out
        }
        let mut shard = self.shard(&event.key);
        let Some(subs) = shard.get_mut(event.key.as_str()) else {
            return 0;
        };
        let targeted = |s: &Subscriber| {
            event.sessions.is_empty() || event.sessions.iter().any(|t| **t == *s.session)
        };
        let sent = if event.notification.is_logout() {
            // Dropping the senders ends each stream right after the logout.
            if subs.iter().all(targeted) {
                let ended = std::mem::take(subs);
                send_all(&ended, &event.notification)
            } else {
                let (ended, kept): (Vec<_>, Vec<_>) = subs.drain(..).partition(|s| targeted(s));
                *subs = kept;
                send_all(&ended, &event.notification)
            }
        } else {
            subs.retain(|s| !s.tx.is_closed());
            let targets: Vec<&Subscriber> = subs.iter().filter(|s| targeted(s)).collect();
            send_all(targets, &event.notification)
        };
        if subs.is_empty() {
            shard.remove(event.key.as_str());
        }
        sent
    }

    /// Ends the subscriptions of one session of `key` (explicit logout).
    pub(crate) fn close_session(&self, key: &str, session: &str) {
        self.remove_where(key, |s| &*s.session == session);
    }

    fn unsubscribe(&self, key: &str, id: u64) {
        self.remove_where(key, |s| s.id == id);
    }

    fn remove_where(&self, key: &str, doomed: impl Fn(&Subscriber) -> bool) {
        let mut shard = self.shard(key);
        if let Some(subs) = shard.get_mut(key) {
            subs.retain(|s| !doomed(s));
            if subs.is_empty() {
                shard.remove(key);
            }
        }
    }

    /// Open subscriptions on this replica, every key.
    pub(crate) fn open_subscriptions(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard.values().map(Vec::len).sum::<usize>()
            })
            .sum()
    }

    /// Open subscriptions of `key` on this replica.
    pub(crate) fn subscribers(&self, key: &str) -> usize {
        self.shard(key).get(key).map_or(0, Vec::len)
    }

    /// Every key with an open subscription here, and its sessions.
    pub(crate) fn known_keys(&self) -> Vec<KnownKey> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, subs) in shard.iter() {
                let open: Vec<&Subscriber> = subs.iter().filter(|s| !s.tx.is_closed()).collect();
                let Some(first) = open.first() else { continue };
                let mut sessions: Vec<String> =
                    open.iter().map(|s| s.session.to_string()).collect();
                sessions.sort_unstable();
                sessions.dedup();
                out.push(KnownKey::new(
                    key.to_string(),
                    first.user.to_string(),
                    sessions,
                ));
            }
        }
        out
    }
}

fn send_all<'a>(
    subs: impl IntoIterator<Item = &'a Subscriber>,
    notification: &Notification,
) -> usize {
    let mut sent = 0;
    for s in subs {
        match s.tx.try_send(notification.clone()) {
            Ok(()) => sent += 1,
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!(
                target: "timeout",
                "a notification subscriber has {QUEUE} unread messages; dropping {notification:?}"
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    sent
}

/// A stream of one key's notifications on this replica: what a WebSocket or
/// SSE endpoint forwards. It ends after a logout, or when the tracker is
/// dropped. Dropping it unsubscribes.
///
/// ```
/// use timeout_core::{Policy, Subject, Tracker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build().unwrap());
/// let alice = Subject::new("s1", "alice").unwrap();
/// let mut events = tracker.subscribe(&alice);
/// assert_eq!(events.try_next(), Ok(None)); // nothing yet
/// # }
/// ```
pub struct Subscription {
    /// `None` for a silent subscription.
    rx: Option<mpsc::Receiver<Notification>>,
    registration: Option<(Arc<Hub>, Box<str>, u64)>,
}

/// The subscription has ended (after a logout) and will yield nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscription has ended")]
pub struct Ended;

impl Subscription {
    /// A subscription that never yields: for subjects that get no events
    /// (exempt users, timeout disabled). It stays open until dropped.
    pub(crate) fn silent() -> Subscription {
        Subscription {
            rx: None,
            registration: None,
        }
    }

    /// The next notification; `None` once the subscription has ended.
    pub async fn recv(&mut self) -> Option<Notification> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// The next notification if one is waiting, without blocking.
    pub fn try_next(&mut self) -> Result<Option<Notification>, Ended> {
        let Some(rx) = &mut self.rx else {
            return Ok(None);
        };
        match rx.try_recv() {
            Ok(n) => Ok(Some(n)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(Ended),
        }
    }
}

impl futures_core::Stream for Subscription {
    type Item = Notification;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        match &mut self.rx {
            Some(rx) => rx.poll_recv(cx),
            // Silent: nothing will ever arrive, so no waker needs keeping.
            None => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some((hub, key, id)) = self.registration.take() {
            hub.unsubscribe(&key, id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("key", &self.registration.as_ref().map(|(_, k, _)| k))
            .finish()
    }
}

/// Where a shared store delivers the events it receives from other replicas
/// (see [`Store::attach`](crate::Store::attach)).
#[derive(Clone)]
pub struct EventSink {
    hub: Arc<Hub>,
}

impl EventSink {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        EventSink { hub }
    }

    /// Delivers `event` to this replica's subscribers of its key; returns how
    /// many received it.
    pub fn deliver(&self, event: &KeyEvent) -> usize {
        self.hub.deliver(event)
    }

    /// Ends this replica's subscriptions of one session of `key`: the session
    /// was logged out explicitly on another replica.
    pub fn close_session(&self, key: &str, session: &str) {
        self.hub.close_session(key, session);
    }

    /// The keys with open subscriptions on this replica.
    pub fn known_keys(&self) -> Vec<KnownKey> {
        self.hub.known_keys()
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(id: Option<&str>) -> KeyEvent {
        KeyEvent {
            key: "alice".into(),
            notification: Notification::warning(std::time::Duration::from_secs(60)),
            sessions: Vec::new(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn a_claim_delivered_twice_reaches_subscribers_once() {
        let hub = Hub::new(8);
        let mut sub = hub.subscribe("alice", "s1".into(), "alice".into());
        assert_eq!(hub.deliver(&warning(Some("w:alice:1"))), 1);
        assert_eq!(hub.deliver(&warning(Some("w:alice:1"))), 0);
        assert_eq!(hub.deliver(&warning(Some("w:alice:2"))), 1);
        // Events without a claim id (the memory store) are never merged.
        assert_eq!(hub.deliver(&warning(None)), 1);
        assert_eq!(hub.deliver(&warning(None)), 1);
        let mut received = 0;
        while let Ok(Some(_)) = sub.try_next() {
            received += 1;
        }
        assert_eq!(received, 4);
    }

    #[test]
    fn ids_are_remembered_for_the_window_at_10_000_events_a_second() {
        let mut recent = RecentIds::default();
        // 10,000 events a second for 20 s: every one still remembered.
        for i in 0..200_000u64 {
            assert!(recent.insert_at(&format!("x:user{i}:1"), i / 10));
        }
        assert!(
            !recent.insert_at("x:user0:1", 20_000),
            "20 s later: a repeat"
        );
        assert!(!recent.insert_at("x:user199999:1", 20_000));
        // Past the window the oldest are forgotten.
        assert!(recent.insert_at("x:user0:1", 40_000));
        assert!(recent.set.len() < 200_000);
    }

    #[test]
    fn remembered_ids_are_bounded() {
        let mut recent = RecentIds::default();
        for i in 0..MAX_RECENT_IDS + 10 {
            assert!(recent.insert_at(&i.to_string(), 0));
        }
        assert_eq!(recent.set.len(), MAX_RECENT_IDS);
        assert!(
            recent.insert_at("0", 0),
            "the oldest ids are forgotten first"
        );
    }
}
