//! Activity recorded after the response: for apps that mark passive routes
//! per route (a route layer, or a marker the handler returns), an adapter
//! only knows whether a request was activity once it is answered.

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::{Check, Decision, RequestKind, Subject, Tracker};

/// Explicit logouts remembered here to skip the store call of a deferred
/// activity whose session its own handler logged out. Beyond this many
/// logouts during one request the store decides: it remembers every ended
/// session (a tombstone) and refuses it, so neither is the logged-out
/// session tracked again nor is anyone else's activity dropped.
const REMEMBERED_LOGOUTS: usize = 1024;

/// The explicit logouts of this replica, numbered.
#[derive(Default)]
pub(crate) struct EndedSessions {
    epoch: AtomicU64,
    recent: Mutex<VecDeque<(u64, Arc<str>)>>,
}

impl EndedSessions {
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn end(&self, session: Arc<str>) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        // Numbered under the lock, so a reader that sees the new epoch finds
        // the entry once it takes the lock.
        let epoch = self.epoch.load(Ordering::Relaxed) + 1;
        recent.push_back((epoch, session));
        if recent.len() > REMEMBERED_LOGOUTS {
            recent.pop_front();
        }
        self.epoch.store(epoch, Ordering::Release);
    }

    /// Whether `session` is known here to have been logged out after
    /// `epoch`; when too many logouts passed to tell, the store's tombstone
    /// decides.
    fn ended_since(&self, epoch: u64, session: &str) -> bool {
        if self.epoch() == epoch {
            return false;
        }
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .iter()
            .any(|(e, s)| *e > epoch && s.as_ref() == session)
    }
}

/// A request's activity, to record once the response shows it was not
/// marked passive. Made by [`Tracker::defer_activity`] at the gate; dropping
/// it records nothing.
///
/// ```
/// use timeout_core::{Decision, Policy, RequestKind, Subject, Tracker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build()?);
/// let alice = Subject::new("s1", "alice")?;
///
/// // The gate checks without moving the deadline...
/// let decision = tracker.check(Some(&alice), RequestKind::Passive).await;
/// assert!(decision.allows());
/// let activity = tracker.defer_activity(alice);
/// // ...the handler answers, its response is not marked passive:
/// assert!(matches!(activity.record().await, Decision::Allowed { .. }));
/// # Ok(()) }
/// ```
pub struct DeferredActivity {
    tracker: Tracker,
    subject: Subject,
    epoch: u64,
}

impl DeferredActivity {
    pub(crate) fn new(tracker: Tracker, subject: Subject) -> DeferredActivity {
        let epoch = tracker.ended().epoch();
        DeferredActivity {
            tracker,
            subject,
            epoch,
        }
    }

    /// Records the activity: moves the deadline, unless the session was
    /// logged out explicitly meanwhile (by the handler of this request).
    pub fn record(self) -> Check {
        if self
            .tracker
            .ended()
            .ended_since(self.epoch, self.subject.session())
        {
            return Check::ready(Decision::NotTracked);
        }
        self.tracker
            .check(Some(&self.subject), RequestKind::Activity)
    }

    /// Records the activity without holding the response back: at once when
    /// the store answers without I/O, else on the current Tokio runtime (an
    /// actix-web worker runs one too). Without a runtime the activity is lost
    /// and a warning says why.
    pub fn finish(self) {
        let check = self.record();
        if check.now_or_never().is_some() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(check);
            }
            Err(_) => tracing::warn!(
                target: "timeout",
                "activity not recorded: the store needs a Tokio runtime to write it"
            ),
        }
    }

    /// The subject whose activity this is.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }
}

impl fmt::Debug for DeferredActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredActivity")
            .field("subject", &self.subject)
            .field("epoch", &self.epoch)
            .finish()
    }
}
