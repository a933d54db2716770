//! Claimed batches: the events one claim leased together, read from the
//! lines the scripts write, and the bookkeeping of the batches this replica
//! holds until every event of them is handled.
//!
//! A sweep leases all the logouts it claims from a shard as one batch (one
//! lease, one hash field), so claiming, renewing and acknowledging cost one
//! command per batch, not per logout. Each logout keeps a run id of its own
//! (`x:<member>:<deadline>`): a replica that takes over a dead claimer's
//! batch runs the same ids, and an acknowledgement of part of a batch drops
//! just those lines, so a handled logout is never run again.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hashbrown::{HashMap, HashSet};
use timeout_core::{
    Timestamp,
    store::{Cause, Claim, DueWarning, Expired, StoreError},
};

use crate::{layout::unescape, reply::corrupt};

/// One event of a claimed batch.
#[derive(Debug)]
pub(crate) enum Event {
    Expiry(Expired),
    Warning(DueWarning),
}

/// The claim of one line: `shard|batch|kind:member:deadline`, written in
/// one go (a sweep makes one per logout).
fn claim_of(shard: usize, batch: &str, kind: &str, member: &str, deadline: &str) -> Claim {
    Claim(format!("{shard}|{batch}|{kind}:{member}:{deadline}"))
}

/// The shard, batch and run id of a claim this store made; `None` for any
/// other.
pub(crate) fn parse_claim(claim: &Claim) -> Option<(usize, &str, &str)> {
    let mut parts = claim.0.splitn(3, '|');
    let shard = parts.next()?.parse().ok()?;
    Some((shard, parts.next()?, parts.next()?))
}

fn unescaped(text: &str) -> Result<String, StoreError> {
    unescape(text).ok_or_else(|| corrupt(format!("{text:?} is wrongly escaped")))
}

fn millis(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map(Timestamp::from_millis)
        .map_err(|_| corrupt(format!("a claimed event has the deadline {text:?}")))
}

/// One line of a batch: `x,member,` (a timeout) or `o,member,` (an
/// operator's sign-out) and the key's record
/// (`deadline,absolute,warned,user,sessions`), or `w,member,deadline`.
pub(crate) fn read_line(shard: usize, batch: &str, line: &str) -> Result<Event, StoreError> {
    let mut fields = line.splitn(7, ',');
    let (kind, member, deadline) = match (fields.next(), fields.next(), fields.next()) {
        (Some(kind), Some(member), Some(deadline)) => (kind, member, deadline),
        _ => {
            return Err(corrupt(format!(
                "the claimed line {line:?} is not readable"
            )));
        }
    };
    let key = unescaped(member)?;
    let claim = claim_of(shard, batch, kind, member, deadline);
    let deadline = millis(deadline)?;
    match kind {
        "w" => Ok(Event::Warning(
            DueWarning::new(key, deadline).with_claim(claim),
        )),
        "x" | "o" => {
            let (Some(absolute), Some(_warned), Some(user), Some(sessions)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(corrupt(format!("the claimed line {line:?} is cut short")));
            };
            let absolute: u64 = absolute
                .parse()
                .map_err(|_| corrupt(format!("the claimed line {line:?} is not readable")))?;
            let user = if user.is_empty() {
                key.clone()
            } else {
                unescaped(user)?
            };
            let sessions = match sessions {
                "=" => vec![key.clone()],
                list => list
                    .split_whitespace()
                    .map(unescaped)
                    .collect::<Result<_, _>>()?,
            };
            // An operator's sign-out (`o`) ends it early; else the absolute
            // lifetime ended it if it came first.
            let cause = if kind == "o" {
                Cause::SignedOut
            } else if absolute > 0 && deadline.as_millis() >= absolute {
                Cause::Absolute
            } else {
                Cause::Idle
            };
            Ok(Event::Expiry(
                Expired::new(key, user, sessions, deadline, cause).with_claim(claim),
            ))
        }
        other => Err(corrupt(format!("a claimed line of kind {other:?}"))),
    }
}

/// What to acknowledge of one batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) shard: usize,
    pub(crate) batch: String,
    /// The runs handled; every run this replica holds of the batch when
    /// `all`.
    pub(crate) runs: Vec<String>,
    pub(crate) all: bool,
}

impl Ack {
    /// The script's argument: `*` for the whole batch, else its runs.
    pub(crate) fn what(&self) -> String {
        if self.all {
            "*".to_owned()
        } else {
            self.runs.join(" ")
        }
    }
}

/// The logout batches this replica claimed and has not acknowledged in
/// full, with their runs not yet acknowledged in Redis. (Warnings are not
/// held: one that could not be sent is left to its short lease.)
#[derive(Debug, Default)]
pub(crate) struct Held {
    batches: Mutex<HashMap<(usize, String), HashSet<String>>>,
}

