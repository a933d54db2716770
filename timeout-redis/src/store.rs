//! The [`RedisStore`] and its [`Store`] implementation.

use std::{
    borrow::Cow,
    fmt,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures_util::future::join_all;
use redis::{AsyncCommands, RedisError, ScriptInvocation, Value};
use timeout_core::{
    RequestKind, Scope, Store, Timestamp,
    events::EventSink,
    store::{Claim, Due, Expired, StoreError, Timing, Touch, TouchOutcome, TrackedKey},
    wire::KeyEvent,
};

use crate::{
    batches::{self, Event, Held},
    cache::Cache,
    conn::Conn,
    fanout::{FanIn, Message, STREAM_CAP, read_events},
    layout::{Layout, escape},
    reply::{Reply, corrupt},
    scripts::Scripts,
    server_clock::ServerClocks,
    state_loss::{Epochs, Loss},
};

mod claims;
mod flush;
mod operator;

/// A shard whose next due time is known is swept again before it only this
/// often, to find keys other replicas filed earlier.
const RECHECK_SHARD_MS: u64 = 1_000;
/// Fewest events claimed per shard and call.
const MIN_CLAIM_PER_SHARD: usize = 32;
/// Failures of background work are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The cache drops entries this long past their deadline.
const PRUNE_AFTER_MS: u64 = 60_000;

pub(crate) struct Settings {
    pub(crate) what: String,
    pub(crate) flush_interval: Duration,
    pub(crate) lease: Duration,
    pub(crate) command_timeout: Duration,
    /// After a state loss, track unknown sessions afresh instead of logging
    /// them out (the behaviour before loss detection; off by default).
    pub(crate) retrack_after_loss: bool,
}

/// What is known of one shard's next due event.
struct ShardHint {
    /// Server ms of its earliest due event (`u64::MAX`: none).
    next: AtomicU64,
    /// Server ms of its last sweep.
    swept: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) conn: Conn,
    pub(crate) layout: Layout,
    pub(crate) scripts: Scripts,
    pub(crate) settings: Settings,
    clock: ServerClocks,
    pub(crate) cache: Arc<Cache>,
    pub(crate) fan_in: Arc<FanIn>,
    /// What this replica knows of each shard's state incarnation.
    pub(crate) epochs: Epochs,
    hints: Box<[ShardHint]>,
    /// Extra lead the local answer needs over the deadline.
    margin_ms: u64,
    last_log: std::sync::Mutex<Option<Instant>>,
    flushed: AtomicU64,
    /// Claimed batches this replica has not acknowledged in full: their
    /// leases are renewed until it does.
    held: Held,
    /// Makes batch ids unique to this replica.
    next_batch: AtomicU64,
    /// Held claims whose acknowledgement failed, to send again.
    unacked: std::sync::Mutex<hashbrown::HashSet<Claim>>,
    renewed: AtomicU64,
    /// The timing of the last call that carried it, for background work
    /// that needs it (a flush that finds keys lost).
    last_timing: std::sync::Mutex<Timing>,
}

/// Counters that show what the store does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RedisStoreStats {
    /// Keys whose deadline this replica holds in its cache.
    pub cached: u64,
    /// Keys' activity sent to Redis by flushes.
    pub flushed: u64,
    /// Messages of other replicas read from the event stream.
    pub received: u64,
    /// Entries of the event stream that could not be read (set aside).
    pub unreadable_events: u64,
    /// Times this replica found events trimmed from the stream before it
    /// read them (it was disconnected longer than the stream holds).
    pub event_gaps: u64,
    /// Claims held now (claimed, not yet acknowledged).
    pub held: u64,
    /// Lease renewals sent for held claims.
    pub renewed: u64,
}

