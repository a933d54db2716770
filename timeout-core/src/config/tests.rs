use std::time::Duration;

use super::*;
use crate::{RequestKind, RequestView};

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn err_of(text: &str) -> String {
    Policy::from_properties(text).unwrap_err().to_string()
}

struct Get(&'static str, Option<&'static str>);

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path(&self) -> &str {
        self.0
    }
    fn query(&self) -> Option<&str> {
        self.1
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        (name == "x-poll").then_some(b"1".as_slice())
    }
}

#[test]
fn documented_defaults() {
    let p = Policy::from_properties("").unwrap();
    assert!(!p.enabled());
    assert_eq!(p.idle_timeout(), mins(480));
    assert_eq!(p.warn_before(), mins(1));
    assert_eq!(p.exempt_users().count(), 0);
    assert_eq!(p.scope(), Scope::User);
    assert_eq!(p.absolute_lifetime(), None);
    assert_eq!(p.store_unavailable(), StoreUnavailable::Refuse);
    let d = Policy::default();
    assert_eq!(
        (d.enabled(), d.idle_timeout(), d.warn_before()),
        (false, mins(480), mins(1))
    );
}

#[test]
fn every_documented_key() {
    let p = Policy::from_properties(
        "# analytics server\n\
         timeout.session.enabled = true\n\
         timeout.session.minutes = 30\n\
         timeout.session.notification.minutes = 2\n\
         timeout.session.exception.delimiter = ;\n\
         timeout.session.exception.usernames =  admin ; monitor;;  svc-backup \n",
    )
    .unwrap();
    assert!(p.enabled());
    assert_eq!(p.idle_timeout(), mins(30));
    assert_eq!(p.warn_before(), mins(2));
    let mut exempt: Vec<_> = p.exempt_users().collect();
    exempt.sort_unstable();
    assert_eq!(exempt, ["admin", "monitor", "svc-backup"]);
    assert!(p.is_exempt("monitor"));
    assert!(!p.is_exempt(" monitor"));
    assert!(!p.is_exempt(""));
}

#[test]
fn extension_keys() {
    let p = Policy::from_properties(
        "timeout.session.enabled=true\n\
         timeout.session.seconds=5\n\
         timeout.session.notification.seconds=3\n\
         timeout.session.scope=Session\n\
         timeout.session.group.ops.minutes=60\n\
         timeout.session.group.eu.night.seconds=90\n\
         timeout.session.absolute.minutes=720\n\
         timeout.session.passive.paths=/api/poll, /events/\n\
         timeout.session.passive.header=x-poll\n\
         timeout.session.passive.query=auto=true\n\
         timeout.session.passive.methods=options,head\n\
         timeout.session.remember.minutes=10\n\
         timeout.session.store.unavailable=allow\n\
         unrelated.key=whatever\n",
    )
    .unwrap();
    assert_eq!(p.idle_timeout(), Duration::from_secs(5));
    assert_eq!(p.warn_before(), Duration::from_secs(3));
    assert_eq!(p.scope(), Scope::Session);
    assert_eq!(p.timeout_for(["ops"]), mins(60));
    assert_eq!(p.timeout_for(["eu.night"]), Duration::from_secs(90));
    assert_eq!(p.absolute_lifetime(), Some(mins(720)));
    assert_eq!(p.remember_timed_out(), mins(10));
    assert_eq!(p.store_unavailable(), StoreUnavailable::Allow);
    let passive = p.passive();
    assert_eq!(
        passive.classify(&Get("/events/x", None)),
        RequestKind::Passive
    );
    assert_eq!(
        passive.classify(&Get("/report", Some("auto=true"))),
        RequestKind::Passive
    );
    assert_eq!(
        passive.classify(&Get("/report", None)),
        RequestKind::Passive,
        "the x-poll header is present in Get"
    );
}

#[test]
fn group_resolution_takes_the_largest_even_below_the_global() {
    let p = Policy::builder()
        .enabled(true)
        .idle_timeout(mins(480))
        .group("short", mins(10))
        .group("medium", mins(60))
        .build()
        .unwrap();
    assert_eq!(p.timeout_for(["short"]), mins(10));
    assert_eq!(p.timeout_for(["short", "medium"]), mins(60));
    assert_eq!(p.timeout_for(["unknown"]), mins(480));
    assert_eq!(p.timeout_for(["unknown", "short"]), mins(10));
    assert_eq!(p.timeout_for(std::iter::empty()), mins(480));
    assert_eq!(p.longest_timeout(), mins(480));
}

