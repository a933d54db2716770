//! The behaviour list of the README, as scenarios over real HTTP
//! (reqwest) and real WebSocket clients (tokio-tungstenite), run against
//! every adapter and store.
//!
//! An adapter takes part by starting a **test app** that serves the routes
//! below, behind its timeout middleware unless noted, and implementing
//! [`Launch`]; `conformance::suite!(launcher)` then makes one `#[tokio::test]`
//! per scenario. The scenarios know nothing of the framework.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /login` `{"user":"alice","groups":["g"]}` | outside the middleware (it must work with a timed-out cookie): logs in on the framework session (fresh id), starts tracking; 200 |
//! | `POST /logout` | outside: explicit logout, stops tracking, destroys the framework session; 204 |
//! | `GET /work` | activity; 200 `ok`, counts its calls |
//! | `GET /poll/status` | passive by the path prefix `/poll` of the policy |
//! | `GET /dashboard` | passive by a per-route marking (route layer / wrapper) |
//! | `GET /unread` | passive by a marker the handler returns |
//! | reset, notifications, events | the adapter's routes at their default paths |
//! | `GET /plain/me` | **outside** the middleware: 200 `{"user":..}` while the framework session holds a user, else 401 |
//! | `GET /test/calls` | outside: how many times `/work` ran, `{"work":n}` |
//! | `GET /test/hooks` | outside: timeout hook runs per user, `{"alice":1}`; framework-session expiries as `"framework:alice"`, and the last one's time since it expired as `"framework-since-ms:alice"` |
//! | `GET /test/time-left` | outside: `{"ms":n}` left for the caller's session, `{"ms":null}` if untracked |
//! | `GET /test/active` | outside: tracked keys, `{"active":n}` |
//! | `GET /admin/users/{user}/sessions`, `POST /admin/users/{user}/sign-out` | outside: the adapter's operator routes, nested under `/admin` (a real app puts its authorization in front) |
//!
//! The app builds its policy from [`AppConfig::properties`] and adds the
//! header rule `X-Passive` and the query flag `auto`, and the path `/poll`, as
//! [`AppConfig::properties`] already says.

pub mod actix_app;
pub mod axum_app;
pub mod client;
pub mod redis;
pub mod scenarios;

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use serde_json::Value;
use timeout_core::{
    Store, TimeoutHook, framework::FrameworkExpiry, hooks::HookError, store::Expired,
};

/// Makes the timeout store of each app (the memory store when an app has
/// none).
pub type StoreFactory = Arc<dyn Fn() -> Arc<dyn Store> + Send + Sync>;

/// Timeout hook runs per user, for `GET /test/hooks`.
#[derive(Clone, Default)]
pub struct HookCounts(Arc<Mutex<BTreeMap<String, u64>>>);

impl HookCounts {
    /// A hook that counts its runs here.
    pub fn hook(&self) -> impl TimeoutHook {
        CountingHook(self.clone())
    }

