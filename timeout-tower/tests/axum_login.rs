//! axum-login 0.18 identity, through real layers (tower-sessions memory
//! store, AuthManagerLayer, the timeout layer) with a manual clock.
#![cfg(feature = "axum-login")]

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    routing::{get, post},
};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use timeout_core::{Policy, Timestamp, Tracker, clock::ManualClock, wire::LOGOUT_JSON};
use timeout_tower::{SessionTimeout, login::AxumLogin, sessions::DeleteSessions};
use tower::ServiceExt;
use tower_sessions::{MemoryStore, SessionManagerLayer};

#[derive(Debug, Clone)]
struct User {
    id: u64,
    name: &'static str,
}

impl AuthUser for User {
    type Id = u64;
    fn id(&self) -> u64 {
        self.id
    }
    fn session_auth_hash(&self) -> &[u8] {
        self.name.as_bytes()
    }
}

#[derive(Clone)]
struct Backend;

const ALICE: User = User {
    id: 7,
    name: "alice",
};

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = ();
    type Error = std::io::Error;

    async fn authenticate(&self, _: ()) -> Result<Option<User>, Self::Error> {
        Ok(Some(ALICE))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, Self::Error> {
        Ok((*id == ALICE.id).then_some(ALICE))
    }
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("valid request"))
        .await
        .expect("infallible");
    let status = response.status();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), cookie)
}

#[tokio::test]
async fn axum_login_users_are_tracked_named_and_logged_out_of_axum_login_on_timeout() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let policy = Policy::builder()
        .enabled(true)
        .idle_timeout(Duration::from_secs(60))
        .warn_before(Duration::ZERO)
        .exempt(["nobody"])
        .build()
        .expect("valid policy");
    let store = MemoryStore::default();
    let tracker = Tracker::builder(policy)
        .clock(clock.clone())
        .hook(DeleteSessions::new(store.clone()))
        .build();
    let identify = AxumLogin::<Backend>::new().name(|user| user.name.to_owned());
    let timeout = SessionTimeout::new(tracker.clone(), identify);
    let auth = AuthManagerLayerBuilder::new(Backend, SessionManagerLayer::new(store)).build();
    let app =
        Router::new()
            .route(
                "/whoami",
                get(|auth: AuthSession<Backend>| async move {
                    auth.user.map_or("anonymous", |u| u.name)
                }),
            )
            .layer(timeout.layer())
            .route(
                "/login",
                post(|mut auth: AuthSession<Backend>| async move {
                    auth.login(&ALICE)
                        .await
                        .map(|()| "ok")
                        .map_err(|e| e.to_string())
                }),
            )
            .layer(auth);

    let (status, _, cookie) = call(&app, "POST", "/login", None).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.expect("a session cookie");
    let (status, body, _) = call(&app, "GET", "/whoami", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    assert_eq!(
        tracker.active_count().await.expect("memory"),
        1,
        "alice is tracked"
    );

    clock.advance(Duration::from_secs(61));
    let (status, body, _) = call(&app, "GET", "/whoami", Some(&cookie)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, LOGOUT_JSON)
    );
    let (_, body, _) = call(&app, "GET", "/whoami", Some(&cookie)).await;
    assert_ne!(
        body, "alice",
        "the timed-out cookie must not log alice in any more"
    );
}
