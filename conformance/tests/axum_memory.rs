//! The behaviour suite against axum + timeout-tower with the memory store.

conformance::suite!(conformance::axum_app::AxumApp::memory());
