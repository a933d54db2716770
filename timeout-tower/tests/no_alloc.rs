//! The layer adds no allocation per request for a tracked key with the
//! memory store: identification from a subject the app already holds (an
//! `Arc` clone), the gate, the inner call, and the activity recorded after
//! the response. Counted per thread with a global allocator.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, request::Parts};
use http_body_util::Empty;
use timeout_core::{Policy, Subject, Tracker};
use timeout_tower::{SessionTimeout, identify_fn};
use tower::{Layer, Service};

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

#[derive(Clone)]
struct Hello;

impl Service<Request<()>> for Hello {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(Response::new(Empty::new())))
    }
}

#[test]
fn a_tracked_request_through_the_layer_allocates_nothing() {
    let policy = Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(600))
        .warn_before(Duration::from_secs(60))
        .passive_path("/poll")
        .exempt(["monitor"])
        .build()
        .expect("valid policy");
    let tracker = Tracker::new(policy);
    let alice = Subject::new("session-1", "alice").expect("valid subject");
    let timeout = SessionTimeout::new(tracker, identify_fn(move |_: &Parts| Some(alice.clone())));
    let mut service = timeout.layer().layer(Hello);
    let mut cx = Context::from_waker(Waker::noop());
    let request = |path: &str| Request::get(path).body(()).expect("valid request");
    let mut one = |req: Request<()>| {
        let fut = service.call(req);
        match pin!(fut).poll(&mut cx) {
            Poll::Ready(Ok(response)) => assert_eq!(response.status(), 200),
            other => panic!(
                "expected a ready answer, got {:?}",
                other.map(|r| r.map(|_| ()))
            ),
        }
    };
    // The first request creates the key: that may allocate.
    one(request("/work"));

    let requests = 10_000;
    // Built before counting: parsing a URI allocates, in the server too.
    let prepared: Vec<Request<()>> = (0..requests)
        .map(|i| request(if i % 4 == 0 { "/poll/x" } else { "/work" }))
        .collect();
    let before = ALLOCATIONS.with(Cell::get);
    for req in prepared {
        one(req);
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {requests} requests"
    );
}
