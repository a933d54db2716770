use std::{sync::Arc, time::Duration};

use super::*;

const T0: u64 = 1_000_000;
const SEC: u64 = 1_000;

fn timing(warn_s: u64) -> Timing {
    Timing {
        warn_before: Duration::from_secs(warn_s),
        remember: Duration::from_secs(3_600),
        max_sessions: crate::DEFAULT_MAX_SESSIONS,
    }
}

struct Req {
    key: &'static str,
    user: &'static str,
    session: &'static str,
    kind: RequestKind,
    timeout_s: u64,
    absolute_s: Option<u64>,
    warn_s: u64,
}

fn user(user: &'static str, session: &'static str) -> Req {
    Req {
        key: user,
        user,
        session,
        kind: RequestKind::Activity,
        timeout_s: 60,
        absolute_s: None,
        warn_s: 10,
    }
}

impl Req {
    fn passive(mut self) -> Self {
        self.kind = RequestKind::Passive;
        self
    }

    fn at(&self, store: &MemoryStore, ms: u64) -> TouchOutcome {
        store.touch_now(&Touch {
            key: self.key,
            user: self.user,
            session: self.session,
            kind: self.kind,
            now: Timestamp::from_millis(ms),
            timeout: Duration::from_secs(self.timeout_s),
            absolute_lifetime: self.absolute_s.map(Duration::from_secs),
            timing: timing(self.warn_s),
            login: false,
        })
    }
}

fn live(ms: u64) -> TouchOutcome {
    TouchOutcome::Live {
        deadline: Timestamp::from_millis(ms),
    }
}

fn claim(store: &MemoryStore, ms: u64, warn_s: u64) -> Vec<Due> {
    store.claim_due_now(ms, timing(warn_s), usize::MAX)
}

fn expired(outcome: TouchOutcome) -> Expired {
    match outcome {
        TouchOutcome::Expired(e) => e,
        other => panic!("expected an expiry, got {other:?}"),
    }
}

#[test]
fn first_sight_starts_tracking_even_when_passive() {
    let store = MemoryStore::new();
    assert_eq!(
        user("alice", "s1").passive().at(&store, T0),
        live(T0 + 60 * SEC)
    );
    assert_eq!(store.stats().tracked, 1);
}

#[test]
fn activity_moves_the_deadline_and_passive_does_not() {
    let store = MemoryStore::new();
    user("alice", "s1").at(&store, T0);
    assert_eq!(
        user("alice", "s1").at(&store, T0 + 10 * SEC),
        live(T0 + 70 * SEC)
    );
    assert_eq!(
        user("alice", "s1").passive().at(&store, T0 + 50 * SEC),
        live(T0 + 70 * SEC)
    );
    assert_eq!(
        user("alice", "s1").passive().at(&store, T0 + 69_999),
        live(T0 + 70 * SEC)
    );
}

#[test]
fn the_gate_claims_an_expiry_exactly_once_and_then_refuses() {
    let store = MemoryStore::new();
    user("alice", "s1").at(&store, T0);
    let e = expired(user("alice", "s1").passive().at(&store, T0 + 60 * SEC));
    assert_eq!(e.key, "alice");
    assert_eq!(e.user, "alice");
    assert_eq!(e.sessions, ["s1"]);
    assert_eq!(e.deadline, Timestamp::from_millis(T0 + 60 * SEC));
    assert_eq!(e.cause, Cause::Idle);
    // The same session is remembered as timed out, active or not.
    assert_eq!(
        user("alice", "s1").at(&store, T0 + 61 * SEC),
        TouchOutcome::Refused
    );
    assert_eq!(
        user("alice", "s1").passive().at(&store, T0 + 62 * SEC),
        TouchOutcome::Refused
    );
    // Nothing is left for the sweeper.
    assert!(claim(&store, T0 + 120 * SEC, 10).is_empty());
    // A new login (new session) starts afresh.
    assert_eq!(
        user("alice", "s2").at(&store, T0 + 63 * SEC),
        live(T0 + 123 * SEC)
    );
}