impl Held {
    fn lock(&self) -> MutexGuard<'_, HashMap<(usize, String), HashSet<String>>> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `claims` (runs of their batches) until acknowledged.
    pub(crate) fn hold<'a>(&self, claims: impl IntoIterator<Item = &'a Claim>) {
        let mut batches = self.lock();
        for claim in claims {
            if let Some((shard, batch, run)) = parse_claim(claim) {
                batches
                    .entry((shard, batch.to_owned()))
                    .or_default()
                    .insert(run.to_owned());
            }
        }
    }

    /// The batches held, whose leases are renewed, by shard.
    pub(crate) fn renewable(&self, shards: usize) -> Vec<Vec<String>> {
        let mut out = vec![Vec::new(); shards];
        for (shard, batch) in self.lock().keys() {
            if *shard < shards {
                out[*shard].push(batch.clone());
            }
        }
        out
    }

    /// Forgets a batch another replica took over.
    pub(crate) fn lost(&self, shard: usize, batch: &str) {
        self.lock().remove(&(shard, batch.to_owned()));
    }

    /// What to send to acknowledge `claims`: one entry per batch, the whole
    /// batch when they are all its runs this replica still holds.
    pub(crate) fn plan(&self, claims: &[Claim]) -> Result<Vec<Ack>, StoreError> {
        let mut by_batch: HashMap<(usize, &str), Vec<String>> = HashMap::new();
        for claim in claims {
            let (shard, batch, run) = parse_claim(claim)
                .ok_or_else(|| corrupt(format!("{claim:?} is not a claim of this store")))?;
            by_batch
                .entry((shard, batch))
                .or_default()
                .push(run.to_owned());
        }
        let batches = self.lock();
        let mut plan: Vec<Ack> = by_batch
            .into_iter()
            .map(|((shard, batch), mut runs)| {
                runs.sort_unstable();
                runs.dedup();
                // A batch not held (no longer leased here) is acknowledged
                // run by run: the rest of it may be another replica's now.
                let all = batches
                    .get(&(shard, batch.to_owned()))
                    .is_some_and(|held| held.iter().all(|r| runs.binary_search(r).is_ok()));
                Ack {
                    shard,
                    batch: batch.to_owned(),
                    runs,
                    all,
                }
            })
            .collect();
        plan.sort_by(|a, b| (a.shard, &a.batch).cmp(&(b.shard, &b.batch)));
        Ok(plan)
    }

    /// Records that Redis took `ack`.
    pub(crate) fn acknowledged(&self, ack: &Ack) {
        let mut batches = self.lock();
        let key = (ack.shard, ack.batch.clone());
        if let Some(held) = batches.get_mut(&key) {
            for run in &ack.runs {
                held.remove(run);
            }
            if ack.all || held.is_empty() {
                batches.remove(&key);
            }
        }
    }

    /// Runs held.
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(HashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_as_lua_writes_them() {
        let Event::Expiry(e) = read_line(3, "x:r1", "x,alice,1700000000123,0,0,,s%3A1 s2").unwrap()
        else {
            panic!("an expiry")
        };
        assert_eq!((e.key.as_str(), e.user.as_str()), ("alice", "alice"));
        assert_eq!(e.sessions, ["s:1", "s2"]);
        assert_eq!(e.deadline.as_millis(), 1_700_000_000_123);
        assert_eq!(e.cause, Cause::Idle);
        let claim = e.claim.unwrap();
        assert_eq!(
            parse_claim(&claim),
            Some((3, "x:r1", "x:alice:1700000000123"))
        );
        let Event::Expiry(e) = read_line(0, "b", "x,s%201,5,5,0,bob,=").unwrap() else {
            panic!("an expiry")
        };
        assert_eq!(
            (e.key.as_str(), e.user.as_str(), e.sessions.as_slice()),
            ("s 1", "bob", &["s 1".to_owned()][..])
        );
        assert_eq!(e.cause, Cause::Absolute);
        // An operator's sign-out keeps its cause, also for a replica that
        // takes the claim over, and its run id differs from a timeout's.
        let Event::Expiry(e) = read_line(2, "o:r1.7", "o,alice,1700000000123,0,0,,=").unwrap()
        else {
            panic!("an expiry")
        };
        assert_eq!(e.cause, Cause::SignedOut);
        assert_eq!(e.run_id(), "2|o:r1.7|o:alice:1700000000123");
        let Event::Warning(w) = read_line(1, "w:r", "w,bob,42").unwrap() else {
            panic!("a warning")
        };
        assert_eq!((w.key.as_str(), w.deadline.as_millis()), ("bob", 42));
        for bad in [
            "{",
            "x,alice,12",
            "x,a%zz,1,0,0,,=",
            "x,a,1,later,0,,=",
            "q,a,1",
            "w,a,soon",
        ] {
            assert!(
                matches!(read_line(0, "b", bad), Err(StoreError::Corrupt(_))),
                "{bad}"
            );
        }
        assert!(parse_claim(&Claim("nope".into())).is_none());
    }

    #[test]
    fn a_batch_is_acknowledged_whole_only_when_every_run_of_it_is_handled() {
        let held = Held::default();
        let claims: Vec<Claim> = ["a", "b", "c"]
            .iter()
            .map(|member| claim_of(2, "x:n1", "x", member, "1"))
            .collect();
        held.hold(&claims);
        assert_eq!(held.len(), 3);
        assert_eq!(held.renewable(4)[2], ["x:n1"]);
        let part = held.plan(&claims[..2]).unwrap();
        assert_eq!(
            part,
            [Ack {
                shard: 2,
                batch: "x:n1".into(),
                runs: vec!["x:a:1".into(), "x:b:1".into()],
                all: false
            }]
        );
        assert_eq!(part[0].what(), "x:a:1 x:b:1");
        held.acknowledged(&part[0]);
        assert_eq!(held.len(), 1);
        let rest = held.plan(&claims[2..]).unwrap();
        assert!(rest[0].all);
        assert_eq!(rest[0].what(), "*");
        held.acknowledged(&rest[0]);
        assert_eq!(held.len(), 0);
        assert!(held.renewable(4).iter().all(Vec::is_empty));
        // A batch not held any more is acknowledged run by run.
        assert!(!held.plan(&claims).unwrap()[0].all);
        assert!(held.plan(&[Claim("nope".into())]).is_err());
    }
}