#[test]
fn non_numbers_zero_and_negative_are_refused_with_key_and_value() {
    assert_eq!(
        err_of("timeout.session.minutes=abc"),
        "timeout.session.minutes = \"abc\": expected a whole number of minutes, at least 1 (for example 480)"
    );
    assert!(err_of("timeout.session.minutes=0").starts_with("timeout.session.minutes = \"0\""));
    assert!(err_of("timeout.session.minutes=-5").starts_with("timeout.session.minutes = \"-5\""));
    assert!(err_of("timeout.session.minutes=1.5").contains("whole number"));
    assert!(
        err_of("timeout.session.notification.minutes=-1")
            .starts_with("timeout.session.notification.minutes = \"-1\": expected a whole number of minutes, at least 0")
    );
    assert!(
        err_of("timeout.session.group.ops.minutes=0")
            .starts_with("timeout.session.group.ops.minutes = \"0\"")
    );
    assert!(err_of("timeout.session.minutes=99999999999999999999999").contains("too large"));
}

#[test]
fn warning_must_come_before_every_timeout() {
    let e = err_of("timeout.session.minutes=5\ntimeout.session.notification.minutes=5");
    assert_eq!(
        e,
        "timeout.session.notification.minutes = \"5\": the warning must come before the timeout, \
         but the idle timeout is timeout.session.minutes = \"5\"; lower the warning, or set it to 0 to send none"
    );
    // The default warning (1 min) against a 30 s timeout names the default.
    let e = err_of("timeout.session.seconds=30");
    assert!(
        e.starts_with("timeout.session.notification.minutes = \"1 min (the default)\""),
        "{e}"
    );
    let e = err_of("timeout.session.group.kiosk.seconds=45");
    assert!(
        e.contains("timeout.session.group.kiosk.seconds = \"45\""),
        "{e}"
    );
    // Zero disables the warning, so any timeout is fine.
    assert!(
        Policy::from_properties(
            "timeout.session.seconds=1\ntimeout.session.notification.minutes=0"
        )
        .is_ok()
    );
}

#[test]
fn unknown_scope_booleans_and_delimiters() {
    assert_eq!(
        err_of("timeout.session.scope=tenant"),
        "timeout.session.scope = \"tenant\": expected one of: user, session"
    );
    assert_eq!(
        err_of("timeout.session.enabled=yes"),
        "timeout.session.enabled = \"yes\": expected true or false"
    );
    assert!(err_of("timeout.session.exception.delimiter=").starts_with(
        "timeout.session.exception.delimiter = \"\": the delimiter must not be empty"
    ));
    // A delimiter of one blank, written escaped, is kept.
    let p = Policy::from_properties(
        "timeout.session.exception.delimiter=\\ \ntimeout.session.exception.usernames=a b  c",
    )
    .unwrap();
    let mut users: Vec<_> = p.exempt_users().collect();
    users.sort_unstable();
    assert_eq!(users, ["a", "b", "c"]);
}

#[test]
fn unknown_keys_under_the_prefix_are_refused_with_a_hint() {
    let e = err_of("timeout.session.minuts=30");
    assert_eq!(
        e,
        "timeout.session.minuts = \"30\": unknown setting (line 1); did you mean timeout.session.minutes?"
    );
    let e = err_of("\ntimeout.session.frobnicate.everything=1");
    assert!(
        e.contains("(line 2)") && e.contains("the known keys are"),
        "{e}"
    );
}

#[test]
fn minutes_and_seconds_of_one_setting_conflict() {
    let e = err_of("timeout.session.minutes=5\ntimeout.session.seconds=5");
    assert!(
        e.contains("also given as timeout.session.seconds = \"5\"; keep only one"),
        "{e}"
    );
}

#[test]
fn bad_passive_settings() {
    assert!(err_of("timeout.session.passive.paths=api/poll").contains("starts with /"));
    assert!(err_of("timeout.session.passive.header=bad header").contains("header name"));
    assert!(err_of("timeout.session.passive.query=a=1&b=2").contains("query parameter"));
    assert!(err_of("timeout.session.passive.methods=GE T").contains("not an HTTP method"));
}

