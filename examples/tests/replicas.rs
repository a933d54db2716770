//! Three axum-demo processes sharing one real redis-server: users log in
//! and work on one replica with their notification socket on another;
//! every user who goes idle gets exactly one warning and one logout on the
//! socket, and the timeout hook runs once per user across the replicas,
//! also when the replica running hooks is killed (SIGKILL) in the middle.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread,
    time::Duration,
};

use futures_util::StreamExt;
use test_redis::RedisServer;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::header};

const WARNING: &str = r#"{"TimeoutNotification":{"minutesUntilTimeout":1}}"#;
const LOGOUT: &str = r#"{"LogoutNotification":{"reason":"Logged out due to session timeout"}}"#;

/// One replica process; killed when dropped.
struct Replica {
    child: Child,
    addr: String,
    hooks: Arc<Mutex<Vec<String>>>,
    started: Arc<Mutex<usize>>,
}

impl Replica {
    fn start(redis: &RedisServer) -> Replica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_axum-demo"))
            .args(["--redis", &redis.url(), "--port", "0"])
            .args([
                "--timeout-seconds",
                "3",
                "--warn-seconds",
                "1",
                "--lease-ms",
                "1000",
                "--command-timeout-ms",
                "400",
                // Hooks take a while, so a replica can die in the middle.
                "--hook-delay-ms",
                "600",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the axum-demo binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let started = Arc::new(Mutex::new(0usize));
        let (tx, rx) = mpsc::channel();
        let seen = Arc::clone(&hooks);
        let starts = Arc::clone(&started);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .strip_prefix("axum demo on http://")
                    .and_then(|rest| rest.split('/').next())
                {
                    let _ = tx.send(addr.to_owned());
                } else if line.starts_with("timeout hook started for ") {
                    *starts.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                } else if let Some(ran) = line.strip_prefix("timeout hook ran for ") {
                    let user = ran.split(" run ").next().unwrap_or(ran);
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(user.to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the replica prints its address");
        Replica {
            child,
            addr,
            hooks,
            started,
        }
    }

    /// Hooks this replica has started (claimed logouts it works on).
    fn started(&self) -> usize {
        *self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hooks(&self) -> Vec<String> {
        self.hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs `user` in on `replica`; returns the session cookie.
async fn log_in(http: &reqwest::Client, replica: &Replica, user: &str) -> String {
    let response = http
        .post(format!("http://{}/api/login", replica.addr))
        .header(header::CONTENT_TYPE, "application/json")
        .body(format!(r#"{{"user":"{user}","password":"demo"}}"#))
        .send()
        .await
        .expect("login answered");
    assert_eq!(response.status(), 200, "login of {user}");
    response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
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
    let mut request = format!("ws://{}/rest/user/timeout/notifications", replica.addr)
        .into_client_request()
        .expect("a ws url");
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().expect("a header value"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the socket opens");
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
    let mut replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&redis)).collect();
    let http = reqwest::Client::new();
    let users: Vec<String> = (0..12).map(|i| format!("user{i}")).collect();
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let cookie = log_in(&http, &replicas[i % 3], user).await;
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
        victim_replica.child.kill().expect("SIGKILL");
        let _ = victim_replica.child.wait();
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
    let replicas: Vec<Replica> = (0..2).map(|_| Replica::start(&redis)).collect();
    let http = reqwest::Client::new();
    let cookie = log_in(&http, &replicas[0], "alice").await;
    work(&http, &replicas[1], &cookie).await;
    let mut request = format!("ws://{}/rest/user/timeout/notifications", replicas[1].addr)
        .into_client_request()
        .expect("a ws url");
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().expect("a header value"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the socket opens");
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
