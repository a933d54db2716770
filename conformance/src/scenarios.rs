//! The scenarios, one per behaviour of the README's list. Timings are in
//! seconds; every wait has a bound, every failure names what was expected.

use std::time::{Duration, Instant};

use serde_json::Value;
use timeout_core::wire::LOGOUT_JSON;
use tokio::time::sleep;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::{
    AppConfig, Launch, RunningApp,
    client::{Browser, Received},
};

const WARNING_JSON: &str = r#"{"TimeoutNotification":{"minutesUntilTimeout":1}}"#;
/// How late a warning or logout may be: within a second of its time.
const PRECISION: Duration = Duration::from_secs(1);
/// Slack for scheduling on a loaded 2-core machine when asserting that
/// something did *not* happen yet.
const SLACK: Duration = Duration::from_millis(300);
const QUIET: Duration = Duration::from_millis(500);
/// The policies most scenarios use.
const WARN_AT_1S_LOGOUT_AT_2S: &str =
    "timeout.session.seconds=2\ntimeout.session.notification.seconds=1";
const LOGOUT_AT_1S_NO_WARNING: &str =
    "timeout.session.seconds=1\ntimeout.session.notification.seconds=0";

/// A browser logged in as `user` (no groups).
async fn logged_in(app: &RunningApp, user: &str) -> Browser {
    let browser = Browser::new(&app.base);
    browser.login(user, &[]).await;
    browser
}

async fn counter(browser: &Browser, path: &str, field: &str) -> u64 {
    let answer = browser.get(path).await;
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    answer.json()[field].as_u64().unwrap_or(0)
}

async fn hooks_of(browser: &Browser, user: &str) -> u64 {
    counter(browser, "/test/hooks", user).await
}

async fn assert_refused_with_logout(browser: &Browser, path: &str) {
    let answer = browser.get(path).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (401, LOGOUT_JSON),
        "{path} of a timed-out session must be refused with the logout JSON"
    );
}

async fn assert_ok(browser: &Browser, path: &str) {
    let answer = browser.get(path).await;
    assert_eq!(answer.status, 200, "{path} should pass: {answer:?}");
}

/// Behaviour 1: Disabled: everything passes, nothing is tracked or sent.
pub async fn disabled_passes_everything_through(launch: &dyn Launch) {
    let mut config = AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING);
    config.properties = config.properties.replace(
        "timeout.session.enabled=true",
        "timeout.session.enabled=false",
    );
    let app = launch.start(config).await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    assert_ok(&alice, "/work").await;
    sleep(Duration::from_millis(1500)).await;
    assert_ok(&alice, "/work").await;
    assert_ok(&alice, timeout_tower::RESET_PATH).await;
    assert_eq!(
        socket.next(QUIET).await,
        Received::Nothing,
        "disabled: no notification"
    );
    assert_eq!(hooks_of(&alice, "alice").await, 0, "disabled: no hook");
    assert_eq!(
        counter(&alice, "/test/active", "active").await,
        0,
        "disabled: nothing tracked"
    );
    assert_eq!(alice.time_left_ms().await, None);
}

/// Behaviour 2: No subject: pass through untracked; the routes answer 401.
pub async fn request_without_subject_is_not_tracked(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING))
        .await;
    let anonymous = Browser::new(&app.base);
    assert_ok(&anonymous, "/work").await;
    assert_eq!(counter(&anonymous, "/test/calls", "work").await, 1);
    assert_eq!(counter(&anonymous, "/test/active", "active").await, 0);
    let reset = anonymous.get(timeout_tower::RESET_PATH).await;
    assert_eq!(reset.status, 401, "reset without a subject: {reset:?}");
    assert!(
        anonymous.try_socket().await.is_err(),
        "the notification socket must refuse a request without a subject"
    );
    sleep(Duration::from_millis(1200)).await;
    assert_ok(&anonymous, "/work").await;
}

/// Behaviour 3: Exempt users never time out, get nothing, are not stored.
pub async fn exempt_user_never_times_out(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(
            "timeout.session.seconds=1\n\
             timeout.session.notification.seconds=0\n\
             timeout.session.exception.delimiter=;\n\
             timeout.session.exception.usernames=monitor;admin",
        ))
        .await;
    let monitor = logged_in(&app, "monitor").await;
    let mut socket = monitor.socket().await;
    sleep(Duration::from_millis(1800)).await;
    assert_ok(&monitor, "/work").await;
    assert_eq!(
        socket.next(QUIET).await,
        Received::Nothing,
        "an exempt user gets no notification"
    );
    assert_eq!(
        counter(&monitor, "/test/active", "active").await,
        0,
        "exempt users are not stored"
    );
    assert_eq!(hooks_of(&monitor, "monitor").await, 0);
}

