//! Idle session timeout state shared by many replicas, on Redis or Redis Cluster.
//!
//! [`RedisStore`] implements the `timeout-core` [`Store`](timeout_core::Store):
//! deadlines live in sorted sets, every change of more than one step runs in
//! a Lua script on Redis time, each due warning and logout is claimed by
//! exactly one replica (with a lease, so a replica that dies does not lose
//! it), and claimed events are published so the replica holding the user's
//! WebSocket delivers them.
//!
//! The request path does not wait for Redis for a hot session: a replica
//! answers from the deadline Redis last reported when the answer is certain
//! and sends the activity in one script call per shard every flush interval.
//!
//! ```no_run
//! use std::sync::Arc;
//! use timeout_core::{Policy, Tracker};
//! use timeout_redis::RedisStore;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379")
//!     .prefix("myapp-timeout")
//!     .connect()
//!     .await?;
//! let tracker = Tracker::builder(Policy::builder().enabled(true).build()?)
//!     .store(Arc::new(store))
//!     .build();
//! let _sweeper = tracker.spawn_sweeper();
//! # Ok(()) }
//! ```
//!
//! When Redis cannot be reached, requests are answered by the policy's
//! `timeout.session.store.unavailable` (refuse by default: a security
//! control should not silently stop working), an error is logged at most
//! every 10 s, and tracking resumes by itself when Redis is back.

// docs.rs shows which feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batches;
mod cache;
mod config;
mod conn;
mod fanout;
mod layout;
mod refusals;
mod reply;
mod scripts;
mod server_clock;
mod state_loss;
mod store;

pub use self::{
    config::{AfterStateLoss, RedisStoreBuilder, RedisStoreError},
    store::{RedisStore, RedisStoreStats},
};
