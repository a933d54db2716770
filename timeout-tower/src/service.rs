//! The layer, its service and response future: the gate
//! (`timeout_core::adapter::Gate`) in front of an app's handlers.

use std::{
    fmt,
    future::Future,
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use timeout_core::adapter::{Decided, Deciding, DeferredActivity, Refusal, Verdict};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Identify, IdleTimeoutBody, Passive, config::Shared, view::PartsView};

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
            .field("gate", &self.shared.gate)
            .finish()
    }
}

impl<S, I> Layer<S> for IdleTimeoutLayer<I> {
    type Service = IdleTimeout<S, I>;

    fn layer(&self, inner: S) -> Self::Service {
        IdleTimeout {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`IdleTimeoutLayer`].
pub struct IdleTimeout<S, I> {
    inner: S,
    shared: Arc<Shared<I>>,
}

impl<S: Clone, I> Clone for IdleTimeout<S, I> {
    fn clone(&self) -> Self {
        IdleTimeout {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, I> fmt::Debug for IdleTimeout<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, I, ReqBody, ResBody> Service<Request<ReqBody>> for IdleTimeout<S, I>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    I: Identify,
    ReqBody: Send + 'static,
{
    type Response = Response<IdleTimeoutBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !self.shared.gate.enabled() {
            return ResponseFuture::call(self.inner.call(req), None);
        }
        let (parts, body) = req.into_parts();
        if self.shared.gate.bypasses(&PartsView(&parts)) {
            return ResponseFuture::call(self.inner.call(Request::from_parts(parts, body)), None);
        }
        let kind = self.shared.gate.classify(&PartsView(&parts));
        let identifying = self.shared.identify.identify(&parts);
        let req = Request::from_parts(parts, body);
        // The gate's state machine is the core's; this is only how a tower
        // service waits for it.
        match self.shared.gate.decide(identifying, kind) {
            Decided::Now(Verdict::Pass(activity)) => {
                ResponseFuture::call(self.inner.call(req), activity)
            }
            Decided::Now(Verdict::Refuse(refusal)) => ResponseFuture::refuse(refusal),
            Decided::Later(deciding) => self.gate_later(deciding, req),
        }
    }
}

impl<S, I: Identify> IdleTimeout<S, I> {
    /// The gate needs I/O: finish it in a boxed future that owns a ready
    /// clone of the inner service.
    fn gate_later<ReqBody, ResBody>(
        &mut self,
        deciding: Deciding<I::Future>,
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
        ResponseFuture::gating(Box::pin(async move {
            match deciding.await {
                Verdict::Pass(activity) => Outcome::Call(inner.call(req), activity),
                Verdict::Refuse(refusal) => Outcome::Refuse(refusal),
            }
        }))
    }
}

enum Outcome<F> {
    Call(F, Option<DeferredActivity>),
    Refuse(Refusal),
}

type GateFuture<F> = Pin<Box<dyn Future<Output = Outcome<F>> + Send>>;

pin_project! {
    /// Response future of [`IdleTimeout`].
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
    type Output = Result<Response<IdleTimeoutBody<B>>, E>;

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
                        activity.finish();
                    }
                    return Poll::Ready(Ok(response.map(IdleTimeoutBody::inner)));
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

fn refused<B>(refusal: Refusal) -> Response<IdleTimeoutBody<B>> {
    crate::refusal::refusal_response(refusal, IdleTimeoutBody::refusal)
}
