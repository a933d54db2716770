//! The web framework's own session (tower-sessions, actix-session) may end
//! by its own expiry before the idle timeout does: the user is then logged
//! out by the framework, not by this crate. Operators want to see that, as
//! the product's "Application Server Session Inactivity Timeout - Time since
//! server session expired: \[89000ms\]" line shows it.
//!
//! No framework says when its sessions expire, so the adapters' store
//! wrappers tell a [`FrameworkSessions`] ledger when they save a logged-in
//! session and until when it lives; [`FrameworkSessions::watch`] then
//! looks for sessions past that time, asks the framework's store whether
//! they are really gone (another replica may have extended them), skips
//! those the idle timeout or an explicit logout ended first, and writes one
//! audit record (event `framework_session_expired`) per expiry, and calls
//! [`TimeoutHook::on_framework_session_expired`](crate::TimeoutHook::on_framework_session_expired).

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::{Duration, SystemTime},
};

use crate::{Decision, Tracker, audit};

/// How often [`FrameworkSessions::watch`] looks by default.
pub const DEFAULT_FRAMEWORK_WATCH: Duration = Duration::from_secs(1);

/// A framework session that expired while the idle timeout still ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameworkExpiry {
    /// `tower-sessions`, `actix-session`.
    pub framework: &'static str,
    /// The session id the tracker knows the session by.
    pub session: String,
    /// Its user.
    pub user: String,
    /// When the framework session expired.
    pub expired_at: SystemTime,
    /// How long before it was noticed: the counterpart of the product's
    /// "Time since server session expired".
    pub since: Duration,
}

/// Asks the framework's store whether a session still lives, and until
/// when: `None` when it is gone.
pub type StillAlive =
    Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = Option<SystemTime>> + Send>> + Send + Sync>;

#[derive(Debug)]
struct Entry {
    user: Box<str>,
    ends: SystemTime,
}

/// The logged-in framework sessions this replica saved, and when each ends
/// unless saved again.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use timeout_core::framework::FrameworkSessions;
///
/// let ledger = FrameworkSessions::new("tower-sessions");
/// let now = SystemTime::now();
/// ledger.saved("s1", "alice", now + Duration::from_secs(60));
/// ledger.saved("s2", "bob", now - Duration::from_secs(1));
/// assert_eq!(ledger.len(), 2);
/// ledger.ended("s1");
/// assert_eq!(ledger.len(), 1);
/// ```
pub struct FrameworkSessions {
    framework: &'static str,
    entries: Mutex<HashMap<Box<str>, Entry>>,
    still_alive: OnceLock<StillAlive>,
}

impl fmt::Debug for FrameworkSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameworkSessions")
            .field("framework", &self.framework)
            .field("sessions", &self.len())
            .finish_non_exhaustive()
    }
}

impl FrameworkSessions {
    /// An empty ledger for `framework` (its name in the audit record).
    pub fn new(framework: &'static str) -> Arc<FrameworkSessions> {
        Arc::new(FrameworkSessions {
            framework,
            entries: Mutex::default(),
            still_alive: OnceLock::new(),
        })
    }

    /// The framework's name.
    pub fn framework(&self) -> &'static str {
        self.framework
    }

    /// How the ledger asks the framework's store whether a session it
    /// thinks expired still lives (a store shared by several replicas: one
    /// of them saved it later). Without it, the ledger's own time is taken
    /// as the truth, which is exact for one replica. Set once; later calls
    /// are ignored.
    pub fn still_alive_with(&self, check: StillAlive) {
        let _ = self.still_alive.set(check);
    }

    /// The framework saved the logged-in `session` of `user`; it lives until
    /// `ends` unless saved again.
    pub fn saved(&self, session: &str, user: &str, ends: SystemTime) {
        let mut entries = self.lock();
        match entries.get_mut(session) {
            Some(entry) => {
                entry.ends = ends;
                if *entry.user != *user {
                    entry.user = user.into();
                }
            }
            None => {
                entries.insert(
                    session.into(),
                    Entry {
                        user: user.into(),
                        ends,
                    },
                );
            }
        }
    }

    /// The framework deleted `session` (a logout, or the timeout hook).
    pub fn ended(&self, session: &str) {
        self.lock().remove(session);
    }

    /// Sessions in the ledger.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the sessions past their end at `now` out of the ledger and
    /// reports those that really expired before the idle timeout ended
    /// them: an audit record and the hooks for each.
    pub async fn reap(&self, tracker: &Tracker, now: SystemTime) -> Vec<FrameworkExpiry> {
        let due: Vec<(Box<str>, Entry)> = self
            .lock()
            .extract_if(|_, entry| entry.ends <= now)
            .collect();
        let mut reported = Vec::new();
        for (session, entry) in due {
            if let Some(check) = self.still_alive.get()
                && let Some(ends) = check(session.to_string()).await
                && ends > now
            {
                // Saved later, here or on another replica: whoever saved it
                // last watches it.
                continue;
            }
            // The idle timeout or an explicit logout ended it first: their
            // own records say so.
            if matches!(
                tracker.check_session(&session).await,
                Decision::TimedOut | Decision::Disabled
            ) {
                continue;
            }
            let expiry = FrameworkExpiry {
                framework: self.framework,
                session: session.into(),
                user: entry.user.into(),
                expired_at: entry.ends,
                since: now.duration_since(entry.ends).unwrap_or_default(),
            };
            audit::framework_session_expired(&expiry);
            tracker.framework_session_expired(&expiry).await;
            reported.push(expiry);
        }
        reported
    }

    /// Reaps every `every` (at least 10 ms) on the tokio runtime until the
    /// handle is dropped.
    pub fn watch(self: &Arc<Self>, tracker: Tracker, every: Duration) -> FrameworkWatch {
        let ledger = Arc::clone(self);
        let every = every.max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                ledger.reap(&tracker, SystemTime::now()).await;
            }
        });
        FrameworkWatch(task)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The task of [`FrameworkSessions::watch`]; stops when dropped.
