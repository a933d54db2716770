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
/// The session id and the user name share one allocation (a request's
/// identification costs one), and clones share it, so an extractor that
/// caches subjects hands out clones without allocating.
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
    /// The session id followed by the user name.
    ids: Arc<str>,
    /// Where the user name starts in `ids`.
    split: usize,
    /// `None` for no groups, the common case: an empty `Arc` would allocate.
    groups: Option<Arc<[Arc<str>]>>,
}

impl Subject {
    /// A subject with no groups. Refuses an empty or overlong session id or
    /// user name.
    pub fn new(session: impl AsRef<str>, user: impl AsRef<str>) -> Result<Subject, SubjectError> {
        let (session, user) = (session.as_ref(), user.as_ref());
        check_id("session id", session)?;
        check_id("user name", user)?;
        let mut ids = String::with_capacity(session.len() + user.len());
        ids.push_str(session);
        ids.push_str(user);
        Ok(Subject {
            ids: Arc::from(ids),
            split: session.len(),
            groups: None,
        })
    }

    /// The same subject, member of `groups` (replacing any set before).
    #[must_use]
    pub fn with_groups<I, G>(mut self, groups: I) -> Subject
    where
        I: IntoIterator<Item = G>,
        G: Into<Arc<str>>,
    {
        let groups: Arc<[Arc<str>]> = groups.into_iter().map(Into::into).collect();
        self.groups = (!groups.is_empty()).then_some(groups);
        self
    }

    /// The session id.
    pub fn session(&self) -> &str {
        &self.ids[..self.split]
    }

    /// The session id as its own string, for the registries that keep it
    /// (explicit logouts, subscriptions; not the request path).
    pub(crate) fn session_shared(&self) -> Arc<str> {
        Arc::from(self.session())
    }

    /// The user name as its own string, for the subscription registry.
    pub(crate) fn user_shared(&self) -> Arc<str> {
        Arc::from(self.user())
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.ids[self.split..]
    }

    /// The user's groups.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.groups
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| &**g)
    }

    /// The identity that carries the deadline under `scope`.
    pub fn key(&self, scope: Scope) -> &str {
        match scope {
            Scope::User => self.user(),
            Scope::Session => self.session(),
        }
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session ids are bearer secrets: never print them whole.
        f.debug_struct("Subject")
            .field("session", &redacted(self.session()))
            .field("user", &self.user())
            .field("groups", &self.groups().collect::<Vec<_>>())
            .finish()
    }
}

/// The first characters of a secret, enough to correlate log lines.
pub(crate) fn redacted(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…")
}

/// Checks a user name from outside (an operator's request) as
/// [`Subject::new`] would.
pub(crate) fn check_user(user: &str) -> Result<(), SubjectError> {
    check_id("user name", user)
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

    #[test]
    fn session_and_user_are_kept_apart_in_one_allocation() {
        let s = Subject::new("ab", "cd").unwrap();
        assert_eq!((s.session(), s.user()), ("ab", "cd"));
        assert_ne!(s, Subject::new("a", "bcd").unwrap());
        assert_eq!(s.key(Scope::User), "cd");
        assert_eq!(s.key(Scope::Session), "ab");
        assert_eq!(s.groups().len(), 0);
        assert_eq!(s.clone().with_groups(Vec::<String>::new()), s);
        assert_eq!(s.with_groups(["g"]).groups().collect::<Vec<_>>(), ["g"]);
    }
}
