//! The [`Tracker`]: every decision of the idle timeout in one framework-free
//! place, so the axum and actix adapters behave the same.

use std::{
    borrow::Cow,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{sync::Semaphore, task::JoinSet};
use tracing::Instrument;

use crate::{
    Claim, Clock, Due, DueWarning, Expired, KeyEvent, MemoryStore, Notification, Policy,
    RequestKind, Store, StoreError, StoreUnavailable, Subject, Subscription, SystemClock,
    TimeoutHook, Timestamp, Timing, Touch, TouchOutcome, audit,
    clock::duration_millis,
    deferred::{DeferredActivity, EndedSessions},
    hook_runs::{self, HookCounters, HookPolicy},
    hub::{EventSink, Hub},
    notification::LOGOUT_JSON,
    telemetry,
    unwind::CatchUnwind,
};

/// How many due events one store call claims.
pub(crate) const CLAIM_BATCH: usize = 1_000;
/// Logouts whose hooks run at once; beyond it the sweeper waits for a free
/// slot, so a slow hook target (a license server) is not flooded. A hung
/// hook holds one slot until its timeout, never the sweeper.
const MAX_RUNNING_HOOKS: usize = 1_024;
/// At most one "store unreachable" error per this many milliseconds: an
/// outage must not turn every request into a log line.
const STORE_ERROR_LOG_EVERY_MS: u64 = 10_000;

/// What the gate decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The timeout is disabled: pass through.
    Disabled,
    /// The request has no subject (not logged in): pass through.
    NotTracked,
    /// The user is exempt: pass through.
    Exempt,
    /// Tracked and alive until `deadline`.
    Allowed {
        /// When the key times out unless there is activity before.
        deadline: Timestamp,
    },
    /// Timed out: refuse with 401 and the logout JSON.
    TimedOut,
    /// The store is unreachable and the policy lets requests through.
    Unchecked,
    /// The store is unreachable and the policy refuses requests (503).
    Unavailable,
    /// A new session of a user who already has the most sessions allowed
    /// ([`TrackerBuilder::max_sessions_per_key`]): refused (403); the
    /// user's other sessions go on.
    SessionLimit,
}

/// How to answer a refused request; the same for every adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: &'static str,
    /// Its content type.
    pub content_type: &'static str,
}

impl Refusal {
    /// The `Retry-After` seconds to send with it: the store is unreachable
    /// for now, and clients (and proxies) should try again shortly rather
    /// than treat the session as gone.
    ///
    /// ```
    /// use timeout_core::Decision;
    ///
    /// assert_eq!(Decision::Unavailable.refusal().unwrap().retry_after(), Some(1));
    /// assert_eq!(Decision::TimedOut.refusal().unwrap().retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<u32> {
        (self.status == 503).then_some(1)
    }

    /// Whether this is the logout answer of a timed-out session: the
    /// framework session should be destroyed along with it.
    ///
    /// ```
    /// use timeout_core::Decision;
    ///
    /// assert!(Decision::TimedOut.refusal().is_some_and(|r| r.is_timeout()));
    /// assert!(!Decision::Unavailable.refusal().is_some_and(|r| r.is_timeout()));
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.body == LOGOUT_JSON
    }

    /// The headers to answer with, beside the status and the body: its
    /// content type, `Cache-Control: no-store` (the next request may be
    /// let in, so no cache may replay this answer) and, for an unreachable
    /// store, [`Retry-After`](Refusal::retry_after). Every adapter sends
    /// exactly these.
    ///
    /// ```
    /// use timeout_core::Decision;
    ///
    /// let refusal = Decision::Unavailable.refusal().unwrap();
    /// let headers: Vec<(&str, String)> =
    ///     refusal.headers().map(|(name, value)| (name, value.into_owned())).collect();
    /// assert_eq!(
    ///     headers,
    ///     [
    ///         ("content-type", "application/json".to_owned()),
    ///         ("cache-control", "no-store".to_owned()),
    ///         ("retry-after", "1".to_owned()),
    ///     ]
    /// );
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, Cow<'static, str>)> {
        [
            Some(("content-type", Cow::Borrowed(self.content_type))),
            Some(("cache-control", Cow::Borrowed("no-store"))),
            self.retry_after()
                .map(|seconds| ("retry-after", Cow::Owned(seconds.to_string()))),
        ]
        .into_iter()
        .flatten()
    }
}

