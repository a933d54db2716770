//! The answers of the operator routes, the same for every adapter: a list
//! of a user's sessions and signing a user out everywhere, as JSON.
//!
//! Adapters mount them only when the application asks, under a path of its
//! choice and behind its own authorization: the timeout cannot tell an
//! operator from a user.

use std::{borrow::Cow, time::Duration};

use serde::Serialize;
use serde_json::json;

pub use crate::tracker::{AdminError, SessionDeadline};
use crate::{StoreError, Tracker, audit::Escaped};

/// The route listing a user's sessions, under where the application mounts
/// the operator routes (path syntax of axum 0.8 and actix-web).
pub const SESSIONS_PATH: &str = "/users/{user}/sessions";

/// The route signing a user out everywhere (`POST`), likewise.
pub const SIGN_OUT_PATH: &str = "/users/{user}/sign-out";

/// An answer of an operator route.
///
/// ```
/// use timeout_core::{Policy, Tracker, admin::list_sessions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build()?);
/// let answer = list_sessions(&tracker, "alice").await;
/// assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"user":"alice","sessions":[]}"#));
/// assert_eq!(list_sessions(&tracker, "").await.status, 400);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

impl Answer {
    /// The headers to send with it: JSON, never cached (it changes with
    /// every request), and `Retry-After` while the store is unreachable.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, Cow<'static, str>)> + use<> {
        [
            Some(("content-type", Cow::Borrowed("application/json"))),
            Some(("cache-control", Cow::Borrowed("no-store"))),
            (self.status == 503).then_some(("retry-after", Cow::Borrowed("1"))),
        ]
        .into_iter()
        .flatten()
    }

    fn ok(body: &impl Serialize) -> Answer {
        match serde_json::to_string(body) {
            Ok(body) => Answer { status: 200, body },
            // Plain strings and numbers always serialize; kept total anyway.
            Err(err) => Answer {
                status: 500,
                body: json!({ "error": err.to_string() }).to_string(),
            },
        }
    }

    fn failed(err: &AdminError) -> Answer {
        let status = match err {
            AdminError::User(_) => 400,
            AdminError::Store(StoreError::Unsupported { .. }) => 501,
            AdminError::Store(_) => 503,
        };
        if let AdminError::Store(err) = err {
            crate::telemetry::store_error(err);
        }
        if status != 400 {
            tracing::error!(target: "timeout", "an operator's request failed: {err}");
        }
        Answer {
            status,
            body: json!({ "error": err.to_string() }).to_string(),
        }
    }
}

/// `GET .../users/{user}/sessions`: `{"user":"alice","sessions":[{"session":"s-12…",
/// "deadlineMs":1700000000000,"secondsLeft":1799.5}]}`, soonest deadline
/// first (see [`Tracker::sessions_of`]).
pub async fn list_sessions(tracker: &Tracker, user: &str) -> Answer {
    match tracker.sessions_of(user).await {
        Ok(sessions) => {
            let sessions = sessions
                .iter()
                .map(|s| Listed {
                    session: &s.session,
                    deadline_ms: s.deadline.as_millis(),
                    seconds_left: seconds(s.time_left),
                })
                .collect();
            Answer::ok(&UserSessions { user, sessions })
        }
        Err(err) => Answer::failed(&err),
    }
}

/// `POST .../users/{user}/sign-out`: `{"user":"alice","signedOut":2}`, the
/// number of sessions this request signed out (see
/// [`Tracker::sign_out_everywhere`]); 0 when there were none, so a retry is
/// harmless.
pub async fn sign_out(tracker: &Tracker, user: &str) -> Answer {
    match tracker.sign_out_everywhere(user).await {
        Ok(signed_out) => {
            tracing::info!(
                target: crate::audit::AUDIT_TARGET,
                event = "sign_out",
                user = %Escaped(user),
                sessions = signed_out,
                "an operator signed the user out everywhere"
            );
            Answer::ok(&SignedOut { user, signed_out })
        }
        Err(err) => Answer::failed(&err),
    }
}

// Written in this order, user first, for whoever reads it.
#[derive(Serialize)]
struct UserSessions<'a> {
    user: &'a str,
    sessions: Vec<Listed<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    session: &'a str,
    deadline_ms: u64,
    seconds_left: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedOut<'a> {
    user: &'a str,
    signed_out: usize,
}

fn seconds(d: Duration) -> f64 {
    // Milliseconds are all the store keeps.
    (d.as_millis() as f64) / 1000.0
}
