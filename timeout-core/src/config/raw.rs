//! Settings as written (strings from a properties file, numbers, lists and
//! maps from serde), turned into builder calls by one set of rules, so both
//! sources refuse the same bad values with the same messages.

use std::{fmt, path::Path, time::Duration};

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, SeqAccess, Visitor},
};

use super::{
    ConfigError, PolicyBuilder, StoreUnavailable,
    builder::{Origin, Timed},
    field::{Field, PREFIX, Source, Unit, field_of_properties_key, known_properties_keys, suggest},
    properties::{self, Entry},
};
use crate::Scope;

/// Longest accepted duration setting: a century is already absurd, and the
/// cap keeps every later millisecond sum far from overflow.
const MAX_MINUTES: u64 = 100 * 366 * 24 * 60;

/// A value as written, before it is checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Raw>),
    Map(Vec<(String, Raw)>),
}

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::Int(i) => write!(f, "{i}"),
            Raw::Float(x) => write!(f, "{x}"),
            Raw::Str(s) => f.write_str(s),
            Raw::List(items) => {
                let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
            Raw::Map(entries) => {
                let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
        }
    }
}

/// One setting to apply: which field, from where, with what value.
struct Setting {
    field: Field,
    source: Source,
    raw: Raw,
}

impl Setting {
    fn key(&self) -> String {
        self.field.key(self.source)
    }

    fn fail(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.key(), self.raw.to_string(), problem)
    }

    fn text(&self) -> Result<&str, ConfigError> {
        match &self.raw {
            Raw::Str(s) => Ok(s),
            _ => Err(self.fail("expected text")),
        }
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        let parsed = match &self.raw {
            Raw::Bool(b) => Some(*b),
            Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| self.fail("expected true or false"))
    }

    /// A whole number of `unit`s, at least `min`.
    fn duration(&self, unit: Unit, min: u64) -> Result<Timed, ConfigError> {
        let expected = || {
            let example = match unit {
                Unit::Minutes => 480,
                Unit::Seconds => 30,
            };
            format!(
                "expected a whole number of {}, at least {min} (for example {example})",
                unit.word()
            )
        };
        let n: i128 = match &self.raw {
            Raw::Int(i) => *i,
            Raw::Str(s) => s.trim().parse().map_err(|_| self.fail(expected()))?,
            _ => return Err(self.fail(expected())),
        };
        if n < i128::from(min) {
            return Err(self.fail(expected()));
        }
        let max = match unit {
            Unit::Minutes => MAX_MINUTES,
            Unit::Seconds => MAX_MINUTES * 60,
        };
        let n = u64::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| self.fail(format!("too large: at most {max} {}", unit.word())))?;
        let value = match unit {
            Unit::Minutes => Duration::from_secs(n * 60),
            Unit::Seconds => Duration::from_secs(n),
        };
        Ok(Timed {
            value,
            origin: Origin::given(self.field.clone(), self.source, self.raw.to_string()),
        })
    }

    /// A list: serde lists as they are, text split by `delimiter`; items
    /// trimmed, empty ones dropped.
    fn list(&self, delimiter: &str) -> Result<Vec<String>, ConfigError> {
        let items: Vec<String> = match &self.raw {
            Raw::Str(s) => s.split(delimiter).map(str::to_owned).collect(),
            Raw::List(items) => items
                .iter()
                .map(|item| match item {
                    Raw::Str(s) => Ok(s.clone()),
                    other => Err(self.fail(format!("expected a list of text, found {other}"))),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(self.fail("expected a list")),
        };
        Ok(items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect())
    }

    fn word<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, ConfigError> {
        let given = self.text()?.trim().to_ascii_lowercase();
        choices
            .iter()
            .find(|(name, _)| *name == given)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.fail(format!("expected one of: {}", names.join(", ")))
            })
    }
}

