//! The timeout at scale, on the memory store, on Redis or on a Redis Cluster.
//!
//! ```text
//! scale-bench sweep --store memory|redis [--redis URL | --cluster MASTERS] [--keys 1000000]
//!     [--due 10000] [--shards 16] [--rounds 3]
//! scale-bench lateness --store memory|redis [--redis URL | --cluster MASTERS] [--keys 100000]
//!     [--tracked 0] [--spread-seconds 60] [--timeout-seconds 10] [--warn-seconds 5]
//! scale-bench operator --store memory|redis [--redis URL | --cluster MASTERS] [--keys 1000000]
//!     [--rounds 3]
//! ```
//! - `operator`: tracks `--keys` sessions in scope session, ten per user,
//!   then times, `--rounds` times, what the operator routes cost: finding
//!   one user's sessions (a scan of every tracked key) and signing them
//!   out (a claim per session); and, for comparison, the lookup of one
//!   key in scope user.
//! - `sweep`: tracks `--keys` keys, `--due` of them with a 2-second timeout
//!   and the rest with an hour, each due key with an open subscription (a
//!   socket); waits until they are due, then times the sweeps that claim and
//!   deliver every due logout (hooks run and claims acknowledged), checks
//!   every subscription got its logout, and reports memory per tracked key:
//!   the process's resident set for the memory store, Redis `used_memory`
//!   (summed over the masters of a cluster) for Redis. Each of `--rounds`
//!   rounds tracks `--due` new keys and sweeps them again, so the sweep is
//!   timed several times in one process; the summary gives min, median and
//!   max.
//! - `lateness`: `--tracked` keys are tracked with an hour to go, then
//!   `--keys` users become active one after another over `--spread-seconds`
//!   and go idle, so their deadlines spread over as long; the sweeper
//!   (every 100 ms, the default) delivers warnings and logouts to
//!   subscriptions, and the bench reports how late each arrived:
//!   delivered-at minus the deadline (the warning's: deadline minus the
//!   warning time), p50/p99/max. On Redis, two replicas share the store:
//!   one takes the requests, the other holds the subscriptions, and both
//!   sweep, so each event crosses the Redis event stream.
//!
//! `--cluster N` starts a Redis Cluster of its own with N masters (with
//! `redis-server` and `redis-cli` from the Debian packages); `--redis URL`
//! must be a Redis of its own: the bench flushes the database first.

use std::{
    process::ExitCode,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{StreamExt, stream};
use timeout_core::{
    Decision, MemoryStore, Notification, Policy, RequestKind, Scope, Store, Subject, Tracker,
    clock::{Clock, SystemClock},
    hook_fn,
    store::{Timing, Touch, TouchOutcome},
};
use timeout_redis::RedisStore;

const USAGE: &str = "usage: scale-bench sweep|lateness|operator --store memory|redis \
    [--redis URL | --cluster MASTERS] [--keys N] [--due N] [--shards N] [--rounds N] \
    [--tracked N] [--spread-seconds N] [--timeout-seconds N] [--warn-seconds N]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sweep,
    Lateness,
    Operator,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Redis,
}

struct Args {
    mode: Mode,
    store: StoreKind,
    redis: String,
    /// Masters of a cluster of the bench's own; 0 for none.
    cluster: usize,
    keys: Option<u64>,
    due: u64,
    shards: u16,
    rounds: u32,
    tracked: u64,
    spread: Duration,
    timeout: Duration,
    warn: Duration,
}

