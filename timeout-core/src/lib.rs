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

mod adapter;
mod admin;
pub mod audit;
mod client;
mod clock;
mod config;
mod deferred;
mod forward;
mod framework;
mod gate;
mod heartbeat;
mod hook_runs;
mod hooks;
mod hub;
mod identity;
mod notification;
mod passive;
mod session_user;
mod store;
mod subject;
mod sweeper;
mod telemetry;
mod tracker;
mod unwind;

#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use self::clock::{ManualClock, SkewedClock};
pub use self::{
    admin::{
        ADMIN_SESSIONS_PATH, ADMIN_SIGN_OUT_PATH, AdminAnswer, admin_sessions, admin_sign_out,
    },
    client::{AssetAnswer, CLIENT_PATH, ClientAsset, STATUS_PATH, asset_at, status_json},
    clock::{Clock, SystemClock, Timestamp},
    config::{
        ConfigError, DEFAULT_IDLE_TIMEOUT, DEFAULT_REMEMBER, DEFAULT_WARN_BEFORE, Policy,
        PolicyBuilder, StoreUnavailable,
    },
    deferred::DeferredActivity,
    forward::{Incoming, NotificationSocket, SSE_KEEP_ALIVE, SseFrames, forward_notifications},
    framework::{
        DEFAULT_FRAMEWORK_WATCH, FrameworkExpiry, FrameworkSessions, FrameworkWatch, StillAlive,
    },
    gate::{
        CLOSE_LOGGED_OUT, CLOSE_TIMED_OUT, CLOSE_UNRESPONSIVE, Decided, Deciding, EVENTS_PATH,
        Endpoints, Entry, Gate, IDENTIFY_FAILED_JSON, NOT_LOGGED_IN, NOT_LOGGED_IN_JSON,
        NOTIFICATIONS_PATH, RESET_PATH, Verdict, identify_failed,
    },
    heartbeat::{Beat, DEFAULT_PING_INTERVAL, Heartbeat, MAX_CLIENT_MESSAGE},
    hook_runs::{DEFAULT_HOOK_RETRIES, DEFAULT_HOOK_TIMEOUT},
    hooks::{FnHook, HookError, TimeoutHook, hook_fn},
    hub::{Ended, EventSink, KnownKey, Subscription},
    identity::{IdentifyError, Identity, IntoIdentity},
    notification::{KeyEvent, LOGOUT_JSON, LOGOUT_REASON, Notification, SIGNED_OUT_REASON},
    passive::{PassivePredicate, PassiveRules, RequestKind, RequestView},
    session_user::{SESSION_USER_KEY, SessionUser},
    store::{
        Cause, Claim, Due, DueWarning, Expired, MemoryStore, MemoryStoreStats, StateLost, Store,
        StoreError, Timing, Touch, TouchOutcome, TrackedKey, UnreachableStore,
    },
    subject::{MAX_ID_LEN, Scope, Subject, SubjectError},
    sweeper::{DEFAULT_SWEEP_INTERVAL, Sweeper, SweeperHandle},
    tracker::{
        AdminError, Check, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SUBSCRIPTIONS, Decision, Refusal,
        SESSION_LIMIT_JSON, SessionDeadline, SweepReport, Tracker, TrackerBuilder, TrackerStats,
        UNAVAILABLE_JSON,
    },
};
