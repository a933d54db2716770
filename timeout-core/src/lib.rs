//! The framework-free heart of an idle session timeout.
//!
//! A [`Tracker`] sees every request of every logged-in [`Subject`] and
//! decides: activity moves the deadline, passive requests (polling, open
//! dashboards, the notification socket) do not, and a subject past its
//! deadline is refused and logged out at once. A [`Sweeper`] sends the
//! warning before the timeout and logs out the sessions that never come back.
//! Subscribers receive [`Notification`]s in the wire format browsers expect;
//! [`TimeoutHook`]s free what a session held; every timeout is written to the
//! audit log (`tracing` target `timeout::audit`).
//!
//! With the feature `metrics`, the tracker reports through the `metrics`
//! facade (gauges of tracked keys and open subscriptions; counters of
//! warnings, logouts by cause, explicit logouts, hook runs and failures,
//! store errors and refused requests; histograms of warning and logout
//! lateness and of sweep duration); none on the path of an allowed request.
//!
//! Deadlines live in a [`Store`]: the embedded [`MemoryStore`] here, Redis in
//! `timeout-redis` for many replicas. Framework glue lives in
//! `timeout-tower` (axum) and `timeout-actix`.
//!
//! The root holds what most applications name; the rest is grouped:
//! [`config`] (the policy and its defaults), [`store`] (the `Store` trait,
//! its types and the stores here), [`hooks`], [`clock`], [`passive`] (which
//! requests count as activity), [`wire`] (the JSON and close reasons
//! browsers see), [`events`] (subscriptions), [`framework`] (the framework
//! session's own expiry), [`admin`] (the operator routes), [`audit`], and
//! [`adapter`]: what the framework adapters are built from.
//!
//! ```
//! use std::time::Duration;
//! use timeout_core::{Decision, Notification, Policy, RequestKind, Subject, Tracker};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Policy::from_properties(
//!     "timeout.session.enabled=true\n\
//!      timeout.session.minutes=30\n\
//!      timeout.session.exception.usernames=monitor",
//! )?;
//! let tracker = Tracker::new(policy);
//! let _sweeper = tracker.spawn_sweeper();
//!
//! let alice = Subject::new("session-1", "alice")?;
//! let decision = tracker.check(Some(&alice), RequestKind::Activity).await;
//! assert!(matches!(decision, Decision::Allowed { .. }));
//!
//! let mut notifications = tracker.subscribe(&alice);
//! # let _ = &mut notifications;
//! # Ok(()) }
//! ```

// docs.rs shows which feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapter;
pub mod admin;
pub mod audit;
mod client;
pub mod clock;
pub mod config;
mod deferred;
pub mod events;
mod forward;
pub mod framework;
mod gate;
mod heartbeat;
mod hook_runs;
pub mod hooks;
mod hub;
mod identity;
mod notification;
pub mod passive;
mod session_user;
pub mod store;
mod subject;
mod sweeper;
mod telemetry;
mod tracker;
mod unwind;
pub mod wire;

// The names most applications need; the rest live in the modules above.
pub use self::{
    clock::Timestamp,
    config::{ConfigError, Policy},
    hooks::{TimeoutHook, hook_fn},
    notification::Notification,
    passive::RequestKind,
    store::{MemoryStore, Store},
    subject::{MAX_ID_LEN, Scope, Subject, SubjectError},
    sweeper::{DEFAULT_SWEEP_INTERVAL, Sweeper, SweeperHandle},
    tracker::{
        Check, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SUBSCRIPTIONS, Decision, SweepReport, Tracker,
        TrackerBuilder, TrackerStats,
    },
};

// Names the crate's own code reaches at the root.
pub(crate) use self::{
    client::ClientAsset,
    clock::{Clock, SystemClock},
    config::StoreUnavailable,
    deferred::DeferredActivity,
    framework::FrameworkExpiry,
    gate::{CLOSE_LOGGED_OUT, CLOSE_TIMED_OUT, CLOSE_UNRESPONSIVE},
    heartbeat::{Beat, DEFAULT_PING_INTERVAL, Heartbeat},
    hooks::HookError,
    hub::{EventSink, Subscription},
    identity::{IdentifyError, Identity},
    notification::KeyEvent,
    passive::{PassiveRules, RequestView},
    store::{
        Cause, Claim, Due, DueWarning, Expired, StateLost, StoreError, Timing, Touch, TouchOutcome,
    },
    tracker::Refusal,
};
