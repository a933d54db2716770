//! The [`Store`] trait: the one seam between the tracker and where deadlines
//! live (in memory here, Redis in `timeout-redis`).

mod memory;
mod unreachable;

use std::{fmt, time::Duration};

use async_trait::async_trait;

pub use self::{
    memory::{MemoryStore, MemoryStoreStats},
    unreachable::UnreachableStore,
};
use crate::{EventSink, KeyEvent, RequestKind, Scope, Timestamp};

/// Settings every scheduling decision of a store needs, the same for all keys.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::store::Timing;
///
/// let timing = Timing::new(Duration::from_secs(60), Duration::from_secs(3600)).max_sessions(10);
/// assert_eq!(timing.max_sessions, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timing {
    /// Lead time of the warning; zero for none.
    pub warn_before: Duration,
    /// How long a timed-out session stays refused.
    pub remember: Duration,
    /// Most sessions one key may have at once (scope user); a new session
    /// past it is refused ([`TouchOutcome::SessionLimit`]).
    pub max_sessions: u32,
}

/// One request of one key, as the store sees it; the tracker builds it, a
/// store's own tests with [`Touch::new`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Touch<'a> {
    /// The identity carrying the deadline (user or session, by scope).
    pub key: &'a str,
    /// The user behind the request.
    pub user: &'a str,
    /// The session behind the request.
    pub session: &'a str,
    /// Activity moves the deadline; passive requests only check it.
    pub kind: RequestKind,
    /// The tracker's current time (a shared store may use its own clock).
    pub now: Timestamp,
    /// The idle timeout of this key (its groups' or the global one).
    pub timeout: Duration,
    /// The absolute lifetime of this key, counted from its first request.
    pub absolute_lifetime: Option<Duration>,
    /// Scheduling settings.
    pub timing: Timing,
    /// The application has just logged this session in
    /// ([`Tracker::login`](crate::Tracker::login)): a key the store does not
    /// know is a new login, tracked even right after the store lost its
    /// state (when an unknown key may be a session the loss forgot).
    pub login: bool,
}

impl Timing {
    /// A warning `warn_before` the deadline (zero for none), timed-out
    /// sessions refused for `remember`, at most
    /// [`DEFAULT_MAX_SESSIONS`](crate::DEFAULT_MAX_SESSIONS) per key.
    pub const fn new(warn_before: Duration, remember: Duration) -> Timing {
        Timing {
            warn_before,
            remember,
            max_sessions: crate::DEFAULT_MAX_SESSIONS,
        }
    }

    /// At most `max` sessions per key.
    #[must_use]
    pub const fn max_sessions(mut self, max: u32) -> Timing {
        self.max_sessions = max;
        self
    }
}

impl<'a> Touch<'a> {
    /// A request of `session` of `user` on `key` at `now`, with the idle
    /// `timeout` of its key; no absolute lifetime, not a login.
    ///
    /// ```
    /// use std::time::Duration;
    /// use timeout_core::{RequestKind, Timestamp, store::{Timing, Touch}};
    ///
    /// let timing = Timing::new(Duration::ZERO, Duration::from_secs(3600));
    /// let now = Timestamp::from_millis(1_000);
    /// let touch = Touch::new("alice", "alice", "s1", RequestKind::Activity, now, Duration::from_secs(60), timing)
    ///     .login(true);
    /// assert!(touch.login && touch.absolute_lifetime.is_none());
    /// ```
    pub fn new(
        key: &'a str,
        user: &'a str,
        session: &'a str,
        kind: RequestKind,
        now: Timestamp,
        timeout: Duration,
        timing: Timing,
    ) -> Touch<'a> {
        Touch {
            key,
            user,
            session,
            kind,
            now,
            timeout,
            absolute_lifetime: None,
            timing,
            login: false,
        }
    }

    /// The key's absolute lifetime, counted from its first request.
    #[must_use]
    pub fn absolute_lifetime(mut self, lifetime: Option<Duration>) -> Touch<'a> {
        self.absolute_lifetime = lifetime;
        self
    }

    /// Whether the application has just logged this session in.
    #[must_use]
    pub fn login(mut self, login: bool) -> Touch<'a> {
        self.login = login;
        self
    }
}