/// Behaviour 4: A user's timeout is the largest of their groups', else the global one.
pub async fn group_timeout_is_the_largest_of_the_users_groups(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(
            "timeout.session.seconds=20\n\
             timeout.session.group.short.seconds=6\n\
             timeout.session.group.long.seconds=12",
        ))
        .await;
    for (user, groups, expected) in [
        ("plain", &[][..], 20_000),
        ("shorty", &["short"][..], 6_000),
        ("both", &["short", "long"][..], 12_000),
        ("other", &["unknown", "short"][..], 6_000),
    ] {
        let browser = Browser::new(&app.base);
        browser.login(user, groups).await;
        let left = browser.time_left_ms().await.expect("tracked after login");
        assert!(
            left <= expected && left + 2_000 > expected,
            "{user} in {groups:?}: expected about {expected} ms left, got {left}"
        );
    }
}

/// Behaviour 5: Passive requests (every way of marking them) do not move the deadline.
pub async fn passive_requests_do_not_move_the_deadline(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled("timeout.session.seconds=6"))
        .await;
    let alice = logged_in(&app, "alice").await;
    sleep(Duration::from_millis(1200)).await;
    let before = alice.time_left_ms().await.expect("tracked");
    assert_ok(&alice, "/poll/status").await;
    assert_ok(&alice, "/work?auto=true").await;
    let header = alice.get_with_header("/work", "X-Passive", "1").await;
    assert_eq!(header.status, 200);
    assert_ok(&alice, "/dashboard").await;
    assert_ok(&alice, "/unread").await;
    let _socket = alice.socket().await;
    let mut events = alice.events().await;
    let _ = events.next_data(Duration::from_millis(10)).await;
    let after = alice.time_left_ms().await.expect("tracked");
    assert!(
        after <= before,
        "passive requests moved the deadline: {before} ms left before, {after} ms after"
    );
}

/// Behaviour 5: Activity moves the deadline to now + timeout.
pub async fn activity_moves_the_deadline(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled("timeout.session.seconds=6"))
        .await;
    let alice = logged_in(&app, "alice").await;
    sleep(Duration::from_millis(1200)).await;
    let before = alice.time_left_ms().await.expect("tracked");
    assert!(
        before <= 5_000,
        "1.2 s after login, {before} ms left of 6 s"
    );
    assert_ok(&alice, "/work").await;
    let after = alice.time_left_ms().await.expect("tracked");
    assert!(
        after > 5_500,
        "activity should move the deadline to 6 s ahead, {after} ms left"
    );
}

/// Behaviour 6: The gate refuses a timed-out session before any sweep, logs it out
/// once, never calls the handler.
pub async fn gate_refuses_a_timed_out_session_before_any_sweep(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING).without_sweeper())
        .await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    assert_ok(&alice, "/work").await;
    sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        socket.next(Duration::from_millis(200)).await,
        Received::Nothing,
        "no sweeper runs"
    );
    assert_eq!(
        hooks_of(&alice, "alice").await,
        0,
        "nothing ran before the next request"
    );

    assert_refused_with_logout(&alice, "/work").await;
    assert_eq!(
        counter(&alice, "/test/calls", "work").await,
        1,
        "the handler must not run"
    );
    assert_eq!(
        socket.next(PRECISION).await,
        Received::Text(LOGOUT_JSON.into())
    );
    assert_eq!(
        socket.next(PRECISION).await,
        Received::Closed,
        "the socket closes after the logout"
    );
    assert_eq!(hooks_of(&alice, "alice").await, 1, "hooks run once");

    assert_refused_with_logout(&alice, "/work").await;
    assert_eq!(
        hooks_of(&alice, "alice").await,
        1,
        "a second request does not log out again"
    );
    let me = alice.get("/plain/me").await;
    assert_eq!(
        me.status, 401,
        "the framework session must be destroyed: {me:?}"
    );
}

