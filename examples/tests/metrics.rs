//! The axum demo's `/metrics`: after a real idle timeout, the Prometheus
//! text shows the logout, its lateness, the refusal of the timed-out
//! session and the sweeps; an explicit logout counts apart.

mod demo;

use std::time::Duration;

use demo::{DemoReplica, log_in};
use tokio_tungstenite::tungstenite::http::header;

/// The value of the sample `name` (with its labels, as rendered), if any.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

async fn scrape(http: &reqwest::Client, addr: &str) -> String {
    let response = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("/metrics answered");
    assert_eq!(response.status(), 200, "/metrics");
    response.text().await.expect("a text body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_after_a_real_timeout() {
    let args = ["--timeout-seconds", "2", "--warn-seconds", "1"].map(str::to_owned);
    let demo = DemoReplica::start(&args);
    let http = reqwest::Client::new();

    let idle = log_in(&http, &demo.addr, "idle-user").await;
    let leaving = log_in(&http, &demo.addr, "leaving-user").await;
    let status = http
        .post(format!("http://{}/api/logout", demo.addr))
        .header(header::COOKIE, &leaving)
        .send()
        .await
        .expect("logout answered")
        .status();
    assert_eq!(status, 204);

    // The warning at 1 s, the logout and its hooks at 2 s; the sweeper
    // reads the hook counters once a second.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let refused = http
        .get(format!("http://{}/api/me", demo.addr))
        .header(header::COOKIE, &idle)
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(refused, 401, "the timed-out session is refused");

    let text = scrape(&http, &demo.addr).await;
    let expect = |name: &str, at_least: f64| {
        let value = sample(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        assert!(
            value >= at_least,
            "{name} = {value}, expected at least {at_least}\n{text}"
        );
        value
    };
    assert_eq!(
        expect("idle_timeout_logouts_total{cause=\"idle\"}", 1.0),
        1.0
    );
    assert_eq!(expect("idle_timeout_warnings_total", 1.0), 1.0);
    assert_eq!(expect("idle_timeout_explicit_logouts_total", 1.0), 1.0);
    expect("idle_timeout_refused_requests_total{status=\"401\"}", 1.0);
    expect("idle_timeout_hook_runs_total{outcome=\"succeeded\"}", 1.0);
    expect("idle_timeout_logout_lateness_seconds_count", 1.0);
    expect("idle_timeout_warning_lateness_seconds_count", 1.0);
    expect("idle_timeout_sweep_duration_seconds_count", 10.0);
    // Read at start, then every 10 s (the tracked keys) and every second
    // (the subscriptions): present, whatever they read.
    expect("idle_timeout_tracked_keys", 0.0);
    expect("idle_timeout_subscriptions", 0.0);
    let late = expect("idle_timeout_logout_lateness_seconds{quantile=\"1\"}", 0.0);
    assert!(late < 1.0, "the logout came {late} s late");
}
