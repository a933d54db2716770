//! Which requests count as user activity.
//!
//! Pollers, auto-refreshing dashboards and the notification socket must never
//! keep a session alive: that is the most common complaint against other
//! timeout implementations. [`PassiveRules`] classify a request from a
//! framework-free [`RequestView`] that each adapter implements for its own
//! request type.

use std::{fmt, sync::Arc};

/// Whether a request moves the deadline.
// Exhaustive on purpose: a request moves the deadline or it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// The user did something: the deadline moves to now + timeout.
    Activity,
    /// Polling, auto-refresh, notification subscription: checked at the gate
    /// but never moves the deadline.
    Passive,
}

/// The parts of an HTTP request the passive rules look at. Adapters
/// implement it for their request type.
///
/// ```
/// use timeout_core::passive::RequestView;
///
/// struct Req<'a> { path: &'a str, query: Option<&'a str> }
/// impl RequestView for Req<'_> {
///     fn method(&self) -> &str { "GET" }
///     fn path(&self) -> &str { self.path }
///     fn query(&self) -> Option<&str> { self.query }
///     fn header(&self, _name: &str) -> Option<&[u8]> { None }
/// }
/// ```
pub trait RequestView {
    /// The method, upper case (`"GET"`).
    fn method(&self) -> &str;
    /// The path, without the query string.
    fn path(&self) -> &str;
    /// The raw query string, without `?`.
    fn query(&self) -> Option<&str>;
    /// The first value of the header `name` (given lower case).
    fn header(&self, name: &str) -> Option<&[u8]>;
}

/// A predicate deciding that a request is passive.
pub type PassivePredicate = Arc<dyn Fn(&dyn RequestView) -> bool + Send + Sync>;

/// The rules that make a request passive; a request matching any of them is
/// passive, every other request is activity.
///
/// ```
/// use timeout_core::{RequestKind, passive::{PassiveRules, RequestView}};
///
/// let rules = PassiveRules::default()
///     .with_path("/api/poll")
///     .with_query_flag("auto", Some("true"));
/// # struct Req(&'static str, Option<&'static str>);
/// # impl RequestView for Req {
/// #     fn method(&self) -> &str { "GET" }
/// #     fn path(&self) -> &str { self.0 }
/// #     fn query(&self) -> Option<&str> { self.1 }
/// #     fn header(&self, _: &str) -> Option<&[u8]> { None }
/// # }
/// assert_eq!(rules.classify(&Req("/api/poll/jobs", None)), RequestKind::Passive);
/// assert_eq!(rules.classify(&Req("/api/polling", None)), RequestKind::Activity);
/// assert_eq!(rules.classify(&Req("/report", Some("x=1&auto=true"))), RequestKind::Passive);
/// assert_eq!(rules.classify(&Req("/report", Some("auto=false"))), RequestKind::Activity);
/// ```
#[derive(Clone, Default)]
pub struct PassiveRules {
    paths: Vec<Box<str>>,
    methods: Vec<Box<str>>,
    header: Option<HeaderRule>,
    query: Option<QueryRule>,
    predicate: Option<PassivePredicate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HeaderRule {
    name: Box<str>,
    value: Option<Box<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct QueryRule {
    name: Box<str>,
    value: Option<Box<str>>,
}

impl PassiveRules {
    /// Requests whose path is `prefix` or lies below it (`/poll` matches
    /// `/poll` and `/poll/jobs`, not `/polling`). A missing leading `/` is
    /// added; `/` alone makes every request passive.
    #[must_use]
    pub fn with_path(mut self, prefix: impl Into<String>) -> Self {
        let mut prefix: String = prefix.into();
        if !prefix.starts_with('/') {
            prefix.insert(0, '/');
        }
        while prefix.len() > 1 && prefix.ends_with('/') {
            prefix.pop();
        }
        self.paths.push(prefix.into_boxed_str());
        self
    }

    /// Requests with this method (`OPTIONS` for CORS preflights, say).
    #[must_use]
    pub fn with_method(mut self, method: impl Into<String>) -> Self {
        self.methods
            .push(method.into().to_ascii_uppercase().into_boxed_str());
        self
    }

    /// Requests carrying the header `name`, or only those where it equals
    /// `value` (compared without regard to ASCII case).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.header = Some(HeaderRule {
            name: name.into().to_ascii_lowercase().into_boxed_str(),
            value: value.map(Into::into),
        });
        self
    }

    /// Requests whose query has the parameter `name`, or only those where it
    /// equals `value` (`auto=true`, as pollers often add).
    #[must_use]
    pub fn with_query_flag(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.query = Some(QueryRule {
            name: name.into().into_boxed_str(),
            value: value.map(Into::into),
        });
        self
    }

    /// Requests for which `predicate` returns true.
    #[must_use]
    pub fn with_predicate(
        mut self,
        predicate: impl Fn(&dyn RequestView) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Whether `request` is activity or passive.
    pub fn classify(&self, request: &dyn RequestView) -> RequestKind {
        if self.is_passive(request) {
            RequestKind::Passive
        } else {
            RequestKind::Activity
        }
    }

    /// True when no rule is set: every request is activity.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
            && self.methods.is_empty()
            && self.header.is_none()
            && self.query.is_none()
            && self.predicate.is_none()
    }

    fn is_passive(&self, request: &dyn RequestView) -> bool {
        if !self.paths.is_empty() {
            let path = request.path();
            if self.paths.iter().any(|p| path_under(path, p)) {
                return true;
            }
        }
        if !self.methods.is_empty() {
            let method = request.method();
            if self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                return true;
            }
        }
        if let Some(rule) = &self.header
            && let Some(value) = request.header(&rule.name)
        {
            match &rule.value {
                None => return true,
                Some(want) if value.trim_ascii().eq_ignore_ascii_case(want.as_bytes()) => {
                    return true;
                }
                Some(_) => {}
            }
        }
        if let Some(rule) = &self.query
            && let Some(query) = request.query()
            && query_has(query, rule)
        {
            return true;
        }
        if let Some(predicate) = &self.predicate
            && predicate(request)
        {
            return true;
        }
        false
    }

    pub(crate) fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.paths.is_empty() {
            out.push(format!("paths {}", self.paths.join(", ")));
        }
        if !self.methods.is_empty() {
            out.push(format!("methods {}", self.methods.join(", ")));
        }
        if let Some(h) = &self.header {
            out.push(match &h.value {
                Some(v) => format!("header {}: {v}", h.name),
                None => format!("header {}", h.name),
            });
        }
        if let Some(q) = &self.query {
            out.push(match &q.value {
                Some(v) => format!("query {}={v}", q.name),
                None => format!("query {}", q.name),
            });
        }
        if self.predicate.is_some() {
            out.push("a predicate".to_owned());
        }
        out
    }
}