/// Behaviour 6: Enforcement applies to passive requests too.
pub async fn passive_request_of_a_timed_out_session_is_refused(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING).without_sweeper())
        .await;
    let alice = logged_in(&app, "alice").await;
    sleep(Duration::from_millis(1300)).await;
    assert_refused_with_logout(&alice, "/poll/status").await;
    assert_eq!(hooks_of(&alice, "alice").await, 1);
}

/// Behaviour 6 and 9: Many requests racing past the deadline: one logout.
pub async fn concurrent_requests_after_the_deadline_log_out_once(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING).without_sweeper())
        .await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    sleep(Duration::from_millis(1300)).await;
    let answers = futures_util::future::join_all((0..20).map(|_| alice.get("/work"))).await;
    for answer in &answers {
        assert_eq!((answer.status, answer.body.as_str()), (401, LOGOUT_JSON));
    }
    assert_eq!(
        socket.next(PRECISION).await,
        Received::Text(LOGOUT_JSON.into())
    );
    assert_eq!(socket.next(PRECISION).await, Received::Closed);
    assert_eq!(
        hooks_of(&alice, "alice").await,
        1,
        "20 racing requests, one logout"
    );
}

/// Behaviour 7: Reset counts as activity; 401 without a subject.
pub async fn reset_counts_as_activity_and_needs_a_subject(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled("timeout.session.seconds=6"))
        .await;
    let alice = logged_in(&app, "alice").await;
    sleep(Duration::from_millis(1200)).await;
    let before = alice.time_left_ms().await.expect("tracked");
    assert!(before <= 5_000);
    assert_ok(&alice, timeout_tower::RESET_PATH).await;
    let after = alice.time_left_ms().await.expect("tracked");
    assert!(
        after > 5_500,
        "reset should restart the idle period, {after} ms left"
    );
    let anonymous = Browser::new(&app.base);
    assert_eq!(anonymous.get(timeout_tower::RESET_PATH).await.status, 401);
}

/// Behaviour 8, 9, 13: One warning at deadline - warn_before, one logout at the
/// deadline, each within a second; then the socket closes, hooks ran once,
/// the framework session is gone.
pub async fn warning_then_logout_on_the_socket_on_time(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(WARN_AT_1S_LOGOUT_AT_2S))
        .await;
    let alice = Browser::new(&app.base);
    let before_login = Instant::now();
    alice.login("alice", &[]).await;
    let after_login = Instant::now();
    let mut socket = alice.socket().await;

    let warning = socket.next(Duration::from_secs(3)).await;
    let warned_at = Instant::now();
    assert_eq!(
        warning,
        Received::Text(WARNING_JSON.into()),
        "expected the warning"
    );
    assert!(
        warned_at + SLACK >= after_login + Duration::from_secs(1)
            && warned_at < before_login + Duration::from_secs(1) + PRECISION,
        "warning due 1 s after login, came after {:?}",
        warned_at - before_login
    );

    let logout = socket.next(Duration::from_secs(3)).await;
    let logged_out_at = Instant::now();
    assert_eq!(
        logout,
        Received::Text(LOGOUT_JSON.into()),
        "expected the logout"
    );
    assert!(
        logged_out_at + SLACK >= after_login + Duration::from_secs(2)
            && logged_out_at < before_login + Duration::from_secs(2) + PRECISION,
        "logout due 2 s after login, came after {:?}",
        logged_out_at - before_login
    );
    assert_eq!(
        socket.next(PRECISION).await,
        Received::Closed,
        "the socket closes after the logout"
    );
    sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks_of(&alice, "alice").await, 1, "hooks run once");
    assert_refused_with_logout(&alice, "/work").await;
    assert_eq!(
        alice.get("/plain/me").await.status,
        401,
        "the framework session is destroyed"
    );
    assert_eq!(
        hooks_of(&alice, "alice").await,
        1,
        "the refused request did not log out again"
    );
}

/// Behaviour 8: Activity after a warning starts a new period with its own warning.
pub async fn activity_after_a_warning_starts_a_new_period(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(WARN_AT_1S_LOGOUT_AT_2S))
        .await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    assert_eq!(
        socket.next(Duration::from_secs(3)).await,
        Received::Text(WARNING_JSON.into())
    );
    assert_ok(&alice, "/work").await;
    assert_eq!(
        socket.next(Duration::from_secs(3)).await,
        Received::Text(WARNING_JSON.into()),
        "a new idle period brings a new warning, before any logout"
    );
    assert_eq!(
        socket.next(Duration::from_secs(3)).await,
        Received::Text(LOGOUT_JSON.into())
    );
    assert_eq!(socket.next(PRECISION).await, Received::Closed);
}

