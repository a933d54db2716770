//! What a framework adapter is built from, so adapters stay thin and behave
//! alike: the [`Gate`] that decides each request, the [`Endpoints`] and
//! their paths, identities, the notification socket and event stream loops,
//! the browser client's files, the session user record and the refusals.
//! Applications use an adapter (`timeout-tower`, `timeout-actix`) instead.

pub use crate::{
    client::{AssetAnswer, CLIENT_PATH, ClientAsset, STATUS_PATH, asset_at, status_json},
    deferred::DeferredActivity,
    forward::{Incoming, NotificationSocket, SSE_KEEP_ALIVE, SseFrames, forward_notifications},
    gate::{
        Decided, Deciding, EVENTS_PATH, Endpoints, Entry, Gate, NOT_LOGGED_IN, NOTIFICATIONS_PATH,
        RESET_PATH, Verdict, identify_failed,
    },
    heartbeat::{Beat, DEFAULT_PING_INTERVAL, Heartbeat, MAX_CLIENT_MESSAGE},
    identity::{IdentifyError, Identity, IntoIdentity},
    session_user::{SESSION_USER_KEY, SessionUser},
    tracker::Refusal,
};

/// The path and ping builders of an adapter's `SessionTimeout`, for a struct
/// with the fields `tracker: Tracker` and `endpoints: Endpoints`. Used
/// inside the adapter's `impl` block; not meant for applications.
#[doc(hidden)]
#[macro_export]
macro_rules! endpoint_builders {
    () => {
        /// Serves the reset endpoint at `path` instead of
        /// [`RESET_PATH`](timeout_core::adapter::RESET_PATH).
        pub fn reset_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.reset(path);
            self
        }

        /// Serves the WebSocket notifications at `path` instead of
        /// [`NOTIFICATIONS_PATH`](timeout_core::adapter::NOTIFICATIONS_PATH). The
        /// path is passive: an open socket does not keep a session alive.
        pub fn notifications_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.notifications(path);
            self
        }

        /// Serves the Server-Sent Events stream at `path` instead of
        /// [`EVENTS_PATH`](timeout_core::adapter::EVENTS_PATH); passive like the
        /// WebSocket.
        pub fn events_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.events(path);
            self
        }

        /// Serves the passive status (time left by the server's clock,
        /// which the browser client counts down from) at `path` instead of
        /// [`STATUS_PATH`](timeout_core::adapter::STATUS_PATH).
        pub fn status_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.status(path);
            self
        }

        /// Serves the browser client's files (`idle-timeout.js`,
        /// `idle-timeout.css`) under the folder `path` instead of
        /// [`CLIENT_PATH`](timeout_core::adapter::CLIENT_PATH).
        pub fn client_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.client(path);
            self
        }

        /// How often the notification socket pings its client (default
        /// [`DEFAULT_PING_INTERVAL`](timeout_core::adapter::DEFAULT_PING_INTERVAL));
        /// a client that does not answer within the next interval is
        /// closed, so a half-open connection frees its subscription.
        pub fn ping_interval(mut self, interval: ::std::time::Duration) -> Self {
            self.endpoints = self.endpoints.ping_interval(interval);
            self
        }

        /// The tracker.
        pub fn tracker(&self) -> &$crate::Tracker {
            &self.tracker
        }
    };
}
