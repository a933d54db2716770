//! The layer's decisions, in process with a manual clock: what reaches the
//! inner service, what is answered instead, and when the deadline moves.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body_util::{BodyExt, Empty};
use timeout_core::{
    Decision, Policy, RequestKind, Subject, Timestamp, Tracker, clock::ManualClock,
    wire::LOGOUT_JSON,
};
use timeout_tower::{
    IDENTIFY_FAILED_JSON, IdentifyError, Identity, NOTIFICATIONS_PATH, Passive, SessionTimeout,
    identify_fn,
};
use tower::{Service, ServiceExt, service_fn};

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

/// The identity travels in a request header, `x-user: name/session`, or
/// `x-session: id` for a session without a user.
fn by_header(parts: &Parts) -> Result<Identity, IdentifyError> {
    if let Some(session) = parts.headers.get("x-session") {
        let session = session
            .to_str()
            .map_err(|_| IdentifyError::new("bad x-session"))?;
        return Ok(Identity::Session(session.into()));
    }
    let Some(value) = parts.headers.get("x-user") else {
        return Ok(Identity::Anonymous);
    };
    let value = value
        .to_str()
        .map_err(|_| IdentifyError::new("x-user is not text"))?;
    let (user, session) = value.split_once('/').unwrap_or((value, "s1"));
    Ok(Identity::Subject(Subject::new(session, user)?))
}

/// An app whose handler counts calls, marks `/marked` passive and logs the
/// subject out on `/logout`.
fn app(
    s: &Setup,
) -> impl Service<
    Request<Empty<Bytes>>,
    Response = Response<timeout_tower::IdleTimeoutBody<Empty<Bytes>>>,
    Error = Infallible,
> + Clone {
    let calls = Arc::clone(&s.calls);
    let tracker = s.tracker.clone();
    let inner = service_fn(move |req: Request<Empty<Bytes>>| {
        let calls = Arc::clone(&calls);
        let tracker = tracker.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut response = Response::new(Empty::<Bytes>::new());
            match req.uri().path() {
                "/marked" => {
                    response.extensions_mut().insert(Passive);
                }
                "/logout" => {
                    let (parts, _) = req.into_parts();
                    if let Ok(Identity::Subject(subject)) = by_header(&parts) {
                        tracker.logout(&subject).await.expect("memory store");
                    }
                }
                _ => {}
            }
            Ok::<_, Infallible>(response)
        }
    });
    let timeout = SessionTimeout::new(s.tracker.clone(), identify_fn(by_header));
    tower::Layer::layer(&timeout.layer(), inner)
}

fn get(path: &str, user: Option<&str>) -> Request<Empty<Bytes>> {
    let mut builder = Request::get(path);
    if let Some(user) = user {
        builder = builder.header("x-user", user);
    }
    builder.body(Empty::new()).expect("valid request")
}

async fn send(
    service: &mut (
             impl Service<
        Request<Empty<Bytes>>,
        Response = Response<timeout_tower::IdleTimeoutBody<Empty<Bytes>>>,
        Error = Infallible,
    > + Clone
         ),
    req: Request<Empty<Bytes>>,
) -> (StatusCode, String, Option<String>) {
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(req)
        .await
        .expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        String::from_utf8_lossy(&body).into_owned(),
        content_type,
    )
}

async fn deadline(s: &Setup, user: &str) -> Option<Timestamp> {
    let subject = Subject::new("s1", user).expect("valid");
    s.tracker.deadline(&subject).await.expect("memory store")
}

