//! What an adapter's middleware and routes decide around the tracker, kept
//! here so every framework answers the same request the same way: which
//! requests are passive, what the gate lets through, what the routes admit.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use crate::{
    Check, ClientAsset, Decision, DeferredActivity, IdentifyError, Identity, Refusal, RequestKind,
    RequestView, Subject, Tracker,
    client::{CLIENT_PATH, STATUS_PATH},
};

/// Path of the reset endpoint, as the existing front ends call it.
pub const RESET_PATH: &str = "/rest/user/timeout/reset";
/// Default path of the WebSocket notification endpoint.
pub const NOTIFICATIONS_PATH: &str = "/rest/user/timeout/notifications";
/// Default path of the Server-Sent Events notification stream.
pub const EVENTS_PATH: &str = "/rest/user/timeout/events";

/// Body of the 401 the routes answer to a request with no subject.
pub const NOT_LOGGED_IN_JSON: &str = r#"{"error":"not logged in"}"#;
/// Body of the 500 answered when a request's subject cannot be determined.
pub const IDENTIFY_FAILED_JSON: &str =
    r#"{"error":"the session could not be identified; see the server log"}"#;

/// The routes' answer to a request with no subject.
pub const NOT_LOGGED_IN: Refusal = Refusal {
    status: 401,
    body: NOT_LOGGED_IN_JSON,
    content_type: "application/json",
};

const IDENTIFY_FAILED: Refusal = Refusal {
    status: 500,
    body: IDENTIFY_FAILED_JSON,
    content_type: "application/json",
};

/// Reason of the WebSocket close frame sent after the logout notification.
pub const CLOSE_TIMED_OUT: &str = "session timed out";
/// Reason of the WebSocket close frame sent after an explicit logout.
pub const CLOSE_LOGGED_OUT: &str = "logged out";
/// Reason of the WebSocket close frame sent to a client that stopped
/// answering pings.
pub const CLOSE_UNRESPONSIVE: &str = "no answer to ping";

/// Where an adapter serves the reset endpoint and the notification streams.
///
/// ```
/// use timeout_core::adapter::Endpoints;
///
/// let endpoints = Endpoints::default().reset("api/timeout/reset");
/// assert_eq!(endpoints.reset_path(), "/api/timeout/reset");
/// assert_eq!(endpoints.notifications_path(), "/rest/user/timeout/notifications");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    reset: String,
    notifications: String,
    events: String,
    status: String,
    client: String,
    ping_interval: std::time::Duration,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            reset: RESET_PATH.to_owned(),
            notifications: NOTIFICATIONS_PATH.to_owned(),
            events: EVENTS_PATH.to_owned(),
            status: STATUS_PATH.to_owned(),
            client: CLIENT_PATH.to_owned(),
            ping_interval: crate::DEFAULT_PING_INTERVAL,
        }
    }
}

impl Endpoints {
    /// Serves the reset endpoint at `path` instead of [`RESET_PATH`].
    #[must_use]
    pub fn reset(mut self, path: impl Into<String>) -> Self {
        self.reset = absolute(path.into());
        self
    }

    /// Serves the WebSocket at `path` instead of [`NOTIFICATIONS_PATH`].
    #[must_use]
    pub fn notifications(mut self, path: impl Into<String>) -> Self {
        self.notifications = absolute(path.into());
        self
    }

    /// Serves the Server-Sent Events at `path` instead of [`EVENTS_PATH`].
    #[must_use]
    pub fn events(mut self, path: impl Into<String>) -> Self {
        self.events = absolute(path.into());
        self
    }

    /// Serves the passive status answer at `path` instead of
    /// [`STATUS_PATH`].
    #[must_use]
    pub fn status(mut self, path: impl Into<String>) -> Self {
        self.status = absolute(path.into());
        self
    }

    /// Serves the browser client's files under the folder `path` instead of
    /// [`CLIENT_PATH`] (no trailing slash needed).
    #[must_use]
    pub fn client(mut self, path: impl Into<String>) -> Self {
        let path = absolute(path.into());
        let trimmed = path.trim_end_matches('/');
        self.client = if trimmed.is_empty() {
            String::new()
        } else {
            trimmed.to_owned()
        };
        self
    }

    /// How often the WebSocket pings its client (default
    /// [`DEFAULT_PING_INTERVAL`](crate::DEFAULT_PING_INTERVAL), at least
    /// 10 ms); a client that does not answer within the next interval is
    /// closed and its subscription freed.
    #[must_use]
    pub fn ping_interval(mut self, interval: std::time::Duration) -> Self {
        self.ping_interval = interval.max(std::time::Duration::from_millis(10));
        self
    }

    /// The WebSocket ping interval.
    pub fn ping_every(&self) -> std::time::Duration {
        self.ping_interval
    }

    /// The reset path.
    pub fn reset_path(&self) -> &str {
        &self.reset
    }

    /// The WebSocket path.
    pub fn notifications_path(&self) -> &str {
        &self.notifications
    }

    /// The Server-Sent Events path.
    pub fn events_path(&self) -> &str {
        &self.events
    }

