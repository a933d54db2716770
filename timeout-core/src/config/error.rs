use std::{io, path::PathBuf};

/// A configuration that cannot be used, with the key and value at fault and
/// what to do about it.
///
/// ```
/// use timeout_core::Policy;
///
/// let err = Policy::from_properties("timeout.session.minutes=abc").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "timeout.session.minutes = \"abc\": expected a whole number of minutes, \
///      at least 1 (for example 480)"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that cannot be used.
    #[error("{key} = {value:?}: {problem}")]
    Invalid {
        /// The key as the user wrote it (`timeout.session.minutes`, `minutes`
        /// in serde, `idle_timeout` in the builder).
        key: String,
        /// The value as given.
        value: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A line of a properties file that cannot be read.
    #[error("line {line}: {problem}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The properties file could not be read.
    #[error("cannot read the properties file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        key: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }

    /// The key at fault, if the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}