/// The idle-timeout [`Store`] on Redis, shared by every replica. Cheap to
/// clone; clones share the connection and cache. Built with
/// [`RedisStore::builder`] or [`RedisStore::cluster`].
///
/// ```no_run
/// use std::sync::Arc;
/// use timeout_core::{Policy, Tracker};
/// use timeout_redis::RedisStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379").connect().await?;
/// let tracker = Tracker::builder(Policy::builder().enabled(true).build()?)
///     .store(Arc::new(store.clone()))
///     .build();
/// println!("{:?}", store.stats());
/// # let _ = tracker; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.inner.settings.what)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The longest duration handed to a script, in ms: Lua numbers are doubles,
/// exact only below 2^53, and a deadline is a time plus a duration. 2^52 ms
/// is 140,000 years: a longer setting means "never" just as well.
const MAX_SCRIPT_MS: u64 = 1 << 52;

/// `d` in ms, as the scripts take it.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(MAX_SCRIPT_MS, |ms| ms.min(MAX_SCRIPT_MS))
}

impl RedisStore {
    pub(crate) fn assemble(conn: Conn, layout: Layout, settings: Settings) -> RedisStore {
        let cluster = matches!(conn, Conn::Cluster(_));
        let cache = Arc::new(Cache::new());
        let fan_in = Arc::new(FanIn::new(replica_id(), Arc::clone(&cache)));
        let shard_count = layout.shard_count();
        let hints = (0..layout.shard_count())
            .map(|_| ShardHint {
                next: AtomicU64::new(0),
                swept: AtomicU64::new(0),
            })
            .collect();
        // A local answer must stay right until the activity reaches Redis:
        // two flush intervals, a flush that waits a whole command timeout,
        // and the clock estimate's error (half a round trip, at most another
        // command timeout).
        let margin_ms = 2 * ms(settings.flush_interval) + 2 * ms(settings.command_timeout);
        RedisStore {
            inner: Arc::new(Inner {
                conn,
                layout,
                scripts: Scripts::new(),
                settings,
                clock: ServerClocks::new(shard_count, cluster),
                cache,
                fan_in,
                hints,
                margin_ms,
                epochs: Epochs::new(shard_count),
                last_log: std::sync::Mutex::new(None),
                flushed: AtomicU64::new(0),
                held: Held::default(),
                next_batch: AtomicU64::new(0),
                unacked: std::sync::Mutex::new(hashbrown::HashSet::new()),
                renewed: AtomicU64::new(0),
                last_timing: std::sync::Mutex::new(Timing::new(
                    Duration::ZERO,
                    timeout_core::config::DEFAULT_REMEMBER,
                )),
            }),
        }
    }

    pub(crate) fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    pub(crate) fn fan_in(&self) -> Arc<FanIn> {
        Arc::clone(&self.inner.fan_in)
    }

    pub(crate) fn events_stream(&self) -> String {
        self.inner.layout.events_stream()
    }

