//! The axum demo: a page with a login form, a notes form and the session
//! dialogs, behind the idle timeout with the in-memory store.
//!
//! ```text
//! cargo run -p examples --bin axum-demo -- [--timeout-seconds N] [--warn-seconds N]
//!     [--properties FILE] [--port PORT] [--redis URL [--replicas N] [--lease-ms N]]
//! ```
//! Log in with any user name and the password `demo`. Logged in as
//! `admin`, the operator routes answer under `/admin/timeout`:
//! `GET /admin/timeout/users/{user}/sessions` and
//! `POST /admin/timeout/users/{user}/sign-out`.
//!
//! With `--redis`, the timeout state (`timeout-redis`) and the login
//! sessions live in Redis, and `--replicas N` starts N of these servers on
//! consecutive ports: the browser's cookie is valid on all of them, so tabs
//! on different ports are one user on different replicas.

use std::{
    process::{Child, Command, ExitCode},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use examples::{
    DemoArgs, Faults, LoginMode, Notes, WRONG_LOGIN_JSON, demo_login, note_text, page,
    redis_sessions::RedisSessions,
    sso::{self, Sso},
    user_json,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use timeout_core::{
    Policy, TimeoutHook, Tracker,
    audit::Escaped,
    clock::{SkewedClock, SystemClock},
    hooks::HookError,
    store::{Expired, StateLost},
};
use timeout_redis::RedisStore;
use timeout_tower::{
    NOT_LOGGED_IN_JSON, Passive, SessionTimeout,
    sessions::{self, DeleteSessions, ExpiryAudit, SessionUser, TowerSessions},
};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer, SessionStore};

#[derive(Clone)]
struct Demo {
    tracker: Tracker,
    notes: Notes,
    login: LoginMode,
    sso: Sso,
    /// The Prometheus rendering of the timeout's metrics, at `/metrics`.
    metrics: Option<PrometheusHandle>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(true).init();
    let (args, policy) = match examples::start_up_args() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if args.replicas > 1 {
        return run_replicas(&args);
    }
    let served = match &args.redis {
        None => serve(&args, Tracker::builder(policy), MemoryStore::default()).await,
        Some(url) => match on_redis(url, &args, policy).await {
            Ok((tracker, sessions)) => serve(&args, tracker, sessions).await,
            Err(err) => Err(err),
        },
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// The timeout store and the session store on the Redis at `url`.
async fn on_redis(
    url: &str,
    args: &DemoArgs,
    policy: Policy,
) -> Result<(timeout_core::TrackerBuilder, RedisSessions), String> {
    let mut store = match &args.redis_cluster {
        Some(nodes) => RedisStore::cluster(nodes.clone()),
        None => RedisStore::builder(url),
    }
    .prefix("demo-timeout");
    if let Some(ms) = args.lease_ms {
        store = store.lease(Duration::from_millis(ms));
    }
    if let Some(ms) = args.command_timeout_ms {
        store = store.command_timeout(Duration::from_millis(ms));
    }
    let store = store.connect().await.map_err(|e| e.to_string())?;
    let sessions = RedisSessions::connect(url, "demo").await?;
    Ok((Tracker::builder(policy).store(Arc::new(store)), sessions))
}

/// The demo's own hook: one line per run on stdout (what the replica test
/// and the chaos harness count), with the faults the harness asks for.
struct PrintHook(Faults);

#[async_trait]
impl TimeoutHook for PrintHook {
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        let (user, run) = (Escaped(&expired.user), expired.run_id());
        println!("timeout hook started for {user} run {run}");
        if self.0.hang_hook_user.as_deref() == Some(expired.user.as_str()) {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(self.0.hook_delay_ms)).await;
        println!(
            "timeout hook ran for {user} run {run} cause {:?}",
            expired.cause
        );
        Ok(())
    }

    async fn on_state_lost(&self, lost: &StateLost) -> Result<(), HookError> {
        println!(
            "state lost at {} in {}",
            lost.at.as_millis(),
            Escaped(&lost.what)
        );
        Ok(())
    }

    fn name(&self) -> &str {
        "print"
    }
}

/// Starts `args.replicas` copies of this program on consecutive ports and
/// waits; when one stops, the others are stopped too.
fn run_replicas(args: &DemoArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("cannot find this program to start its replicas: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The same arguments, minus the ones each replica gets its own of.
    let mut passed = Vec::new();
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--replicas" | "--port" => {
                given.next();
            }
            a if a.starts_with("--replicas=") || a.starts_with("--port=") => {}
            _ => passed.push(arg),
        }
    }
    let mut children: Vec<Child> = Vec::new();
    for i in 0..args.replicas {
        let port = if args.port == 0 {
            0
        } else {
            args.port.saturating_add(i)
        };
        match Command::new(&exe)
            .args(&passed)
            .args(["--port", &port.to_string()])
            .spawn()
        {
            Ok(child) => children.push(child),
            Err(err) => {
                eprintln!("cannot start replica {i}: {err}");
                children.iter_mut().for_each(|c| drop(c.kill()));
                return ExitCode::FAILURE;
            }
        }
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if children
            .iter_mut()
            .any(|c| !matches!(c.try_wait(), Ok(None)))
        {
            children.iter_mut().for_each(|c| drop(c.kill()));
            return ExitCode::FAILURE;
        }
    }
}

