//! What an error from Redis means for the timeout, and what an operator
//! should change: a dropped connection or a server still loading is an
//! outage that passes (the failure policy answers meanwhile); out of memory,
//! a read-only replica or a missing ACL permission lasts until someone
//! changes the server, so the message says what to change.

use redis::RedisError;
use timeout_core::store::StoreError;

/// The store error for `err`, raised while talking to `what`.
pub(crate) fn store_error(err: RedisError, what: &str) -> StoreError {
    match advice(&err) {
        None => StoreError::Unavailable {
            what: what.to_owned(),
            source: Box::new(err),
        },
        Some(advice) => StoreError::Refused {
            what: what.to_owned(),
            reason: advice,
        },
    }
}

/// What to change on the server, or `None` for an outage that passes by
/// itself (no answer, a dropped connection, a server loading its data or
/// a cluster electing a primary).
pub(crate) fn advice(err: &RedisError) -> Option<String> {
    if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
        return None;
    }
    let fix = match err.code() {
        Some("LOADING" | "MASTERDOWN" | "CLUSTERDOWN" | "TRYAGAIN") => return None,
        Some("OOM") => {
            "Redis is out of memory: raise its maxmemory or free memory, and keep \
             maxmemory-policy noeviction so no deadline is evicted"
        }
        Some("READONLY") => {
            "the address is a read-only replica: point the store at the primary, or use \
             RedisStore::cluster, which follows failovers"
        }
        Some("NOPERM") => {
            "the Redis user lacks a permission: allow it the store's commands on the keys of \
             its prefix, for example `+@scripting +@sortedset +@hash +@stream +@string \
             +@keyspace +time ~<prefix>*`"
        }
        Some("BUSY") => {
            "Redis is busy running a long script: find it with SLOWLOG GET, and give the \
             store a Redis where scripts stay short"
        }
        Some("NOSCRIPT") => {
            "a script the store loaded is gone: something runs SCRIPT FLUSH on this Redis; \
             stop it"
        }
        _ => {
            "check the Redis log, its maxmemory and ACL settings, and that the address is a \
             writable primary"
        }
    };
    Some(format!("{fix} (Redis said: {err})"))
}

#[cfg(test)]
mod tests {
    use redis::RedisError;

    use super::*;

    /// A server's error reply as redis-rs reports it.
    fn server_error(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some(detail.to_owned()))
    }

    #[test]
    fn lasting_refusals_say_what_to_change() {
        for (code, says) in [
            ("OOM", "maxmemory"),
            ("READONLY", "primary"),
            ("NOPERM", "+@scripting"),
            ("BUSY", "SLOWLOG"),
            ("ERR", "check the Redis log"),
        ] {
            let err = server_error(code, "something");
            let advice = advice(&err).unwrap_or_else(|| panic!("{code} is not an outage"));
            assert!(advice.contains(says), "{code}: {advice}");
            assert!(
                matches!(store_error(err, "Redis at x"), StoreError::Refused { .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn passing_outages_are_unavailable() {
        for code in ["LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"] {
            assert!(advice(&server_error(code, "wait")).is_none(), "{code}");
        }
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(
            store_error(io, "Redis at x"),
            StoreError::Unavailable { .. }
        ));
    }
}
