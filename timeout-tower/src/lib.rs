//! Idle session timeout for axum and any tower/hyper app.
//!
//! [`SessionTimeout`] ties a [`Tracker`](timeout_core::Tracker) to a way of
//! identifying requests ([`identify_fn`], or
//! [`sessions::TowerSessions`] with the `tower-sessions` feature). It makes
//! the [`IdleTimeoutLayer`], which applies the timeout to every request
//! (activity moves the deadline, passive requests do not, a timed-out
//! session gets 401 with the logout JSON and never reaches the handler), and
//! the axum routes: `GET /rest/user/timeout/reset`, the WebSocket
//! notifications and the same as Server-Sent Events.
//!
//! Requests are passive when the policy's rules say so (path prefixes, a
//! header, a query flag, a predicate), on the notification routes, and on
//! routes the app marks with [`mark_passive`] or by returning [`Passive`].
//!
//! ```
//! use axum::{Router, routing::get};
//! use http::request::Parts;
//! use timeout_core::{Policy, Subject, Tracker};
//! use timeout_tower::{Passive, SessionTimeout, identify_fn, mark_passive};
//!
//! # fn main() -> Result<(), timeout_core::ConfigError> {
//! let tracker = Tracker::new(Policy::from_properties(
//!     "timeout.session.enabled=true\ntimeout.session.passive.query=auto",
//! )?);
//! let timeout = SessionTimeout::new(
//!     tracker,
//!     identify_fn(|parts: &Parts| parts.extensions.get::<Subject>().cloned()),
//! );
//! let app: Router = Router::new()
//!     .route("/api/dashboard", get(|| async { "{}" }))
//!     .route_layer(mark_passive())
//!     .route("/api/unread", get(|| async { (Passive, "3") }))
//!     .route("/api/notes", get(|| async { "notes" }))
//!     .merge(timeout.routes())
//!     .layer(timeout.layer());
//! # Ok(()) }
//! ```

// docs.rs shows which feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
mod admin;
mod body;
mod config;
mod identify;
#[cfg(feature = "axum-login")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum-login")))]
pub mod login;
mod marker;
mod refusal;
#[cfg(feature = "axum")]
mod routes;
mod service;
#[cfg(feature = "tower-sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
pub mod sessions;
mod view;

pub use self::{
    body::IdleTimeoutBody,
    config::SessionTimeout,
    identify::{Identify, IdentifyFn, identify_fn},
    marker::{MarkPassive, MarkPassiveFuture, MarkPassiveLayer, Passive, mark_passive},
    service::{IdleTimeout, IdleTimeoutLayer, ResponseFuture},
};
// Shared with every adapter; re-exported so axum apps need one import.
pub use timeout_core::{
    adapter::{EVENTS_PATH, IdentifyError, Identity, IntoIdentity, NOTIFICATIONS_PATH, RESET_PATH},
    wire::{IDENTIFY_FAILED_JSON, NOT_LOGGED_IN_JSON},
};
