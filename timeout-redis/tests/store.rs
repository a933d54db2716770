//! The Redis store under one tracker and several, against a real
//! redis-server started by each test on a free port.

mod support;

use std::{collections::BTreeMap, time::Duration};

use support::{allowed, policy, replica, sleep_ms, subject, total_hooks};
use test_redis::RedisServer;
use timeout_core::{Decision, Notification, RequestKind, Store, Timestamp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_logs_out_once_and_remembers_the_session() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "gate", policy(1_000, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    assert_eq!(a.tracker.active_count().await.unwrap(), 1);
    sleep_ms(1_300).await;
    // Two requests race past the deadline: one claims, both are refused.
    let (first, second) = tokio::join!(
        a.tracker.check(Some(&alice), RequestKind::Passive),
        a.tracker.check(Some(&alice), RequestKind::Activity)
    );
    assert_eq!((first, second), (Decision::TimedOut, Decision::TimedOut));
    assert_eq!(a.hooks.counts(), BTreeMap::from([("alice".into(), 1)]));
    assert_eq!(a.tracker.check_session("s1").await, Decision::TimedOut);
    assert_eq!(a.tracker.check_session("s2").await, Decision::NotTracked);
    assert_eq!(a.tracker.active_count().await.unwrap(), 0);
    // Logging in again with the same session id starts a new period.
    assert!(allowed(a.tracker.login(&alice).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_session_is_answered_without_a_round_trip_per_request() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "hot", policy(60_000, 10_000)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    let first = a.tracker.deadline(&alice).await.unwrap().unwrap();
    sleep_ms(100).await;
    let before = redis.calls(None);
    let requests = 20_000;
    for i in 0..requests {
        let kind = if i % 2 == 0 {
            RequestKind::Activity
        } else {
            RequestKind::Passive
        };
        let check = a.tracker.check(Some(&alice), kind);
        assert!(
            check.now_or_never().is_some(),
            "request {i} waited for Redis"
        );
        assert!(allowed(check.await));
    }
    a.store.flush().await.unwrap();
    let per_request = (redis.calls(None) - before) as f64 / f64::from(requests);
    assert!(
        per_request <= 0.05,
        "{per_request} Redis commands per request"
    );
    assert!(a.store.stats().flushed >= 1, "the activity reached Redis");
    // And it did move the deadline there: a replica that never saw the
    // activity reads the later deadline from Redis.
    let b = replica(&redis.url(), "hot", policy(60_000, 10_000)).await;
    let moved = b.tracker.deadline(&alice).await.unwrap().unwrap();
    assert!(
        moved.as_millis() >= first.as_millis() + 100,
        "{first:?} -> {moved:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_activity_reaches_redis_and_keeps_the_key_alive_on_other_replicas() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "flush", policy(4_000, 0)).await;
    let b = replica(&redis.url(), "flush", policy(4_000, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    // Activity on A only, answered locally, for longer than the timeout.
    for _ in 0..12 {
        sleep_ms(500).await;
        assert!(allowed(
            a.tracker.check(Some(&alice), RequestKind::Activity).await
        ));
        b.tracker.sweep().await.unwrap();
    }
    // B sees the key alive (its sweeps never logged it out).
    assert!(allowed(
        b.tracker.check(Some(&alice), RequestKind::Passive).await
    ));
    assert!(total_hooks([&a, &b]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_warn_and_log_out_each_user_exactly_once_on_any_socket() {
    let redis = RedisServer::start();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(&redis.url(), "three", policy(2_500, 1_000)).await);
    }
    let users: Vec<_> = (0..30)
        .map(|i| subject(&format!("s{i}"), &format!("user{i}")))
        .collect();
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        // Requests on one replica, the socket on the next.
        let requests = &replicas[i % 3].tracker;
        assert!(allowed(
            requests.check(Some(user), RequestKind::Activity).await
        ));
        sockets.push(replicas[(i + 1) % 3].tracker.subscribe(user));
    }
    let sweepers: Vec<_> = replicas.iter().map(|r| r.tracker.spawn_sweeper()).collect();
    let mut received = Vec::new();
    for socket in &mut sockets {
        let mut got = Vec::new();
        while let Ok(Some(n)) = tokio::time::timeout(Duration::from_secs(6), socket.recv()).await {
            got.push(n);
        }
        received.push(got);
    }
    // Hooks run after the logout is sent: give the last ones time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while total_hooks(&replicas).len() < users.len() && tokio::time::Instant::now() < deadline {
        sleep_ms(50).await;
    }
    drop(sweepers);
    for (i, got) in received.iter().enumerate() {
        assert_eq!(
            got,
            &[
                Notification::warning(Duration::from_secs(1)),
                Notification::logout()
            ],
            "user{i}"
        );
    }
    let hooks = total_hooks(&replicas);
    assert_eq!(hooks.len(), 30, "{hooks:?}");
    assert!(hooks.values().all(|n| *n == 1), "{hooks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_acknowledged_in_part_is_taken_over_for_its_rest_only() {
    let redis = RedisServer::start();
    let timing = support::timing(0);
    // One shard: the three logouts are claimed as one batch.
    let one_shard = || support::builder(&redis.url(), "part").shards(1);
    let a = support::replica_on(
        one_shard(),
        policy(500, 0),
        timeout_core::clock::SystemClock,
    )
    .await;
    for user in ["alice", "bob", "carol"] {
        assert!(allowed(
            a.tracker
                .check(Some(&subject(user, user)), RequestKind::Activity)
                .await
        ));
    }
    sleep_ms(700).await;
    let claimed = a
        .store
        .claim_due(Timestamp::NEVER, timing, 10)
        .await
        .unwrap();
    let claims: Vec<(String, timeout_core::store::Claim)> = claimed
        .iter()
        .map(|due| match due {
            timeout_core::store::Due::Expiry(e) => (e.key.clone(), e.claim.clone().unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(claims.len(), 3);
    let batch = |claim: &timeout_core::store::Claim| claim.0.split('|').nth(1).unwrap().to_owned();
    assert!(
        claims.iter().all(|(_, c)| batch(c) == batch(&claims[0].1)),
        "{claims:?}"
    );
    // A handles alice and bob, then dies before carol's hooks finish.
    let handled: Vec<_> = claims
        .iter()
        .filter(|(key, _)| key != "carol")
        .map(|(_, c)| c.clone())
        .collect();
    a.store.ack(&handled).await.unwrap();
    assert_eq!(a.store.stats().held, 1);
    drop(a);
    let b = support::replica_on(
        one_shard(),
        policy(500, 0),
        timeout_core::clock::SystemClock,
    )
    .await;
    sleep_ms(2_200).await; // the lease is 2 s
    let again = b
        .store
        .claim_due(Timestamp::NEVER, timing, 10)
        .await
        .unwrap();
    let carol = &claims.iter().find(|(key, _)| key == "carol").unwrap().1;
    match &again[..] {
        [timeout_core::store::Due::Expiry(e)] => {
            assert_eq!(e.key, "carol");
            assert_eq!(e.claim.as_ref(), Some(carol), "the same run id");
        }
        other => panic!("only carol's logout is run again: {other:?}"),
    }
    b.store.ack(std::slice::from_ref(carol)).await.unwrap();
    assert_eq!(b.store.stats().held, 0);
    assert_eq!(
        redis.command("HLEN {part:0}:claim").as_deref(),
        Some(":0\r\n"),
        "nothing is left claimed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_sessions_are_refused_while_remembered_then_pruned() {
    let redis = RedisServer::start();
    let policy = timeout_core::Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_millis(300))
        .warn_before(Duration::ZERO)
        .remember_timed_out(Duration::from_millis(1_500))
        .build()
        .unwrap();
    let a = support::replica_on(
        support::builder(&redis.url(), "prune").shards(1),
        policy,
        timeout_core::clock::SystemClock,
    )
    .await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    sleep_ms(500).await;
    assert_eq!(a.tracker.sweep().await.unwrap().logouts, 1);
    let remembered = || redis.command("ZCARD {prune:0}:gone");
    assert_eq!(remembered().as_deref(), Some(":1\r\n"));
    assert_eq!(
        a.tracker.check(Some(&alice), RequestKind::Activity).await,
        Decision::TimedOut,
        "refused while remembered"
    );
    sleep_ms(1_700).await;
    a.tracker.sweep().await.unwrap();
    assert_eq!(
        remembered().as_deref(),
        Some(":0\r\n"),
        "the sweep prunes what is forgotten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_replica_died_is_claimed_again_after_its_lease() {
    let redis = RedisServer::start();
    let timing = support::timing(0);
    let a = replica(&redis.url(), "lease", policy(500, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    sleep_ms(700).await;
    // A claims but "dies" before handling: no acknowledgement.
    let claimed = a
        .store
        .claim_due(Timestamp::NEVER, timing, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    drop(a);
    let b = replica(&redis.url(), "lease", policy(500, 0)).await;
    assert!(
        b.store
            .claim_due(Timestamp::NEVER, timing, 10)
            .await
            .unwrap()
            .is_empty()
    );
    sleep_ms(2_200).await; // the lease is 2 s
    let again = b
        .store
        .claim_due(Timestamp::NEVER, timing, 10)
        .await
        .unwrap();
    assert_eq!(again, claimed, "the same claim, with the same id");
    // A third replica does not get it while B holds it, even past the
    // lease: B renews it until it acknowledges.
    let c = replica(&redis.url(), "lease", policy(500, 0)).await;
    sleep_ms(3_000).await;
    assert!(
        c.store
            .claim_due(Timestamp::NEVER, timing, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(b.store.stats().renewed >= 1);
    // B acknowledges it: nobody claims it again.
    let timeout_core::store::Due::Expiry(expired) = &again[0] else {
        panic!("{again:?}")
    };
    b.store
        .ack(&[expired.claim.clone().unwrap()])
        .await
        .unwrap();
    assert_eq!(b.store.stats().held, 0);
    sleep_ms(2_200).await;
    assert!(
        c.store
            .claim_due(Timestamp::NEVER, timing, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_logout_ends_one_session_everywhere_and_refuses_its_replay() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "logout", policy(60_000, 0)).await;
    let b = replica(&redis.url(), "logout", policy(60_000, 0)).await;
    let (s1, s2) = (subject("s1", "alice"), subject("s2", "alice"));
    assert!(allowed(
        a.tracker.check(Some(&s1), RequestKind::Activity).await
    ));
    assert!(allowed(
        b.tracker.check(Some(&s2), RequestKind::Activity).await
    ));
    assert!(allowed(
        b.tracker.check(Some(&s1), RequestKind::Activity).await
    ));
    assert_eq!(b.store.stats().cached, 1);
    // s1's tab on B has its socket open there.
    let mut s1_socket_on_b = b.tracker.subscribe(&s1);
    let mut s2_socket_on_b = b.tracker.subscribe(&s2);
    a.tracker.logout(&s1).await.unwrap();
    // B closes s1's socket (and only s1's) when it hears of the logout.
    let closed = tokio::time::timeout(Duration::from_secs(3), s1_socket_on_b.recv()).await;
    assert_eq!(closed, Ok(None), "s1's socket on B ends without a message");
    assert_eq!(
        s2_socket_on_b.try_next(),
        Ok(None),
        "s2's socket stays open"
    );
    // A replayed cookie of s1 is refused on either replica: B no longer
    // answers it from its cache, and Redis remembers the logout.
    for replica in [&a, &b] {
        assert_eq!(
            replica
                .tracker
                .check(Some(&s1), RequestKind::Activity)
                .await,
            Decision::TimedOut
        );
        assert_eq!(
            replica.tracker.check_session("s1").await,
            Decision::TimedOut
        );
    }
    assert!(allowed(
        b.tracker.check(Some(&s2), RequestKind::Passive).await
    ));
    assert_eq!(a.tracker.active_count().await.unwrap(), 1);
    a.tracker.logout(&s2).await.unwrap();
    assert_eq!(a.tracker.active_count().await.unwrap(), 0);
    // Logging in again (the application calls login) is tracked afresh.
    assert!(allowed(a.tracker.login(&s1).await));
    assert!(
        total_hooks([&a, &b]).is_empty(),
        "an explicit logout runs no hook"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_slower_than_the_lease_runs_once_while_other_replicas_sweep() {
    let redis = RedisServer::start();
    let lease = support::builder(&redis.url(), "slow")
        .lease(Duration::from_secs(1))
        .command_timeout(Duration::from_millis(400));
    let slow = support::replica_with_hook_delay(lease.clone(), policy(500, 0), 3_000).await;
    let other = support::replica_with_hook_delay(lease, policy(500, 0), 0).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        slow.tracker
            .check(Some(&alice), RequestKind::Activity)
            .await
    ));
    sleep_ms(700).await;
    let sweeping = slow.tracker.spawn_sweeper();
    sleep_ms(300).await; // the slow replica has claimed alice
    let other_sweeper = other.tracker.spawn_sweeper();
    // Three leases pass while the hook runs; the other replica sweeps all
    // along and never gets the claim.
    sleep_ms(4_000).await;
    drop((sweeping, other_sweeper));
    assert_eq!(
        total_hooks([&slow, &other]),
        BTreeMap::from([("alice".into(), 1)])
    );
    assert_eq!(slow.store.stats().held, 0, "acknowledged once done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_of_a_user_timed_out_unswept_starts_afresh() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "replace", policy(500, 0)).await;
    let old = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&old), RequestKind::Activity).await
    ));
    sleep_ms(700).await;
    let new = subject("s2", "alice");
    assert!(allowed(
        a.tracker.check(Some(&new), RequestKind::Activity).await
    ));
    assert_eq!(a.hooks.counts(), BTreeMap::from([("alice".into(), 1)]));
    assert_eq!(
        a.tracker.check(Some(&old), RequestKind::Passive).await,
        Decision::TimedOut
    );
    assert!(allowed(
        a.tracker.check(Some(&new), RequestKind::Passive).await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_names_and_session_ids_never_reach_key_syntax() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "names", policy(500, 0)).await;
    let odd = subject("sess {1}:x\n", "{evil}:user *\u{e9}");
    assert!(allowed(
        a.tracker.check(Some(&odd), RequestKind::Activity).await
    ));
    let keys = redis.command("KEYS *").unwrap();
    // Names live inside the shard's hashes, never in key names.
    assert!(!keys.contains("evil") && !keys.contains('\u{e9}'), "{keys}");
    // The user is the key (scope by user): one member, escaped.
    support::shard_of(&redis, "%7Bevil%7D%3Auser%20%2A%C3%A9");
    sleep_ms(700).await;
    let report = a.tracker.sweep().await.unwrap();
    assert_eq!(report.logouts, 1);
    assert_eq!(
        a.hooks.counts(),
        BTreeMap::from([("{evil}:user *\u{e9}".into(), 1)])
    );
    assert_eq!(
        a.tracker.check_session("sess {1}:x\n").await,
        Decision::TimedOut
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_survive_a_replica_restart() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "restart", policy(1_500, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    let deadline = a.tracker.deadline(&alice).await.unwrap();
    drop(a);
    let b = replica(&redis.url(), "restart", policy(1_500, 0)).await;
    assert_eq!(b.tracker.deadline(&alice).await.unwrap(), deadline);
    sleep_ms(1_700).await;
    assert_eq!(b.tracker.sweep().await.unwrap().logouts, 1);
    assert_eq!(b.hooks.counts(), BTreeMap::from([("alice".into(), 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_must_share_the_shard_count() {
    let redis = RedisServer::start();
    let _a = support::builder(&redis.url(), "shards")
        .shards(8)
        .connect()
        .await
        .unwrap();
    let err = support::builder(&redis.url(), "shards")
        .shards(16)
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("same .shards"), "{err}");
    let err = support::builder(&redis.url(), "a{b")
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("prefix"), "{err}");
    // A lease a slow renewal could outlive is refused before connecting.
    let err = support::builder(&redis.url(), "lease")
        .lease(Duration::from_millis(1_500))
        .command_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("twice the command timeout"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_too_long_for_lua_numbers_are_clamped_not_overflowed() {
    let redis = RedisServer::start();
    let forever = timeout_core::Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::MAX)
        .warn_before(Duration::from_secs(u64::MAX / 2))
        .remember_timed_out(Duration::MAX)
        .build()
        .unwrap();
    let a = replica(&redis.url(), "forever", forever).await;
    let alice = subject("s1", "alice");
    for kind in [RequestKind::Activity, RequestKind::Passive] {
        let decision = a.tracker.check(Some(&alice), kind).await;
        let Decision::Allowed { deadline } = decision else {
            panic!("{decision:?}")
        };
        // Thousands of years ahead, and exact.
        assert!(deadline.as_millis() > 1 << 50, "{deadline:?}");
    }
    assert_eq!(a.tracker.sweep().await.unwrap().logouts, 0);
    a.tracker.logout(&alice).await.unwrap();
    assert_eq!(
        a.tracker.check(Some(&alice), RequestKind::Activity).await,
        Decision::TimedOut,
        "the logout is remembered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_of_one_user_stays_bounded_in_redis() {
    let redis = RedisServer::start();
    let store = support::builder(&redis.url(), "flood")
        .connect()
        .await
        .unwrap();
    let tracker = timeout_core::Tracker::builder(policy(60_000, 0))
        .store(std::sync::Arc::new(store))
        .max_sessions_per_key(10)
        .build();
    let mut refused = 0;
    for i in 0..300 {
        match tracker
            .login(&subject(&format!("flood{i}"), "mallory"))
            .await
        {
            Decision::Allowed { .. } => {}
            Decision::SessionLimit => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 290);
    let shard = support::shard_of(&redis, "mallory");
    let record = redis
        .command(&format!("HGET {shard}:r mallory"))
        .unwrap_or_default();
    // The record's last field lists the sessions.
    let sessions = record
        .lines()
        .nth(1)
        .and_then(|r| r.rsplit(',').next())
        .unwrap_or_else(|| panic!("no record of mallory: {record:?}"));
    assert_eq!(sessions.split(' ').count(), 10, "{record}");
    assert!(allowed(
        tracker
            .check(Some(&subject("flood0", "mallory")), RequestKind::Activity)
            .await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_whose_claimer_died_is_still_sent_before_the_deadline() {
    let redis = RedisServer::start();
    let timing = support::timing(1_500);
    // The lease (2 s) is longer than the warning's lead (1.5 s).
    let a = replica(&redis.url(), "warn", policy(3_000, 1_500)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    sleep_ms(1_600).await;
    // A claims the warning and dies before sending it.
    let claimed = a
        .store
        .claim_due(Timestamp::NEVER, timing, 10)
        .await
        .unwrap();
    assert!(
        matches!(claimed.as_slice(), [timeout_core::store::Due::Warning(_)]),
        "{claimed:?}"
    );
    drop(a);
    let b = replica(&redis.url(), "warn", policy(3_000, 1_500)).await;
    let mut socket = b.tracker.subscribe(&alice);
    let _sweeper = b.tracker.spawn_sweeper();
    // B takes it over within half the time that was left, before the
    // deadline, and sends it.
    let got = tokio::time::timeout(Duration::from_millis(1_300), socket.recv()).await;
    assert!(
        matches!(got, Ok(Some(Notification::Warning { .. }))),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_claimed_at_the_gate_completes_when_its_request_is_dropped() {
    let redis = RedisServer::start();
    let store = support::builder(&redis.url(), "dropped");
    // The hook takes 600 ms; the client gives up after 50.
    let a = support::replica_with_hook_delay(store, policy(500, 0), 600).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    let mut socket = a.tracker.subscribe(&alice);
    sleep_ms(700).await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        a.tracker.check(Some(&alice), RequestKind::Activity),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the request was still waiting for the hook"
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(2), socket.recv()).await,
        Ok(Some(Notification::logout()))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while a.hooks.counts().get("alice") != Some(&1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hook never completed"
        );
        sleep_ms(50).await;
    }
    // Acknowledged, so no other replica runs it again.
    while a.store.stats().held > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the claim was never acknowledged"
        );
        sleep_ms(50).await;
    }
    let b = replica(&redis.url(), "dropped", policy(500, 0)).await;
    sleep_ms(2_500).await; // past the lease
    assert_eq!(b.tracker.sweep().await.unwrap().logouts, 0);
    assert_eq!(total_hooks([&a, &b]), BTreeMap::from([("alice".into(), 1)]));
}
