//! What the application runs when a key times out: free license seats,
//! destroy the framework session.

use std::{fmt, future::Future};

use async_trait::async_trait;

pub use crate::hook_runs::{DEFAULT_HOOK_RETRIES, DEFAULT_HOOK_TIMEOUT};
use crate::{Expired, FrameworkExpiry, StateLost};

/// The error a hook reports; it is logged and the other hooks still run.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Runs once per timeout, on whichever replica claimed it.
///
/// The guarantee, exactly: each hook is called for a claimed logout until it
/// returns `Ok`, at most `1 + retries` attempts (see
/// [`TrackerBuilder::hook_retries`](crate::TrackerBuilder::hook_retries)),
/// each cut off after the hook timeout; the hooks after it run either way.
/// A run that keeps failing is recorded as dead (an error on the audit
/// target and [`TrackerStats::hooks_dead`](crate::TrackerStats)). A run
/// that the process dies in the middle of, or whose replica loses Redis for
/// longer than the claim lease, may start again on another replica, with
/// the same [`Expired::run_id`]: make hooks idempotent by that id.
///
/// ```
/// use async_trait::async_trait;
/// use timeout_core::{TimeoutHook, store::Expired, hooks::HookError};
///
/// struct FreeSeat;
///
/// #[async_trait]
/// impl TimeoutHook for FreeSeat {
///     async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
///         println!("freeing the seat of {}", expired.user);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait TimeoutHook: Send + Sync + 'static {
    /// Called once per timed-out key with everything it covered. A request
    /// refused at the gate waits for it at most one hook timeout; the
    /// sweeper does not wait for it once it awaits something (the sweeper
    /// runs it until then, as most hooks finish without waiting). Blocking
    /// work belongs in `tokio::task::spawn_blocking`, awaited here.
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError>;

    /// Called once per loss of the store's state, on one replica: what the
    /// store held before `lost.at` is gone, and the users no replica still
    /// knew were not logged out one by one. Reconcile here what sessions
    /// hold (count the license seats still in use, say). Retried and
    /// bounded like [`on_timeout`](TimeoutHook::on_timeout). The default
    /// does nothing.
    async fn on_state_lost(&self, lost: &StateLost) -> Result<(), HookError> {
        let _ = lost;
        Ok(())
    }

    /// Called when the web framework's own session expired while the idle
    /// timeout still ran (see [`FrameworkSessions`](crate::framework::FrameworkSessions)):
    /// the framework logged the user out, not the idle timeout, whose
    /// tracking goes on until its own deadline. Bounded and retried like
    /// [`on_timeout`](TimeoutHook::on_timeout); the default does nothing.
    async fn on_framework_session_expired(
        &self,
        expiry: &FrameworkExpiry,
    ) -> Result<(), HookError> {
        let _ = expiry;
        Ok(())
    }

    /// A name for the logs.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }
}

/// A hook from an async closure.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use timeout_core::{hook_fn, Policy, Tracker};
///
/// let freed = Arc::new(AtomicUsize::new(0));
/// let counter = freed.clone();
/// let tracker = Tracker::builder(Policy::default())
///     .hook(hook_fn("free license units", move |expired| {
///         let counter = counter.clone();
///         async move {
///             counter.fetch_add(expired.sessions.len(), Ordering::SeqCst);
///             Ok(())
///         }
///     }))
///     .build();
/// # let _ = tracker;
/// ```
pub fn hook_fn<F, Fut>(name: impl Into<String>, f: F) -> FnHook<F>
where
    F: Fn(Expired) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
{
    FnHook {
        name: name.into(),
        f,
    }
}

/// See [`hook_fn`].
pub struct FnHook<F> {
    name: String,
    f: F,
}

impl<F> fmt::Debug for FnHook<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnHook").field("name", &self.name).finish()
    }
}

#[async_trait]
impl<F, Fut> TimeoutHook for FnHook<F>
where
    F: Fn(Expired) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
{
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        (self.f)(expired.clone()).await
    }

    fn name(&self) -> &str {
        &self.name
    }
}
