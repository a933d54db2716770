//! What the framework adapters share beyond the gate: the builder methods of
//! their `SessionTimeout`, written once so both document and behave alike.

/// The path and ping builders of an adapter's `SessionTimeout`, for a struct
/// with the fields `tracker: Tracker` and `endpoints: Endpoints`. Used
/// inside the adapter's `impl` block; not meant for applications.
#[doc(hidden)]
#[macro_export]
macro_rules! endpoint_builders {
    () => {
        /// Serves the reset endpoint at `path` instead of
        /// [`RESET_PATH`](timeout_core::RESET_PATH).
        pub fn reset_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.reset(path);
            self
        }

        /// Serves the WebSocket notifications at `path` instead of
        /// [`NOTIFICATIONS_PATH`](timeout_core::NOTIFICATIONS_PATH). The
        /// path is passive: an open socket does not keep a session alive.
        pub fn notifications_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.notifications(path);
            self
        }

        /// Serves the Server-Sent Events stream at `path` instead of
        /// [`EVENTS_PATH`](timeout_core::EVENTS_PATH); passive like the
        /// WebSocket.
        pub fn events_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.events(path);
            self
        }

        /// Serves the passive status (time left by the server's clock,
        /// which the browser client counts down from) at `path` instead of
        /// [`STATUS_PATH`](timeout_core::STATUS_PATH).
        pub fn status_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.status(path);
            self
        }

        /// Serves the browser client's files (`idle-timeout.js`,
        /// `idle-timeout.css`) under the folder `path` instead of
        /// [`CLIENT_PATH`](timeout_core::CLIENT_PATH).
        pub fn client_path(mut self, path: impl Into<String>) -> Self {
            self.endpoints = self.endpoints.client(path);
            self
        }

        /// How often the notification socket pings its client (default
        /// [`DEFAULT_PING_INTERVAL`](timeout_core::DEFAULT_PING_INTERVAL));
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
