//! The axum routes: reset, WebSocket notifications, Server-Sent Events.
//! Each route identifies and checks the request itself, so it behaves the
//! same whether or not the layer also wraps it.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{
        Request, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code},
    },
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures_util::{Stream, stream};
use timeout_core::{
    Beat, CLOSE_LOGGED_OUT, CLOSE_TIMED_OUT, CLOSE_UNRESPONSIVE, ClientAsset, Heartbeat,
    MAX_CLIENT_MESSAGE, Notification, Refusal, RequestKind, Subject, Subscription, status_json,
};

use crate::{Identify, Passive, SessionTimeout, config::Shared};

impl<I: Identify> SessionTimeout<I> {
    /// The routes, to merge into the app's router: `GET` reset (counts as
    /// activity, nothing else), the WebSocket notifications, the
    /// Server-Sent Events stream and the passive status (time left), which
    /// answer 401 without a subject; and the browser client's files
    /// (`idle-timeout.js`, `idle-timeout.css`), which anyone may fetch.
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn routes<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let shared = self.shared();
        let endpoints = shared.gate.endpoints().clone();
        let router = Router::new()
            .route(endpoints.reset_path(), get(reset::<I>))
            .route(endpoints.notifications_path(), get(notifications::<I>))
            .route(endpoints.events_path(), get(events::<I>))
            .route(endpoints.status_path(), get(status::<I>))
            .with_state(shared);
        endpoints
            .client_files()
            .fold(router, |router, (path, asset)| {
                router.route(
                    &path,
                    get(move |headers: HeaderMap| async move { client_file(asset, &headers) }),
                )
            })
    }
}

/// Identifies and checks a route's request; `Err` is the response to send.
async fn admit<I: Identify>(
    shared: &Shared<I>,
    request: Request,
    kind: RequestKind,
) -> Result<Subject, Response> {
    let (parts, _body) = request.into_parts();
    let identified = shared.identify.identify(&parts).await;
    shared
        .gate
        .admit(identified, kind)
        .await
        .map_err(refusal_response)
}

async fn reset<I: Identify>(State(shared): State<Arc<Shared<I>>>, request: Request) -> Response {
    match admit(&shared, request, RequestKind::Activity).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(response) => response,
    }
}

async fn status<I: Identify>(State(shared): State<Arc<Shared<I>>>, request: Request) -> Response {
    let subject = match admit(&shared, request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    match status_json(shared.gate.tracker(), &subject).await {
        Ok(body) => (
            Passive,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(refusal) => refusal_response(refusal),
    }
}

fn client_file(asset: &'static ClientAsset, headers: &HeaderMap) -> Response {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok());
    let answer = asset.answer(if_none_match);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    (
        status,
        Passive,
        [
            (header::CONTENT_TYPE, answer.content_type),
            (header::ETAG, answer.etag),
            (header::CACHE_CONTROL, answer.cache_control),
        ],
        answer.body,
    )
        .into_response()
}

async fn notifications<I: Identify>(
    State(shared): State<Arc<Shared<I>>>,
    upgrade: WebSocketUpgrade,
    request: Request,
) -> Response {
    let subject = match admit(&shared, request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    // Subscribed before the upgrade so nothing sent meanwhile is lost.
    let subscription = shared.gate.tracker().subscribe(&subject);
    let ping_every = shared.gate.endpoints().ping_every();
    let response = upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_failed_upgrade(|err| {
            tracing::debug!(target: "timeout", "notification socket upgrade failed: {err}");
        })
        .on_upgrade(move |socket| forward(socket, subscription, ping_every));
    (Passive, response).into_response()
}

/// Sends the subject's notifications until the logout (then closes), the
/// end of the subscription (explicit logout) or the client leaves or stops
/// answering pings. What the client sends is read and ignored: the socket
/// only listens to the server.
async fn forward(mut socket: WebSocket, mut subscription: Subscription, ping_every: Duration) {
    let mut heartbeat = Heartbeat::default();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            notification = subscription.recv() => {
                let Some(notification) = notification else {
                    let _ = socket.send(close(CLOSE_LOGGED_OUT)).await;
                    return;
                };
                let logout = notification.is_logout();
                if socket.send(Message::Text(notification.to_json().into())).await.is_err() {
                    return;
                }
                if logout {
                    let _ = socket.send(close(CLOSE_TIMED_OUT)).await;
                    return;
                }
            }
            _ = ping.tick() => match heartbeat.tick() {
                Beat::Ping => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                _ => {
                    tracing::debug!(target: "timeout", "closing a notification socket whose client stopped answering");
                    let _ = socket.send(close(CLOSE_UNRESPONSIVE)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => heartbeat.heard(),
            },
        }
    }
}

fn close(reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::NORMAL,
        reason: reason.into(),
    }))
}

async fn events<I: Identify>(State(shared): State<Arc<Shared<I>>>, request: Request) -> Response {
    let subject = match admit(&shared, request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let subscription = shared.gate.tracker().subscribe(&subject);
    let sse = Sse::new(event_stream(subscription))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    (Passive, sse).into_response()
}

/// One `data:` event per notification; the stream ends after the logout.
fn event_stream(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Some(subscription), |subscription| async move {
        let mut subscription = subscription?;
        let notification: Notification = subscription.recv().await?;
        let next = (!notification.is_logout()).then_some(subscription);
        Some((Ok(Event::default().data(notification.to_json())), next))
    })
}

fn refusal_response(refusal: Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, refusal.content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        refusal.body,
    )
        .into_response();
    if let Some(seconds) = refusal.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}