#[test]
fn remembered_sessions_are_forgotten_after_the_retention_or_on_request() {
    let store = MemoryStore::new();
    user("alice", "s1").at(&store, T0);
    expired(user("alice", "s1").at(&store, T0 + 60 * SEC));
    assert_eq!(store.stats().remembered, 1);
    // Retention is an hour: purged by a sweep after it.
    claim(&store, T0 + 60 * SEC + 3_600 * SEC, 10);
    assert_eq!(store.stats().remembered, 0);
    assert!(matches!(
        user("alice", "s1").at(&store, T0 + 60 * SEC + 3_601 * SEC),
        TouchOutcome::Live { .. }
    ));

    let store = MemoryStore::new();
    user("bob", "s9").at(&store, T0);
    expired(user("bob", "s9").at(&store, T0 + 60 * SEC));
    futures_block_on(store.forget_timed_out("s9", "s9")).unwrap();
    assert!(matches!(
        user("bob", "s9").at(&store, T0 + 61 * SEC),
        TouchOutcome::Live { .. }
    ));
}

#[test]
fn scope_user_keeps_every_session_alive_and_logs_them_out_together() {
    let store = MemoryStore::new();
    user("alice", "laptop").at(&store, T0);
    user("alice", "phone").at(&store, T0 + 30 * SEC);
    // Activity on the phone keeps the laptop alive.
    assert_eq!(
        user("alice", "laptop").passive().at(&store, T0 + 80 * SEC),
        live(T0 + 90 * SEC)
    );
    let e = expired(user("alice", "laptop").passive().at(&store, T0 + 90 * SEC));
    let mut sessions = e.sessions.clone();
    sessions.sort();
    assert_eq!(sessions, ["laptop", "phone"]);
    assert_eq!(
        user("alice", "phone").at(&store, T0 + 91 * SEC),
        TouchOutcome::Refused
    );
}

#[test]
fn scope_session_expires_each_session_on_its_own() {
    let store = MemoryStore::new();
    let sess = |session: &'static str| Req {
        key: session,
        ..user("alice", session)
    };
    sess("s1").at(&store, T0);
    sess("s2").at(&store, T0 + 30 * SEC);
    let e = expired(sess("s1").passive().at(&store, T0 + 60 * SEC));
    assert_eq!((e.key.as_str(), e.user.as_str()), ("s1", "alice"));
    assert_eq!(e.sessions, ["s1"]);
    assert_eq!(sess("s2").at(&store, T0 + 61 * SEC), live(T0 + 121 * SEC));
}

#[test]
fn a_new_session_after_an_unswept_deadline_replaces_the_old_period() {
    let store = MemoryStore::new();
    user("alice", "old").at(&store, T0);
    match user("alice", "new").at(&store, T0 + 100 * SEC) {
        TouchOutcome::Replaced { deadline, expired } => {
            assert_eq!(deadline, Timestamp::from_millis(T0 + 160 * SEC));
            assert_eq!(expired.sessions, ["old"]);
        }
        other => panic!("expected a replaced period, got {other:?}"),
    }
    assert_eq!(
        user("alice", "old").at(&store, T0 + 101 * SEC),
        TouchOutcome::Refused
    );
    assert_eq!(
        user("alice", "new").at(&store, T0 + 101 * SEC),
        live(T0 + 161 * SEC)
    );
}

#[test]
fn sweep_sends_one_warning_per_period_then_the_logout() {
    let store = MemoryStore::new();
    user("alice", "s1").at(&store, T0);
    assert!(claim(&store, T0 + 49_999, 10).is_empty());
    let due = claim(&store, T0 + 50 * SEC, 10);
    assert_eq!(
        due,
        [Due::Warning(DueWarning {
            key: "alice".into(),
            deadline: Timestamp::from_millis(T0 + 60 * SEC),
            claim: None,
        })]
    );
    assert!(
        claim(&store, T0 + 55 * SEC, 10).is_empty(),
        "one warning per period"
    );
    let due = claim(&store, T0 + 60 * SEC, 10);
    assert!(
        matches!(&due[..], [Due::Expiry(e)] if e.key == "alice"),
        "{due:?}"
    );
    assert!(claim(&store, T0 + 200 * SEC, 10).is_empty());
    assert_eq!(store.stats().tracked, 0);
}

#[test]
fn activity_after_a_warning_starts_a_new_period_with_a_new_warning() {
    let store = MemoryStore::new();
    user("alice", "s1").at(&store, T0);
    assert_eq!(claim(&store, T0 + 50 * SEC, 10).len(), 1);
    user("alice", "s1").at(&store, T0 + 55 * SEC); // "Stay logged in"
    assert!(
        claim(&store, T0 + 60 * SEC, 10).is_empty(),
        "no logout at the old deadline"
    );
    assert!(claim(&store, T0 + 104 * SEC, 10).is_empty());
    let due = claim(&store, T0 + 105 * SEC, 10);
    assert!(
        matches!(&due[..], [Due::Warning(w)] if w.deadline == Timestamp::from_millis(T0 + 115 * SEC)),
        "{due:?}"
    );
}