/// Behaviour 10: Explicit logout: tracking stops, no timeout event follows.
pub async fn explicit_logout_stops_tracking(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING))
        .await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    let logout = alice.post("/logout", Value::Null).await;
    assert!(logout.status < 300, "logout: {logout:?}");
    assert_eq!(
        socket.next(PRECISION).await,
        Received::Closed,
        "the socket ends without a logout message"
    );
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hooks_of(&alice, "alice").await,
        0,
        "no timeout after an explicit logout"
    );
    assert_eq!(counter(&alice, "/test/active", "active").await, 0);
}

/// Behaviour 11: Subscriptions get only their own subject's events.
pub async fn notifications_reach_only_their_subject(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(WARN_AT_1S_LOGOUT_AT_2S))
        .await;
    let alice = Browser::new(&app.base);
    let bob = Browser::new(&app.base);
    alice.login("alice", &[]).await;
    bob.login("bob", &[]).await;
    let mut alice_socket = alice.socket().await;
    let mut bob_socket = bob.socket().await;
    let keep_bob_busy = async {
        for _ in 0..10 {
            assert_ok(&bob, "/work").await;
            sleep(Duration::from_millis(250)).await;
        }
    };
    let watch_alice = async {
        assert_eq!(
            alice_socket.next(Duration::from_secs(3)).await,
            Received::Text(WARNING_JSON.into())
        );
        assert_eq!(
            alice_socket.next(Duration::from_secs(3)).await,
            Received::Text(LOGOUT_JSON.into())
        );
    };
    tokio::join!(keep_bob_busy, watch_alice);
    assert_eq!(
        bob_socket.next(Duration::from_millis(100)).await,
        Received::Nothing,
        "bob must not receive alice's notifications"
    );
    assert_ok(&bob, "/work").await;
}

async fn two_sessions_one_busy(launch: &dyn Launch, scope: &str) -> (u16, u16) {
    let app = launch.start(AppConfig::enabled(&format!(
            "timeout.session.seconds=2\ntimeout.session.notification.seconds=0\ntimeout.session.scope={scope}"
        )),
    )
    .await;
    let busy = Browser::new(&app.base);
    let idle = Browser::new(&app.base);
    busy.login("alice", &[]).await;
    idle.login("alice", &[]).await;
    for _ in 0..12 {
        assert_ok(&busy, "/work").await;
        sleep(Duration::from_millis(250)).await;
    }
    (
        busy.get("/work").await.status,
        idle.get("/work").await.status,
    )
}

/// Scope user: any session's activity keeps all the user's sessions alive.
pub async fn scope_user_keeps_every_session_of_the_user_alive(launch: &dyn Launch) {
    let (busy, idle) = two_sessions_one_busy(launch, "user").await;
    assert_eq!(
        (busy, idle),
        (200, 200),
        "scope user: the idle tab lives on"
    );
}

/// Scope session: each session expires on its own.
pub async fn scope_session_expires_each_session_alone(launch: &dyn Launch) {
    let (busy, idle) = two_sessions_one_busy(launch, "session").await;
    assert_eq!(
        (busy, idle),
        (200, 401),
        "scope session: the idle tab times out alone"
    );
}

/// Behaviour 11: The Server-Sent Events stream carries the same notifications and ends
/// after the logout.
pub async fn server_sent_events_deliver_the_same_notifications(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(WARN_AT_1S_LOGOUT_AT_2S))
        .await;
    let alice = logged_in(&app, "alice").await;
    let mut events = alice.events().await;
    assert_eq!(
        events.next_data(Duration::from_secs(3)).await.as_deref(),
        Some(WARNING_JSON)
    );
    assert_eq!(
        events.next_data(Duration::from_secs(3)).await.as_deref(),
        Some(LOGOUT_JSON)
    );
    assert!(
        events.ends(PRECISION).await,
        "the stream ends after the logout"
    );
    let anonymous = Browser::new(&app.base);
    assert_eq!(anonymous.get(timeout_tower::EVENTS_PATH).await.status, 401);
}

