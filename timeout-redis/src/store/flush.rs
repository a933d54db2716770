//! Sending the activity a replica's cache held back (one call per shard
//! for every key touched since the last flush).

use std::sync::atomic::Ordering::Relaxed;

use futures_util::future::join_all;
use timeout_core::store::StoreError;

use super::Inner;
use crate::{layout::escape, reply::corrupt, state_loss::Loss};

impl Inner {
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        if self.clock.any_now().is_none() {
            return Ok(());
        }
        let pending = self.cache.take_dirty();
        if pending.is_empty() {
            return Ok(());
        }
        let mut by_shard: Vec<Vec<_>> =
            (0..self.layout.shard_count()).map(|_| Vec::new()).collect();
        for activity in pending {
            by_shard[self.layout.shard_of(&activity.key)].push(activity);
        }
        let calls = by_shard
            .into_iter()
            .enumerate()
            .filter(|(_, batch)| !batch.is_empty())
            .map(|(shard, batch)| async move {
                let keys = self.layout.shard(shard);
                let now = self.clock.of_shard(shard).now().unwrap_or(0);
                let (known, candidate) = self.epochs.expected(shard);
                let mut invocation = self.scripts.flush.key(&keys.records);
                invocation.key(&keys.epoch).arg(&known).arg(&candidate);
                for activity in &batch {
                    invocation
                        .arg(&*escape(&activity.key))
                        .arg(now.saturating_sub(activity.at))
                        .arg(activity.timeout);
                }
                let result = self.call(shard, &invocation).await;
                (shard, batch, result)
            });
        let mut first_error = None;
        for (shard, batch, result) in join_all(calls).await {
            let result = match result {
                Ok(reply) => match Loss::of(&reply) {
                    Ok(Some(loss)) => {
                        // The shard's keys are logged out, their activity
                        // with them.
                        self.state_changed(shard, loss, self.timing()).await;
                        continue;
                    }
                    Ok(None) if reply.len() == batch.len() + 1 => Ok(reply),
                    Ok(None) => Err(corrupt("the flush script answered a wrong count")),
                    Err(err) => Err(err),
                },
                Err(err) => Err(err),
            };
            match result {
                Ok(reply) => {
                    let mut vanished = Vec::new();
                    for (i, activity) in batch.iter().enumerate() {
                        let deadline = reply.uint(i + 1).unwrap_or(0);
                        if deadline == 0
                            && let Some(known) = self.cache.known(&activity.key)
                        {
                            vanished.push(known);
                        }
                        self.cache.refresh(&activity.key, deadline);
                    }
                    self.flushed.fetch_add(batch.len() as u64, Relaxed);
                    // Keys this replica held that Redis no longer has: lost
                    // (evicted, deleted), unless logged out properly.
                    if !vanished.is_empty() {
                        self.log_out_lost(shard, vanished, self.timing()).await;
                    }
                }
                Err(err) => {
                    for activity in &batch {
                        self.cache.restore(&activity.key, activity.at);
                    }
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