/// What a [`Touch`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TouchOutcome {
    /// The key is tracked and alive until `deadline`.
    Live {
        /// When it times out unless there is activity before.
        deadline: Timestamp,
    },
    /// The deadline had passed and this caller claimed the expiry: it must
    /// run the logout (notify, hooks, audit). Exactly one caller gets this.
    Expired(Expired),
    /// A new session of a key whose deadline had passed: this caller claimed
    /// the old period's expiry (it must run that logout, for the old
    /// sessions) and the request starts a new period, alive until `deadline`.
    Replaced {
        /// The new period's deadline.
        deadline: Timestamp,
        /// The old period, to log out.
        expired: Expired,
    },
    /// The key or this session has already been timed out (claimed by
    /// someone else, or remembered as timed out): refuse the request.
    Refused,
    /// A new session of a key that already has
    /// [`Timing::max_sessions`]: refused, the others go on.
    SessionLimit,
}

/// Why a key expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// No activity for the idle timeout.
    Idle,
    /// The absolute lifetime ran out.
    Absolute,
    /// The store lost the key's state (Redis restarted without
    /// persistence, failed over to a lagging replica, or evicted it): the
    /// session is logged out rather than given a fresh idle period.
    StateLost,
    /// An operator signed the user out everywhere
    /// ([`Tracker::sign_out_everywhere`](crate::Tracker::sign_out_everywhere)).
    SignedOut,
}

/// A claim on a due event held by one replica until acknowledged; shared
/// stores hand an unacknowledged claim to another replica after a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claim(pub String);

/// A key that timed out and was claimed by this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expired {
    /// The key (user name or session id, by scope).
    pub key: String,
    /// The user.
    pub user: String,
    /// Every session the key covered: the framework sessions to destroy.
    pub sessions: Vec<String>,
    /// The deadline that passed.
    pub deadline: Timestamp,
    /// Why.
    pub cause: Cause,
    /// To acknowledge once handled, for stores that lease claims.
    pub claim: Option<Claim>,
}

impl Expired {
    /// The claimed logout of `key` of `user`, covering `sessions`, whose
    /// `deadline` passed for `cause`; no lease (see [`with_claim`](Expired::with_claim)).
    pub fn new(
        key: impl Into<String>,
        user: impl Into<String>,
        sessions: Vec<String>,
        deadline: Timestamp,
        cause: Cause,
    ) -> Expired {
        Expired {
            key: key.into(),
            user: user.into(),
            sessions,
            deadline,
            cause,
            claim: None,
        }
    }

    /// The same, leased under `claim` until acknowledged.
    #[must_use]
    pub fn with_claim(mut self, claim: Claim) -> Expired {
        self.claim = Some(claim);
        self
    }

    /// A stable id of this logout, for hooks that must be idempotent: the
    /// same on every attempt and on every replica that runs it (a replica
    /// that takes over the claim of one that died gets the same id).
    ///
    /// ```
    /// use timeout_core::{Timestamp, store::{Cause, Expired}};
    ///
    /// let expired = Expired::new("alice", "alice", vec!["s1".into()], Timestamp::from_millis(1_000), Cause::Idle);
    /// assert_eq!(expired.run_id(), "alice@1000");
    /// ```
    pub fn run_id(&self) -> String {
        self.run_id_display().to_string()
    }

    /// [`run_id`](Expired::run_id) without formatting it until it is shown.
    pub(crate) fn run_id_display(&self) -> RunId<'_> {
        RunId(self)
    }
}

/// [`Expired::run_id`], written when displayed.
pub(crate) struct RunId<'a>(&'a Expired);

impl fmt::Display for RunId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.claim {
            Some(claim) => f.write_str(&claim.0),
            None => write!(f, "{}@{}", self.0.key, self.0.deadline.as_millis()),
        }
    }
}

/// A warning that came due and was claimed by this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueWarning {
    /// The key.
    pub key: String,
    /// The deadline the warning is about.
    pub deadline: Timestamp,
    /// To acknowledge once delivered, for stores that lease claims.
    pub claim: Option<Claim>,
}

impl DueWarning {
    /// The claimed warning of `key` about `deadline`; no lease.
    pub fn new(key: impl Into<String>, deadline: Timestamp) -> DueWarning {
        DueWarning {
            key: key.into(),
            deadline,
            claim: None,
        }
    }

