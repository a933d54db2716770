//! Real `redis-server` processes for tests: each on a free port of
//! 127.0.0.1, with no persistence, in its own temporary directory, and
//! killed when dropped. A missing `redis-server` or `redis-cli` fails the
//! test with a message naming the package to install; nothing is skipped.
//!
//! ```no_run
//! let redis = test_redis::RedisServer::start();
//! println!("{}", redis.url());
//! ```

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

const INSTALL: &str = "install the Debian package redis-server (apt-get install redis-server), \
                       or run scripts/test.sh, which installs it";

/// One `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers.
    ///
    /// # Panics
    /// When `redis-server` cannot be started or does not answer: a test
    /// without its Redis must fail, naming what is missing.
    pub fn start() -> RedisServer {
        RedisServer::start_with(free_port(false), &[])
    }

    fn start_with(port: u16, extra: &[&str]) -> RedisServer {
        let dir = unique_dir(port);
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.dir.display()));
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}): {INSTALL}"));
        self.child = Some(child);
        self.wait_until_up();
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.command("PING").is_some_and(|r| r.starts_with("+PONG")) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "redis-server on port {} exited at start ({status}); is the port taken?",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL): everything it held is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one inline command and returns the raw reply, `None` when the
    /// server does not answer.
    pub fn command(&self, command: &str) -> Option<String> {
        raw_command(self.port, command)
    }

    /// The `INFO <section>` text.
    pub fn info(&self, section: &str) -> String {
        self.command(&format!("INFO {section}")).unwrap_or_default()
    }

    /// Calls of `command` so far, from `INFO commandstats` (`evalsha`,
    /// `zrangebyscore`, ...), summed over every command when `None`.
    pub fn calls(&self, command: Option<&str>) -> u64 {
        commandstats_calls(&self.info("commandstats"), command)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sums the `calls=` of `INFO commandstats` for `command`, or all commands.
pub fn commandstats_calls(info: &str, command: Option<&str>) -> u64 {
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| command.is_none_or(|c| line.split(':').next() == Some(c)))
        .filter_map(|line| {
            line.split(&[':', ','][..])
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// A Redis Cluster of `masters` masters (no replicas) on free ports.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the nodes, joins them with `redis-cli --cluster create` and
    /// waits until the cluster is ok.
    ///
    /// # Panics
    /// When a node or `redis-cli` fails; the message says what.
    pub fn start(masters: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                RedisServer::start_with(
                    free_port(true),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): {INSTALL}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.nodes.iter().all(|n| {
            n.command("CLUSTER INFO")
                .is_some_and(|info| info.contains("cluster_state:ok"))
        }) {
            assert!(
                Instant::now() < deadline,
                "the Redis cluster did not reach cluster_state:ok within 20 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills master `index` (SIGKILL) and starts it again on its port: it
    /// rejoins with its slots (its cluster config file is kept) but without
    /// its data, as a master that restarted without persistence. Returns
    /// once the cluster is ok again.
    pub fn restart_node(&mut self, index: usize) {
        self.nodes[index].restart();
        self.wait_until_ok();
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// Sends one inline command to the server on `port` of 127.0.0.1 (from
/// another thread than the one owning the [`RedisServer`], say) and returns
/// the raw reply; `None` when nothing answers.
pub fn command_at(port: u16, command: &str) -> Option<String> {
    raw_command(port, command)
}

fn raw_command(port: u16, command: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if complete(&reply) {
            break;
        }
    }
    Some(String::from_utf8_lossy(&reply).into_owned())
}

/// Whether a simple, error, integer or bulk reply is complete.
fn complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match reply.first() {
        Some(b'$') => {
            let len: i64 = std::str::from_utf8(&reply[1..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            len < 0 || reply.len() >= end + 2 + len as usize + 2
        }
        _ => true,
    }
}

fn free_port(with_bus: bool) -> u16 {
    for _ in 0..100 {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let port = addr.port();
        // A cluster node also listens on port + 10000 for its bus.
        if with_bus && (port > 55_000 || TcpListener::bind(("127.0.0.1", port + 10_000)).is_err()) {
            continue;
        }
        return port;
    }
    panic!("no free port on 127.0.0.1")
}

fn unique_dir(port: u16) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "test-redis-{}-{}-{port}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_from_commandstats() {
        let info =
            "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=3\r\ncmdstat_get:calls=3,usec=1\r\n";
        assert_eq!(commandstats_calls(info, Some("evalsha")), 12);
        assert_eq!(commandstats_calls(info, None), 15);
        assert_eq!(commandstats_calls(info, Some("set")), 0);
    }

    #[test]
    fn a_server_starts_answers_and_restarts_empty() {
        let mut redis = RedisServer::start();
        assert_eq!(redis.command("SET a 1").as_deref(), Some("+OK\r\n"));
        redis.restart();
        assert_eq!(redis.command("GET a").as_deref(), Some("$-1\r\n"));
        redis.kill();
        assert!(redis.command("PING").is_none());
    }
}