/// Body of the 403 answered to a session past the per-user limit.
pub const SESSION_LIMIT_JSON: &str = r#"{"error":"too many sessions for this user; log out of another session, or wait until one times out"}"#;

/// Body of the 503 answered while the store is unreachable (fail closed).
pub const UNAVAILABLE_JSON: &str =
    r#"{"error":"the session timeout store is unavailable; try again shortly"}"#;

/// The answer while the store is unreachable and the policy refuses.
pub(crate) const UNAVAILABLE: Refusal = Refusal {
    status: 503,
    body: UNAVAILABLE_JSON,
    content_type: "application/json",
};

impl Decision {
    /// Whether the request may reach the application.
    pub fn allows(&self) -> bool {
        self.refusal().is_none()
    }

    /// How to answer if the request is refused.
    ///
    /// ```
    /// use timeout_core::{Decision, LOGOUT_JSON};
    ///
    /// let refusal = Decision::TimedOut.refusal().unwrap();
    /// assert_eq!((refusal.status, refusal.body), (401, LOGOUT_JSON));
    /// assert!(Decision::Exempt.refusal().is_none());
    /// ```
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Decision::TimedOut => Some(Refusal {
                status: 401,
                body: LOGOUT_JSON,
                content_type: "application/json",
            }),
            Decision::Unavailable => Some(UNAVAILABLE),
            Decision::SessionLimit => Some(Refusal {
                status: 403,
                body: SESSION_LIMIT_JSON,
                content_type: "application/json",
            }),
            _ => None,
        }
    }
}

/// The future of a gate decision: ready at once on the hot path (no
/// allocation), boxed only when the store needs I/O or a logout must run.
#[must_use = "a check does nothing unless awaited"]
pub struct Check(CheckState);

enum CheckState {
    Ready(Decision),
    Pending(Pin<Box<dyn Future<Output = Decision> + Send + 'static>>),
}

impl Check {
    pub(crate) fn ready(decision: Decision) -> Check {
        Check(CheckState::Ready(decision))
    }

    fn pending(fut: impl Future<Output = Decision> + Send + 'static) -> Check {
        Check(CheckState::Pending(Box::pin(fut)))
    }

    /// The decision if it was made without waiting.
    pub fn now_or_never(&self) -> Option<Decision> {
        match &self.0 {
            CheckState::Ready(d) => Some(*d),
            CheckState::Pending(_) => None,
        }
    }
}

impl Future for Check {
    type Output = Decision;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Decision> {
        match &mut self.0 {
            CheckState::Ready(d) => Poll::Ready(*d),
            CheckState::Pending(fut) => fut.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CheckState::Ready(d) => f.debug_tuple("Check").field(d).finish(),
            CheckState::Pending(_) => f.write_str("Check(pending)"),
        }
    }
}

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
/// use timeout_core::{
///     Decision, ManualClock, Policy, RequestKind, Subject, Timestamp, Tracker,
/// };
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
    /// (default [`DEFAULT_HOOK_TIMEOUT`](crate::DEFAULT_HOOK_TIMEOUT); at
    /// least 1 ms). A request refused at the gate waits for its logout's
    /// hooks at most this long; they go on in the background after it.
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hook_policy.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many times a failed or timed-out hook is tried again, with a
    /// backoff from 200 ms doubling to 5 s, before the run is recorded as
    /// dead (default [`DEFAULT_HOOK_RETRIES`](crate::DEFAULT_HOOK_RETRIES)).
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
                let subject = subject.clone();
                Check::pending(async move { tracker.touch_slowly(&subject, kind, login).await })
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
    /// use timeout_core::{Decision, ManualClock, Policy, RequestKind, Subject, Timestamp, Tracker};
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
    /// for `expiry` (the audit record is [`FrameworkSessions`](crate::FrameworkSessions)'s).
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

