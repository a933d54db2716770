//! Hooks under faults: a hook that hangs, fails or panics never holds back
//! other users' logouts, is retried a bounded number of times, and a logout
//! claimed at the gate completes even when its request is dropped.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use timeout_core::{
    Decision, Notification, Policy, RequestKind, Subject, Sweeper, Timestamp, Tracker,
    TrackerBuilder, clock::ManualClock, hook_fn,
};

const T0: u64 = 1_700_000_000_000;

fn policy() -> Policy {
    Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .build()
        .expect("valid policy")
}

fn subject(session: &str, user: &str) -> Subject {
    Subject::new(session, user).expect("valid subject")
}

/// Users whose hook finished, in order.
#[derive(Clone, Default)]
struct Finished(Arc<Mutex<Vec<String>>>);

impl Finished {
    fn users(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A tracker whose hook hangs forever for users named `stuck*` and records
/// everybody else.
fn hanging_tracker(clock: &ManualClock, finished: &Finished) -> TrackerBuilder {
    let finished = finished.clone();
    Tracker::builder(policy())
        .clock(clock.clone())
        .hook(hook_fn("seats", move |expired| {
            let finished = finished.clone();
            async move {
                if expired.user.starts_with("stuck") {
                    std::future::pending::<()>().await;
                }
                finished.0.lock().unwrap().push(expired.user);
                Ok(())
            }
        }))
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn hung_hooks_do_not_hold_back_later_logouts() {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let finished = Finished::default();
    // Long enough that no hung hook times out during the test.
    let tracker = hanging_tracker(&clock, &finished)
        .hook_timeout(Duration::from_secs(60))
        .build();
    let _sweeper = Sweeper::new(tracker.clone())
        .interval(Duration::from_millis(10))
        .spawn();
    // Eight users whose hooks hang, each timing out in a sweep of its own,
    // then one ordinary user.
    for i in 0..8u64 {
        let stuck = subject(&format!("s{i}"), &format!("stuck{i}"));
        tracker.check(Some(&stuck), RequestKind::Activity).await;
        clock.advance(Duration::from_secs(1));
    }
    clock.advance(Duration::from_secs(52));
    let alice = subject("a1", "alice");
    tracker.check(Some(&alice), RequestKind::Activity).await;
    let mut socket = tracker.subscribe(&alice);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        clock.advance(Duration::from_secs(1));
    }
    wait_for("the stuck users' hooks to start", || {
        tracker.stats().logouts_running == 8
    })
    .await;
    clock.advance(Duration::from_secs(60));
    wait_for("alice's logout", || finished.users() == ["alice"]).await;
    assert_eq!(socket.recv().await, Some(Notification::logout()));
}

#[tokio::test]
async fn a_hung_hook_is_recorded_dead_after_its_retries() {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let finished = Finished::default();
    let tracker = hanging_tracker(&clock, &finished)
        .hook_timeout(Duration::from_millis(100))
        .hook_retries(2)
        .build();
    tracker
        .check(Some(&subject("s0", "stuck")), RequestKind::Activity)
        .await;
    tracker
        .check(Some(&subject("s1", "bob")), RequestKind::Activity)
        .await;
    clock.advance(Duration::from_secs(61));
    let started = std::time::Instant::now();
    assert_eq!(tracker.sweep().await.unwrap().logouts, 2);
    // Three attempts of 100 ms and pauses of 200 and 400 ms.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the sweep waited {took:?}");
    let stats = tracker.stats();
    assert_eq!(stats.hooks_dead, 1, "{stats:?}");
    assert_eq!(stats.hook_attempts_timed_out, 3, "{stats:?}");
    assert_eq!(stats.hooks_succeeded, 1, "{stats:?}");
    assert_eq!(stats.logouts_running, 0, "{stats:?}");
    assert_eq!(finished.users(), ["bob"]);
}

#[tokio::test]
async fn a_failing_hook_is_retried_until_it_succeeds() {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let attempts = Arc::new(AtomicU32::new(0));
    let after = Finished::default();
    let (count, record) = (attempts.clone(), after.clone());
    let tracker = Tracker::builder(policy())
        .clock(clock.clone())
        .hook(hook_fn("flaky license server", move |_| {
            let count = count.clone();
            async move {
                if count.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err("license server unreachable".into())
                } else {
                    Ok(())
                }
            }
        }))
        .hook(hook_fn("after it", move |expired| {
            let record = record.clone();
            async move {
                record.0.lock().unwrap().push(expired.user);
                Ok(())
            }
        }))
        .build();
    tracker
        .check(Some(&subject("s1", "alice")), RequestKind::Activity)
        .await;
    clock.advance(Duration::from_secs(61));
    tracker.sweep().await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        after.users(),
        ["alice"],
        "the next hook runs once, after it"
    );
    let stats = tracker.stats();
    assert_eq!((stats.hook_attempts_failed, stats.hooks_dead), (2, 0));
}

