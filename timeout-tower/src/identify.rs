//! Who made a request: the seam between an app's authentication and the
//! timeout.

use std::{
    fmt,
    future::{Future, Ready, ready},
    time::Duration,
};

use http::request::Parts;
use timeout_core::adapter::{IdentifyError, Identity, IntoIdentity};

/// Turns a request into its [`Identity`]: the logged-in [`Subject`](timeout_core::Subject), or
/// anonymous (passes through untracked).
///
/// The future must be `Unpin` so the layer can try it once without boxing:
/// a ready answer (a closure, [`identify_fn`]) costs no allocation; an
/// identification that needs I/O (loading a tower-sessions record) returns a
/// boxed future and is awaited.
pub trait Identify: Clone + Send + Sync + 'static {
    /// The identification in progress.
    type Future: Future<Output = Result<Identity, IdentifyError>> + Send + Unpin + 'static;

    /// Starts identifying the request described by `parts`.
    fn identify(&self, parts: &Parts) -> Self::Future;

    /// The framework session this identity lives in and how long it lasts
    /// without activity, if known: the layer warns at start-up when it is
    /// shorter than the idle timeout.
    fn framework_session_ttl(&self) -> Option<(&'static str, Duration)> {
        None
    }
}

/// Identifies requests with a closure over the request head.
///
/// ```
/// use http::request::Parts;
/// use timeout_core::Subject;
/// use timeout_tower::identify_fn;
///
/// // An authentication layer before this one put the subject in the extensions.
/// let identify = identify_fn(|parts: &Parts| parts.extensions.get::<Subject>().cloned());
/// # let _ = identify;
/// ```
pub fn identify_fn<F, R>(f: F) -> IdentifyFn<F>
where
    F: Fn(&Parts) -> R + Clone + Send + Sync + 'static,
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
    F: Fn(&Parts) -> R + Clone + Send + Sync + 'static,
    R: IntoIdentity,
{
    type Future = Ready<Result<Identity, IdentifyError>>;

    fn identify(&self, parts: &Parts) -> Self::Future {
        ready((self.f)(parts).into_identity())
    }
}
