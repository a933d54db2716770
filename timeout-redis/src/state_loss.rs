//! Noticing that Redis lost the timeout state, and failing closed when it
//! did.
//!
//! Each shard holds an epoch: an id for the incarnation of its state. Every
//! script that reads or writes a shard names the epoch this replica knows;
//! a shard whose epoch is gone (a restart without persistence, a flush) or
//! differs (another replica noticed first) answers with the new one and the
//! time of the loss instead. The replica then logs out, once across
//! replicas, every key of that shard it still knew (a cached deadline, an
//! open socket), reports the loss once, and from then on the scripts treat
//! an unknown key as a session the loss forgot (refused and logged out)
//! rather than a new one, until it could no longer be alive, unless the
//! application logs it in (`Tracker::login`). A key evicted alone (its
//! due entry left behind, or known to this replica's cache) is logged out
//! the same way.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};

use timeout_core::{
    Notification, Timestamp,
    events::KnownKey,
    store::{Cause, Due, Expired, StateLost, StoreError, Timing},
    wire::KeyEvent,
};

use crate::{
    layout::escape,
    reply::{Reply, corrupt},
    store::Inner,
};

/// Losses noticed within this long of the first one are reported with it.
const REPORT_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// The answer of a script whose shard's state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loss {
    /// The shard's epoch now.
    id: String,
    /// Server ms when the loss was noticed.
    lost: u64,
    /// Whether this call noticed it first (and reports it).
    first: bool,
}

impl Loss {
    /// The loss a script reply tells of, if any: `{now, 'E', id, lost, first}`.
    pub(crate) fn of(reply: &Reply) -> Result<Option<Loss>, StoreError> {
        if reply.len() != 5 || !matches!(reply.text(1), Ok("E")) {
            return Ok(None);
        }
        Ok(Some(Loss {
            id: reply.text(2)?.to_owned(),
            lost: reply.uint(3)?,
            first: reply.int(4)? == 1,
        }))
    }
}

/// What this replica knows of the shards' incarnations, and the work a
/// loss left for the next sweep.
#[derive(Debug)]
pub(crate) struct Epochs {
    known: Box<[Mutex<String>]>,
    /// Unique to this store: new epoch ids are made from it.
    origin: String,
    next: AtomicU64,
    /// Logouts of lost keys this replica claimed, for the next sweep.
    lost_logouts: Mutex<Vec<Due>>,
    /// The loss to report: earliest time, shards.
    report: Mutex<Option<(u64, Vec<usize>)>>,
    last_refusal_log: Mutex<Option<Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Epochs {
    pub(crate) fn new(shards: usize) -> Epochs {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Epochs {
            known: (0..shards).map(|_| Mutex::new(String::new())).collect(),
            origin: format!("{:x}.{nanos:x}", std::process::id()),
            next: AtomicU64::new(0),
            lost_logouts: Mutex::new(Vec::new()),
            report: Mutex::new(None),
            last_refusal_log: Mutex::new(None),
        }
    }

    /// The epoch a call on `shard` expects, and the id of a new one should
    /// the call find the state gone.
    pub(crate) fn expected(&self, shard: usize) -> (String, String) {
        let known = lock(&self.known[shard]).clone();
        let candidate = format!(
            "{}.{}.{}",
            self.origin,
            shard,
            self.next.fetch_add(1, Relaxed)
        );
        (known, candidate)
    }

    /// Takes `id` as the shard's epoch; false if it already was (the loss
    /// is being handled by another call).
    fn adopt(&self, shard: usize, id: &str) -> bool {
        let mut known = lock(&self.known[shard]);
        if *known == id {
            return false;
        }
        id.clone_into(&mut known);
        true
    }

    fn note_report(&self, shard: usize, lost: u64) {
        let mut report = lock(&self.report);
        let (at, shards) = report.get_or_insert((lost, Vec::new()));
        *at = (*at).min(lost);
        shards.push(shard);
    }

    /// Whether a loss waits to be reported.
    pub(crate) fn loss_pending(&self) -> bool {
        lock(&self.report).is_some()
    }

    /// The loss to report, once.
    pub(crate) fn take_report(&self, what: &str) -> Option<StateLost> {
        let (at, mut shards) = lock(&self.report).take()?;
        shards.sort_unstable();
        let list = shards
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Some(StateLost::new(
            Timestamp::from_millis(at),
            format!("shards {list} of {what}"),
        ))
    }

    pub(crate) fn take_lost_logouts(&self) -> Vec<Due> {
        std::mem::take(&mut *lock(&self.lost_logouts))
    }
}

impl Inner {
    /// Learns every shard's epoch (or starts it, on an empty namespace).
    pub(crate) async fn init_epochs(&self) -> Result<(), StoreError> {
        for shard in 0..self.layout.shard_count() {
            let (_, candidate) = self.epochs.expected(shard);
            let mut invocation = self.scripts.init_epoch.key(&self.layout.shard(shard).epoch);
            invocation.arg(&candidate);
            let reply = self.call(shard, &invocation).await?;
            let (id, lost) = (reply.text(1)?, reply.uint(2)?);
            self.epochs.adopt(shard, id);
            if lost > 0 {
                tracing::warn!(
                    target: "timeout",
                    shard,
                    "the timeout state of shard {shard} on {} was lost at {lost} ms (server \
                     time) before this replica started; sessions from before then are \
                     logged out as they come back",
                    self.settings.what
                );
            }
        }
        Ok(())
    }

