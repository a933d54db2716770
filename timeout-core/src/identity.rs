//! Who made a request, as every adapter reports it to the [`Gate`](crate::adapter::Gate).

use std::{borrow::Cow, error::Error as StdError, fmt};

use crate::{Subject, SubjectError};

/// Who made a request.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Identity {
    /// Not logged in, no framework session: passes through untracked.
    #[default]
    Anonymous,
    /// Not logged in, but the request carries this framework session id: if
    /// that session timed out (and its record was destroyed), the request is
    /// refused with the logout answer so the page can offer to log in again;
    /// otherwise it passes through untracked.
    Session(Box<str>),
    /// Logged in.
    Subject(Subject),
}

impl From<Subject> for Identity {
    fn from(subject: Subject) -> Self {
        Identity::Subject(subject)
    }
}

impl From<Option<Subject>> for Identity {
    fn from(subject: Option<Subject>) -> Self {
        subject.map_or(Identity::Anonymous, Identity::Subject)
    }
}

/// Identification failed: the request is refused with 500 (fail closed) and
/// the cause is logged, not sent to the client.
#[derive(Debug)]
pub struct IdentifyError {
    message: Cow<'static, str>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl IdentifyError {
    /// An error with a message saying what went wrong and what to do.
    pub fn new(message: impl Into<Cow<'static, str>>) -> IdentifyError {
        IdentifyError {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(
        message: impl Into<Cow<'static, str>>,
        source: impl StdError + Send + Sync + 'static,
    ) -> IdentifyError {
        IdentifyError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for IdentifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for IdentifyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<SubjectError> for IdentifyError {
    fn from(err: SubjectError) -> Self {
        IdentifyError::with_source("the request's user or session id cannot be tracked", err)
    }
}

/// What an identification closure may return: an optional [`Subject`], an
/// [`Identity`], or a result of either.
pub trait IntoIdentity {
    /// The identity.
    fn into_identity(self) -> Result<Identity, IdentifyError>;
}

impl IntoIdentity for Identity {
    fn into_identity(self) -> Result<Identity, IdentifyError> {
        Ok(self)
    }
}

impl IntoIdentity for Option<Subject> {
    fn into_identity(self) -> Result<Identity, IdentifyError> {
        Ok(self.into())
    }
}

impl<E: Into<IdentifyError>> IntoIdentity for Result<Identity, E> {
    fn into_identity(self) -> Result<Identity, IdentifyError> {
        self.map_err(Into::into)
    }
}

impl<E: Into<IdentifyError>> IntoIdentity for Result<Option<Subject>, E> {
    fn into_identity(self) -> Result<Identity, IdentifyError> {
        self.map(Identity::from).map_err(Into::into)
    }
}