impl fmt::Debug for PassiveRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassiveRules")
            .field("paths", &self.paths)
            .field("methods", &self.methods)
            .field("header", &self.header)
            .field("query", &self.query)
            .field("predicate", &self.predicate.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

fn path_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn query_has(query: &str, rule: &QueryRule) -> bool {
    query.split('&').any(|pair| {
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        name == &*rule.name
            && match &rule.value {
                None => true,
                Some(want) => value.is_some_and(|v| v.eq_ignore_ascii_case(want)),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Req {
        method: &'static str,
        path: &'static str,
        query: Option<&'static str>,
        headers: Vec<(&'static str, &'static [u8])>,
    }

    impl Req {
        fn get(path: &'static str) -> Self {
            Req {
                method: "GET",
                path,
                query: None,
                headers: vec![],
            }
        }
    }

    impl RequestView for Req {
        fn method(&self) -> &str {
            self.method
        }
        fn path(&self) -> &str {
            self.path
        }
        fn query(&self) -> Option<&str> {
            self.query
        }
        fn header(&self, name: &str) -> Option<&[u8]> {
            self.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
        }
    }

    #[test]
    fn no_rules_means_everything_is_activity() {
        let rules = PassiveRules::default();
        assert!(rules.is_empty());
        assert_eq!(rules.classify(&Req::get("/x")), RequestKind::Activity);
    }

    #[test]
    fn path_prefixes_match_whole_segments() {
        let rules = PassiveRules::default().with_path("/api/poll/");
        assert_eq!(rules.classify(&Req::get("/api/poll")), RequestKind::Passive);
        assert_eq!(
            rules.classify(&Req::get("/api/poll/x/y")),
            RequestKind::Passive
        );
        assert_eq!(
            rules.classify(&Req::get("/api/pollution")),
            RequestKind::Activity
        );
        assert_eq!(rules.classify(&Req::get("/api")), RequestKind::Activity);
        let root = PassiveRules::default().with_path("/");
        assert_eq!(root.classify(&Req::get("/any")), RequestKind::Passive);
    }

    #[test]
    fn header_presence_or_value() {
        let presence = PassiveRules::default().with_header("X-Passive", None);
        let mut req = Req::get("/x");
        assert_eq!(presence.classify(&req), RequestKind::Activity);
        req.headers.push(("x-passive", b"1"));
        assert_eq!(presence.classify(&req), RequestKind::Passive);

        let valued = PassiveRules::default().with_header("x-requested-by", Some("Poller"));
        let mut req = Req::get("/x");
        req.headers.push(("x-requested-by", b" poller "));
        assert_eq!(valued.classify(&req), RequestKind::Passive);
        let mut other = Req::get("/x");
        other.headers.push(("x-requested-by", b"user"));
        assert_eq!(valued.classify(&other), RequestKind::Activity);
    }

    #[test]
    fn query_flags() {
        let rules = PassiveRules::default().with_query_flag("auto", Some("true"));
        let mut req = Req::get("/x");
        for (query, expected) in [
            ("auto=true", RequestKind::Passive),
            ("a=1&auto=TRUE", RequestKind::Passive),
            ("auto=false", RequestKind::Activity),
            ("auto", RequestKind::Activity),
            ("autox=true", RequestKind::Activity),
        ] {
            req.query = Some(query);
            assert_eq!(rules.classify(&req), expected, "query {query}");
        }
        let presence = PassiveRules::default().with_query_flag("refresh", None);
        req.query = Some("refresh");
        assert_eq!(presence.classify(&req), RequestKind::Passive);
    }

    #[test]
    fn methods_and_predicates() {
        let rules = PassiveRules::default()
            .with_method("options")
            .with_predicate(|r| r.path().ends_with(".png"));
        let mut req = Req::get("/logo.png");
        assert_eq!(rules.classify(&req), RequestKind::Passive);
        req.path = "/x";
        assert_eq!(rules.classify(&req), RequestKind::Activity);
        req.method = "OPTIONS";
        assert_eq!(rules.classify(&req), RequestKind::Passive);
    }
}
