//! The [`Tracker`]: every decision of the idle timeout in one framework-free
//! place, so the axum and actix adapters behave the same.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::task::JoinSet;

use crate::{
    Clock, Due, DueWarning, Expired, KeyEvent, MemoryStore, Notification, Policy, RequestKind,
    Store, StoreError, StoreUnavailable, Subject, Subscription, SystemClock, TimeoutHook,
    Timestamp, Timing, Touch, TouchOutcome, audit,
    deferred::{DeferredActivity, EndedSessions},
    hub::{EventSink, Hub},
    notification::LOGOUT_JSON,
};

/// How many due events one store call claims.
pub(crate) const CLAIM_BATCH: usize = 1_000;
/// Hooks of one sweep batch's timeouts running at once; beyond it the batch
/// waits, so a slow hook target (a license server) is not flooded.
const MAX_RUNNING_HOOKS: usize = 256;
/// Sweep batches whose hooks run at once in the background: with
/// [`MAX_RUNNING_HOOKS`], at most 1,024 hooks at a time.
const MAX_RUNNING_BATCHES: usize = 4;
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
}

/// Body of the 503 answered while the store is unreachable (fail closed).
pub const UNAVAILABLE_JSON: &str =
    r#"{"error":"the session timeout store is unavailable; try again shortly"}"#;

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
            Decision::Unavailable => Some(Refusal {
                status: 503,
                body: UNAVAILABLE_JSON,
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
}

impl TrackerBuilder {
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
        let hub = Hub::new();
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        store.attach(EventSink::new(Arc::clone(&hub)));
        tracing::info!(target: "timeout", "{}", self.policy);
        let timing = Timing {
            warn_before: self.policy.warn_before(),
            remember: self.policy.remember_timed_out(),
        };
        Tracker {
            inner: Arc::new(Inner {
                policy: self.policy,
                timing,
                store,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                hub,
                hooks: self.hooks.into_boxed_slice(),
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
        let touch = self.touch_of(subject, kind, self.inner.clock.now());
        match self.inner.store.try_touch(&touch) {
            Some(outcome) => self.settle(outcome),
            None => {
                let tracker = self.clone();
                let subject = subject.clone();
                Check::pending(async move { tracker.touch_slowly(&subject, kind).await })
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
        self.check(Some(subject), RequestKind::Activity).await
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
        self.inner.store.end_session(key, subject.session()).await?;
        self.inner.hub.close_session(key, subject.session());
        audit::logged_out(subject);
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
        self.inner.hub.subscribe(key, subject.session_shared())
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
        self.sweep_with(None).await
    }

    /// One sweep; hooks go to `background` when given (the sweeper's task
    /// set) so a slow hook cannot delay the next warnings and logouts.
    pub(crate) async fn sweep_with(
        &self,
        mut background: Option<&mut JoinSet<()>>,
    ) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        if !self.inner.policy.enabled() {
            return Ok(report);
        }
        loop {
            let now = self.inner.clock.now();
            let due = self
                .inner
                .store
                .claim_due(now, self.inner.timing, CLAIM_BATCH)
                .await?;
            let claimed = due.len();
            // Deadlines are on the store's clock when it has one.
            let now = self.inner.store.now().unwrap_or(now);
            let mut events = Vec::with_capacity(claimed);
            let mut warning_claims = Vec::new();
            let mut expired = Vec::new();
            // Notify first for the whole batch, in one call to the other
            // replicas: hooks may be slow.
            for event in due {
                match event {
                    Due::Warning(warning) => {
                        let event = warning_event(&warning, now);
                        self.inner.hub.deliver(&event);
                        events.push(event);
                        warning_claims.extend(warning.claim);
                        report.warnings += 1;
                    }
                    Due::Expiry(e) => {
                        let event = logout_event(&e);
                        self.inner.hub.deliver(&event);
                        audit::timed_out(&e);
                        events.push(event);
                        expired.push(e);
                    }
                }
            }
            if !events.is_empty()
                && let Err(err) = self.inner.store.publish_all(&events).await
            {
                tracing::warn!(target: "timeout", "could not send notifications to the other replicas: {err}");
            }
            self.acknowledge(&warning_claims, "warnings").await;
            report.logouts += expired.len();
            if !expired.is_empty() {
                match background.as_deref_mut() {
                    Some(set) => {
                        while set.len() >= MAX_RUNNING_BATCHES {
                            set.join_next().await;
                        }
                        let tracker = self.clone();
                        set.spawn(async move { tracker.finish_logouts(expired).await });
                    }
                    None => self.finish_logouts(expired).await,
                }
            }
            if claimed < CLAIM_BATCH {
                return Ok(report);
            }
        }
    }

    fn touch_of<'a>(&self, subject: &'a Subject, kind: RequestKind, now: Timestamp) -> Touch<'a> {
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
        }
    }

    async fn touch_slowly(&self, subject: &Subject, kind: RequestKind) -> Decision {
        let touch = self.touch_of(subject, kind, self.inner.clock.now());
        match self.inner.store.touch(&touch).await {
            Ok(outcome) => self.settle(outcome).await,
            Err(err) => self.store_failed(&err),
        }
    }

    fn settle(&self, outcome: TouchOutcome) -> Check {
        match outcome {
            TouchOutcome::Live { deadline } => Check::ready(Decision::Allowed { deadline }),
            TouchOutcome::Refused => Check::ready(Decision::TimedOut),
            TouchOutcome::Expired(expired) => {
                let tracker = self.clone();
                Check::pending(async move {
                    tracker.logout_now(&expired).await;
                    Decision::TimedOut
                })
            }
            TouchOutcome::Replaced { deadline, expired } => {
                let tracker = self.clone();
                Check::pending(async move {
                    tracker.logout_now(&expired).await;
                    Decision::Allowed { deadline }
                })
            }
        }
    }

    fn store_failed(&self, err: &StoreError) -> Decision {
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

    /// Notifies and records a claimed timeout.
    async fn announce_logout(&self, expired: &Expired) {
        let event = logout_event(expired);
        self.inner.hub.deliver(&event);
        if let Err(err) = self.inner.store.publish(&event).await {
            tracing::warn!(target: "timeout", "could not send a logout to the other replicas: {err}");
        }
        audit::timed_out(expired);
    }

    async fn run_hooks(&self, expired: &Expired) {
        for hook in self.inner.hooks.iter() {
            if let Err(err) = hook.on_timeout(expired).await {
                tracing::error!(
                    target: "timeout",
                    hook = hook.name(),
                    user = %audit::Escaped(&expired.user),
                    "timeout hook failed: {err}"
                );
            }
        }
    }

    /// Runs the hooks of a sweep's logouts, at most [`MAX_RUNNING_HOOKS`]
    /// keys at once (each key's hooks in order), and acknowledges each claim
    /// once its own hooks are done. The claims of hooks that finished
    /// together go in one call: fast hooks cost one acknowledgement per
    /// batch, while a slow hook holds back only its own claim, so no other
    /// logout outlives its lease and runs twice.
    async fn finish_logouts(&self, expired: Vec<Expired>) {
        let mut running = JoinSet::new();
        let mut done = Vec::new();
        for e in expired {
            if running.len() >= MAX_RUNNING_HOOKS {
                self.acknowledge_finished(&mut running, &mut done).await;
            }
            let tracker = self.clone();
            running.spawn(async move {
                tracker.run_hooks(&e).await;
                e.claim
            });
        }
        while !running.is_empty() {
            self.acknowledge_finished(&mut running, &mut done).await;
        }
    }

    /// Waits for at least one running hook task, then acknowledges the
    /// claims of every task finished by then in one call.
    async fn acknowledge_finished(
        &self,
        running: &mut JoinSet<Option<crate::Claim>>,
        done: &mut Vec<crate::Claim>,
    ) {
        let mut collect =
            |joined: Result<Option<crate::Claim>, tokio::task::JoinError>| match joined {
                Ok(claim) => done.extend(claim),
                // The claim of a hook task that panicked stays leased: another
                // sweep takes it up after the lease, as after a crash.
                Err(err) => tracing::error!(target: "timeout", "a timeout hook task failed: {err}"),
            };
        if let Some(joined) = running.join_next().await {
            collect(joined);
        }
        while let Some(joined) = running.try_join_next() {
            collect(joined);
        }
        self.acknowledge(done, "logouts").await;
        done.clear();
    }

    async fn acknowledge(&self, claims: &[crate::Claim], what: &str) {
        if !claims.is_empty()
            && let Err(err) = self.inner.store.ack(claims).await
        {
            tracing::warn!(target: "timeout", "could not acknowledge {what}: {err}");
        }
    }

    async fn logout_now(&self, expired: &Expired) {
        self.announce_logout(expired).await;
        self.run_hooks(expired).await;
        if let Some(claim) = &expired.claim {
            self.acknowledge(std::slice::from_ref(claim), "a logout")
                .await;
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
    KeyEvent {
        key: expired.key.clone(),
        notification: Notification::logout(),
        sessions: expired.sessions.clone(),
        id: expired.claim.as_ref().map(|c| c.0.clone()),
    }
}
