//! The middleware: the gate (`timeout_core::adapter::Gate`) in front of an app's
//! handlers, as an actix-web `Transform` and its `Service`.

use std::{
    fmt,
    future::{Future, Ready, ready},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
};

use actix_web::{
    Error,
    body::{EitherBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
};
use pin_project_lite::pin_project;
use timeout_core::adapter::{Decided, Deciding, DeferredActivity, Refusal, Verdict};

use crate::{Identify, config::Shared, marker::is_passive, view::View};

/// Applies the idle timeout to every request of the wrapped app, scope or
/// resource. Made by
/// [`SessionTimeout::middleware`](crate::SessionTimeout::middleware).
pub struct IdleTimeoutMiddleware<I> {
    shared: Rc<Shared<I>>,
}

impl<I> IdleTimeoutMiddleware<I> {
    pub(crate) fn new(shared: Rc<Shared<I>>) -> Self {
        IdleTimeoutMiddleware { shared }
    }
}

impl<I> Clone for IdleTimeoutMiddleware<I> {
    fn clone(&self) -> Self {
        IdleTimeoutMiddleware {
            shared: Rc::clone(&self.shared),
        }
    }
}

impl<I> fmt::Debug for IdleTimeoutMiddleware<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeoutMiddleware")
            .field("gate", &self.shared.gate)
            .finish()
    }
}

impl<S, B, I> Transform<S, ServiceRequest> for IdleTimeoutMiddleware<I>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    I: Identify,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = IdleTimeoutService<S, I>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(IdleTimeoutService {
            service: Rc::new(service),
            shared: Rc::clone(&self.shared),
        }))
    }
}

/// The service of [`IdleTimeoutMiddleware`].
pub struct IdleTimeoutService<S, I> {
    service: Rc<S>,
    shared: Rc<Shared<I>>,
}

impl<S, I> fmt::Debug for IdleTimeoutService<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeoutService")
            .field("gate", &self.shared.gate)
            .finish_non_exhaustive()
    }
}

impl<S, B, I> Service<ServiceRequest> for IdleTimeoutService<S, I>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    I: Identify,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let shared = &self.shared;
        if !shared.gate.enabled() || shared.gate.bypasses(&View(req.request())) {
            return ResponseFuture::call(self.service.call(req), None);
        }
        let kind = shared.gate.classify(&View(req.request()));
        let identifying = shared.identify.identify(req.request());
        // The gate's state machine is the core's; this is only how an actix
        // service waits for it.
        match shared.gate.decide(identifying, kind) {
            Decided::Now(Verdict::Pass(activity)) => {
                ResponseFuture::call(self.service.call(req), activity)
            }
            Decided::Now(Verdict::Refuse(refusal)) => self.refuse(req, refusal),
            Decided::Later(deciding) => self.later(deciding, req),
        }
    }
}

impl<S, B, I> IdleTimeoutService<S, I>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    I: Identify,
{
    fn refuse(&self, req: ServiceRequest, refusal: Refusal) -> ResponseFuture<S::Future, B> {
        ResponseFuture::done(refused(&self.shared, req, refusal))
    }

    /// The gate needs I/O: finish it in a boxed future that calls the
    /// service once the verdict is in.
    fn later(
        &self,
        deciding: Deciding<I::Future>,
        req: ServiceRequest,
    ) -> ResponseFuture<S::Future, B> {
        let service = Rc::clone(&self.service);
        let shared = Rc::clone(&self.shared);
        ResponseFuture::later(Box::pin(async move {
            match deciding.await {
                Verdict::Refuse(refusal) => Ok(refused(&shared, req, refusal)),
                Verdict::Pass(activity) => {
                    let response = service.call(req).await?;
                    Ok(answered(response, activity))
                }
            }
        }))
    }
}

fn refused<B, I: Identify>(
    shared: &Shared<I>,
    req: ServiceRequest,
    refusal: Refusal,
) -> ServiceResponse<EitherBody<B>> {
    let response = shared.refuse(req.request(), refusal);
    req.into_response(response).map_into_right_body()
}

/// The app answered: its activity counts unless the response is passive.
fn answered<B>(
    response: ServiceResponse<B>,
    activity: Option<DeferredActivity>,
) -> ServiceResponse<EitherBody<B>> {
    if let Some(activity) = activity
        && !is_passive(response.response())
    {
        activity.finish();
    }
    response.map_into_left_body()
}

type Later<B> = Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>>>;

pin_project! {
    /// Response future of [`IdleTimeoutService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Calling { #[pin] fut: F, activity: Option<DeferredActivity> },
        Done { response: Option<ServiceResponse<EitherBody<B>>> },
        Later { fut: Later<B> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn call(fut: F, activity: Option<DeferredActivity>) -> Self {
        ResponseFuture {
            state: State::Calling { fut, activity },
        }
    }

    fn done(response: ServiceResponse<EitherBody<B>>) -> Self {
        ResponseFuture {
            state: State::Done {
                response: Some(response),
            },
        }
    }

    fn later(fut: Later<B>) -> Self {
        ResponseFuture {
            state: State::Later { fut },
        }
    }
}

impl<F, B> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Calling { fut, activity } => {
                let response = std::task::ready!(fut.poll(cx))?;
                Poll::Ready(Ok(answered(response, activity.take())))
            }
            StateProj::Done { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Later { fut } => fut.as_mut().poll(cx),
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}