    /// The status path.
    pub fn status_path(&self) -> &str {
        &self.status
    }

    /// The folder of the client's files (no trailing slash).
    pub fn client_path(&self) -> &str {
        &self.client
    }

    /// The path of each client file, with the file.
    pub fn client_files(&self) -> impl Iterator<Item = (String, &'static ClientAsset)> + '_ {
        ClientAsset::all()
            .iter()
            .map(|asset| (format!("{}/{}", self.client, asset.name), asset))
    }
}

/// Routers panic at start-up on a route that does not start with `/`.
fn absolute(path: String) -> String {
    if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}

/// The decisions every adapter makes, for one app: a [`Tracker`] and its
/// [`Endpoints`]. Adapters identify the request and answer; the gate decides.
///
/// ```
/// use timeout_core::{Policy, RequestKind, Subject, Tracker, adapter::{Endpoints, Gate, Identity, Verdict}};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build()?);
/// let gate = Gate::new(tracker, Endpoints::default());
/// let alice = Subject::new("s1", "alice")?;
/// let mut entry = gate.enter(Identity::Subject(alice), RequestKind::Activity);
/// // With the memory store the answer is known at once.
/// match entry.now_or_never() {
///     Some(Verdict::Pass(activity)) => assert!(activity.is_some()),
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gate {
    tracker: Tracker,
    endpoints: Endpoints,
}

impl Gate {
    /// The gate of `tracker`, with the routes at `endpoints`.
    pub fn new(tracker: Tracker, endpoints: Endpoints) -> Gate {
        Gate { tracker, endpoints }
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Where the routes are served.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Whether the timeout applies at all; when not, adapters pass requests
    /// through without identifying them.
    pub fn enabled(&self) -> bool {
        self.tracker.policy().enabled()
    }

    /// Whether the gate lets `request` through untouched: the browser
    /// client's files hold no session data, and the page that asks a
    /// timed-out user to log in again needs them with the stale cookie.
    pub fn bypasses(&self, request: &dyn RequestView) -> bool {
        crate::client::asset_at(&self.endpoints.client, request.path()).is_some()
    }

    /// Activity or passive: the notification streams and the status are
    /// passive whatever the policy says (an open tab must not keep its
    /// session alive), the rest as the policy's rules say.
    pub fn classify(&self, request: &dyn RequestView) -> RequestKind {
        let path = request.path();
        let endpoints = &self.endpoints;
        if path == endpoints.notifications || path == endpoints.events || path == endpoints.status {
            return RequestKind::Passive;
        }
        self.tracker.classify(request)
    }

    /// The whole gate for one request, from its identification in progress
    /// to the verdict: the one state machine both adapters run. Tried at
    /// once without a waker, so a ready identification and a store that
    /// answers without I/O cost no allocation; otherwise a [`Deciding`]
    /// future finishes it. An identification that fails is refused (500,
    /// logged), never let in.
    ///
    /// ```
    /// use std::future::ready;
    /// use timeout_core::{Policy, RequestKind, Subject, Tracker, adapter::{Decided, Endpoints, Gate, Identity, Verdict}};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let gate = Gate::new(Tracker::new(Policy::builder().enabled(true).build()?), Endpoints::default());
    /// let alice = Identity::Subject(Subject::new("s1", "alice")?);
    /// match gate.decide(ready(Ok(alice)), RequestKind::Activity) {
    ///     Decided::Now(Verdict::Pass(activity)) => assert!(activity.is_some()),
    ///     _ => unreachable!("the memory store answers at once"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn decide<F>(&self, mut identifying: F, kind: RequestKind) -> Decided<F>
    where
        F: Future<Output = Result<Identity, IdentifyError>> + Unpin,
    {
        let mut cx = Context::from_waker(Waker::noop());
        let state = match Pin::new(&mut identifying).poll(&mut cx) {
            Poll::Ready(Ok(identity)) => {
                let mut entry = self.enter(identity, kind);
                match entry.now_or_never() {
                    Some(verdict) => return Decided::Now(verdict),
                    None => Step::Entering(entry),
                }
            }
            Poll::Ready(Err(err)) => return Decided::Now(refuse(identify_failed(&err))),
            Poll::Pending => Step::Identifying {
                identifying,
                tracker: self.tracker.clone(),
                kind,
            },
        };
        Decided::Later(Deciding(state))
    }

    /// Starts the gate's decision for a request of `identity`. A subject is
    /// checked without moving its deadline; its activity (if `kind` is one)
    /// comes back in [`Verdict::Pass`], to be recorded after the response
    /// unless the response turns out passive. A subject-less request that
    /// carries a timed-out session id is refused with the logout answer.
    pub fn enter(&self, identity: Identity, kind: RequestKind) -> Entry {
        enter(&self.tracker, identity, kind)
    }

    /// Admits a request to one of the timeout's own routes: a subject whose
    /// session has not timed out. Activity (the reset route) moves the
    /// deadline; the notification streams only check it.
    pub async fn admit(
        &self,
        identified: Result<Identity, IdentifyError>,
        kind: RequestKind,
    ) -> Result<Subject, Refusal> {
        let counted = |refusal: Refusal| {
            crate::telemetry::refused(refusal.status);
            refusal
        };
        let subject = match identified.map_err(|err| counted(identify_failed(&err)))? {
            Identity::Subject(subject) => subject,
            Identity::Session(session) => {
                let decision = self.tracker.check_session(&session).await;
                return Err(counted(decision.refusal().unwrap_or(NOT_LOGGED_IN)));
            }
            _ => return Err(counted(NOT_LOGGED_IN)),
        };
        let decision = match kind {
            RequestKind::Activity => self.tracker.reset(Some(&subject)).await,
            _ => self.tracker.check(Some(&subject), kind).await,
        };
        match decision.refusal() {
            Some(refusal) => {
                crate::telemetry::refused(refusal.status);
                Err(refusal)
            }
            None => Ok(subject),
        }
    }
}

/// A refusal, counted.
fn refuse(refusal: Refusal) -> Verdict {
    crate::telemetry::refused(refusal.status);
    Verdict::Refuse(refusal)
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("policy", &format_args!("{}", self.tracker.policy()))
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

fn enter(tracker: &Tracker, identity: Identity, kind: RequestKind) -> Entry {
    match identity {
        Identity::Subject(subject) => {
            let check = tracker.check(Some(&subject), RequestKind::Passive);
            let activity = (kind == RequestKind::Activity).then(|| tracker.defer_activity(subject));
            Entry {
                check: Some(check),
                activity,
            }
        }
        Identity::Session(session) => Entry {
            check: Some(tracker.check_session(&session)),
            activity: None,
        },
        _ => Entry {
            check: None,
            activity: None,
        },
    }
}

/// What [`Gate::decide`] found.
#[derive(Debug)]
#[must_use = "a decision does nothing unless acted on"]
pub enum Decided<F> {
    /// The verdict, known at once.
    Now(Verdict),
    /// The identification or the store needs I/O: await this.
    Later(Deciding<F>),
}

/// The rest of a gate decision that needs I/O ([`Gate::decide`]).
#[must_use = "a gate decision does nothing unless awaited"]
pub struct Deciding<F>(Step<F>);

enum Step<F> {
    Identifying {
        identifying: F,
        tracker: Tracker,
        kind: RequestKind,
    },
    Entering(Entry),
}

impl<F> Future for Deciding<F>
where
    F: Future<Output = Result<Identity, IdentifyError>> + Unpin,
{
    type Output = Verdict;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        loop {
            let next = match &mut self.0 {
                Step::Identifying {
                    identifying,
                    tracker,
                    kind,
                } => match std::task::ready!(Pin::new(identifying).poll(cx)) {
                    Ok(identity) => enter(tracker, identity, *kind),
                    Err(err) => return Poll::Ready(refuse(identify_failed(&err))),
                },
                Step::Entering(entry) => return Pin::new(entry).poll(cx),
            };
            self.0 = Step::Entering(next);
        }
    }
}

impl<F> fmt::Debug for Deciding<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Step::Identifying { .. } => f.write_str("Deciding(identifying)"),
            Step::Entering(entry) => f.debug_tuple("Deciding").field(entry).finish(),
        }
    }
}