    /// Sends every warning and runs every logout due now, waiting for the
    /// hooks. The background [`Sweeper`](crate::Sweeper) does this on a
    /// timer; tests with a manual clock call it directly.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        self.sweep_with(false).await
    }

    /// One sweep. In the background the hooks are not waited for, so a slow
    /// hook cannot delay the next warnings and logouts; at most
    /// [`MAX_RUNNING_HOOKS`] logouts run their hooks at once.
    pub(crate) async fn sweep_with(&self, background: bool) -> Result<SweepReport, StoreError> {
        // One span per sweep (DEBUG, target `timeout`): the logs of its
        // warnings, logouts and hooks nest under it, with its totals.
        let span = tracing::debug_span!(
            target: "timeout",
            "sweep",
            warnings = tracing::field::Empty,
            logouts = tracing::field::Empty,
        );
        let swept = self
            .sweep_in_span(background)
            .instrument(span.clone())
            .await;
        if let Ok(report) = &swept {
            span.record("warnings", report.warnings);
            span.record("logouts", report.logouts);
        }
        swept
    }

    async fn sweep_in_span(&self, background: bool) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        if !self.inner.policy.enabled() {
            return Ok(report);
        }
        let mut running = JoinSet::new();
        let mut due = self.claim_batch().await?;
        loop {
            let claimed = due.len();
            // A full batch may have more behind it: the next one is claimed
            // while this one is handled, so a store's round trips overlap
            // with the notifying.
            let (next, ()) = tokio::join!(
                async {
                    match claimed >= CLAIM_BATCH {
                        true => Some(self.claim_batch().await),
                        false => None,
                    }
                },
                self.handle_batch(due, background, &mut running, &mut report)
            );
            match next {
                Some(next) => due = next?,
                None => break,
            }
        }
        while running.join_next().await.is_some() {}
        Ok(report)
    }

    async fn claim_batch(&self) -> Result<Vec<Due>, StoreError> {
        let now = self.inner.clock.now();
        self.inner
            .store
            .claim_due(now, self.inner.timing, CLAIM_BATCH)
            .await
    }

    /// Notifies, records and starts the logouts of one claimed batch.
    async fn handle_batch(
        &self,
        due: Vec<Due>,
        background: bool,
        running: &mut JoinSet<()>,
        report: &mut SweepReport,
    ) {
        // Deadlines are on the store's clock when it has one.
        let now = self
            .inner
            .store
            .now()
            .unwrap_or_else(|| self.inner.clock.now());
        let mut events = Vec::with_capacity(due.len());
        let mut warning_claims = Vec::new();
        let mut expired = Vec::new();
        // Notify first for the whole batch, in one call to the other
        // replicas: hooks may be slow.
        for event in due {
            match event {
                Due::Warning(warning) => {
                    let due_at = warning
                        .deadline
                        .as_millis()
                        .saturating_sub(duration_millis(self.inner.policy.warn_before()));
                    telemetry::warning_sent(now.saturating_since(Timestamp::from_millis(due_at)));
                    let event = warning_event(&warning, now);
                    self.inner.hub.deliver(&event);
                    events.push(event);
                    warning_claims.extend(warning.claim);
                    report.warnings += 1;
                }
                Due::Expiry(e) => {
                    telemetry::logged_out(e.cause, now.saturating_since(e.deadline));
                    let event = logout_event(&e);
                    self.inner.hub.deliver(&event);
                    audit::timed_out(&e);
                    events.push(event);
                    expired.push(e);
                }
                Due::StateLost(lost) => {
                    audit::state_lost(&lost);
                    let tracker = self.clone();
                    let work = async move {
                        let inner = &tracker.inner;
                        hook_runs::run_state_lost(
                            &inner.hooks,
                            &lost,
                            inner.hook_policy,
                            &inner.hook_counters,
                        )
                        .await;
                    };
                    if background {
                        detach(work);
                    } else {
                        running.spawn(work);
                    }
                }
            }
        }
        let published = events.is_empty() || self.publish_batch(&events).await;
        // A warning not published is left leased: it is claimed again
        // after the lease and reaches the other replicas then (this
        // replica's subscribers drop the repeat by its id).
        if published {
            self.acknowledge(&warning_claims, "warnings").await;
        }
        report.logouts += expired.len();
        for e in expired {
            let Ok(slot) = Arc::clone(&self.inner.hook_slots).acquire_owned().await else {
                break; // never closed
            };
            let tracker = self.clone();
            let work = async move {
                tracker.finish_logout(e, published).await;
                drop(slot);
            };
            // Most logouts finish without waiting (hooks that only count
            // or free something in memory), and a task each would cost more
            // than their work. One that waits gets a task of its own, so it
            // holds its slot and never this sweep.
            let Some(waiting) = finish_here(work) else {
                continue;
            };
            if background {
                detach_started(waiting);
            } else {
                running.spawn(async move {
                    if waiting.await.is_err() {
                        tracing::error!(target: "timeout", "a logout's completion panicked");
                    }
                });
            }
        }
    }

    async fn publish_batch(&self, events: &[KeyEvent]) -> bool {
        match self.inner.store.publish_all(events).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(
                    target: "timeout",
                    "could not send notifications to the other replicas: {err}; logouts are \
                     sent again before their claims are released, warnings after their lease"
                );
                false
            }
        }
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
                Check::pending(async move {
                    tracker.logout_at_gate(expired).await;
                    Decision::TimedOut
                })
            }
            TouchOutcome::Replaced { deadline, expired } => {
                let tracker = self.clone();
                Check::pending(async move {
                    tracker.logout_at_gate(expired).await;
                    Decision::Allowed { deadline }
                })
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

    /// Runs a logout claimed at the gate in a task of its own, so it
    /// completes even when the request that claimed it is dropped (the
    /// client went away). The request waits for it at most one hook timeout.
    async fn logout_at_gate(&self, expired: Expired) {
        let tracker = self.clone();
        let work = async move {
            let published = tracker.announce_logout(&expired).await;
            tracker.finish_logout(expired, published).await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let running = runtime.spawn(CatchUnwind::new(work));
                let _ = tokio::time::timeout(self.inner.hook_policy.timeout, running).await;
            }
            Err(_) => work.await,
        }
    }

    /// Notifies and records a claimed timeout; false if the other replicas
    /// could not be told.
    async fn announce_logout(&self, expired: &Expired) -> bool {
        let now = self.inner.store.now().unwrap_or_else(|| self.now());
        telemetry::logged_out(expired.cause, now.saturating_since(expired.deadline));
        let event = logout_event(expired);
        self.inner.hub.deliver(&event);
        audit::timed_out(expired);
        self.publish_batch(std::slice::from_ref(&event)).await
    }

    /// Runs the hooks of one claimed logout, publishes its event again if
    /// that failed before, and acknowledges the claim: only then may the
    /// store forget it. A hook that panics counts as a failed attempt of
    /// that hook, never as a lost claim.
    async fn finish_logout(&self, expired: Expired, published: bool) {
        let inner = &self.inner;
        let hooks = hook_runs::run_all(
            &inner.hooks,
            &expired,
            inner.hook_policy,
            &inner.hook_counters,
        );
        if CatchUnwind::new(hooks).await.is_err() {
            tracing::error!(
                target: "timeout",
                user = %audit::Escaped(&expired.user),
                run = %expired.run_id(),
                "a timeout hook panicked; the hooks after it did not run"
            );
        }
        if !published {
            self.publish_again(&expired).await;
        }
        if let Some(claim) = expired.claim {
            self.acknowledge_soon(claim).await;
        }
    }

    /// Retries the publication of a logout whose first one failed, with the
    /// hooks' retry policy; gives up with a warning (the replicas that hold
    /// the user's sockets then learn of it at the user's next request).
    async fn publish_again(&self, expired: &Expired) {
        let event = logout_event(expired);
        let mut backoff = hook_runs::Backoff::new();
        let retries = self.inner.hook_policy.retries;
        for attempt in 0..=retries {
            if self.inner.store.publish(&event).await.is_ok() {
                return;
            }
            if attempt < retries {
                backoff.wait().await;
            }
        }
        tracing::warn!(
            target: "timeout",
            user = %audit::Escaped(&expired.user),
            "a logout could not be sent to the other replicas; their sockets of this user \
             close at the user's next request"
        );
    }

    /// Acknowledges `claim` together with the claims of logouts finishing at
    /// the same moment: the first to arrive sends them all in one call.
    async fn acknowledge_soon(&self, claim: Claim) {
        let first = {
            let mut acks = self
                .inner
                .acks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            acks.push(claim);
            acks.len() == 1
        };
        if !first {
            return;
        }
        tokio::task::yield_now().await;
        let batch = std::mem::take(
            &mut *self
                .inner
                .acks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.acknowledge(&batch, "logouts").await;
    }

    async fn acknowledge(&self, claims: &[Claim], what: &str) {
        if !claims.is_empty()
            && let Err(err) = self.inner.store.ack(claims).await
        {
            tracing::warn!(target: "timeout", "could not acknowledge {what}: {err}");
        }
    }
}