#[test]
fn lazy_reschedule_refiles_once_per_period() {
    let store = MemoryStore::new();
    user("alice", "s1").at(&store, T0);
    for s in 1..=59 {
        user("alice", "s1").at(&store, T0 + s * SEC);
    }
    let before = store.stats().sweep_visits;
    // At the originally filed warning time the entry is checked and
    // re-filed, not warned.
    assert!(claim(&store, T0 + 50 * SEC, 10).is_empty());
    let visits = store.stats().sweep_visits - before;
    assert!(visits <= 2, "{visits} visits to re-file one key");
    assert_eq!(
        claim(&store, T0 + 109 * SEC, 10).len(),
        1,
        "warning of the new period"
    );
}

#[test]
fn warnings_are_skipped_when_disabled_or_already_too_late() {
    let store = MemoryStore::new();
    let mut quiet = user("alice", "s1");
    quiet.warn_s = 0;
    quiet.at(&store, T0);
    let due = claim(&store, T0 + 60 * SEC, 0);
    assert!(matches!(&due[..], [Due::Expiry(_)]), "{due:?}");

    let store = MemoryStore::new();
    user("bob", "s1").at(&store, T0);
    // The first sweep after the deadline logs out without a useless warning.
    let due = claim(&store, T0 + 61 * SEC, 10);
    assert!(matches!(&due[..], [Due::Expiry(_)]), "{due:?}");
}

#[test]
fn the_absolute_lifetime_ends_even_an_active_key() {
    let store = MemoryStore::new();
    let mut r = user("alice", "s1");
    r.absolute_s = Some(90);
    r.at(&store, T0);
    for s in (10..90).step_by(10) {
        let out = r.at(&store, T0 + s * SEC);
        let deadline = (T0 + s * SEC + 60 * SEC).min(T0 + 90 * SEC);
        assert_eq!(out, live(deadline), "at {s}s");
    }
    let e = expired(r.at(&store, T0 + 90 * SEC));
    assert_eq!(e.cause, Cause::Absolute);
}

#[test]
fn explicit_logout_stops_tracking_without_events() {
    let store = MemoryStore::new();
    user("alice", "laptop").at(&store, T0);
    user("alice", "phone").at(&store, T0);
    let end = |session| futures_block_on(store.end_session("alice", session, timing(0)));
    assert!(end("phone").unwrap());
    assert!(!end("phone").unwrap());
    assert_eq!(store.stats().tracked, 1, "the laptop session goes on");
    assert!(end("laptop").unwrap());
    assert_eq!(store.stats().tracked, 0);
    // A replayed cookie of an ended session is refused, as after a timeout,
    // until the application logs the user in again.
    assert_eq!(
        user("alice", "laptop").at(&store, T0 + 1),
        TouchOutcome::Refused
    );
    assert!(futures_block_on(store.timed_out("phone", Timestamp::from_millis(T0 + 1))).unwrap());
    futures_block_on(store.forget_timed_out("alice", "laptop")).unwrap();
    assert!(
        claim(&store, T0 + 3_600 * SEC, 10).is_empty(),
        "no event follows"
    );
    assert!(matches!(
        user("alice", "laptop").at(&store, T0 + 1),
        TouchOutcome::Live { .. }
    ));

    assert!(futures_block_on(store.remove("alice")).unwrap());
    assert!(claim(&store, T0 + 7_200 * SEC, 10).is_empty());
}