    pub(crate) async fn load_scripts(&self) -> Result<(), RedisError> {
        let mut conn = self.inner.conn.clone();
        for script in self.inner.scripts.all() {
            script.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    /// Learns each shard's state incarnation (creating it on an empty
    /// namespace), so a later loss of it is noticed.
    pub(crate) async fn init_epochs(&self) -> Result<(), StoreError> {
        self.inner.init_epochs().await
    }

    /// Starts the background work: flushing activity, reading the event
    /// stream (on `reader`, a connection of its own), renewing leases,
    /// pruning the cache. It ends with the last clone.
    pub(crate) fn start(&self, reader: Conn) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(maintain(weak.clone(), self.inner.settings.flush_interval));
        tokio::spawn(renew_leases(weak.clone(), self.inner.settings.lease));
        tokio::spawn(read_events(
            weak,
            Arc::clone(&self.inner.fan_in),
            reader,
            self.inner.layout.events_stream(),
        ));
    }

    /// What the store holds and has done.
    pub fn stats(&self) -> RedisStoreStats {
        RedisStoreStats {
            cached: self.inner.cache.len() as u64,
            flushed: self.inner.flushed.load(Relaxed),
            received: self.inner.fan_in.received.load(Relaxed),
            unreadable_events: self.inner.fan_in.unreadable.load(Relaxed),
            event_gaps: self.inner.fan_in.gaps.load(Relaxed),
            held: self.inner.held.len() as u64,
            renewed: self.inner.renewed.load(Relaxed),
        }
    }

    /// Sends the activity seen locally to Redis now, rather than at the next
    /// flush interval (before a planned shutdown, say).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

async fn maintain(weak: Weak<Inner>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        if let Err(err) = inner.flush().await {
            inner.log_background(&format!(
                "could not send recent activity to the timeout store ({err}); it is kept and \
                 sent again when Redis answers"
            ));
        }
        if last_prune.elapsed() >= Duration::from_secs(1) {
            last_prune = Instant::now();
            if let Some(now) = inner.clock.any_now() {
                inner.cache.prune(now.saturating_sub(PRUNE_AFTER_MS));
            }
        }
    }
}

/// Renews the leases of held claims four times per lease, in a task of its
/// own so a slow flush never delays it: one lost round trip still leaves
/// time before the lease runs out.
async fn renew_leases(weak: Weak<Inner>, lease: Duration) {
    let mut tick = tokio::time::interval(lease / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        if let Err(err) = inner.ack_again().await {
            inner.log_background(&format!(
                "could not acknowledge handled logouts ({err}); they stay held and are \
                 acknowledged again"
            ));
        }
        if let Err(err) = inner.renew().await {
            inner.log_background(&format!(
                "could not renew the leases of claimed logouts ({err}); if Redis stays away \
                 longer than the lease, another replica may run their hooks again, with the \
                 same run id"
            ));
        }
    }
}

fn replica_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}-{:x}-{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Relaxed)
    )
}

impl Inner {
    pub(crate) fn note_timing(&self, timing: Timing) {
        *self
            .last_timing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = timing;
    }

    pub(crate) fn timing(&self) -> Timing {
        *self
            .last_timing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new batch id, unique across replicas.
    pub(crate) fn batch_id(&self) -> String {
        format!(
            "{}.{}",
            self.fan_in.replica,
            self.next_batch.fetch_add(1, Relaxed)
        )
    }

    /// Calls a script once for each shard with something in `groups`
    /// (indexed by shard), all at once: shards are independent, so one round
    /// trip serves them all. `invocation` builds a shard's call from its
    /// items. Each reply comes with its shard.
    async fn per_shard<'a, T>(
        &'a self,
        groups: &'a [Vec<T>],
        invocation: impl Fn(usize, &'a [T]) -> ScriptInvocation<'a>,
    ) -> Vec<(usize, Result<Reply, StoreError>)> {
        join_all(
            groups
                .iter()
                .enumerate()
                .filter(|(_, items)| !items.is_empty())
                .map(|(shard, items)| {
                    let invocation = invocation(shard, items);
                    async move { (shard, self.call(shard, &invocation).await) }
                }),
        )
        .await
    }

    fn error(&self, err: RedisError) -> StoreError {
        crate::refusals::store_error(err, &self.settings.what)
    }

    pub(crate) fn log_background(&self, message: &str) {
        let mut last = self
            .last_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::error!(target: "timeout", "{message} (repeats at most every 10 s)");
        }
    }

    /// Runs a script on `shard` and follows the server clock it reports
    /// (that shard's node's, on a cluster).
    pub(crate) async fn call(
        &self,
        shard: usize,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Reply, StoreError> {
        let sent = Instant::now();
        let value: Value = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(e))?;
        let reply = Reply::new(value)?;
        self.clock
            .of_shard(shard)
            .observe(sent, reply.server_time()?);
        Ok(reply)
    }

    fn lower_hint(&self, shard: usize, due: u64) {
        self.hints[shard].next.fetch_min(due, Relaxed);
    }

