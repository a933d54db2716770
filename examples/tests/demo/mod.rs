//! `axum-demo` replica processes and a client of theirs, for the tests
//! that run several replicas (`replicas.rs`, `chaos.rs`).

#![allow(dead_code)] // each test file uses part of it

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc},
    thread,
    time::{Duration, Instant},
};

use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{client::IntoClientRequest, http::header},
};

/// A line a replica printed, and when.
pub type Log = Arc<Mutex<Vec<(Instant, String)>>>;

/// One `axum-demo` process on a free port; killed when dropped.
pub struct DemoReplica {
    child: Child,
    /// `127.0.0.1:<port>`
    pub addr: String,
    log: Log,
    /// False once killed.
    pub alive: bool,
}

impl DemoReplica {
    /// Starts `axum-demo` with `args` (and `--port 0`) and waits until it
    /// prints its address; every line it prints is kept.
    pub fn start(args: &[String]) -> DemoReplica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_axum-demo"))
            .args(args)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the axum-demo binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let log: Log = Arc::default();
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .strip_prefix("axum demo on http://")
                    .and_then(|rest| rest.split('/').next())
                {
                    let _ = tx.send(addr.to_owned());
                }
                lock(&lines).push((Instant::now(), line));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!("the replica did not print its address (are its arguments valid? {args:?})")
            });
        DemoReplica {
            child,
            addr,
            log,
            alive: true,
        }
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.alive = false;
    }

    /// Every line it printed so far, with when.
    pub fn lines(&self) -> Vec<(Instant, String)> {
        lock(&self.log).clone()
    }

    /// The users whose timeout hook completed here, once per run.
    pub fn hooks(&self) -> Vec<String> {
        lock(&self.log)
            .iter()
            .filter_map(|(_, l)| l.strip_prefix("timeout hook ran for "))
            .map(|ran| ran.split(" run ").next().unwrap_or(ran).to_owned())
            .collect()
    }

    /// Timeout hook runs started here (claimed logouts it works on).
    pub fn started(&self) -> usize {
        lock(&self.log)
            .iter()
            .filter(|(_, l)| l.starts_with("timeout hook started for "))
            .count()
    }
}

impl Drop for DemoReplica {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logs `user` in on the replica at `addr`; returns the session cookie.
pub async fn log_in(http: &reqwest::Client, addr: &str, user: &str) -> String {
    let response = http
        .post(format!("http://{addr}/api/login"))
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

/// Opens the notification WebSocket of the session `cookie` on the
/// replica at `addr`.
pub async fn open_socket(addr: &str, cookie: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let mut request = format!("ws://{addr}/rest/user/timeout/notifications")
        .into_client_request()
        .expect("a ws url");
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().expect("a header value"));
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the socket opens");
    ws
}
