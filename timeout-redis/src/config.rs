//! Building a [`RedisStore`]: where Redis is, the namespace, and the
//! intervals that trade precision for round trips.

use std::time::Duration;

use redis::{
    Client, IntoConnectionInfo, ProtocolVersion, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    io::tcp::{TcpSettings, socket2},
};

use crate::{
    conn::Conn,
    fanout::READ_BLOCK,
    layout::{LAYOUT_VERSION, Layout, valid_prefix},
    store::{RedisStore, Settings},
};

/// Why a [`RedisStore`] could not be set up. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// An address is not a Redis URL.
    #[error("{url:?} is not a Redis address ({source}); write it as redis://host:port")]
    Url {
        /// The address as given.
        url: String,
        /// Why it was refused.
        #[source]
        source: RedisError,
    },
    /// Redis did not answer.
    #[error(
        "cannot reach {what} ({source}); check that Redis runs there \
         (redis-cli -u <url> ping) and that this host may connect to it"
    )]
    Connect {
        /// Which Redis.
        what: String,
        /// The connection error.
        #[source]
        source: RedisError,
    },
    /// A setting is out of range.
    #[error("invalid timeout-redis setting {setting}: {reason}")]
    Setting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong, and what is allowed.
        reason: String,
    },
    /// The namespace holds data of replicas configured differently.
    #[error("{0}")]
    Mismatch(String),
    /// Redis answered but refused to set the namespace up (out of memory, a
    /// read-only replica, a missing permission).
    #[error("{what} refused to set up the timeout's namespace: {advice}")]
    Refused {
        /// Which Redis.
        what: String,
        /// What is wrong and what to change.
        advice: String,
    },
}

/// Why a connection could not be made.
enum Built {
    Url(RedisStoreError),
    Connect(RedisError),
}

/// Keepalive probes after 5 s idle, every 1 s, 3 of them: a Redis that
/// vanished without closing the connection is noticed within about 8 s,
/// and unacknowledged writes give up after 10 s.
fn tcp_settings() -> TcpSettings {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    let settings = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(Duration::from_secs(10));
    settings
}

/// What the store does with sessions Redis no longer knows after it lost its
/// state (a restart without persistence, a failover to a lagging replica,
/// eviction, a flush).
///
/// ```
/// use timeout_redis::{AfterStateLoss, RedisStore};
///
/// let builder = RedisStore::builder("redis://127.0.0.1:6379")
///     .after_state_loss(AfterStateLoss::LogOut);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AfterStateLoss {
    /// Fail closed (the default): a session the loss may have forgotten is
    /// refused and logged out with the cause `StateLost`, once, by the
    /// replica that sees it first; the keys replicas still knew are logged
    /// out as soon as the loss is noticed. New logins
    /// (`Tracker::login`) are tracked as usual.
    #[default]
    LogOut,
    /// Fail open: an unknown session gets a fresh idle period, as if it had
    /// just logged in. Only for applications that accept that a Redis
    /// restart forgives every idle session.
    Retrack,
}

/// Builds a [`RedisStore`]; every replica of one application must use the
/// same prefix and shard count.
///
/// ```no_run
/// use std::time::Duration;
/// use timeout_redis::RedisStore;
///
/// # async fn run() -> Result<(), timeout_redis::RedisStoreError> {
/// let store = RedisStore::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
///     .prefix("billing-timeout")
///     .flush_interval(Duration::from_millis(250))
///     .connect()
///     .await?;
/// # let _ = store; Ok(()) }
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    nodes: Vec<String>,
    cluster: bool,
    prefix: String,
    shards: u16,
    flush_interval: Duration,
    lease: Duration,
    command_timeout: Duration,
    after_state_loss: AfterStateLoss,
}

impl RedisStoreBuilder {
    pub(crate) fn new(nodes: Vec<String>, cluster: bool) -> Self {
        RedisStoreBuilder {
            nodes,
            cluster,
            prefix: "timeout".to_owned(),
            shards: 16,
            flush_interval: Duration::from_millis(100),
            lease: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            after_state_loss: AfterStateLoss::LogOut,
        }
    }

    /// What to do with sessions Redis no longer knows after it lost its
    /// state (default [`AfterStateLoss::LogOut`]: fail closed).
    pub fn after_state_loss(mut self, after: AfterStateLoss) -> Self {
        self.after_state_loss = after;
        self
    }

    /// Namespace of every key and of the channel (default `timeout`):
    /// letters, digits, `_`, `-`, `.`; one per application.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Number of shards keys are spread over (default 16, at most 1024):
    /// each sweep claims from every shard, and on a cluster the shards
    /// spread over the masters. Fixed for the life of the namespace.
    pub fn shards(mut self, shards: u16) -> Self {
        self.shards = shards;
        self
    }

