//! The test app of the contract in the crate docs, on axum + timeout-tower +
//! tower-sessions.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::Bytes;
use serde_json::{Value, json};
use timeout_core::{Policy, Tracker};
use timeout_tower::{
    Passive, SessionTimeout, mark_passive,
    sessions::{self, DeleteSessions, ExpiryAudit, SessionUser, TowerSessions},
};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

use crate::{AppConfig, HookCounts, Launch, RunningApp, StoreFactory, login_request};

/// How often the framework-session watch looks: the "time since it
/// expired" of a record is at most about this.
pub(crate) const FRAMEWORK_WATCH: std::time::Duration = std::time::Duration::from_millis(100);

/// Launches the axum test app.
#[derive(Clone, Default)]
pub struct AxumApp {
    store: Option<StoreFactory>,
}

impl AxumApp {
    /// With the embedded memory store.
    pub fn memory() -> AxumApp {
        AxumApp::default()
    }

    /// With a store made by `factory` for each app.
    pub fn with_store(factory: StoreFactory) -> AxumApp {
        AxumApp {
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

impl Launch for AxumApp {
    fn start(&self, config: AppConfig) -> Pin<Box<dyn Future<Output = RunningApp> + Send + '_>> {
        Box::pin(async move {
            let policy = Policy::from_properties(&config.properties)
                .unwrap_or_else(|e| panic!("the scenario's properties are invalid: {e}"));
            let sessions_store = ExpiryAudit::new(MemoryStore::default());
            let hooks = HookCounts::default();
            let mut builder = Tracker::builder(policy)
                .hook(DeleteSessions::new(sessions_store.clone()))
                .hook(hooks.hook());
            if let Some(factory) = &self.store {
                builder = builder.store(factory());
            }
            let tracker = builder.build();
            let sweeper = config.sweeper.then(|| tracker.spawn_sweeper());
            let watch = sessions_store.watch_every(&tracker, FRAMEWORK_WATCH);
            let state = AppState {
                tracker: tracker.clone(),
                work_calls: Arc::default(),
                hooks,
            };

            let expiry = Expiry::OnInactivity(
                time::Duration::try_from(config.framework_session)
                    .unwrap_or_else(|e| panic!("a framework session lifetime in range: {e}")),
            );
            let timeout = SessionTimeout::new(tracker, TowerSessions::new().expiry(expiry))
                .ping_interval(config.ping_interval);
            let tracked = Router::new()
                .route("/dashboard", get(|| async { "{}" }))
                .route_layer(mark_passive())
                .route("/unread", get(|| async { (Passive, "3") }))
                .route("/work", get(work))
                .route("/poll/status", get(|| async { "idle" }))
                .merge(timeout.routes())
                .layer(timeout.layer());
            // Logging in and out must work with a timed-out cookie: outside.
            let app = tracked
                .route("/login", post(login))
                .route("/logout", post(logout))
                .route("/plain/me", get(me))
                .route("/test/calls", get(calls))
                .route("/test/hooks", get(hook_counts))
                .route("/test/time-left", get(time_left))
                .route("/test/active", get(active))
                .nest("/admin", timeout.admin_routes())
                .layer(
                    SessionManagerLayer::new(sessions_store)
                        .with_secure(false)
                        .with_expiry(expiry),
                )
                .with_state(state);

            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding a free port on 127.0.0.1");
            let addr = listener.local_addr().expect("the bound address");
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    panic!("the axum test app stopped: {e}");
                }
            });
            RunningApp {
                base: format!("http://{addr}"),
                guard: Box::new(Guard {
                    server,
                    _sweeper: sweeper,
                    _watch: watch,
                }),
            }
        })
    }
}

struct Guard {
    server: tokio::task::JoinHandle<()>,
    _sweeper: Option<timeout_core::SweeperHandle>,
    _watch: timeout_core::framework::FrameworkWatch,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn work(State(state): State<AppState>) -> &'static str {
    state.work_calls.fetch_add(1, Ordering::SeqCst);
    "ok"
}

async fn login(State(state): State<AppState>, session: Session, body: Bytes) -> Response {
    let Some((user, groups)) = login_request(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {\"user\": .., \"groups\": [..]}",
        )
            .into_response();
    };
    let user = SessionUser::new(user).with_groups(groups);
    match sessions::log_in(&session, &state.tracker, user).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn logout(State(state): State<AppState>, session: Session) -> Response {
    match sessions::log_out(&session, &state.tracker).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn me(session: Session) -> Response {
    match session.get::<SessionUser>(sessions::SESSION_USER_KEY).await {
        Ok(Some(user)) => axum_json(json!({ "user": user.name })),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn calls(State(state): State<AppState>) -> Response {
    axum_json(json!({ "work": state.work_calls.load(Ordering::SeqCst) }))
}

async fn hook_counts(State(state): State<AppState>) -> Response {
    axum_json(state.hooks.to_json())
}

async fn time_left(State(state): State<AppState>, session: Session) -> Response {
    let ms = match sessions::subject_of(&session).await {
        Ok(Some(subject)) => state
            .tracker
            .time_left(&subject)
            .await
            .ok()
            .flatten()
            .map(|d| d.as_millis() as u64),
        _ => None,
    };
    axum_json(json!({ "ms": ms }))
}

async fn active(State(state): State<AppState>) -> Response {
    axum_json(json!({ "active": state.tracker.active_count().await.unwrap_or(0) }))
}

fn axum_json(value: Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}
