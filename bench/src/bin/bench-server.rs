//! A whole server for `scripts/bench-http.sh`: one framework, one worker
//! thread, `GET /` answering "Hello, World!", with or without the idle
//! timeout in front.
//!
//! ```text
//! bench-server --stack axum-hello|axum-memory|axum-redis|actix-hello|actix-memory|actix-redis
//!     [--port PORT] [--redis URL]
//! ```
//! The timeout stacks identify the caller from the cookie `sid=<user>` (the
//! session id and the user are that value), so wrk can send one fixed
//! logged-in cookie and every request is a read-only request of a hot
//! session.

use std::{net::TcpListener, process::ExitCode, sync::Arc};

use timeout_core::{Identity, Policy, Subject, SubjectError, Tracker};
use timeout_redis::RedisStore;

const HELLO: &str = "Hello, World!";
const USAGE: &str = "usage: bench-server --stack \
    axum-hello|axum-memory|axum-redis|actix-hello|actix-memory|actix-redis [--port PORT] [--redis URL]";

/// Which timeout store sits in front of the hello-world, if any.
#[derive(Clone)]
enum Timeout {
    None,
    Memory,
    Redis(String),
}

fn main() -> ExitCode {
    let mut stack = None;
    let mut port = 0u16;
    let mut redis = "redis://127.0.0.1:6379".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--stack", Some(value)) => stack = Some(value),
            ("--redis", Some(value)) => redis = value,
            ("--port", Some(value)) => match value.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(&format!("--port {value:?}: expected 0-65535")),
            },
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let Some(stack) = stack else {
        return usage("--stack is required");
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("{stack} on http://{addr}/");
    }
    let (framework, timeout) = match stack.split_once('-') {
        Some((framework, "hello")) => (framework, Timeout::None),
        Some((framework, "memory")) => (framework, Timeout::Memory),
        Some((framework, "redis")) => (framework, Timeout::Redis(redis)),
        _ => return usage(&format!("unknown stack {stack:?}")),
    };
    let result = match framework {
        "axum" => axum_server(listener, timeout),
        "actix" => actix_server(listener, timeout),
        other => return usage(&format!("unknown framework {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}\n{USAGE}");
    ExitCode::from(2)
}

/// The production defaults (enabled, 480 minutes, a warning 1 minute
/// before) on the chosen store; built inside the server's runtime, where
/// the Redis store runs its background work.
async fn tracker(timeout: Timeout) -> std::io::Result<Option<Tracker>> {
    let policy = Policy::from_properties("timeout.session.enabled=true")
        .unwrap_or_else(|e| unreachable!("a constant policy is valid: {e}"));
    Ok(match timeout {
        Timeout::None => None,
        Timeout::Memory => Some(Tracker::new(policy)),
        Timeout::Redis(url) => {
            let store = RedisStore::builder(url)
                .prefix("bench")
                .connect()
                .await
                .map_err(std::io::Error::other)?;
            Some(Tracker::builder(policy).store(Arc::new(store)).build())
        }
    })
}

/// `sid=<user>` from a `Cookie` header value.
fn identity(cookie: Option<&[u8]>) -> Result<Identity, SubjectError> {
    let Some(cookie) = cookie.and_then(|c| std::str::from_utf8(c).ok()) else {
        return Ok(Identity::Anonymous);
    };
    let sid = cookie
        .split(';')
        .find_map(|pair| pair.trim().strip_prefix("sid="));
    match sid {
        Some(sid) => Ok(Identity::Subject(Subject::new(sid, sid)?)),
        None => Ok(Identity::Anonymous),
    }
}

fn axum_server(listener: TcpListener, timeout: Timeout) -> std::io::Result<()> {
    use axum::{Router, routing::get};
    use timeout_tower::{SessionTimeout, identify_fn};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tracker = tracker(timeout).await?;
        let _sweeper = tracker.as_ref().map(Tracker::spawn_sweeper);
        let mut app = Router::new().route("/", get(|| async { HELLO }));
        if let Some(tracker) = tracker {
            let timeout = SessionTimeout::new(
                tracker,
                identify_fn(|parts: &http::request::Parts| {
                    identity(parts.headers.get("cookie").map(|v| v.as_bytes()))
                }),
            );
            app = app.layer(timeout.layer());
        }
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app).await
    })
}

fn actix_server(listener: TcpListener, timeout: Timeout) -> std::io::Result<()> {
    use actix_web::{App, HttpRequest, HttpServer, web};
    use timeout_actix::{SessionTimeout, identify_fn};

    actix_web::rt::System::new().block_on(async move {
        let tracker = tracker(timeout).await?;
        let _sweeper = tracker.as_ref().map(Tracker::spawn_sweeper);
        let server = match tracker {
            None => HttpServer::new(|| App::new().route("/", web::get().to(|| async { HELLO })))
                .workers(1)
                .listen(listener)?
                .run(),
            Some(tracker) => {
                let timeout = SessionTimeout::new(
                    tracker,
                    identify_fn(|req: &HttpRequest| {
                        identity(req.headers().get("cookie").map(|v| v.as_bytes()))
                    }),
                );
                HttpServer::new(move || {
                    App::new()
                        .route("/", web::get().to(|| async { HELLO }))
                        .wrap(timeout.middleware())
                })
                .workers(1)
                .listen(listener)?
                .run()
            }
        };
        server.await
    })
}
