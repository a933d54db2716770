//! The axum demo: a page with a login form, a notes form and the session
//! dialogs, behind the idle timeout with the in-memory store.
//!
//! ```text
//! cargo run -p examples --bin axum-demo -- [--timeout-seconds N] [--warn-seconds N]
//!     [--properties FILE] [--port PORT]
//! ```
//! Log in with any user name and the password `demo`.

use std::{process::ExitCode, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use examples::{Notes, WRONG_LOGIN_JSON, demo_login, note_text, page, user_json};
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
    notes: Notes,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(true).init();
    let (port, policy) = match examples::start_up() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    match serve(port, policy).await {
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
        notes: Notes::default(),
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
        Some(user) => json_response(user_json(&demo.tracker, &user.name, &user.groups)),
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
    json_response(json!({ "text": demo.notes.get(&user.name) }))
}

async fn save_note(State(demo): State<Demo>, session: Session, body: Bytes) -> Response {
    let Some(user) = session_user(&session).await else {
        return not_logged_in();
    };
    let Some(text) = note_text(&body) else {
        return (StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}").into_response();
    };
    demo.notes.set(&user.name, text.clone());
    json_response(json!({ "text": text }))
}

async fn login(State(demo): State<Demo>, session: Session, body: Bytes) -> Response {
    let Some(user) = demo_login(&body) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            WRONG_LOGIN_JSON,
        )
            .into_response();
    };
    let user = SessionUser::new(user);
    match sessions::log_in(&session, &demo.tracker, user.clone()).await {
        Ok(_) => json_response(user_json(&demo.tracker, &user.name, &user.groups)),
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
