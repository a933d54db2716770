//! Per-route marking of passive requests: a route layer, or a marker the
//! handler returns. Both put [`Passive`] in the response extensions, where
//! the timeout layer looks before it counts the request as activity.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Marks a response as answering a passive request (polling, an
/// auto-refreshing dashboard): the request does not move the deadline.
///
/// Return it from an axum handler next to the body:
///
/// ```
/// use timeout_tower::Passive;
///
/// async fn unread_count() -> (Passive, &'static str) {
///     (Passive, "3")
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passive;

impl Passive {
    /// Whether `response` carries the marker.
    pub fn is_on<B>(response: &Response<B>) -> bool {
        response.extensions().get::<Passive>().is_some()
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponseParts for Passive {
    type Error = std::convert::Infallible;

    fn into_response_parts(
        self,
        mut res: axum::response::ResponseParts,
    ) -> Result<axum::response::ResponseParts, Self::Error> {
        res.extensions_mut().insert(Passive);
        Ok(res)
    }
}

/// A route layer marking every response of the routes it wraps [`Passive`].
///
/// ```
/// use axum::{Router, routing::get};
/// use timeout_tower::mark_passive;
///
/// let app: Router = Router::new()
///     .route("/api/dashboard", get(|| async { "{}" }))
///     .route_layer(mark_passive());
/// ```
pub fn mark_passive() -> MarkPassiveLayer {
    MarkPassiveLayer
}

/// See [`mark_passive`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkPassiveLayer;

impl<S> Layer<S> for MarkPassiveLayer {
    type Service = MarkPassive<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MarkPassive { inner }
    }
}

/// The service of [`MarkPassiveLayer`].
#[derive(Debug, Clone)]
pub struct MarkPassive<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MarkPassive<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = MarkPassiveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        MarkPassiveFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`MarkPassive`].
    pub struct MarkPassiveFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for MarkPassiveFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        response.extensions_mut().insert(Passive);
        Poll::Ready(Ok(response))
    }
}
