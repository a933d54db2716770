//! The operator routes (axum): a user's sessions with their deadlines, and
//! signing a user out everywhere. The answers are timeout-core's.

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    response::Response,
    routing::{get, post},
};
use timeout_core::{
    Tracker,
    admin::{self, Answer, SESSIONS_PATH, SIGN_OUT_PATH},
};

use crate::{Identify, SessionTimeout, refusal::response};

impl<I: Identify> SessionTimeout<I> {
    /// The operator routes, for the app to nest where it likes **behind its
    /// own authorization** (they check nobody):
    ///
    /// - `GET /users/{user}/sessions`: the user's tracked sessions, their
    ///   deadlines and time left, `{"user":"alice","sessions":[{"session":
    ///   "s-12…","deadlineMs":..,"secondsLeft":..}]}` (session ids shortened:
    ///   they are bearer secrets);
    /// - `POST /users/{user}/sign-out`: signs the user out of every session
    ///   on every replica (their sockets get the logout notification, the
    ///   hooks run once), `{"user":"alice","signedOut":2}`.
    ///
    /// A user name that cannot be one answers 400; an unreachable store 503.
    ///
    /// ```
    /// use axum::{Router, extract::Request, http::StatusCode, middleware::{self, Next}, response::Response};
    /// use http::request::Parts;
    /// use timeout_core::{Policy, Subject, Tracker};
    /// use timeout_tower::{SessionTimeout, identify_fn};
    ///
    /// async fn operators_only(request: Request, next: Next) -> Result<Response, StatusCode> {
    ///     // The app's own check: a role in its session, a token, a network.
    ///     if request.headers().contains_key("x-operator") { Ok(next.run(request).await) }
    ///     else { Err(StatusCode::FORBIDDEN) }
    /// }
    ///
    /// # fn main() -> Result<(), timeout_core::ConfigError> {
    /// let timeout = SessionTimeout::new(
    ///     Tracker::new(Policy::builder().enabled(true).build()?),
    ///     identify_fn(|parts: &Parts| parts.extensions.get::<Subject>().cloned()),
    /// );
    /// let app: Router = Router::new().nest(
    ///     "/admin/timeout",
    ///     timeout.admin_routes().route_layer(middleware::from_fn(operators_only)),
    /// );
    /// # let _ = app;
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn admin_routes<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route(SESSIONS_PATH, get(sessions))
            .route(SIGN_OUT_PATH, post(sign_out))
            .with_state(self.tracker().clone())
    }
}

async fn sessions(State(tracker): State<Tracker>, Path(user): Path<String>) -> Response {
    to_response(admin::list_sessions(&tracker, &user).await)
}

async fn sign_out(State(tracker): State<Tracker>, Path(user): Path<String>) -> Response {
    to_response(admin::sign_out(&tracker, &user).await)
}

fn to_response(answer: Answer) -> Response {
    response(answer.status, answer.headers(), Body::from(answer.body))
}
