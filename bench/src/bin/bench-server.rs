//! A whole server for `scripts/bench-http.sh`: one framework, one worker
//! thread, `GET /` answering "Hello, World!" to a logged-in caller, with the
//! idle timeout done by this project or by the session middleware users
//! already have (the anchors).
//!
//! ```text
//! bench-server --stack STACK [--port PORT] [--redis URL]
//! ```
//! Stacks:
//! - `axum-hello`, `actix-hello`: nothing in front;
//! - `axum-memory`, `axum-redis`, `actix-memory`, `actix-redis`: our layer or
//!   middleware on the memory or Redis store, production defaults, the caller
//!   identified from the cookie `sid=<user>`;
//! - `axum-tower-sessions-memory`, `axum-tower-sessions-redis`:
//!   tower-sessions with `Expiry::OnInactivity(480 min)` and
//!   `with_always_save(true)` (the only way it slides the expiry on a
//!   read-only request), on its memory store or `tower-sessions-redis-store`;
//!   the handler reads the user from the session, as an app must;
//! - `actix-session-redis`: actix-session's `RedisSessionStore` with a
//!   persistent 480-minute session and `TtlExtensionPolicy::OnEveryRequest`.
//!
//! `GET /login` answers with the `Set-Cookie` of a logged-in session;
//! the script sends that cookie with every measured request, so each is a
//! read-only request of a hot session.

use std::{net::TcpListener, process::ExitCode, sync::Arc};

use timeout_core::{Policy, Subject, SubjectError, Tracker, adapter::Identity};
use timeout_redis::RedisStore;

const HELLO: &str = "Hello, World!";
const USER: &str = "alice";
/// The timeout every stack slides: the production default.
const IDLE_MINUTES: i64 = 480;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framework {
    Axum,
    Actix,
}

/// What sits in front of the hello-world.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Front {
    None,
    OurMemory,
    OurRedis,
    TowerSessionsMemory,
    TowerSessionsRedis,
    ActixSessionRedis,
}

const STACKS: [(&str, Framework, Front); 9] = [
    ("axum-hello", Framework::Axum, Front::None),
    ("axum-memory", Framework::Axum, Front::OurMemory),
    ("axum-redis", Framework::Axum, Front::OurRedis),
    (
        "axum-tower-sessions-memory",
        Framework::Axum,
        Front::TowerSessionsMemory,
    ),
    (
        "axum-tower-sessions-redis",
        Framework::Axum,
        Front::TowerSessionsRedis,
    ),
    ("actix-hello", Framework::Actix, Front::None),
    ("actix-memory", Framework::Actix, Front::OurMemory),
    ("actix-redis", Framework::Actix, Front::OurRedis),
    (
        "actix-session-redis",
        Framework::Actix,
        Front::ActixSessionRedis,
    ),
];

