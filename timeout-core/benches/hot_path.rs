//! The per-request path: a touch of a tracked key in the memory store (one
//! thread, two threads on one key, two threads on two keys) and the whole
//! gate decision of the tracker.

use std::{
    hint::black_box,
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use timeout_core::{
    MemoryStore, Policy, RequestKind, Store, Subject, Tracker,
    clock::{Clock, SystemClock},
    store::{Timing, Touch},
};

const TIMING: Timing = Timing::new(Duration::from_secs(60), Duration::from_secs(3600));

fn touch<'a>(key: &'a str, kind: RequestKind) -> Touch<'a> {
    Touch::new(
        key,
        key,
        key,
        kind,
        SystemClock.now(),
        Duration::from_secs(8 * 3600),
        TIMING,
    )
}

/// A store holding `n` other keys besides the measured ones, as in a real
/// service.
fn populated(n: usize) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for i in 0..n {
        let key = format!("user{i}");
        store.try_touch(&touch(&key, RequestKind::Activity));
    }
    store
}

fn touch_one_thread(c: &mut Criterion) {
    let store = populated(10_000);
    store.try_touch(&touch("alice", RequestKind::Activity));
    c.bench_function("memory store touch, 1 thread", |b| {
        b.iter(|| {
            let t = touch(black_box("alice"), RequestKind::Activity);
            black_box(store.try_touch(&t))
        })
    });
}

/// Two threads touching `keys[0]` and `keys[1]` at once; the time reported
/// is per touch of one thread.
fn touch_two_threads(c: &mut Criterion, name: &str, keys: [&'static str; 2]) {
    let store = populated(10_000);
    for k in keys {
        store.try_touch(&touch(k, RequestKind::Activity));
    }
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(2));
            let workers: Vec<_> = keys
                .iter()
                .map(|&key| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    thread::spawn(move || {
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..iters {
                            let t = touch(black_box(key), RequestKind::Activity);
                            black_box(store.try_touch(&t));
                        }
                        start.elapsed()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("bench thread"))
                .max()
                .unwrap_or_default()
        })
    });
}

fn touch_contended(c: &mut Criterion) {
    touch_two_threads(
        c,
        "memory store touch, 2 threads, same key",
        ["alice", "alice"],
    );
    touch_two_threads(
        c,
        "memory store touch, 2 threads, two keys",
        ["alice", "bob"],
    );
}

fn decision(c: &mut Criterion) {
    let policy = Policy::builder()
        .enabled(true)
        .group("ops", Duration::from_secs(3600))
        .exempt(["monitor"])
        .build()
        .expect("valid policy");
    let store = populated(10_000);
    let tracker = Tracker::builder(policy).store(store).build();
    let alice = Subject::new("session-alice", "alice")
        .expect("valid subject")
        .with_groups(["ops", "staff"]);
    assert!(
        tracker
            .check(Some(&alice), RequestKind::Activity)
            .now_or_never()
            .is_some()
    );
    let disabled = Tracker::new(Policy::default());
    for (name, tracker, kind) in [
        (
            "tracker decision, activity",
            &tracker,
            RequestKind::Activity,
        ),
        ("tracker decision, passive", &tracker, RequestKind::Passive),
        (
            "tracker decision, disabled",
            &disabled,
            RequestKind::Activity,
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| black_box(tracker.check(Some(black_box(&alice)), kind).now_or_never()))
        });
    }
}

criterion_group!(benches, touch_one_thread, touch_contended, decision);
criterion_main!(benches);
