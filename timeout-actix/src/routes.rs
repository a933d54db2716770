//! The routes: reset, WebSocket notifications (actix-ws), Server-Sent
//! Events. Each route identifies and checks the request itself, so it
//! behaves the same whether or not the middleware also wraps it.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web::{self, ServiceConfig},
};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream};
use bytes::Bytes;
use futures_core::Stream;
use timeout_core::{
    Beat, CLOSE_LOGGED_OUT, CLOSE_TIMED_OUT, CLOSE_UNRESPONSIVE, ClientAsset, Heartbeat,
    MAX_CLIENT_MESSAGE, RequestKind, Subject, Subscription, status_json,
};
use tokio::time::{Instant, Interval, interval_at};

use crate::{Identify, SessionTimeout, config::Shared, marker};

/// How often the event stream sends a comment line, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

impl<I: Identify> SessionTimeout<I> {
    /// The routes, for `App::configure` (or a scope's): `GET` reset (counts
    /// as activity, nothing else), the WebSocket notifications, the
    /// Server-Sent Events stream and the passive status (time left), which
    /// answer 401 without a subject; and the browser client's files
    /// (`idle-timeout.js`, `idle-timeout.css`), which anyone may fetch.
    pub fn routes(&self) -> impl FnOnce(&mut ServiceConfig) + use<I> {
        let shared = web::Data::new(self.shared_value());
        move |config| {
            let endpoints = shared.gate.endpoints().clone();
            config
                .service(
                    web::resource(endpoints.reset_path())
                        .app_data(shared.clone())
                        .route(web::get().to(reset::<I>)),
                )
                .service(
                    web::resource(endpoints.notifications_path())
                        .app_data(shared.clone())
                        .route(web::get().to(notifications::<I>)),
                )
                .service(
                    web::resource(endpoints.events_path())
                        .app_data(shared.clone())
                        .route(web::get().to(events::<I>)),
                )
                .service(
                    web::resource(endpoints.status_path())
                        .app_data(shared)
                        .route(web::get().to(status::<I>)),
                );
            for (path, asset) in endpoints.client_files() {
                config.service(
                    web::resource(path).route(
                        web::get().to(move |request: HttpRequest| client_file(asset, request)),
                    ),
                );
            }
        }
    }
}

/// Identifies and checks a route's request; `Err` is the response to send.
async fn admit<I: Identify>(
    shared: &Shared<I>,
    request: &HttpRequest,
    kind: RequestKind,
) -> Result<Subject, HttpResponse> {
    let identified = shared.identify.identify(request).await;
    shared
        .gate
        .admit(identified, kind)
        .await
        .map_err(|refusal| shared.refuse(request, refusal))
}

async fn reset<I: Identify>(request: HttpRequest, shared: web::Data<Shared<I>>) -> HttpResponse {
    match admit(&shared, &request, RequestKind::Activity).await {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(response) => response,
    }
}

async fn status<I: Identify>(request: HttpRequest, shared: web::Data<Shared<I>>) -> HttpResponse {
    let subject = match admit(&shared, &request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let mut response = match status_json(shared.gate.tracker(), &subject).await {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(refusal) => shared.refuse(&request, refusal),
    };
    marker::mark(&mut response);
    response
}

async fn client_file(asset: &'static ClientAsset, request: HttpRequest) -> HttpResponse {
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok());
    let answer = asset.answer(if_none_match);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status)
        .content_type(answer.content_type)
        .insert_header((header::ETAG, answer.etag))
        .insert_header((header::CACHE_CONTROL, answer.cache_control))
        .body(answer.body);
    marker::mark(&mut response);
    response
}

async fn notifications<I: Identify>(
    request: HttpRequest,
    body: web::Payload,
    shared: web::Data<Shared<I>>,
) -> HttpResponse {
    let subject = match admit(&shared, &request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    // Subscribed before the upgrade so nothing sent meanwhile is lost.
    let subscription = shared.gate.tracker().subscribe(&subject);
    let (mut response, session, messages) = match actix_ws::handle(&request, body) {
        Ok(upgrade) => upgrade,
        Err(err) => {
            tracing::debug!(target: "timeout", "notification socket upgrade failed: {err}");
            return err.error_response();
        }
    };
    let messages = messages.max_frame_size(MAX_CLIENT_MESSAGE);
    let ping_every = shared.gate.endpoints().ping_every();
    actix_web::rt::spawn(forward(session, messages, subscription, ping_every));
    marker::mark(&mut response);
    response
}

/// Sends the subject's notifications until the logout (then closes), the
/// end of the subscription (explicit logout) or the client leaves or stops
/// answering pings. What the client sends is read and ignored (pings
/// answered): the socket only listens to the server.
async fn forward(
    mut session: actix_ws::Session,
    mut messages: MessageStream,
    mut subscription: Subscription,
    ping_every: Duration,
) {
    let mut heartbeat = Heartbeat::default();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            notification = subscription.recv() => {
                let Some(notification) = notification else {
                    let _ = session.close(Some(close(CLOSE_LOGGED_OUT))).await;
                    return;
                };
                let logout = notification.is_logout();
                if session.text(notification.to_json()).await.is_err() {
                    return;
                }
                if logout {
                    let _ = session.close(Some(close(CLOSE_TIMED_OUT))).await;
                    return;
                }
            }
            _ = ping.tick() => match heartbeat.tick() {
                Beat::Ping => {
                    if session.ping(b"").await.is_err() {
                        return;
                    }
                }
                _ => {
                    tracing::debug!(target: "timeout", "closing a notification socket whose client stopped answering");
                    let _ = session.close(Some(close(CLOSE_UNRESPONSIVE))).await;
                    return;
                }
            },
            incoming = messages.recv() => match incoming {
                Some(Ok(Message::Ping(bytes))) => {
                    heartbeat.heard();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    let _ = session.close(None).await;
                    return;
                }
                Some(Ok(_)) => heartbeat.heard(),
            },
        }
    }
}

fn close(reason: &str) -> CloseReason {
    CloseReason {
        code: CloseCode::Normal,
        description: Some(reason.to_owned()),
    }
}

async fn events<I: Identify>(request: HttpRequest, shared: web::Data<Shared<I>>) -> HttpResponse {
    let subject = match admit(&shared, &request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let subscription = shared.gate.tracker().subscribe(&subject);
    let mut response = HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(EventStream::new(subscription));
    marker::mark(&mut response);
    response
}

/// One `data:` event per notification, a comment line every
/// [`KEEP_ALIVE`]; ends after the logout or an explicit logout.
struct EventStream {
    subscription: Option<Subscription>,
    keep_alive: Interval,
}

impl EventStream {
    fn new(subscription: Subscription) -> Self {
        EventStream {
            subscription: Some(subscription),
            keep_alive: interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        }
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(subscription) = self.subscription.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(subscription).poll_next(cx) {
            Poll::Ready(Some(notification)) => {
                if notification.is_logout() {
                    self.subscription = None;
                }
                let frame = format!("data: {}\n\n", notification.to_json());
                return Poll::Ready(Some(Ok(Bytes::from(frame))));
            }
            Poll::Ready(None) => {
                self.subscription = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match self.keep_alive.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n")))),
            Poll::Pending => Poll::Pending,
        }
    }
}
