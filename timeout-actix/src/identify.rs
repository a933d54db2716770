//! Who made a request: the seam between an actix-web app's authentication
//! and the timeout.

use std::{
    fmt,
    future::{Future, Ready, ready},
    time::Duration,
};

use actix_web::HttpRequest;
use timeout_core::adapter::{IdentifyError, Identity, IntoIdentity};

/// Turns a request into its [`Identity`]: the logged-in
/// [`Subject`](timeout_core::Subject), or anonymous (passes through
/// untracked).
///
/// The future must be `Unpin` so the middleware can try it once without
/// boxing: a ready answer (a closure, [`identify_fn`],
/// [`ActixSession`](crate::session::ActixSession)) costs no allocation.
pub trait Identify: Clone + 'static {
    /// The identification in progress.
    type Future: Future<Output = Result<Identity, IdentifyError>> + Unpin + 'static;

    /// Starts identifying `request`.
    fn identify(&self, request: &HttpRequest) -> Self::Future;

    /// The framework session this identity lives in and how long it lasts
    /// without activity, if known: the middleware warns at start-up when it
    /// is shorter than the idle timeout.
    fn framework_session_ttl(&self) -> Option<(&'static str, Duration)> {
        None
    }

    /// Called when `request` is refused because its session timed out:
    /// destroy the framework session here so its cookie stops working.
    fn timed_out(&self, request: &HttpRequest) {
        let _ = request;
    }
}

/// Identifies requests with a closure over the request.
///
/// ```
/// use actix_web::{HttpMessage, HttpRequest};
/// use timeout_actix::identify_fn;
/// use timeout_core::Subject;
///
/// // An authentication middleware before this one put the subject in the extensions.
/// let identify = identify_fn(|req: &HttpRequest| req.extensions().get::<Subject>().cloned());
/// # let _ = identify;
/// ```
pub fn identify_fn<F, R>(f: F) -> IdentifyFn<F>
where
    F: Fn(&HttpRequest) -> R + Clone + 'static,
    R: IntoIdentity,
{
    IdentifyFn { f }
}

/// See [`identify_fn`].
#[derive(Clone)]
pub struct IdentifyFn<F> {
    f: F,
}

impl<F> fmt::Debug for IdentifyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentifyFn")
    }
}

impl<F, R> Identify for IdentifyFn<F>
where
    F: Fn(&HttpRequest) -> R + Clone + 'static,
    R: IntoIdentity,
{
    type Future = Ready<Result<Identity, IdentifyError>>;

    fn identify(&self, request: &HttpRequest) -> Self::Future {
        ready((self.f)(request).into_identity())
    }
}
