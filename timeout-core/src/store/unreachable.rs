//! A store that never answers: what the gate does while the real one is
//! down, without having to take a real one down.

use async_trait::async_trait;

use super::{Due, Expired, Store, StoreError, Timing, Touch, TouchOutcome, TrackedKey};
use crate::{Scope, Timestamp};

/// A [`Store`] whose every call fails as unreachable, for testing what an
/// application answers during an outage (the policy's
/// `timeout.session.store.unavailable`: 503 with `Retry-After`, or let in).
///
/// ```
/// use std::sync::Arc;
/// use timeout_core::{Decision, Policy, RequestKind, Subject, Tracker, store::UnreachableStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::builder(Policy::builder().enabled(true).build()?)
///     .store(Arc::new(UnreachableStore::new("test store")))
///     .build();
/// let decision = tracker.check(Some(&Subject::new("s1", "alice")?), RequestKind::Activity).await;
/// assert_eq!(decision, Decision::Unavailable);
/// assert_eq!(decision.refusal().unwrap().retry_after(), Some(1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UnreachableStore {
    what: String,
}

impl UnreachableStore {
    /// A store named `what` in its errors.
    pub fn new(what: impl Into<String>) -> UnreachableStore {
        UnreachableStore { what: what.into() }
    }

    fn down(&self) -> StoreError {
        StoreError::Unavailable {
            what: self.what.clone(),
            source: "connection refused".into(),
        }
    }
}

#[async_trait]
impl Store for UnreachableStore {
    async fn touch(&self, _: &Touch<'_>) -> Result<TouchOutcome, StoreError> {
        Err(self.down())
    }

    async fn deadline(&self, _: &str, _: Timing) -> Result<Option<Timestamp>, StoreError> {
        Err(self.down())
    }

    async fn end_session(&self, _: &str, _: &str, _: Timing) -> Result<bool, StoreError> {
        Err(self.down())
    }

    async fn remove(&self, _: &str) -> Result<bool, StoreError> {
        Err(self.down())
    }

    async fn forget_timed_out(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(self.down())
    }

    async fn timed_out(&self, _: &str, _: Timestamp) -> Result<bool, StoreError> {
        Err(self.down())
    }

    async fn claim_due(&self, _: Timestamp, _: Timing, _: usize) -> Result<Vec<Due>, StoreError> {
        Err(self.down())
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        Err(self.down())
    }

    async fn keys_of_user(&self, _: &str, _: Scope) -> Result<Vec<TrackedKey>, StoreError> {
        Err(self.down())
    }

    async fn claim_now(
        &self,
        _: &str,
        _: Timestamp,
        _: Timing,
    ) -> Result<Option<Expired>, StoreError> {
        Err(self.down())
    }
}
