//! [`SessionTimeout`]: the one value an app configures, which makes the layer
//! and the routes so both agree on the tracker, the identity and the paths.

use std::{fmt, sync::Arc};

use timeout_core::{Endpoints, Gate, Tracker};

use crate::{Identify, IdleTimeoutLayer};

/// The idle timeout of an app: a [`Tracker`], how to identify a request's
/// subject, and where the notification routes live.
///
/// ```
/// use axum::{Router, routing::get};
/// use http::request::Parts;
/// use timeout_core::{Policy, Subject, Tracker};
/// use timeout_tower::{SessionTimeout, identify_fn};
///
/// # fn main() -> Result<(), timeout_core::ConfigError> {
/// let policy = Policy::from_properties("timeout.session.enabled=true\ntimeout.session.minutes=30")?;
/// let timeout = SessionTimeout::new(
///     Tracker::new(policy),
///     identify_fn(|parts: &Parts| parts.extensions.get::<Subject>().cloned()),
/// );
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .merge(timeout.routes())
///     .layer(timeout.layer());
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

    /// The layer to put around the app's routes (inside the layer that
    /// provides the identity, e.g. tower-sessions' `SessionManagerLayer`).
    /// Warns once here if the framework session would end before the idle
    /// timeout.
    pub fn layer(&self) -> IdleTimeoutLayer<I> {
        if let Some((framework, ttl)) = self.identify.framework_session_ttl() {
            self.tracker
                .policy()
                .warn_if_session_ends_first(framework, ttl);
        }
        IdleTimeoutLayer::new(self.shared())
    }

    pub(crate) fn shared(&self) -> Arc<Shared<I>> {
        Arc::new(Shared {
            gate: Gate::new(self.tracker.clone(), self.endpoints.clone()),
            identify: self.identify.clone(),
        })
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

/// What the layer and the routes share.
pub(crate) struct Shared<I> {
    pub(crate) gate: Gate,
    pub(crate) identify: I,
}
