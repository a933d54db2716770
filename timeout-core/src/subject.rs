//! Who made a request: a [`Subject`] (session, user, groups) and the
//! [`Scope`] that decides which of them carries the deadline.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// Longest accepted user name or session id, in bytes. Longer values are
/// refused rather than stored: they only ever come from a misbehaving
/// extractor or an attack, and every byte is kept per tracked key.
pub const MAX_ID_LEN: usize = 1024;

/// Which identity carries the deadline.
///
/// ```
/// use timeout_core::{Scope, Subject};
///
/// let s = Subject::new("sess-1", "alice").unwrap();
/// assert_eq!(s.key(Scope::User), "alice");
/// assert_eq!(s.key(Scope::Session), "sess-1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scope {
    /// One deadline per user: activity in any of the user's sessions keeps
    /// all of them alive, and they time out together.
    #[default]
    User,
    /// One deadline per session: each session expires on its own.
    Session,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::User => "user",
            Scope::Session => "session",
        })
    }
}

/// Why a [`Subject`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The user name or session id is empty.
    #[error(
        "the {0} is empty: the identity extractor must return a non-empty {0} or no subject at all"
    )]
    Empty(&'static str),
    /// The user name or session id is longer than [`MAX_ID_LEN`].
    #[error(
        "the {what} is {len} bytes long, more than the {max} accepted: check the identity extractor"
    )]
    TooLong {
        /// `"user name"` or `"session id"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// [`MAX_ID_LEN`].
        max: usize,
    },
}

/// The identity behind a request: its session id, its user name and the
/// groups the user belongs to (for group timeouts).
///
/// Fields are reference-counted so an extractor that caches subjects can hand
/// out clones without allocating on every request.
///
/// ```
/// use timeout_core::Subject;
///
/// let s = Subject::new("f3a9", "alice")?.with_groups(["ops", "admins"]);
/// assert_eq!(s.user(), "alice");
/// assert_eq!(s.groups().collect::<Vec<_>>(), ["ops", "admins"]);
/// # Ok::<(), timeout_core::SubjectError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    session: Arc<str>,
    user: Arc<str>,
    groups: Arc<[Arc<str>]>,
}

impl Subject {
    /// A subject with no groups. Refuses an empty or overlong session id or
    /// user name.
    pub fn new(
        session: impl Into<Arc<str>>,
        user: impl Into<Arc<str>>,
    ) -> Result<Subject, SubjectError> {
        let session = session.into();
        let user = user.into();
        check_id("session id", &session)?;
        check_id("user name", &user)?;
        Ok(Subject {
            session,
            user,
            groups: Arc::from(Vec::new()),
        })
    }

    /// The same subject, member of `groups` (replacing any set before).
    #[must_use]
    pub fn with_groups<I, G>(mut self, groups: I) -> Subject
    where
        I: IntoIterator<Item = G>,
        G: Into<Arc<str>>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// The session id.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The session id, shared rather than copied.
    pub(crate) fn session_shared(&self) -> Arc<str> {
        Arc::clone(&self.session)
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's groups.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.groups.iter().map(|g| &**g)
    }

    /// The identity that carries the deadline under `scope`.
    pub fn key(&self, scope: Scope) -> &str {
        match scope {
            Scope::User => &self.user,
            Scope::Session => &self.session,
        }
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session ids are bearer secrets: never print them whole.
        f.debug_struct("Subject")
            .field("session", &redacted(&self.session))
            .field("user", &self.user)
            .field("groups", &self.groups)
            .finish()
    }
}

/// The first characters of a secret, enough to correlate log lines.
pub(crate) fn redacted(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…")
}

fn check_id(what: &'static str, value: &str) -> Result<(), SubjectError> {
    if value.is_empty() {
        return Err(SubjectError::Empty(what));
    }
    if value.len() > MAX_ID_LEN {
        return Err(SubjectError::TooLong {
            what,
            len: value.len(),
            max: MAX_ID_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_overlong_ids() {
        assert_eq!(
            Subject::new("", "alice").unwrap_err(),
            SubjectError::Empty("session id")
        );
        assert_eq!(
            Subject::new("s", "").unwrap_err(),
            SubjectError::Empty("user name")
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        let err = Subject::new("s", long.as_str()).unwrap_err();
        assert!(err.to_string().contains("1025 bytes"), "{err}");
        assert!(Subject::new("s", "x".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn debug_does_not_leak_the_session_id() {
        let s = Subject::new("secret-session-id", "bob").unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret-session-id"), "{shown}");
        assert!(shown.contains("secr…"), "{shown}");
    }
}