/// Applies `settings` to `builder` with the rules shared by every source.
fn apply(mut b: PolicyBuilder, settings: Vec<Setting>) -> Result<PolicyBuilder, ConfigError> {
    refuse_both_units(&settings)?;
    let mut delimiter = ",".to_owned();
    for s in settings
        .iter()
        .filter(|s| s.field == Field::ExemptDelimiter)
    {
        let raw = s.text()?;
        // Trailing blanks after `;` are almost always accidental; a delimiter
        // that is only blanks (written `\ `) is kept as written.
        let trimmed = raw.trim();
        delimiter = if trimmed.is_empty() { raw } else { trimmed }.to_owned();
        if delimiter.is_empty() {
            return Err(s.fail("the delimiter must not be empty; the default is a comma"));
        }
    }
    for s in &settings {
        b = match &s.field {
            Field::Enabled => b.enabled(s.boolean()?),
            Field::Idle(unit) => b.set_idle(s.duration(*unit, 1)?),
            Field::Warning(unit) => b.set_warn(s.duration(*unit, 0)?),
            Field::ExemptUsers => b.exempt(s.list(&delimiter)?),
            Field::ExemptDelimiter => b,
            Field::Scope => b.scope(s.word(&[("user", Scope::User), ("session", Scope::Session)])?),
            Field::Group(name, unit) => {
                let t = s.duration(*unit, 1)?;
                b.group_from(name.clone(), t.value, t.origin)
            }
            Field::Absolute(unit) => b.set_absolute(s.duration(*unit, 1)?),
            Field::Remember(unit) => b.set_remember(s.duration(*unit, 1)?),
            Field::StoreUnavailable => b.store_unavailable(s.word(&[
                ("refuse", StoreUnavailable::Refuse),
                ("allow", StoreUnavailable::Allow),
            ])?),
            Field::PassivePaths => {
                let mut rules = b.current_passive().clone();
                for path in s.list(",")? {
                    if !path.starts_with('/') {
                        return Err(s.fail(format!(
                            "{path:?} is not a path: each passive path starts with /"
                        )));
                    }
                    rules = rules.with_path(path);
                }
                b.passive(rules)
            }
            Field::PassiveMethods => {
                let mut rules = b.current_passive().clone();
                for method in s.list(",")? {
                    if !method.bytes().all(|c| c.is_ascii_alphabetic()) {
                        return Err(s.fail(format!("{method:?} is not an HTTP method")));
                    }
                    rules = rules.with_method(method);
                }
                b.passive(rules)
            }
            Field::PassiveHeader => {
                let text = s.text()?.trim();
                let (name, value) = match text.split_once(':') {
                    Some((n, v)) => (n.trim(), Some(v.trim())),
                    None => (text, None),
                };
                if name.is_empty() || !name.bytes().all(is_token_byte) {
                    return Err(s.fail(
                        "expected a header name, optionally followed by `: value` \
                         (for example `x-passive` or `x-requested-by: poller`)",
                    ));
                }
                let rules = b.current_passive().clone().with_header(name, value);
                b.passive(rules)
            }
            Field::PassiveQuery => {
                let text = s.text()?.trim();
                let (name, value) = match text.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (text, None),
                };
                if name.is_empty() || name.contains('&') || value.is_some_and(|v| v.contains('&')) {
                    return Err(s.fail(
                        "expected a query parameter name, optionally followed by `=value` \
                         (for example `auto=true`)",
                    ));
                }
                let rules = b.current_passive().clone().with_query_flag(name, value);
                b.passive(rules)
            }
        };
    }
    Ok(b)
}

fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The same duration in minutes and in seconds is ambiguous: refuse it.
fn refuse_both_units(settings: &[Setting]) -> Result<(), ConfigError> {
    for (i, a) in settings.iter().enumerate() {
        for b in &settings[i + 1..] {
            let clash = match (&a.field, &b.field) {
                (Field::Idle(x), Field::Idle(y))
                | (Field::Warning(x), Field::Warning(y))
                | (Field::Absolute(x), Field::Absolute(y))
                | (Field::Remember(x), Field::Remember(y)) => x != y,
                (Field::Group(n, x), Field::Group(m, y)) => n == m && x != y,
                _ => false,
            };
            if clash {
                return Err(a.fail(format!(
                    "also given as {} = {:?}; keep only one of the two",
                    b.key(),
                    b.raw.to_string()
                )));
            }
        }
    }
    Ok(())
}

// The properties source of the builder lives here, with the rules it
// applies, so the builder does not depend back on this module.
impl PolicyBuilder {
    /// Applies the `timeout.session.*` keys of a properties text on top of
    /// what is set so far.
    pub fn properties(self, text: &str) -> Result<Self, ConfigError> {
        let entries = properties::parse(text)?;
        apply_properties(self, entries)
    }

    /// [`properties`](PolicyBuilder::properties) read from a file.
    pub fn properties_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.properties(&text)
    }
}

/// Applies the `timeout.session.*` entries of a properties text.
pub(crate) fn apply_properties(
    b: PolicyBuilder,
    entries: Vec<Entry>,
) -> Result<PolicyBuilder, ConfigError> {
    let mut settings = Vec::new();
    for entry in entries {
        if !entry.key.starts_with(PREFIX) {
            continue;
        }
        let Some(field) = field_of_properties_key(&entry.key) else {
            let hint = match suggest(&entry.key, &known_properties_keys()) {
                Some(near) => format!("did you mean {near}?"),
                None => format!("the known keys are {}", known_properties_keys().join(", ")),
            };
            return Err(ConfigError::invalid(
                entry.key,
                entry.value,
                format!("unknown setting (line {}); {hint}", entry.line),
            ));
        };
        settings.push(Setting {
            field,
            source: Source::Properties,
            raw: Raw::Str(entry.value),
        });
    }
    apply(b, settings)
}

