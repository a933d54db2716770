use std::time::Duration;

use hashbrown::{HashMap, HashSet};

use super::{
    ConfigError, DEFAULT_IDLE_TIMEOUT, DEFAULT_REMEMBER, DEFAULT_WARN_BEFORE, Policy,
    StoreUnavailable,
    field::{Field, Source, Unit},
    human,
};
use crate::{PassiveRules, Scope};

/// Where a duration setting came from, so a cross-field error can name the
/// key and value the user wrote.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    field: Field,
    /// `None` for a default the user never set.
    given: Option<(Source, String)>,
}

impl Origin {
    pub(crate) fn given(field: Field, source: Source, raw: impl Into<String>) -> Self {
        Origin {
            field,
            given: Some((source, raw.into())),
        }
    }

    fn default_of(field: Field) -> Self {
        Origin { field, given: None }
    }

    fn from_builder(field: Field, d: Duration) -> Self {
        Origin::given(field, Source::Builder, format!("{d:?}"))
    }

    /// The key, named in the user's own vocabulary (`hint` for a default).
    fn key(&self, hint: Source) -> String {
        let source = self.given.as_ref().map_or(hint, |(s, _)| *s);
        self.field.key(source)
    }

    fn source(&self) -> Option<Source> {
        self.given.as_ref().map(|(s, _)| *s)
    }

