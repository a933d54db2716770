//! A tower-sessions store on Redis, so the replicas of the multi-replica
//! demo share their users' framework sessions (the timeout state is shared
//! by `timeout-redis`; this is only the demo's login record).

use std::fmt;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};

/// Session records as JSON under `<prefix>:session:<id>`, expiring with
/// the record.
#[derive(Clone)]
pub struct RedisSessions {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisSessions {
    /// Connects to the Redis at `url`.
    pub async fn connect(url: &str, prefix: &str) -> std::result::Result<Self, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("{url:?} is not a Redis address: {e}"))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| format!("cannot reach Redis at {url} for the sessions: {e}"))?;
        Ok(RedisSessions {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, id: &Id) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    /// Runs `command`, once more if the first try found the connection
    /// broken (Redis restarted): the manager has reconnected by then, so a
    /// request right after a restart is answered rather than failed.
    async fn retrying<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let first = command.query_async(&mut self.conn.clone()).await;
        match first {
            Err(err) if err.is_io_error() || err.is_connection_dropped() => command
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| Error::Backend(e.to_string())),
            other => other.map_err(|e| Error::Backend(e.to_string())),
        }
    }

    async fn write(&self, record: &Record, only_new: bool) -> Result<bool> {
        let json = serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))?;
        let seconds = (record.expiry_date - time::OffsetDateTime::now_utc())
            .whole_seconds()
            .max(1);
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(&record.id))
            .arg(json)
            .arg("EX")
            .arg(u64::try_from(seconds).unwrap_or(1));
        if only_new {
            command.arg("NX");
        }
        let written: Option<String> = self.retrying(&command).await?;
        Ok(written.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A fresh id that another replica already used is drawn again.
        while !self.write(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.write(record, false).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let json: Option<String> = self.retrying(redis::cmd("GET").arg(self.key(id))).await?;
        json.map(|json| serde_json::from_str(&json).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let _: i64 = self.retrying(redis::cmd("DEL").arg(self.key(id))).await?;
        Ok(())
    }
}