/// The serde form of a policy: the properties keys without the
/// `timeout.session.` prefix, dots as underscores, groups as a map.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SerdeConfig {
    #[serde(default)]
    enabled: Option<Raw>,
    #[serde(default)]
    minutes: Option<Raw>,
    #[serde(default)]
    seconds: Option<Raw>,
    #[serde(default)]
    notification_minutes: Option<Raw>,
    #[serde(default)]
    notification_seconds: Option<Raw>,
    #[serde(default)]
    exception_usernames: Option<Raw>,
    #[serde(default)]
    exception_delimiter: Option<Raw>,
    #[serde(default)]
    scope: Option<Raw>,
    #[serde(default)]
    groups: Option<Raw>,
    #[serde(default)]
    absolute_minutes: Option<Raw>,
    #[serde(default)]
    absolute_seconds: Option<Raw>,
    #[serde(default)]
    passive_paths: Option<Raw>,
    #[serde(default)]
    passive_header: Option<Raw>,
    #[serde(default)]
    passive_query: Option<Raw>,
    #[serde(default)]
    passive_methods: Option<Raw>,
    #[serde(default)]
    remember_minutes: Option<Raw>,
    #[serde(default)]
    remember_seconds: Option<Raw>,
    #[serde(default)]
    store_unavailable: Option<Raw>,
}

impl SerdeConfig {
    pub(crate) fn into_builder(self) -> Result<PolicyBuilder, ConfigError> {
        use Unit::{Minutes, Seconds};
        let fields = [
            (Field::Enabled, self.enabled),
            (Field::Idle(Minutes), self.minutes),
            (Field::Idle(Seconds), self.seconds),
            (Field::Warning(Minutes), self.notification_minutes),
            (Field::Warning(Seconds), self.notification_seconds),
            (Field::ExemptDelimiter, self.exception_delimiter),
            (Field::ExemptUsers, self.exception_usernames),
            (Field::Scope, self.scope),
            (Field::Absolute(Minutes), self.absolute_minutes),
            (Field::Absolute(Seconds), self.absolute_seconds),
            (Field::PassivePaths, self.passive_paths),
            (Field::PassiveHeader, self.passive_header),
            (Field::PassiveQuery, self.passive_query),
            (Field::PassiveMethods, self.passive_methods),
            (Field::Remember(Minutes), self.remember_minutes),
            (Field::Remember(Seconds), self.remember_seconds),
            (Field::StoreUnavailable, self.store_unavailable),
        ];
        let mut settings: Vec<Setting> = fields
            .into_iter()
            .filter_map(|(field, raw)| {
                raw.map(|raw| Setting {
                    field,
                    source: Source::Serde,
                    raw,
                })
            })
            .collect();
        if let Some(groups) = self.groups {
            settings.extend(group_settings(groups)?);
        }
        apply(PolicyBuilder::default(), settings)
    }
}

/// `{"ops": {"minutes": 60}, "night": 720}`: a bare number is minutes.
fn group_settings(groups: Raw) -> Result<Vec<Setting>, ConfigError> {
    let Raw::Map(entries) = groups else {
        return Err(ConfigError::invalid(
            "groups",
            groups.to_string(),
            "expected a map from group name to {\"minutes\": N} or {\"seconds\": N}",
        ));
    };
    let mut out = Vec::new();
    for (name, value) in entries {
        if name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "groups",
                value.to_string(),
                "a group name must not be empty",
            ));
        }
        let name: Box<str> = name.into_boxed_str();
        match value {
            Raw::Map(units) => {
                for (unit, raw) in units {
                    let unit = match unit.as_str() {
                        "minutes" => Unit::Minutes,
                        "seconds" => Unit::Seconds,
                        other => {
                            return Err(ConfigError::invalid(
                                format!("groups.{name}.{other}"),
                                raw.to_string(),
                                "unknown setting; a group has `minutes` or `seconds`",
                            ));
                        }
                    };
                    out.push(Setting {
                        field: Field::Group(name.clone(), unit),
                        source: Source::Serde,
                        raw,
                    });
                }
            }
            raw => out.push(Setting {
                field: Field::Group(name, Unit::Minutes),
                source: Source::Serde,
                raw,
            }),
        }
    }
    Ok(out)
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean, a number, text, a list or a map")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Raw>()? {
            entries.push((k, v));
        }
        Ok(Raw::Map(entries))
    }
}
