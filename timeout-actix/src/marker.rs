//! Marking a response passive: it was answered, but it does not count as
//! the user's activity (a poll, an auto-refreshing widget).

use std::{
    fmt,
    future::{Future, Ready, ready},
    pin::Pin,
    task::{Context, Poll},
};

use actix_web::{
    Error, HttpRequest, HttpResponse, Responder,
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
};
use pin_project_lite::pin_project;

/// The response extension the middleware looks for.
#[derive(Debug, Clone, Copy)]
struct PassiveMark;

pub(crate) fn is_passive<B>(response: &HttpResponse<B>) -> bool {
    response.extensions().get::<PassiveMark>().is_some()
}

/// Marks `response` passive by hand, for handlers that build their own
/// `HttpResponse`.
pub fn mark<B>(response: &mut HttpResponse<B>) {
    response.extensions_mut().insert(PassiveMark);
}

/// A handler's answer that does not count as activity.
///
/// ```
/// use actix_web::{App, web};
/// use timeout_actix::Passive;
///
/// let app = App::new().route("/api/unread", web::get().to(|| async { Passive("3") }));
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Passive<R>(pub R);

impl<R: Responder> Responder for Passive<R> {
    type Body = R::Body;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<Self::Body> {
        let mut response = self.0.respond_to(req);
        mark(&mut response);
        response
    }
}

/// Middleware that marks every response of a resource or scope passive.
///
/// ```
/// use actix_web::{App, web};
/// use timeout_actix::mark_passive;
///
/// let app = App::new().service(
///     web::resource("/api/dashboard")
///         .wrap(mark_passive())
///         .route(web::get().to(|| async { "{}" })),
/// );
/// # let _ = app;
/// ```
pub fn mark_passive() -> MarkPassive {
    MarkPassive
}

/// See [`mark_passive`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkPassive;

impl<S, B> Transform<S, ServiceRequest> for MarkPassive
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = MarkPassiveMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(MarkPassiveMiddleware { service }))
    }
}

/// The service of [`MarkPassive`].
pub struct MarkPassiveMiddleware<S> {
    service: S,
}

impl<S> fmt::Debug for MarkPassiveMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MarkPassiveMiddleware")
    }
}

impl<S, B> Service<ServiceRequest> for MarkPassiveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = MarkPassiveFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        MarkPassiveFuture {
            fut: self.service.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`MarkPassiveMiddleware`].
    pub struct MarkPassiveFuture<F> {
        #[pin]
        fut: F,
    }
}

impl<F, B> Future for MarkPassiveFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<B>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = std::task::ready!(self.project().fut.poll(cx))?;
        mark(response.response_mut());
        Poll::Ready(Ok(response))
    }
}

impl<F> fmt::Debug for MarkPassiveFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MarkPassiveFuture")
    }
}
