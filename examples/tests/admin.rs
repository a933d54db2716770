//! The axum demo's operator routes: only its operator may use them, and
//! signing a user out ends that user's session at once.

mod demo;

use demo::{DemoReplica, log_in};
use serde_json::Value;
use tokio_tungstenite::tungstenite::http::header;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    cookie: &str,
) -> (u16, Value) {
    let response = http
        .request(method, &url)
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_operator_lists_and_signs_out_users() {
    let demo = DemoReplica::start(&["--timeout-seconds", "60"].map(str::to_owned));
    let http = reqwest::Client::new();
    let base = format!("http://{}", demo.addr);
    let alice = log_in(&http, &demo.addr, "alice").await;
    let admin = log_in(&http, &demo.addr, "admin").await;
    let sessions = format!("{base}/admin/timeout/users/alice/sessions");
    let sign_out = format!("{base}/admin/timeout/users/alice/sign-out");

    let (status, _) = call(&http, reqwest::Method::GET, sessions.clone(), &alice).await;
    assert_eq!(status, 403, "a user who is not the operator is refused");
    let (status, _) = call(&http, reqwest::Method::POST, sign_out.clone(), "").await;
    assert_eq!(status, 401, "so is nobody");

    let (status, listed) = call(&http, reqwest::Method::GET, sessions.clone(), &admin).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let (status, signed) = call(&http, reqwest::Method::POST, sign_out, &admin).await;
    assert_eq!(
        (status, &signed["signedOut"]),
        (200, &Value::from(1)),
        "{signed}"
    );

    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/api/me"),
        &alice,
    )
    .await;
    assert_eq!(status, 401, "alice is signed out: {body}");
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/api/me"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "the operator goes on");
    // The demo prints when its hook ran; its output is read by a thread.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while demo.hooks().is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(demo.hooks(), ["\"alice\""], "the hooks ran once, for alice");
}