    fn value(&self, d: Duration) -> String {
        match &self.given {
            Some((_, raw)) => raw.clone(),
            None => format!("{} (the default)", human(d)),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Timed {
    pub(crate) value: Duration,
    pub(crate) origin: Origin,
}

/// Builds a [`Policy`]; every method has a properties key and a serde field
/// of the same meaning (see the README). Nothing is checked until
/// [`build`](PolicyBuilder::build), which refuses inconsistent settings with
/// an error naming the key.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::Policy;
///
/// let err = Policy::builder()
///     .enabled(true)
///     .idle_timeout(Duration::from_secs(30))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().starts_with("warn_before = \"1 min (the default)\""), "{err}");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyBuilder {
    enabled: bool,
    idle: Timed,
    warn: Timed,
    exempt: Vec<Box<str>>,
    groups: Vec<(Box<str>, Timed)>,
    scope: Scope,
    absolute: Option<Timed>,
    passive: PassiveRules,
    remember: Timed,
    store_unavailable: StoreUnavailable,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        PolicyBuilder {
            enabled: false,
            idle: Timed {
                value: DEFAULT_IDLE_TIMEOUT,
                origin: Origin::default_of(Field::Idle(Unit::Minutes)),
            },
            warn: Timed {
                value: DEFAULT_WARN_BEFORE,
                origin: Origin::default_of(Field::Warning(Unit::Minutes)),
            },
            exempt: Vec::new(),
            groups: Vec::new(),
            scope: Scope::User,
            absolute: None,
            passive: PassiveRules::default(),
            remember: Timed {
                value: DEFAULT_REMEMBER,
                origin: Origin::default_of(Field::Remember(Unit::Minutes)),
            },
            store_unavailable: StoreUnavailable::Refuse,
        }
    }
}

impl PolicyBuilder {
    /// Turns the timeout on or off (off by default, as in the properties).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Idle time after which a key is logged out (480 minutes by default).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = Timed {
            value: timeout,
            origin: Origin::from_builder(Field::Idle(Unit::Minutes), timeout),
        };
        self
    }

    /// How long before the timeout the warning goes out (1 minute by
    /// default); `Duration::ZERO` sends none.
    pub fn warn_before(mut self, lead: Duration) -> Self {
        self.warn = Timed {
            value: lead,
            origin: Origin::from_builder(Field::Warning(Unit::Minutes), lead),
        };
        self
    }

    /// Adds users who never time out. Names are trimmed; empty ones ignored.
    pub fn exempt<I, S>(mut self, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for user in users {
            let user = user.as_ref().trim();
            if !user.is_empty() {
                self.exempt.push(user.into());
            }
        }
        self
    }

    /// A timeout group: its members time out after `timeout` instead of the
    /// global timeout. A user in several groups gets the largest.
    pub fn group(self, name: impl Into<String>, timeout: Duration) -> Self {
        let name: Box<str> = name.into().into_boxed_str();
        let origin = Origin::from_builder(Field::Group(name.clone(), Unit::Minutes), timeout);
        self.group_from(name, timeout, origin)
    }

    pub(crate) fn group_from(mut self, name: Box<str>, timeout: Duration, origin: Origin) -> Self {
        self.groups.retain(|(n, _)| *n != name);
        self.groups.push((
            name,
            Timed {
                value: timeout,
                origin,
            },
        ));
        self
    }

    /// Per user (the default) or per session.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Logs a key out this long after its first request, however active.
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute = Some(Timed {
            value: lifetime,
            origin: Origin::from_builder(Field::Absolute(Unit::Minutes), lifetime),
        });
        self
    }

    /// Replaces the passive-request rules.
    pub fn passive(mut self, rules: PassiveRules) -> Self {
        self.passive = rules;
        self
    }

    /// Adds a passive path prefix (see [`PassiveRules::with_path`]).
    pub fn passive_path(mut self, prefix: impl Into<String>) -> Self {
        self.passive = self.passive.with_path(prefix);
        self
    }

    /// How long a timed-out session stays refused (a day by default).
    pub fn remember_timed_out(mut self, how_long: Duration) -> Self {
        self.remember = Timed {
            value: how_long,
            origin: Origin::from_builder(Field::Remember(Unit::Minutes), how_long),
        };
        self
    }

    /// What the gate does while the store is unreachable.
    pub fn store_unavailable(mut self, policy: StoreUnavailable) -> Self {
        self.store_unavailable = policy;
        self
    }

    pub(crate) fn current_passive(&self) -> &PassiveRules {
        &self.passive
    }

    pub(crate) fn set_idle(mut self, value: Timed) -> Self {
        self.idle = value;
        self
    }

    pub(crate) fn set_warn(mut self, value: Timed) -> Self {
        self.warn = value;
        self
    }

    pub(crate) fn set_absolute(mut self, value: Timed) -> Self {
        self.absolute = Some(value);
        self
    }

    pub(crate) fn set_remember(mut self, value: Timed) -> Self {
        self.remember = value;
        self
    }

    /// Checks every rule and returns the policy, or the first setting that
    /// cannot work, named as the user wrote it.
    pub fn build(self) -> Result<Policy, ConfigError> {
        // Defaults are named in the vocabulary the user is writing in.
        let hint = self
            .idle
            .origin
            .source()
            .or(self.warn.origin.source())
            .unwrap_or(Source::Builder);
        let positive = |t: &Timed, what: &str| -> Result<(), ConfigError> {
            if t.value.as_millis() == 0 {
                return Err(ConfigError::invalid(
                    t.origin.key(hint),
                    t.origin.value(t.value),
                    format!("{what} must be at least 1 millisecond"),
                ));
            }
            Ok(())
        };
        positive(&self.idle, "the idle timeout")?;
        positive(&self.remember, "the time a timed-out session is remembered")?;
        if let Some(abs) = &self.absolute {
            positive(abs, "the absolute lifetime")?;
        }
        for (_, g) in &self.groups {
            positive(g, "a group timeout")?;
        }

        let warn = &self.warn;
        if !warn.value.is_zero() {
            let mut limits: Vec<(&Timed, &str)> = vec![(&self.idle, "the idle timeout")];
            limits.extend(
                self.groups
                    .iter()
                    .map(|(_, g)| (g, "the timeout of this group")),
            );
            if let Some(abs) = &self.absolute {
                limits.push((abs, "the absolute lifetime"));
            }
            for (limit, what) in limits {
                if warn.value >= limit.value {
                    return Err(ConfigError::invalid(
                        warn.origin.key(hint),
                        warn.origin.value(warn.value),
                        format!(
                            "the warning must come before the timeout, but {what} is {} = {:?}; \
                             lower the warning, or set it to 0 to send none",
                            limit.origin.key(hint),
                            limit.origin.value(limit.value),
                        ),
                    ));
                }
            }
        }

        let exempt: HashSet<Box<str>> = self.exempt.into_iter().collect();
        let groups: HashMap<Box<str>, Duration> = self
            .groups
            .into_iter()
            .map(|(name, t)| (name, t.value))
            .collect();
        Ok(Policy {
            enabled: self.enabled,
            idle_timeout: self.idle.value,
            warn_before: self.warn.value,
            exempt,
            groups,
            scope: self.scope,
            absolute_lifetime: self.absolute.map(|t| t.value),
            passive: self.passive,
            remember: self.remember.value,
            store_unavailable: self.store_unavailable,
        })
    }
}
