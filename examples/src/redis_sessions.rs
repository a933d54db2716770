//! A tower-sessions store on Redis, so the replicas of the multi-replica
//! demo share their users' framework sessions (the timeout state is shared
//! by `timeout-redis`; this is only the demo's login record).

use std::fmt;

use async_trait::async_trait;
use redis::{AsyncCommands, SetExpiry, SetOptions, aio::ConnectionManager};
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

    async fn write(&self, record: &Record, only_new: bool) -> Result<bool> {
        let json = serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))?;
        let seconds = (record.expiry_date - time::OffsetDateTime::now_utc())
            .whole_seconds()
            .max(1);
        let mut options = SetOptions::default().with_expiration(SetExpiry::EX(seconds as u64));
        if only_new {
            options = options.conditional_set(redis::ExistenceCheck::NX);
        }
        let written: Option<String> = self
            .conn
            .clone()
            .set_options(self.key(&record.id), json, options)
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
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
        let json: Option<String> = self
            .conn
            .clone()
            .get(self.key(id))
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
        json.map(|json| serde_json::from_str(&json).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let _: i64 = self
            .conn
            .clone()
            .del(self.key(id))
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
        Ok(())
    }
}
