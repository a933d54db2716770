//! The behaviour suite against actix-web + timeout-actix with the memory store.

conformance::suite!(conformance::actix_app::ActixApp::memory());
