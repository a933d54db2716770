//! The behaviour list (README, "Behaviour"), on the tracker with a manual
//! clock and the memory store.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use timeout_core::{
    Decision, MemoryStore, Notification, Policy,
    RequestKind::{Activity, Passive},
    Scope, Subject, TimeoutHook, Timestamp, Tracker,
    clock::ManualClock,
    config::{PolicyBuilder, StoreUnavailable},
    hook_fn,
    hooks::HookError,
    store::{Expired, UnreachableStore},
};

const T0: u64 = 1_700_000_000_000;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> Timestamp {
    Timestamp::from_millis(T0 + s * 1_000)
}

/// Timeout 60 s, warning 10 s before.
fn policy() -> PolicyBuilder {
    Policy::builder()
        .enabled(true)
        .idle_timeout(secs(60))
        .warn_before(secs(10))
}

#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Expired>>>,
}

impl Recorder {
    fn users(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.user.clone())
            .collect()
    }
}

#[async_trait]
impl TimeoutHook for Recorder {
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        self.calls.lock().unwrap().push(expired.clone());
        Ok(())
    }
}

struct Fixture {
    clock: ManualClock,
    store: Arc<MemoryStore>,
    hook: Recorder,
    tracker: Tracker,
}

impl Fixture {
    fn new(policy: PolicyBuilder) -> Self {
        let clock = ManualClock::new(at(0));
        let store = Arc::new(MemoryStore::new());
        let hook = Recorder::default();
        let tracker = Tracker::builder(policy.build().expect("valid policy"))
            .store(store.clone())
            .clock(clock.clone())
            .hook(hook.clone())
            .build();
        Fixture {
            clock,
            store,
            hook,
            tracker,
        }
    }

    fn set(&self, s: u64) {
        self.clock.set(at(s));
    }
}

fn subject(session: &str, user: &str) -> Subject {
    Subject::new(session, user).unwrap()
}

fn allowed_until(s: u64) -> Decision {
    Decision::Allowed { deadline: at(s) }
}

fn drain(sub: &mut timeout_core::events::Subscription) -> Vec<Notification> {
    let mut out = Vec::new();
    while let Ok(Some(n)) = sub.try_next() {
        out.push(n);
    }
    out
}

#[tokio::test]
async fn disabled_passes_everything_through_and_tracks_nothing() {
    let f = Fixture::new(policy().enabled(false));
    let alice = subject("s1", "alice");
    assert_eq!(
        f.tracker.check(Some(&alice), Activity).await,
        Decision::Disabled
    );
    f.set(10_000);
    assert_eq!(
        f.tracker.check(Some(&alice), Activity).await,
        Decision::Disabled
    );
    assert_eq!(f.store.stats().tracked, 0);
    assert_eq!(f.tracker.sweep().await.unwrap().logouts, 0);
    assert_eq!(f.tracker.subscribers(&alice), 0);
}

#[tokio::test]
async fn no_subject_is_not_tracked() {
    let f = Fixture::new(policy());
    assert_eq!(f.tracker.check(None, Activity).await, Decision::NotTracked);
    assert_eq!(f.tracker.reset(None).await, Decision::NotTracked);
    assert_eq!(f.store.stats().tracked, 0);
}

#[tokio::test]
async fn exempt_users_never_time_out_get_nothing_and_are_not_stored() {
    let f = Fixture::new(policy().exempt(["monitor"]));
    let monitor = subject("s1", "monitor");
    let mut events = f.tracker.subscribe(&monitor);
    assert_eq!(
        f.tracker.check(Some(&monitor), Activity).await,
        Decision::Exempt
    );
    f.set(100_000);
    f.tracker.sweep().await.unwrap();
    assert_eq!(
        f.tracker.check(Some(&monitor), Passive).await,
        Decision::Exempt
    );
    assert_eq!(f.store.stats().tracked, 0);
    assert!(drain(&mut events).is_empty());
    assert!(f.hook.users().is_empty());
}

