//! Fan-out between replicas through one capped Redis stream: the replica
//! that claims an event appends it, every replica reads the stream from the
//! last entry it saw and hands each event to its own WebSocket/SSE
//! subscribers of that key. The same stream tells the other replicas that a
//! key (or one session of it) ended after an explicit logout.
//!
//! A stream rather than pub/sub, so delivery is at least once: a replica
//! whose connection dropped, half-opened or moved to a failed-over node
//! reads on from the last id it saw once it reconnects, and nothing sent
//! meanwhile is lost (as long as the stream, capped at [`STREAM_CAP`]
//! entries, still holds it). Receivers drop repeats by event id.

use std::{
    borrow::Cow,
    sync::{
        Arc, Mutex, OnceLock, PoisonError, Weak,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use redis::{RedisError, Value};
use serde::{Deserialize, Serialize};
use timeout_core::{events::EventSink, wire::KeyEvent};

use crate::{cache::Cache, conn::Conn, store::Inner};

/// Entries the stream keeps (about): at a sweep's batch per entry, minutes
/// of events even at thousands of logouts a second.
pub(crate) const STREAM_CAP: u64 = 10_000;
/// How long one read waits for new entries; also how soon a dead
/// connection is noticed (the read then times out and reconnects).
pub(crate) const READ_BLOCK: Duration = Duration::from_secs(1);
const READ_COUNT: usize = 512;

/// What goes on the stream, as JSON. Borrowed when sent, so a sweep's
/// batch is written without copying its events.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Message<'a> {
    /// The sending replica: it has delivered the event itself already.
    pub(crate) r: Cow<'a, str>,
    /// Events for the subscribers of their keys (a sweep's batch).
    #[serde(default, skip_serializing_if = "<[KeyEvent]>::is_empty")]
    pub(crate) e: Cow<'a, [KeyEvent]>,
    /// A key that ended (with `s`, only that session of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) k: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) s: Option<Cow<'a, str>>,
}

/// The receiving end.
#[derive(Debug)]
pub(crate) struct FanIn {
    pub(crate) replica: String,
    /// How this replica's own entries begin (`r` is serialized first): a
    /// replica skips them (most of a busy stream, for the one that sweeps)
    /// without parsing their events, and other replicas' entries are
    /// parsed once.
    own_prefix: Vec<u8>,
    pub(crate) sink: OnceLock<EventSink>,
    pub(crate) cache: Arc<Cache>,
    /// Messages of other replicas handled, for tests and monitoring.
    pub(crate) received: AtomicU64,
    /// Entries that could not be read, set aside (logged).
    pub(crate) unreadable: AtomicU64,
    /// Times the reader found entries trimmed before it read them.
    pub(crate) gaps: AtomicU64,
    /// The id of the last entry read.
    last_id: Mutex<String>,
}

impl FanIn {
    pub(crate) fn new(replica: String, cache: Arc<Cache>) -> FanIn {
        let own_prefix = format!("{{\"r\":{}", serde_json::Value::String(replica.clone()));
        FanIn {
            own_prefix: own_prefix.into_bytes(),
            replica,
            sink: OnceLock::new(),
            cache,
            received: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            last_id: Mutex::new("0-0".to_owned()),
        }
    }

    fn last_id(&self) -> String {
        self.last_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_last_id(&self, id: &str) {
        id.clone_into(&mut self.last_id.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Reads on from the newest entry now in the stream (a new replica has
    /// no subscribers that older events concern).
    pub(crate) async fn start_at_end(
        &self,
        conn: &mut Conn,
        stream: &str,
    ) -> Result<(), RedisError> {
        let newest = newest_id(conn, stream).await?;
        self.set_last_id(newest.as_deref().unwrap_or("0-0"));
        Ok(())
    }

    /// Handles one entry's payload.
    pub(crate) fn receive(&self, payload: &[u8]) {
        if payload.starts_with(&self.own_prefix) {
            return;
        }
        let message: Message<'static> = match serde_json::from_slice(payload) {
            Ok(message) => message,
            Err(err) => {
                self.unreadable.fetch_add(1, Relaxed);
                tracing::warn!(
                    target: "timeout",
                    "set aside an entry of the timeout event stream that is not from this \
                     version of timeout-redis ({err}); do two applications share the key prefix?"
                );
                return;
            }
        };
        if message.r == self.replica {
            return;
        }
        self.received.fetch_add(1, Relaxed);
        for event in message.e.iter() {
            if event.notification.is_logout() {
                self.cache.forget(&event.key, None);
            }
            if let Some(sink) = self.sink.get() {
                sink.deliver(event);
            }
        }
        if let Some(key) = message.k {
            self.cache.forget(&key, message.s.as_deref());
            // An explicit logout on another replica: this replica's sockets
            // of that session close too.
            if let (Some(session), Some(sink)) = (message.s.as_deref(), self.sink.get()) {
                sink.close_session(&key, session);
            }
        }
    }
}

/// The id of the newest entry of `stream`, `None` when it is empty.
async fn newest_id(conn: &mut Conn, stream: &str) -> Result<Option<String>, RedisError> {
    let newest: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(entries(&newest).into_iter().next().map(|(id, _)| id))
}

/// Reads the stream until the store is dropped: every entry once per
/// replica, in order, resuming from the last id after any failure.
pub(crate) async fn read_events(
    store: Weak<Inner>,
    fan_in: Arc<FanIn>,
    mut conn: Conn,
    stream: String,
) {
    let mut failing = false;
    let mut pause = Duration::from_millis(50);
    loop {
        if store.strong_count() == 0 {
            return;
        }
        let last = fan_in.last_id();
        let read: Result<Value, RedisError> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(READ_BLOCK.as_millis()).unwrap_or(1_000))
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query_async(&mut conn)
            .await;
        match read {
            Ok(reply) => {
                if failing {
                    failing = false;
                    pause = Duration::from_millis(50);
                    catch_up_check(&fan_in, &mut conn, &stream, &last).await;
                    tracing::info!(target: "timeout", "the timeout event stream is read again");
                }
                for (id, payload) in stream_entries(&reply) {
                    if let Some(payload) = payload {
                        fan_in.receive(&payload);
                    } else {
                        fan_in.unreadable.fetch_add(1, Relaxed);
                    }
                    fan_in.set_last_id(&id);
                }
            }
            Err(err) => {
                if !failing {
                    failing = true;
                    tracing::warn!(
                        target: "timeout",
                        "reading the timeout event stream failed ({err}); retrying, and events \
                         sent meanwhile are read when it answers again"
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// After an outage: if the stream restarted (Redis lost it) its new ids may
/// be below the last one read, so read it from the start; if it was
/// trimmed past the last id, some events are gone: say so.
async fn catch_up_check(fan_in: &FanIn, conn: &mut Conn, stream: &str, last: &str) {
    let oldest: Result<Value, RedisError> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await;
    let Ok(oldest) = oldest else { return };
    let oldest = entries(&oldest).into_iter().next().map(|(id, _)| id);
    let newest = newest_id(conn, stream).await.ok().flatten();
    match (oldest, newest) {
        (_, Some(newest)) if stream_id(&newest) < stream_id(last) => {
            tracing::warn!(
                target: "timeout",
                "the timeout event stream restarted (Redis lost it); reading it from the start"
            );
            fan_in.set_last_id("0-0");
        }
        (Some(oldest), _) if stream_id(&oldest) > stream_id(last) && last != "0-0" => {
            fan_in.gaps.fetch_add(1, Relaxed);
            tracing::warn!(
                target: "timeout",
                "timeout events were trimmed from the stream before this replica read them \
                 (it was away longer than the stream holds); sockets of users logged out \
                 meanwhile close at their next request"
            );
        }
        _ => {}
    }
}

fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The `(id, m payload)` entries of an `XRANGE`-shaped reply.
fn entries(value: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let id = text(parts.first()?)?;
            let payload = match parts.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|pair| pair.first().and_then(text).as_deref() == Some("m"))
                    .and_then(|pair| match pair.get(1) {
                        Some(Value::BulkString(b)) => Some(b.clone()),
                        _ => None,
                    }),
                _ => None,
            };
            Some((id, payload))
        })
        .collect()
}

/// The entries of an `XREAD` reply of one stream (nil: none).
fn stream_entries(value: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    let streams = match value {
        Value::Array(streams) => streams.iter().collect::<Vec<_>>(),
        Value::Map(pairs) => pairs.iter().map(|(_, v)| v).collect(),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for stream in streams {
        match stream {
            // RESP2: [name, entries]
            Value::Array(parts) if parts.len() == 2 => out.extend(entries(&parts[1])),
            // RESP3 map value: entries
            other => out.extend(entries(other)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn own_entries_are_skipped_and_others_handled() {
        let fan_in = FanIn::new("r-1".to_owned(), Arc::new(Cache::new()));
        let write = |replica: &str| {
            serde_json::to_vec(&Message {
                r: Cow::Borrowed(replica),
                e: Cow::Borrowed(&[]),
                k: Some(Cow::Borrowed("alice")),
                s: None,
            })
            .unwrap()
        };
        fan_in.receive(&write("r-1"));
        assert_eq!(fan_in.received.load(Relaxed), 0, "its own entry");
        // A replica whose id starts with this one's is another replica.
        fan_in.receive(&write("r-10"));
        fan_in.receive(&write("r-2"));
        assert_eq!(fan_in.received.load(Relaxed), 2);
    }

    #[test]
    fn reads_entries_of_an_xread_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("timeout:events"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("m"), bulk("{}")])]),
                Value::Array(vec![bulk("2-5"), Value::Array(vec![bulk("x"), bulk("y")])]),
            ]),
        ])]);
        let got = stream_entries(&reply);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("1-0".to_owned(), Some(b"{}".to_vec())));
        assert_eq!(got[1], ("2-5".to_owned(), None), "no m field: unreadable");
        assert!(stream_entries(&Value::Nil).is_empty());
        assert!(stream_id("10-2") > stream_id("9-99"));
        assert!(stream_id("10-2") < stream_id("10-10"));
    }
}
