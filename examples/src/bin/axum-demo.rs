//! The axum demo: a page with a login form, a notes form and the session
//! dialogs, behind the idle timeout with the in-memory store.
//!
//! ```text
//! cargo run -p examples --bin axum-demo -- [--timeout-seconds N] [--warn-seconds N]
//!     [--properties FILE] [--port PORT]
//! ```
//! Log in with any user name and the password `demo`.

use std::{
    collections::HashMap,
    process::ExitCode,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use examples::{DemoArgs, page};
use serde_json::{Value, json};
use timeout_core::{Policy, Tracker};
use timeout_tower::{
    NOT_LOGGED_IN_JSON, Passive, SessionTimeout,
    sessions::{self, DeleteSessions, SessionUser, TowerSessions},
};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

#[derive(Clone)]
struct Demo {
    tracker: Tracker,
    notes: Arc<Mutex<HashMap<String, String>>>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(true).init();
    let args = match DemoArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if message == "help" {
                println!("{}", DemoArgs::USAGE);
                return ExitCode::SUCCESS;
            }
            eprintln!("{message}\n\n{}", DemoArgs::USAGE);
            return ExitCode::from(2);
        }
    };
    let policy = match args.policy() {
        Ok(policy) => policy,
        Err(err) => {
            eprintln!("invalid timeout settings: {err}");
            return ExitCode::from(2);
        }
    };
    match serve(args.port, policy).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(port: u16, policy: Policy) -> Result<(), String> {
    let sessions_store = MemoryStore::default();
    let tracker = Tracker::builder(policy)
        .hook(DeleteSessions::new(sessions_store.clone()))
        .build();
    let _sweeper = tracker.spawn_sweeper();
    let demo = Demo {
        tracker: tracker.clone(),
        notes: Arc::default(),
    };

    // The browser session lives until the tab closes; the idle timeout ends
    // it earlier and deletes the record.
    let timeout = SessionTimeout::new(tracker.clone(), TowerSessions::new());
    let tracked = Router::new()
        .route("/api/me", get(me))
        .route("/api/session", get(session_left))
        .route("/api/notes", get(notes).post(save_note))
        .merge(timeout.routes())
        .layer(timeout.layer());
    // Logging in and out must work with a timed-out cookie: outside the layer.
    let app = tracked
        .route("/api/login", axum::routing::post(login))
        .route("/api/logout", axum::routing::post(logout))
        .merge(page_routes())
        .layer(
            SessionManagerLayer::new(sessions_store)
                .with_secure(false)
                .with_expiry(Expiry::OnSessionEnd),
        )
        .with_state(demo);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port}: {e} (try --port 0 for any free port)")
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("axum demo on http://{addr}/  (log in with any name and the password \"demo\")");
    println!("{}", tracker.policy());
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

fn user_json(tracker: &Tracker, user: &SessionUser) -> Value {
    let policy = tracker.policy();
    let timeout = policy.timeout_for(user.groups.iter().map(String::as_str));
    json!({
        "user": user.name,
        "timeoutSeconds": timeout.as_secs_f64(),
        "warnSeconds": policy.warn_before().as_secs_f64(),
    })
}

async fn session_user(session: &Session) -> Option<SessionUser> {
    session
        .get::<SessionUser>(sessions::SESSION_USER_KEY)
        .await
        .ok()
        .flatten()
}

fn not_logged_in() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        NOT_LOGGED_IN_JSON,
    )
        .into_response()
}

fn json_response(value: Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        value.to_string(),
    )
        .into_response()
}

async fn me(State(demo): State<Demo>, session: Session) -> Response {
    match session_user(&session).await {
        Some(user) => json_response(user_json(&demo.tracker, &user)),
        None => not_logged_in(),
    }
}

/// Polled every second by the page with `?auto=true`: passive, so an open
/// page does not keep its session alive.
async fn session_left(State(demo): State<Demo>, session: Session) -> Response {
    let Ok(Some(subject)) = sessions::subject_of(&session).await else {
        return not_logged_in();
    };
    let left = demo.tracker.time_left(&subject).await.ok().flatten();
    json_response(json!({
        "user": subject.user(),
        "secondsLeft": left.unwrap_or(Duration::ZERO).as_secs_f64(),
    }))
}

async fn notes(State(demo): State<Demo>, session: Session) -> Response {
    let Some(user) = session_user(&session).await else {
        return not_logged_in();
    };
    let notes = demo.notes.lock().unwrap_or_else(PoisonError::into_inner);
    let text = notes.get(&user.name).cloned().unwrap_or_default();
    json_response(json!({ "text": text }))
}

async fn save_note(State(demo): State<Demo>, session: Session, body: Bytes) -> Response {
    let Some(user) = session_user(&session).await else {
        return not_logged_in();
    };
    let Some(text) = parse(&body).and_then(|v| v["text"].as_str().map(str::to_owned)) else {
        return (StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}").into_response();
    };
    demo.notes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(user.name, text.clone());
    json_response(json!({ "text": text }))
}

async fn login(State(demo): State<Demo>, session: Session, body: Bytes) -> Response {
    let credentials = parse(&body);
    let user = credentials
        .as_ref()
        .and_then(|v| v["user"].as_str())
        .unwrap_or("")
        .trim();
    let password = credentials
        .as_ref()
        .and_then(|v| v["password"].as_str())
        .unwrap_or("");
    if user.is_empty() || user.chars().count() > 64 || password != "demo" {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"wrong user name or password (any name of up to 64 characters, password \"demo\")"}"#,
        )
            .into_response();
    }
    let user = SessionUser::new(user);
    match sessions::log_in(&session, &demo.tracker, user.clone()).await {
        Ok(_) => json_response(user_json(&demo.tracker, &user)),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "error": err.to_string() }).to_string(),
        )
            .into_response(),
    }
}

async fn logout(State(demo): State<Demo>, session: Session) -> Response {
    if let Err(err) = sessions::log_out(&session, &demo.tracker).await {
        tracing::warn!("logout: {err}");
    }
    (Passive, StatusCode::NO_CONTENT).into_response()
}

/// The page, embedded in the binary.
fn page_routes() -> Router<Demo> {
    page::FILES
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            router.route(
                path,
                get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }),
            )
        })
}

fn parse(body: &Bytes) -> Option<Value> {
    serde_json::from_slice(body).ok()
}
