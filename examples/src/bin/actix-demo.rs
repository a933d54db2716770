//! The actix-web demo: the same page as the axum demo (login form, notes
//! form, session dialogs), behind the idle timeout with the in-memory store
//! and actix-session's cookie store.
//!
//! ```text
//! cargo run -p examples --bin actix-demo -- [--timeout-seconds N] [--warn-seconds N]
//!     [--properties FILE] [--port PORT]
//! ```
//! Log in with any user name and the password `demo`.

use std::{net::TcpListener, process::ExitCode};

use actix_session::{
    Session, SessionMiddleware, config::PersistentSession, storage::CookieSessionStore,
};
use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    cookie::Key,
    http::{StatusCode, header},
    web,
};
use examples::{
    DemoArgs, LoginMode, Notes, WRONG_LOGIN_JSON, demo_login, note_text, page,
    sso::{self, Sso},
    user_json,
};
use serde_json::{Value, json};
use timeout_actix::{
    NOT_LOGGED_IN_JSON, SessionTimeout,
    session::{self, ActixSession, ExpiryAudit, SessionUser},
};
use timeout_core::{Policy, Tracker};

#[derive(Clone)]
struct Demo {
    tracker: Tracker,
    notes: Notes,
    login: LoginMode,
    sso: Sso,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(true).init();
    let (args, policy) = match examples::start_up() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    match actix_web::rt::System::new().block_on(serve(&args, policy)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &DemoArgs, policy: Policy) -> Result<(), String> {
    let port = args.port;
    let tracker = Tracker::new(policy);
    let _sweeper = tracker.spawn_sweeper();
    let demo = web::Data::new(Demo {
        tracker: tracker.clone(),
        notes: Notes::default(),
        login: args.login,
        sso: Sso::random(args.idp_session),
    });
    // The cookie lasts the framework session's lifetime; the audit records a
    // session that reaches it before the idle timeout, which usually empties
    // the session earlier.
    let lifetime = args
        .framework_session
        .unwrap_or(std::time::Duration::from_secs(9 * 3600));
    let session_ttl = actix_web::cookie::time::Duration::try_from(lifetime)
        .map_err(|e| format!("--framework-session-seconds: {e}"))?;
    let (ledger, _framework_watch) = session::expiry_ledger(&tracker);
    let timeout = SessionTimeout::new(tracker.clone(), ActixSession::new().ttl(lifetime));
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
            .route("/api/logout", web::post().to(logout))
            .route("/api/demo", web::get().to(demo_settings))
            .route("/sso/start", web::get().to(sso_start))
            .route("/sso/callback", web::get().to(sso_callback))
            .route("/idp/authorize", web::get().to(idp_authorize))
            .route("/idp/authorize", web::post().to(idp_authorize_form));
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
                SessionMiddleware::builder(
                    ExpiryAudit::new(CookieSessionStore::default(), ledger.clone()),
                    key.clone(),
                )
                .cookie_secure(false)
                .session_lifecycle(PersistentSession::default().session_ttl(session_ttl))
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

async fn demo_settings(demo: web::Data<Demo>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(demo.login.demo_json())
}

fn sso_answer(answer: sso::Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers {
        response.append_header((name, value));
    }
    response.body(answer.body)
}

fn cookies(request: &HttpRequest) -> &str {
    request
        .headers()
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

async fn sso_start(demo: web::Data<Demo>) -> HttpResponse {
    sso_answer(demo.sso.start())
}

async fn idp_authorize(demo: web::Data<Demo>, request: HttpRequest) -> HttpResponse {
    sso_answer(
        demo.sso
            .authorize(request.query_string(), cookies(&request)),
    )
}

async fn idp_authorize_form(demo: web::Data<Demo>, body: web::Bytes) -> HttpResponse {
    sso_answer(demo.sso.authorize_form(&body))
}

/// The end of the single sign-on round trip: a checked assertion logs its
/// user in, as the password form does.
async fn sso_callback(
    demo: web::Data<Demo>,
    session: Session,
    request: HttpRequest,
) -> HttpResponse {
    let user = match demo.sso.callback(request.query_string(), cookies(&request)) {
        Ok(user) => user,
        Err(refused) => return sso_answer(refused),
    };
    match session::log_in(&session, &demo.tracker, SessionUser::new(user)).await {
        Ok(_) => sso_answer(Sso::logged_in_page(&examples::client_module_path())),
        Err(err) => HttpResponse::ServiceUnavailable().body(err.to_string()),
    }
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
