//! Redis unreachable, restarted, or on skewed replica clocks: no panic, the
//! configured policy answers, and tracking resumes by itself.

mod support;

use std::time::Duration;

use support::{allowed, builder, replica, replica_on, sleep_ms, subject, total_hooks};
use test_redis::RedisServer;
use timeout_core::{Decision, Policy, RequestKind, SkewedClock, StoreUnavailable, SystemClock};
use timeout_redis::{RedisStore, RedisStoreError};

fn policy(unavailable: StoreUnavailable) -> Policy {
    Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .store_unavailable(unavailable)
        .build()
        .unwrap()
}

/// Polls `check` until it holds, for at most `secs`.
async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        sleep_ms(100).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_answered_by_the_policy_and_tracking_resumes() {
    let mut redis = RedisServer::start();
    let closed = replica(&redis.url(), "outage", policy(StoreUnavailable::Refuse)).await;
    let open = replica(&redis.url(), "outage", policy(StoreUnavailable::Allow)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        closed
            .tracker
            .check(Some(&alice), RequestKind::Activity)
            .await
    ));

    redis.kill();
    let bob = subject("s2", "bob");
    let started = std::time::Instant::now();
    assert_eq!(
        closed
            .tracker
            .check(Some(&bob), RequestKind::Activity)
            .await,
        Decision::Unavailable,
        "fail closed by default"
    );
    assert_eq!(
        open.tracker.check(Some(&bob), RequestKind::Activity).await,
        Decision::Unchecked
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an outage must not hang requests: {:?}",
        started.elapsed()
    );
    // A hot session whose deadline is far is still answered from what
    // Redis said last; its activity is kept for later.
    assert!(allowed(
        closed
            .tracker
            .check(Some(&alice), RequestKind::Activity)
            .await
    ));
    assert!(closed.tracker.sweep().await.is_err());
    sleep_ms(300).await; // flushes fail meanwhile, quietly

    redis.restart();
    eventually(10, "tracking resumes after the restart", async || {
        allowed(
            closed
                .tracker
                .check(Some(&bob), RequestKind::Activity)
                .await,
        )
    })
    .await;
    assert!(closed.tracker.sweep().await.is_ok());
    // The restarted Redis kept nothing: alice's kept activity finds no key,
    // and her next request that reaches Redis starts tracking her again.
    eventually(10, "alice is tracked again", async || {
        closed
            .tracker
            .check(Some(&alice), RequestKind::Activity)
            .await;
        closed.tracker.active_count().await.unwrap_or(0) == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_subscribes_again_after_redis_comes_back() {
    let mut redis = RedisServer::start();
    let a = replica(&redis.url(), "resub", policy(StoreUnavailable::Refuse)).await;
    let b = replica(&redis.url(), "resub", policy(StoreUnavailable::Refuse)).await;
    redis.restart();
    let mut n = 0;
    eventually(15, "B hears A after the restart", async || {
        n += 1;
        let user = subject(&format!("s{n}"), "alice");
        if allowed(a.tracker.check(Some(&user), RequestKind::Activity).await) {
            let _ = a.tracker.logout(&user).await;
        }
        sleep_ms(200).await;
        b.store.stats().received > 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_no_redis_says_what_to_check() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, RedisStoreError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&port.to_string()) && message.contains("redis-cli"),
        "{message}"
    );
    let err = RedisStore::builder("http://nope")
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redis://host:port"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_30_s_apart_time_users_out_on_redis_time() {
    let redis = RedisServer::start();
    let skew = Duration::from_secs(30);
    let policy = support::policy(2_000, 0);
    let ahead = replica_on(
        builder(&redis.url(), "skew"),
        policy.clone(),
        SkewedClock::ahead(SystemClock, skew),
    )
    .await;
    let behind = replica_on(
        builder(&redis.url(), "skew"),
        policy,
        SkewedClock::behind(SystemClock, skew),
    )
    .await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        behind
            .tracker
            .check(Some(&alice), RequestKind::Activity)
            .await
    ));
    sleep_ms(1_000).await;
    // By its own clock the replica ahead is 29 s past alice's deadline.
    assert_eq!(ahead.tracker.sweep().await.unwrap().logouts, 0);
    assert!(allowed(
        ahead
            .tracker
            .check(Some(&alice), RequestKind::Passive)
            .await
    ));
    let left = ahead.tracker.time_left(&alice).await.unwrap().unwrap();
    assert!(
        left > Duration::from_millis(500) && left < Duration::from_millis(1_500),
        "{left:?}"
    );
    sleep_ms(1_300).await;
    // By its own clock the replica behind has 28 s to go.
    assert_eq!(behind.tracker.sweep().await.unwrap().logouts, 1);
    assert_eq!(total_hooks([&ahead, &behind]).get("alice"), Some(&1));
}
