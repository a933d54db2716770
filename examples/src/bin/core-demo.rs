//! The timeout core on its own, in a terminal: three users, a 5-second
//! timeout with a warning 3 seconds before, and every notification, hook call
//! and audit record printed as it happens. No web framework, no Redis.
//!
//! ```text
//! cargo run -p examples --bin core-demo                      # built-in settings
//! cargo run -p examples --bin core-demo -- my.properties     # your timeout.session.* keys
//! ```

use std::{process::ExitCode, time::Duration};

use timeout_core::{
    Decision, Policy, RequestKind, Subject, Tracker, config::PolicyBuilder, hook_fn,
};

const DEMO_PROPERTIES: &str = "\
timeout.session.enabled=true
timeout.session.seconds=5
timeout.session.notification.seconds=3
timeout.session.exception.usernames=monitor
";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_target(true)
        .with_max_level(tracing::Level::INFO)
        .init();
    let policy = match load_policy() {
        Ok(policy) => policy,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("effective policy: {policy}");
    if !policy.enabled() {
        println!("nothing to show: set timeout.session.enabled=true");
        return ExitCode::SUCCESS;
    }
    let tracker = Tracker::builder(policy)
        .hook(hook_fn("free license seat", |expired| async move {
            println!(
                "hook: freeing the license seat of {:?} ({} session(s))",
                expired.user,
                expired.sessions.len()
            );
            Ok(())
        }))
        .build();
    let _sweeper = tracker.spawn_sweeper();

    // Constant, non-empty names: these cannot fail.
    let subject = |session: &str, user: &str| Subject::new(session, user).expect("valid names");
    let alice = subject("alice-session", "alice");
    let bob = subject("bob-session", "bob");
    let monitor = subject("monitor-session", "monitor");
    for s in [&alice, &bob, &monitor] {
        let decision = tracker.check(Some(s), RequestKind::Activity).await;
        println!("{:>8} logs in: {}", s.user(), describe(&tracker, decision));
        let mut events = tracker.subscribe(s);
        let user = s.user().to_owned();
        tokio::spawn(async move {
            while let Some(n) = events.recv().await {
                println!("{user:>8} socket <- {}", n.to_json());
            }
        });
    }

    // Alice keeps working; Bob only has a dashboard open (passive polling);
    // the monitor account is exempt.
    let longest = tracker.policy().longest_timeout() + Duration::from_secs(2);
    let start = tokio::time::Instant::now();
    while start.elapsed() < longest {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let a = tracker.check(Some(&alice), RequestKind::Activity).await;
        let b = tracker.check(Some(&bob), RequestKind::Passive).await;
        println!(
            "t={:>2}s alice (active): {}; bob (dashboard poll): {}",
            start.elapsed().as_secs(),
            describe(&tracker, a),
            describe(&tracker, b),
        );
    }
    tracker.logout(&alice).await.ok();
    println!("alice logged out explicitly: no timeout event follows");
    ExitCode::SUCCESS
}

fn describe(tracker: &Tracker, decision: Decision) -> String {
    match decision {
        Decision::Allowed { deadline } => {
            let left = deadline.saturating_since(tracker.now());
            format!("allowed, {:.1} s left", left.as_secs_f64())
        }
        Decision::TimedOut => "refused: timed out (401)".to_owned(),
        other => format!("{other:?}"),
    }
}

fn load_policy() -> Result<Policy, timeout_core::ConfigError> {
    match std::env::args().nth(1) {
        Some(path) => PolicyBuilder::default().properties_file(path)?.build(),
        None => Policy::from_properties(DEMO_PROPERTIES),
    }
}
