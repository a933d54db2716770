//! Redis unreachable, restarted (losing its data), evicting keys, or on
//! skewed replica clocks: no panic, the configured policy answers, tracking
//! resumes by itself, and no session the lost state held is let back in.

mod support;

use std::time::Duration;

use support::{
    Replica, allowed, assert_refused_everywhere, builder, eventually, replica, replica_on,
    sleep_ms, subject, total_hooks, total_state_lost,
};
use test_redis::RedisServer;
use timeout_core::{
    Decision, Notification, Policy, RequestKind,
    clock::{SkewedClock, SystemClock},
    config::StoreUnavailable,
    store::Cause,
};
use timeout_redis::{AfterStateLoss, RedisStore, RedisStoreError};

fn policy(unavailable: StoreUnavailable) -> Policy {
    Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .store_unavailable(unavailable)
        .build()
        .unwrap()
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
    // The restarted Redis kept nothing. A new login is tracked as usual...
    let carol = subject("s3", "carol");
    eventually(10, "a new login is tracked after the restart", async || {
        allowed(closed.tracker.login(&carol).await)
    })
    .await;
    let _sweeper = closed.tracker.spawn_sweeper();
    // ...but alice, whom this replica knew, is logged out (once), never
    // given a fresh idle period, and bob, whom no replica knew, is refused.
    eventually(10, "alice is logged out as lost", async || {
        closed.hooks.counts().get("alice") == Some(&1)
    })
    .await;
    assert_eq!(closed.hooks.causes()["alice"], [Cause::StateLost]);
    assert_refused_everywhere([&alice, &bob], &[&closed]).await;
    assert_eq!(
        closed.tracker.active_count().await.unwrap(),
        1,
        "carol only"
    );
    assert!(allowed(
        closed
            .tracker
            .check(Some(&carol), RequestKind::Activity)
            .await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_loses_the_state_logs_its_sessions_out_once_everywhere() {
    let mut redis = RedisServer::start();
    let a = replica(&redis.url(), "lost", support::policy(60_000, 0)).await;
    let b = replica(&redis.url(), "lost", support::policy(60_000, 0)).await;
    let users: Vec<_> = (0..20)
        .map(|i| subject(&format!("s{i}"), &format!("user{i}")))
        .collect();
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        assert!(allowed(
            a.tracker.check(Some(user), RequestKind::Activity).await
        ));
        // Half the users have their socket on B, which never saw a request.
        if i % 2 == 0 {
            sockets.push(b.tracker.subscribe(user));
        }
    }
    redis.restart();
    let sweepers = [a.tracker.spawn_sweeper(), b.tracker.spawn_sweeper()];
    eventually(10, "every user is logged out", async || {
        total_hooks([&a, &b]).len() == users.len()
    })
    .await;
    sleep_ms(500).await; // a second run would show by now
    let hooks = total_hooks([&a, &b]);
    assert!(hooks.values().all(|n| *n == 1), "{hooks:?}");
    for socket in &mut sockets {
        let got = tokio::time::timeout(Duration::from_secs(5), socket.recv()).await;
        assert_eq!(got, Ok(Some(Notification::logout())));
    }
    assert_eq!(total_state_lost([&a, &b]), 1, "one report of the loss");
    // No replica lets them back in, whichever they come to.
    assert_refused_everywhere(&users, &[&a, &b]).await;
    for user in &users {
        assert_eq!(
            b.tracker.check_session(user.session()).await,
            Decision::TimedOut
        );
    }
    assert_eq!(
        total_hooks([&a, &b]).len(),
        users.len(),
        "refusals ran no hook"
    );
    drop(sweepers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_keys_are_logged_out_not_tracked_afresh() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "evict", support::policy(60_000, 0)).await;
    let (alice, carol) = (subject("s1", "alice"), subject("s3", "carol"));
    for user in [&alice, &carol] {
        assert!(allowed(
            a.tracker.check(Some(user), RequestKind::Activity).await
        ));
    }
    // Alice's record is evicted, her due entry stays: a replica that never
    // knew her finds that at her next request.
    let alice_shard = support::shard_of(&redis, "alice");
    redis
        .command(&format!("HDEL {alice_shard}:r alice"))
        .unwrap();
    // Carol's record and due entry both go: the replica that knew her finds
    // out when it sends her activity.
    let carol_shard = support::shard_of(&redis, "carol");
    redis
        .command(&format!("HDEL {carol_shard}:r carol"))
        .unwrap();
    redis
        .command(&format!("ZREM {carol_shard}:due carol"))
        .unwrap();
    let b = replica(&redis.url(), "evict", support::policy(60_000, 0)).await;
    let _sweepers = [a.tracker.spawn_sweeper(), b.tracker.spawn_sweeper()];
    assert_eq!(
        b.tracker.check(Some(&alice), RequestKind::Activity).await,
        Decision::TimedOut,
        "alice is not tracked afresh"
    );
    assert!(allowed(
        a.tracker.check(Some(&carol), RequestKind::Activity).await
    ));
    eventually(10, "both are logged out", async || {
        total_hooks([&a, &b]).len() == 2
    })
    .await;
    assert_refused_everywhere([&alice, &carol], &[&a, &b]).await;
    let hooks = total_hooks([&a, &b]);
    assert!(hooks.values().all(|n| *n == 1), "{hooks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_logs_its_key_out_once_not_in() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "garbled", support::policy(60_000, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    let shard = support::shard_of(&redis, "alice");
    redis
        .command(&format!("HSET {shard}:r alice garbled"))
        .unwrap();
    // Another replica, which never knew alice, finds the record unreadable.
    let b = replica(&redis.url(), "garbled", support::policy(60_000, 0)).await;
    let _sweepers = [a.tracker.spawn_sweeper(), b.tracker.spawn_sweeper()];
    assert_eq!(
        b.tracker.check(Some(&alice), RequestKind::Activity).await,
        Decision::TimedOut
    );
    eventually(10, "alice is logged out", async || {
        total_hooks([&a, &b]).get("alice") == Some(&1)
    })
    .await;
    // Replica a answers alice from its cache until b's logout reaches it
    // through the event stream: the hooks may run before that.
    eventually(10, "replica a hears of the logout", async || {
        a.store.stats().received > 0
    })
    .await;
    assert_refused_everywhere([&alice], &[&a, &b]).await;
    assert_eq!(total_hooks([&a, &b]).get("alice"), Some(&1), "once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retracking_after_a_loss_is_a_choice() {
    let mut redis = RedisServer::start();
    let store = builder(&redis.url(), "retrack").after_state_loss(AfterStateLoss::Retrack);
    let a = replica_on(store, support::policy(60_000, 0), SystemClock).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    redis.restart();
    eventually(10, "alice is tracked again", async || {
        a.tracker.check(Some(&alice), RequestKind::Activity).await;
        a.tracker.active_count().await.unwrap_or(0) == 1
    })
    .await;
    a.tracker.sweep().await.unwrap();
    assert!(a.hooks.counts().is_empty(), "nobody logged out");
    assert_eq!(a.hooks.state_lost().len(), 1, "the loss is still reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_replica_across_dropped_connections() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "catchup", support::policy(1_500, 0)).await;
    let b = replica(&redis.url(), "catchup", support::policy(1_500, 0)).await;
    let users: Vec<_> = (0..30)
        .map(|i| subject(&format!("s{i}"), &format!("user{i}")))
        .collect();
    let mut sockets = Vec::new();
    for user in &users {
        assert!(allowed(
            a.tracker.check(Some(user), RequestKind::Activity).await
        ));
        sockets.push(b.tracker.subscribe(user));
    }
    // While A logs them out, the connections reading events are cut again
    // and again (as a flaky network or a proxy would).
    let killer = {
        let port = redis.port();
        std::thread::spawn(move || {
            let mut kills = 0;
            for _ in 0..40 {
                let clients = test_redis::command_at(port, "CLIENT LIST").unwrap_or_default();
                for line in clients.lines() {
                    if line.contains("cmd=xread")
                        && let Some(id) = line.split(' ').find_map(|f| f.strip_prefix("id="))
                    {
                        test_redis::command_at(port, &format!("CLIENT KILL ID {id}"));
                        kills += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            kills
        })
    };
    let _sweeper = a.tracker.spawn_sweeper();
    for (i, socket) in sockets.iter_mut().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
        assert_eq!(got, Ok(Some(Notification::logout())), "user{i}");
    }
    let kills = killer.join().unwrap();
    assert!(kills >= 10, "only {kills} reading connections were cut");
    assert_eq!(b.store.stats().event_gaps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reads_events_again_after_redis_comes_back() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_claimed_event_is_set_aside_not_blocking_its_shard() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "bad", support::policy(500, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(
        a.tracker.check(Some(&alice), RequestKind::Activity).await
    ));
    let tag = support::shard_of(&redis, "alice");
    // Another program (or a bug) left an unreadable claim in alice's shard,
    // its lease long run out.
    redis
        .command(&format!("HSET {tag}:claim x:bogus:1 {{not-json"))
        .unwrap();
    redis
        .command(&format!("ZADD {tag}:lease 0 x:bogus:1"))
        .unwrap();
    sleep_ms(700).await;
    assert_eq!(
        a.tracker.sweep().await.unwrap().logouts,
        1,
        "alice is logged out"
    );
    assert_eq!(a.hooks.counts().get("alice"), Some(&1));
    assert_eq!(
        redis
            .command(&format!("HEXISTS {tag}:bad x:bogus:1#0"))
            .as_deref(),
        Some(":1\r\n"),
        "kept aside for an operator"
    );
    assert_eq!(
        redis
            .command(&format!("ZSCORE {tag}:lease x:bogus:1"))
            .as_deref(),
        Some("$-1\r\n"),
        "no longer claimed again and again"
    );
    assert!(a.tracker.sweep().await.is_ok());
}

/// Asserts that logging `user` out is refused by Redis with a message that
/// says `what_to_do`.
async fn assert_logout_refused(replica: &Replica, user: &timeout_core::Subject, what_to_do: &str) {
    let err = replica
        .tracker
        .logout(user)
        .await
        .expect_err("a write refused by Redis");
    let text = err.to_string();
    assert!(
        matches!(err, timeout_core::store::StoreError::Refused { .. }) && text.contains(what_to_do),
        "{text}"
    );
}

/// Out of memory, a read-only replica, a user without permissions: Redis
/// answers, but refuses until its operator changes something. The error
/// says what, instead of "unreachable" or "corrupt data".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_refuses_commands_says_what_to_change() {
    let redis = RedisServer::start();
    let policy = policy(StoreUnavailable::Refuse);
    let replica = replica(&redis.url(), "refusals", policy).await;
    let alice = timeout_core::Subject::new("s1", "alice").expect("valid");
    assert!(allowed(replica.tracker.login(&alice).await));

    redis
        .command("CONFIG SET maxmemory 1")
        .expect("Redis answers");
    assert_logout_refused(&replica, &alice, "raise its maxmemory").await;
    redis
        .command("CONFIG SET maxmemory 0")
        .expect("Redis answers");

    let primary = RedisServer::start();
    redis
        .command(&format!("REPLICAOF 127.0.0.1 {}", primary.port()))
        .expect("Redis answers");
    assert_logout_refused(&replica, &alice, "point the store at the primary").await;
    redis.command("REPLICAOF NO ONE").expect("Redis answers");

    redis
        .command("ACL SETUSER reader on >secret ~* +@read +ping +hello +client")
        .expect("Redis answers");
    let url = format!("redis://reader:secret@127.0.0.1:{}", redis.port());
    let refused = RedisStore::builder(&url)
        .prefix("refusals")
        .connect()
        .await
        .expect_err("a user who may not run scripts");
    let text = refused.to_string();
    assert!(
        matches!(refused, RedisStoreError::Refused { .. }) && text.contains("+@scripting"),
        "{text}"
    );
}
