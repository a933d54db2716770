//! actix-session (0.11): a [`SessionUser`] record in the session identifies
//! a request; when the session times out, the middleware empties it (every
//! key, under a new session key), so its cookie stops working.
//!
//! actix-session keeps no session id an app can see, so [`log_in`] gives
//! each login its own tracking id inside the record. That id is what the
//! timeout remembers as timed out. The emptied session keeps only that id
//! (under [`ENDED_KEY`]), so later requests of the tab still get the logout
//! answer, as long as the policy remembers it, and the page can offer to
//! log in again.

use std::{
    collections::HashMap,
    future::{Ready, ready},
    hash::{BuildHasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use actix_session::{
    Session, SessionExt,
    storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError},
};
use actix_web::HttpRequest;
use timeout_core::{
    Decision, Subject, Tracker,
    adapter::{IdentifyError, Identity},
    framework::{DEFAULT_FRAMEWORK_WATCH, FrameworkSessions, FrameworkWatch},
};

use crate::Identify;

/// The session record and where [`log_in`] keeps it: shared with
/// timeout-tower, so both adapters read the same sessions.
pub use timeout_core::adapter::{SESSION_USER_KEY, SessionUser};

/// Where a timed-out session keeps the tracking id of its ended login.
pub const ENDED_KEY: &str = "timeout.ended";

/// Identifies a request by the [`SessionUser`] that [`log_in`] stored in its
/// actix-session session. `wrap` the app with the timeout middleware
/// **before** `SessionMiddleware`, so the session is loaded first: without
/// it every request looks anonymous and nothing is tracked.
///
/// ```
/// use actix_session::{SessionMiddleware, storage::CookieSessionStore};
/// use actix_web::{App, cookie::Key, web};
/// use timeout_actix::{SessionTimeout, session::ActixSession};
/// use timeout_core::{Policy, Tracker};
///
/// # fn main() -> Result<(), timeout_core::ConfigError> {
/// let tracker = Tracker::new(Policy::from_properties("timeout.session.enabled=true")?);
/// let timeout = SessionTimeout::new(tracker, ActixSession::new());
/// let key = Key::generate();
/// // In the `HttpServer::new` factory:
/// let app = App::new()
///     .route("/", web::get().to(|| async { "hello" }))
///     .configure(timeout.routes())
///     .wrap(timeout.middleware())
///     .wrap(SessionMiddleware::new(CookieSessionStore::default(), key));
/// # let _ = app;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ActixSession {
    ttl: Option<Duration>,
}

impl ActixSession {
    /// Identification from the default record key.
    pub fn new() -> Self {
        ActixSession::default()
    }

    /// The session TTL given to `SessionMiddleware` (its `session_ttl` or
    /// `state_ttl`), so the middleware can warn when sessions would end
    /// before the idle timeout.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

impl Identify for ActixSession {
    type Future = Ready<Result<Identity, IdentifyError>>;

    fn identify(&self, request: &HttpRequest) -> Self::Future {
        let session = request.get_session();
        ready(match subject_of(&session) {
            Ok(Some(subject)) => Ok(Identity::Subject(subject)),
            Ok(None) => Ok(ended_login(&session)
                .map_or(Identity::Anonymous, |login| Identity::Session(login.into()))),
            Err(err) => Err(err),
        })
    }

    fn framework_session_ttl(&self) -> Option<(&'static str, Duration)> {
        self.ttl.map(|ttl| ("actix-session", ttl))
    }

