//! The [`Tracker`]: every decision of the idle timeout in one framework-free
//! place, so the axum and actix adapters behave the same.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    Claim, Clock, MemoryStore, Policy, RequestKind, Store, StoreError, StoreUnavailable, Subject,
    Subscription, SystemClock, TimeoutHook, Timestamp, Timing, Touch, TouchOutcome, audit,
    deferred::{DeferredActivity, EndedSessions},
    hook_runs::{self, HookCounters, HookPolicy},
    hub::{EventSink, Hub},
    telemetry,
};

mod admin;
mod decision;
mod logout;
mod sweep;

pub use self::admin::{AdminError, SessionDeadline};
pub(crate) use self::decision::UNAVAILABLE;
pub use self::decision::{Check, Decision, Refusal, SESSION_LIMIT_JSON, UNAVAILABLE_JSON};

/// How many due events one store call claims.
pub(crate) const CLAIM_BATCH: usize = 1_000;
/// Logouts whose hooks run at once; beyond it the sweeper waits for a free
/// slot, so a slow hook target (a license server) is not flooded. A hung
/// hook holds one slot until its timeout, never the sweeper.
const MAX_RUNNING_HOOKS: usize = 1_024;
/// At most one "store unreachable" error per this many milliseconds: an
/// outage must not turn every request into a log line.
const STORE_ERROR_LOG_EVERY_MS: u64 = 10_000;

/// What the tracker's hooks have done since it was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TrackerStats {
    /// Hook runs that succeeded (on the first attempt or a retry).
    pub hooks_succeeded: u64,
    /// Hook attempts that returned an error.
    pub hook_attempts_failed: u64,
    /// Hook attempts that did not finish within the hook timeout.
    pub hook_attempts_timed_out: u64,
    /// Hook runs given up after every retry: logged on the audit target
    /// with the user, the hook and the run id, for someone to redo by hand.
    pub hooks_dead: u64,
    /// Logouts whose hooks are running now.
    pub logouts_running: u64,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SweepReport {
    /// Warnings sent.
    pub warnings: usize,
    /// Keys logged out.
    pub logouts: usize,
}

struct Inner {
    policy: Policy,
    timing: Timing,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    hooks: Box<[Arc<dyn TimeoutHook>]>,
    hook_policy: HookPolicy,
    hook_counters: HookCounters,
    /// Free slots for logouts' hook runs.
    hook_slots: Arc<Semaphore>,
    /// Claims of finished logouts, acknowledged together.
    acks: std::sync::Mutex<Vec<Claim>>,
    last_store_error_log: AtomicU64,
    ended: EndedSessions,
}

/// Tracks activity and decides, per request, whether the session lives.
/// Cheap to clone; clones share everything.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::{Decision, Policy, RequestKind, Subject, Timestamp, Tracker, clock::ManualClock};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
/// let policy = Policy::builder()
///     .enabled(true)
///     .idle_timeout(Duration::from_secs(60))
///     .warn_before(Duration::from_secs(10))
///     .build()?;
/// let tracker = Tracker::builder(policy).clock(clock.clone()).build();
/// let alice = Subject::new("s1", "alice")?;
///
/// let first = tracker.check(Some(&alice), RequestKind::Activity).await;
/// assert!(matches!(first, Decision::Allowed { .. }));
///
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(tracker.check(Some(&alice), RequestKind::Passive).await, Decision::TimedOut);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("policy", &self.inner.policy)
            .field("store", &self.inner.store)
            .field("clock", &self.inner.clock)
            .field("hooks", &self.inner.hooks.len())
            .finish()
    }
}

/// Builds a [`Tracker`]: memory store and system clock unless told otherwise.
#[must_use]
pub struct TrackerBuilder {
    policy: Policy,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
    hooks: Vec<Arc<dyn TimeoutHook>>,
    hook_policy: HookPolicy,
    max_sessions: u32,
    max_subscriptions: usize,
}