fn parse() -> Result<Args, String> {
    let mut given = std::env::args().skip(1);
    let mode = match given.next().as_deref() {
        Some("sweep") => Mode::Sweep,
        Some("lateness") => Mode::Lateness,
        Some("operator") => Mode::Operator,
        Some(other) => {
            return Err(format!(
                "unknown mode {other:?}: sweep, lateness or operator"
            ));
        }
        None => return Err("a mode is required: sweep, lateness or operator".into()),
    };
    let mut args = Args {
        mode,
        store: StoreKind::Memory,
        redis: String::new(),
        cluster: 0,
        keys: None,
        due: 10_000,
        shards: 16,
        rounds: 3,
        tracked: 0,
        spread: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        warn: Duration::from_secs(5),
    };
    while let Some(flag) = given.next() {
        let value = given.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} {value:?}: expected a whole number"))
        };
        match flag.as_str() {
            "--store" => {
                args.store = match value.as_str() {
                    "memory" => StoreKind::Memory,
                    "redis" => StoreKind::Redis,
                    other => return Err(format!("--store {other:?}: memory or redis")),
                }
            }
            "--redis" => args.redis = value.clone(),
            "--cluster" => {
                args.cluster = usize::try_from(number()?)
                    .ok()
                    .filter(|n| (3..=16).contains(n))
                    .ok_or("--cluster: 3 to 16 masters")?
            }
            "--keys" => args.keys = Some(number()?),
            "--due" => args.due = number()?,
            "--shards" => {
                args.shards =
                    u16::try_from(number()?).map_err(|_| "--shards: at most 1024".to_owned())?
            }
            "--rounds" => {
                args.rounds = u32::try_from(number()?)
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or("--rounds: 1 to 100")?
            }
            "--tracked" => args.tracked = number()?,
            "--spread-seconds" => args.spread = Duration::from_secs(number()?),
            "--timeout-seconds" => args.timeout = Duration::from_secs(number()?),
            "--warn-seconds" => args.warn = Duration::from_secs(number()?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.store == StoreKind::Redis && args.redis.is_empty() && args.cluster == 0 {
        return Err(
            "--store redis needs --redis URL (a Redis of its own: it is flushed) or \
             --cluster MASTERS"
                .into(),
        );
    }
    if args.store == StoreKind::Memory && (args.cluster > 0 || !args.redis.is_empty()) {
        return Err("--redis and --cluster go with --store redis".into());
    }
    if args.mode == Mode::Sweep && args.due > args.keys() {
        return Err("--due cannot exceed --keys".into());
    }
    if args.warn >= args.timeout {
        return Err("--warn-seconds must be less than --timeout-seconds".into());
    }
    Ok(args)
}

impl Args {
    fn keys(&self) -> u64 {
        self.keys.unwrap_or(match self.mode {
            Mode::Sweep | Mode::Operator => 1_000_000,
            Mode::Lateness => 100_000,
        })
    }
}

/// Where the Redis store lives: the URLs of its node (one) or masters.
struct RedisTarget {
    nodes: Vec<String>,
    cluster: bool,
    /// Keeps the bench's own cluster running.
    _own: Option<test_redis::RedisCluster>,
}

impl RedisTarget {
    fn of(args: &Args) -> RedisTarget {
        if args.cluster > 0 {
            let own = test_redis::RedisCluster::start(args.cluster);
            RedisTarget {
                nodes: own.urls(),
                cluster: true,
                _own: Some(own),
            }
        } else {
            RedisTarget {
                nodes: vec![args.redis.clone()],
                cluster: false,
                _own: None,
            }
        }
    }

    async fn store(&self, args: &Args, prefix: &str) -> Result<RedisStore, String> {
        let builder = if self.cluster {
            RedisStore::cluster(self.nodes.clone())
        } else {
            RedisStore::builder(&self.nodes[0])
        };
        builder
            .prefix(prefix)
            .shards(args.shards)
            .connect()
            .await
            .map_err(|e| e.to_string())
    }

    /// A connection to each node (each master of a cluster).
    async fn nodes(&self) -> Result<Vec<redis::aio::MultiplexedConnection>, String> {
        let mut out = Vec::new();
        for node in &self.nodes {
            out.push(connection(node).await?);
        }
        Ok(out)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let target = (args.store == StoreKind::Redis).then(|| RedisTarget::of(&args));
    let result = match args.mode {
        Mode::Sweep => sweep(&args, target.as_ref()).await,
        Mode::Lateness => lateness(&args, target.as_ref()).await,
        Mode::Operator => operator(&args, target.as_ref()).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn connection(redis: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(redis).map_err(|e| e.to_string())?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("cannot reach Redis at {redis}: {e}"))
}

async fn flush_all(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query_async::<()>(conn)
        .await
        .map_err(|e| e.to_string())?;
    // Memory freed in the background would spoil the bytes per key: wait
    // until it is freed (a synchronous flush of millions of keys would
    // outlast the connection's response timeout).
    loop {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        let pending = info
            .lines()
            .find_map(|l| l.strip_prefix("lazyfree_pending_objects:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn redis_used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "INFO memory has no used_memory".to_owned())
}

/// Calls and server time per command since the last `CONFIG RESETSTAT`,
/// summed over the nodes, busiest first: where Redis spent a sweep.
async fn redis_command_times(
    nodes: &mut [redis::aio::MultiplexedConnection],
) -> Result<String, String> {
    let mut totals: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for conn in nodes.iter_mut() {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        for line in info.lines() {
            let Some((name, stats)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |wanted: &str| {
                stats.split(',').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k == wanted).then(|| v.parse::<u64>().ok()).flatten()
                })
            };
            if let (Some(calls), Some(usec)) = (field("calls"), field("usec")) {
                let total = totals.entry(name.to_owned()).or_default();
                total.0 += calls;
                total.1 += usec;
            }
        }
    }
    let mut rows: Vec<(String, (u64, u64))> = totals.into_iter().collect();
    rows.sort_by_key(|(_, (_, usec))| std::cmp::Reverse(*usec));
    Ok(rows
        .into_iter()
        .map(|(name, (calls, usec))| format!("{name} {calls} calls {:.1} ms", usec as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", "))
}

async fn reset_command_stats(
    nodes: &mut [redis::aio::MultiplexedConnection],
) -> Result<(), String> {
    for conn in nodes {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async::<()>(conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// This process's resident set in bytes (Linux `/proc/self/status`, which
/// gives it in kB whatever the page size).
fn resident_bytes() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status to measure memory: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "/proc/self/status has no VmRSS line".to_owned())
}

/// Where memory per key is read: the process or the Redis nodes.
enum Memory {
    Process,
    Redis(Vec<redis::aio::MultiplexedConnection>),
}

impl Memory {
    async fn used(&mut self) -> Result<u64, String> {
        match self {
            Memory::Process => resident_bytes(),
            Memory::Redis(nodes) => {
                let mut sum = 0;
                for conn in nodes {
                    sum += redis_used_memory(conn).await?;
                }
                Ok(sum)
            }
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Memory::Process => "process resident set",
            Memory::Redis(nodes) if nodes.len() > 1 => "Redis used_memory of all masters",
            Memory::Redis(_) => "Redis used_memory",
        }
    }
}

/// The store under test and where its memory is read; Redis is flushed.
async fn store_of(
    args: &Args,
    target: Option<&RedisTarget>,
    prefix: &str,
) -> Result<(Arc<dyn Store>, Memory), String> {
    match target {
        None => Ok((Arc::new(MemoryStore::new()), Memory::Process)),
        Some(target) => {
            let mut nodes = target.nodes().await?;
            for conn in &mut nodes {
                flush_all(conn).await?;
            }
            Ok((
                Arc::new(target.store(args, prefix).await?),
                Memory::Redis(nodes),
            ))
        }
    }
}

/// Which node holds each shard (its due set): on a cluster, whether the
/// shards are spread over the masters.
async fn shard_spread(
    target: &RedisTarget,
    nodes: &mut [redis::aio::MultiplexedConnection],
    shards: u16,
) -> Result<String, String> {
    let mut counts = Vec::new();
    for conn in nodes.iter_mut() {
        // A shard is a handful of keys: listing them is cheap.
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("{sweep:*}:due")
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        counts.push(keys.len().to_string());
    }
    Ok(format!(
        "{shards} shards; due sets per node ({}): {}",
        target.nodes.join(", "),
        counts.join(", ")
    ))
}

fn user(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:07}")
}

/// Tracks the keys `names` with `timeout`, 256 at a time; each key is its
/// own user and session.
async fn fill(
    store: &Arc<dyn Store>,
    names: impl Iterator<Item = String>,
    timeout: Duration,
    timing: Timing,
) -> Result<(), String> {
    fill_sessions(
        store,
        names.map(|name| (name.clone(), name)),
        timeout,
        timing,
    )
    .await
}

/// Tracks the sessions `sessions` (session id, user) as keys of their own
/// (scope session) with `timeout`, 256 at a time.
async fn fill_sessions(
    store: &Arc<dyn Store>,
    sessions: impl Iterator<Item = (String, String)>,
    timeout: Duration,
    timing: Timing,
) -> Result<(), String> {
    let failures = AtomicU64::new(0);
    stream::iter(sessions)
        .for_each_concurrent(256, |(name, user)| {
            let failures = &failures;
            async move {
                let touch = Touch::new(
                    &name,
                    &user,
                    &name,
                    RequestKind::Activity,
                    SystemClock.now(),
                    timeout,
                    timing,
                );
                if !matches!(store.touch(&touch).await, Ok(TouchOutcome::Live { .. })) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    match failures.load(Ordering::Relaxed) {
        0 => Ok(()),
        failed => Err(format!("{failed} touches failed")),
    }
}

async fn sweep(args: &Args, target: Option<&RedisTarget>) -> Result<(), String> {
    let keys = args.keys();
    let (store, mut memory) = store_of(args, target, "sweep").await?;
    let empty = memory.used().await?;
    let timing = Timing::new(Duration::ZERO, Duration::from_secs(3600));
    let short = Duration::from_secs(2);
    let started = Instant::now();
    // The never-due keys first, then the due ones, so the due keys'
    // deadlines lie close together after the fill.
    let round_keys = |round: u32| (0..args.due).map(move |i| user(&format!("due{round}-"), i));
    fill(
        &store,
        (0..keys - args.due).map(|i| user("idle", i)),
        Duration::from_secs(3600),
        timing,
    )
    .await?;
    fill(&store, round_keys(0), short, timing).await?;
    let fill_time = started.elapsed();
    let full = memory.used().await?;
    let per_key = full.saturating_sub(empty) as f64 / keys as f64;
    println!(
        "filled {keys} keys in {:.1} s; {} {empty} -> {full} bytes: {per_key:.0} bytes per tracked key",
        fill_time.as_secs_f64(),
        memory.what(),
    );

    let policy = Policy::builder()
        .enabled(true)
        .warn_before(Duration::ZERO)
        .remember_timed_out(timing.remember)
        .build()
        .map_err(|e| e.to_string())?;
    let hooks = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&hooks);
    let tracker = Tracker::builder(policy)
        .store(Arc::clone(&store))
        .hook(hook_fn("count", move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        }))
        .build();
    let mut times = Vec::new();
    for round in 0..args.rounds {
        if round > 0 {
            fill(&store, round_keys(round), short, timing).await?;
        }
        let mut sockets = Vec::with_capacity(args.due as usize);
        for name in round_keys(round) {
            let subject = Subject::new(name.as_str(), name.as_str()).map_err(|e| e.to_string())?;
            sockets.push(tracker.subscribe(&subject));
        }
        // Every due key is due once its 2 s have passed since it was filled.
        tokio::time::sleep(short + Duration::from_millis(300)).await;
        if let Memory::Redis(nodes) = &mut memory {
            reset_command_stats(nodes).await?;
        }
        let hooks_before = hooks.load(Ordering::Relaxed);
        let swept = Instant::now();
        let mut logouts = 0;
        while logouts < args.due as usize {
            let report = tracker.sweep().await.map_err(|e| e.to_string())?;
            if report.logouts == 0 {
                break;
            }
            logouts += report.logouts;
        }
        let sweep_time = swept.elapsed();
        let delivered = sockets
            .iter_mut()
            .map(|socket| socket.try_next())
            .filter(|next| matches!(next, Ok(Some(n)) if n.is_logout()))
            .count();
        let ran = hooks.load(Ordering::Relaxed) - hooks_before;
        let active = tracker.active_count().await.map_err(|e| e.to_string())?;
        println!(
            "round {round}: claimed and delivered {logouts} due logouts among {keys} keys in \
             {:.1} ms ({delivered} subscriptions got their logout, {ran} hooks ran, {active} \
             keys still tracked)",
            sweep_time.as_secs_f64() * 1000.0,
        );
        if let Memory::Redis(nodes) = &mut memory
            && round == 0
        {
            println!(
                "Redis during the sweep: {}",
                redis_command_times(nodes).await?
            );
        }
        if logouts as u64 != args.due || delivered as u64 != args.due || ran != args.due {
            return Err(format!(
                "expected {} logouts, deliveries and hooks",
                args.due
            ));
        }
        times.push(sweep_time.as_secs_f64() * 1000.0);
    }
    if let (Some(target), Memory::Redis(nodes)) = (target, &mut memory) {
        println!("{}", shard_spread(target, nodes, args.shards).await?);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "sweep of {} due among {keys} keys over {} rounds: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        args.due,
        times.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}

async fn operator(args: &Args, target: Option<&RedisTarget>) -> Result<(), String> {
    let keys = args.keys();
    let users = (keys / 10).max(1);
    let (store, _memory) = store_of(args, target, "operator").await?;
    let timing = Timing::new(Duration::ZERO, Duration::from_secs(3600));
    let hour = Duration::from_secs(3600);
    let started = Instant::now();
    fill_sessions(
        &store,
        (0..keys).map(|i| (user("s", i), user("u", i % users))),
        hour,
        timing,
    )
    .await?;
    // Keys of scope user, to compare one lookup with the scan.
    fill(&store, (0..1_000).map(|i| user("one", i)), hour, timing).await?;
    println!(
        "tracked {keys} sessions of {users} users (scope session) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (mut list, mut sign, mut lookup) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..u64::from(args.rounds) {
        let name = user("u", round * 7 % users);
        let started = Instant::now();
        let found = store
            .keys_of_user(&name, Scope::Session)
            .await
            .map_err(|e| e.to_string())?;
        list.push(started.elapsed().as_secs_f64() * 1000.0);
        if found.len() as u64 != (keys / users).min(keys) {
            return Err(format!("{name}: found {} sessions", found.len()));
        }
        let started = Instant::now();
        for key in &found {
            store
                .claim_now(&key.key, SystemClock.now(), timing)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("{} was not claimed", key.key))?;
        }
        sign.push(started.elapsed().as_secs_f64() * 1000.0);
        let one = user("one", round);
        let started = Instant::now();
        let found = store
            .keys_of_user(&one, Scope::User)
            .await
            .map_err(|e| e.to_string())?;
        lookup.push(started.elapsed().as_secs_f64() * 1000.0);
        if found.len() != 1 {
            return Err(format!("{one}: found {} keys", found.len()));
        }
    }
    let summary = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        format!(
            "min {:.2} ms, median {:.2} ms, max {:.2} ms",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        )
    };
    println!(
        "scope session, one user's sessions among {keys}: {}",
        summary(list)
    );
    println!("scope session, signing those out: {}", summary(sign));
    println!("scope user, one key: {}", summary(lookup));
    Ok(())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Lateness samples in milliseconds.
#[derive(Default)]
struct Samples(Mutex<Vec<i64>>);

impl Samples {
    fn push(&self, value: i64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }

    fn summary(&self) -> String {
        let mut values = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if values.is_empty() {
            return "none".into();
        }
        values.sort_unstable();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        format!(
            "{} delivered, late by min {} ms, p50 {} ms, p99 {} ms, max {} ms",
            values.len(),
            values[0],
            at(0.50),
            at(0.99),
            values[values.len() - 1]
        )
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

async fn lateness(args: &Args, target: Option<&RedisTarget>) -> Result<(), String> {
    let keys = args.keys();
    let policy = Policy::builder()
        .enabled(true)
        .idle_timeout(args.timeout)
        .warn_before(args.warn)
        .build()
        .map_err(|e| e.to_string())?;
    let hooks = Arc::new(AtomicU64::new(0));
    let tracker = |store: Arc<dyn Store>| {
        let counted = Arc::clone(&hooks);
        Tracker::builder(policy.clone())
            .hook(hook_fn("count", move |_| {
                counted.fetch_add(1, Ordering::Relaxed);
                async { Ok(()) }
            }))
            .store(store)
            .build()
    };
    // `requests` takes the activity, `sockets` holds the subscriptions.
    let (store, _) = store_of(args, target, "late").await?;
    let (requests, sockets) = match target {
        None => {
            let one = tracker(Arc::clone(&store));
            (one.clone(), one)
        }
        Some(target) => (
            tracker(Arc::clone(&store)),
            tracker(Arc::new(target.store(args, "late").await?)),
        ),
    };
    if args.tracked > 0 {
        let timing = Timing::new(args.warn, timeout_core::config::DEFAULT_REMEMBER);
        let started = Instant::now();
        fill(
            &store,
            (0..args.tracked).map(|i| user("idle", i)),
            Duration::from_secs(3600),
            timing,
        )
        .await?;
        println!(
            "tracked {} idle keys (an hour to go) in {:.1} s",
            args.tracked,
            started.elapsed().as_secs_f64()
        );
    }
    let _sweepers = [requests.spawn_sweeper(), sockets.spawn_sweeper()];

    let deadlines: Arc<Vec<AtomicU64>> = Arc::new((0..keys).map(|_| AtomicU64::new(0)).collect());
    let warnings = Arc::new(Samples::default());
    let logouts = Arc::new(Samples::default());
    let warn_ms = i64::try_from(args.warn.as_millis()).unwrap_or(i64::MAX);
    let mut listeners = tokio::task::JoinSet::new();
    let mut subjects = Vec::with_capacity(keys as usize);
    for i in 0..keys {
        let name = user("late", i);
        let subject = Subject::new(name.as_str(), name.as_str()).map_err(|e| e.to_string())?;
        let mut socket = sockets.subscribe(&subject);
        let (deadlines, warnings, logouts) = (
            Arc::clone(&deadlines),
            Arc::clone(&warnings),
            Arc::clone(&logouts),
        );
        listeners.spawn(async move {
            while let Some(notification) = socket.recv().await {
                let now = now_millis();
                let deadline = deadlines[i as usize].load(Ordering::Relaxed) as i64;
                match notification {
                    Notification::Logout { .. } => {
                        logouts.push(now - deadline);
                        break;
                    }
                    _ => warnings.push(now - (deadline - warn_ms)),
                }
            }
        });
        subjects.push(subject);
    }

    // Activity spread evenly over the spread, in 10 ms steps.
    let started = Instant::now();
    let mut next = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut refused = 0u64;
    while next < keys {
        ticker.tick().await;
        let elapsed = started.elapsed().as_secs_f64();
        let upto = ((elapsed / args.spread.as_secs_f64().max(0.001)) * keys as f64).ceil() as u64;
        let batch: Vec<u64> = (next..upto.min(keys)).collect();
        next = upto.min(keys);
        let decisions = stream::iter(batch)
            .map(|i| {
                let requests = &requests;
                let subject = &subjects[i as usize];
                async move {
                    (
                        i,
                        requests.check(Some(subject), RequestKind::Activity).await,
                    )
                }
            })
            .buffer_unordered(256)
            .collect::<Vec<_>>()
            .await;
        for (i, decision) in decisions {
            match decision {
                Decision::Allowed { deadline } => {
                    deadlines[i as usize].store(deadline.as_millis(), Ordering::Relaxed)
                }
                _ => refused += 1,
            }
        }
    }
    if refused > 0 {
        return Err(format!("{refused} activity requests were not allowed"));
    }
    println!(
        "{keys} users active over {:.1} s among {} tracked, idle timeout {} s, warning {} s before",
        started.elapsed().as_secs_f64(),
        keys + args.tracked,
        args.timeout.as_secs(),
        args.warn.as_secs()
    );
    let give_up = Instant::now() + args.timeout + Duration::from_secs(30);
    while logouts.len() < keys as usize && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("warnings: {}", warnings.summary());
    println!("logouts: {}", logouts.summary());
    println!("hooks ran: {}", hooks.load(Ordering::Relaxed));
    listeners.abort_all();
    if logouts.len() as u64 != keys || hooks.load(Ordering::Relaxed) != keys {
        return Err(format!(
            "expected {keys} logouts delivered and {keys} hooks, got {} and {}",
            logouts.len(),
            hooks.load(Ordering::Relaxed)
        ));
    }
    Ok(())
}