fn usage(message: &str) -> ExitCode {
    let names: Vec<&str> = STACKS.iter().map(|(name, ..)| *name).collect();
    eprintln!(
        "{message}\nusage: bench-server --stack {} [--port PORT] [--redis URL]",
        names.join("|")
    );
    ExitCode::from(2)
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
    let Some(&(_, framework, front)) = STACKS.iter().find(|(name, ..)| *name == stack) else {
        return usage(&format!("unknown stack {stack:?}"));
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
    let result = match framework {
        Framework::Axum => axum_server(listener, front, redis),
        Framework::Actix => actix_server(listener, front, redis),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Our tracker with the production defaults (enabled, 480 minutes, a
/// warning 1 minute before) on the chosen store; built inside the server's
/// runtime, where the Redis store runs its background work.
async fn tracker(front: Front, redis: &str) -> std::io::Result<Option<Tracker>> {
    let policy = Policy::from_properties("timeout.session.enabled=true")
        .unwrap_or_else(|e| unreachable!("a constant policy is valid: {e}"));
    Ok(match front {
        Front::OurMemory => Some(Tracker::new(policy)),
        Front::OurRedis => {
            let store = RedisStore::builder(redis)
                .prefix("bench")
                .connect()
                .await
                .map_err(std::io::Error::other)?;
            Some(Tracker::builder(policy).store(Arc::new(store)).build())
        }
        _ => None,
    })
}

/// `sid=<user>` from a `Cookie` header value: bytes scanned once, as a
/// session framework's cookie lookup would, so the rows measure the timeout
/// rather than string handling.
fn identity(cookie: Option<&[u8]>) -> Result<Identity, SubjectError> {
    let sid = cookie.and_then(|cookie| {
        cookie.split(|&b| b == b';').find_map(|pair| {
            let start = pair.iter().position(|&b| b != b' ')?;
            pair[start..].strip_prefix(b"sid=")
        })
    });
    match sid.and_then(|sid| std::str::from_utf8(sid).ok()) {
        Some(sid) => Ok(Identity::Subject(Subject::new(sid, sid)?)),
        None => Ok(Identity::Anonymous),
    }
}

const OUR_LOGIN_COOKIE: &str = "sid=alice; Path=/; HttpOnly";

mod axum_stacks {
    use axum::{
        Router,
        http::{HeaderValue, StatusCode, header::SET_COOKIE},
        response::IntoResponse,
        routing::get,
    };
    use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

    use super::{HELLO, IDLE_MINUTES, OUR_LOGIN_COOKIE, USER};

    pub fn ours() -> Router {
        Router::new().route("/", get(|| async { HELLO })).route(
            "/login",
            get(|| async { [(SET_COOKIE, HeaderValue::from_static(OUR_LOGIN_COOKIE))] }),
        )
    }

    /// tower-sessions sliding its expiry on every request.
    pub fn tower_sessions<S: SessionStore + Clone>(store: S) -> Router {
        let sessions = SessionManagerLayer::new(store)
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(IDLE_MINUTES)))
            .with_always_save(true);
        Router::new()
            .route("/", get(hello))
            .route("/login", get(login))
            .layer(sessions)
    }

    async fn hello(session: Session) -> axum::response::Response {
        match session.get::<String>("user").await {
            Ok(Some(_)) => HELLO.into_response(),
            Ok(None) => (StatusCode::UNAUTHORIZED, "log in first").into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }

    async fn login(session: Session) -> axum::response::Response {
        match session.insert("user", USER).await {
            Ok(()) => "logged in".into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

fn axum_server(listener: TcpListener, front: Front, redis: String) -> std::io::Result<()> {
    use timeout_tower::{SessionTimeout, identify_fn};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tracker = tracker(front, &redis).await?;
        let _sweeper = tracker.as_ref().map(Tracker::spawn_sweeper);
        let app = match (front, tracker) {
            (_, Some(tracker)) => {
                let timeout = SessionTimeout::new(
                    tracker,
                    identify_fn(|parts: &http::request::Parts| {
                        identity(
                            parts
                                .headers
                                .get(http::header::COOKIE)
                                .map(|v| v.as_bytes()),
                        )
                    }),
                );
                axum_stacks::ours().layer(timeout.layer())
            }
            (Front::TowerSessionsMemory, None) => {
                axum_stacks::tower_sessions(tower_sessions::MemoryStore::default())
            }
            (Front::TowerSessionsRedis, None) => {
                axum_stacks::tower_sessions(tower_sessions_store(&redis).await?)
            }
            _ => axum_stacks::ours(),
        };
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app).await
    })
}

type FredRedisStore =
    tower_sessions_redis_store::RedisStore<tower_sessions_redis_store::fred::prelude::Client>;

/// `tower-sessions-redis-store` on one fred client, connected.
async fn tower_sessions_store(redis: &str) -> std::io::Result<FredRedisStore> {
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};

    let config = Config::from_url(redis).map_err(std::io::Error::other)?;
    let client = tower_sessions_redis_store::fred::prelude::Client::new(config, None, None, None);
    client.init().await.map_err(|e| {
        std::io::Error::other(format!(
            "tower-sessions-redis-store cannot reach {redis}: {e}"
        ))
    })?;
    Ok(tower_sessions_redis_store::RedisStore::new(client))
}

mod actix_stacks {
    use actix_session::{
        Session, SessionMiddleware,
        config::{PersistentSession, TtlExtensionPolicy},
        storage::RedisSessionStore,
    };
    use actix_web::{
        App, HttpRequest, HttpResponse, HttpServer, Responder,
        cookie::{Key, time::Duration},
        dev::Server,
        web,
    };
    use timeout_actix::{SessionTimeout, identify_fn};
    use timeout_core::Tracker;

    use super::{HELLO, IDLE_MINUTES, OUR_LOGIN_COOKIE, USER, identity};

    async fn our_login() -> impl Responder {
        HttpResponse::Ok()
            .insert_header(("set-cookie", OUR_LOGIN_COOKIE))
            .body("logged in")
    }

    pub fn hello(listener: std::net::TcpListener) -> std::io::Result<Server> {
        Ok(HttpServer::new(|| {
            App::new()
                .route("/", web::get().to(|| async { HELLO }))
                .route("/login", web::get().to(our_login))
        })
        .workers(1)
        .listen(listener)?
        .run())
    }

    pub fn ours(listener: std::net::TcpListener, tracker: Tracker) -> std::io::Result<Server> {
        let timeout = SessionTimeout::new(
            tracker,
            identify_fn(|req: &HttpRequest| {
                identity(
                    req.headers()
                        .get(actix_web::http::header::COOKIE)
                        .map(|v| v.as_bytes()),
                )
            }),
        );
        Ok(HttpServer::new(move || {
            App::new()
                .route("/", web::get().to(|| async { HELLO }))
                .route("/login", web::get().to(our_login))
                .wrap(timeout.middleware())
        })
        .workers(1)
        .listen(listener)?
        .run())
    }

    /// actix-session on Redis, its TTL extended on every request.
    pub async fn actix_session(
        listener: std::net::TcpListener,
        redis: &str,
    ) -> std::io::Result<Server> {
        let store = RedisSessionStore::new(redis).await.map_err(|e| {
            std::io::Error::other(format!("actix-session cannot reach {redis}: {e}"))
        })?;
        let key = Key::generate();
        Ok(HttpServer::new(move || {
            let lifecycle = PersistentSession::default()
                .session_ttl(Duration::minutes(IDLE_MINUTES))
                .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest);
            App::new()
                .route("/", web::get().to(hello_session))
                .route("/login", web::get().to(login))
                .wrap(
                    SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_secure(false)
                        .session_lifecycle(lifecycle)
                        .build(),
                )
        })
        .workers(1)
        .listen(listener)?
        .run())
    }

    async fn hello_session(session: Session) -> HttpResponse {
        match session.get::<String>("user") {
            Ok(Some(_)) => HttpResponse::Ok().body(HELLO),
            Ok(None) => HttpResponse::Unauthorized().body("log in first"),
            Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
        }
    }

    async fn login(session: Session) -> HttpResponse {
        match session.insert("user", USER) {
            Ok(()) => HttpResponse::Ok().body("logged in"),
            Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
        }
    }
}

fn actix_server(listener: TcpListener, front: Front, redis: String) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let tracker = tracker(front, &redis).await?;
        let _sweeper = tracker.as_ref().map(Tracker::spawn_sweeper);
        let server = match (front, tracker) {
            (_, Some(tracker)) => actix_stacks::ours(listener, tracker)?,
            (Front::ActixSessionRedis, None) => {
                actix_stacks::actix_session(listener, &redis).await?
            }
            _ => actix_stacks::hello(listener)?,
        };
        server.await
    })
}
