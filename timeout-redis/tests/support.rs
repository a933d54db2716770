//! Replicas (a tracker on its own `RedisStore`) for the tests, against a
//! real redis-server the test started.

#![allow(dead_code)] // each test file uses part of it

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use timeout_core::{
    Decision, Policy, Subject, TimeoutHook, Tracker,
    clock::{Clock, SystemClock},
    hooks::HookError,
    store::{Cause, Expired, StateLost},
};
use timeout_redis::{RedisStore, RedisStoreBuilder};

/// One application replica: a tracker on its own store and connection.
pub struct Replica {
    pub tracker: Tracker,
    pub store: RedisStore,
    pub hooks: HookLog,
}

/// Timeout hook runs per user, their causes, and the state-lost calls.
#[derive(Clone, Default)]
pub struct HookLog(Arc<Mutex<Log>>);

#[derive(Default)]
pub struct Log {
    runs: BTreeMap<String, u32>,
    causes: BTreeMap<String, Vec<Cause>>,
    state_lost: Vec<StateLost>,
}

impl HookLog {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn counts(&self) -> BTreeMap<String, u32> {
        self.log().runs.clone()
    }

    pub fn causes(&self) -> BTreeMap<String, Vec<Cause>> {
        self.log().causes.clone()
    }

    pub fn state_lost(&self) -> Vec<StateLost> {
        self.log().state_lost.clone()
    }
}

struct Recorder {
    log: HookLog,
    delay_ms: u64,
}

#[async_trait]
impl TimeoutHook for Recorder {
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        sleep_ms(self.delay_ms).await;
        let mut log = self.log.log();
        *log.runs.entry(expired.user.clone()).or_default() += 1;
        log.causes
            .entry(expired.user.clone())
            .or_default()
            .push(expired.cause);
        Ok(())
    }

    async fn on_state_lost(&self, lost: &StateLost) -> Result<(), HookError> {
        self.log.log().state_lost.push(lost.clone());
        Ok(())
    }

    fn name(&self) -> &str {
        "count"
    }
}

/// Short intervals so second-long timeouts are precise.
pub fn builder(url: &str, prefix: &str) -> RedisStoreBuilder {
    RedisStore::builder(url)
        .prefix(prefix)
        .flush_interval(Duration::from_millis(50))
        .lease(Duration::from_secs(2))
}

/// The timing the store is called with directly: a warning `warn_ms`
/// before the deadline, timed-out sessions remembered for a minute.
pub fn timing(warn_ms: u64) -> timeout_core::store::Timing {
    timeout_core::store::Timing::new(Duration::from_millis(warn_ms), Duration::from_secs(60))
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
    let tracker = Tracker::builder(policy)
        .store(Arc::new(store.clone()))
        .clock(clock)
        .hook(Recorder {
            log: hooks.clone(),
            delay_ms,
        })
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

/// Adds up the state-lost calls of several replicas.
pub fn total_state_lost<'a>(replicas: impl IntoIterator<Item = &'a Replica>) -> usize {
    replicas
        .into_iter()
        .map(|r| r.hooks.state_lost().len())
        .sum()
}

/// Polls `check` until it holds, for at most `secs`.
pub async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        sleep_ms(100).await;
    }
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

/// Asserts that an active request of every one of `users` is refused with
/// the logout answer on every one of `replicas`.
pub async fn assert_refused_everywhere<'a>(
    users: impl IntoIterator<Item = &'a Subject>,
    replicas: &[&Replica],
) {
    for user in users {
        for replica in replicas {
            assert_eq!(
                replica
                    .tracker
                    .check(Some(user), timeout_core::RequestKind::Activity)
                    .await,
                Decision::TimedOut,
                "{user:?}"
            );
        }
    }
}

/// Whether the gate let the request in as tracked.
pub fn allowed(decision: Decision) -> bool {
    matches!(decision, Decision::Allowed { .. })
}

/// The hash tag of the shard whose records hash holds `member`, e.g.
/// `{evict:3}`: where a test reaches into the store's keys.
pub fn shard_of(redis: &test_redis::RedisServer, member: &str) -> String {
    let keys = redis.command("KEYS *:r").unwrap_or_default();
    keys.lines()
        .filter_map(|line| line.strip_suffix(":r"))
        .find(|tag| {
            redis
                .command(&format!("HEXISTS {tag}:r {member}"))
                .as_deref()
                == Some(":1\r\n")
        })
        .unwrap_or_else(|| panic!("no record of {member} in {keys}"))
        .to_owned()
}
