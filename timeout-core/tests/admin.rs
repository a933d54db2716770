//! Operators on the tracker and the memory store: listing a user's
//! sessions, signing the user out everywhere, and the answers of the
//! operator routes, with a manual clock.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use timeout_core::{
    Decision, MemoryStore, Notification, Policy, RequestKind, Scope, Store, Subject, TimeoutHook,
    Timestamp, Tracker,
    admin::{AdminError, list_sessions, sign_out},
    clock::ManualClock,
    config::PolicyBuilder,
    hooks::HookError,
    store::{
        Cause, Claim, Due, Expired, StoreError, Timing, Touch, TouchOutcome, UnreachableStore,
    },
};

const T0: u64 = 1_700_000_000_000;

fn policy() -> PolicyBuilder {
    Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
}

#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<(String, Cause)>>>);

#[async_trait]
impl TimeoutHook for Runs {
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        self.0
            .lock()
            .unwrap()
            .push((expired.key.clone(), expired.cause));
        Ok(())
    }
}

fn tracker_on(policy: PolicyBuilder, runs: &Runs) -> (Tracker, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let tracker = Tracker::builder(policy.build().unwrap())
        .clock(clock.clone())
        .hook(runs.clone())
        .build();
    (tracker, clock)
}

fn subject(session: &str, user: &str) -> Subject {
    Subject::new(session, user).unwrap()
}

#[tokio::test]
async fn sessions_are_listed_with_their_time_left_and_signed_out_once() {
    let runs = Runs::default();
    let (tracker, clock) = tracker_on(policy(), &runs);
    let (s1, s2) = (
        subject("session-one", "alice"),
        subject("session-two", "alice"),
    );
    tracker.login(&s1).await;
    clock.advance(Duration::from_secs(20));
    tracker.login(&s2).await;
    clock.advance(Duration::from_secs(5));
    let listed = tracker.sessions_of("alice").await.unwrap();
    let shown: Vec<_> = listed
        .iter()
        .map(|s| (s.session.as_str(), s.time_left))
        .collect();
    // Scope user: one deadline, moved by the second login.
    assert_eq!(
        shown,
        [
            ("sess…", Duration::from_secs(55)),
            ("sess…", Duration::from_secs(55))
        ]
    );
    let mut socket = tracker.subscribe(&s1);

    let (first, second) = tokio::join!(
        tracker.sign_out_everywhere("alice"),
        tracker.sign_out_everywhere("alice")
    );
    assert_eq!(first.unwrap() + second.unwrap(), 2);
    assert_eq!(socket.recv().await, Some(Notification::signed_out()));
    assert_eq!(socket.recv().await, None);
    assert_eq!(
        *runs.0.lock().unwrap(),
        [("alice".to_owned(), Cause::SignedOut)]
    );
    for s in [&s1, &s2] {
        assert_eq!(
            tracker.check(Some(s), RequestKind::Activity).await,
            Decision::TimedOut,
            "a signed-out session is refused as a timed-out one"
        );
    }
    assert!(tracker.sessions_of("alice").await.unwrap().is_empty());
    assert_eq!(tracker.active_count().await.unwrap(), 0);
}

#[tokio::test]
async fn in_session_scope_only_the_users_own_sessions_go() {
    let runs = Runs::default();
    let (tracker, _clock) = tracker_on(policy().scope(Scope::Session), &runs);
    // Bob's session id is alice's name: it is not hers.
    for s in [
        subject("a1", "alice"),
        subject("a2", "alice"),
        subject("alice", "bob"),
    ] {
        tracker.login(&s).await;
    }
    assert_eq!(tracker.sessions_of("alice").await.unwrap().len(), 2);
    assert_eq!(tracker.sign_out_everywhere("alice").await.unwrap(), 2);
    let mut keys: Vec<_> = runs.0.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["a1", "a2"]);
    assert_eq!(tracker.sessions_of("bob").await.unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_is_listed_or_signed_out_for_exempt_disabled_or_impossible_users() {
    let runs = Runs::default();
    let (tracker, _clock) = tracker_on(policy().exempt(["monitor"]), &runs);
    tracker.login(&subject("m1", "monitor")).await;
    assert!(tracker.sessions_of("monitor").await.unwrap().is_empty());
    assert_eq!(tracker.sign_out_everywhere("monitor").await.unwrap(), 0);
    assert!(matches!(
        tracker.sign_out_everywhere("").await,
        Err(AdminError::User(_))
    ));

    let (disabled, _clock) = tracker_on(Policy::builder().enabled(false), &runs);
    disabled.login(&subject("s1", "alice")).await;
    assert_eq!(disabled.sign_out_everywhere("alice").await.unwrap(), 0);
    assert!(runs.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_operator_answers_say_what_went_wrong() {
    let (tracker, _clock) = tracker_on(policy(), &Runs::default());
    tracker.login(&subject("s1", "alice")).await;
    let listed = list_sessions(&tracker, "alice").await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed.body).unwrap()["sessions"][0]["secondsLeft"],
        60.0
    );
    let signed = sign_out(&tracker, "alice").await;
    assert_eq!(
        (signed.status, signed.body.as_str()),
        (200, r#"{"user":"alice","signedOut":1}"#)
    );
    let bad = sign_out(&tracker, &"x".repeat(2_000)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("user name is 2000 bytes"), "{}", bad.body);

    let unreachable = Tracker::builder(policy().build().unwrap())
        .store(Arc::new(UnreachableStore::new("redis at 10.0.0.9:6379")))
        .build();
    let answer = list_sessions(&unreachable, "alice").await;
    assert_eq!(answer.status, 503);
    assert!(answer.headers().any(|(name, _)| name == "retry-after"));

    let old = Tracker::builder(policy().build().unwrap())
        .store(Arc::new(StoreOfOldVersion::default()))
        .build();
    let answer = sign_out(&old, "alice").await;
    assert_eq!(answer.status, 501);
    assert!(
        answer.body.contains("implement Store::keys_of_user"),
        "{}",
        answer.body
    );
}

/// A store written before the operator methods existed: it has only the
/// required ones.
#[derive(Debug, Default)]
struct StoreOfOldVersion(MemoryStore);

#[async_trait]
impl Store for StoreOfOldVersion {
    async fn touch(&self, touch: &Touch<'_>) -> Result<TouchOutcome, StoreError> {
        self.0.touch(touch).await
    }
    async fn deadline(&self, key: &str, timing: Timing) -> Result<Option<Timestamp>, StoreError> {
        self.0.deadline(key, timing).await
    }
    async fn end_session(
        &self,
        key: &str,
        session: &str,
        timing: Timing,
    ) -> Result<bool, StoreError> {
        self.0.end_session(key, session, timing).await
    }
    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        self.0.remove(key).await
    }
    async fn forget_timed_out(&self, key: &str, session: &str) -> Result<(), StoreError> {
        self.0.forget_timed_out(key, session).await
    }
    async fn timed_out(&self, session: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.0.timed_out(session, now).await
    }
    async fn claim_due(
        &self,
        now: Timestamp,
        timing: Timing,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.0.claim_due(now, timing, limit).await
    }
    async fn ack(&self, claims: &[Claim]) -> Result<(), StoreError> {
        self.0.ack(claims).await
    }
    async fn count_active(&self) -> Result<u64, StoreError> {
        self.0.count_active().await
    }
}
