//! [`SessionTimeout`]: the one value an app configures, which makes the
//! middleware and the routes so both agree on the tracker, the identity and
//! the paths.

use std::{fmt, rc::Rc};

use actix_web::{HttpRequest, HttpResponse, http::header};
use timeout_core::{Endpoints, Gate, Refusal, Tracker};

use crate::{Identify, IdleTimeout};

/// The idle timeout of an actix-web app: a [`Tracker`], how to identify a
/// request's subject, and where the notification routes live.
///
/// ```
/// use actix_web::{App, HttpMessage, HttpRequest, web};
/// use timeout_actix::{SessionTimeout, identify_fn};
/// use timeout_core::{Policy, Subject, Tracker};
///
/// # fn main() -> Result<(), timeout_core::ConfigError> {
/// let policy = Policy::from_properties("timeout.session.enabled=true\ntimeout.session.minutes=30")?;
/// let timeout = SessionTimeout::new(
///     Tracker::new(policy),
///     identify_fn(|req: &HttpRequest| req.extensions().get::<Subject>().cloned()),
/// );
/// // In the `HttpServer::new` factory:
/// let app = App::new()
///     .route("/", web::get().to(|| async { "hello" }))
///     .configure(timeout.routes())
///     .wrap(timeout.middleware());
/// # let _ = app;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionTimeout<I> {
    tracker: Tracker,
    identify: I,
    endpoints: Endpoints,
}

impl<I: Identify> SessionTimeout<I> {
    /// The timeout of `tracker`, identifying requests with `identify`.
    pub fn new(tracker: Tracker, identify: I) -> Self {
        SessionTimeout {
            tracker,
            identify,
            endpoints: Endpoints::default(),
        }
    }

    /// Serves the reset endpoint at `path` instead of
    /// [`RESET_PATH`](crate::RESET_PATH).
    pub fn reset_path(mut self, path: impl Into<String>) -> Self {
        self.endpoints = self.endpoints.reset(path);
        self
    }

    /// Serves the WebSocket notifications at `path` instead of
    /// [`NOTIFICATIONS_PATH`](crate::NOTIFICATIONS_PATH). The path is
    /// passive: an open socket does not keep a session alive.
    pub fn notifications_path(mut self, path: impl Into<String>) -> Self {
        self.endpoints = self.endpoints.notifications(path);
        self
    }

    /// Serves the Server-Sent Events stream at `path` instead of
    /// [`EVENTS_PATH`](crate::EVENTS_PATH); passive like the WebSocket.
    pub fn events_path(mut self, path: impl Into<String>) -> Self {
        self.endpoints = self.endpoints.events(path);
        self
    }

    /// Serves the passive status (time left by the server's clock, which
    /// the browser client counts down from) at `path` instead of
    /// [`STATUS_PATH`](timeout_core::STATUS_PATH).
    pub fn status_path(mut self, path: impl Into<String>) -> Self {
        self.endpoints = self.endpoints.status(path);
        self
    }

    /// Serves the browser client's files (`idle-timeout.js`,
    /// `idle-timeout.css`) under the folder `path` instead of
    /// [`CLIENT_PATH`](timeout_core::CLIENT_PATH).
    pub fn client_path(mut self, path: impl Into<String>) -> Self {
        self.endpoints = self.endpoints.client(path);
        self
    }

    /// How often the notification socket pings its client (default
    /// [`DEFAULT_PING_INTERVAL`](timeout_core::DEFAULT_PING_INTERVAL)); a
    /// client that does not answer within the next interval is closed, so a
    /// half-open connection frees its subscription.
    pub fn ping_interval(mut self, interval: std::time::Duration) -> Self {
        self.endpoints = self.endpoints.ping_interval(interval);
        self
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The middleware to `wrap` the app's routes with (before the middleware
    /// that provides the identity, e.g. actix-session's `SessionMiddleware`,
    /// so that one runs first). Warns here if the framework session would
    /// end before the idle timeout.
    pub fn middleware(&self) -> IdleTimeout<I> {
        if let Some((framework, ttl)) = self.identify.framework_session_ttl() {
            let policy = self.tracker.policy();
            policy.warn_if_session_ends_first(framework, ttl);
            policy.warn_if_remembered_shorter(framework, ttl);
        }
        IdleTimeout::new(Rc::new(self.shared_value()))
    }

    pub(crate) fn shared_value(&self) -> Shared<I> {
        Shared {
            gate: Gate::new(self.tracker.clone(), self.endpoints.clone()),
            identify: self.identify.clone(),
        }
    }
}

impl<I> fmt::Debug for SessionTimeout<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTimeout")
            .field("tracker", &self.tracker)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// What the middleware and the routes share (per worker: actix apps are
/// built once per worker thread).
pub(crate) struct Shared<I> {
    pub(crate) gate: Gate,
    pub(crate) identify: I,
}

impl<I: Identify> Shared<I> {
    /// The answer to a refused request; a timed-out session's framework
    /// session is destroyed with it.
    pub(crate) fn refuse(&self, request: &HttpRequest, refusal: Refusal) -> HttpResponse {
        if refusal.is_timeout() {
            self.identify.timed_out(request);
        }
        refusal_response(refusal)
    }
}

pub(crate) fn refusal_response(refusal: Refusal) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(refusal.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response
        .content_type(refusal.content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(seconds) = refusal.retry_after() {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response.body(refusal.body)
}
