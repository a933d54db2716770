//! What the layer adds to a request, in process (no HTTP): a hello-world
//! service alone, behind the layer disabled, and behind the layer for a
//! tracked user (activity and passive), memory store. Compare the rows of
//! one run; `scripts/bench-http.sh` measures whole servers.

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, Uri, request::Parts};
use timeout_core::{Policy, Subject, Tracker};
use timeout_tower::{SessionTimeout, identify_fn};
use tower::{Layer, Service};

#[derive(Clone)]
struct Hello;

impl Service<Request<()>> for Hello {
    type Response = Response<&'static str>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(Response::new("hello")))
    }
}

fn run<S>(service: &mut S, uri: &Uri)
where
    S: Service<Request<()>>,
{
    let mut req = Request::new(());
    *req.uri_mut() = uri.clone();
    let mut cx = Context::from_waker(Waker::noop());
    let fut = service.call(req);
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        _ => panic!("the benchmark expects ready answers"),
    }
}

fn layered(enabled: bool) -> impl Service<Request<()>> {
    let policy = Policy::builder()
        .enabled(enabled)
        .idle_timeout(Duration::from_secs(3600))
        .warn_before(Duration::from_secs(60))
        .passive_path("/poll")
        .build()
        .expect("valid policy");
    let alice = Subject::new("session-1", "alice").expect("valid subject");
    let timeout = SessionTimeout::new(
        Tracker::new(policy),
        identify_fn(move |_: &Parts| Some(alice.clone())),
    );
    timeout.layer().layer(Hello)
}

fn layer(c: &mut Criterion) {
    let work: Uri = "/work".parse().expect("uri");
    let poll: Uri = "/poll/status".parse().expect("uri");
    let mut group = c.benchmark_group("request");
    let mut hello = Hello;
    group.bench_function("hello", |b| b.iter(|| run(&mut hello, &work)));
    let mut disabled = layered(false);
    group.bench_function("layer disabled", |b| b.iter(|| run(&mut disabled, &work)));
    let mut tracked = layered(true);
    group.bench_function("layer, tracked, activity", |b| {
        b.iter(|| run(&mut tracked, &work))
    });
    group.bench_function("layer, tracked, passive", |b| {
        b.iter(|| run(&mut tracked, &poll))
    });
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
