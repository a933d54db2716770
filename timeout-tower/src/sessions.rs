//! tower-sessions (0.14, the version axum-login 0.18 and
//! tower-sessions-redis-store 0.16 use): the session id and a [`SessionUser`]
//! record stored in the session identify a request; on timeout the session
//! record is deleted, so the cookie stops working everywhere.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    str::FromStr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use http::request::Parts;
use timeout_core::{
    Decision, Subject, TimeoutHook, Tracker,
    framework::{DEFAULT_FRAMEWORK_WATCH, FrameworkSessions, FrameworkWatch},
    hooks::HookError,
    store::Expired,
};
use tower_sessions::{
    Session, SessionStore,
    session::{Expiry, Id, Record},
    session_store,
};

use crate::{Identify, IdentifyError, Identity};

/// The session record and where [`log_in`] keeps it: shared with
/// timeout-actix, so both adapters read the same sessions.
pub use timeout_core::adapter::{SESSION_USER_KEY, SessionUser};

/// Identifies a request by its tower-sessions session: the session id and
/// the [`SessionUser`] stored under [`SESSION_USER_KEY`]. A session without
/// that record is not logged in ([`Identity::Session`]: refused with the
/// logout answer if it timed out).
///
/// Put [`SessionTimeout::layer`](crate::SessionTimeout::layer) inside the
/// `SessionManagerLayer`:
///
/// ```
/// use axum::{Router, routing::get};
/// use time::Duration;
/// use timeout_core::{Policy, Tracker};
/// use timeout_tower::{SessionTimeout, sessions::{DeleteSessions, TowerSessions}};
/// use tower_sessions::{Expiry, MemoryStore, SessionManagerLayer};
///
/// # fn main() -> Result<(), timeout_core::ConfigError> {
/// let store = MemoryStore::default();
/// let expiry = Expiry::OnInactivity(Duration::hours(9));
/// let tracker = Tracker::builder(Policy::from_properties("timeout.session.enabled=true")?)
///     .hook(DeleteSessions::new(store.clone()))
///     .build();
/// let timeout = SessionTimeout::new(tracker, TowerSessions::new().expiry(expiry));
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .merge(timeout.routes())
///     .layer(timeout.layer())
///     .layer(SessionManagerLayer::new(store).with_expiry(expiry));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TowerSessions {
    ttl: Option<Duration>,
}

impl TowerSessions {
    /// Identification from the default record key.
    pub fn new() -> Self {
        TowerSessions::default()
    }

    /// The expiry given to the `SessionManagerLayer`, so the layer can warn
    /// when sessions would expire before the idle timeout.
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.ttl = match expiry {
            Expiry::OnSessionEnd => None,
            Expiry::OnInactivity(d) => Some(Duration::try_from(d).unwrap_or_default()),
            Expiry::AtDateTime(at) => {
                let left = at - time::OffsetDateTime::now_utc();
                Some(Duration::try_from(left).unwrap_or_default())
            }
        };
        self
    }
}

impl Identify for TowerSessions {
    type Future = Pin<Box<dyn Future<Output = Result<Identity, IdentifyError>> + Send>>;

    fn identify(&self, parts: &Parts) -> Self::Future {
        let session = parts.extensions.get::<Session>().cloned();
        Box::pin(async move {
            let session = session.ok_or_else(|| {
                IdentifyError::new(
                    "no tower-sessions Session in the request: add the SessionManagerLayer \
                     outside the timeout layer (`.layer(timeout.layer()).layer(session_layer)`)",
                )
            })?;
            // Taken before loading: tower-sessions forgets the id of a
            // cookie whose record is gone.
            let id = session.id();
            match subject_of(&session).await? {
                Some(subject) => Ok(Identity::Subject(subject)),
                None => Ok(id.map_or(Identity::Anonymous, |id| {
                    Identity::Session(id.to_string().into())
                })),
            }
        })
    }

    fn framework_session_ttl(&self) -> Option<(&'static str, Duration)> {
        self.ttl.map(|ttl| ("tower-sessions", ttl))
    }
}

/// The subject of `session`, `None` when it holds no [`SessionUser`].
pub async fn subject_of(session: &Session) -> Result<Option<Subject>, IdentifyError> {
    let Some(id) = session.id() else {
        return Ok(None);
    };
    let user: Option<SessionUser> = session.get(SESSION_USER_KEY).await.map_err(|err| {
        IdentifyError::with_source("loading the tower-sessions record failed", err)
    })?;
    match user {
        None => Ok(None),
        Some(user) => Ok(Some(
            Subject::new(id.to_string(), user.name)?.with_groups(user.groups),
        )),
    }
}

/// Why [`log_in`] or [`log_out`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session store failed.
    #[error("the tower-sessions store failed: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// The user cannot be tracked (an empty or over-long name).
    #[error(transparent)]
    Identify(#[from] IdentifyError),
    /// The timeout store is unavailable and the policy refuses requests.
    #[error("the session timeout store is unavailable; try again shortly")]
    Unavailable,
    /// The user has the most sessions allowed
    /// (`TrackerBuilder::max_sessions_per_key`).
    #[error("this user has too many sessions; log out of another one, or wait until one times out")]
    TooManySessions,
}

