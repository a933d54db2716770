//! The timeout [`Policy`], built three ways: [`PolicyBuilder`] (any
//! `Duration`), serde, or the properties keys users already have.

mod builder;
mod error;
mod field;
mod properties;
mod raw;

use std::{fmt, path::Path, time::Duration};

use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

pub use self::{builder::PolicyBuilder, error::ConfigError};
use crate::{PassiveRules, Scope};

/// What the gate does while the store cannot be reached (a shared store such
/// as Redis being down).
///
/// The default is [`StoreUnavailable::Refuse`]: the timeout is a security
/// control, and a request that cannot be checked may be one that should have
/// been logged out. Choose [`StoreUnavailable::Allow`] when availability
/// matters more than the idle limit during an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreUnavailable {
    /// Fail closed: answer 503 until the store is back.
    #[default]
    Refuse,
    /// Fail open: let requests through untracked until the store is back.
    Allow,
}

impl fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreUnavailable::Refuse => "refuse",
            StoreUnavailable::Allow => "allow",
        })
    }
}

/// The default idle timeout: 480 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(480 * 60);
/// The default warning lead time: 1 minute.
pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(60);
/// How long a timed-out session is remembered and refused by default: a day.
pub const DEFAULT_REMEMBER: Duration = Duration::from_secs(24 * 60 * 60);

/// The validated rules of the idle timeout.
///
/// From code:
/// ```
/// use std::time::Duration;
/// use timeout_core::{Policy, Scope};
///
/// let policy = Policy::builder()
///     .enabled(true)
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .warn_before(Duration::from_secs(120))
///     .group("night-shift", Duration::from_secs(12 * 3600))
///     .exempt(["monitor"])
///     .scope(Scope::Session)
///     .build()?;
/// assert_eq!(policy.timeout_for(["night-shift"]), Duration::from_secs(12 * 3600));
/// # Ok::<(), timeout_core::ConfigError>(())
/// ```
///
/// From the properties format:
/// ```
/// use timeout_core::Policy;
///
/// let policy = Policy::from_properties(
///     "timeout.session.enabled=true\n\
///      timeout.session.minutes=30\n\
///      timeout.session.exception.usernames=admin, monitor",
/// )?;
/// assert!(policy.is_exempt("monitor"));
/// # Ok::<(), timeout_core::ConfigError>(())
/// ```
///
/// From serde (any format; JSON here):
/// ```
/// use timeout_core::Policy;
///
/// let policy: Policy = serde_json::from_str(
///     r#"{"enabled": true, "minutes": 30, "groups": {"ops": {"minutes": 60}}}"#,
/// )?;
/// assert_eq!(policy.idle_timeout().as_secs(), 1800);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    enabled: bool,
    idle_timeout: Duration,
    warn_before: Duration,
    exempt: HashSet<Box<str>>,
    groups: HashMap<Box<str>, Duration>,
    scope: Scope,
    absolute_lifetime: Option<Duration>,
    passive: PassiveRules,
    remember: Duration,
    store_unavailable: StoreUnavailable,
}

impl Default for Policy {
    /// The documented defaults: disabled, 480 minutes, warning 1 minute before.
    fn default() -> Self {
        Policy {
            enabled: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            warn_before: DEFAULT_WARN_BEFORE,
            exempt: HashSet::new(),
            groups: HashMap::new(),
            scope: Scope::User,
            absolute_lifetime: None,
            passive: PassiveRules::default(),
            remember: DEFAULT_REMEMBER,
            store_unavailable: StoreUnavailable::Refuse,
        }
    }
}

impl Policy {
    /// A builder starting from the defaults (disabled: call `.enabled(true)`).
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// A policy from the properties format (see the README for every key).
    /// Keys outside `timeout.session.` are ignored, so the file may hold the
    /// rest of the application's settings; unknown keys inside it are refused.
    pub fn from_properties(text: &str) -> Result<Policy, ConfigError> {
        PolicyBuilder::default().properties(text)?.build()
    }

    /// [`Policy::from_properties`] on a file.
    pub fn from_properties_file(path: impl AsRef<Path>) -> Result<Policy, ConfigError> {
        PolicyBuilder::default().properties_file(path)?.build()
    }

    /// Whether the timeout applies at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The global idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// How long before the timeout the warning goes out; zero for none.
    pub fn warn_before(&self) -> Duration {
        self.warn_before
    }

    /// Whether `user` never times out.
    pub fn is_exempt(&self, user: &str) -> bool {
        !self.exempt.is_empty() && self.exempt.contains(user)
    }

    /// The exempt user names.
    pub fn exempt_users(&self) -> impl Iterator<Item = &str> {
        self.exempt.iter().map(|u| &**u)
    }

    /// The timeout of a user in `groups`: the largest timeout among the
    /// groups that have one, or the global timeout if none does.
    pub fn timeout_for<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> Duration {
        if self.groups.is_empty() {
            return self.idle_timeout;
        }
        groups
            .into_iter()
            .filter_map(|g| self.groups.get(g))
            .max()
            .copied()
            .unwrap_or(self.idle_timeout)
    }

    /// The timeout groups.
    pub fn groups(&self) -> impl Iterator<Item = (&str, Duration)> {
        self.groups.iter().map(|(n, d)| (&**n, *d))
    }

    /// Which identity carries the deadline.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The longest a key may live however active it is, if limited.
    pub fn absolute_lifetime(&self) -> Option<Duration> {
        self.absolute_lifetime
    }

    /// The rules that make a request passive.
    pub fn passive(&self) -> &PassiveRules {
        &self.passive
    }

