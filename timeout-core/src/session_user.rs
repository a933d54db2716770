//! The record the adapters' session helpers keep in the framework session,
//! shared so a tower app and an actix app read each other's sessions alike.

use serde::{Deserialize, Serialize};

/// Where the adapters' `log_in` stores the [`SessionUser`] in the framework
/// session.
pub const SESSION_USER_KEY: &str = "timeout.user";

/// The user of a session, as the timeout needs it.
///
/// ```
/// use timeout_core::adapter::SessionUser;
///
/// let user = SessionUser::new("alice").with_groups(["night-shift"]);
/// assert_eq!(
///     serde_json::to_string(&user).unwrap(),
///     r#"{"name":"alice","groups":["night-shift"]}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionUser {
    /// The user name.
    pub name: String,
    /// Timeout groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The login's tracking id, for frameworks that do not let the app read
    /// the session id (actix-session): empty elsewhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    login: String,
}

impl SessionUser {
    /// A user in no group.
    pub fn new(name: impl Into<String>) -> SessionUser {
        SessionUser {
            name: name.into(),
            groups: Vec::new(),
            login: String::new(),
        }
    }

    /// The same user in `groups`.
    #[must_use]
    pub fn with_groups<G: Into<String>>(mut self, groups: impl IntoIterator<Item = G>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// The login's tracking id; empty unless an adapter set one.
    pub fn login_id(&self) -> &str {
        &self.login
    }

    /// The same user with the tracking id `id`, for adapters whose
    /// framework hides the session id.
    #[must_use]
    pub fn with_login_id(mut self, id: impl Into<String>) -> Self {
        self.login = id.into();
        self
    }
}
