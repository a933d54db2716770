//! Three axum-demo processes sharing one real redis-server: users log in
//! and work on one replica with their notification socket on another;
//! every user who goes idle gets exactly one warning and one logout on the
//! socket, and the timeout hook runs once per user across the replicas,
//! also when the replica running hooks is killed (SIGKILL) in the middle.

mod demo;

use std::{collections::BTreeMap, time::Duration};

use demo::{DemoReplica as Replica, log_in, open_socket};
use futures_util::StreamExt;
use test_redis::RedisServer;
use tokio_tungstenite::tungstenite::{Message, http::header};

const WARNING: &str = r#"{"TimeoutNotification":{"minutesUntilTimeout":1}}"#;
const LOGOUT: &str = r#"{"LogoutNotification":{"reason":"Logged out due to session timeout"}}"#;

/// A replica on `redis` with second-long timings; hooks take a while, so a
/// replica can die in the middle of them.
fn start(redis: &RedisServer) -> Replica {
    let args = [
        "--redis",
        &redis.url(),
        "--timeout-seconds",
        "3",
        "--warn-seconds",
        "1",
        "--lease-ms",
        "1000",
        "--command-timeout-ms",
        "400",
        "--hook-delay-ms",
        "600",
    ];
    Replica::start(&args.map(str::to_owned))
}

async fn work(http: &reqwest::Client, replica: &Replica, cookie: &str) {
    let status = http
        .get(format!("http://{}/api/me", replica.addr))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 200);
}

/// The text messages of the notification socket until it ends.
async fn socket(replica: &Replica, cookie: &str) -> tokio::task::JoinHandle<Vec<String>> {
    let mut ws = open_socket(&replica.addr, cookie).await;
    tokio::spawn(async move {
        let mut texts = Vec::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(8), ws.next()).await
        {
            match message {
                Message::Text(text) => texts.push(text.to_string()),
                Message::Close(_) => break,
                _ => {}
            }
        }
        texts
    })
}

/// Runs 12 users over 3 replicas; with `kill`, the replica that claimed
/// the first logouts is killed (SIGKILL) in the middle of their hooks, so
/// another must take its claims over. Returns each user's socket messages
/// (for sockets on surviving replicas) and the completed hook runs.
async fn run(kill: bool) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, usize>) {
    let redis = RedisServer::start();
    let mut replicas: Vec<Replica> = (0..3).map(|_| start(&redis)).collect();
    let http = reqwest::Client::new();
    let users: Vec<String> = (0..12).map(|i| format!("user{i}")).collect();
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let cookie = log_in(&http, &replicas[i % 3].addr, user).await;
        work(&http, &replicas[i % 3], &cookie).await;
        sockets.push((i, socket(&replicas[(i + 1) % 3], &cookie).await));
    }
    let mut killed = None;
    if kill {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let victim = loop {
            if let Some(v) = replicas.iter().position(|r| r.started() > 0) {
                break v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no replica started a hook"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let victim_replica = &mut replicas[victim];
        victim_replica.kill();
        assert!(
            victim_replica.hooks().len() < victim_replica.started(),
            "the replica died in the middle of its hooks"
        );
        killed = Some(victim);
    }
    let mut received = BTreeMap::new();
    for (i, handle) in sockets {
        let texts = handle.await.expect("the socket task");
        if killed != Some((i + 1) % 3) {
            received.insert(users[i].clone(), texts);
        }
    }
    // Hooks run after the logout is sent, and after a takeover.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let mut hooks = BTreeMap::new();
    for replica in &replicas {
        for user in replica.hooks() {
            *hooks.entry(user).or_default() += 1;
        }
    }
    (received, hooks)
}

fn check(
    received: &BTreeMap<String, Vec<String>>,
    hooks: &BTreeMap<String, usize>,
    sockets: usize,
) {
    assert_eq!(received.len(), sockets);
    for (user, texts) in received {
        assert_eq!(texts, &[WARNING, LOGOUT], "{user}'s socket");
    }
    assert_eq!(hooks.len(), 12, "every user's hook ran: {hooks:?}");
    assert!(hooks.values().all(|n| *n == 1), "once: {hooks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_notify_each_idle_user_once_on_another_replicas_socket() {
    let (received, hooks) = run(false).await;
    check(&received, &hooks, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_loses_no_logout() {
    let (received, hooks) = run(true).await;
    // The 4 users whose socket was on the killed replica lost it with it;
    // every hook completed once, the cut ones on the replica that took over.
    check(&received, &hooks, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_logout_closes_the_users_socket_on_another_replica() {
    let redis = RedisServer::start();
    let replicas: Vec<Replica> = (0..2).map(|_| start(&redis)).collect();
    let http = reqwest::Client::new();
    let cookie = log_in(&http, &replicas[0].addr, "alice").await;
    work(&http, &replicas[1], &cookie).await;
    let mut ws = open_socket(&replicas[1].addr, &cookie).await;
    let status = http
        .post(format!("http://{}/api/logout", replicas[0].addr))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 204);
    // The socket on the other replica closes, without a timeout message.
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.reason.to_string()),
            Ok(Some(Ok(Message::Text(text)))) => panic!("unexpected {text}"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("the socket on the other replica stayed open: {other:?}"),
        }
    };
    assert_eq!(closed.as_deref(), Some("logged out"));
    // The replayed cookie is refused there too.
    let status = http
        .get(format!("http://{}/api/me", replicas[1].addr))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 401);
}
