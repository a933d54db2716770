//! The same store against a real Redis Cluster of three masters.

mod support;

use std::time::Duration;

use support::{policy, replica_on, sleep_ms, subject, total_hooks};
use test_redis::RedisCluster;
use timeout_core::{Decision, Notification, RequestKind, clock::SystemClock};
use timeout_redis::RedisStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_spreads_the_shards_and_times_each_user_out_once() {
    let cluster = RedisCluster::start(3);
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let builder = RedisStore::cluster(cluster.urls())
            .prefix("cl")
            .flush_interval(Duration::from_millis(50))
            .lease(Duration::from_secs(2));
        replicas.push(replica_on(builder, policy(2_500, 1_000), SystemClock).await);
    }
    let users: Vec<_> = (0..40)
        .map(|i| subject(&format!("s{i}"), &format!("u{i}")))
        .collect();
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let decision = replicas[i % 2]
            .tracker
            .check(Some(user), RequestKind::Activity)
            .await;
        assert!(matches!(decision, Decision::Allowed { .. }), "{decision:?}");
        sockets.push(replicas[(i + 1) % 2].tracker.subscribe(user));
    }
    for node in cluster.nodes() {
        let size = node.command("DBSIZE").unwrap_or_default();
        let keys: u64 = size.trim_start_matches(':').trim().parse().unwrap_or(0);
        assert!(
            keys > 0,
            "node {} holds no key: shards are not spread",
            node.port()
        );
    }
    assert_eq!(replicas[0].tracker.active_count().await.unwrap(), 40);
    let sweepers: Vec<_> = replicas.iter().map(|r| r.tracker.spawn_sweeper()).collect();
    for (i, socket) in sockets.iter_mut().enumerate() {
        let mut got = Vec::new();
        while let Ok(Some(n)) = tokio::time::timeout(Duration::from_secs(6), socket.recv()).await {
            got.push(n);
        }
        assert_eq!(
            got,
            [
                Notification::warning(Duration::from_secs(1)),
                Notification::logout()
            ],
            "u{i}"
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while total_hooks(&replicas).len() < users.len() && tokio::time::Instant::now() < deadline {
        sleep_ms(50).await;
    }
    drop(sweepers);
    let hooks = total_hooks(&replicas);
    assert_eq!(hooks.len(), 40, "{hooks:?}");
    assert!(hooks.values().all(|n| *n == 1), "{hooks:?}");
    assert_eq!(replicas[1].tracker.active_count().await.unwrap(), 0);
    assert_eq!(
        replicas[1].tracker.check_session("s3").await,
        Decision::TimedOut
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_and_signs_out_sessions_spread_over_the_masters() {
    let cluster = RedisCluster::start(3);
    let policy = timeout_core::Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .scope(timeout_core::Scope::Session)
        .build()
        .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let builder = RedisStore::cluster(cluster.urls())
            .prefix("ops")
            .flush_interval(Duration::from_millis(50))
            .lease(Duration::from_secs(2));
        replicas.push(replica_on(builder, policy.clone(), SystemClock).await);
    }
    // Twelve sessions of alice land in shards of every master.
    let sessions: Vec<_> = (0..12)
        .map(|i| subject(&format!("a{i}"), "alice"))
        .collect();
    let mut sockets = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        let decision = replicas[i % 2].tracker.login(session).await;
        assert!(matches!(decision, Decision::Allowed { .. }), "{decision:?}");
        sockets.push(replicas[(i + 1) % 2].tracker.subscribe(session));
    }
    let bob = subject("b1", "bob");
    replicas[0].tracker.login(&bob).await;
    assert_eq!(
        replicas[0]
            .tracker
            .sessions_of("alice")
            .await
            .unwrap()
            .len(),
        12
    );
    assert_eq!(
        replicas[1]
            .tracker
            .sign_out_everywhere("alice")
            .await
            .unwrap(),
        12
    );
    for socket in &mut sockets {
        let heard = tokio::time::timeout(Duration::from_secs(3), socket.recv()).await;
        assert_eq!(heard, Ok(Some(Notification::signed_out())));
    }
    let hooks = total_hooks(&replicas);
    assert_eq!(hooks.get("alice"), Some(&12), "{hooks:?}");
    assert_eq!(replicas[0].tracker.active_count().await.unwrap(), 1);
    assert_eq!(
        replicas[0].tracker.check_session("a5").await,
        Decision::TimedOut
    );
}
