//! [`SessionTimeout`]: the one value an app configures, which makes the layer
//! and the routes so both agree on the tracker, the identity and the paths.

use std::{fmt, sync::Arc};

use timeout_core::{
    Tracker,
    adapter::{Endpoints, Gate},
};

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

    timeout_core::endpoint_builders!();

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
