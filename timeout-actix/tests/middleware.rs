//! The middleware's decisions, in process with a manual clock: what reaches
//! the handlers, what is answered instead, and when the deadline moves.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix_web::{
    App, HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{Service, ServiceResponse},
    http::{StatusCode, header},
    test, web,
};
use timeout_actix::{
    IDENTIFY_FAILED_JSON, Identify, IdentifyError, Identity, NOTIFICATIONS_PATH, Passive,
    SessionTimeout, identify_fn, mark_passive,
};
use timeout_core::{Policy, Subject, Timestamp, Tracker, clock::ManualClock, wire::LOGOUT_JSON};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Setup {
    clock: ManualClock,
    tracker: Tracker,
    calls: Arc<AtomicUsize>,
}

fn setup(enabled: bool) -> Setup {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let policy = Policy::builder()
        .enabled(enabled)
        .idle_timeout(TIMEOUT)
        .warn_before(Duration::ZERO)
        .passive_path("/poll")
        .build()
        .expect("valid policy");
    let tracker = Tracker::builder(policy).clock(clock.clone()).build();
    Setup {
        clock,
        tracker,
        calls: Arc::default(),
    }
}

/// The identity travels in a header, `x-user: name/session`.
fn by_header(req: &HttpRequest) -> Result<Identity, IdentifyError> {
    let Some(value) = req.headers().get("x-user") else {
        return Ok(Identity::Anonymous);
    };
    let value = value
        .to_str()
        .map_err(|_| IdentifyError::new("x-user is not text"))?;
    let (user, session) = value.split_once('/').unwrap_or((value, "s1"));
    Ok(Identity::Subject(Subject::new(session, user)?))
}

/// The same identity, found only after a yield: the middleware's path for
/// identifications that need I/O.
#[derive(Clone)]
struct Slow;

impl Identify for Slow {
    type Future = Pin<Box<dyn Future<Output = Result<Identity, IdentifyError>>>>;

    fn identify(&self, req: &HttpRequest) -> Self::Future {
        let identity = by_header(req);
        Box::pin(async move {
            tokio::task::yield_now().await;
            identity
        })
    }
}

async fn app<I: Identify>(
    s: &Setup,
    identify: I,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    let timeout = SessionTimeout::new(s.tracker.clone(), identify);
    let calls = Arc::clone(&s.calls);
    let tracker = s.tracker.clone();
    test::init_service(
        App::new()
            .app_data(web::Data::new((calls, tracker)))
            .service(
                web::resource("/dashboard")
                    .wrap(mark_passive())
                    .route(web::get().to(handler)),
            )
            .route("/unread", web::get().to(|| async { Passive("3") }))
            .route("/logout", web::get().to(logout))
            .default_service(web::to(handler))
            .wrap(timeout.middleware()),
    )
    .await
}

type State = web::Data<(Arc<AtomicUsize>, Tracker)>;

async fn handler(state: State) -> HttpResponse {
    state.0.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().body("ok")
}

async fn logout(state: State, req: HttpRequest) -> HttpResponse {
    if let Ok(Identity::Subject(subject)) = by_header(&req) {
        state.1.logout(&subject).await.expect("memory store");
    }
    HttpResponse::Ok().finish()
}

fn get(path: &str, user: Option<&str>) -> actix_http::Request {
    let mut request = test::TestRequest::get().uri(path);
    if let Some(user) = user {
        request = request.insert_header(("x-user", user));
    }
    request.to_request()
}

async fn deadline(s: &Setup, user: &str) -> Option<Timestamp> {
    let subject = Subject::new("s1", user).expect("valid subject");
    s.tracker.deadline(&subject).await.expect("memory store")
}

