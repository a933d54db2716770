//! The behaviour suite against axum + timeout-tower with the Redis store.

conformance::suite!(conformance::redis::WithRedis::new(
    conformance::axum_app::AxumApp::with_store
));
