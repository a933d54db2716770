//! The audit log: one record per timeout, reset and explicit logout, on
//! target `timeout::audit`, with names that cannot forge log lines.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use timeout_core::{Policy, RequestKind, Subject, Timestamp, Tracker, clock::ManualClock};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Everything logged (spans' closes included) at `level` or above while
/// `run` runs on a current-thread runtime with time.
fn logs_of<F: std::future::Future<Output = ()>>(
    level: tracing::Level,
    run: impl FnOnce() -> F,
) -> String {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_target(true)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_max_level(level)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(run());
    });
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

/// A tracker with a 60 s timeout and a 10 s warning, on `clock`.
fn tracker_on(clock: &ManualClock) -> Tracker {
    let policy = Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::from_secs(10))
        .build()
        .unwrap();
    Tracker::builder(policy).clock(clock.clone()).build()
}

#[test]
fn audit_records_are_one_line_each_and_escape_names() {
    let forger =
        "mallory\n2026-01-01T00:00:00Z  INFO timeout::audit: event=\"timeout\" user=\"admin\"";
    let text = logs_of(tracing::Level::INFO, || async {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let tracker = tracker_on(&clock);
        let mallory = Subject::new("0123456789abcdef", forger).unwrap();
        let bob = Subject::new("s-bob", "bob").unwrap();
        tracker.check(Some(&mallory), RequestKind::Activity).await;
        tracker.check(Some(&bob), RequestKind::Activity).await;
        tracker.reset(Some(&bob)).await;
        tracker.logout(&bob).await.unwrap();
        clock.advance(Duration::from_secs(61));
        tracker.sweep().await.unwrap();
    });
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("timeout::audit"))
        .collect();
    assert_eq!(audit.len(), 3, "reset, logout, timeout:\n{text}");
    assert!(audit[0].contains("event=\"reset\"") && audit[0].contains("user=\"bob\""));
    assert!(audit[1].contains("event=\"logout\""));
    let timeout = audit[2];
    assert!(timeout.contains("event=\"timeout\""), "{timeout}");
    assert!(
        timeout.contains(r#"user="mallory\n2026-01-01T00:00:00Z  INFO timeout::audit: event=\"timeout\" user=\"admin\"""#),
        "the name is escaped in place: {timeout}"
    );
    assert!(
        !text.contains("0123456789abcdef"),
        "session ids are not logged whole"
    );
    assert!(timeout.contains(r#"sessions=["0123…"]"#), "{timeout}");
    // No line starts with the forged prefix.
    assert!(!text.lines().any(|l| l.starts_with("2026-01-01")), "{text}");
}

#[test]
fn a_framework_session_that_expired_first_gets_one_record_with_the_time_since() {
    let text = logs_of(tracing::Level::INFO, || async {
        let tracker = Tracker::new(Policy::builder().enabled(true).build().unwrap());
        let ledger = timeout_core::framework::FrameworkSessions::new("tower-sessions");
        let now = std::time::SystemTime::now();
        ledger.saved(
            "0123456789abcdef",
            "eve\nforged",
            now - Duration::from_millis(89_000),
        );
        ledger.reap(&tracker, now).await;
        ledger.reap(&tracker, now).await;
    });
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("timeout::audit"))
        .collect();
    assert_eq!(audit.len(), 1, "one record for one expiry:\n{text}");
    let record = audit[0];
    for part in [
        "event=\"framework_session_expired\"",
        "framework=\"tower-sessions\"",
        "user=\"eve\\nforged\"",
        "since_ms=89000",
        "time since it expired: 89000 ms",
    ] {
        assert!(record.contains(part), "{part} missing in {record}");
    }
    assert!(
        !record.contains("0123456789abcdef"),
        "the whole session id is logged: {record}"
    );
}

/// An operator follows a sweep in the logs: a `sweep` span (DEBUG, target
/// `timeout`) with its totals, under which its audit records nest.
#[test]
fn a_sweep_has_a_span_with_its_totals() {
    let text = logs_of(tracing::Level::DEBUG, || async {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let tracker = tracker_on(&clock);
        let bob = Subject::new("s-bob-1", "bob").unwrap();
        tracker.check(Some(&bob), RequestKind::Activity).await;
        clock.advance(Duration::from_secs(61));
        tracker.sweep().await.unwrap();
    });
    assert!(
        text.lines()
            .any(|l| l.contains("sweep{") && l.contains("logouts=1") && l.contains("close")),
        "no sweep span closed with its logout:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" sweep: timeout::audit") && l.contains("user=\"bob\"")),
        "the timeout's audit record is not inside the sweep's span:\n{text}"
    );
}

/// An operator follows one user's timeout at the gate: the logout's audit
/// record (and its hooks' logs) sit inside a `decision` span naming the user.
#[test]
fn a_logout_at_the_gate_is_logged_inside_a_decision_span_of_its_user() {
    let text = logs_of(tracing::Level::DEBUG, || async {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let tracker = tracker_on(&clock);
        let carol = Subject::new("s-carol-1", "carol").unwrap();
        tracker.check(Some(&carol), RequestKind::Activity).await;
        clock.advance(Duration::from_secs(61));
        // No sweep: the next request finds the session expired.
        tracker.check(Some(&carol), RequestKind::Activity).await;
    });
    assert!(
        text.lines().any(|l| l.contains("decision{user=\"carol\"")
            && l.contains("timeout::audit")
            && l.contains("event=\"timeout\"")),
        "the gate's logout record is not inside a decision span of carol:\n{text}"
    );
}
