//! Running the hooks of one logout: every attempt is bounded by a timeout,
//! a failed or timed-out attempt is retried with backoff a bounded number of
//! times, and the run is then recorded as dead, so no hook can hold a
//! sweeper or another user's logout.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use crate::{Expired, FrameworkExpiry, HookError, StateLost, TimeoutHook, audit};

/// How long one attempt of one hook may take by default.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a failed hook is tried again by default.
pub const DEFAULT_HOOK_RETRIES: u32 = 3;
/// The first pause before a retry; it doubles each time, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The pauses between retries: [`FIRST_BACKOFF`], doubling up to
/// [`MAX_BACKOFF`].
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(FIRST_BACKOFF)
    }

    /// The pause [`wait`](Backoff::wait) takes next.
    pub(crate) fn next(&self) -> Duration {
        self.0
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}

/// How hooks are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HookPolicy {
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
}

impl Default for HookPolicy {
    fn default() -> Self {
        HookPolicy {
            timeout: DEFAULT_HOOK_TIMEOUT,
            retries: DEFAULT_HOOK_RETRIES,
        }
    }
}

/// Counters of hook runs, for monitoring and tests.
#[derive(Debug, Default)]
pub(crate) struct HookCounters {
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) timed_out_attempts: AtomicU64,
    pub(crate) dead: AtomicU64,
}

/// Runs every hook once for `expired`, in order. A hook that fails is
/// retried; one that keeps failing is logged and counted as dead, and the
/// hooks after it still run.
pub(crate) async fn run_all(
    hooks: &[Arc<dyn TimeoutHook>],
    expired: &Expired,
    policy: HookPolicy,
    counters: &HookCounters,
) {
    // Formatted only if a log line needs it: most runs succeed at once.
    let id = expired.run_id_display();
    for hook in hooks {
        let run = Run {
            hook: hook.name(),
            user: &expired.user,
            id: &id,
        };
        let outcome = with_retries(run, policy, counters, || hook.on_timeout(expired)).await;
        if let Err((attempts, failure)) = outcome {
            audit::hook_dead(expired, hook.name(), attempts, &failure);
        }
    }
}

/// Tells every hook that the store lost its state, with the same retries.
pub(crate) async fn run_state_lost(
    hooks: &[Arc<dyn TimeoutHook>],
    lost: &StateLost,
    policy: HookPolicy,
    counters: &HookCounters,
) {
    let id = format!("state-lost@{}", lost.at.as_millis());
    for hook in hooks {
        let run = Run {
            hook: hook.name(),
            user: "",
            id: &id,
        };
        if let Err((attempts, failure)) =
            with_retries(run, policy, counters, || hook.on_state_lost(lost)).await
        {
            tracing::error!(
                target: audit::AUDIT_TARGET,
                event = "hook_dead",
                hook = %audit::Escaped(hook.name()),
                run = %audit::Escaped(&id),
                attempts,
                "the state-lost hook gave up ({failure}); reconcile by hand"
            );
        }
    }
}

/// Tells every hook that a framework session expired first, with the same
/// retries.
pub(crate) async fn run_framework_expired(
    hooks: &[Arc<dyn TimeoutHook>],
    expiry: &FrameworkExpiry,
    policy: HookPolicy,
    counters: &HookCounters,
) {
    let id = format!("framework-expired:{}", expiry.session);
    for hook in hooks {
        let run = Run {
            hook: hook.name(),
            user: &expiry.user,
            id: &id,
        };
        if let Err((attempts, failure)) = with_retries(run, policy, counters, || {
            hook.on_framework_session_expired(expiry)
        })
        .await
        {
            tracing::warn!(
                target: "timeout",
                hook = %audit::Escaped(hook.name()),
                user = %audit::Escaped(&expiry.user),
                attempts,
                "the framework-session-expired hook gave up ({failure})"
            );
        }
    }
}

/// Which run of which hook, for the logs.
#[derive(Clone, Copy)]
struct Run<'a> {
    hook: &'a str,
    user: &'a str,
    id: &'a (dyn std::fmt::Display + Sync),
}

/// Calls `attempt` until it succeeds, at most `1 + retries` times, each
/// bounded by the timeout. `Err` holds the attempts made and the last
/// failure; the run is counted as dead.
async fn with_retries<F, Fut>(
    run: Run<'_>,
    policy: HookPolicy,
    counters: &HookCounters,
    attempt: F,
) -> Result<(), (u32, String)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), HookError>>,
{
    let mut backoff = Backoff::new();
    let attempts = policy.retries.saturating_add(1);
    for n in 1..=attempts {
        let failure = match tokio::time::timeout(policy.timeout, attempt()).await {
            Ok(Ok(())) => {
                counters.succeeded.fetch_add(1, Relaxed);
                return Ok(());
            }
            Ok(Err(err)) => {
                counters.failed_attempts.fetch_add(1, Relaxed);
                err.to_string()
            }
            Err(_) => {
                counters.timed_out_attempts.fetch_add(1, Relaxed);
                format!("no answer within {:?}", policy.timeout)
            }
        };
        if n == attempts {
            counters.dead.fetch_add(1, Relaxed);
            return Err((attempts, failure));
        }
        tracing::warn!(
            target: "timeout",
            hook = run.hook,
            user = %audit::Escaped(run.user),
            run = %run.id,
            attempt = n,
            "timeout hook failed ({failure}); trying again in {:?}",
            backoff.next()
        );
        backoff.wait().await;
    }
    Ok(())
}