    /// The counts, as `GET /test/hooks` answers them.
    pub fn to_json(&self) -> Value {
        serde_json::json!(*self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct CountingHook(HookCounts);

#[async_trait]
impl TimeoutHook for CountingHook {
    async fn on_timeout(&self, expired: &Expired) -> Result<(), HookError> {
        *self.0.lock().entry(expired.user.clone()).or_default() += 1;
        Ok(())
    }

    async fn on_framework_session_expired(
        &self,
        expiry: &FrameworkExpiry,
    ) -> Result<(), HookError> {
        let mut counts = self.0.lock();
        *counts
            .entry(format!("framework:{}", expiry.user))
            .or_default() += 1;
        let since = u64::try_from(expiry.since.as_millis()).unwrap_or(u64::MAX);
        counts.insert(format!("framework-since-ms:{}", expiry.user), since);
        Ok(())
    }

    fn name(&self) -> &str {
        "count"
    }
}

/// The user and groups of a `POST /login` body, `None` if it is not
/// `{"user": "..", "groups": [..]}`.
pub fn login_request(body: &[u8]) -> Option<(String, Vec<String>)> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let user = body["user"].as_str()?.to_owned();
    let groups = body["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some((user, groups))
}

/// How a scenario wants the app configured.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The policy, in the properties format (`timeout.session.*`).
    pub properties: String,
    /// Whether the background sweeper runs (off to test the gate alone).
    pub sweeper: bool,
    /// How often the notification socket pings its client.
    pub ping_interval: std::time::Duration,
    /// How long the framework's own session lives without a save
    /// (tower-sessions' `OnInactivity`, actix-session's `session_ttl`).
    pub framework_session: std::time::Duration,
}

impl AppConfig {
    /// Enabled, with `extra` properties lines (a 1-second warning unless they
    /// set one), the test app's passive rules and a sweeper.
    pub fn enabled(extra: &str) -> AppConfig {
        // Second-long timeouts need a warning shorter than the default minute.
        let warning = if extra.contains("notification.") {
            ""
        } else {
            "timeout.session.notification.seconds=1\n"
        };
        AppConfig {
            properties: format!(
                "timeout.session.enabled=true\n\
                 timeout.session.passive.paths=/poll\n\
                 timeout.session.passive.header=X-Passive\n\
                 timeout.session.passive.query=auto\n\
                 {warning}{extra}\n"
            ),
            sweeper: true,
            ping_interval: timeout_core::adapter::DEFAULT_PING_INTERVAL,
            framework_session: std::time::Duration::from_secs(3600),
        }
    }

    /// The framework's own session ends `lifetime` after its last save.
    pub fn framework_session(mut self, lifetime: std::time::Duration) -> AppConfig {
        self.framework_session = lifetime;
        self
    }

    /// The notification socket pings its client every `interval`.
    pub fn pinging_every(mut self, interval: std::time::Duration) -> AppConfig {
        self.ping_interval = interval;
        self
    }

    /// The same without the background sweeper.
    pub fn without_sweeper(mut self) -> AppConfig {
        self.sweeper = false;
        self
    }
}

/// A started test app; dropping it stops the server.
pub struct RunningApp {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// Whatever keeps the server alive (a task handle that aborts on drop, a
    /// child process killed on drop).
    pub guard: Box<dyn Send + Sync>,
}

/// Starts the test app of one adapter and store.
pub trait Launch: Sync {
    /// Starts an app with `config` on a free port of 127.0.0.1.
    fn start(&self, config: AppConfig) -> Pin<Box<dyn Future<Output = RunningApp> + Send + '_>>;
}

/// One `#[tokio::test]` per scenario, against `$launch` (an expression of a
/// type implementing [`Launch`]). The test crate needs `tokio` with
/// `macros` and `rt-multi-thread`.
#[macro_export]
macro_rules! suite {
    ($launch:expr) => {
        $crate::suite!(@each $launch;
            disabled_passes_everything_through,
            request_without_subject_is_not_tracked,
            exempt_user_never_times_out,
            group_timeout_is_the_largest_of_the_users_groups,
            passive_requests_do_not_move_the_deadline,
            activity_moves_the_deadline,
            gate_refuses_a_timed_out_session_before_any_sweep,
            passive_request_of_a_timed_out_session_is_refused,
            concurrent_requests_after_the_deadline_log_out_once,
            reset_counts_as_activity_and_needs_a_subject,
            warning_then_logout_on_the_socket_on_time,
            activity_after_a_warning_starts_a_new_period,
            explicit_logout_stops_tracking,
            notifications_reach_only_their_subject,
            scope_user_keeps_every_session_of_the_user_alive,
            scope_session_expires_each_session_alone,
            server_sent_events_deliver_the_same_notifications,
            socket_ignores_what_the_client_sends,
            a_socket_whose_client_stops_answering_is_closed,
            an_oversized_client_message_closes_the_socket,
            status_tells_the_time_left_passively,
            client_files_are_served_with_an_etag_even_to_a_timed_out_session,
            a_framework_session_that_expires_first_is_recorded_once,
            an_operator_lists_and_signs_out_a_user_everywhere,
            an_operator_signs_out_every_session_in_session_scope,
            an_operator_request_for_an_impossible_user_is_refused,
        );
    };
    (@each $launch:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::scenarios::$name(&$launch).await;
            }
        )*
    };
}