/// Refuses a request whose subject could not be determined (fail closed) and
/// logs why; the client only learns to look at the server log.
pub fn identify_failed(err: &IdentifyError) -> Refusal {
    tracing::error!(target: "timeout", "refusing a request whose session could not be identified: {err}");
    IDENTIFY_FAILED
}

/// What the gate decided.
// Exhaustive on purpose: a request is either let through or answered, and
// an adapter must handle both.
#[derive(Debug)]
#[must_use]
pub enum Verdict {
    /// Call the application; afterwards record the activity, if any, unless
    /// the response is marked passive ([`DeferredActivity::finish`]).
    Pass(Option<DeferredActivity>),
    /// Answer this instead; the application is not called.
    Refuse(Refusal),
}

/// A gate decision in progress ([`Gate::enter`]): ready at once on the hot
/// path, a future when the store needs I/O.
#[must_use = "a gate entry decides nothing unless awaited"]
pub struct Entry {
    check: Option<Check>,
    activity: Option<DeferredActivity>,
}

impl Entry {
    /// The verdict if it is known without waiting; `None` means await the
    /// entry.
    pub fn now_or_never(&mut self) -> Option<Verdict> {
        let decision = match &self.check {
            Some(check) => check.now_or_never()?,
            None => Decision::NotTracked,
        };
        Some(self.verdict(decision))
    }

    fn verdict(&mut self, decision: Decision) -> Verdict {
        match decision.refusal() {
            Some(refusal) => refuse(refusal),
            None => Verdict::Pass(self.activity.take()),
        }
    }
}

impl Future for Entry {
    type Output = Verdict;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        let decision = match &mut self.check {
            Some(check) => std::task::ready!(Pin::new(check).poll(cx)),
            None => Decision::NotTracked,
        };
        Poll::Ready(self.verdict(decision))
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("check", &self.check)
            .field("activity", &self.activity)
            .finish()
    }
}
