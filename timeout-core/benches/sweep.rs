//! A sweep of 10,000 due keys among 1,000,000 tracked: claim, notify, audit
//! and hooks, through the tracker with a manual clock.
//!
//! `TIMEOUT_BENCH_KEYS` and `TIMEOUT_BENCH_DUE` shrink the sizes so the test
//! suite can run this code path once, quickly.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use timeout_core::{Policy, RequestKind, Subject, Timestamp, Tracker, clock::ManualClock};

const T0: u64 = 1_700_000_000_000;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sweep_due_among_many(c: &mut Criterion) {
    let total = size("TIMEOUT_BENCH_KEYS", 1_000_000);
    let due = size("TIMEOUT_BENCH_DUE", 10_000).min(total);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let policy = Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .group("forever", Duration::from_secs(100 * 365 * 24 * 3600))
        .build()
        .expect("valid policy");
    let tracker = Tracker::builder(policy).clock(clock.clone()).build();

    // The keys that are never due: a century-long group timeout.
    for i in 0..total - due {
        let s = Subject::new(format!("s{i}"), format!("idle{i}"))
            .expect("valid subject")
            .with_groups(["forever"]);
        let _ = tracker
            .check(Some(&s), RequestKind::Activity)
            .now_or_never();
    }
    let mut round = 0u64;

    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    group.bench_function(format!("{due} due among {total} keys"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                // Fresh due keys each round: a sweep logs them out, and their
                // sessions stay refused.
                round += 1;
                clock.advance(Duration::from_secs(3600));
                for i in 0..due {
                    let s = Subject::new(format!("r{round}-{i}"), format!("due{i}"))
                        .expect("valid subject");
                    let _ = tracker
                        .check(Some(&s), RequestKind::Activity)
                        .now_or_never();
                }
                clock.advance(Duration::from_secs(61));
                let start = Instant::now();
                let report = runtime.block_on(tracker.sweep()).expect("memory store");
                spent += start.elapsed();
                assert_eq!(report.logouts, due);
                black_box(report);
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, sweep_due_among_many);
criterion_main!(benches);