/// Bad input on the socket is ignored, not fatal.
pub async fn socket_ignores_what_the_client_sends(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(WARN_AT_1S_LOGOUT_AT_2S))
        .await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    socket.send(Message::Text("{not json".into())).await;
    socket
        .send(Message::Binary(Bytes::from_static(&[0, 159, 146, 150])))
        .await;
    socket
        .send(Message::Text(
            r#"{"LogoutNotification":{"reason":"forged"}}"#.into(),
        ))
        .await;
    assert_ok(&alice, "/work?auto=true").await;
    assert_eq!(
        socket.next(Duration::from_secs(3)).await,
        Received::Text(WARNING_JSON.into())
    );
    assert_eq!(
        socket.next(Duration::from_secs(3)).await,
        Received::Text(LOGOUT_JSON.into())
    );
}

/// A socket whose client stopped answering pings (a laptop that slept, a
/// dropped connection) is closed within two intervals; one that answers
/// stays open.
pub async fn a_socket_whose_client_stops_answering_is_closed(launch: &dyn Launch) {
    let config =
        AppConfig::enabled("timeout.session.seconds=60\ntimeout.session.notification.seconds=0")
            .pinging_every(Duration::from_millis(300));
    let app = launch.start(config).await;
    let alice = logged_in(&app, "alice").await;
    let mut silent = alice.socket().await;
    let mut answering = alice.socket().await;
    // Reading answers the pings; the silent socket is not read at all.
    assert_eq!(
        answering.next(Duration::from_millis(1_500)).await,
        Received::Nothing,
        "a client that answers pings keeps its socket"
    );
    assert_eq!(
        silent.next(Duration::from_secs(2)).await,
        Received::Closed,
        "the server closes the socket of a client that stopped answering"
    );
    assert_eq!(answering.next(QUIET).await, Received::Nothing);
}

/// The client has nothing to say: a message over the limit closes its
/// socket rather than being buffered.
pub async fn an_oversized_client_message_closes_the_socket(launch: &dyn Launch) {
    let config =
        AppConfig::enabled("timeout.session.seconds=60\ntimeout.session.notification.seconds=0");
    let app = launch.start(config).await;
    let alice = logged_in(&app, "alice").await;
    let mut socket = alice.socket().await;
    socket.send(Message::Text("x".repeat(1_000).into())).await;
    assert_eq!(
        socket.next(QUIET).await,
        Received::Nothing,
        "a small message is ignored"
    );
    socket
        .send(Message::Text("x".repeat(64 * 1024).into()))
        .await;
    assert_eq!(socket.next(Duration::from_secs(2)).await, Received::Closed);
    assert_ok(&alice, "/work").await;
}

/// The browser client counts its warning down from the passive status: who,
/// the time left by the server's clock, the policy's timings; 401 without a
/// subject, the logout answer once timed out.
pub async fn status_tells_the_time_left_passively(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(
            "timeout.session.seconds=3\ntimeout.session.notification.seconds=1",
        ))
        .await;
    let anonymous = Browser::new(&app.base);
    let answer = anonymous.get(timeout_core::adapter::STATUS_PATH).await;
    assert_eq!(answer.status, 401, "status without a subject: {answer:?}");

    let alice = logged_in(&app, "alice").await;
    sleep(Duration::from_millis(1200)).await;
    let before = alice.time_left_ms().await.expect("tracked");
    let status = alice.get(timeout_core::adapter::STATUS_PATH).await;
    assert_eq!(status.status, 200, "{status:?}");
    let json = status.json();
    assert_eq!(json["user"], "alice");
    assert_eq!(json["timeoutSeconds"].as_f64(), Some(3.0));
    assert_eq!(json["warnSeconds"].as_f64(), Some(1.0));
    let left_ms = json["secondsLeft"].as_f64().expect("a number") * 1000.0;
    assert!(
        (left_ms - before as f64).abs() < 500.0,
        "status says {left_ms} ms left, the tracker {before} ms"
    );
    assert_eq!(status.cache_control.as_deref(), Some("no-store"));
    let after = alice.time_left_ms().await.expect("tracked");
    assert!(
        after <= before,
        "reading the status moved the deadline: {before} ms, then {after} ms"
    );

    sleep(Duration::from_millis(2200)).await;
    assert_refused_with_logout(&alice, timeout_core::adapter::STATUS_PATH).await;
}