/// Default of [`TrackerBuilder::max_sessions_per_key`].
pub const DEFAULT_MAX_SESSIONS: u32 = 100;
/// Default of [`TrackerBuilder::max_subscriptions_per_key`].
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 32;

impl TrackerBuilder {
    /// Most sessions one key may have at once (with scope user: one user's
    /// browsers and devices; default [`DEFAULT_MAX_SESSIONS`], at least 1).
    /// A new session past it is refused with 403 and
    /// [`SESSION_LIMIT_JSON`]; the user's other sessions go on. Bounds what
    /// one user (or one stolen password) can make the store hold.
    pub fn max_sessions_per_key(mut self, max: u32) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// Most open notification subscriptions (sockets, event streams) of one
    /// key on this replica (default [`DEFAULT_MAX_SUBSCRIPTIONS`], at least
    /// 1). A new one past it closes the oldest, whose client reconnects if
    /// it is still there: a tab left open keeps working, a flood does not
    /// grow memory.
    pub fn max_subscriptions_per_key(mut self, max: usize) -> Self {
        self.max_subscriptions = max.max(1);
        self
    }

    /// How long one attempt of a hook may take before it counts as failed
    /// (default [`DEFAULT_HOOK_TIMEOUT`](crate::hooks::DEFAULT_HOOK_TIMEOUT); at
    /// least 1 ms). A request refused at the gate waits for its logout's
    /// hooks at most this long; they go on in the background after it.
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hook_policy.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many times a failed or timed-out hook is tried again, with a
    /// backoff from 200 ms doubling to 5 s, before the run is recorded as
    /// dead (default [`DEFAULT_HOOK_RETRIES`](crate::hooks::DEFAULT_HOOK_RETRIES)).
    pub fn hook_retries(mut self, retries: u32) -> Self {
        self.hook_policy.retries = retries;
        self
    }

    /// Where deadlines live (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where time comes from (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Runs `hook` once per timeout; hooks run in the order added.
    pub fn hook(mut self, hook: impl TimeoutHook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// The tracker.
    pub fn build(self) -> Tracker {
        let hub = Hub::new(self.max_subscriptions);
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        store.attach(EventSink::new(Arc::clone(&hub)));
        tracing::info!(target: "timeout", "{}", self.policy);
        let timing = Timing {
            warn_before: self.policy.warn_before(),
            remember: self.policy.remember_timed_out(),
            max_sessions: self.max_sessions,
        };
        Tracker {
            inner: Arc::new(Inner {
                policy: self.policy,
                timing,
                store,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                hub,
                hooks: self.hooks.into_boxed_slice(),
                hook_policy: self.hook_policy,
                hook_counters: HookCounters::default(),
                hook_slots: Arc::new(Semaphore::new(MAX_RUNNING_HOOKS)),
                acks: std::sync::Mutex::new(Vec::new()),
                last_store_error_log: AtomicU64::new(0),
                ended: EndedSessions::default(),
            }),
        }
    }
}

impl Tracker {
    /// A tracker with the memory store and the system clock.
    pub fn new(policy: Policy) -> Tracker {
        Tracker::builder(policy).build()
    }