#[tokio::test]
async fn a_panicking_hook_does_not_take_the_sweep_down() {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let tracker = Tracker::builder(policy())
        .clock(clock.clone())
        .hook(hook_fn("buggy", |_| async { panic!("a bug in the hook") }))
        .build();
    for user in ["alice", "bob"] {
        tracker
            .check(Some(&subject(user, user)), RequestKind::Activity)
            .await;
    }
    clock.advance(Duration::from_secs(61));
    assert_eq!(tracker.sweep().await.unwrap().logouts, 2);
    assert_eq!(tracker.stats().logouts_running, 0);
}

#[tokio::test]
async fn a_logout_claimed_at_the_gate_completes_when_the_request_is_dropped() {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let finished = Finished::default();
    let record = finished.clone();
    let tracker = Tracker::builder(policy())
        .clock(clock.clone())
        .hook(hook_fn("slow seats", move |expired| {
            let record = record.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                record.0.lock().unwrap().push(expired.user);
                Ok(())
            }
        }))
        .build();
    let alice = subject("s1", "alice");
    tracker.check(Some(&alice), RequestKind::Activity).await;
    let mut socket = tracker.subscribe(&alice);
    clock.advance(Duration::from_secs(61));
    // The client goes away while its request waits for the logout.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        tracker.check(Some(&alice), RequestKind::Activity),
    )
    .await;
    assert!(gave_up.is_err(), "the check was still waiting for the hook");
    wait_for("the hook of the dropped request", || {
        finished.users() == ["alice"]
    })
    .await;
    assert_eq!(socket.recv().await, Some(Notification::logout()));
    assert_eq!(tracker.check_session("s1").await, Decision::TimedOut);
    assert_eq!(tracker.sweep().await.unwrap().logouts, 0, "claimed once");
    assert_eq!(finished.users(), ["alice"]);
}

/// A sweep runs each logout's hooks in place until they first wait; one
/// that waits (a yield, a timer) is handed to a task of its own, where it
/// must still run to its end, once.
#[tokio::test]
async fn hooks_that_wait_midway_finish_after_the_sweep_hands_them_over() {
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let finished = Finished::default();
    let record = finished.clone();
    let tracker = Tracker::builder(policy())
        .clock(clock.clone())
        .hook(hook_fn("mixed", move |expired| {
            let record = record.clone();
            async move {
                match expired.user.as_bytes().last() {
                    Some(b'1') => tokio::task::yield_now().await,
                    Some(b'2') => tokio::time::sleep(Duration::from_millis(20)).await,
                    _ => {}
                }
                record.0.lock().unwrap().push(expired.user);
                Ok(())
            }
        }))
        .build();
    let mut expected = Vec::new();
    for i in 0..30 {
        // Its last digit says how its hook runs.
        let user = format!("user{i}-{}", i % 3);
        tracker
            .check(
                Some(&subject(&format!("s{i}"), &user)),
                RequestKind::Activity,
            )
            .await;
        expected.push(user);
    }
    clock.advance(Duration::from_secs(61));
    assert_eq!(tracker.sweep().await.unwrap().logouts, 30);
    // sweep() waits for the hooks it handed over.
    let mut users = finished.users();
    users.sort();
    expected.sort();
    assert_eq!(users, expected, "every hook ran once, to its end");
    let stats = tracker.stats();
    assert_eq!(stats.hooks_succeeded, 30, "{stats:?}");
    assert_eq!(stats.logouts_running, 0, "{stats:?}");
}
