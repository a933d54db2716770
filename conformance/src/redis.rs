//! Any test app on the Redis store, with a redis-server of its own started
//! on a free port for each app (and killed with it).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use test_redis::RedisServer;
use timeout_core::Store;
use timeout_redis::RedisStore;

use crate::{AppConfig, Launch, RunningApp, StoreFactory};

/// Starts the app `make` builds around a factory of Redis stores.
///
/// ```no_run
/// use conformance::{actix_app::ActixApp, redis::WithRedis};
///
/// let launcher = WithRedis::new(ActixApp::with_store);
/// # let _ = launcher;
/// ```
pub struct WithRedis<F> {
    make: F,
}

impl<F, L> WithRedis<F>
where
    F: Fn(StoreFactory) -> L + Sync,
    L: Launch + Send,
{
    /// Apps made by `make` (`AxumApp::with_store`, `ActixApp::with_store`).
    pub fn new(make: F) -> Self {
        WithRedis { make }
    }
}

impl<F, L> Launch for WithRedis<F>
where
    F: Fn(StoreFactory) -> L + Sync,
    L: Launch + Send,
{
    fn start(&self, config: AppConfig) -> Pin<Box<dyn Future<Output = RunningApp> + Send + '_>> {
        Box::pin(async move {
            let redis = RedisServer::start();
            // Short intervals: the scenarios' timeouts are seconds long.
            let store = RedisStore::builder(redis.url())
                .flush_interval(Duration::from_millis(50))
                .lease(Duration::from_secs(2))
                .connect()
                .await
                .unwrap_or_else(|e| panic!("the test's redis-server: {e}"));
            let store: Arc<dyn Store> = Arc::new(store);
            let factory: StoreFactory = Arc::new(move || Arc::clone(&store));
            let launcher = (self.make)(factory);
            let app = launcher.start(config).await;
            RunningApp {
                base: app.base,
                // The app stops before its Redis does.
                guard: Box::new((app.guard, redis)),
            }
        })
    }
}
