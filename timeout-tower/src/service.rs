//! The layer, its service and response future: the gate of DESIGN.md
//! section 2 in front of an app's handlers.

use std::{
    fmt,
    future::Future,
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker, ready},
};

use http::{HeaderValue, Request, Response, StatusCode, header};
use pin_project_lite::pin_project;
use timeout_core::{Check, DeferredActivity, Refusal, RequestKind, Subject};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Identify, Identity, Passive, TimeoutBody, config::Shared};

/// Body of the 500 answered when a request's subject cannot be determined.
pub const IDENTIFY_FAILED_JSON: &str =
    r#"{"error":"the session could not be identified; see the server log"}"#;

const IDENTIFY_FAILED: Refusal = Refusal {
    status: 500,
    body: IDENTIFY_FAILED_JSON,
    content_type: "application/json",
};

/// Applies the idle timeout to every request of the wrapped service. Made by
/// [`SessionTimeout::layer`](crate::SessionTimeout::layer).
pub struct IdleTimeoutLayer<I> {
    shared: Arc<Shared<I>>,
}

impl<I> IdleTimeoutLayer<I> {
    pub(crate) fn new(shared: Arc<Shared<I>>) -> Self {
        IdleTimeoutLayer { shared }
    }
}

impl<I> Clone for IdleTimeoutLayer<I> {
    fn clone(&self) -> Self {
        IdleTimeoutLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<I> fmt::Debug for IdleTimeoutLayer<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeoutLayer")
            .field("policy", &format_args!("{}", self.shared.tracker.policy()))
            .finish()
    }
}

impl<S, I> Layer<S> for IdleTimeoutLayer<I> {
    type Service = IdleTimeoutService<S, I>;

    fn layer(&self, inner: S) -> Self::Service {
        IdleTimeoutService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`IdleTimeoutLayer`].
pub struct IdleTimeoutService<S, I> {
    inner: S,
    shared: Arc<Shared<I>>,
}

impl<S: Clone, I> Clone for IdleTimeoutService<S, I> {
    fn clone(&self) -> Self {
        IdleTimeoutService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, I> fmt::Debug for IdleTimeoutService<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeoutService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, I, ReqBody, ResBody> Service<Request<ReqBody>> for IdleTimeoutService<S, I>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    I: Identify,
    ReqBody: Send + 'static,
{
    type Response = Response<TimeoutBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !self.shared.tracker.policy().enabled() {
            return ResponseFuture::call(self.inner.call(req), None);
        }
        let (parts, body) = req.into_parts();
        let kind = self.shared.classify(&parts);
        let mut identifying = self.shared.identify.identify(&parts);
        let req = Request::from_parts(parts, body);
        // Most identifications are ready at once (a closure): try without a
        // waker so they cost no allocation. A pending one is polled again,
        // with the real waker, from the boxed gate.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut identifying).poll(&mut cx) {
            Poll::Ready(Ok(identity)) => self.gate(identity, kind, req),
            Poll::Ready(Err(err)) => ResponseFuture::refuse(identify_failed(&err)),
            Poll::Pending => self.gate_later(Gate::Identifying(identifying), kind, req),
        }
    }
}

impl<S, I: Identify> IdleTimeoutService<S, I> {
    fn gate<ReqBody, ResBody>(
        &mut self,
        identity: Identity,
        kind: RequestKind,
        req: Request<ReqBody>,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send,
        ReqBody: Send + 'static,
    {
        let Some((subject, check)) = self.shared.check(identity) else {
            return ResponseFuture::call(self.inner.call(req), None);
        };
        match check.now_or_never() {
            Some(decision) => match decision.refusal() {
                Some(refusal) => ResponseFuture::refuse(refusal),
                None => {
                    let activity = self.shared.defer(subject, kind);
                    ResponseFuture::call(self.inner.call(req), activity)
                }
            },
            None => self.gate_later(Gate::Checking(subject, check), kind, req),
        }
    }

    /// The gate needs I/O: finish it in a boxed future that owns a ready
    /// clone of the inner service.
    fn gate_later<ReqBody, ResBody>(
        &mut self,
        gate: Gate<I::Future>,
        kind: RequestKind,
        req: Request<ReqBody>,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send,
        ReqBody: Send + 'static,
    {
        let clone = self.inner.clone();
        // The service that was polled ready goes with the request.
        let mut inner = mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        ResponseFuture::gating(Box::pin(async move {
            let (subject, check) = match gate {
                Gate::Identifying(identifying) => match identifying.await {
                    Ok(identity) => match shared.check(identity) {
                        Some(checking) => checking,
                        None => return Outcome::Call(inner.call(req), None),
                    },
                    Err(err) => return Outcome::Refuse(identify_failed(&err)),
                },
                Gate::Checking(subject, check) => (subject, check),
            };
            match check.await.refusal() {
                Some(refusal) => Outcome::Refuse(refusal),
                None => Outcome::Call(inner.call(req), shared.defer(subject, kind)),
            }
        }))
    }
}

enum Gate<F> {
    Identifying(F),
    Checking(Option<Subject>, Check),
}

pub(crate) fn identify_failed(err: &crate::IdentifyError) -> Refusal {
    tracing::error!(target: "timeout", "refusing a request whose session could not be identified: {err}");
    IDENTIFY_FAILED
}

enum Outcome<F> {
    Call(F, Option<DeferredActivity>),
    Refuse(Refusal),
}

type GateFuture<F> = Pin<Box<dyn Future<Output = Outcome<F>> + Send>>;

pin_project! {
    /// Response future of [`IdleTimeoutService`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Gating { gate: GateFuture<F> },
        Calling { #[pin] fut: F, activity: Option<DeferredActivity> },
        Refused { refusal: Refusal },
    }
}

impl<F> ResponseFuture<F> {
    fn call(fut: F, activity: Option<DeferredActivity>) -> Self {
        ResponseFuture {
            state: State::Calling { fut, activity },
        }
    }

    fn refuse(refusal: Refusal) -> Self {
        ResponseFuture {
            state: State::Refused { refusal },
        }
    }

    fn gating(gate: GateFuture<F>) -> Self {
        ResponseFuture {
            state: State::Gating { gate },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TimeoutBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Gating { gate } => match ready!(gate.as_mut().poll(cx)) {
                    Outcome::Call(fut, activity) => self
                        .as_mut()
                        .project()
                        .state
                        .set(State::Calling { fut, activity }),
                    Outcome::Refuse(refusal) => return Poll::Ready(Ok(refused(refusal))),
                },
                StateProj::Calling { fut, activity } => {
                    let response = ready!(fut.poll(cx))?;
                    if let Some(activity) = activity.take()
                        && !Passive::is_on(&response)
                    {
                        record(activity);
                    }
                    return Poll::Ready(Ok(response.map(TimeoutBody::inner)));
                }
                StateProj::Refused { refusal } => return Poll::Ready(Ok(refused(*refusal))),
            }
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

/// Moves the deadline; a store that needs I/O finishes in the background so
/// the response is not held back.
fn record(activity: DeferredActivity) {
    let check = activity.record();
    if check.now_or_never().is_some() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(check);
        }
        Err(_) => tracing::warn!(
            target: "timeout",
            "activity not recorded: the store needs a Tokio runtime to write it"
        ),
    }
}

fn refused<B>(refusal: Refusal) -> Response<TimeoutBody<B>> {
    let mut response = Response::new(TimeoutBody::refusal(refusal.body));
    *response.status_mut() =
        StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(refusal.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