#[test]
fn a_later_duplicate_wins_as_in_java() {
    let p =
        Policy::from_properties("timeout.session.minutes=5\ntimeout.session.minutes=7").unwrap();
    assert_eq!(p.idle_timeout(), mins(7));
}

#[test]
fn serde_mirrors_the_properties() {
    let p: Policy = serde_json::from_str(
        r#"{
            "enabled": true,
            "seconds": 5,
            "notification_seconds": 2,
            "exception_usernames": ["admin", " svc "],
            "scope": "session",
            "groups": {"ops": {"minutes": 60}, "night": 720},
            "passive_paths": ["/poll"],
            "store_unavailable": "allow"
        }"#,
    )
    .unwrap();
    assert!(p.enabled());
    assert_eq!(p.idle_timeout(), Duration::from_secs(5));
    assert_eq!(p.warn_before(), Duration::from_secs(2));
    assert!(p.is_exempt("svc"));
    assert_eq!(p.scope(), Scope::Session);
    assert_eq!(p.timeout_for(["ops", "night"]), mins(720));
    assert_eq!(p.store_unavailable(), StoreUnavailable::Allow);

    // Strings work too (environment-variable style sources), with the
    // delimiter rule of the properties.
    let p: Policy = serde_json::from_str(
        r#"{"enabled": "true", "minutes": "30", "exception_delimiter": "|", "exception_usernames": "a|b"}"#,
    )
    .unwrap();
    assert!(p.is_exempt("b"));
}

#[test]
fn serde_errors_name_the_field() {
    let e = serde_json::from_str::<Policy>(r#"{"minutes": 0}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("minutes = \"0\": expected a whole number"),
        "{e}"
    );
    let e = serde_json::from_str::<Policy>(r#"{"minutes": 5, "notification_minutes": 9}"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("notification_minutes = \"9\""), "{e}");
    let e = serde_json::from_str::<Policy>(r#"{"groups": {"ops": {"hours": 1}}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("groups.ops.hours"), "{e}");
    let e = serde_json::from_str::<Policy>(r#"{"minuts": 5}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `minuts`"), "{e}");
    let e = serde_json::from_str::<Policy>(r#"{"exception_usernames": [1, 2]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("exception_usernames"), "{e}");
}

#[test]
fn builder_errors_name_the_method() {
    let e = Policy::builder()
        .idle_timeout(Duration::ZERO)
        .build()
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "idle_timeout = \"0ns\": the idle timeout must be at least 1 millisecond"
    );
    let e = Policy::builder()
        .idle_timeout(Duration::from_secs(10))
        .warn_before(Duration::from_secs(3))
        .group("kiosk", Duration::from_secs(2))
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("warn_before = \"3s\""), "{e}");
    assert!(e.contains("group(\"kiosk\") = \"2s\""), "{e}");
}

#[test]
fn builder_overlays_properties() {
    let p = Policy::builder()
        .properties("timeout.session.enabled=true\ntimeout.session.minutes=30")
        .unwrap()
        .idle_timeout(Duration::from_secs(10))
        .warn_before(Duration::from_secs(3))
        .build()
        .unwrap();
    assert!(p.enabled());
    assert_eq!(p.idle_timeout(), Duration::from_secs(10));
}

#[test]
fn properties_file_errors_name_the_file() {
    let e = Policy::from_properties_file("/nonexistent/timeout.properties")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read the properties file /nonexistent/timeout.properties"),
        "{e}"
    );
}

#[test]
fn display_summarises_the_effective_policy() {
    let p = Policy::from_properties(
        "timeout.session.enabled=true\ntimeout.session.seconds=5\n\
         timeout.session.notification.seconds=3\ntimeout.session.group.ops.minutes=60\n\
         timeout.session.exception.usernames=monitor\ntimeout.session.passive.paths=/poll",
    )
    .unwrap();
    assert_eq!(
        p.to_string(),
        "idle timeout 5 s (groups: ops 60 min), warning 3 s before, per user, exempt: monitor, \
         passive: paths /poll, store unavailable: refuse"
    );
    assert_eq!(
        Policy::default().to_string(),
        "idle timeout disabled (timeout.session.enabled=false)"
    );
}
