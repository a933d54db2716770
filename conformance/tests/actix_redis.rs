//! The behaviour suite against actix-web + timeout-actix with the Redis store.

conformance::suite!(conformance::redis::WithRedis::new(
    conformance::actix_app::ActixApp::with_store
));
