//! Claiming what came due, shard by shard, with variadic commands per
//! batch; holding the claims (lease renewal) until they are acknowledged;
//! and marking timed-out sessions whose shard is not their key's.

use std::{borrow::Cow, sync::atomic::Ordering::Relaxed};

use futures_util::future::join_all;
use redis::RedisError;
use timeout_core::store::{Claim, Due, Expired, StoreError, Timing};

use super::{Inner, MIN_CLAIM_PER_SHARD, RECHECK_SHARD_MS, ms};
use crate::{
    batches::{self, Event},
    layout::escape,
    reply::corrupt,
    state_loss::Loss,
};

impl Inner {
    /// Renews the lease of every batch held, one script call per shard.
    pub(crate) async fn renew(&self) -> Result<(), StoreError> {
        let by_shard = self.held.renewable(self.layout.shard_count());
        let lease = ms(self.settings.lease);
        let replies = self
            .per_shard(&by_shard, |shard, ids| {
                let mut invocation = self.scripts.renew.key(&self.layout.shard(shard).leases);
                invocation.arg(lease);
                for id in ids {
                    invocation.arg(id);
                }
                invocation
            })
            .await;
        let mut first_error = None;
        for (shard, reply) in replies {
            match reply {
                Ok(reply) => {
                    self.renewed
                        .fetch_add(by_shard[shard].len() as u64, Relaxed);
                    for i in 1..reply.len() {
                        let lost = reply.text(i)?;
                        tracing::warn!(
                            target: "timeout",
                            shard,
                            batch = %lost,
                            "claims this replica works on are no longer leased to it"
                        );
                        self.held.lost(shard, lost);
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Marks the timed-out sessions in their own shards too, where a request
    /// that carries only the session id looks (the claim script marked them
    /// in the key's shard, atomically with the claim).
    pub(crate) async fn mark_gone_elsewhere(&self, expired: &Expired, timing: Timing) {
        self.mark_all_gone_elsewhere([expired], timing).await;
    }

    /// [`Inner::mark_gone_elsewhere`] for many logouts: one call per shard.
    async fn mark_all_gone_elsewhere<'a>(
        &self,
        expired: impl IntoIterator<Item = &'a Expired>,
        timing: Timing,
    ) {
        let remember = ms(timing.remember);
        if remember == 0 {
            return;
        }
        let mut by_shard: Vec<Vec<Cow<'_, str>>> =
            (0..self.layout.shard_count()).map(|_| Vec::new()).collect();
        for expired in expired {
            let key_shard = self.layout.shard_of(&expired.key);
            for session in &expired.sessions {
                let shard = self.layout.shard_of(session);
                if shard != key_shard {
                    by_shard[shard].push(escape(session));
                }
            }
        }
        let replies = self
            .per_shard(&by_shard, |shard, sessions| {
                let mut invocation = self.scripts.mark_gone.key(&self.layout.shard(shard).gone);
                invocation.arg(remember);
                for session in sessions {
                    invocation.arg(&**session);
                }
                invocation
            })
            .await;
        for (_, result) in replies {
            if let Err(err) = result {
                self.log_background(&format!(
                    "could not mark a timed-out session in the timeout store ({err}); a request \
                     carrying only its id is let in anonymous rather than refused"
                ));
            }
        }
    }

    /// One claim call on one shard: its events and its next due time.
    async fn claim_shard(
        &self,
        shard: usize,
        limit: usize,
        timing: Timing,
    ) -> Result<Vec<Due>, StoreError> {
        let keys = self.layout.shard(shard);
        let (known, candidate) = self.epochs.expected(shard);
        let mut invocation = self.scripts.claim.key(&keys.due);
        invocation
            .key(&keys.leases)
            .key(&keys.claims)
            .key(&keys.epoch)
            .key(&keys.records)
            .key(&keys.gone)
            .key(&keys.dead)
            .arg(limit)
            .arg(ms(timing.warn_before))
            .arg(ms(timing.remember))
            .arg(ms(self.settings.lease))
            .arg(&known)
            .arg(&candidate)
            .arg(u8::from(self.settings.retrack_after_loss))
            .arg(self.batch_id());
        let reply = self.call(shard, &invocation).await?;
        if let Some(loss) = Loss::of(&reply)? {
            self.state_changed(shard, loss, timing).await;
            // Swept again at once, in the new incarnation.
            self.hints[shard].next.store(0, Relaxed);
            return Ok(Vec::new());
        }
        let hint = &self.hints[shard];
        hint.swept.store(reply.server_time()?, Relaxed);
        hint.next
            .store(u64::try_from(reply.int(1)?).unwrap_or(u64::MAX), Relaxed);
        let now = reply.server_time()?;
        let mut out = Vec::new();
        for i in (2..reply.len()).step_by(2) {
            let (batch, text) = (reply.text(i)?, reply.text(i + 1)?);
            if batch.is_empty() {
                // Due keys whose record was gone: evicted, logged out.
                for member in text.split_whitespace() {
                    out.push(Due::Expiry(crate::state_loss::evicted(member, now)?));
                }
                continue;
            }
            let mut unreadable = Vec::new();
            let mut held = Vec::new();
            let mut readable = 0;
            for line in text.lines() {
                // One unreadable line must not hold its shard: it is set
                // aside, and the rest are handled.
                match batches::read_line(shard, batch, line) {
                    Ok(Event::Expiry(expired)) => {
                        readable += 1;
                        held.extend(expired.claim.clone());
                        out.push(Due::Expiry(expired));
                    }
                    Ok(Event::Warning(warning)) => {
                        readable += 1;
                        out.push(Due::Warning(warning));
                    }
                    Err(err) => unreadable.push((line.to_owned(), err)),
                }
            }
            self.held.hold(&held);
            if !unreadable.is_empty() {
                self.set_aside(shard, batch, unreadable, readable == 0)
                    .await;
            }
        }
        Ok(out)
    }

    /// Copies unreadable claimed lines into the shard's `bad` hash, where an
    /// operator can read them, and logs each. They go from the claim table
    /// with the rest of their batch; a batch of nothing else goes now.
    async fn set_aside(
        &self,
        shard: usize,
        batch: &str,
        unreadable: Vec<(String, StoreError)>,
        nothing_else: bool,
    ) {
        let keys = self.layout.shard(shard);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (n, (line, err)) in unreadable.iter().enumerate() {
            tracing::error!(
                target: "timeout",
                shard,
                batch = %timeout_core::audit::Escaped(batch),
                "set aside an unreadable claimed event ({err}); it is kept in {}",
                keys.bad
            );
            pipe.hset(&keys.bad, format!("{batch}#{n}"), line);
        }
        if nothing_else {
            pipe.zrem(&keys.leases, batch).hdel(&keys.claims, batch);
        }
        let moved: Result<(), RedisError> = pipe.query_async(&mut self.conn.clone()).await;
        if let Err(err) = moved {
            self.log_background(&format!(
                "could not set aside an unreadable event of shard {shard}: {err}"
            ));
        }
    }

    /// Shards worth sweeping now: something due, or not looked at lately.
    fn shards_to_sweep(&self) -> Vec<usize> {
        (0..self.layout.shard_count())
            .filter(|&shard| {
                let Some(now) = self.clock.of_shard(shard).now() else {
                    return true;
                };
                let hint = &self.hints[shard];
                now >= hint.next.load(Relaxed)
                    || now.saturating_sub(hint.swept.load(Relaxed)) >= RECHECK_SHARD_MS
            })
            .collect()
    }

    pub(crate) async fn claim_due(
        &self,
        timing: Timing,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.note_timing(timing);
        // Right after a loss every shard is looked at, so one report covers
        // all the shards that lost their state together.
        let mut shards = if self.epochs.loss_pending() {
            (0..self.layout.shard_count()).collect()
        } else {
            self.shards_to_sweep()
        };
        let per_shard = (limit / shards.len().max(1)).max(MIN_CLAIM_PER_SHARD);
        let mut out = Vec::new();
        let mut first_error = None;
        // Shards that filled their batch may hold more: ask them again.
        while !shards.is_empty() && out.len() < limit {
            let replies = join_all(
                shards
                    .iter()
                    .map(|&shard| self.claim_shard(shard, per_shard, timing)),
            )
            .await;
            let mut full = Vec::new();
            for (&shard, reply) in shards.iter().zip(replies) {
                match reply {
                    Ok(events) => {
                        if events.len() >= per_shard {
                            full.push(shard);
                        }
                        out.extend(events);
                    }
                    Err(err) => {
                        first_error.get_or_insert(err);
                    }
                }
            }
            shards = full;
        }
        // Keys of lost state this replica claimed, here or at a request.
        out.extend(self.epochs.take_lost_logouts());
        // Logouts are held (their leases renewed) until acknowledged;
        // warnings are not: one not acknowledged (its event could not be
        // sent) is claimed again after its short lease.
        let expired: Vec<&Expired> = out
            .iter()
            .filter_map(|due| match due {
                Due::Expiry(expired) => Some(expired),
                _ => None,
            })
            .collect();
        for expired in &expired {
            self.cache.forget(&expired.key, None);
        }
        self.mark_all_gone_elsewhere(expired, timing).await;
        if let Some(lost) = self.epochs.take_report(&self.settings.what)
            && self.claim_report(&lost).await
        {
            out.push(Due::StateLost(lost));
        }
        match first_error {
            // What other shards claimed is leased: handle it, report later.
            Some(err) if out.is_empty() => Err(err),
            Some(err) => {
                self.log_background(&format!(
                    "a shard of the timeout store failed a sweep: {err}"
                ));
                Ok(out)
            }
            None => Ok(out),
        }
    }

    pub(crate) async fn ack(&self, claims: &[Claim]) -> Result<(), StoreError> {
        let plan = self.held.plan(claims)?;
        let mut by_shard: Vec<Vec<&batches::Ack>> =
            (0..self.layout.shard_count()).map(|_| Vec::new()).collect();
        for ack in &plan {
            match by_shard.get_mut(ack.shard) {
                Some(acks) => acks.push(ack),
                None => {
                    return Err(corrupt(format!(
                        "a claim of shard {} acknowledged",
                        ack.shard
                    )));
                }
            }
        }
        let replies = self
            .per_shard(&by_shard, |shard, acks| {
                let keys = self.layout.shard(shard);
                let mut invocation = self.scripts.ack.key(&keys.leases);
                invocation.key(&keys.claims);
                for ack in acks {
                    invocation.arg(&ack.batch).arg(ack.what());
                }
                invocation
            })
            .await;
        // A shard whose acknowledgement failed keeps its batches held
        // (renewed, so no other replica runs them again) and is acknowledged
        // again by the lease task until Redis takes it.
        let mut first_error = None;
        let mut done = Vec::new();
        for (shard, reply) in replies {
            match reply {
                Ok(_) => done.push(shard),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        for ack in &plan {
            if done.contains(&ack.shard) {
                self.held.acknowledged(ack);
            }
        }
        let mut unacked = self.unacked();
        for claim in claims {
            let shard = batches::parse_claim(claim).map(|(shard, _, _)| shard);
            if shard.is_some_and(|s| done.contains(&s)) {
                unacked.remove(claim);
            } else {
                unacked.insert(claim.clone());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(crate) fn unacked(&self) -> std::sync::MutexGuard<'_, hashbrown::HashSet<Claim>> {
        self.unacked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Acknowledges again the claims whose acknowledgement failed.
    pub(crate) async fn ack_again(&self) -> Result<(), StoreError> {
        let again: Vec<Claim> = self.unacked().iter().cloned().collect();
        if again.is_empty() {
            return Ok(());
        }
        self.ack(&again).await
    }
}
