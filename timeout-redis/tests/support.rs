//! Replicas (a tracker on its own `RedisStore`) for the tests, against a
//! real redis-server the test started.

#![allow(dead_code)] // each test file uses part of it

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use timeout_core::{Clock, Decision, Policy, Subject, SystemClock, Tracker, hook_fn};
use timeout_redis::{RedisStore, RedisStoreBuilder};

/// One application replica: a tracker on its own store and connection.
pub struct Replica {
    pub tracker: Tracker,
    pub store: RedisStore,
    pub hooks: HookLog,
}

/// Timeout hook runs per user.
#[derive(Clone, Default)]
pub struct HookLog(Arc<Mutex<BTreeMap<String, u32>>>);

impl HookLog {
    pub fn counts(&self) -> BTreeMap<String, u32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Short intervals so second-long timeouts are precise.
pub fn builder(url: &str, prefix: &str) -> RedisStoreBuilder {
    RedisStore::builder(url)
        .prefix(prefix)
        .flush_interval(Duration::from_millis(50))
        .lease(Duration::from_secs(2))
}

pub fn policy(idle_ms: u64, warn_ms: u64) -> Policy {
    Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_millis(idle_ms))
        .warn_before(Duration::from_millis(warn_ms))
        .build()
        .expect("a valid test policy")
}

pub async fn replica(url: &str, prefix: &str, policy: Policy) -> Replica {
    replica_on(builder(url, prefix), policy, SystemClock).await
}

pub async fn replica_on(builder: RedisStoreBuilder, policy: Policy, clock: impl Clock) -> Replica {
    replica_full(builder, policy, clock, 0).await
}

/// A replica whose hook takes `delay_ms` before it records its run.
pub async fn replica_with_hook_delay(
    builder: RedisStoreBuilder,
    policy: Policy,
    delay_ms: u64,
) -> Replica {
    replica_full(builder, policy, SystemClock, delay_ms).await
}

async fn replica_full(
    builder: RedisStoreBuilder,
    policy: Policy,
    clock: impl Clock,
    delay_ms: u64,
) -> Replica {
    let store = builder
        .connect()
        .await
        .expect("the test's redis-server answers");
    let hooks = HookLog::default();
    let log = hooks.clone();
    let tracker = Tracker::builder(policy)
        .store(Arc::new(store.clone()))
        .clock(clock)
        .hook(hook_fn("count", move |expired| {
            let log = log.clone();
            async move {
                sleep_ms(delay_ms).await;
                *log.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(expired.user)
                    .or_default() += 1;
                Ok(())
            }
        }))
        .build();
    Replica {
        tracker,
        store,
        hooks,
    }
}

pub fn subject(session: &str, user: &str) -> Subject {
    Subject::new(session, user).expect("a valid subject")
}

/// Adds up the hook runs of several replicas.
pub fn total_hooks<'a>(replicas: impl IntoIterator<Item = &'a Replica>) -> BTreeMap<String, u32> {
    let mut total = BTreeMap::new();
    for replica in replicas {
        for (user, n) in replica.hooks.counts() {
            *total.entry(user).or_default() += n;
        }
    }
    total
}

pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Whether the gate let the request in as tracked.
pub fn allowed(decision: Decision) -> bool {
    matches!(decision, Decision::Allowed { .. })
}
