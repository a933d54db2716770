//! [`SessionTimeout`]: the one value an app configures, which makes the layer
//! and the routes so both agree on the tracker, the identity and the paths.

use std::{fmt, sync::Arc};

use http::request::Parts;
use timeout_core::{Check, DeferredActivity, RequestKind, Subject, Tracker};

use crate::{Identify, Identity, IdleTimeoutLayer, view::PartsView};

/// Path of the reset endpoint, as the existing front ends call it.
pub const RESET_PATH: &str = "/rest/user/timeout/reset";
/// Default path of the WebSocket notification endpoint.
pub const NOTIFICATIONS_PATH: &str = "/rest/user/timeout/notifications";
/// Default path of the Server-Sent Events notification stream.
pub const EVENTS_PATH: &str = "/rest/user/timeout/events";

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
    paths: Paths,
}

#[derive(Clone, Debug)]
pub(crate) struct Paths {
    pub(crate) reset: String,
    pub(crate) notifications: String,
    pub(crate) events: String,
}

impl<I: Identify> SessionTimeout<I> {
    /// The timeout of `tracker`, identifying requests with `identify`.
    pub fn new(tracker: Tracker, identify: I) -> Self {
        SessionTimeout {
            tracker,
            identify,
            paths: Paths {
                reset: RESET_PATH.to_owned(),
                notifications: NOTIFICATIONS_PATH.to_owned(),
                events: EVENTS_PATH.to_owned(),
            },
        }
    }

    /// Serves the reset endpoint at `path` instead of [`RESET_PATH`].
    pub fn reset_path(mut self, path: impl Into<String>) -> Self {
        self.paths.reset = absolute(path.into());
        self
    }

    /// Serves the WebSocket notifications at `path` instead of
    /// [`NOTIFICATIONS_PATH`]. The path is passive: an open socket does not
    /// keep a session alive.
    pub fn notifications_path(mut self, path: impl Into<String>) -> Self {
        self.paths.notifications = absolute(path.into());
        self
    }

    /// Serves the Server-Sent Events stream at `path` instead of
    /// [`EVENTS_PATH`]; passive like the WebSocket.
    pub fn events_path(mut self, path: impl Into<String>) -> Self {
        self.paths.events = absolute(path.into());
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
            tracker: self.tracker.clone(),
            identify: self.identify.clone(),
            paths: self.paths.clone(),
        })
    }
}

impl<I> fmt::Debug for SessionTimeout<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTimeout")
            .field("tracker", &self.tracker)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// A route that does not start with `/` would make axum panic at start-up.
fn absolute(path: String) -> String {
    if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}

/// What the layer and the routes share.
pub(crate) struct Shared<I> {
    pub(crate) tracker: Tracker,
    pub(crate) identify: I,
    pub(crate) paths: Paths,
}

impl<I> Shared<I> {
    /// The notification streams are passive whatever the policy says: an
    /// open tab must not keep its session alive.
    pub(crate) fn classify(&self, parts: &Parts) -> RequestKind {
        let path = parts.uri.path();
        if path == self.paths.notifications || path == self.paths.events {
            return RequestKind::Passive;
        }
        self.tracker.classify(&PartsView(parts))
    }

    /// Starts the gate's check of `identity`: the subject's deadline
    /// (checked as passive: activity is recorded after the response), or
    /// whether a subject-less session timed out. `None`: nothing to check.
    pub(crate) fn check(&self, identity: Identity) -> Option<(Option<Subject>, Check)> {
        match identity {
            Identity::Subject(subject) => {
                let check = self.tracker.check(Some(&subject), RequestKind::Passive);
                Some((Some(subject), check))
            }
            Identity::Session(session) => Some((None, self.tracker.check_session(&session))),
            _ => None,
        }
    }

    /// The activity to record after the response, if this request is one.
    pub(crate) fn defer(
        &self,
        subject: Option<Subject>,
        kind: RequestKind,
    ) -> Option<DeferredActivity> {
        match (kind, subject) {
            (RequestKind::Activity, Some(subject)) => Some(self.tracker.defer_activity(subject)),
            _ => None,
        }
    }
}
