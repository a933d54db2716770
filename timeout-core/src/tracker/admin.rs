//! What an operator may do to one user: see the user's sessions with their
//! deadlines, and sign the user out everywhere.

use std::time::Duration;

use super::Tracker;
use crate::{
    Expired, StoreError, SubjectError, Timestamp,
    subject::{check_user, redacted},
};

/// One tracked session of a user, as an operator sees it.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::{Policy, Subject, Tracker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build()?);
/// tracker.login(&Subject::new("s-1234", "alice")?).await;
/// let sessions = tracker.sessions_of("alice").await?;
/// assert_eq!(sessions[0].session, "s-12…");
/// assert!(sessions[0].time_left > Duration::from_secs(60));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionDeadline {
    /// The session id's first characters: ids are bearer secrets, and an
    /// operator's page is no place for them whole.
    pub session: String,
    /// When it times out unless there is activity before.
    pub deadline: Timestamp,
    /// How long until then (zero when it has passed and no sweep has logged
    /// it out yet).
    pub time_left: Duration,
}

/// Why an operator's request about a user failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The user name cannot be one (empty, or too long).
    #[error("no such user can exist: {0}")]
    User(#[from] SubjectError),
    /// The store failed or cannot do it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Tracker {
    /// The tracked sessions of `user` with their deadlines and the time
    /// they have left, for an operator; empty for a user who is not logged
    /// in, is exempt, or while the timeout is disabled. In session scope the
    /// store may scan every tracked key to find them.
    pub async fn sessions_of(&self, user: &str) -> Result<Vec<SessionDeadline>, AdminError> {
        check_user(user)?;
        if !self.inner.policy.enabled() {
            return Ok(Vec::new());
        }
        let keys = self
            .inner
            .store
            .keys_of_user(user, self.inner.policy.scope())
            .await?;
        let now = self.inner.store.now().unwrap_or_else(|| self.now());
        let mut sessions: Vec<SessionDeadline> = keys
            .iter()
            .flat_map(|key| {
                key.sessions.iter().map(|session| SessionDeadline {
                    session: redacted(session),
                    deadline: key.deadline,
                    time_left: key.deadline.saturating_since(now),
                })
            })
            .collect();
        sessions.sort_by_key(|s| s.deadline);
        Ok(sessions)
    }

    /// Signs `user` out of every session on every replica, at once: each of
    /// the user's keys is claimed from the store (by exactly one caller,
    /// however many operators and replicas race), its sockets get the
    /// logout notification with [`SIGNED_OUT_REASON`](crate::wire::SIGNED_OUT_REASON)
    /// wherever they are, its hooks run once and the audit log records it
    /// with [`Cause::SignedOut`](crate::Cause::SignedOut). The sessions are
    /// refused afterwards as timed-out ones are. Returns how many sessions
    /// this call signed out; each logout's hooks are waited for at most the
    /// hook timeout, and finish in the background after that.
    ///
    /// ```
    /// use timeout_core::{Policy, Subject, Tracker};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let tracker = Tracker::new(Policy::builder().enabled(true).build()?);
    /// tracker.login(&Subject::new("s1", "alice")?).await;
    /// tracker.login(&Subject::new("s2", "alice")?).await;
    /// assert_eq!(tracker.sign_out_everywhere("alice").await?, 2);
    /// assert_eq!(tracker.sign_out_everywhere("alice").await?, 0);
    /// assert!(tracker.sessions_of("alice").await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn sign_out_everywhere(&self, user: &str) -> Result<usize, AdminError> {
        check_user(user)?;
        if !self.inner.policy.enabled() {
            return Ok(0);
        }
        let store = &self.inner.store;
        let keys = store.keys_of_user(user, self.inner.policy.scope()).await?;
        let mut claimed = Vec::with_capacity(keys.len());
        let mut failed = None;
        for key in keys {
            // Claimed ones are logged out even if a later claim fails: a
            // claim not run would be lost until its lease runs out.
            match store
                .claim_now(&key.key, self.now(), self.inner.timing)
                .await
            {
                Ok(Some(expired)) => claimed.push(expired),
                Ok(None) => {} // logged out meanwhile, by a sweep or another operator
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        let sessions = claimed.iter().map(|e| e.sessions.len()).sum();
        self.log_out_claimed(claimed).await;
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(sessions),
        }
    }

    /// Runs claimed logouts side by side, each as the gate runs one.
    async fn log_out_claimed(&self, claimed: Vec<Expired>) {
        if tokio::runtime::Handle::try_current().is_err() {
            for expired in claimed {
                self.logout_at_gate(expired).await;
            }
            return;
        }
        let mut running = tokio::task::JoinSet::new();
        for expired in claimed {
            let tracker = self.clone();
            running.spawn(async move { tracker.logout_at_gate(expired).await });
        }
        while running.join_next().await.is_some() {}
    }
}
