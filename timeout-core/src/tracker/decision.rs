//! What the gate decides for one request, and how a refusal is answered.

use std::{
    borrow::Cow,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use crate::{Timestamp, notification::LOGOUT_JSON};

/// What the gate decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The timeout is disabled: pass through.
    Disabled,
    /// The request has no subject (not logged in): pass through.
    NotTracked,
    /// The user is exempt: pass through.
    Exempt,
    /// Tracked and alive until `deadline`.
    Allowed {
        /// When the key times out unless there is activity before.
        deadline: Timestamp,
    },
    /// Timed out: refuse with 401 and the logout JSON.
    TimedOut,
    /// The store is unreachable and the policy lets requests through.
    Unchecked,
    /// The store is unreachable and the policy refuses requests (503).
    Unavailable,
    /// A new session of a user who already has the most sessions allowed
    /// ([`TrackerBuilder::max_sessions_per_key`](crate::TrackerBuilder::max_sessions_per_key)): refused (403); the
    /// user's other sessions go on.
    SessionLimit,
}

/// How to answer a refused request; the same for every adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: &'static str,
    /// Its content type.
    pub content_type: &'static str,
}

impl Refusal {
    /// The `Retry-After` seconds to send with it: the store is unreachable
    /// for now, and clients (and proxies) should try again shortly rather
    /// than treat the session as gone.
    ///
    /// ```
    /// use timeout_core::Decision;
    ///
    /// assert_eq!(Decision::Unavailable.refusal().unwrap().retry_after(), Some(1));
    /// assert_eq!(Decision::TimedOut.refusal().unwrap().retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<u32> {
        (self.status == 503).then_some(1)
    }

    /// Whether this is the logout answer of a timed-out session: the
    /// framework session should be destroyed along with it.
    ///
    /// ```
    /// use timeout_core::Decision;
    ///
    /// assert!(Decision::TimedOut.refusal().is_some_and(|r| r.is_timeout()));
    /// assert!(!Decision::Unavailable.refusal().is_some_and(|r| r.is_timeout()));
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.body == LOGOUT_JSON
    }

    /// The headers to answer with, beside the status and the body: its
    /// content type, `Cache-Control: no-store` (the next request may be
    /// let in, so no cache may replay this answer) and, for an unreachable
    /// store, [`Retry-After`](Refusal::retry_after). Every adapter sends
    /// exactly these.
    ///
    /// ```
    /// use timeout_core::Decision;
    ///
    /// let refusal = Decision::Unavailable.refusal().unwrap();
    /// let headers: Vec<(&str, String)> =
    ///     refusal.headers().map(|(name, value)| (name, value.into_owned())).collect();
    /// assert_eq!(
    ///     headers,
    ///     [
    ///         ("content-type", "application/json".to_owned()),
    ///         ("cache-control", "no-store".to_owned()),
    ///         ("retry-after", "1".to_owned()),
    ///     ]
    /// );
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, Cow<'static, str>)> {
        [
            Some(("content-type", Cow::Borrowed(self.content_type))),
            Some(("cache-control", Cow::Borrowed("no-store"))),
            self.retry_after()
                .map(|seconds| ("retry-after", Cow::Owned(seconds.to_string()))),
        ]
        .into_iter()
        .flatten()
    }
}

/// Body of the 403 answered to a session past the per-user limit.
pub const SESSION_LIMIT_JSON: &str = r#"{"error":"too many sessions for this user; log out of another session, or wait until one times out"}"#;

/// Body of the 503 answered while the store is unreachable (fail closed).
pub const UNAVAILABLE_JSON: &str =
    r#"{"error":"the session timeout store is unavailable; try again shortly"}"#;

/// The answer while the store is unreachable and the policy refuses.
pub(crate) const UNAVAILABLE: Refusal = Refusal {
    status: 503,
    body: UNAVAILABLE_JSON,
    content_type: "application/json",
};

impl Decision {
    /// Whether the request may reach the application.
    pub fn allows(&self) -> bool {
        self.refusal().is_none()
    }

    /// How to answer if the request is refused.
    ///
    /// ```
    /// use timeout_core::{Decision, wire::LOGOUT_JSON};
    ///
    /// let refusal = Decision::TimedOut.refusal().unwrap();
    /// assert_eq!((refusal.status, refusal.body), (401, LOGOUT_JSON));
    /// assert!(Decision::Exempt.refusal().is_none());
    /// ```
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Decision::TimedOut => Some(Refusal {
                status: 401,
                body: LOGOUT_JSON,
                content_type: "application/json",
            }),
            Decision::Unavailable => Some(UNAVAILABLE),
            Decision::SessionLimit => Some(Refusal {
                status: 403,
                body: SESSION_LIMIT_JSON,
                content_type: "application/json",
            }),
            _ => None,
        }
    }
}

/// The future of a gate decision: ready at once on the hot path (no
/// allocation), boxed only when the store needs I/O or a logout must run.
#[must_use = "a check does nothing unless awaited"]
pub struct Check(CheckState);

enum CheckState {
    Ready(Decision),
    Pending(Pin<Box<dyn Future<Output = Decision> + Send + 'static>>),
}

impl Check {
    pub(crate) fn ready(decision: Decision) -> Check {
        Check(CheckState::Ready(decision))
    }

    pub(super) fn pending(fut: impl Future<Output = Decision> + Send + 'static) -> Check {
        Check(CheckState::Pending(Box::pin(fut)))
    }

    /// The decision if it was made without waiting.
    pub fn now_or_never(&self) -> Option<Decision> {
        match &self.0 {
            CheckState::Ready(d) => Some(*d),
            CheckState::Pending(_) => None,
        }
    }
}

impl Future for Check {
    type Output = Decision;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Decision> {
        match &mut self.0 {
            CheckState::Ready(d) => Poll::Ready(*d),
            CheckState::Pending(fut) => fut.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CheckState::Ready(d) => f.debug_tuple("Check").field(d).finish(),
            CheckState::Pending(_) => f.write_str("Check(pending)"),
        }
    }
}
