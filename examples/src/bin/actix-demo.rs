//! The actix-web demo: the same page as the axum demo (login form, notes
//! form, session dialogs), behind the idle timeout with the in-memory store
//! and actix-session's cookie store.
//!
//! ```text
//! cargo run -p examples --bin actix-demo -- [--timeout-seconds N] [--warn-seconds N]
//!     [--properties FILE] [--port PORT]
//! ```
//! Log in with any user name and the password `demo`.

use std::{net::TcpListener, process::ExitCode, time::Duration};

use actix_session::{Session, SessionMiddleware, storage::CookieSessionStore};
use actix_web::{
    App, HttpResponse, HttpServer,
    cookie::Key,
    http::{StatusCode, header},
    web,
};
use examples::{Notes, WRONG_LOGIN_JSON, demo_login, note_text, page, user_json};
use serde_json::{Value, json};
use timeout_actix::{
    NOT_LOGGED_IN_JSON, SessionTimeout,
    session::{self, ActixSession, SessionUser},
};
use timeout_core::{Policy, Tracker};

#[derive(Clone)]
struct Demo {
    tracker: Tracker,
    notes: Notes,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(true).init();
    let (port, policy) = match examples::start_up() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    match actix_web::rt::System::new().block_on(serve(port, policy)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(port: u16, policy: Policy) -> Result<(), String> {
    let tracker = Tracker::new(policy);
    let _sweeper = tracker.spawn_sweeper();
    let demo = web::Data::new(Demo {
        tracker: tracker.clone(),
        notes: Notes::default(),
    });
    // The cookie lives until the browser closes; the idle timeout empties
    // the session earlier.
    let timeout = SessionTimeout::new(tracker.clone(), ActixSession::new());
    let key = Key::generate();

    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        format!("cannot listen on 127.0.0.1:{port}: {e} (try --port 0 for any free port)")
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let server = HttpServer::new(move || {
        let tracked = web::scope("")
            .route("/api/me", web::get().to(me))
            .route("/api/session", web::get().to(session_left))
            .route("/api/notes", web::get().to(notes))
            .route("/api/notes", web::post().to(save_note))
            .configure(timeout.routes())
            .wrap(timeout.middleware());
        // Logging in and out must work with a timed-out cookie, so they (and
        // the page) are registered before the tracked scope, which takes
        // every other path.
        let app = App::new()
            .app_data(demo.clone())
            .route("/api/login", web::post().to(login))
            .route("/api/logout", web::post().to(logout));
        page::FILES
            .into_iter()
            .fold(app, |app, (path, content_type, body)| {
                app.route(
                    path,
                    web::get().to(move || async move {
                        HttpResponse::Ok().content_type(content_type).body(body)
                    }),
                )
            })
            .service(tracked)
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
    })
    .workers(2)
    .listen(listener)
    .map_err(|e| format!("cannot serve on {addr}: {e}"))?;
    println!("actix demo on http://{addr}/  (log in with any name and the password \"demo\")");
    println!("{}", tracker.policy());
    server
        .run()
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

fn not_logged_in() -> HttpResponse {
    HttpResponse::Unauthorized()
        .content_type("application/json")
        .body(NOT_LOGGED_IN_JSON)
}

fn json_response(value: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(value.to_string())
}

fn session_user(session: &Session) -> Option<SessionUser> {
    session
        .get::<SessionUser>(session::SESSION_USER_KEY)
        .ok()
        .flatten()
}

async fn me(demo: web::Data<Demo>, session: Session) -> HttpResponse {
    match session_user(&session) {
        Some(user) => json_response(user_json(&demo.tracker, &user.name, &user.groups)),
        None => not_logged_in(),
    }
}

/// Polled every second by the page with `?auto=true`: passive, so an open
/// page does not keep its session alive.
async fn session_left(demo: web::Data<Demo>, session: Session) -> HttpResponse {
    let Ok(Some(subject)) = session::subject_of(&session) else {
        return not_logged_in();
    };
    let left = demo.tracker.time_left(&subject).await.ok().flatten();
    json_response(json!({
        "user": subject.user(),
        "secondsLeft": left.unwrap_or(Duration::ZERO).as_secs_f64(),
    }))
}

async fn notes(demo: web::Data<Demo>, session: Session) -> HttpResponse {
    match session_user(&session) {
        Some(user) => json_response(json!({ "text": demo.notes.get(&user.name) })),
        None => not_logged_in(),
    }
}

async fn save_note(demo: web::Data<Demo>, session: Session, body: web::Bytes) -> HttpResponse {
    let Some(user) = session_user(&session) else {
        return not_logged_in();
    };
    let Some(text) = note_text(&body) else {
        return HttpResponse::BadRequest().body("expected {\"text\": \"...\"}");
    };
    demo.notes.set(&user.name, text.clone());
    json_response(json!({ "text": text }))
}

async fn login(demo: web::Data<Demo>, session: Session, body: web::Bytes) -> HttpResponse {
    let Some(user) = demo_login(&body) else {
        return HttpResponse::Unauthorized()
            .content_type("application/json")
            .body(WRONG_LOGIN_JSON);
    };
    let user = SessionUser::new(user);
    match session::log_in(&session, &demo.tracker, user.clone()).await {
        Ok(_) => json_response(user_json(&demo.tracker, &user.name, &user.groups)),
        Err(err) => {
            let status = match err {
                session::SessionError::TooManySessions => StatusCode::FORBIDDEN,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            HttpResponse::build(status)
                .content_type("application/json")
                .body(json!({ "error": err.to_string() }).to_string())
        }
    }
}

async fn logout(demo: web::Data<Demo>, session: Session) -> HttpResponse {
    if let Err(err) = session::log_out(&session, &demo.tracker).await {
        tracing::warn!("logout: {err}");
    }
    HttpResponse::NoContent().finish()
}
