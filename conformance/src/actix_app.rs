//! The test app of the contract in the crate docs, on actix-web +
//! timeout-actix + actix-session (cookie store), run on its own actix system
//! thread.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
};

use actix_session::{
    Session, SessionMiddleware, config::PersistentSession, storage::CookieSessionStore,
};
use actix_web::{App, HttpResponse, HttpServer, cookie::Key, dev::ServerHandle, web};
use serde_json::{Value, json};
use timeout_actix::{
    Passive, SessionTimeout, mark_passive,
    session::{self, ActixSession, ExpiryAudit, SessionUser},
};
use timeout_core::{Policy, Tracker};

use crate::{AppConfig, HookCounts, Launch, RunningApp, StoreFactory, login_request};

/// Launches the actix-web test app.
#[derive(Clone, Default)]
pub struct ActixApp {
    store: Option<StoreFactory>,
}

impl ActixApp {
    /// With the embedded memory store.
    pub fn memory() -> ActixApp {
        ActixApp::default()
    }

    /// With a store made by `factory` for each app.
    pub fn with_store(factory: StoreFactory) -> ActixApp {
        ActixApp {
            store: Some(factory),
        }
    }
}

#[derive(Clone)]
struct AppState {
    tracker: Tracker,
    work_calls: Arc<AtomicU64>,
    hooks: HookCounts,
}

impl Launch for ActixApp {
    fn start(&self, config: AppConfig) -> Pin<Box<dyn Future<Output = RunningApp> + Send + '_>> {
        let store = self.store.clone();
        Box::pin(async move {
            let (started, on_start) = tokio::sync::oneshot::channel();
            let system = thread::spawn(move || {
                actix_web::rt::System::new().block_on(serve(config, store, started))
            });
            let (addr, handle) = on_start.await.unwrap_or_else(|_| {
                panic!("the actix test app did not start: {:?}", system.join())
            });
            RunningApp {
                base: format!("http://{addr}"),
                guard: Box::new(Guard { handle }),
            }
        })
    }
}

/// Runs the app on the current actix system until it is stopped.
async fn serve(
    config: AppConfig,
    store: Option<StoreFactory>,
    started: tokio::sync::oneshot::Sender<(std::net::SocketAddr, ServerHandle)>,
) {
    let policy = Policy::from_properties(&config.properties)
        .unwrap_or_else(|e| panic!("the scenario's properties are invalid: {e}"));
    let hooks = HookCounts::default();
    let mut builder = Tracker::builder(policy).hook(hooks.hook());
    if let Some(factory) = &store {
        builder = builder.store(factory());
    }
    let tracker = builder.build();
    let _sweeper = config.sweeper.then(|| tracker.spawn_sweeper());
    let ledger = timeout_core::framework::FrameworkSessions::new("actix-session");
    let _watch = ledger.watch(tracker.clone(), crate::axum_app::FRAMEWORK_WATCH);
    let session_ttl = actix_web::cookie::time::Duration::try_from(config.framework_session)
        .unwrap_or_else(|e| panic!("a framework session lifetime in range: {e}"));
    let state = web::Data::new(AppState {
        tracker: tracker.clone(),
        work_calls: Arc::default(),
        hooks,
    });
    let timeout =
        SessionTimeout::new(tracker, ActixSession::new()).ping_interval(config.ping_interval);
    let key = Key::generate();

    let server = HttpServer::new(move || {
        let tracked = web::scope("")
            .service(
                web::resource("/dashboard")
                    .wrap(mark_passive())
                    .route(web::get().to(|| async { "{}" })),
            )
            .route("/unread", web::get().to(|| async { Passive("3") }))
            .route("/work", web::get().to(work))
            .route("/poll/status", web::get().to(|| async { "idle" }))
            .configure(timeout.routes())
            .wrap(timeout.middleware());
        // Logging in and out must work with a timed-out cookie: outside.
        App::new()
            .app_data(state.clone())
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/plain/me", web::get().to(me))
            .route("/test/calls", web::get().to(calls))
            .route("/test/hooks", web::get().to(hook_counts))
            .route("/test/time-left", web::get().to(time_left))
            .route("/test/active", web::get().to(active))
            .service(web::scope("/admin").configure(timeout.admin_routes()))
            .service(tracked)
            .wrap(
                SessionMiddleware::builder(
                    ExpiryAudit::new(CookieSessionStore::default(), ledger.clone()),
                    key.clone(),
                )
                .cookie_secure(false)
                .session_lifecycle(PersistentSession::default().session_ttl(session_ttl))
                .build(),
            )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("binding a free port on 127.0.0.1");
    let addr = server.addrs()[0];
    let server = server.run();
    if started.send((addr, server.handle())).is_err() {
        return;
    }
    if let Err(e) = server.await {
        panic!("the actix test app stopped: {e}");
    }
}

struct Guard {
    handle: ServerHandle,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The stop command is sent at once; the system thread then ends.
        drop(self.handle.stop(false));
    }
}

async fn work(state: web::Data<AppState>) -> &'static str {
    state.work_calls.fetch_add(1, Ordering::SeqCst);
    "ok"
}

async fn login(state: web::Data<AppState>, session: Session, body: web::Bytes) -> HttpResponse {
    let Some((user, groups)) = login_request(&body) else {
        return HttpResponse::BadRequest().body("expected {\"user\": .., \"groups\": [..]}");
    };
    let user = SessionUser::new(user).with_groups(groups);
    match session::log_in(&session, &state.tracker, user).await {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

async fn logout(state: web::Data<AppState>, session: Session) -> HttpResponse {
    match session::log_out(&session, &state.tracker).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

async fn me(session: Session) -> HttpResponse {
    match session::subject_of(&session) {
        Ok(Some(subject)) => json_response(json!({ "user": subject.user() })),
        _ => HttpResponse::Unauthorized().finish(),
    }
}

async fn calls(state: web::Data<AppState>) -> HttpResponse {
    json_response(json!({ "work": state.work_calls.load(Ordering::SeqCst) }))
}

async fn hook_counts(state: web::Data<AppState>) -> HttpResponse {
    json_response(state.hooks.to_json())
}

async fn time_left(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let ms = match session::subject_of(&session) {
        Ok(Some(subject)) => state
            .tracker
            .time_left(&subject)
            .await
            .ok()
            .flatten()
            .map(|d| d.as_millis() as u64),
        _ => None,
    };
    json_response(json!({ "ms": ms }))
}

async fn active(state: web::Data<AppState>) -> HttpResponse {
    json_response(json!({ "active": state.tracker.active_count().await.unwrap_or(0) }))
}

fn json_response(value: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(value.to_string())
}
