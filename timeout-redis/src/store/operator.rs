//! What an operator asks of one user: the keys the user holds, and
//! claiming a key's logout now (signing the user out everywhere).

use futures_util::future::join_all;
use redis::AsyncCommands;
use timeout_core::{
    Scope,
    store::{Expired, StoreError, Timing, TrackedKey},
};

use super::{Inner, ms};
use crate::{
    batches::{self, Event},
    layout::escape,
    reply::{Reply, corrupt},
    state_loss::Loss,
};

/// Records one step of a session-scope scan examines in Redis: small enough
/// that no step holds Redis up for long.
const SCAN_STEP: u32 = 1_000;

impl Inner {
    pub(crate) async fn keys_of_user(
        &self,
        user: &str,
        scope: Scope,
    ) -> Result<Vec<TrackedKey>, StoreError> {
        match scope {
            Scope::User => {
                let shard = self.layout.shard_of(user);
                let member = escape(user);
                let record: Option<String> = self
                    .conn
                    .clone()
                    .hget(&self.layout.shard(shard).records, &*member)
                    .await
                    .map_err(|e| self.error(e))?;
                record
                    .map(|record| self.tracked(&member, &record))
                    .into_iter()
                    .collect()
            }
            _ => {
                let user = escape(user);
                let shards = join_all(
                    (0..self.layout.shard_count()).map(|shard| self.scan_shard(shard, &user)),
                )
                .await;
                let mut keys = Vec::new();
                for found in shards {
                    keys.extend(found?);
                }
                Ok(keys)
            }
        }
    }

    /// The keys of the (escaped) `user` in one shard, a step at a time.
    async fn scan_shard(&self, shard: usize, user: &str) -> Result<Vec<TrackedKey>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor = "0".to_owned();
        loop {
            let mut invocation = self
                .scripts
                .user_keys
                .key(&self.layout.shard(shard).records);
            invocation.arg(&cursor).arg(user).arg(SCAN_STEP);
            let reply = self.call(shard, &invocation).await?;
            for i in (2..reply.len()).step_by(2) {
                // One unreadable record must not hide every other user's
                // sessions: the gate and the sweep log its key out as lost.
                match self.tracked(reply.text(i)?, reply.text(i + 1)?) {
                    Ok(key) => keys.push(key),
                    Err(err) => self.log_background(&format!(
                        "an operator's listing skipped a record it cannot read: {err}"
                    )),
                }
            }
            cursor = reply.text(1)?.to_owned();
            if cursor == "0" {
                return Ok(keys);
            }
        }
    }

    /// A key's record as an operator sees it, with the activity this
    /// replica saw but has not flushed yet.
    fn tracked(&self, member: &str, record: &str) -> Result<TrackedKey, StoreError> {
        // A record reads as the claimed line it would become.
        let line = format!("x,{member},{record}");
        let Event::Expiry(expired) = batches::read_line(0, "", &line)? else {
            return Err(corrupt(format!(
                "the timeout record {record:?} is not readable"
            )));
        };
        let local = self.cache.pending_deadline(&expired.key).unwrap_or(0);
        let deadline =
            timeout_core::Timestamp::from_millis(expired.deadline.as_millis().max(local));
        Ok(TrackedKey::new(
            expired.key,
            expired.user,
            expired.sessions,
            deadline,
        ))
    }

    pub(crate) async fn claim_now(
        &self,
        key: &str,
        timing: Timing,
    ) -> Result<Option<Expired>, StoreError> {
        self.note_timing(timing);
        let shard = self.layout.shard_of(key);
        // As a touch: a first answer that the shard's state changed is
        // handled, then the claim runs against the new incarnation.
        for _ in 0..2 {
            let reply = self.claim_now_once(shard, key, timing).await?;
            if let Some(loss) = Loss::of(&reply)? {
                self.state_changed(shard, loss, timing).await;
                continue;
            }
            return match reply.text(1)? {
                "U" => Ok(None),
                "C" => Err(corrupt(format!(
                    "the timeout record of {key:?} is not readable ({:?}); the user's next \
                     request or the sweep logs it out as lost",
                    reply.text(2)?
                ))),
                "X" => {
                    self.cache.forget(key, None);
                    let Event::Expiry(expired) =
                        batches::read_line(shard, reply.text(2)?, reply.text(3)?)?
                    else {
                        return Err(corrupt("the sign-out script claimed a warning"));
                    };
                    self.held.hold(&expired.claim);
                    self.mark_gone_elsewhere(&expired, timing).await;
                    Ok(Some(expired))
                }
                other => Err(corrupt(format!("the sign-out script answered {other:?}"))),
            };
        }
        Err(corrupt(
            "the timeout state of a shard changed twice during one sign-out",
        ))
    }

    async fn claim_now_once(
        &self,
        shard: usize,
        key: &str,
        timing: Timing,
    ) -> Result<Reply, StoreError> {
        let keys = self.layout.shard(shard);
        let (known, candidate) = self.epochs.expected(shard);
        let mut invocation = self.scripts.claim_now.key(&keys.records);
        invocation
            .key(&keys.due)
            .key(&keys.leases)
            .key(&keys.claims)
            .key(&keys.gone)
            .key(&keys.epoch)
            .arg(&*escape(key))
            .arg(ms(timing.remember))
            .arg(ms(self.settings.lease))
            .arg(&known)
            .arg(&candidate)
            .arg(self.batch_id());
        self.call(shard, &invocation).await
    }
}