    /// The same, leased under `claim` until acknowledged.
    #[must_use]
    pub fn with_claim(mut self, claim: Claim) -> DueWarning {
        self.claim = Some(claim);
        self
    }
}

/// The store found that it lost its state: what it held before `at` is
/// gone. Keys that a replica still knew of (a cached deadline, an open
/// socket) are logged out with [`Cause::StateLost`]; the application hears
/// of the loss once through [`TimeoutHook::on_state_lost`](crate::TimeoutHook::on_state_lost),
/// to reconcile what no replica knew (license seats held by sessions that
/// never come back).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateLost {
    /// When the loss was noticed, on the store's clock: everything tracked
    /// before may be gone.
    pub at: Timestamp,
    /// Which part of the store lost it, for the logs (`"shards 0-15 of
    /// Redis at ..."`).
    pub what: String,
}

impl StateLost {
    /// A loss noticed at `at`, in `what`.
    pub fn new(at: Timestamp, what: impl Into<String>) -> StateLost {
        StateLost {
            at,
            what: what.into(),
        }
    }
}

/// An event a sweep claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Due {
    /// A warning to send.
    Warning(DueWarning),
    /// A logout to run.
    Expiry(Expired),
    /// The store lost its state; reported once per loss, to one replica.
    StateLost(StateLost),
}

/// A tracked key as an operator sees it: whose it is, which sessions it
/// covers and when it times out.
///
/// ```
/// use timeout_core::{Timestamp, store::TrackedKey};
///
/// let key = TrackedKey::new("alice", "alice", vec!["s1".into()], Timestamp::from_millis(9_000));
/// assert_eq!(key.sessions, ["s1"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackedKey {
    /// The key (user name or session id, by scope).
    pub key: String,
    /// The user.
    pub user: String,
    /// The sessions the key covers.
    pub sessions: Vec<String>,
    /// When it times out unless there is activity before.
    pub deadline: Timestamp,
}

impl TrackedKey {
    /// The key `key` of `user`, covering `sessions`, alive until `deadline`.
    pub fn new(
        key: impl Into<String>,
        user: impl Into<String>,
        sessions: Vec<String>,
        deadline: Timestamp,
    ) -> TrackedKey {
        TrackedKey {
            key: key.into(),
            user: user.into(),
            sessions,
            deadline,
        }
    }
}

/// A store failed; the message says what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached.
    #[error("the timeout store is unreachable ({what}): {source}")]
    Unavailable {
        /// Which store and where (`redis at 127.0.0.1:6379`).
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store answered with data this version cannot use.
    #[error("the timeout store returned data it cannot use: {0}")]
    Corrupt(String),
    /// The store answered but refused the command, and will until its
    /// operator changes something (out of memory, a read-only replica, a
    /// missing permission); `reason` says what.
    #[error("the timeout store ({what}) refused a command: {reason}")]
    Refused {
        /// Which store and where.
        what: String,
        /// What is wrong and what to change.
        reason: String,
    },
    /// The store does not implement an optional operation (an external
    /// [`Store`] written before it existed).
    #[error(
        "the timeout store cannot {operation}; implement Store::{method} for it, or use \
         MemoryStore or RedisStore"
    )]
    Unsupported {
        /// What was asked (`list a user's sessions`).
        operation: &'static str,
        /// The [`Store`] method that does it.
        method: &'static str,
    },
}