#[actix_web::test]
async fn disabled_passes_everything_through_without_identifying() {
    let s = setup(false);
    let identified = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&identified);
    let app = app(
        &s,
        identify_fn(move |req: &HttpRequest| {
            counter.fetch_add(1, Ordering::SeqCst);
            by_header(req)
        }),
    )
    .await;
    let response = test::call_service(&app, get("/work", Some("alice"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(identified.load(Ordering::SeqCst), 0);
    assert_eq!(deadline(&s, "alice").await, None);
}

#[actix_web::test]
async fn timed_out_subject_gets_401_with_the_logout_json_and_the_handler_does_not_run() {
    for slow in [false, true] {
        let s = setup(true);
        macro_rules! run {
            ($app:expr) => {{
                let app = $app;
                test::call_service(&app, get("/work", Some("alice"))).await;
                s.clock.advance(TIMEOUT + Duration::from_secs(1));
                let response = test::call_service(&app, get("/work", Some("alice"))).await;
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "slow: {slow}");
                assert_eq!(
                    response
                        .headers()
                        .get(header::CACHE_CONTROL)
                        .map(|v| v.as_bytes()),
                    Some(&b"no-store"[..])
                );
                assert_eq!(test::read_body(response).await, LOGOUT_JSON.as_bytes());
            }};
        }
        if slow {
            run!(app(&s, Slow).await)
        } else {
            run!(app(&s, identify_fn(by_header)).await)
        }
        assert_eq!(s.calls.load(Ordering::SeqCst), 1, "slow: {slow}");
    }
}

#[actix_web::test]
async fn a_failed_identification_is_refused_with_500_not_let_in() {
    let s = setup(true);
    let app = app(&s, identify_fn(by_header)).await;
    let request = test::TestRequest::get()
        .uri("/work")
        .insert_header(("x-user", &b"\xff"[..]))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        test::read_body(response).await,
        IDENTIFY_FAILED_JSON.as_bytes()
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn activity_moves_the_deadline_on_both_identification_paths() {
    for slow in [false, true] {
        let s = setup(true);
        let start = s.tracker.now();
        macro_rules! run {
            ($app:expr) => {{
                let app = $app;
                test::call_service(&app, get("/work", Some("alice"))).await;
                s.clock.advance(Duration::from_secs(10));
                test::call_service(&app, get("/work", Some("alice"))).await;
            }};
        }
        if slow {
            run!(app(&s, Slow).await)
        } else {
            run!(app(&s, identify_fn(by_header)).await)
        }
        assert_eq!(
            deadline(&s, "alice").await,
            Some(start + Duration::from_secs(10) + TIMEOUT),
            "slow: {slow}"
        );
    }
}

#[actix_web::test]
async fn passive_by_rule_by_resource_marker_by_response_and_on_the_notification_path() {
    let s = setup(true);
    let app = app(&s, identify_fn(by_header)).await;
    test::call_service(&app, get("/work", Some("alice"))).await;
    let first = deadline(&s, "alice").await;
    assert!(first.is_some());
    s.clock.advance(Duration::from_secs(5));
    for path in ["/poll/jobs", "/dashboard", "/unread", NOTIFICATIONS_PATH] {
        test::call_service(&app, get(path, Some("alice"))).await;
        assert_eq!(
            deadline(&s, "alice").await,
            first,
            "{path} moved the deadline"
        );
    }
    test::call_service(&app, get("/work", Some("alice"))).await;
    assert_eq!(
        deadline(&s, "alice").await,
        first.map(|d| d + Duration::from_secs(5)),
        "activity moves it"
    );
}

#[actix_web::test]
async fn a_handler_that_logs_out_is_not_tracked_again_by_its_own_response() {
    let s = setup(true);
    let app = app(&s, identify_fn(by_header)).await;
    test::call_service(&app, get("/work", Some("alice"))).await;
    test::call_service(&app, get("/logout", Some("alice"))).await;
    assert_eq!(deadline(&s, "alice").await, None);
}

#[actix_web::test]
async fn an_unreachable_store_is_answered_503_with_retry_after() {
    let policy = Policy::builder()
        .enabled(true)
        .build()
        .expect("valid policy");
    let tracker = Tracker::builder(policy)
        .store(Arc::new(timeout_core::store::UnreachableStore::new(
            "test store",
        )))
        .build();
    let timeout = SessionTimeout::new(tracker, identify_fn(by_header));
    let app = test::init_service(
        App::new()
            .wrap(timeout.middleware())
            .route("/work", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let request = test::TestRequest::get()
        .uri("/work")
        .insert_header(("x-user", "alice"))
        .to_request();
    let response = app.call(request).await.expect("answered");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
}