    async fn touch(&self, t: &Touch<'_>) -> Result<TouchOutcome, StoreError> {
        self.note_timing(t.timing);
        let shard = self.layout.shard_of(t.key);
        // A first answer that the shard's state changed is handled, then the
        // touch runs again against the new incarnation.
        for _ in 0..2 {
            if let Some(outcome) = self.touch_once(t, shard).await? {
                return Ok(outcome);
            }
        }
        Err(corrupt(
            "the timeout state of a shard changed twice during one request",
        ))
    }

    /// One touch; `None` when the shard's state turned out to have changed.
    async fn touch_once(
        &self,
        t: &Touch<'_>,
        shard: usize,
    ) -> Result<Option<TouchOutcome>, StoreError> {
        let keys = self.layout.shard(shard);
        let member = escape(t.key);
        let session = escape(t.session);
        // The user is stored only when it is not the key itself.
        let user = if t.user == t.key {
            Cow::Borrowed("")
        } else {
            escape(t.user)
        };
        let cached = self.cache.knows(t.key, t.session);
        let pending = self.cache.take_pending(t.key);
        let age = match (pending, self.clock.of_shard(shard).now()) {
            (Some(at), Some(now)) => i64::try_from(now.saturating_sub(at)).unwrap_or(i64::MAX),
            _ => -1,
        };
        let timeout = ms(t.timeout);
        let warn = ms(t.timing.warn_before);
        let (known, candidate) = self.epochs.expected(shard);
        let mut invocation = self.scripts.touch.key(&keys.records);
        invocation
            .key(&keys.due)
            .key(&keys.leases)
            .key(&keys.claims)
            .key(&keys.gone)
            .key(&keys.epoch)
            .key(&keys.dead)
            .arg(&*member)
            .arg(&*user)
            .arg(&*session)
            .arg(u8::from(t.kind == RequestKind::Activity))
            .arg(timeout)
            .arg(t.absolute_lifetime.map_or(0, ms))
            .arg(warn)
            .arg(ms(t.timing.remember))
            .arg(ms(self.settings.lease))
            .arg(age)
            .arg(&known)
            .arg(&candidate)
            .arg(u8::from(t.login))
            .arg(u8::from(cached))
            .arg(u8::from(self.settings.retrack_after_loss))
            .arg(t.timing.max_sessions);
        let reply = match self.call(shard, &invocation).await {
            Ok(reply) => reply,
            Err(err) => {
                if let Some(at) = pending {
                    self.cache.restore(t.key, at);
                }
                return Err(err);
            }
        };
        if let Some(loss) = Loss::of(&reply)? {
            self.state_changed(shard, loss, t.timing).await;
            return Ok(None);
        }
        let claimed = |batch: usize, line: usize| -> Result<Expired, StoreError> {
            match batches::read_line(shard, reply.text(batch)?, reply.text(line)?)? {
                Event::Expiry(expired) => Ok(expired),
                Event::Warning(_) => Err(corrupt("the touch script claimed a warning")),
            }
        };
        Ok(Some(match reply.text(1)? {
            "L" => {
                let (deadline, absolute) = (reply.uint(2)?, reply.uint(3)?);
                self.cache
                    .confirm(t.key, t.user, t.session, deadline, absolute, timeout);
                self.lower_hint(shard, deadline.saturating_sub(warn));
                TouchOutcome::Live {
                    deadline: Timestamp::from_millis(deadline),
                }
            }
            "R" => {
                self.cache.forget(t.key, Some(t.session));
                TouchOutcome::Refused
            }
            "M" => TouchOutcome::SessionLimit,
            "S" => {
                self.cache.forget(t.key, None);
                let expired = Expired::new(
                    t.key,
                    t.user,
                    vec![t.session.to_owned()],
                    Timestamp::from_millis(reply.uint(2)?),
                    timeout_core::store::Cause::StateLost,
                );
                self.refused_after_loss(&expired);
                self.mark_gone_elsewhere(&expired, t.timing).await;
                TouchOutcome::Expired(expired)
            }
            "X" => {
                self.cache.forget(t.key, None);
                let expired = claimed(2, 3)?;
                self.held.hold(&expired.claim);
                self.mark_gone_elsewhere(&expired, t.timing).await;
                TouchOutcome::Expired(expired)
            }
            "N" => {
                let (deadline, absolute) = (reply.uint(2)?, reply.uint(3)?);
                let expired = claimed(4, 5)?;
                self.held.hold(&expired.claim);
                self.cache.forget(t.key, None);
                self.cache
                    .confirm(t.key, t.user, t.session, deadline, absolute, timeout);
                self.lower_hint(shard, deadline.saturating_sub(warn));
                self.mark_gone_elsewhere(&expired, t.timing).await;
                TouchOutcome::Replaced {
                    deadline: Timestamp::from_millis(deadline),
                    expired,
                }
            }
            other => return Err(corrupt(format!("the touch script answered {other:?}"))),
        }))
    }

