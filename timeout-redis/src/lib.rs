//! `RedisStore`: shared state across replicas (built by the timeout-redis issue).
