//! Sweep at scale on Redis: `--keys` tracked keys, `--due` of them due at
//! once; measures the time one sweep takes to claim and deliver every due
//! logout (hooks included, acknowledged), and Redis memory per tracked key.
//!
//! ```text
//! redis-sweep-bench --redis redis://127.0.0.1:PORT [--keys 1000000] [--due 10000] [--shards 16]
//! ```
//! Use a Redis of its own: the bench flushes the database first.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use timeout_core::{
    Policy, RequestKind, Store, Timestamp, Timing, Touch, TouchOutcome, Tracker, hook_fn,
};
use timeout_redis::RedisStore;

const USAGE: &str = "usage: redis-sweep-bench --redis URL [--keys N] [--due N] [--shards N]";

struct Args {
    redis: String,
    keys: u64,
    due: u64,
    shards: u16,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        redis: String::new(),
        keys: 1_000_000,
        due: 10_000,
        shards: 16,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} {value:?}: expected a number"))
        };
        match flag.as_str() {
            "--redis" => args.redis = value.clone(),
            "--keys" => args.keys = number()?,
            "--due" => args.due = number()?,
            "--shards" => {
                args.shards =
                    u16::try_from(number()?).map_err(|_| "--shards: at most 1024".to_owned())?
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.redis.is_empty() {
        return Err("--redis is required".into());
    }
    if args.due > args.keys {
        return Err("--due cannot exceed --keys".into());
    }
    Ok(args)
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
    match run(&args).await {
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

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64, String> {
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

async fn run(args: &Args) -> Result<(), String> {
    let mut conn = connection(&args.redis).await?;
    redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let store = RedisStore::builder(&args.redis)
        .prefix("sweep")
        .shards(args.shards)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let empty = used_memory(&mut conn).await?;
    let timing = Timing {
        warn_before: Duration::ZERO,
        remember: Duration::from_secs(3600),
    };
    let short = Duration::from_secs(2);
    let filled = Instant::now();
    let failures = AtomicU64::new(0);
    stream::iter(0..args.keys)
        .for_each_concurrent(256, |i| {
            let store = &store;
            let failures = &failures;
            async move {
                let name = format!("user{i:07}");
                let touch = Touch {
                    key: &name,
                    user: &name,
                    session: &name,
                    kind: RequestKind::Activity,
                    now: Timestamp::from_millis(0),
                    timeout: if i < args.due {
                        short
                    } else {
                        Duration::from_secs(3600)
                    },
                    absolute_lifetime: None,
                    timing,
                };
                if !matches!(store.touch(&touch).await, Ok(TouchOutcome::Live { .. })) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let fill_time = filled.elapsed();
    if failures.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "{} touches failed",
            failures.load(Ordering::Relaxed)
        ));
    }
    let full = used_memory(&mut conn).await?;
    let per_key = full.saturating_sub(empty) as f64 / args.keys as f64;
    println!(
        "filled {} keys in {:.1} s; Redis used_memory {} -> {} bytes: {per_key:.0} bytes per tracked key",
        args.keys,
        fill_time.as_secs_f64(),
        empty,
        full
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
        .store(Arc::new(store.clone()))
        .hook(hook_fn("count", move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        }))
        .build();
    // Every short key is due once its 2 s have passed.
    tokio::time::sleep(short + Duration::from_millis(300)).await;
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
    let active = tracker.active_count().await.map_err(|e| e.to_string())?;
    println!(
        "claimed and delivered {logouts} due logouts among {} keys in {:.1} ms \
         ({} hooks ran, {active} keys still tracked)",
        args.keys,
        sweep_time.as_secs_f64() * 1000.0,
        hooks.load(Ordering::Relaxed)
    );
    if logouts as u64 != args.due || hooks.load(Ordering::Relaxed) != args.due {
        return Err(format!("expected {} logouts and hooks", args.due));
    }
    Ok(())
}
