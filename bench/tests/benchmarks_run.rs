//! The benchmark programs run, once, with tiny sizes, so they do not rot:
//! every bench-server stack answers a logged-in request and refuses none,
//! and every scale-bench mode finishes on both stores (and the sweep on a
//! Redis Cluster, its shards on every master) with every logout delivered.
//! Nothing here is timed.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Output, Stdio},
};

use test_redis::RedisServer;

/// A bench-server process; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(stack: &str, redis: &RedisServer) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bench-server"))
            .args(["--stack", stack, "--port", "0", "--redis", &redis.url()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("bench-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("bench-server prints its address");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.strip_suffix("/\n"))
            .unwrap_or_else(|| panic!("{stack}: no address in {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    /// One `GET path` with an optional cookie: (status, headers, body).
    fn get(&self, path: &str, cookie: Option<&str>) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connects to bench-server");
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{cookie}Connection: close\r\n\r\n",
            self.addr
        )
        .expect("request sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response read");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        (status, head.to_owned(), body.to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `name=value` of the first `Set-Cookie` header, as the script takes it.
fn set_cookie(head: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie")
            .then(|| value.trim().split(';').next().unwrap_or("").to_owned())
    })
}

#[test]
fn every_stack_serves_a_logged_in_session() {
    let redis = RedisServer::start();
    for stack in [
        "axum-hello",
        "axum-memory",
        "axum-redis",
        "axum-tower-sessions-memory",
        "axum-tower-sessions-redis",
        "actix-hello",
        "actix-memory",
        "actix-redis",
        "actix-session-redis",
    ] {
        let server = Server::start(stack, &redis);
        let (status, head, _) = server.get("/login", None);
        assert_eq!(status, 200, "{stack}: /login answered {head}");
        let cookie = set_cookie(&head).unwrap_or_else(|| panic!("{stack}: no cookie in {head}"));
        for _ in 0..3 {
            let (status, head, body) = server.get("/", Some(&cookie));
            assert_eq!(
                (status, body.as_str()),
                (200, "Hello, World!"),
                "{stack}: {head}"
            );
        }
        if stack.contains("session") {
            // The anchors do check the session: without the cookie, no entry.
            let (status, _, _) = server.get("/", None);
            assert_eq!(status, 401, "{stack} let an anonymous request in");
        }
    }
}

fn scale_bench(args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_scale-bench"))
        .args(args)
        .output()
        .expect("scale-bench starts");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "scale-bench {args:?}: {stdout}{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

#[test]
fn the_sweep_benchmark_runs_on_both_stores() {
    let redis = RedisServer::start();
    let url = redis.url();
    for store in [
        &["--store", "memory"][..],
        &["--store", "redis", "--redis", &url],
        &["--store", "redis", "--cluster", "3"],
    ] {
        let mut args = vec!["sweep", "--keys", "2000", "--due", "200", "--rounds", "2"];
        args.extend_from_slice(store);
        let out = scale_bench(&args);
        for round in 0..2 {
            assert!(
                out.contains(&format!(
                    "round {round}: claimed and delivered 200 due logouts among 2000 keys"
                )),
                "{out}"
            );
        }
        assert!(
            out.contains("200 subscriptions got their logout, 200 hooks ran")
                && out.contains("sweep of 200 due among 2000 keys over 2 rounds: min "),
            "{out}"
        );
        if store.contains(&"--cluster") {
            // Every master holds some of the 16 shards.
            let spread = out
                .lines()
                .find_map(|l| {
                    l.split_once("): ")
                        .filter(|_| l.contains("due sets per node"))
                })
                .map(|(_, counts)| counts.to_owned())
                .unwrap_or_else(|| panic!("no shard spread in {out}"));
            let counts: Vec<u32> = spread.split(", ").map(|c| c.parse().unwrap()).collect();
            assert_eq!(counts.len(), 3, "{out}");
            assert!(counts.iter().all(|c| *c > 0), "{out}");
            assert_eq!(counts.iter().sum::<u32>(), 16, "{out}");
        }
    }
}

#[test]
fn the_lateness_benchmark_runs_on_both_stores() {
    let redis = RedisServer::start();
    let url = redis.url();
    for store in [
        &["--store", "memory"][..],
        &["--store", "redis", "--redis", &url],
    ] {
        let mut args = vec![
            "lateness",
            "--keys",
            "300",
            "--tracked",
            "1000",
            "--spread-seconds",
            "1",
            "--timeout-seconds",
            "3",
            "--warn-seconds",
            "1",
        ];
        args.extend_from_slice(store);
        let out = scale_bench(&args);
        assert!(
            out.contains("among 1300 tracked")
                && out.contains("warnings: 300 delivered")
                && out.contains("logouts: 300 delivered"),
            "{out}"
        );
        assert!(out.contains("hooks ran: 300"), "{out}");
    }
}

#[test]
fn the_operator_benchmark_runs_on_both_stores() {
    let redis = RedisServer::start();
    let url = redis.url();
    for store in [
        &["--store", "memory"][..],
        &["--store", "redis", "--redis", &url],
    ] {
        let mut args = vec!["operator", "--keys", "3000", "--rounds", "2"];
        args.extend_from_slice(store);
        let out = scale_bench(&args);
        // It fails unless each user's ten sessions are found and claimed.
        assert!(
            out.contains("tracked 3000 sessions of 300 users")
                && out.contains("scope session, one user's sessions among 3000: min ")
                && out.contains("scope session, signing those out: min ")
                && out.contains("scope user, one key: min "),
            "{out}"
        );
    }
}
