//! The background sweeper on the real clock: warnings and logouts arrive
//! within 1 s of their due time (seconds-long timeouts, no minutes of sleep).

use std::time::{Duration, Instant};

use timeout_core::{Notification, Policy, RequestKind, Subject, Tracker};

#[tokio::test]
async fn warning_and_logout_arrive_within_a_second_of_their_due_time() {
    let tracker = Tracker::new(
        Policy::builder()
            .enabled(true)
            .idle_timeout(Duration::from_secs(2))
            .warn_before(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let sweeper = tracker.spawn_sweeper();
    let alice = Subject::new("s1", "alice").unwrap();
    let mut events = tracker.subscribe(&alice);
    let start = Instant::now();
    let decision = tracker.check(Some(&alice), RequestKind::Activity).await;
    assert!(decision.allows());

    let warning = recv(&mut events).await;
    let warned_after = start.elapsed();
    assert_eq!(warning, Some(Notification::warning(Duration::from_secs(1))));
    assert!(
        warned_after >= Duration::from_millis(990) && warned_after < Duration::from_secs(2),
        "warning due at 1 s arrived at {warned_after:?}"
    );
    let logout = recv(&mut events).await;
    let logged_out_after = start.elapsed();
    assert_eq!(logout, Some(Notification::logout()));
    assert!(
        logged_out_after >= Duration::from_millis(1_990)
            && logged_out_after < Duration::from_secs(3),
        "logout due at 2 s arrived at {logged_out_after:?}"
    );
    assert_eq!(
        recv(&mut events).await,
        None,
        "the stream ends after the logout"
    );
    assert!(sweeper.is_running());
    sweeper.stop();
}

async fn recv(events: &mut timeout_core::events::Subscription) -> Option<Notification> {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("no notification within 5 s: the sweeper is not running")
}
