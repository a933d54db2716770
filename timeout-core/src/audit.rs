//! The audit trail: one `tracing` record per timeout, reset and explicit
//! logout, on the target `timeout::audit`.
//!
//! User names and session ids come from outside; they are written escaped
//! and quoted so a name such as `"bob\nINFO admin logged in"` cannot forge a
//! log line, a field, or reorder text with bidirectional controls.

use std::fmt::{self, Write};

use crate::{Cause, Expired, FrameworkExpiry, StateLost, Subject, subject::redacted};

/// The `tracing` target of audit records.
pub const AUDIT_TARGET: &str = "timeout::audit";

/// A string shown quoted, with quotes, backslashes and every control,
/// separator or bidirectional-format character escaped.
///
/// ```
/// use timeout_core::audit::Escaped;
///
/// assert_eq!(Escaped("bob\nINFO forged").to_string(), r#""bob\nINFO forged""#);
/// assert_eq!(Escaped("say \"hi\"").to_string(), r#""say \"hi\"""#);
/// assert_eq!(Escaped("a\u{202e}b").to_string(), r#""a\u{202e}b""#);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if needs_escape(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{200e}' | '\u{200f}' // direction marks
                | '\u{202a}'..='\u{202e}' // embeddings and overrides
                | '\u{2066}'..='\u{2069}' // isolates
                | '\u{feff}' // zero-width no-break space
        )
}

pub(crate) fn timed_out(expired: &Expired) {
    let sessions = SessionList(&expired.sessions);
    tracing::info!(
        target: AUDIT_TARGET,
        event = "timeout",
        user = %Escaped(&expired.user),
        sessions = %sessions,
        cause = ?expired.cause,
        deadline_ms = expired.deadline.as_millis(),
        "{}",
        match expired.cause {
            Cause::StateLost => "logged out: the timeout store lost the session's state",
            Cause::SignedOut => "logged out: an operator signed the user out everywhere",
            _ => "logged out after the idle timeout",
        }
    );
}

/// The counterpart of the product's "Application Server Session Inactivity
/// Timeout - Time since server session expired: [89000ms]".
pub(crate) fn framework_session_expired(expiry: &FrameworkExpiry) {
    tracing::info!(
        target: AUDIT_TARGET,
        event = "framework_session_expired",
        framework = expiry.framework,
        user = %Escaped(&expiry.user),
        session = %Escaped(&redacted(&expiry.session)),
        since_ms = u64::try_from(expiry.since.as_millis()).unwrap_or(u64::MAX),
        "the framework session expired before the idle timeout; time since it expired: {} ms",
        expiry.since.as_millis()
    );
}

pub(crate) fn state_lost(lost: &StateLost) {
    tracing::error!(
        target: AUDIT_TARGET,
        event = "state_lost",
        at_ms = lost.at.as_millis(),
        store = %Escaped(&lost.what),
        "the timeout store lost its state: sessions it held are logged out as they are \
         seen; reconcile what no replica knew"
    );
}

/// A hook that kept failing for a logout: what it should have freed may
/// still be held, so the record says which run to redo by hand.
pub(crate) fn hook_dead(expired: &Expired, hook: &str, attempts: u32, failure: &str) {
    tracing::error!(
        target: AUDIT_TARGET,
        event = "hook_dead",
        user = %Escaped(&expired.user),
        hook = %Escaped(hook),
        run = %Escaped(&expired.run_id()),
        attempts,
        "timeout hook gave up ({failure}); what it frees may still be held"
    );
}

pub(crate) fn reset(subject: &Subject) {
    tracing::info!(
        target: AUDIT_TARGET,
        event = "reset",
        user = %Escaped(subject.user()),
        session = %Escaped(&redacted(subject.session())),
        "idle timer reset"
    );
}

pub(crate) fn logged_out(subject: &Subject) {
    tracing::info!(
        target: AUDIT_TARGET,
        event = "logout",
        user = %Escaped(subject.user()),
        session = %Escaped(&redacted(subject.session())),
        "explicit logout: tracking stopped"
    );
}

/// Session ids are bearer secrets: the audit log gets their first
/// characters only, enough to correlate.
struct SessionList<'a>(&'a [String]);

impl fmt::Display for SessionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", Escaped(&redacted(s)))?;
        }
        f.write_char(']')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_breaking_or_reordering_character_is_escaped() {
        let nasty = "a\r\nb\u{0085}c\u{2028}d\u{1b}[31me\u{2067}f\u{0}";
        let shown = Escaped(nasty).to_string();
        assert!(
            !shown.chars().any(needs_escape),
            "unescaped control left in {shown:?}"
        );
        assert_eq!(
            shown,
            r#""a\r\nb\u{85}c\u{2028}d\u{1b}[31me\u{2067}f\u{0}""#
        );
    }

    #[test]
    fn plain_names_are_only_quoted() {
        assert_eq!(Escaped("alice").to_string(), "\"alice\"");
        assert_eq!(Escaped("zoë").to_string(), "\"zoë\"");
    }
}