#[derive(Debug)]
#[must_use = "the watch stops when its handle is dropped"]
pub struct FrameworkWatch(tokio::task::JoinHandle<()>);

impl Drop for FrameworkWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, Subject};

    fn tracker() -> Tracker {
        Tracker::new(
            Policy::builder()
                .enabled(true)
                .idle_timeout(Duration::from_secs(600))
                .build()
                .expect("a valid policy"),
        )
    }

    #[tokio::test]
    async fn an_expired_session_is_reported_once_with_the_time_since() {
        let tracker = tracker();
        let ledger = FrameworkSessions::new("tower-sessions");
        let now = SystemTime::now();
        ledger.saved("s1", "alice", now - Duration::from_millis(1500));
        ledger.saved("s2", "bob", now + Duration::from_secs(30));
        let reported = ledger.reap(&tracker, now).await;
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert_eq!(
            (reported[0].session.as_str(), reported[0].user.as_str()),
            ("s1", "alice")
        );
        assert_eq!(reported[0].since, Duration::from_millis(1500));
        assert!(
            ledger.reap(&tracker, now).await.is_empty(),
            "reported twice"
        );
        assert_eq!(ledger.len(), 1, "bob's live session was taken out");
    }

    #[tokio::test]
    async fn a_session_the_idle_timeout_or_a_logout_ended_first_is_not_reported() {
        let clock = crate::clock::ManualClock::new(crate::Timestamp::from_millis(1_000_000));
        let policy = Policy::builder()
            .enabled(true)
            .idle_timeout(Duration::from_secs(600))
            .build()
            .expect("a valid policy");
        let tracker = Tracker::builder(policy).clock(clock.clone()).build();
        let ledger = FrameworkSessions::new("tower-sessions");
        let alice = Subject::new("s1", "alice").expect("valid");
        let bob = Subject::new("s2", "bob").expect("valid");
        let carol = Subject::new("s3", "carol").expect("valid");
        for subject in [&alice, &bob, &carol] {
            tracker.login(subject).await;
        }
        tracker
            .logout(&alice)
            .await
            .expect("the memory store answers");
        clock.advance(Duration::from_secs(300));
        tracker
            .check(Some(&carol), crate::RequestKind::Activity)
            .await;
        clock.advance(Duration::from_secs(301));
        tracker.sweep().await.expect("the memory store answers");
        let past = SystemTime::now() - Duration::from_secs(1);
        for (session, user) in [("s1", "alice"), ("s2", "bob"), ("s3", "carol")] {
            ledger.saved(session, user, past);
        }
        let reported = ledger.reap(&tracker, SystemTime::now()).await;
        assert_eq!(
            reported.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
            ["carol"],
            "alice logged out and bob timed out first; carol's idle timeout still runs"
        );
    }

    #[tokio::test]
    async fn a_session_saved_later_elsewhere_is_left_to_whoever_saved_it() {
        let tracker = tracker();
        let ledger = FrameworkSessions::new("tower-sessions");
        let now = SystemTime::now();
        ledger.still_alive_with(Box::new(move |session| {
            Box::pin(async move { (session == "s1").then_some(now + Duration::from_secs(5)) })
        }));
        ledger.saved("s1", "alice", now - Duration::from_secs(1));
        ledger.saved("s2", "bob", now - Duration::from_secs(1));
        let reported = ledger.reap(&tracker, now).await;
        assert_eq!(
            reported.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
            ["bob"]
        );
        assert!(ledger.is_empty());
    }

    #[tokio::test]
    async fn an_ended_session_is_never_reported() {
        let tracker = tracker();
        let ledger = FrameworkSessions::new("actix-session");
        ledger.saved("s1", "alice", SystemTime::now() - Duration::from_secs(1));
        ledger.ended("s1");
        assert!(ledger.reap(&tracker, SystemTime::now()).await.is_empty());
    }
}
