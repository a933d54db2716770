//! The gate decision for a tracked key allocates nothing: counted with a
//! global allocator, per thread, so the test harness's own threads do not
//! interfere.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    time::Duration,
};

use timeout_core::{Decision, Policy, RequestKind, Scope, Subject, Tracker};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn decide_many(tracker: &Tracker, subject: &Subject) {
    for i in 0..10_000 {
        let kind = if i % 3 == 0 {
            RequestKind::Passive
        } else {
            RequestKind::Activity
        };
        let check = tracker.check(Some(subject), kind);
        let decision = check.now_or_never();
        assert!(
            matches!(decision, Some(Decision::Allowed { .. })),
            "{decision:?}"
        );
    }
}

#[test]
fn deciding_for_a_tracked_key_does_not_allocate() {
    for scope in [Scope::User, Scope::Session] {
        let policy = Policy::builder()
            .enabled(true)
            .idle_timeout(Duration::from_secs(3600))
            .group("ops", Duration::from_secs(7200))
            .exempt(["monitor"])
            .passive_path("/poll")
            .scope(scope)
            .build()
            .unwrap();
        let tracker = Tracker::new(policy);
        let alice = Subject::new("session-1", "alice")
            .unwrap()
            .with_groups(["ops", "staff"]);
        // The first request starts tracking: that one may allocate.
        let first = tracker.check(Some(&alice), RequestKind::Activity);
        assert!(first.now_or_never().is_some());
        let n = allocations_during(|| decide_many(&tracker, &alice));
        assert_eq!(n, 0, "{n} allocations in 10,000 decisions (scope {scope})");
    }
}

#[test]
fn the_counter_does_count() {
    let n = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(16);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}