    fn timed_out(&self, request: &HttpRequest) {
        let session = request.get_session();
        let Ok(Some(user)) = session.get::<SessionUser>(SESSION_USER_KEY) else {
            // Already emptied by an earlier refusal (or never logged in).
            return;
        };
        session.clear();
        session.renew();
        if let Err(err) = session.insert(ENDED_KEY, user.login_id()) {
            tracing::warn!(target: "timeout", "the timed-out session was emptied but not marked: {err}");
        }
    }
}

/// The subject of `session`, `None` when it holds no logged-in
/// [`SessionUser`].
pub fn subject_of(session: &Session) -> Result<Option<Subject>, IdentifyError> {
    let user: Option<SessionUser> = session.get(SESSION_USER_KEY).map_err(|err| {
        IdentifyError::new(format!(
            "the actix-session record `{SESSION_USER_KEY}` cannot be read ({err}); \
             log the user in again to replace it"
        ))
    })?;
    match user {
        Some(user) if !user.login_id().is_empty() => Ok(Some(
            Subject::new(user.login_id(), user.name.as_str())?.with_groups(user.groups),
        )),
        _ => Ok(None),
    }
}

fn ended_login(session: &Session) -> Option<String> {
    session.get::<String>(ENDED_KEY).ok().flatten()
}

/// Why [`log_in`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session could not store the record.
    #[error("the actix-session record could not be written: {0}")]
    Session(String),
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

/// Logs `user` in on `session`: a renewed session key (no fixation), the
/// [`SessionUser`] record with a fresh tracking id, and a new idle period.
pub async fn log_in(
    session: &Session,
    tracker: &Tracker,
    user: SessionUser,
) -> Result<Subject, SessionError> {
    let user = user.with_login_id(fresh_login_id());
    let subject = Subject::new(user.login_id(), user.name.as_str())
        .map_err(IdentifyError::from)?
        .with_groups(user.groups.clone());
    session.renew();
    session.remove(ENDED_KEY);
    session
        .insert(SESSION_USER_KEY, &user)
        .map_err(|err| SessionError::Session(err.to_string()))?;
    match tracker.login(&subject).await {
        Decision::SessionLimit => {
            session.purge();
            return Err(SessionError::TooManySessions);
        }
        decision if decision.refusal().is_some() => {
            session.purge();
            return Err(SessionError::Unavailable);
        }
        _ => {}
    }
    Ok(subject)
}

/// Logs the session's user out: tracking stops at once (no timeout event
/// follows) and the session is purged.
pub async fn log_out(session: &Session, tracker: &Tracker) -> Result<(), IdentifyError> {
    let subject = subject_of(session);
    session.purge();
    if let Some(subject) = subject?
        && let Err(err) = tracker.logout(&subject).await
    {
        // The session is gone anyway, so the user is logged out; the store
        // forgets the key at its deadline.
        tracing::warn!(target: "timeout", "explicit logout not recorded: {err}");
    }
    Ok(())
}

/// A unique id per login. Not a credential (it lives inside the signed or
/// server-side session), so uniqueness is what matters: a counter and the
/// time, mixed with per-process random keys.
fn fresh_login_id() -> String {
    static LOGINS: AtomicU64 = AtomicU64::new(0);
    let n = LOGINS.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let high = RandomState::new().hash_one((n, nanos));
    let low = RandomState::new().hash_one((nanos, n, high));
    format!("{high:016x}{low:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_ids_are_unique_and_fixed_length() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| fresh_login_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 32));
    }
}

/// An actix-session store that notices when one of its logged-in sessions
/// reaches the end of its TTL before the idle timeout ends it: an audit
/// record (event `framework_session_expired`, with the login's tracking id,
/// the user and the time since it expired) and
/// [`TimeoutHook::on_framework_session_expired`](timeout_core::TimeoutHook::on_framework_session_expired).
///
/// The TTL is actix-session's state TTL: a `PersistentSession`'s
/// `session_ttl`, or a server-side store's `state_ttl`. With the
/// `CookieSessionStore` and the default `BrowserSession` nothing expires on
/// the server, so there is nothing to watch. The state of a cookie store
/// lives in the browser: each replica knows the saves it made, so with
/// several replicas a session saved later elsewhere can be reported early.
/// actix builds its app once per worker: make one [`expiry_ledger`] and
/// wrap each worker's store with it.
///
/// ```
/// use actix_session::{SessionMiddleware, config::PersistentSession, storage::CookieSessionStore};
/// use actix_web::{App, cookie::{Key, time::Duration}};
/// use timeout_actix::session::{ExpiryAudit, expiry_ledger};
/// use timeout_core::{Policy, Tracker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), timeout_core::ConfigError> {
/// let tracker = Tracker::new(Policy::from_properties("timeout.session.enabled=true")?);
/// let (ledger, _watch) = expiry_ledger(&tracker);
/// let key = Key::generate();
/// // In the `HttpServer::new` factory:
/// let store = ExpiryAudit::new(CookieSessionStore::default(), ledger.clone());
/// let sessions = SessionMiddleware::builder(store, key)
///     .session_lifecycle(PersistentSession::default().session_ttl(Duration::hours(9)))
///     .build();
/// # let _ = sessions;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ExpiryAudit<S> {
    inner: S,
    ledger: Arc<FrameworkSessions>,
}

/// The ledger the [`ExpiryAudit`] stores of every worker share, and its
/// watch, which looks for expired sessions every second until dropped.
pub fn expiry_ledger(tracker: &Tracker) -> (Arc<FrameworkSessions>, FrameworkWatch) {
    let ledger = FrameworkSessions::new("actix-session");
    let watch = ledger.watch(tracker.clone(), DEFAULT_FRAMEWORK_WATCH);
    (ledger, watch)
}

impl<S: SessionStore> ExpiryAudit<S> {
    /// Wraps `inner`, writing to `ledger` (from [`expiry_ledger`]).
    pub fn new(inner: S, ledger: Arc<FrameworkSessions>) -> Self {
        ExpiryAudit { inner, ledger }
    }

    fn note(&self, user: Option<SessionUser>, ttl: &actix_web::cookie::time::Duration) {
        let Some(user) = user else { return };
        let ttl = Duration::try_from(*ttl).unwrap_or_default();
        self.ledger
            .saved(user.login_id(), &user.name, SystemTime::now() + ttl);
    }

    /// The logged-in user of the state stored under `key`, if any.
    async fn user_at(&self, key: &SessionKey) -> Option<SessionUser> {
        let state = self.inner.load(key).await.ok()??;
        user_in(&state)
    }
}

fn user_in(state: &HashMap<String, String>) -> Option<SessionUser> {
    let user: SessionUser = serde_json::from_str(state.get(SESSION_USER_KEY)?).ok()?;
    (!user.login_id().is_empty()).then_some(user)
}

impl<S: SessionStore> SessionStore for ExpiryAudit<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        self.inner.load(key).await
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let user = user_in(&state);
        let key = self.inner.save(state, ttl).await?;
        self.note(user, ttl);
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let before = self.user_at(&key).await;
        let user = user_in(&state);
        let key = self.inner.update(key, state, ttl).await?;
        if let Some(before) = before
            && user
                .as_ref()
                .is_none_or(|now| now.login_id() != before.login_id())
        {
            self.ledger.ended(before.login_id());
        }
        self.note(user, ttl);
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &actix_web::cookie::time::Duration,
    ) -> Result<(), anyhow::Error> {
        self.inner.update_ttl(key, ttl).await?;
        let user = self.user_at(key).await;
        self.note(user, ttl);
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        if let Some(user) = self.user_at(key).await {
            self.ledger.ended(user.login_id());
        }
        self.inner.delete(key).await
    }
}