/// Logs `user` in on `session`: a fresh session id (no fixation, and an id
/// that never timed out), the [`SessionUser`] record, and a new idle period.
pub async fn log_in(
    session: &Session,
    tracker: &Tracker,
    user: SessionUser,
) -> Result<Subject, SessionError> {
    session.cycle_id().await?;
    session.insert(SESSION_USER_KEY, &user).await?;
    session.save().await?;
    let subject = subject_of(session)
        .await?
        .ok_or_else(|| IdentifyError::new("the session lost its id while saving"))?;
    match tracker.login(&subject).await {
        Decision::SessionLimit => return Err(SessionError::TooManySessions),
        decision if decision.refusal().is_some() => return Err(SessionError::Unavailable),
        _ => {}
    }
    Ok(subject)
}

/// Logs the session's user out: tracking stops at once (no timeout event
/// follows) and the session record is deleted.
pub async fn log_out(session: &Session, tracker: &Tracker) -> Result<(), SessionError> {
    if let Some(subject) = subject_of(session).await?
        && let Err(err) = tracker.logout(&subject).await
    {
        // The record goes anyway, so the user is logged out; the store
        // forgets the key at its deadline.
        tracing::warn!(target: "timeout", "explicit logout not recorded: {err}");
    }
    session.flush().await?;
    Ok(())
}

/// A [`TimeoutHook`] that deletes the tower-sessions records of timed-out
/// sessions, so their cookies stop working even on routes outside the
/// timeout layer.
#[derive(Clone)]
pub struct DeleteSessions<S> {
    store: S,
}

impl<S: SessionStore + Clone> DeleteSessions<S> {
    /// Deletes from `store`, the store of the `SessionManagerLayer`.
    pub fn new(store: S) -> Self {
        DeleteSessions { store }
    }
}

impl<S> fmt::Debug for DeleteSessions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeleteSessions")
    }
}

#[async_trait]
impl<S: SessionStore + Clone> TimeoutHook for DeleteSessions<S> {
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        let mut failed = None;
        for session in &expired.sessions {
            // Ids that are not tower-sessions ids belong to another identity
            // source: nothing of ours to delete.
            let Ok(id) = Id::from_str(session) else {
                continue;
            };
            if let Err(err) = self.store.delete(&id).await {
                failed = Some(err);
            }
        }
        match failed {
            None => Ok(()),
            Some(err) => Err(Box::new(err)),
        }
    }

    fn name(&self) -> &str {
        "delete tower-sessions records"
    }
}

/// A tower-sessions store that notices when one of its logged-in sessions
/// expires by tower-sessions' own expiry before the idle timeout ends it:
/// an audit record (event `framework_session_expired`, with the session,
/// the user and the time since it expired) and
/// [`TimeoutHook::on_framework_session_expired`]. Wrap the store given to
/// the `SessionManagerLayer` and to [`DeleteSessions`], then
/// [`watch`](ExpiryAudit::watch) with the tracker.
///
/// ```
/// use time::Duration;
/// use timeout_core::{Policy, Tracker};
/// use timeout_tower::sessions::{DeleteSessions, ExpiryAudit};
/// use tower_sessions::{Expiry, MemoryStore, SessionManagerLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), timeout_core::ConfigError> {
/// let store = ExpiryAudit::new(MemoryStore::default());
/// let tracker = Tracker::builder(Policy::from_properties("timeout.session.enabled=true")?)
///     .hook(DeleteSessions::new(store.clone()))
///     .build();
/// let _watch = store.watch(&tracker);
/// let sessions = SessionManagerLayer::new(store).with_expiry(Expiry::OnInactivity(Duration::hours(1)));
/// # let _ = sessions;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ExpiryAudit<S> {
    inner: S,
    ledger: Arc<FrameworkSessions>,
}

impl<S: SessionStore + Clone> ExpiryAudit<S> {
    /// Wraps `inner`. Before reporting a session, the watch loads it from
    /// `inner` again: another replica may have saved it later.
    pub fn new(inner: S) -> Self {
        let ledger = FrameworkSessions::new("tower-sessions");
        let probe = inner.clone();
        ledger.still_alive_with(Box::new(move |session| {
            let store = probe.clone();
            Box::pin(async move {
                let id = Id::from_str(&session).ok()?;
                let record = store.load(&id).await.ok()??;
                Some(SystemTime::from(record.expiry_date))
            })
        }));
        ExpiryAudit { inner, ledger }
    }

    /// Looks for expired sessions every second (see
    /// [`watch_every`](ExpiryAudit::watch_every)) until the handle drops.
    pub fn watch(&self, tracker: &Tracker) -> FrameworkWatch {
        self.watch_every(tracker, DEFAULT_FRAMEWORK_WATCH)
    }

    /// Looks for expired sessions every `every`: the "time since it
    /// expired" of a record is at most about that.
    pub fn watch_every(&self, tracker: &Tracker, every: Duration) -> FrameworkWatch {
        self.ledger.watch(tracker.clone(), every)
    }

    /// The sessions it knows.
    pub fn ledger(&self) -> &Arc<FrameworkSessions> {
        &self.ledger
    }

    fn note(&self, record: &Record) {
        let session = record.id.to_string();
        let user = record
            .data
            .get(SESSION_USER_KEY)
            .and_then(|value| serde_json::from_value::<SessionUser>(value.clone()).ok());
        match user {
            Some(user) => {
                self.ledger
                    .saved(&session, &user.name, SystemTime::from(record.expiry_date));
            }
            None => self.ledger.ended(&session),
        }
    }
}

#[async_trait]
impl<S: SessionStore + Clone> SessionStore for ExpiryAudit<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await?;
        self.note(record);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(record).await?;
        self.note(record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await?;
        self.ledger.ended(&id.to_string());
        Ok(())
    }
}
