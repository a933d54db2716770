//! [`SessionTimeout`]: the one value an app configures, which makes the
//! middleware and the routes so both agree on the tracker, the identity and
//! the paths.

use std::{fmt, rc::Rc};

use actix_web::{HttpRequest, HttpResponse};
use timeout_core::{
    Tracker,
    adapter::{Endpoints, Gate, Refusal},
};

use crate::{Identify, IdleTimeoutMiddleware};

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

    timeout_core::endpoint_builders!();

    /// The middleware to `wrap` the app's routes with (before the middleware
    /// that provides the identity, e.g. actix-session's `SessionMiddleware`,
    /// so that one runs first). Warns here if the framework session would
    /// end before the idle timeout.
    pub fn middleware(&self) -> IdleTimeoutMiddleware<I> {
        if let Some((framework, ttl)) = self.identify.framework_session_ttl() {
            let policy = self.tracker.policy();
            policy.warn_if_session_ends_first(framework, ttl);
            policy.warn_if_remembered_shorter(framework, ttl);
        }
        IdleTimeoutMiddleware::new(Rc::new(self.shared_value()))
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
    response(refusal.status, refusal.headers(), refusal.body)
}

/// A response of `status`, `headers` and `body`, as timeout-core decided.
pub(crate) fn response(
    status: u16,
    headers: impl Iterator<Item = (&'static str, std::borrow::Cow<'static, str>)>,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in headers {
        response.insert_header((name, value.into_owned()));
    }
    response.body(body)
}
