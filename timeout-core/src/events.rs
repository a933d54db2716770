//! Notifications on their way to subscribers: a key's [`Subscription`] (what
//! the WebSocket and SSE routes forward) and the [`EventSink`] where a shared
//! store delivers what other replicas published.

pub use crate::hub::{Ended, EventSink, KnownKey, Subscription};