    /// A script found `shard`'s state changed: adopt the new epoch, report
    /// the loss if this replica noticed it first, and log out the keys of
    /// that shard this replica still knew.
    pub(crate) async fn state_changed(&self, shard: usize, loss: Loss, timing: Timing) {
        if !self.epochs.adopt(shard, &loss.id) {
            return;
        }
        if loss.first {
            self.epochs.note_report(shard, loss.lost);
        }
        tracing::error!(
            target: "timeout",
            shard,
            lost_at_ms = loss.lost,
            "the timeout state of shard {shard} on {} was lost (a restart without \
             persistence, a failover to a lagging replica, or a flush); {}",
            self.settings.what,
            if self.settings.retrack_after_loss {
                "its sessions are tracked afresh as they come back (after_state_loss: Retrack)"
            } else {
                "its sessions are logged out"
            }
        );
        let layout = &self.layout;
        let in_shard = |key: &str| layout.shard_of(key) == shard;
        let mut known = self.cache.drain_where(in_shard);
        if self.settings.retrack_after_loss {
            return;
        }
        let mut sockets = Vec::new();
        if let Some(sink) = self.fan_in.sink.get() {
            for k in sink.known_keys() {
                if in_shard(&k.key) {
                    sockets.push(k.key.clone());
                    known.push(k);
                }
            }
        }
        self.log_out_lost(shard, known, timing).await;
        // Whichever replica claimed them, this one's sockets of those keys
        // get their logout now, not only if the claimer's message arrives.
        if let Some(sink) = self.fan_in.sink.get() {
            for key in sockets {
                sink.deliver(&KeyEvent::new(key, Notification::logout()));
            }
        }
    }

    /// Claims the logout of keys of `shard` whose state Redis lost, each
    /// once across replicas, and queues the claimed ones for the sweep.
    pub(crate) async fn log_out_lost(&self, shard: usize, known: Vec<KnownKey>, timing: Timing) {
        if self.settings.retrack_after_loss || known.is_empty() {
            return;
        }
        // One entry per key, its sessions merged.
        let mut by_member: BTreeMap<String, KnownKey> = BTreeMap::new();
        for entry in known {
            let member = escape(&entry.key).into_owned();
            match by_member.get_mut(&member) {
                Some(have) => {
                    for s in entry.sessions {
                        if !have.sessions.contains(&s) {
                            have.sessions.push(s);
                        }
                    }
                }
                None => {
                    by_member.insert(member, entry);
                }
            }
        }
        let keys = self.layout.shard(shard);
        let remember = crate::store::ms(timing.remember);
        let entries: Vec<(String, KnownKey)> = by_member.into_iter().collect();
        for chunk in entries.chunks(500) {
            let mut invocation = self.scripts.lost.key(&keys.epoch);
            invocation
                .key(&keys.records)
                .key(&keys.dead)
                .key(&keys.gone)
                .arg(remember);
            for (member, entry) in chunk {
                let sessions: Vec<String> = entry
                    .sessions
                    .iter()
                    .map(|s| escape(s).into_owned())
                    .collect();
                invocation.arg(member).arg(sessions.join(" "));
            }
            let reply = match self.call(shard, &invocation).await {
                Ok(reply) => reply,
                Err(err) => {
                    self.log_background(&format!(
                        "could not log out the sessions of a lost timeout state ({err}); they \
                         are refused when they come back"
                    ));
                    continue;
                }
            };
            let now = reply.server_time().unwrap_or(0);
            let mut claimed = Vec::new();
            for i in 1..reply.len() {
                let Ok(member) = reply.text(i) else { continue };
                if let Some((_, entry)) = chunk.iter().find(|(m, _)| m == member) {
                    claimed.push(Due::Expiry(Expired::new(
                        entry.key.clone(),
                        entry.user.clone(),
                        entry.sessions.clone(),
                        Timestamp::from_millis(now),
                        Cause::StateLost,
                    )));
                }
            }
            lock(&self.epochs.lost_logouts).extend(claimed);
        }
    }

    /// Whether this replica reports `lost` to the application: the first to
    /// try within [`REPORT_WINDOW`] does. The shards of one loss (a
    /// restart) are noticed by several replicas within a second or two; the
    /// application hears of it once. An error counts as first: a report
    /// twice beats none.
    pub(crate) async fn claim_report(&self, lost: &StateLost) -> bool {
        let key = format!("{}:loss-reported", self.layout.prefix());
        let set: Result<Option<String>, redis::RedisError> = redis::cmd("SET")
            .arg(&key)
            .arg(lost.at.as_millis())
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(REPORT_WINDOW.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut self.conn.clone())
            .await;
        match set {
            Ok(Some(_)) | Err(_) => true,
            Ok(None) => {
                tracing::info!(
                    target: "timeout",
                    "{} lost its timeout state too; another replica reports the loss",
                    lost.what
                );
                false
            }
        }
    }

    /// Says, at most every 10 s, why a session was refused after a loss and
    /// what an application that logs users in must do.
    pub(crate) fn refused_after_loss(&self, expired: &Expired) {
        let mut last = lock(&self.epochs.last_refusal_log);
        if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(10)) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            target: "timeout",
            user = %timeout_core::audit::Escaped(&expired.user),
            "refused and logged out a session the timeout store may have lost; a new login \
             is tracked when the application calls Tracker::login (the session helpers of \
             timeout-tower and timeout-actix do), or build the store with \
             .after_state_loss(AfterStateLoss::Retrack) to track such sessions afresh \
             (repeats at most every 10 s)"
        );
    }
}

/// An evicted key, from the member its due entry kept.
pub(crate) fn evicted(member: &str, now: u64) -> Result<Expired, StoreError> {
    let key = crate::layout::unescape(member)
        .ok_or_else(|| corrupt(format!("the due member {member:?} is wrongly escaped")))?;
    Ok(Expired::new(
        key.clone(),
        key,
        Vec::new(),
        Timestamp::from_millis(now),
        Cause::StateLost,
    ))
}
