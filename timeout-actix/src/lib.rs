//! actix-web middleware (built by the timeout-actix issue).
