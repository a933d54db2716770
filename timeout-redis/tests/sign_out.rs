//! Operators signing users out, across replicas of one Redis: each key is
//! claimed once however many operators race, the sockets on every replica
//! hear of it, the hooks run once, also when the replica that claimed it
//! dies before running them.

mod support;

use std::{collections::BTreeMap, time::Duration};

use support::{
    allowed, assert_refused_everywhere, builder, policy, replica, replica_on, sleep_ms, subject,
    total_hooks,
};
use test_redis::RedisServer;
use timeout_core::{
    Notification, Policy, RequestKind, Scope, Store, Timestamp, clock::SystemClock, store::Cause,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_operators_sign_a_user_out_once_and_every_replica_hears_of_it() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "ops", policy(60_000, 0)).await;
    let b = replica(&redis.url(), "ops", policy(60_000, 0)).await;
    let (s1, s2, bob) = (
        subject("s1", "alice"),
        subject("s2", "alice"),
        subject("s3", "bob"),
    );
    assert!(allowed(a.tracker.login(&s1).await));
    assert!(allowed(b.tracker.login(&s2).await));
    assert!(allowed(b.tracker.login(&bob).await));
    let mut socket_on_b = b.tracker.subscribe(&s2);
    let listed = a.tracker.sessions_of("alice").await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|s| s.time_left > Duration::from_secs(55)));

    let (on_a, on_b) = tokio::join!(
        a.tracker.sign_out_everywhere("alice"),
        b.tracker.sign_out_everywhere("alice")
    );
    assert_eq!(
        on_a.unwrap() + on_b.unwrap(),
        2,
        "each session is signed out by one operator"
    );
    let heard = tokio::time::timeout(Duration::from_secs(3), socket_on_b.recv()).await;
    assert_eq!(heard, Ok(Some(Notification::signed_out())));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(1), socket_on_b.recv()).await,
        Ok(None),
        "then the socket ends"
    );
    assert_eq!(total_hooks([&a, &b]), BTreeMap::from([("alice".into(), 1)]));
    let causes: Vec<Cause> = [&a, &b]
        .iter()
        .flat_map(|r| r.hooks.causes().remove("alice").unwrap_or_default())
        .collect();
    assert_eq!(causes, [Cause::SignedOut]);
    assert_refused_everywhere([&s1, &s2], &[&a, &b]).await;
    assert!(allowed(
        a.tracker.check(Some(&bob), RequestKind::Activity).await
    ));
    assert!(a.tracker.sessions_of("alice").await.unwrap().is_empty());
    assert_eq!(b.tracker.sessions_of("bob").await.unwrap().len(), 1);
    assert_eq!(
        a.store.stats().held + b.store.stats().held,
        0,
        "acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_whose_replica_died_is_finished_by_another_as_a_sign_out() {
    let redis = RedisServer::start();
    let a = replica(&redis.url(), "died", policy(60_000, 0)).await;
    let alice = subject("s1", "alice");
    assert!(allowed(a.tracker.login(&alice).await));
    // A claims the sign-out, then dies before running its hooks.
    let claimed = a
        .store
        .claim_now("alice", Timestamp::NEVER, support::timing(0))
        .await
        .unwrap()
        .expect("alice is tracked");
    assert_eq!(claimed.cause, Cause::SignedOut);
    drop(a);
    let b = replica(&redis.url(), "died", policy(60_000, 0)).await;
    assert_refused_everywhere([&alice], &[&b]).await;
    assert_eq!(b.tracker.sweep().await.unwrap().logouts, 0, "leased to A");
    sleep_ms(2_200).await; // the lease is 2 s
    assert_eq!(b.tracker.sweep().await.unwrap().logouts, 1);
    assert_eq!(
        b.hooks.causes().remove("alice"),
        Some(vec![Cause::SignedOut])
    );
    sleep_ms(2_200).await;
    assert_eq!(b.tracker.sweep().await.unwrap().logouts, 0, "and only once");
    assert_eq!(b.hooks.counts(), BTreeMap::from([("alice".into(), 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_session_scope_a_users_sessions_are_found_among_thousands() {
    let redis = RedisServer::start();
    let policy = Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .scope(Scope::Session)
        .build()
        .unwrap();
    // One shard: its records take several scan steps.
    let a = replica_on(builder(&redis.url(), "scan").shards(1), policy, SystemClock).await;
    let odd = "a,b c{d}:é";
    for i in 0..3_000 {
        assert!(allowed(
            a.tracker
                .login(&subject(&format!("other-{i}"), &format!("user-{}", i % 50)))
                .await
        ));
        if i % 1_000 == 7 {
            assert!(allowed(
                a.tracker.login(&subject(&format!("odd-{i}"), odd)).await
            ));
        }
    }
    // A user whose name is another's session id is not confused with it.
    assert!(allowed(a.tracker.login(&subject(odd, "mallory")).await));
    // A record of hers that cannot be read (its session wrongly escaped)
    // is skipped, not fatal to the listing.
    redis
        .command("HSET {scan:0}:r odd-bad 9999999999999,0,0,a%2Cb%20c%7Bd%7D%3A%C3%A9,%zz")
        .expect("redis answers");
    let found = a.store.keys_of_user(odd, Scope::Session).await.unwrap();
    let mut keys: Vec<_> = found.iter().map(|k| k.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["odd-1007", "odd-2007", "odd-7"]);
    assert!(
        found
            .iter()
            .all(|k| k.user == odd && k.sessions == [k.key.clone()])
    );
    assert_eq!(a.tracker.sign_out_everywhere(odd).await.unwrap(), 3);
    assert_eq!(a.hooks.counts().get(odd), Some(&3));
    assert_eq!(a.tracker.active_count().await.unwrap(), 3_001);
}