/// Runs `work` in a task of its own when there is a Tokio runtime, so that
/// nothing dropping its caller can cut it short; without one, not at all
/// (and says so).
fn detach(work: impl Future<Output = ()> + Send + 'static) {
    detach_started(CatchUnwind::new(work));
}

/// [`detach`] for work already wrapped (and maybe polled) by [`finish_here`].
fn detach_started<F: Future<Output = ()> + Send + 'static>(work: CatchUnwind<F>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(work);
        }
        Err(_) => tracing::error!(
            target: "timeout",
            "timeout hooks not run: the sweeper needs a Tokio runtime"
        ),
    }
}

/// Polls `work` once, here: `None` if it finished (or panicked, which is
/// logged), else the started work, to be run on in a task of its own. A
/// no-op waker is enough: the task that takes the work over polls it again,
/// which registers that task's waker.
fn finish_here<F: Future<Output = ()> + Send + 'static>(work: F) -> Option<CatchUnwind<F>> {
    let mut work = CatchUnwind::new(work);
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut work).poll(&mut cx) {
        Poll::Pending => Some(work),
        Poll::Ready(Ok(())) => None,
        Poll::Ready(Err(_)) => {
            tracing::error!(target: "timeout", "a logout's completion panicked");
            None
        }
    }
}

fn warning_event(warning: &DueWarning, now: Timestamp) -> KeyEvent {
    KeyEvent {
        key: warning.key.clone(),
        notification: Notification::warning(warning.deadline.saturating_since(now)),
        sessions: Vec::new(),
        id: warning.claim.as_ref().map(|c| c.0.clone()),
    }
}

fn logout_event(expired: &Expired) -> KeyEvent {
    // A key whose state was lost may have sessions no replica knew of:
    // every subscription of it ends.
    let sessions = match expired.cause {
        crate::Cause::StateLost => Vec::new(),
        _ => expired.sessions.clone(),
    };
    KeyEvent {
        key: expired.key.clone(),
        notification: Notification::logout(),
        sessions,
        id: expired.claim.as_ref().map(|c| c.0.clone()),
    }
}
