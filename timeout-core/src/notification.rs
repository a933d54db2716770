//! What subscribers receive, in the exact wire format browsers depend on.

use std::{borrow::Cow, time::Duration};

use serde::{Deserialize, Serialize};

/// The reason sent with every timeout logout.
pub const LOGOUT_REASON: &str = "Logged out due to session timeout";

/// The logout notification as JSON: also the body of the 401 answered at the
/// gate, so clients handle one message whichever way they learn of it.
pub const LOGOUT_JSON: &str =
    r#"{"LogoutNotification":{"reason":"Logged out due to session timeout"}}"#;

/// The reason sent when an operator signed the user out everywhere.
pub const SIGNED_OUT_REASON: &str = "Logged out by an administrator";

/// A message pushed to a key's subscribers.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::Notification;
///
/// let warn = Notification::warning(Duration::from_secs(61));
/// assert_eq!(warn.to_json(), r#"{"TimeoutNotification":{"minutesUntilTimeout":2}}"#);
/// assert_eq!(
///     Notification::logout().to_json(),
///     r#"{"LogoutNotification":{"reason":"Logged out due to session timeout"}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Notification {
    /// The session times out soon.
    #[serde(rename = "TimeoutNotification")]
    Warning {
        /// Whole minutes left, rounded up (never 0 while time is left).
        #[serde(rename = "minutesUntilTimeout")]
        minutes_until_timeout: u64,
    },
    /// The session has been logged out; the subscription ends after it.
    #[serde(rename = "LogoutNotification")]
    Logout {
        /// Why: [`LOGOUT_REASON`] for a timeout, [`SIGNED_OUT_REASON`] when
        /// an operator signed the user out. Borrowed, so a
        /// sweep of many logouts copies no text per subscriber.
        reason: Cow<'static, str>,
    },
}

impl Notification {
    /// A warning that `remaining` is left before the timeout.
    pub fn warning(remaining: Duration) -> Notification {
        let ms = remaining.as_millis();
        let minutes = ms.div_ceil(60_000).max(1);
        Notification::Warning {
            minutes_until_timeout: u64::try_from(minutes).unwrap_or(u64::MAX),
        }
    }

    /// The timeout logout.
    pub fn logout() -> Notification {
        Notification::Logout {
            reason: Cow::Borrowed(LOGOUT_REASON),
        }
    }

    /// The logout of a user an operator signed out everywhere; clients
    /// handle it as the timeout logout, with its own reason.
    ///
    /// ```
    /// use timeout_core::Notification;
    ///
    /// assert_eq!(
    ///     Notification::signed_out().to_json(),
    ///     r#"{"LogoutNotification":{"reason":"Logged out by an administrator"}}"#
    /// );
    /// ```
    pub fn signed_out() -> Notification {
        Notification::Logout {
            reason: Cow::Borrowed(SIGNED_OUT_REASON),
        }
    }

    /// Whether this is a logout (after which the subscription closes).
    pub fn is_logout(&self) -> bool {
        matches!(self, Notification::Logout { .. })
    }

    /// The wire form.
    pub fn to_json(&self) -> String {
        match self {
            // Serializing a two-field enum of plain values cannot fail; the
            // fallback keeps the signature free of an impossible error.
            Notification::Logout { reason } if reason == LOGOUT_REASON => LOGOUT_JSON.to_owned(),
            other => serde_json::to_string(other).unwrap_or_else(|_| LOGOUT_JSON.to_owned()),
        }
    }
}

/// A notification for one key: what a shared store publishes so every
/// replica can deliver it to its own subscribers of that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyEvent {
    /// The key (user name or session id, by scope).
    pub key: String,
    /// What to deliver.
    pub notification: Notification,
    /// Only the subscriptions of these sessions; empty for every
    /// subscription of the key. A logout names the sessions it ended, so a
    /// session that started after them keeps its socket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// The claim this event comes from, when the store leases claims: a
    /// claim handed to a second replica (the first died before
    /// acknowledging it) carries the same id, so no subscriber receives it
    /// twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl KeyEvent {
    /// `notification` for every subscription of `key`.
    ///
    /// ```
    /// use timeout_core::{Notification, wire::KeyEvent};
    ///
    /// let event = KeyEvent::new("alice", Notification::logout()).for_sessions(vec!["s1".into()]);
    /// assert_eq!(event.sessions, ["s1"]);
    /// ```
    pub fn new(key: impl Into<String>, notification: Notification) -> KeyEvent {
        KeyEvent {
            key: key.into(),
            notification,
            sessions: Vec::new(),
            id: None,
        }
    }

    /// Only for the subscriptions of `sessions`.
    #[must_use]
    pub fn for_sessions(mut self, sessions: Vec<String>) -> KeyEvent {
        self.sessions = sessions;
        self
    }

    /// Carrying the id of the claim it comes from.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> KeyEvent {
        self.id = Some(id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_rounded_up() {
        let cases = [
            (1, 1),
            (30_000, 1),
            (60_000, 1),
            (60_001, 2),
            (119_999, 2),
            (120_000, 2),
            (0, 1),
        ];
        for (ms, minutes) in cases {
            assert_eq!(
                Notification::warning(Duration::from_millis(ms)),
                Notification::Warning {
                    minutes_until_timeout: minutes
                },
                "{ms} ms"
            );
        }
    }

    #[test]
    fn exact_wire_format_round_trips() {
        let warn = r#"{"TimeoutNotification":{"minutesUntilTimeout":1}}"#;
        let parsed: Notification = serde_json::from_str(warn).unwrap();
        assert_eq!(parsed.to_json(), warn);
        let logout: Notification = serde_json::from_str(LOGOUT_JSON).unwrap();
        assert_eq!(logout, Notification::logout());
        assert_eq!(serde_json::to_string(&logout).unwrap(), LOGOUT_JSON);
    }

    #[test]
    fn other_logout_reasons_serialize_too() {
        let n = Notification::Logout {
            reason: "admin said so".into(),
        };
        assert_eq!(
            n.to_json(),
            r#"{"LogoutNotification":{"reason":"admin said so"}}"#
        );
    }
}