    /// How often activity seen locally is sent to Redis (default 100 ms).
    /// Deadlines are precise to about this interval; a hot session costs
    /// one script call per shard per interval, not one per request.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How long a claimed warning or logout stays with its replica unless
    /// renewed (default 2 s). The replica renews it four times per lease
    /// while its hooks run, so a slow hook never runs twice; a replica that
    /// dies (or loses Redis) holds its claims at most this long before
    /// another takes them over. Keep it above twice the command timeout.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a command may take before the store reports Redis as
    /// unavailable (default 1 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    fn check(&self) -> Result<(), RedisStoreError> {
        let bad = |setting, reason: &str| {
            Err(RedisStoreError::Setting {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.nodes.is_empty() {
            return bad("cluster", "give at least one node address");
        }
        if !valid_prefix(&self.prefix) {
            return bad(
                "prefix",
                &format!(
                    "{:?} must be 1 to 64 letters, digits, '_', '-' or '.'",
                    self.prefix
                ),
            );
        }
        if !(1..=1024).contains(&self.shards) {
            return bad(
                "shards",
                &format!("{} is not between 1 and 1024", self.shards),
            );
        }
        if self.flush_interval < Duration::from_millis(1)
            || self.flush_interval > Duration::from_secs(10)
        {
            return bad("flush_interval", "must be between 1 ms and 10 s");
        }
        if self.lease < Duration::from_millis(200) {
            return bad("lease", "must be at least 200 ms");
        }
        if self.lease < 2 * self.command_timeout {
            return bad(
                "lease",
                &format!(
                    "{:?} must be at least twice the command timeout ({:?}): a renewal that \
                     takes a whole command timeout must still land before the lease runs out",
                    self.lease, self.command_timeout
                ),
            );
        }
        if self.lease > Duration::from_secs(24 * 60 * 60) {
            return bad("lease", "must be at most a day");
        }
        if self.command_timeout < Duration::from_millis(10) {
            return bad("command_timeout", "must be at least 10 ms");
        }
        Ok(())
    }

    /// Connects, checks that the namespace's settings match, loads the
    /// scripts and subscribes to the event channel. Fails when Redis does
    /// not answer now; once connected, the store rides out outages.
    pub async fn connect(self) -> Result<RedisStore, RedisStoreError> {
        self.check()?;
        let what = if self.cluster {
            format!("the Redis cluster at {}", self.nodes.join(", "))
        } else {
            format!("Redis at {}", self.nodes[0])
        };
        let connect_error = |source| RedisStoreError::Connect {
            what: what.clone(),
            source,
        };
        let mut conn = self
            .connection(self.command_timeout)
            .await
            .map_err(|e| match e {
                Built::Url(err) => err,
                Built::Connect(source) => connect_error(source),
            })?;
        let layout = Layout::new(&self.prefix, self.shards);
        self.check_namespace(&mut conn, &layout, &what).await?;
        let settings = Settings {
            what: what.clone(),
            flush_interval: self.flush_interval,
            lease: self.lease,
            command_timeout: self.command_timeout,
            retrack_after_loss: self.after_state_loss == AfterStateLoss::Retrack,
        };
        let store = RedisStore::assemble(conn, layout, settings);
        store.load_scripts().await.map_err(connect_error)?;
        store
            .init_epochs()
            .await
            .map_err(|e| RedisStoreError::Connect {
                what: what.clone(),
                source: RedisError::from(std::io::Error::other(e.to_string())),
            })?;
        warn_about_durability(&mut store.conn(), &what).await;
        // The event stream is read with blocking reads on a connection of
        // its own, allowed to wait for the block on top of a command.
        let mut reader = self
            .connection(READ_BLOCK + self.command_timeout)
            .await
            .map_err(|e| match e {
                Built::Url(err) => err,
                Built::Connect(source) => connect_error(source),
            })?;
        store
            .fan_in()
            .start_at_end(&mut reader, &store.events_stream())
            .await
            .map_err(connect_error)?;
        store.start(reader);
        tracing::info!(
            target: "timeout",
            "timeout store: {what}, prefix {:?}, {} shards, flush every {:?}, lease {:?}",
            self.prefix, self.shards, self.flush_interval, self.lease
        );
        Ok(store)
    }

    /// A connection with responses allowed to take `response_timeout`: a
    /// reconnecting manager on one Redis, a cluster connection (following
    /// slot moves and failovers) on a cluster. TCP keepalive notices a peer
    /// that vanished without closing within about 10 s.
    async fn connection(&self, response_timeout: Duration) -> Result<Conn, Built> {
        if self.cluster {
            let client = ClusterClient::builder(self.nodes.clone())
                .connection_timeout(self.command_timeout)
                .response_timeout(response_timeout)
                .retries(1)
                .tcp_settings(tcp_settings())
                .build()
                .map_err(|source| {
                    Built::Url(RedisStoreError::Url {
                        url: self.nodes.join(", "),
                        source,
                    })
                })?;
            Ok(Conn::Cluster(
                client
                    .get_async_connection()
                    .await
                    .map_err(Built::Connect)?,
            ))
        } else {
            let client = self
                .client(&self.nodes[0], ProtocolVersion::RESP2)
                .map_err(Built::Url)?;
            let config = self
                .manager_config()
                .set_response_timeout(Some(response_timeout));
            let manager = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(Built::Connect)?;
            Ok(Conn::Single(manager))
        }
    }

    fn client(&self, url: &str, protocol: ProtocolVersion) -> Result<Client, RedisStoreError> {
        let url_error = |source| RedisStoreError::Url {
            url: url.to_owned(),
            source,
        };
        let info = url.into_connection_info().map_err(url_error)?;
        let settings = info.redis_settings().clone().set_protocol(protocol);
        let info = info
            .set_redis_settings(settings)
            .set_tcp_settings(tcp_settings());
        Client::open(info).map_err(url_error)
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        // Few, quick retries: while Redis is down, requests should get the
        // failure policy's answer fast, not wait through a long backoff.
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.command_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
    }

    /// Every replica must file keys in the same shards, in the same layout.
    async fn check_namespace(
        &self,
        conn: &mut Conn,
        layout: &Layout,
        what: &str,
    ) -> Result<(), RedisStoreError> {
        let meta = layout.meta();
        let connect_error = |source: RedisError| match crate::refusals::advice(&source) {
            Some(advice) => RedisStoreError::Refused {
                what: what.to_owned(),
                advice,
            },
            None => RedisStoreError::Connect {
                what: what.to_owned(),
                source,
            },
        };
        // Whoever sets the namespace up numbers its layout, atomically: a
        // namespace with shards but no layout was written by a version from
        // before layouts were numbered.
        let (stored, layout): (Option<String>, Option<String>) = redis::Script::new(
            "if redis.call('HSETNX', KEYS[1], 'shards', ARGV[1]) == 1 then \
               redis.call('HSET', KEYS[1], 'layout', ARGV[2]) end \
             return redis.call('HMGET', KEYS[1], 'shards', 'layout')",
        )
        .key(&meta)
        .arg(self.shards)
        .arg(LAYOUT_VERSION)
        .invoke_async(conn)
        .await
        .map_err(connect_error)?;
        if layout.as_deref() != Some(LAYOUT_VERSION.to_string().as_str()) {
            return Err(RedisStoreError::Mismatch(format!(
                "the timeout namespace {:?} on {what} was written by another version of \
                 timeout-redis (key layout {}, this version's is {LAYOUT_VERSION}); give this \
                 version a prefix of its own, or stop every replica and delete the \
                 namespace's keys",
                self.prefix,
                layout.as_deref().unwrap_or("1"),
            )));
        }
        match stored.as_deref().map(str::parse::<u16>) {
            Some(Ok(n)) if n == self.shards => Ok(()),
            other => Err(RedisStoreError::Mismatch(format!(
                "the timeout namespace {:?} on {what} was set up with {} shards, this replica \
                 is configured with {}: give every replica the same .shards(..), or use a new \
                 prefix",
                self.prefix,
                match other {
                    Some(Ok(n)) => n.to_string(),
                    _ => format!("{stored:?}"),
                },
                self.shards
            ))),
        }
    }
}

/// Warns when Redis may drop the timeout state: an eviction policy that can
/// evict its keys, or no persistence (a restart loses everything). The
/// store fails closed either way, but every user then has to log in again.
async fn warn_about_durability(conn: &mut Conn, what: &str) {
    let config = |name: &'static str| {
        let mut conn = conn.clone();
        async move {
            let reply: Result<Vec<String>, RedisError> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut conn)
                .await;
            reply.ok().and_then(|pair| pair.into_iter().nth(1))
        }
    };
    let (policy, save, aof) = (
        config("maxmemory-policy").await,
        config("save").await,
        config("appendonly").await,
    );
    let Some(policy) = policy else {
        tracing::info!(
            target: "timeout",
            "could not read the configuration of {what} (CONFIG GET is not allowed?); make sure              maxmemory-policy is noeviction and persistence is on"
        );
        return;
    };
    if policy != "noeviction" {
        tracing::warn!(
            target: "timeout",
            "{what} has maxmemory-policy {policy}: under memory pressure it may evict timeout              keys, and every session whose key goes is logged out; set maxmemory-policy              noeviction (or give the timeout state a Redis of its own)"
        );
    }
    let no_snapshots = save.as_deref().is_none_or(|s| s.trim().is_empty());
    let no_aof = aof.as_deref() != Some("yes");
    if no_snapshots && no_aof {
        tracing::warn!(
            target: "timeout",
            "{what} keeps nothing on disk (save \"\", appendonly no): a restart loses every \
             deadline, and every logged-in user is logged out; set appendonly yes (with \
             appendfsync everysec) to keep sessions across restarts"
        );
    }
}

impl RedisStore {
    /// A store on one Redis server (`redis://host:port`, `rediss://` for
    /// TLS is not compiled in).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(vec![url.into()], false)
    }

    /// A store on a Redis Cluster, from the addresses of some of its nodes.
    pub fn cluster<I, S>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreBuilder::new(nodes.into_iter().map(Into::into).collect(), true)
    }
}