/// The client's module and stylesheet: public, cached with an `ETag` and
/// revalidated with 304, and served even with the cookie of a timed-out
/// session, whose page needs them to ask the user to log in again.
pub async fn client_files_are_served_with_an_etag_even_to_a_timed_out_session(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING).without_sweeper())
        .await;
    let alice = logged_in(&app, "alice").await;
    sleep(Duration::from_millis(1300)).await;
    for asset in timeout_core::adapter::ClientAsset::all() {
        let path = format!("{}/{}", timeout_core::adapter::CLIENT_PATH, asset.name);
        let first = alice.get(&path).await;
        assert_eq!(
            first.status, 200,
            "{path} to a timed-out session: {first:?}"
        );
        assert_eq!(first.body, asset.body, "{path}");
        assert_eq!(first.cache_control.as_deref(), Some("no-cache"), "{path}");
        let etag = first
            .etag
            .clone()
            .unwrap_or_else(|| panic!("{path} has no ETag"));
        let again = alice.get_with_header(&path, "If-None-Match", &etag).await;
        assert_eq!(
            (again.status, again.body.as_str()),
            (304, ""),
            "{path} revalidated"
        );
    }
    // Fetching them was no activity: the session is still timed out.
    assert_refused_with_logout(&alice, "/work").await;
}

/// The framework's own session (tower-sessions, actix-session) ends before
/// the idle timeout: one record with the user and the time since it
/// expired; the idle timeout still logs the user out at its own deadline.
/// A framework session that the idle timeout ended first gets no record.
pub async fn a_framework_session_that_expires_first_is_recorded_once(launch: &dyn Launch) {
    let app = launch
        .start(
            AppConfig::enabled("timeout.session.seconds=4\ntimeout.session.notification.seconds=1")
                .framework_session(Duration::from_secs(1)),
        )
        .await;
    let alice = logged_in(&app, "alice").await;
    let started = Instant::now();
    let expired = loop {
        let counts = alice.get("/test/hooks").await.json();
        if counts["framework:alice"].as_u64() == Some(1) {
            break counts;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no framework-session expiry recorded 3 s after a 1 s framework session: {counts}"
        );
        sleep(Duration::from_millis(50)).await;
    };
    let since = expired["framework-since-ms:alice"]
        .as_u64()
        .expect("a time since");
    assert!(
        since <= 1000,
        "noticed {since} ms after it expired; the watch looks every 100 ms"
    );
    assert_eq!(
        hooks_of(&alice, "alice").await,
        0,
        "the idle timeout came before its deadline"
    );
    // The idle timeout goes on and logs alice out at its own deadline, and
    // the framework expiry is not recorded again.
    sleep(Duration::from_millis(4500).saturating_sub(started.elapsed())).await;
    let counts = alice.get("/test/hooks").await.json();
    assert_eq!(
        counts["alice"].as_u64(),
        Some(1),
        "no idle timeout after the framework's: {counts}"
    );
    assert_eq!(
        counts["framework:alice"].as_u64(),
        Some(1),
        "recorded twice: {counts}"
    );

    // The other way round: the idle timeout ends bob first.
    let app = launch
        .start(
            AppConfig::enabled(LOGOUT_AT_1S_NO_WARNING).framework_session(Duration::from_secs(2)),
        )
        .await;
    let bob = logged_in(&app, "bob").await;
    sleep(Duration::from_millis(3000)).await;
    let counts = bob.get("/test/hooks").await.json();
    assert_eq!(counts["bob"].as_u64(), Some(1), "no idle timeout: {counts}");
    assert_eq!(
        counts["framework:bob"],
        Value::Null,
        "the idle timeout ended it first: {counts}"
    );
}

/// The sessions an operator sees for `user`, checked to be `count`, each
/// with a deadline and between `min` and `max` seconds left, and its id
/// shortened (ids are bearer secrets).
async fn assert_listed(operator: &Browser, user: &str, count: usize, min: f64, max: f64) {
    let path = format!("/admin/users/{user}/sessions");
    let answer = operator.get(&path).await;
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"), "{path}");
    let listed = answer.json();
    assert_eq!(listed["user"], user, "{listed}");
    let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), count, "{user}'s sessions: {listed}");
    for session in &sessions {
        let left = session["secondsLeft"].as_f64().unwrap_or(-1.0);
        assert!((min..=max).contains(&left), "time left: {session}");
        assert!(
            session["deadlineMs"].as_u64().is_some_and(|ms| ms > 0),
            "{session}"
        );
        let id = session["session"].as_str().unwrap_or_default();
        assert!(
            id.ends_with('…') && id.chars().count() <= 5,
            "a shortened id: {session}"
        );
    }
}