    /// Whether `session` is marked timed out or ended, in its own shard.
    async fn session_gone(&self, session: &str) -> Result<bool, StoreError> {
        let shard = self.layout.shard_of(session);
        let mut invocation = self.scripts.gone.key(&self.layout.shard(shard).gone);
        invocation.arg(&*escape(session));
        Ok(self.call(shard, &invocation).await?.int(1)? == 1)
    }

    /// Appends `message` to the event stream every replica reads.
    async fn publish(&self, message: &Message<'_>) -> Result<(), StoreError> {
        let json = serde_json::to_string(message)
            .map_err(|e| corrupt(format!("an event could not be written: {e}")))?;
        let _: Value = redis::cmd("XADD")
            .arg(self.layout.events_stream())
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_CAP)
            .arg("*")
            .arg("m")
            .arg(json)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Tells the other replicas to drop `key` (or one session of it).
    async fn announce_end(&self, key: &str, session: Option<&str>) {
        let message = Message {
            r: Cow::Borrowed(&self.fan_in.replica),
            e: Cow::Borrowed(&[]),
            k: Some(Cow::Borrowed(key)),
            s: session.map(Cow::Borrowed),
        };
        if let Err(err) = self.publish(&message).await {
            self.log_background(&format!(
                "could not tell the other replicas that a session ended ({err}); they notice \
                 at its next request"
            ));
        }
    }

    /// Forgets that `session` timed out, in the shard `shard`.
    async fn unmark_gone(&self, shard: usize, session: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .conn
            .clone()
            .zrem(&self.layout.shard(shard).gone, &*escape(session))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

#[async_trait]
impl Store for RedisStore {
    fn try_touch(&self, touch: &Touch<'_>) -> Option<TouchOutcome> {
        let inner = &self.inner;
        let now = inner.clock.of_key(&inner.layout, touch.key).now()?;
        inner.cache.touch(
            touch.key,
            touch.session,
            touch.kind,
            ms(touch.timeout),
            now,
            inner.margin_ms,
        )
    }

    async fn touch(&self, touch: &Touch<'_>) -> Result<TouchOutcome, StoreError> {
        self.inner.touch(touch).await
    }

    async fn deadline(&self, key: &str, _timing: Timing) -> Result<Option<Timestamp>, StoreError> {
        let inner = &self.inner;
        let shard = inner.layout.shard_of(key);
        let record: Option<String> = inner
            .conn
            .clone()
            .hget(&inner.layout.shard(shard).records, &*escape(key))
            .await
            .map_err(|e| inner.error(e))?;
        let Some(record) = record else {
            return Ok(None);
        };
        let in_redis = crate::layout::record_deadline(&record)
            .ok_or_else(|| corrupt(format!("the timeout record {record:?} is not readable")))?;
        // Activity seen here but not flushed yet counts too.
        let local = inner.cache.pending_deadline(key).unwrap_or(0);
        Ok(Some(Timestamp::from_millis(in_redis.max(local))))
    }

    async fn end_session(
        &self,
        key: &str,
        session: &str,
        timing: Timing,
    ) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let shard = inner.layout.shard_of(key);
        let keys = inner.layout.shard(shard);
        let member = escape(key);
        let mut invocation = inner.scripts.end_session.key(&keys.records);
        invocation
            .key(&keys.due)
            .key(&keys.gone)
            .arg(&*member)
            .arg(&*escape(session))
            .arg(ms(timing.remember));
        let reply = inner.call(shard, &invocation).await?;
        inner.cache.forget(key, Some(session));
        let ended = reply.int(1)? == 1;
        // A request that carries only the session id looks in the session's
        // own shard (on a cluster, maybe another node).
        let own = inner.layout.shard_of(session);
        if ended && own != shard {
            let ttl = reply.uint(2)?.max(1);
            let mut invocation = inner.scripts.mark_gone.key(&inner.layout.shard(own).gone);
            invocation.arg(ttl).arg(&*escape(session));
            inner.call(own, &invocation).await?;
        }
        inner.announce_end(key, Some(session)).await;
        Ok(ended)
    }

    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let shard = inner.layout.shard_of(key);
        let keys = inner.layout.shard(shard);
        let mut invocation = inner.scripts.remove.key(&keys.records);
        invocation.key(&keys.due).arg(&*escape(key));
        let reply = inner.call(shard, &invocation).await?;
        inner.cache.forget(key, None);
        inner.announce_end(key, None).await;
        Ok(reply.int(1)? == 1)
    }

