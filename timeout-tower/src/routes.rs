//! The axum routes: reset, WebSocket notifications, Server-Sent Events.
//! Each route identifies and checks the request itself, so it behaves the
//! same whether or not the layer also wraps it.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Router,
    extract::{
        Request, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::StreamExt;
use timeout_core::{
    RequestKind, Subject,
    adapter::{
        ClientAsset, Incoming, MAX_CLIENT_MESSAGE, NotificationSocket, Refusal, SseFrames,
        forward_notifications, status_json,
    },
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
        .on_upgrade(move |socket| {
            forward_notifications(AxumSocket(socket), subscription, ping_every)
        });
    (Passive, response).into_response()
}

/// axum's WebSocket for the core's loop. axum answers pings itself.
struct AxumSocket(WebSocket);

impl NotificationSocket for AxumSocket {
    async fn send_text(&mut self, json: String) -> bool {
        self.0.send(Message::Text(json.into())).await.is_ok()
    }

    async fn send_ping(&mut self) -> bool {
        self.0.send(Message::Ping(Default::default())).await.is_ok()
    }

    async fn close(&mut self, reason: &'static str) {
        let frame = CloseFrame {
            code: close_code::NORMAL,
            reason: reason.into(),
        };
        let _ = self.0.send(Message::Close(Some(frame))).await;
    }

    async fn receive(&mut self) -> Incoming {
        match self.0.recv().await {
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Incoming::Gone,
            Some(Ok(_)) => Incoming::Heard,
        }
    }
}

async fn events<I: Identify>(State(shared): State<Arc<Shared<I>>>, request: Request) -> Response {
    let subject = match admit(&shared, request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let subscription = shared.gate.tracker().subscribe(&subject);
    let frames = SseFrames::new(subscription).map(Ok::<_, Infallible>);
    let response = (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(frames),
    );
    (Passive, response).into_response()
}

fn refusal_response(refusal: Refusal) -> Response {
    crate::refusal::refusal_response(refusal, axum::body::Body::from)
}
