//! Metrics through the `metrics` facade (feature `metrics`): what an
//! operator watches. Every function here compiles to nothing without the
//! feature, and none runs on the path of an allowed request: the gauges are
//! read by the sweeper, the counters count refusals, logouts and sweeps.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `idle_timeout_tracked_keys` | gauge | |
//! | `idle_timeout_subscriptions` | gauge | |
//! | `idle_timeout_warnings_total` | counter | |
//! | `idle_timeout_logouts_total` | counter | `cause`: `idle`, `absolute`, `state_lost` |
//! | `idle_timeout_explicit_logouts_total` | counter | |
//! | `idle_timeout_hook_runs_total` | counter | `outcome`: `succeeded`, `dead` |
//! | `idle_timeout_hook_attempts_failed_total` | counter | `reason`: `error`, `timeout` |
//! | `idle_timeout_store_errors_total` | counter | `kind`: `unavailable`, `refused`, `corrupt` |
//! | `idle_timeout_refused_requests_total` | counter | `status`: `401`, `403`, `500`, `503` |
//! | `idle_timeout_warning_lateness_seconds` | histogram | |
//! | `idle_timeout_logout_lateness_seconds` | histogram | |
//! | `idle_timeout_sweep_duration_seconds` | histogram | |

use std::time::Duration;

use crate::{Cause, StoreError, TrackerStats};

/// A warning went out `late` after its time.
#[inline]
pub(crate) fn warning_sent(late: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("idle_timeout_warnings_total").increment(1);
        metrics::histogram!("idle_timeout_warning_lateness_seconds").record(late.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = late;
}

/// A key was logged out `late` after its deadline.
#[inline]
pub(crate) fn logged_out(cause: Cause, late: Duration) {
    #[cfg(feature = "metrics")]
    {
        let cause = match cause {
            Cause::Idle => "idle",
            Cause::Absolute => "absolute",
            Cause::StateLost => "state_lost",
            Cause::SignedOut => "signed_out",
        };
        metrics::counter!("idle_timeout_logouts_total", "cause" => cause).increment(1);
        // A sign-out comes before its deadline: no lateness to speak of.
        if cause != "signed_out" {
            metrics::histogram!("idle_timeout_logout_lateness_seconds").record(late.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (cause, late);
}

/// The application logged a session out.
#[inline]
pub(crate) fn explicit_logout() {
    #[cfg(feature = "metrics")]
    metrics::counter!("idle_timeout_explicit_logouts_total").increment(1);
}

/// The store failed a call.
#[inline]
pub(crate) fn store_error(err: &StoreError) {
    #[cfg(feature = "metrics")]
    {
        let kind = match err {
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::Refused { .. } => "refused",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Unsupported { .. } => "unsupported",
        };
        metrics::counter!("idle_timeout_store_errors_total", "kind" => kind).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = err;
}

/// A request was refused with `status`. Out of line when counted: with the
/// macro's code inlined into the gate, allowed requests measured about 6 %
/// slower with the feature on, and 0.5-3 % once it was moved out
/// (docs/BENCHMARKS.md).
#[cfg_attr(feature = "metrics", cold, inline(never))]
#[cfg_attr(not(feature = "metrics"), inline)]
pub(crate) fn refused(status: u16) {
    #[cfg(feature = "metrics")]
    {
        let status = match status {
            401 => "401",
            403 => "403",
            500 => "500",
            503 => "503",
            _ => "other",
        };
        metrics::counter!("idle_timeout_refused_requests_total", "status" => status).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = status;
}

/// A sweep took `took`.
#[inline]
pub(crate) fn swept(took: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("idle_timeout_sweep_duration_seconds").record(took.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = took;
}

/// The gauges and the hook counters, as the sweeper reads them.
#[inline]
pub(crate) fn levels(tracked: Option<u64>, subscriptions: usize, hooks: TrackerStats) {
    #[cfg(feature = "metrics")]
    {
        if let Some(tracked) = tracked {
            metrics::gauge!("idle_timeout_tracked_keys").set(tracked as f64);
        }
        metrics::gauge!("idle_timeout_subscriptions").set(subscriptions as f64);
        metrics::counter!("idle_timeout_hook_runs_total", "outcome" => "succeeded")
            .absolute(hooks.hooks_succeeded);
        metrics::counter!("idle_timeout_hook_runs_total", "outcome" => "dead")
            .absolute(hooks.hooks_dead);
        metrics::counter!("idle_timeout_hook_attempts_failed_total", "reason" => "error")
            .absolute(hooks.hook_attempts_failed);
        metrics::counter!("idle_timeout_hook_attempts_failed_total", "reason" => "timeout")
            .absolute(hooks.hook_attempts_timed_out);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (tracked, subscriptions, hooks);
}