#[test]
fn a_sweep_visits_the_due_keys_not_all_keys() {
    let store = MemoryStore::new();
    let mut names: Vec<String> = (0..100_000).map(|i| format!("user{i}")).collect();
    let sessions: Vec<String> = (0..100_000).map(|i| format!("session{i}")).collect();
    // 10,000 keys seen at T0, 90,000 seen ten minutes later: at T0 + 61 s
    // only the first 10,000 are due.
    for (i, (name, session)) in names.iter_mut().zip(&sessions).enumerate() {
        let now = if i < 10_000 { T0 } else { T0 + 600 * SEC };
        store.touch_now(&Touch {
            key: name,
            user: name,
            session,
            kind: RequestKind::Activity,
            now: Timestamp::from_millis(now),
            timeout: Duration::from_secs(60),
            absolute_lifetime: None,
            timing: timing(0),
            login: false,
        });
    }
    assert_eq!(store.stats().tracked, 100_000);
    let due = claim(&store, T0 + 61 * SEC, 0);
    assert_eq!(due.len(), 10_000);
    assert!(due.iter().all(|d| matches!(d, Due::Expiry(_))));
    let visits = store.stats().sweep_visits;
    // Each due key is moved out of its bucket once and popped once.
    assert!(
        (10_000..=20_000).contains(&visits),
        "{visits} visits for 10,000 due keys among 100,000"
    );
    assert_eq!(store.stats().tracked, 90_000);
}

#[test]
fn claims_respect_the_batch_limit_and_lose_nothing() {
    let store = MemoryStore::new();
    let names: Vec<String> = (0..25).map(|i| format!("u{i}")).collect();
    for name in &names {
        store.touch_now(&Touch {
            key: name,
            user: name,
            session: name,
            kind: RequestKind::Activity,
            now: Timestamp::from_millis(T0),
            timeout: Duration::from_secs(60),
            absolute_lifetime: None,
            timing: timing(0),
            login: false,
        });
    }
    let mut total = 0;
    loop {
        let batch = store.claim_due_now(T0 + 60 * SEC, timing(0), 10);
        assert!(batch.len() <= 10);
        if batch.is_empty() {
            break;
        }
        total += batch.len();
    }
    assert_eq!(total, 25);
}

#[test]
fn concurrent_gate_and_sweeper_claim_each_expiry_once() {
    let store = Arc::new(MemoryStore::new());
    let users: Vec<String> = (0..2_000).map(|i| format!("u{i}")).collect();
    for u in &users {
        store.touch_now(&Touch {
            key: u,
            user: u,
            session: u,
            kind: RequestKind::Activity,
            now: Timestamp::from_millis(T0),
            timeout: Duration::from_secs(60),
            absolute_lifetime: None,
            timing: timing(0),
            login: false,
        });
    }
    let after = T0 + 60 * SEC;
    let gate = |offset: usize| {
        let store = Arc::clone(&store);
        let users = users.clone();
        std::thread::spawn(move || {
            let mut claimed = Vec::new();
            for u in users.iter().cycle().skip(offset).take(users.len()) {
                let out = store.touch_now(&Touch {
                    key: u,
                    user: u,
                    session: u,
                    kind: RequestKind::Passive,
                    now: Timestamp::from_millis(after),
                    timeout: Duration::from_secs(60),
                    absolute_lifetime: None,
                    timing: timing(0),
                    login: false,
                });
                match out {
                    TouchOutcome::Expired(e) => claimed.push(e.key),
                    TouchOutcome::Refused => {}
                    other => panic!("{other:?} after the deadline"),
                }
            }
            claimed
        })
    };
    let a = gate(0);
    let b = gate(1_000);
    let swept: Vec<String> = store
        .claim_due_now(after, timing(0), usize::MAX)
        .into_iter()
        .filter_map(|d| match d {
            Due::Expiry(e) => Some(e.key),
            _ => None,
        })
        .collect();
    let mut all = swept;
    all.extend(a.join().unwrap());
    all.extend(b.join().unwrap());
    all.sort();
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(all, expected, "every key claimed exactly once");
}

/// Runs a memory-store future, which never waits, to completion.
fn futures_block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(fut)
}

#[test]
fn a_shorter_timeout_after_a_group_change_is_swept_on_time() {
    let store = MemoryStore::new();
    let mut r = user("alice", "s1");
    r.warn_s = 0;
    r.timeout_s = 600;
    r.at(&store, T0);
    // The user moved to a group with a 60 s timeout.
    r.timeout_s = 60;
    assert_eq!(r.at(&store, T0 + SEC), live(T0 + 61 * SEC));
    let due = claim(&store, T0 + 61 * SEC, 0);
    assert!(
        matches!(&due[..], [Due::Expiry(e)] if e.key == "alice"),
        "{due:?}"
    );
    // The first filing (at 600 s) finds nothing left to do.
    assert!(claim(&store, T0 + 700 * SEC, 0).is_empty());
}
