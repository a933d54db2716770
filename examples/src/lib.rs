//! Demo apps (built by the timeout-tower, timeout-actix and timeout-redis issues).
