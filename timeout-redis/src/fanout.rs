//! Fan-out between replicas: the replica that claims an event publishes it
//! on one channel, every replica receives it and hands it to its own
//! WebSocket/SSE subscribers of that key. The same channel tells the other
//! replicas to drop a key (or one of its sessions) from their caches after
//! an explicit logout.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use redis::{PushInfo, PushKind, Value};
use serde::{Deserialize, Serialize};
use timeout_core::{EventSink, KeyEvent};

use crate::cache::Cache;

/// What goes on the channel, as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Message {
    /// The sending replica: it has delivered the event itself already.
    pub(crate) r: String,
    /// Events for the subscribers of their keys (a sweep's batch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) e: Vec<KeyEvent>,
    /// A key that ended (with `s`, only that session of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) k: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) s: Option<String>,
}

/// The receiving end, shared with the subscription's push handler.
#[derive(Debug)]
pub(crate) struct FanIn {
    pub(crate) replica: String,
    pub(crate) sink: OnceLock<EventSink>,
    pub(crate) cache: Arc<Cache>,
    /// Messages of other replicas handled, for tests and monitoring.
    pub(crate) received: AtomicU64,
}

impl FanIn {
    pub(crate) fn receive(&self, push: PushInfo) {
        if push.kind != PushKind::Message {
            return;
        }
        let Some(Value::BulkString(payload)) = push.data.get(1) else {
            return;
        };
        let message: Message = match serde_json::from_slice(payload) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(
                    target: "timeout",
                    "ignored a message on the timeout channel that is not from this \
                     version of timeout-redis ({err}); do two applications share the key prefix?"
                );
                return;
            }
        };
        if message.r == self.replica {
            return;
        }
        self.received.fetch_add(1, Relaxed);
        for event in message.e {
            if event.notification.is_logout() {
                self.cache.forget(&event.key, None);
            }
            if let Some(sink) = self.sink.get() {
                sink.deliver(&event);
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