    /// A builder to choose the store, clock and hooks.
    pub fn builder(policy: Policy) -> TrackerBuilder {
        TrackerBuilder {
            policy,
            store: None,
            clock: None,
            hooks: Vec::new(),
            hook_policy: HookPolicy::default(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
        }
    }

    /// What the hooks have done.
    pub fn stats(&self) -> TrackerStats {
        let c = &self.inner.hook_counters;
        TrackerStats {
            hooks_succeeded: c.succeeded.load(Ordering::Relaxed),
            hook_attempts_failed: c.failed_attempts.load(Ordering::Relaxed),
            hook_attempts_timed_out: c.timed_out_attempts.load(Ordering::Relaxed),
            hooks_dead: c.dead.load(Ordering::Relaxed),
            logouts_running: (MAX_RUNNING_HOOKS - self.inner.hook_slots.available_permits()) as u64,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The current time on the tracker's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The gate: decides one request of `subject` (none when not logged in).
    ///
    /// Activity moves the deadline; a passive request only checks it. A
    /// subject past its deadline is refused and logged out here, at once,
    /// even if no sweep has run: the logout (notifications, hooks, audit)
    /// runs exactly once, whether here or in the sweeper.
    pub fn check(&self, subject: Option<&Subject>, kind: RequestKind) -> Check {
        self.check_as(subject, kind, false)
    }

    /// [`check`](Tracker::check), telling the store whether this is the
    /// application's login of the subject.
    fn check_as(&self, subject: Option<&Subject>, kind: RequestKind, login: bool) -> Check {
        let policy = &self.inner.policy;
        if !policy.enabled() {
            return Check::ready(Decision::Disabled);
        }
        let Some(subject) = subject else {
            return Check::ready(Decision::NotTracked);
        };
        if policy.is_exempt(subject.user()) {
            return Check::ready(Decision::Exempt);
        }
        let touch = self.touch_of(subject, kind, self.inner.clock.now(), login);
        match self.inner.store.try_touch(&touch) {
            Some(outcome) => self.settle(outcome),
            None => {
                let tracker = self.clone();
                let span = decision_span(subject.user(), kind);
                let subject = subject.clone();
                Check::pending(
                    async move { tracker.touch_slowly(&subject, kind, login).await }
                        .instrument(span),
                )
            }
        }
    }

    /// The gate for a request without a subject that still carries the
    /// framework session id `session`: refused like a timeout if that session
    /// timed out (its framework session was destroyed, the browser still
    /// sends the cookie), so the page shows "login to continue" rather than
    /// an anonymous view; otherwise passed through untracked.
    ///
    /// ```
    /// use std::time::Duration;
    /// use timeout_core::{Decision, Policy, RequestKind, Subject, Timestamp, Tracker, clock::ManualClock};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let clock = ManualClock::new(Timestamp::from_millis(0));
    /// let policy = Policy::builder()
    ///     .enabled(true)
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .warn_before(Duration::from_secs(10))
    ///     .build()?;
    /// let tracker = Tracker::builder(policy).clock(clock.clone()).build();
    /// tracker.check(Some(&Subject::new("s1", "alice")?), RequestKind::Activity).await;
    /// clock.advance(Duration::from_secs(61));
    /// tracker.sweep().await?;
    /// assert_eq!(tracker.check_session("s1").await, Decision::TimedOut);
    /// assert_eq!(tracker.check_session("s2").await, Decision::NotTracked);
    /// # Ok(()) }
    /// ```
    pub fn check_session(&self, session: &str) -> Check {
        if !self.inner.policy.enabled() {
            return Check::ready(Decision::Disabled);
        }
        let now = self.inner.clock.now();
        match self.inner.store.try_timed_out(session, now) {
            Some(true) => Check::ready(Decision::TimedOut),
            Some(false) => Check::ready(Decision::NotTracked),
            None => {
                let tracker = self.clone();
                let session: Box<str> = session.into();
                Check::pending(async move {
                    match tracker.inner.store.timed_out(&session, now).await {
                        Ok(true) => Decision::TimedOut,
                        Ok(false) => Decision::NotTracked,
                        Err(err) => {
                            // Logged by the failure policy, but not refused:
                            // the request is anonymous to the app either way.
                            let _ = tracker.store_failed(&err);
                            Decision::NotTracked
                        }
                    }
                })
            }
        }
    }

    /// For adapters that learn only from the response whether a request was
    /// activity (per-route passive marking): call after a passive
    /// [`check`](Tracker::check) let the request through, and
    /// [`record`](DeferredActivity::record) it once the response is not
    /// marked passive. An explicit logout by the handler meanwhile wins.
    pub fn defer_activity(&self, subject: Subject) -> DeferredActivity {
        DeferredActivity::new(self.clone(), subject)
    }

    pub(crate) fn ended(&self) -> &EndedSessions {
        &self.inner.ended
    }

    /// The request classified by the policy's passive rules.
    pub fn classify(&self, request: &dyn crate::RequestView) -> RequestKind {
        self.inner.policy.passive().classify(request)
    }

    /// `GET /rest/user/timeout/reset`: counts as activity and nothing else,
    /// with an audit record.
    pub async fn reset(&self, subject: Option<&Subject>) -> Decision {
        let decision = self.check(subject, RequestKind::Activity).await;
        if let (Decision::Allowed { .. }, Some(subject)) = (decision, subject) {
            audit::reset(subject);
        }
        decision
    }

    /// The application logged `subject` in: forget that its session may have
    /// timed out before (for applications that keep session ids across
    /// logins) and start its idle period.
    pub async fn login(&self, subject: &Subject) -> Decision {
        if !self.inner.policy.enabled() {
            return Decision::Disabled;
        }
        let key = subject.key(self.inner.policy.scope());
        if let Err(err) = self
            .inner
            .store
            .forget_timed_out(key, subject.session())
            .await
        {
            return self.store_failed(&err);
        }
        self.check_as(Some(subject), RequestKind::Activity, true)
            .await
    }

    /// The application logged `subject` out: this session stops being
    /// tracked at once and gets no timeout event (the user's other sessions
    /// go on). Its notification subscriptions end.
    pub async fn logout(&self, subject: &Subject) -> Result<(), StoreError> {
        if !self.inner.policy.enabled() {
            return Ok(());
        }
        let key = subject.key(self.inner.policy.scope());
        // Marked first, so activity of this session's requests still in
        // flight is not recorded after the store forgot it.
        self.inner.ended.end(subject.session_shared());
        self.inner
            .store
            .end_session(key, subject.session(), self.inner.timing)
            .await?;
        self.inner.hub.close_session(key, subject.session());
        audit::logged_out(subject);
        telemetry::explicit_logout();
        Ok(())
    }

    /// Notifications for `subject`'s key: what the WebSocket and SSE
    /// endpoints forward. Only this key's events, never another's.
    pub fn subscribe(&self, subject: &Subject) -> Subscription {
        let policy = &self.inner.policy;
        if !policy.enabled() || policy.is_exempt(subject.user()) {
            return Subscription::silent();
        }
        let key = subject.key(policy.scope());
        self.inner
            .hub
            .subscribe(key, subject.session_shared(), subject.user_shared())
    }

    /// When `subject` times out unless active before; `None` if untracked.
    pub async fn deadline(&self, subject: &Subject) -> Result<Option<Timestamp>, StoreError> {
        let key = subject.key(self.inner.policy.scope());
        self.inner.store.deadline(key, self.inner.timing).await
    }

    /// The time `subject` has left; `None` if untracked.
    pub async fn time_left(&self, subject: &Subject) -> Result<Option<Duration>, StoreError> {
        let now = self.inner.store.now().unwrap_or_else(|| self.now());
        Ok(self
            .deadline(subject)
            .await?
            .map(|deadline| deadline.saturating_since(now)))
    }

    /// Runs the hooks' [`on_framework_session_expired`](TimeoutHook::on_framework_session_expired)
    /// for `expiry` (the audit record is [`FrameworkSessions`](crate::framework::FrameworkSessions)'s).
    pub(crate) async fn framework_session_expired(&self, expiry: &crate::FrameworkExpiry) {
        let inner = &self.inner;
        hook_runs::run_framework_expired(
            &inner.hooks,
            expiry,
            inner.hook_policy,
            &inner.hook_counters,
        )
        .await;
    }

    /// Sets the metrics' gauges and hook counters (feature `metrics`); the
    /// tracked keys only when `count_keys`, since that asks the store.
    pub(crate) async fn report_levels(&self, count_keys: bool) {
        let tracked = if count_keys {
            self.active_count().await.ok()
        } else {
            None
        };
        telemetry::levels(tracked, self.inner.hub.open_subscriptions(), self.stats());
    }

    /// Number of tracked keys: license seats in use.
    pub async fn active_count(&self) -> Result<u64, StoreError> {
        self.inner.store.count_active().await
    }

    /// Open notification subscriptions of `subject`'s key on this replica.
    pub fn subscribers(&self, subject: &Subject) -> usize {
        self.inner
            .hub
            .subscribers(subject.key(self.inner.policy.scope()))
    }

    fn touch_of<'a>(
        &self,
        subject: &'a Subject,
        kind: RequestKind,
        now: Timestamp,
        login: bool,
    ) -> Touch<'a> {
        let policy = &self.inner.policy;
        Touch {
            key: subject.key(policy.scope()),
            user: subject.user(),
            session: subject.session(),
            kind,
            now,
            timeout: policy.timeout_for(subject.groups()),
            absolute_lifetime: policy.absolute_lifetime(),
            timing: self.inner.timing,
            login,
        }
    }

    async fn touch_slowly(&self, subject: &Subject, kind: RequestKind, login: bool) -> Decision {
        let touch = self.touch_of(subject, kind, self.inner.clock.now(), login);
        match self.inner.store.touch(&touch).await {
            Ok(outcome) => self.settle(outcome).await,
            Err(err) => self.store_failed(&err),
        }
    }

    fn settle(&self, outcome: TouchOutcome) -> Check {
        match outcome {
            TouchOutcome::Live { deadline } => Check::ready(Decision::Allowed { deadline }),
            TouchOutcome::Refused => Check::ready(Decision::TimedOut),
            TouchOutcome::SessionLimit => Check::ready(Decision::SessionLimit),
            TouchOutcome::Expired(expired) => {
                let tracker = self.clone();
                let span = decision_span(&expired.user, RequestKind::Activity);
                Check::pending(
                    async move {
                        tracker.logout_at_gate(expired).await;
                        Decision::TimedOut
                    }
                    .instrument(span),
                )
            }
            TouchOutcome::Replaced { deadline, expired } => {
                let tracker = self.clone();
                let span = decision_span(&expired.user, RequestKind::Activity);
                Check::pending(
                    async move {
                        tracker.logout_at_gate(expired).await;
                        Decision::Allowed { deadline }
                    }
                    .instrument(span),
                )
            }
        }
    }

    pub(crate) fn store_failed(&self, err: &StoreError) -> Decision {
        telemetry::store_error(err);
        // Wall time, not the tracker's clock (which may be manual).
        let now = SystemClock.now().as_millis();
        let last = self.inner.last_store_error_log.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= STORE_ERROR_LOG_EVERY_MS
            && self
                .inner
                .last_store_error_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                target: "timeout",
                policy = %self.inner.policy.store_unavailable(),
                "{err}; requests are handled by timeout.session.store.unavailable \
                 until the store answers again (this message repeats at most every 10 s)"
            );
        }
        match self.inner.policy.store_unavailable() {
            StoreUnavailable::Allow => Decision::Unchecked,
            StoreUnavailable::Refuse => Decision::Unavailable,
        }
    }
}

/// The span of one gate decision that waits for the store or runs a
/// logout (DEBUG, target `timeout`): the store's errors and the logout's
/// audit record and hooks nest under it, named by the user as in the audit
/// log. Decisions answered from memory get none: even a disabled span cost
/// 30-40 ns there, a tenth of the layer (docs/BENCHMARKS.md).
fn decision_span(user: &str, kind: RequestKind) -> tracing::Span {
    tracing::debug_span!(
        target: "timeout",
        "decision",
        user = %audit::Escaped(user),
        kind = ?kind,
    )
}