#[tokio::test]
async fn activity_moves_the_deadline_passive_requests_do_not() {
    let f = Fixture::new(policy());
    let alice = subject("s1", "alice");
    assert_eq!(
        f.tracker.check(Some(&alice), Activity).await,
        allowed_until(60)
    );
    f.set(30);
    assert_eq!(
        f.tracker.check(Some(&alice), Passive).await,
        allowed_until(60)
    );
    f.set(59);
    assert_eq!(
        f.tracker.check(Some(&alice), Passive).await,
        allowed_until(60)
    );
    assert_eq!(
        f.tracker.check(Some(&alice), Activity).await,
        allowed_until(119)
    );
    assert_eq!(f.tracker.time_left(&alice).await.unwrap(), Some(secs(60)));
}

#[tokio::test]
async fn the_gate_refuses_an_expired_subject_before_any_sweep_and_logs_out_once() {
    let f = Fixture::new(policy());
    let alice = subject("s1", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    let mut events = f.tracker.subscribe(&alice);
    f.set(60);
    let decision = f.tracker.check(Some(&alice), Activity).await;
    assert_eq!(decision, Decision::TimedOut);
    let refusal = decision.refusal().unwrap();
    assert_eq!(refusal.status, 401);
    assert_eq!(
        refusal.body,
        r#"{"LogoutNotification":{"reason":"Logged out due to session timeout"}}"#
    );
    assert_eq!(f.hook.users(), ["alice"]);
    assert_eq!(drain(&mut events), [Notification::logout()]);
    assert!(
        events.try_next().is_err(),
        "the subscription ends after the logout"
    );

    // Later requests with the same session are refused; nothing runs twice.
    f.set(61);
    assert_eq!(
        f.tracker.check(Some(&alice), Passive).await,
        Decision::TimedOut
    );
    assert_eq!(f.tracker.reset(Some(&alice)).await, Decision::TimedOut);
    f.tracker.sweep().await.unwrap();
    assert_eq!(f.hook.users(), ["alice"]);
}

#[tokio::test]
async fn the_sweeper_warns_then_logs_out_with_the_exact_messages() {
    let f = Fixture::new(policy().idle_timeout(secs(150)).warn_before(secs(90)));
    let alice = subject("s1", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    let mut events = f.tracker.subscribe(&alice);
    f.set(59);
    assert_eq!(f.tracker.sweep().await.unwrap().warnings, 0);
    f.set(60);
    let report = f.tracker.sweep().await.unwrap();
    assert_eq!((report.warnings, report.logouts), (1, 0));
    let warning = drain(&mut events);
    assert_eq!(warning, [Notification::warning(secs(90))]);
    assert_eq!(
        warning[0].to_json(),
        r#"{"TimeoutNotification":{"minutesUntilTimeout":2}}"#,
        "90 s left is 2 minutes, rounded up"
    );
    f.set(149);
    assert_eq!(f.tracker.sweep().await.unwrap().logouts, 0);
    f.set(150);
    assert_eq!(f.tracker.sweep().await.unwrap().logouts, 1);
    assert_eq!(drain(&mut events), [Notification::logout()]);
    assert!(events.try_next().is_err());
    assert_eq!(f.hook.users(), ["alice"]);
    let expired = f.hook.calls.lock().unwrap()[0].clone();
    assert_eq!(expired.sessions, ["s1"]);
    assert_eq!(expired.deadline, at(150));
}

#[tokio::test]
async fn reset_counts_as_activity_and_starts_a_new_warning_period() {
    let f = Fixture::new(policy());
    let alice = subject("s1", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    let mut events = f.tracker.subscribe(&alice);
    f.set(50);
    f.tracker.sweep().await.unwrap();
    assert_eq!(drain(&mut events).len(), 1, "the warning");
    f.set(55);
    assert_eq!(f.tracker.reset(Some(&alice)).await, allowed_until(115));
    f.set(60);
    f.tracker.sweep().await.unwrap();
    assert!(
        drain(&mut events).is_empty(),
        "no logout at the old deadline"
    );
    f.set(105);
    f.tracker.sweep().await.unwrap();
    assert_eq!(drain(&mut events), [Notification::warning(secs(10))]);
}

#[tokio::test]
async fn explicit_logout_stops_tracking_at_once_with_no_event() {
    let f = Fixture::new(policy());
    let alice = subject("s1", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    let mut events = f.tracker.subscribe(&alice);
    f.tracker.logout(&alice).await.unwrap();
    assert!(events.try_next().is_err(), "its subscriptions end");
    assert_eq!(f.tracker.deadline(&alice).await.unwrap(), None);
    f.set(1_000);
    assert_eq!(f.tracker.sweep().await.unwrap().logouts, 0);
    assert!(f.hook.users().is_empty());
    // A replayed cookie of the ended session is refused...
    assert_eq!(
        f.tracker.check(Some(&alice), Activity).await,
        Decision::TimedOut
    );
    // ...while logging in again is a fresh start.
    assert_eq!(f.tracker.login(&alice).await, allowed_until(1_060));
}

#[tokio::test]
async fn subscriptions_receive_only_their_own_key() {
    let f = Fixture::new(policy());
    let alice = subject("a1", "alice");
    let bob = subject("b1", "bob");
    f.tracker.check(Some(&alice), Activity).await;
    f.set(30);
    f.tracker.check(Some(&bob), Activity).await;
    let mut alice_events = f.tracker.subscribe(&alice);
    let mut bob_events = f.tracker.subscribe(&bob);
    f.set(60);
    f.tracker.sweep().await.unwrap();
    assert_eq!(drain(&mut alice_events), [Notification::logout()]);
    assert!(drain(&mut bob_events).is_empty());
    assert_eq!(
        bob_events.try_next(),
        Ok(None),
        "bob's stream is still open"
    );
}

#[tokio::test]
async fn group_timeouts_override_the_global_one_and_the_largest_wins() {
    let f = Fixture::new(policy().group("kiosk", secs(20)).group("night", secs(300)));
    let kiosk = subject("k", "kiosk-1").with_groups(["kiosk"]);
    let both = subject("b", "carol").with_groups(["kiosk", "night"]);
    assert_eq!(
        f.tracker.check(Some(&kiosk), Activity).await,
        allowed_until(20)
    );
    assert_eq!(
        f.tracker.check(Some(&both), Activity).await,
        allowed_until(300)
    );
    f.set(100);
    let report = f.tracker.sweep().await.unwrap();
    assert_eq!(report.logouts, 1);
    assert_eq!(f.hook.users(), ["kiosk-1"]);
    assert_eq!(
        f.tracker.check(Some(&both), Passive).await,
        allowed_until(300)
    );
}

#[tokio::test]
async fn scope_user_shares_one_deadline_across_sessions() {
    let f = Fixture::new(policy());
    let laptop = subject("laptop", "alice");
    let phone = subject("phone", "alice");
    f.tracker.check(Some(&laptop), Activity).await;
    let mut laptop_events = f.tracker.subscribe(&laptop);
    let mut phone_events = f.tracker.subscribe(&phone);
    f.set(40);
    f.tracker.check(Some(&phone), Activity).await;
    f.set(70);
    assert_eq!(
        f.tracker.check(Some(&laptop), Passive).await,
        allowed_until(100)
    );
    f.set(100);
    f.tracker.sweep().await.unwrap();
    assert_eq!(
        drain(&mut laptop_events).last(),
        Some(&Notification::logout())
    );
    assert_eq!(
        drain(&mut phone_events).last(),
        Some(&Notification::logout())
    );
    let mut sessions = f.hook.calls.lock().unwrap()[0].sessions.clone();
    sessions.sort();
    assert_eq!(sessions, ["laptop", "phone"]);
}

#[tokio::test]
async fn scope_session_expires_sessions_independently() {
    let f = Fixture::new(policy().scope(Scope::Session));
    let laptop = subject("laptop", "alice");
    let phone = subject("phone", "alice");
    f.tracker.check(Some(&laptop), Activity).await;
    f.set(40);
    f.tracker.check(Some(&phone), Activity).await;
    let mut phone_events = f.tracker.subscribe(&phone);
    f.set(60);
    assert_eq!(
        f.tracker.check(Some(&laptop), Passive).await,
        Decision::TimedOut
    );
    assert_eq!(
        f.tracker.check(Some(&phone), Passive).await,
        allowed_until(100)
    );
    assert!(drain(&mut phone_events).is_empty());
    assert_eq!(f.tracker.active_count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_login_after_an_unswept_timeout_logs_the_old_sessions_out_only() {
    let f = Fixture::new(policy());
    let old = subject("old", "alice");
    let new = subject("new", "alice");
    f.tracker.check(Some(&old), Activity).await;
    let mut old_events = f.tracker.subscribe(&old);
    let mut new_events = f.tracker.subscribe(&new);
    f.set(100);
    assert_eq!(
        f.tracker.check(Some(&new), Activity).await,
        allowed_until(160)
    );
    assert_eq!(drain(&mut old_events), [Notification::logout()]);
    assert!(
        drain(&mut new_events).is_empty(),
        "the new session's socket stays open"
    );
    assert_eq!(new_events.try_next(), Ok(None));
    assert_eq!(f.hook.users(), ["alice"]);
    assert_eq!(
        f.tracker.check(Some(&old), Passive).await,
        Decision::TimedOut
    );
}

#[tokio::test]
async fn login_forgets_a_remembered_timeout_of_a_reused_session_id() {
    let f = Fixture::new(policy());
    let alice = subject("same-id", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    f.set(60);
    assert_eq!(
        f.tracker.check(Some(&alice), Activity).await,
        Decision::TimedOut
    );
    assert_eq!(f.tracker.login(&alice).await, allowed_until(120));
}

#[tokio::test]
async fn every_hook_runs_once_even_when_one_fails() {
    let clock = ManualClock::new(at(0));
    let ok = Recorder::default();
    let tracker = Tracker::builder(policy().build().unwrap())
        .clock(clock.clone())
        .hook(hook_fn("license server", |_| async {
            Err::<(), HookError>("license server unreachable".into())
        }))
        .hook(ok.clone())
        .hook_retries(0)
        .build();
    for i in 0..3 {
        let s = subject(&format!("s{i}"), &format!("user{i}"));
        tracker.check(Some(&s), Activity).await;
    }
    clock.set(at(61));
    assert_eq!(tracker.sweep().await.unwrap().logouts, 3);
    let mut users = ok.users();
    users.sort();
    assert_eq!(users, ["user0", "user1", "user2"]);
    clock.set(at(1_000));
    tracker.sweep().await.unwrap();
    assert_eq!(ok.users().len(), 3);
}

#[tokio::test]
async fn the_absolute_lifetime_logs_out_an_active_user() {
    let f = Fixture::new(policy().absolute_lifetime(secs(90)));
    let alice = subject("s1", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    for s in [20, 40, 60, 80] {
        f.set(s);
        assert!(f.tracker.check(Some(&alice), Activity).await.allows());
    }
    f.set(90);
    f.tracker.sweep().await.unwrap();
    let calls = f.hook.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cause, timeout_core::store::Cause::Absolute);
}

#[tokio::test]
async fn an_unreachable_store_fails_closed_by_default_or_open_when_configured() {
    let alice = subject("s1", "alice");
    let closed = Tracker::builder(policy().build().unwrap())
        .store(Arc::new(UnreachableStore::new("test store")))
        .build();
    let decision = closed.check(Some(&alice), Activity).await;
    assert_eq!(decision, Decision::Unavailable);
    assert_eq!(decision.refusal().unwrap().status, 503);
    let err = closed.sweep().await.unwrap_err().to_string();
    assert_eq!(
        err,
        "the timeout store is unreachable (test store): connection refused"
    );

    let open = Tracker::builder(
        policy()
            .store_unavailable(StoreUnavailable::Allow)
            .build()
            .unwrap(),
    )
    .store(Arc::new(UnreachableStore::new("test store")))
    .build();
    let decision = open.check(Some(&alice), Activity).await;
    assert_eq!(decision, Decision::Unchecked);
    assert!(decision.allows());
    assert!(open.logout(&alice).await.is_err());
    assert_eq!(open.login(&alice).await, Decision::Unchecked);
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes_it() {
    let f = Fixture::new(policy());
    let alice = subject("s1", "alice");
    let first = f.tracker.subscribe(&alice);
    let second = f.tracker.subscribe(&alice);
    assert_eq!(f.tracker.subscribers(&alice), 2);
    drop(first);
    assert_eq!(f.tracker.subscribers(&alice), 1);
    drop(second);
    assert_eq!(f.tracker.subscribers(&alice), 0);
}

#[tokio::test]
async fn deferred_activity_survives_a_burst_of_other_logouts() {
    let f = Fixture::new(policy());
    let alice = subject("a1", "alice");
    f.tracker.check(Some(&alice), Activity).await;
    let gone = subject("g1", "gone");
    f.tracker.check(Some(&gone), Activity).await;
    // Two requests start: alice's and one of a session about to log out.
    let alice_activity = f.tracker.defer_activity(alice.clone());
    let gone_activity = f.tracker.defer_activity(gone.clone());
    f.tracker.logout(&gone).await.unwrap();
    // Meanwhile 2,000 other users log out explicitly.
    for i in 0..2_000 {
        let other = subject(&format!("o{i}"), &format!("other{i}"));
        f.tracker.check(Some(&other), Activity).await;
        f.tracker.logout(&other).await.unwrap();
    }
    f.set(30);
    // Alice's activity still counts...
    assert_eq!(alice_activity.record().await, allowed_until(90));
    // ...and the logged-out session's does not bring it back.
    assert!(!gone_activity.record().await.allows());
    assert_eq!(f.tracker.deadline(&gone).await.unwrap(), None);
}

#[tokio::test]
async fn a_flood_of_logins_and_sockets_of_one_user_stays_bounded() {
    let f = Fixture::new(policy());
    let tracker = Tracker::builder(policy().build().unwrap())
        .store(f.store.clone())
        .clock(f.clock.clone())
        .max_sessions_per_key(10)
        .max_subscriptions_per_key(4)
        .build();
    let mut refused = 0;
    for i in 0..500 {
        let session = subject(&format!("flood{i}"), "mallory");
        match tracker.login(&session).await {
            Decision::Allowed { .. } => {}
            Decision::SessionLimit => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 490, "sessions past the limit are refused");
    let refusal = Decision::SessionLimit.refusal().unwrap();
    assert_eq!(refusal.status, 403);
    assert!(
        refusal.body.contains("too many sessions"),
        "{}",
        refusal.body
    );
    // The first sessions go on.
    assert!(
        tracker
            .check(Some(&subject("flood0", "mallory")), Activity)
            .await
            .allows()
    );
    assert_eq!(f.store.stats().tracked, 1);
    // Sockets: the newest four stay open, the older ones are closed.
    let first = subject("flood0", "mallory");
    let mut sockets: Vec<_> = (0..200).map(|_| tracker.subscribe(&first)).collect();
    assert_eq!(tracker.subscribers(&first), 4);
    assert!(
        sockets[0].try_next().is_err(),
        "the oldest socket was closed"
    );
    assert_eq!(sockets[199].try_next(), Ok(None), "the newest is open");
    // Another user is not affected.
    assert!(tracker.login(&subject("b1", "bob")).await.allows());
}