async fn serve<S>(
    args: &DemoArgs,
    tracker: timeout_core::TrackerBuilder,
    sessions_store: S,
) -> Result<(), String>
where
    S: SessionStore + Clone,
{
    let port = args.port;
    let faults = &args.faults;
    // Audit records of framework sessions that expire before the idle
    // timeout (with --framework-session-seconds shorter than it).
    let sessions_store = ExpiryAudit::new(sessions_store);
    let expiry = match args.framework_session {
        Some(lifetime) => Expiry::OnInactivity(
            time::Duration::try_from(lifetime)
                .map_err(|e| format!("--framework-session-seconds: {e}"))?,
        ),
        None => Expiry::OnSessionEnd,
    };
    let mut tracker = tracker
        .hook(DeleteSessions::new(sessions_store.clone()))
        .hook(PrintHook(faults.clone()));
    if let Some(ms) = faults.hook_timeout_ms {
        tracker = tracker.hook_timeout(Duration::from_millis(ms));
    }
    if let Some(retries) = faults.hook_retries {
        tracker = tracker.hook_retries(retries);
    }
    if faults.clock_skew_ms > 0 {
        let skew = Duration::from_millis(faults.clock_skew_ms);
        tracker = tracker.clock(SkewedClock::ahead(SystemClock, skew));
    }
    let tracker = tracker.build();
    // Before the sweeper: its first reading of the levels (tracked keys,
    // read again only every 10 s) would go to no recorder.
    let recorder = install_metrics();
    let _sweeper = tracker.spawn_sweeper();
    let _framework_watch = sessions_store.watch(&tracker);
    let demo = Demo {
        tracker: tracker.clone(),
        notes: Notes::default(),
        login: args.login,
        sso: Sso::random(args.idp_session),
        metrics: recorder,
    };

    // The browser session lives until the tab closes (or for
    // --framework-session-seconds); the idle timeout ends it earlier and
    // deletes the record.
    let timeout = SessionTimeout::new(tracker.clone(), TowerSessions::new().expiry(expiry));
    let tracked = Router::new()
        .route("/api/me", get(me))
        .route("/api/notes", get(notes).post(save_note))
        .merge(timeout.routes())
        // The operator's own requests are activity of the operator's session.
        .nest(
            "/admin/timeout",
            timeout
                .admin_routes()
                .route_layer(axum::middleware::from_fn(operators_only)),
        )
        .layer(timeout.layer());
    // Logging in and out must work with a timed-out cookie: outside the
    // layer, with the identity provider's round trip.
    let app = tracked
        .route("/api/login", axum::routing::post(login))
        .route("/api/logout", axum::routing::post(logout))
        .route("/api/demo", get(demo_settings))
        .route("/metrics", get(metrics))
        .route("/sso/start", get(sso_start))
        .route("/sso/callback", get(sso_callback))
        .route(
            "/idp/authorize",
            get(idp_authorize).post(idp_authorize_form),
        )
        .merge(page_routes())
        .layer(
            SessionManagerLayer::new(sessions_store)
                .with_secure(false)
                .with_expiry(expiry),
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

/// The demo's authorization of the operator routes: the user `admin`. A
/// real app checks a role, and mounts them where only operators reach.
async fn operators_only(
    session: Session,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match session_user(&session).await {
        Some(user) if user.name == OPERATOR => next.run(request).await,
        Some(_) => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"only the operator (log in as admin) may do this"}"#,
        )
            .into_response(),
        None => not_logged_in(),
    }
}

/// The demo's one operator.
const OPERATOR: &str = "admin";

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

/// The global recorder of the `metrics` facade, rendered by Prometheus;
/// `None` (and a log line) if another recorder is installed already.
fn install_metrics() -> Option<PrometheusHandle> {
    match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!("no /metrics: {err}");
            None
        }
    }
}

/// `GET /metrics`: the timeout's metrics in the Prometheus text format.
/// Outside the timeout layer: a scraper has no session.
async fn metrics(State(demo): State<Demo>) -> Response {
    match &demo.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not installed").into_response(),
    }
}

async fn demo_settings(State(demo): State<Demo>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        demo.login.demo_json(),
    )
        .into_response()
}

fn sso_answer(answer: sso::Answer) -> Response {
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer.body,
    )
        .into_response();
    for (name, value) in answer.headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn raw_header(request: &axum::http::HeaderMap, name: header::HeaderName) -> &str {
    request
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

async fn sso_start(State(demo): State<Demo>) -> Response {
    sso_answer(demo.sso.start())
}

async fn idp_authorize(
    State(demo): State<Demo>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let query = uri.query().unwrap_or("");
    sso_answer(
        demo.sso
            .authorize(query, raw_header(&headers, header::COOKIE)),
    )
}

async fn idp_authorize_form(State(demo): State<Demo>, body: Bytes) -> Response {
    sso_answer(demo.sso.authorize_form(&body))
}

/// The end of the single sign-on round trip: a checked assertion logs its
/// user in, as the password form does.
async fn sso_callback(
    State(demo): State<Demo>,
    session: Session,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let query = uri.query().unwrap_or("");
    let user = match demo
        .sso
        .callback(query, raw_header(&headers, header::COOKIE))
    {
        Ok(user) => user,
        Err(refused) => return sso_answer(refused),
    };
    match sessions::log_in(&session, &demo.tracker, SessionUser::new(user)).await {
        Ok(_) => sso_answer(Sso::logged_in_page(&examples::client_module_path())),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
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
            match err {
                sessions::SessionError::TooManySessions => StatusCode::FORBIDDEN,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
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
