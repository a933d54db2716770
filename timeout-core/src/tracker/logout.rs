//! Completing a claimed logout, wherever it was claimed (the gate or a
//! sweep): notify, run the hooks, publish again if that failed, and only
//! then acknowledge the claim, so the store forgets nothing unfinished.

use tracing::Instrument;

use super::Tracker;
use crate::{
    Claim, Expired, KeyEvent, Notification, audit, hook_runs, telemetry, unwind::CatchUnwind,
};

impl Tracker {
    /// Runs a logout claimed at the gate (or by an operator) in a task of
    /// its own, so it completes even when the request that claimed it is
    /// dropped (the client went away). The request waits for it at most one
    /// hook timeout.
    pub(super) async fn logout_at_gate(&self, expired: Expired) {
        let tracker = self.clone();
        // Its own task keeps the request's span, so its records nest there.
        let work = async move {
            let published = tracker.announce_logout(&expired).await;
            tracker.finish_logout(expired, published).await;
        }
        .instrument(tracing::Span::current());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let running = runtime.spawn(CatchUnwind::new(work));
                let _ = tokio::time::timeout(self.inner.hook_policy.timeout, running).await;
            }
            Err(_) => work.await,
        }
    }

    /// Notifies and records a claimed timeout; false if the other replicas
    /// could not be told.
    async fn announce_logout(&self, expired: &Expired) -> bool {
        let now = self.inner.store.now().unwrap_or_else(|| self.now());
        telemetry::logged_out(expired.cause, now.saturating_since(expired.deadline));
        let event = logout_event(expired);
        self.inner.hub.deliver(&event);
        audit::timed_out(expired);
        self.publish_batch(std::slice::from_ref(&event)).await
    }

    /// Runs the hooks of one claimed logout, publishes its event again if
    /// that failed before, and acknowledges the claim: only then may the
    /// store forget it. A hook that panics counts as a failed attempt of
    /// that hook, never as a lost claim.
    pub(super) async fn finish_logout(&self, expired: Expired, published: bool) {
        let inner = &self.inner;
        let hooks = hook_runs::run_all(
            &inner.hooks,
            &expired,
            inner.hook_policy,
            &inner.hook_counters,
        );
        if CatchUnwind::new(hooks).await.is_err() {
            tracing::error!(
                target: "timeout",
                user = %audit::Escaped(&expired.user),
                run = %expired.run_id(),
                "a timeout hook panicked; the hooks after it did not run"
            );
        }
        if !published {
            self.publish_again(&expired).await;
        }
        if let Some(claim) = expired.claim {
            self.acknowledge_soon(claim).await;
        }
    }

    /// Retries the publication of a logout whose first one failed, with the
    /// hooks' retry policy; gives up with a warning (the replicas that hold
    /// the user's sockets then learn of it at the user's next request).
    async fn publish_again(&self, expired: &Expired) {
        let event = logout_event(expired);
        let mut backoff = hook_runs::Backoff::new();
        let retries = self.inner.hook_policy.retries;
        for attempt in 0..=retries {
            if self.inner.store.publish(&event).await.is_ok() {
                return;
            }
            if attempt < retries {
                backoff.wait().await;
            }
        }
        tracing::warn!(
            target: "timeout",
            user = %audit::Escaped(&expired.user),
            "a logout could not be sent to the other replicas; their sockets of this user \
             close at the user's next request"
        );
    }

    /// Acknowledges `claim` together with the claims of logouts finishing at
    /// the same moment: the first to arrive sends them all in one call.
    async fn acknowledge_soon(&self, claim: Claim) {
        let first = {
            let mut acks = self
                .inner
                .acks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            acks.push(claim);
            acks.len() == 1
        };
        if !first {
            return;
        }
        tokio::task::yield_now().await;
        let batch = std::mem::take(
            &mut *self
                .inner
                .acks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.acknowledge(&batch, "logouts").await;
    }

    pub(super) async fn acknowledge(&self, claims: &[Claim], what: &str) {
        if !claims.is_empty()
            && let Err(err) = self.inner.store.ack(claims).await
        {
            tracing::warn!(target: "timeout", "could not acknowledge {what}: {err}");
        }
    }
}

pub(super) fn logout_event(expired: &Expired) -> KeyEvent {
    // A key whose state was lost may have sessions no replica knew of:
    // every subscription of it ends.
    let sessions = match expired.cause {
        crate::Cause::StateLost => Vec::new(),
        _ => expired.sessions.clone(),
    };
    let notification = match expired.cause {
        crate::Cause::SignedOut => Notification::signed_out(),
        _ => Notification::logout(),
    };
    KeyEvent {
        key: expired.key.clone(),
        notification,
        sessions,
        id: expired.claim.as_ref().map(|c| c.0.clone()),
    }
}
