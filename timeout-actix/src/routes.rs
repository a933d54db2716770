//! The routes: reset, WebSocket notifications (actix-ws), Server-Sent
//! Events. Each route identifies and checks the request itself, so it
//! behaves the same whether or not the middleware also wraps it.

use std::convert::Infallible;

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web::{self, ServiceConfig},
};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream};
use bytes::Bytes;
use futures_util::StreamExt;
use timeout_core::{
    RequestKind, Subject,
    adapter::{
        ClientAsset, Incoming, MAX_CLIENT_MESSAGE, NotificationSocket, SseFrames,
        forward_notifications, status_json,
    },
};

use crate::{Identify, SessionTimeout, config::Shared, marker};

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
    let socket = ActixSocket { session, messages };
    actix_web::rt::spawn(forward_notifications(socket, subscription, ping_every));
    marker::mark(&mut response);
    response
}

/// actix-ws's session and message stream for the core's loop: pings are
/// answered here, and the session is closed after the client's close.
struct ActixSocket {
    session: actix_ws::Session,
    messages: MessageStream,
}

impl NotificationSocket for ActixSocket {
    async fn send_text(&mut self, json: String) -> bool {
        self.session.text(json).await.is_ok()
    }

    async fn send_ping(&mut self) -> bool {
        self.session.ping(b"").await.is_ok()
    }

    async fn close(&mut self, reason: &'static str) {
        let reason = CloseReason {
            code: CloseCode::Normal,
            description: Some(reason.to_owned()),
        };
        let _ = self.session.clone().close(Some(reason)).await;
    }

    async fn receive(&mut self) -> Incoming {
        match self.messages.recv().await {
            Some(Ok(Message::Ping(bytes))) => match self.session.pong(&bytes).await {
                Ok(()) => Incoming::Heard,
                Err(_) => Incoming::Gone,
            },
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                let _ = self.session.clone().close(None).await;
                Incoming::Gone
            }
            Some(Ok(_)) => Incoming::Heard,
        }
    }
}

async fn events<I: Identify>(request: HttpRequest, shared: web::Data<Shared<I>>) -> HttpResponse {
    let subject = match admit(&shared, &request, RequestKind::Passive).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let subscription = shared.gate.tracker().subscribe(&subject);
    let frames = SseFrames::new(subscription).map(|frame| Ok::<_, Infallible>(Bytes::from(frame)));
    let mut response = HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(frames);
    marker::mark(&mut response);
    response
}