/// Where deadlines live. Object-safe: the tracker holds an `Arc<dyn Store>`.
///
/// Every method that changes state must be atomic per key, because several
/// requests (and, for shared stores, several replicas) race on the same key:
/// an expiry is claimed by exactly one caller.
///
/// ```
/// use std::sync::Arc;
/// use timeout_core::{MemoryStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// # let _ = store;
/// ```
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Answers a touch without I/O when the store can (a hot key it knows
    /// well); `None` sends the caller to [`touch`](Store::touch). Must not
    /// allocate for a tracked key: it runs on every request.
    fn try_touch(&self, touch: &Touch<'_>) -> Option<TouchOutcome> {
        let _ = touch;
        None
    }

    /// Records a request: starts tracking an unknown key, moves the deadline
    /// on activity, and claims the expiry if the deadline has passed.
    async fn touch(&self, touch: &Touch<'_>) -> Result<TouchOutcome, StoreError>;

    /// The deadline of `key`, if tracked.
    async fn deadline(&self, key: &str, timing: Timing) -> Result<Option<Timestamp>, StoreError>;

    /// Ends one session of `key` (explicit logout). The key stops being
    /// tracked when it has no session left. The session is remembered as
    /// ended until its deadline and `timing.remember` after it, as a timed
    /// out one would be, so a replayed cookie is refused (until
    /// [`forget_timed_out`](Store::forget_timed_out) at a new login).
    /// Returns whether the session was tracked.
    async fn end_session(
        &self,
        key: &str,
        session: &str,
        timing: Timing,
    ) -> Result<bool, StoreError>;

    /// Stops tracking `key` and all its sessions, with no event. Returns
    /// whether it was tracked.
    async fn remove(&self, key: &str) -> Result<bool, StoreError>;

    /// Forgets that `session` (of `key`) timed out, so it may start a new
    /// idle period (the application logged the user in again with the same
    /// session id).
    async fn forget_timed_out(&self, key: &str, session: &str) -> Result<(), StoreError>;

    /// Answers [`timed_out`](Store::timed_out) without I/O when the store
    /// can; `None` sends the caller to it.
    fn try_timed_out(&self, session: &str, now: Timestamp) -> Option<bool> {
        let _ = (session, now);
        None
    }

    /// Whether `session` timed out and is still remembered at `now`: a
    /// request that still carries its id (its framework session already
    /// destroyed) is refused with the logout answer, not let in anonymous.
    async fn timed_out(&self, session: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// Claims up to `limit` due warnings and expiries at `now`, each for
    /// exactly one caller across all replicas. Cost grows with the number of
    /// due keys, not the number of tracked keys.
    async fn claim_due(
        &self,
        now: Timestamp,
        timing: Timing,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError>;

    /// Acknowledges handled claims, for stores that lease them.
    async fn ack(&self, claims: &[Claim]) -> Result<(), StoreError> {
        let _ = claims;
        Ok(())
    }

    /// Number of tracked keys (license seats in use).
    async fn count_active(&self) -> Result<u64, StoreError>;

    /// Sends `event` to the other replicas; a single-process store has none.
    async fn publish(&self, event: &KeyEvent) -> Result<(), StoreError> {
        let _ = event;
        Ok(())
    }

    /// The store's own time, for stores that keep deadlines on another
    /// clock (Redis server time): remaining times are measured against it.
    /// `None` for stores on the tracker's clock.
    fn now(&self) -> Option<Timestamp> {
        None
    }

    /// Sends a sweep's `events` to the other replicas, in as few calls as
    /// the store can.
    async fn publish_all(&self, events: &[KeyEvent]) -> Result<(), StoreError> {
        for event in events {
            self.publish(event).await?;
        }
        Ok(())
    }

    /// The keys `user` holds now: the one key named after the user in
    /// [`Scope::User`], each session of the user in [`Scope::Session`]
    /// (where stores may have to scan every key, so this is for operators,
    /// not for requests). Keys whose deadline passed but that no sweep
    /// claimed yet are included.
    async fn keys_of_user(&self, user: &str, scope: Scope) -> Result<Vec<TrackedKey>, StoreError> {
        let _ = (user, scope);
        Err(StoreError::Unsupported {
            operation: "list a user's sessions",
            method: "keys_of_user",
        })
    }

    /// Claims the logout of `key` at `now` (a shared store may use its own
    /// clock), whatever its deadline, with [`Cause::SignedOut`]: as a
    /// timeout would, it stops tracking the key and remembers its sessions
    /// as timed out for `timing.remember`, and
    /// exactly one caller across all replicas gets the [`Expired`] (and runs
    /// its hooks). `None` if the key is not tracked (or someone else
    /// claimed it first).
    async fn claim_now(
        &self,
        key: &str,
        now: Timestamp,
        timing: Timing,
    ) -> Result<Option<Expired>, StoreError> {
        let _ = (key, now, timing);
        Err(StoreError::Unsupported {
            operation: "sign a user out",
            method: "claim_now",
        })
    }

    /// Gives the store the sink where events from other replicas go.
    fn attach(&self, sink: EventSink) {
        let _ = sink;
    }
}