    async fn forget_timed_out(&self, key: &str, session: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let (key_shard, own) = (inner.layout.shard_of(key), inner.layout.shard_of(session));
        // Two removals, not one: on a cluster the shards may live in
        // different slots.
        inner.unmark_gone(key_shard, session).await?;
        if own != key_shard {
            inner.unmark_gone(own, session).await?;
        }
        Ok(())
    }

    async fn timed_out(&self, session: &str, _now: Timestamp) -> Result<bool, StoreError> {
        self.inner.session_gone(session).await
    }

    async fn claim_due(
        &self,
        _now: Timestamp,
        timing: Timing,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.inner.claim_due(timing, limit).await
    }

    async fn ack(&self, claims: &[Claim]) -> Result<(), StoreError> {
        self.inner.ack(claims).await
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        let inner = &self.inner;
        let counts = join_all((0..inner.layout.shard_count()).map(|shard| {
            let mut conn = inner.conn.clone();
            let due = &inner.layout.shard(shard).due;
            async move { conn.zcard::<_, u64>(due).await }
        }))
        .await;
        counts.into_iter().try_fold(0, |sum, count| {
            count.map(|c| sum + c).map_err(|e| inner.error(e))
        })
    }

    async fn publish(&self, event: &KeyEvent) -> Result<(), StoreError> {
        self.publish_all(std::slice::from_ref(event)).await
    }

    async fn keys_of_user(&self, user: &str, scope: Scope) -> Result<Vec<TrackedKey>, StoreError> {
        self.inner.keys_of_user(user, scope).await
    }

    async fn claim_now(
        &self,
        key: &str,
        _now: Timestamp,
        timing: Timing,
    ) -> Result<Option<Expired>, StoreError> {
        self.inner.claim_now(key, timing).await
    }

    async fn publish_all(&self, events: &[KeyEvent]) -> Result<(), StoreError> {
        let inner = &self.inner;
        // One message per 1000 events keeps each one reasonably small.
        for chunk in events.chunks(1_000) {
            inner
                .publish(&Message {
                    r: Cow::Borrowed(&inner.fan_in.replica),
                    e: Cow::Borrowed(chunk),
                    k: None,
                    s: None,
                })
                .await?;
        }
        Ok(())
    }

    fn now(&self) -> Option<Timestamp> {
        self.inner.clock.any_now().map(Timestamp::from_millis)
    }

    fn attach(&self, sink: EventSink) {
        if self.inner.fan_in.sink.set(sink).is_err() {
            tracing::warn!(
                target: "timeout",
                "a RedisStore was given to a second Tracker: events from other replicas go to \
                 the first one only; build one store per tracker"
            );
        }
    }
}
