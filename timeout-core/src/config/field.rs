//! The names of every setting in each configuration source, so an error
//! always names the key exactly as the user wrote it.

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Properties,
    Serde,
    Builder,
}

/// The unit of a duration setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Minutes,
    Seconds,
}

impl Unit {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Unit::Minutes => "minutes",
            Unit::Seconds => "seconds",
        }
    }
}

/// One setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Enabled,
    Idle(Unit),
    Warning(Unit),
    ExemptUsers,
    ExemptDelimiter,
    Scope,
    Group(Box<str>, Unit),
    Absolute(Unit),
    PassivePaths,
    PassiveHeader,
    PassiveQuery,
    PassiveMethods,
    Remember(Unit),
    StoreUnavailable,
}

pub(crate) const PREFIX: &str = "timeout.session.";

impl Field {
    /// The key naming this setting in `source`.
    pub(crate) fn key(&self, source: Source) -> String {
        match source {
            Source::Properties => format!("{PREFIX}{}", self.properties_suffix()),
            Source::Serde => self.serde_key(),
            Source::Builder => self.builder_name(),
        }
    }

    fn properties_suffix(&self) -> String {
        match self {
            Field::Enabled => "enabled".into(),
            Field::Idle(u) => u.word().into(),
            Field::Warning(u) => format!("notification.{}", u.word()),
            Field::ExemptUsers => "exception.usernames".into(),
            Field::ExemptDelimiter => "exception.delimiter".into(),
            Field::Scope => "scope".into(),
            Field::Group(name, u) => format!("group.{name}.{}", u.word()),
            Field::Absolute(u) => format!("absolute.{}", u.word()),
            Field::PassivePaths => "passive.paths".into(),
            Field::PassiveHeader => "passive.header".into(),
            Field::PassiveQuery => "passive.query".into(),
            Field::PassiveMethods => "passive.methods".into(),
            Field::Remember(u) => format!("remember.{}", u.word()),
            Field::StoreUnavailable => "store.unavailable".into(),
        }
    }

    fn serde_key(&self) -> String {
        match self {
            Field::Group(name, u) => format!("groups.{name}.{}", u.word()),
            other => other.properties_suffix().replace('.', "_"),
        }
    }

    fn builder_name(&self) -> String {
        match self {
            Field::Enabled => "enabled".into(),
            Field::Idle(_) => "idle_timeout".into(),
            Field::Warning(_) => "warn_before".into(),
            Field::ExemptUsers => "exempt".into(),
            Field::ExemptDelimiter => "exempt_delimiter".into(),
            Field::Scope => "scope".into(),
            Field::Group(name, _) => format!("group({name:?})"),
            Field::Absolute(_) => "absolute_lifetime".into(),
            Field::PassivePaths => "passive.with_path".into(),
            Field::PassiveHeader => "passive.with_header".into(),
            Field::PassiveQuery => "passive.with_query_flag".into(),
            Field::PassiveMethods => "passive.with_method".into(),
            Field::Remember(_) => "remember_timed_out".into(),
            Field::StoreUnavailable => "store_unavailable".into(),
        }
    }
}

/// Every properties key a user may write (groups as a pattern), for the
/// "did you mean" hint on an unknown key.
pub(crate) fn known_properties_keys() -> Vec<String> {
    use Unit::*;
    let fields = [
        Field::Enabled,
        Field::Idle(Minutes),
        Field::Idle(Seconds),
        Field::Warning(Minutes),
        Field::Warning(Seconds),
        Field::ExemptUsers,
        Field::ExemptDelimiter,
        Field::Scope,
        Field::Group("<name>".into(), Minutes),
        Field::Group("<name>".into(), Seconds),
        Field::Absolute(Minutes),
        Field::Absolute(Seconds),
        Field::PassivePaths,
        Field::PassiveHeader,
        Field::PassiveQuery,
        Field::PassiveMethods,
        Field::Remember(Minutes),
        Field::Remember(Seconds),
        Field::StoreUnavailable,
    ];
    fields.iter().map(|f| f.key(Source::Properties)).collect()
}

/// The field named by a properties key, if any.
pub(crate) fn field_of_properties_key(key: &str) -> Option<Field> {
    use Unit::*;
    let rest = key.strip_prefix(PREFIX)?;
    let unit = |w: &str| match w {
        "minutes" => Some(Minutes),
        "seconds" => Some(Seconds),
        _ => None,
    };
    let field = match rest {
        "enabled" => Field::Enabled,
        "minutes" => Field::Idle(Minutes),
        "seconds" => Field::Idle(Seconds),
        "notification.minutes" => Field::Warning(Minutes),
        "notification.seconds" => Field::Warning(Seconds),
        "exception.usernames" => Field::ExemptUsers,
        "exception.delimiter" => Field::ExemptDelimiter,
        "scope" => Field::Scope,
        "absolute.minutes" => Field::Absolute(Minutes),
        "absolute.seconds" => Field::Absolute(Seconds),
        "passive.paths" => Field::PassivePaths,
        "passive.header" => Field::PassiveHeader,
        "passive.query" => Field::PassiveQuery,
        "passive.methods" => Field::PassiveMethods,
        "remember.minutes" => Field::Remember(Minutes),
        "remember.seconds" => Field::Remember(Seconds),
        "store.unavailable" => Field::StoreUnavailable,
        other => {
            let group = other.strip_prefix("group.")?;
            let (name, word) = group.rsplit_once('.')?;
            if name.is_empty() {
                return None;
            }
            Field::Group(name.into(), unit(word)?)
        }
    };
    Some(field)
}

/// The known key closest to `key`, if it is close enough to be a typo.
pub(crate) fn suggest(key: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 6))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_key_maps_back_to_its_field() {
        for key in known_properties_keys() {
            let field = field_of_properties_key(&key).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(field.key(Source::Properties), key);
        }
    }

    #[test]
    fn group_names_may_contain_dots() {
        assert_eq!(
            field_of_properties_key("timeout.session.group.eu.ops.minutes"),
            Some(Field::Group("eu.ops".into(), Unit::Minutes))
        );
        assert_eq!(
            field_of_properties_key("timeout.session.group..minutes"),
            None
        );
        assert_eq!(
            field_of_properties_key("timeout.session.group.ops.hours"),
            None
        );
    }

    #[test]
    fn suggests_near_keys_only() {
        let known = known_properties_keys();
        assert_eq!(
            suggest("timeout.session.minuts", &known).as_deref(),
            Some("timeout.session.minutes")
        );
        assert_eq!(suggest("timeout.session.zzzzzzzzzzzzzzzz", &known), None);
    }

    #[test]
    fn serde_and_builder_names() {
        assert_eq!(
            Field::Warning(Unit::Minutes).key(Source::Serde),
            "notification_minutes"
        );
        assert_eq!(
            Field::Group("ops".into(), Unit::Seconds).key(Source::Serde),
            "groups.ops.seconds"
        );
        assert_eq!(
            Field::Idle(Unit::Minutes).key(Source::Builder),
            "idle_timeout"
        );
    }
}
