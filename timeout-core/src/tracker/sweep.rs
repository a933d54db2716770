//! The sweep: claims what came due in batches, notifies every subscriber
//! and the other replicas, and starts each logout's hooks without letting
//! a slow one hold the next batch.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use tokio::task::JoinSet;
use tracing::Instrument;

use super::{CLAIM_BATCH, SweepReport, Tracker, logout::logout_event};
use crate::{
    Due, DueWarning, KeyEvent, Notification, StoreError, Timestamp, audit, clock::duration_millis,
    hook_runs, telemetry, unwind::CatchUnwind,
};

impl Tracker {
    /// Sends every warning and runs every logout due now, waiting for the
    /// hooks. The background [`Sweeper`](crate::Sweeper) does this on a
    /// timer; tests with a manual clock call it directly.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        self.sweep_with(false).await
    }

    /// One sweep. In the background the hooks are not waited for, so a slow
    /// hook cannot delay the next warnings and logouts; at most
    /// [`MAX_RUNNING_HOOKS`] logouts run their hooks at once.
    pub(crate) async fn sweep_with(&self, background: bool) -> Result<SweepReport, StoreError> {
        // One span per sweep (DEBUG, target `timeout`): the logs of its
        // warnings, logouts and hooks nest under it, with its totals.
        let span = tracing::debug_span!(
            target: "timeout",
            "sweep",
            warnings = tracing::field::Empty,
            logouts = tracing::field::Empty,
        );
        let swept = self
            .sweep_in_span(background)
            .instrument(span.clone())
            .await;
        if let Ok(report) = &swept {
            span.record("warnings", report.warnings);
            span.record("logouts", report.logouts);
        }
        swept
    }

    async fn sweep_in_span(&self, background: bool) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        if !self.inner.policy.enabled() {
            return Ok(report);
        }
        let mut running = JoinSet::new();
        let mut due = self.claim_batch().await?;
        loop {
            let claimed = due.len();
            // A full batch may have more behind it: the next one is claimed
            // while this one is handled, so a store's round trips overlap
            // with the notifying.
            let (next, ()) = tokio::join!(
                async {
                    match claimed >= CLAIM_BATCH {
                        true => Some(self.claim_batch().await),
                        false => None,
                    }
                },
                self.handle_batch(due, background, &mut running, &mut report)
            );
            match next {
                Some(next) => due = next?,
                None => break,
            }
        }
        while running.join_next().await.is_some() {}
        Ok(report)
    }

    async fn claim_batch(&self) -> Result<Vec<Due>, StoreError> {
        let now = self.inner.clock.now();
        self.inner
            .store
            .claim_due(now, self.inner.timing, CLAIM_BATCH)
            .await
    }

    /// Notifies, records and starts the logouts of one claimed batch.
    async fn handle_batch(
        &self,
        due: Vec<Due>,
        background: bool,
        running: &mut JoinSet<()>,
        report: &mut SweepReport,
    ) {
        // Deadlines are on the store's clock when it has one.
        let now = self
            .inner
            .store
            .now()
            .unwrap_or_else(|| self.inner.clock.now());
        let mut events = Vec::with_capacity(due.len());
        let mut warning_claims = Vec::new();
        let mut expired = Vec::new();
        // Notify first for the whole batch, in one call to the other
        // replicas: hooks may be slow.
        for event in due {
            match event {
                Due::Warning(warning) => {
                    let due_at = warning
                        .deadline
                        .as_millis()
                        .saturating_sub(duration_millis(self.inner.policy.warn_before()));
                    telemetry::warning_sent(now.saturating_since(Timestamp::from_millis(due_at)));
                    let event = warning_event(&warning, now);
                    self.inner.hub.deliver(&event);
                    events.push(event);
                    warning_claims.extend(warning.claim);
                    report.warnings += 1;
                }
                Due::Expiry(e) => {
                    telemetry::logged_out(e.cause, now.saturating_since(e.deadline));
                    let event = logout_event(&e);
                    self.inner.hub.deliver(&event);
                    audit::timed_out(&e);
                    events.push(event);
                    expired.push(e);
                }
                Due::StateLost(lost) => {
                    audit::state_lost(&lost);
                    let tracker = self.clone();
                    let work = async move {
                        let inner = &tracker.inner;
                        hook_runs::run_state_lost(
                            &inner.hooks,
                            &lost,
                            inner.hook_policy,
                            &inner.hook_counters,
                        )
                        .await;
                    };
                    if background {
                        detach(work);
                    } else {
                        running.spawn(work);
                    }
                }
            }
        }
        let published = events.is_empty() || self.publish_batch(&events).await;
        // A warning not published is left leased: it is claimed again
        // after the lease and reaches the other replicas then (this
        // replica's subscribers drop the repeat by its id).
        if published {
            self.acknowledge(&warning_claims, "warnings").await;
        }
        report.logouts += expired.len();
        for e in expired {
            let Ok(slot) = Arc::clone(&self.inner.hook_slots).acquire_owned().await else {
                break; // never closed
            };
            let tracker = self.clone();
            let work = async move {
                tracker.finish_logout(e, published).await;
                drop(slot);
            };
            // Most logouts finish without waiting (hooks that only count
            // or free something in memory), and a task each would cost more
            // than their work. One that waits gets a task of its own, so it
            // holds its slot and never this sweep.
            let Some(waiting) = finish_here(work) else {
                continue;
            };
            if background {
                detach_started(waiting);
            } else {
                running.spawn(async move {
                    if waiting.await.is_err() {
                        tracing::error!(target: "timeout", "a logout's completion panicked");
                    }
                });
            }
        }
    }

    pub(super) async fn publish_batch(&self, events: &[KeyEvent]) -> bool {
        match self.inner.store.publish_all(events).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(
                    target: "timeout",
                    "could not send notifications to the other replicas: {err}; logouts are \
                     sent again before their claims are released, warnings after their lease"
                );
                false
            }
        }
    }
}

/// Runs `work` in a task of its own when there is a Tokio runtime, so that
/// nothing dropping its caller can cut it short; without one, not at all
/// (and says so).
fn detach(work: impl Future<Output = ()> + Send + 'static) {
    detach_started(CatchUnwind::new(work));
}

/// [`detach`] for work already wrapped (and maybe polled) by [`finish_here`].
fn detach_started<F: Future<Output = ()> + Send + 'static>(work: CatchUnwind<F>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(work);
        }
        Err(_) => tracing::error!(
            target: "timeout",
            "timeout hooks not run: the sweeper needs a Tokio runtime"
        ),
    }
}

/// Polls `work` once, here: `None` if it finished (or panicked, which is
/// logged), else the started work, to be run on in a task of its own. A
/// no-op waker is enough: the task that takes the work over polls it again,
/// which registers that task's waker.
fn finish_here<F: Future<Output = ()> + Send + 'static>(work: F) -> Option<CatchUnwind<F>> {
    let mut work = CatchUnwind::new(work);
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut work).poll(&mut cx) {
        Poll::Pending => Some(work),
        Poll::Ready(Ok(())) => None,
        Poll::Ready(Err(_)) => {
            tracing::error!(target: "timeout", "a logout's completion panicked");
            None
        }
    }
}

fn warning_event(warning: &DueWarning, now: Timestamp) -> KeyEvent {
    KeyEvent {
        key: warning.key.clone(),
        notification: Notification::warning(warning.deadline.saturating_since(now)),
        sessions: Vec::new(),
        id: warning.claim.as_ref().map(|c| c.0.clone()),
    }
}