#[tokio::test]
async fn disabled_passes_everything_through_without_identifying() {
    let s = setup(false);
    let identified = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&identified);
    let timeout = SessionTimeout::new(
        s.tracker.clone(),
        identify_fn(move |_: &Parts| {
            counter.fetch_add(1, Ordering::SeqCst);
            None::<Subject>
        }),
    );
    let calls = Arc::clone(&s.calls);
    let mut service = tower::Layer::layer(
        &timeout.layer(),
        service_fn(move |_req: Request<Empty<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) }
        }),
    );
    s.clock.advance(TIMEOUT * 10);
    let (status, ..) = send(&mut service, get("/", Some("alice"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        identified.load(Ordering::SeqCst),
        0,
        "disabled: no identification"
    );
}

#[tokio::test]
async fn timed_out_subject_gets_401_with_the_logout_json_and_the_handler_does_not_run() {
    let s = setup(true);
    let mut service = app(&s);
    assert_eq!(
        send(&mut service, get("/", Some("alice"))).await.0,
        StatusCode::OK
    );
    s.clock.advance(TIMEOUT + Duration::from_millis(1));
    let (status, body, content_type) = send(&mut service, get("/", Some("alice"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, LOGOUT_JSON);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(
        s.calls.load(Ordering::SeqCst),
        1,
        "the handler ran only for the first request"
    );
}

#[tokio::test]
async fn anonymous_requests_pass_untracked() {
    let s = setup(true);
    let mut service = app(&s);
    assert_eq!(send(&mut service, get("/", None)).await.0, StatusCode::OK);
    assert_eq!(s.tracker.active_count().await.expect("memory"), 0);
}

#[tokio::test]
async fn a_failed_identification_is_refused_with_500_not_let_in() {
    let s = setup(true);
    let mut service = app(&s);
    let req = Request::get("/")
        .header("x-user", "")
        .body(Empty::new())
        .expect("valid");
    let (status, body, _) = send(&mut service, req).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, IDENTIFY_FAILED_JSON)
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn passive_by_rule_by_route_marker_and_on_the_notification_path_do_not_move_the_deadline() {
    let s = setup(true);
    let mut service = app(&s);
    send(&mut service, get("/", Some("alice"))).await;
    let first = deadline(&s, "alice").await.expect("tracked");
    for path in ["/poll/x", "/marked", NOTIFICATIONS_PATH] {
        s.clock.advance(Duration::from_secs(1));
        let (status, ..) = send(&mut service, get(path, Some("alice"))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            deadline(&s, "alice").await,
            Some(first),
            "{path} moved the deadline"
        );
    }
    s.clock.advance(Duration::from_secs(1));
    send(&mut service, get("/work", Some("alice"))).await;
    let moved = deadline(&s, "alice").await.expect("tracked");
    assert_eq!(
        moved.as_millis(),
        first.as_millis() + 4_000,
        "activity moves the deadline"
    );
}

#[tokio::test]
async fn a_handler_that_logs_out_is_not_tracked_again_by_its_own_response() {
    let s = setup(true);
    let mut service = app(&s);
    send(&mut service, get("/", Some("alice"))).await;
    send(&mut service, get("/logout", Some("alice"))).await;
    assert_eq!(
        deadline(&s, "alice").await,
        None,
        "logged out, not re-tracked"
    );
    s.clock.advance(TIMEOUT * 2);
    let report = s.tracker.sweep().await.expect("memory");
    assert_eq!(report.logouts, 0, "no timeout after an explicit logout");
}

#[tokio::test]
async fn a_session_whose_record_is_gone_is_refused_only_if_it_timed_out() {
    let s = setup(true);
    let mut service = app(&s);
    send(&mut service, get("/", Some("alice/s-old"))).await;
    s.clock.advance(TIMEOUT + Duration::from_secs(1));
    s.tracker.sweep().await.expect("memory");
    for (session, expected) in [
        ("s-old", StatusCode::UNAUTHORIZED),
        ("s-other", StatusCode::OK),
    ] {
        let req = Request::get("/")
            .header("x-session", session)
            .body(Empty::new())
            .expect("valid");
        let (status, body, _) = send(&mut service, req).await;
        assert_eq!(status, expected, "session {session}: {body}");
    }
}

#[tokio::test]
async fn the_decision_of_the_gate_is_the_core_decision() {
    // The layer adds no rule of its own: a subject allowed by the tracker is
    // let through, and the tracker sees the request afterwards.
    let s = setup(true);
    let mut service = app(&s);
    send(&mut service, get("/", Some("bob"))).await;
    let bob = Subject::new("s1", "bob").expect("valid");
    assert!(matches!(
        s.tracker.check(Some(&bob), RequestKind::Passive).await,
        Decision::Allowed { .. }
    ));
}

#[cfg(feature = "tower-sessions")]
#[test]
fn warns_at_start_up_when_tower_sessions_expire_before_the_idle_timeout() {
    use timeout_tower::sessions::TowerSessions;
    use tower_sessions::Expiry;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let policy = Policy::from_properties(
        "timeout.session.enabled=true\ntimeout.session.minutes=30\ntimeout.session.group.ops.minutes=90",
    )
    .expect("valid");
    tracing::subscriber::with_default(subscriber, || {
        let tracker = Tracker::new(policy);
        let short = TowerSessions::new().expiry(Expiry::OnInactivity(time::Duration::hours(1)));
        let _ = SessionTimeout::new(tracker.clone(), short).layer();
        let long = TowerSessions::new().expiry(Expiry::OnInactivity(time::Duration::hours(2)));
        let _ = SessionTimeout::new(tracker, long).layer();
    });
    let log =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, for the 1-hour expiry only:\n{log}"
    );
    assert!(
        warnings[0].contains("tower-sessions ends sessions after 60 min")
            && warnings[0].contains("group ops (90 min)")
            && !warnings[0].contains("idle timeout (30 min)"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
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
    let inner = service_fn(|_: Request<Empty<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    });
    let timeout = SessionTimeout::new(tracker, identify_fn(by_header));
    let mut service = tower::Layer::layer(&timeout.layer(), inner);
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(get("/work", Some("alice")))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
}