/// Alice logged in twice, bob once, and an operator's client.
async fn alice_twice_bob_and_an_operator(app: &RunningApp) -> [Browser; 4] {
    [
        logged_in(app, "alice").await,
        logged_in(app, "alice").await,
        logged_in(app, "bob").await,
        Browser::new(&app.base),
    ]
}

async fn sign_out(operator: &Browser, user: &str) -> Value {
    let path = format!("/admin/users/{user}/sign-out");
    let answer = operator.post(&path, Value::Null).await;
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    answer.json()
}

/// Operators: a user's sessions are listed with their deadlines, and
/// signing the user out ends them all at once: the socket gets the logout,
/// the hooks run once, the sessions are refused, other users go on, and a
/// second sign-out finds nothing.
pub async fn an_operator_lists_and_signs_out_a_user_everywhere(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled("timeout.session.seconds=30"))
        .await;
    let [first, second, bob, operator] = alice_twice_bob_and_an_operator(&app).await;
    assert_listed(&operator, "alice", 2, 25.0, 30.0).await;
    let mut socket = first.socket().await;

    assert_eq!(
        sign_out(&operator, "alice").await,
        serde_json::json!({ "user": "alice", "signedOut": 2 })
    );
    assert_eq!(
        socket.next(PRECISION).await,
        Received::Text(timeout_core::Notification::signed_out().to_json()),
        "the socket hears of the sign-out"
    );
    assert_eq!(socket.next(PRECISION).await, Received::Closed);
    assert_refused_with_logout(&first, "/work").await;
    assert_refused_with_logout(&second, "/work").await;
    assert_ok(&bob, "/work").await;
    assert_eq!(hooks_of(&operator, "alice").await, 1, "hooks run once");

    assert_eq!(sign_out(&operator, "alice").await["signedOut"], 0);
    assert_listed(&operator, "alice", 0, 0.0, 0.0).await;
    assert_listed(&operator, "bob", 1, 25.0, 30.0).await;
    assert_eq!(hooks_of(&operator, "alice").await, 1, "and only once");
    assert_eq!(hooks_of(&operator, "bob").await, 0);
}

/// Operators in scope session: each of the user's sessions is a key of its
/// own, found among the others' and signed out with its own hooks.
pub async fn an_operator_signs_out_every_session_in_session_scope(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled(
            "timeout.session.seconds=30\ntimeout.session.scope=session",
        ))
        .await;
    let [first, second, bob, operator] = alice_twice_bob_and_an_operator(&app).await;
    assert_listed(&operator, "alice", 2, 25.0, 30.0).await;
    assert_listed(&operator, "bob", 1, 25.0, 30.0).await;

    assert_eq!(sign_out(&operator, "alice").await["signedOut"], 2);
    assert_refused_with_logout(&first, "/work").await;
    assert_refused_with_logout(&second, "/work").await;
    assert_ok(&bob, "/work").await;
    assert_eq!(hooks_of(&operator, "alice").await, 2, "once per session");
    assert_listed(&operator, "alice", 0, 0.0, 0.0).await;
    assert_listed(&operator, "bob", 1, 25.0, 30.0).await;
}

/// Operators: a user name that cannot be one is a clear 400, never a
/// panic, and changes nothing.
pub async fn an_operator_request_for_an_impossible_user_is_refused(launch: &dyn Launch) {
    let app = launch
        .start(AppConfig::enabled("timeout.session.seconds=30"))
        .await;
    let alice = logged_in(&app, "alice").await;
    let operator = Browser::new(&app.base);
    let long = "x".repeat(timeout_core::MAX_ID_LEN + 1);
    for path in [
        format!("/admin/users/{long}/sessions"),
        format!("/admin/users/{long}/sign-out"),
    ] {
        let answer = if path.ends_with("sign-out") {
            operator.post(&path, Value::Null).await
        } else {
            operator.get(&path).await
        };
        assert_eq!(answer.status, 400, "{answer:?}");
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("user name"),
            "the error names the problem: {error}"
        );
    }
    // Names with characters of URL and key syntax are just names.
    let odd = operator.get("/admin/users/a%7Bb%7D%3Ac%20d/sessions").await;
    assert_eq!(odd.status, 200, "{odd:?}");
    assert_eq!(
        odd.json(),
        serde_json::json!({ "user": "a{b}:c d", "sessions": [] })
    );
    assert_ok(&alice, "/work").await;
}