    /// How long a timed-out session stays refused, so a client that still
    /// presents it cannot start a fresh idle period with it.
    pub fn remember_timed_out(&self) -> Duration {
        self.remember
    }

    /// What the gate does while the store cannot be reached.
    pub fn store_unavailable(&self) -> StoreUnavailable {
        self.store_unavailable
    }

    /// The largest timeout any user can get: the global one or a group's.
    pub fn longest_timeout(&self) -> Duration {
        self.groups
            .values()
            .copied()
            .fold(self.idle_timeout, Duration::max)
    }

    /// The timeouts (the global one, then groups by name) longer than `ttl`,
    /// the lifetime a framework session gets: those users would lose their
    /// framework session before this policy times them out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use timeout_core::Policy;
    ///
    /// let policy = Policy::from_properties(
    ///     "timeout.session.enabled=true\n\
    ///      timeout.session.minutes=30\n\
    ///      timeout.session.group.ops.minutes=120",
    /// )?;
    /// let ttl = Duration::from_secs(3600);
    /// assert_eq!(policy.timeouts_longer_than(ttl), ["group ops (120 min)"]);
    /// # Ok::<(), timeout_core::ConfigError>(())
    /// ```
    pub fn timeouts_longer_than(&self, ttl: Duration) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.idle_timeout > ttl {
            out.push(format!("the idle timeout ({})", human(self.idle_timeout)));
        }
        let mut groups: Vec<_> = self.groups.iter().filter(|(_, d)| **d > ttl).collect();
        groups.sort();
        out.extend(
            groups
                .into_iter()
                .map(|(name, d)| format!("group {name} ({})", human(*d))),
        );
        out
    }

    /// Logs a `tracing` warning when a framework session (`framework`) can
    /// outlive the memory of a timeout: a session the sweeper timed out
    /// while its tab was closed keeps its login in the framework for `ttl`,
    /// but is refused only while remembered, so after that it would start a
    /// new idle period. Adapters whose hooks cannot destroy the framework
    /// session from the sweeper (actix-session) call it at start-up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use timeout_core::Policy;
    ///
    /// let policy = Policy::builder()
    ///     .enabled(true)
    ///     .remember_timed_out(Duration::from_secs(3600))
    ///     .build()
    ///     .unwrap();
    /// assert!(policy.warn_if_remembered_shorter("actix-session", Duration::from_secs(7200)));
    /// assert!(!policy.warn_if_remembered_shorter("actix-session", Duration::from_secs(3600)));
    /// ```
    pub fn warn_if_remembered_shorter(&self, framework: &str, ttl: Duration) -> bool {
        if !self.enabled || ttl <= self.remember {
            return false;
        }
        tracing::warn!(
            target: "timeout",
            "{framework} keeps sessions for {}, but a timed-out session is remembered for {}: \
             a login that timed out while its tab was closed would be accepted again after that; \
             set timeout.session.remember.minutes to at least the {framework} TTL, or shorten the TTL",
            human(ttl),
            human(self.remember),
        );
        true
    }

    /// Logs a `tracing` warning when a framework session (`framework`, e.g.
    /// "tower-sessions") expires after `ttl` of inactivity, before this
    /// policy's timeouts: the framework would end the session first and the
    /// user would get no warning. Returns whether it warned. Adapters call it
    /// at start-up.
    pub fn warn_if_session_ends_first(&self, framework: &str, ttl: Duration) -> bool {
        let longer = self.timeouts_longer_than(ttl);
        if longer.is_empty() {
            return false;
        }
        tracing::warn!(
            target: "timeout",
            "{framework} ends sessions after {} of inactivity, before {}: \
             users would be logged out without a warning; make the session timeout \
             shorter than or equal to the {framework} expiry, or lengthen the expiry",
            human(ttl),
            longer.join(" and "),
        );
        true
    }
}

impl fmt::Display for Policy {
    /// One line a demo or a service prints at start-up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.enabled {
            return f.write_str("idle timeout disabled (timeout.session.enabled=false)");
        }
        write!(f, "idle timeout {}", human(self.idle_timeout))?;
        if !self.groups.is_empty() {
            let mut groups: Vec<_> = self.groups.iter().collect();
            groups.sort();
            let list: Vec<String> = groups
                .iter()
                .map(|(n, d)| format!("{n} {}", human(**d)))
                .collect();
            write!(f, " (groups: {})", list.join(", "))?;
        }
        if self.warn_before.is_zero() {
            f.write_str(", no warning")?;
        } else {
            write!(f, ", warning {} before", human(self.warn_before))?;
        }
        write!(f, ", per {}", self.scope)?;
        if let Some(abs) = self.absolute_lifetime {
            write!(f, ", absolute lifetime {}", human(abs))?;
        }
        if !self.exempt.is_empty() {
            let mut users: Vec<_> = self.exempt.iter().map(|u| &**u).collect();
            users.sort_unstable();
            write!(f, ", exempt: {}", users.join(", "))?;
        }
        let passive = self.passive.describe();
        if !passive.is_empty() {
            write!(f, ", passive: {}", passive.join("; "))?;
        }
        write!(f, ", store unavailable: {}", self.store_unavailable)
    }
}

/// `90 s`, `8 min`, `1500 ms`: the unit a person would use.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{} s", ms / 1_000)
    } else {
        format!("{ms} ms")
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let config = raw::SerdeConfig::deserialize(deserializer)?;
        config
            .into_builder()
            .and_then(PolicyBuilder::build)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
