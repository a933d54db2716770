//! Idle session timeout for actix-web.
//!
//! [`SessionTimeout`] ties a [`Tracker`](timeout_core::Tracker) to a way of
//! identifying requests ([`identify_fn`], or [`session::ActixSession`] with
//! the `actix-session` feature). It makes the [`IdleTimeoutMiddleware`] middleware,
//! which applies the timeout to every request (activity moves the deadline,
//! passive requests do not, a timed-out session gets 401 with the logout
//! JSON and never reaches the handler), and the routes:
//! `GET /rest/user/timeout/reset`, the WebSocket notifications and the same
//! as Server-Sent Events. Every decision is made by
//! [`timeout_core::adapter::Gate`], the same as in `timeout-tower`.
//!
//! Requests are passive when the policy's rules say so (path prefixes, a
//! header, a query flag, a predicate), on the notification routes, and on
//! resources wrapped with [`mark_passive`] or answered with [`Passive`].
//!
//! ```
//! use actix_web::{App, HttpMessage, HttpRequest, web};
//! use timeout_actix::{Passive, SessionTimeout, identify_fn, mark_passive};
//! use timeout_core::{Policy, Subject, Tracker};
//!
//! # fn main() -> Result<(), timeout_core::ConfigError> {
//! let tracker = Tracker::new(Policy::from_properties(
//!     "timeout.session.enabled=true\ntimeout.session.passive.query=auto",
//! )?);
//! let timeout = SessionTimeout::new(
//!     tracker,
//!     identify_fn(|req: &HttpRequest| req.extensions().get::<Subject>().cloned()),
//! );
//! // In the `HttpServer::new` factory:
//! let app = App::new()
//!     .service(
//!         web::resource("/api/dashboard")
//!             .wrap(mark_passive())
//!             .route(web::get().to(|| async { "{}" })),
//!     )
//!     .route("/api/unread", web::get().to(|| async { Passive("3") }))
//!     .route("/api/notes", web::get().to(|| async { "notes" }))
//!     .configure(timeout.routes())
//!     .wrap(timeout.middleware());
//! # let _ = app;
//! # Ok(()) }
//! ```

// docs.rs shows which feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod config;
mod identify;
mod marker;
mod middleware;
mod routes;
#[cfg(feature = "actix-session")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-session")))]
pub mod session;
mod view;

pub use self::{
    config::SessionTimeout,
    identify::{Identify, IdentifyFn, identify_fn},
    marker::{MarkPassive, MarkPassiveFuture, MarkPassiveMiddleware, Passive, mark, mark_passive},
    middleware::{IdleTimeoutMiddleware, ResponseFuture},
};
// Shared with every adapter; re-exported so apps need one import.
pub use timeout_core::{
    adapter::{EVENTS_PATH, IdentifyError, Identity, IntoIdentity, NOTIFICATIONS_PATH, RESET_PATH},
    wire::{IDENTIFY_FAILED_JSON, NOT_LOGGED_IN_JSON},
};
