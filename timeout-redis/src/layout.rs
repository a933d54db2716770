//! Where things live in Redis: key names, shards and the escaping that keeps
//! user names and session ids out of key syntax.
//!
//! ```text
//! {<prefix>:<shard>}:due     ZSET  member -> next due ms (warning or deadline)
//! {<prefix>:<shard>}:r       HASH  member -> record "d,a,w,u,s": deadline, absolute
//!                                  deadline (0: none), deadline warned for (0: none),
//!                                  user (empty: the key), sessions ('=': the key)
//! {<prefix>:<shard>}:gone    ZSET  timed-out or logged-out session -> forgotten at (ms)
//! {<prefix>:<shard>}:dead    ZSET  member whose lost state was logged out -> until (ms)
//! {<prefix>:<shard>}:lease   ZSET  claimed batch id -> lease end ms
//! {<prefix>:<shard>}:claim   HASH  claimed batch id -> its lines, one per event
//! {<prefix>:<shard>}:bad     HASH  unreadable claimed lines, set aside for an operator
//! {<prefix>:<shard>}:epoch   HASH  id of the shard's state, lost: when a loss of it
//!                                  was noticed (0: never)
//! <prefix>:events            STREAM of claimed events (capped), read by every replica
//! <prefix>:meta              HASH  settings every replica must share
//! <prefix>:loss-reported     STRING a state loss was reported in the last 30 s
//! ```
//!
//! A member is the escaped key (see [`escape`]). A shard is a handful of
//! big keys rather than a key per user: a tracked key costs one sorted-set
//! entry and one hash field, and the sweep reads and deletes many keys with
//! one variadic command each. Everything of a shard shares its hash tag, so
//! each script touches one slot of a Redis Cluster; keys are spread over
//! the shards by a hash every replica computes the same way (FNV-1a), so
//! sweeps scale with the cluster.

use std::borrow::Cow;

/// The version of this key layout, kept in the namespace's meta hash: a
/// replica refuses a namespace another layout wrote.
pub(crate) const LAYOUT_VERSION: u32 = 2;

/// The names of one shard's keys, formatted once.
#[derive(Debug)]
pub(crate) struct ShardKeys {
    pub(crate) due: String,
    /// The keys' records.
    pub(crate) records: String,
    /// Timed-out and logged-out sessions, until forgotten.
    pub(crate) gone: String,
    /// Keys logged out after a state loss, until forgotten.
    pub(crate) dead: String,
    pub(crate) leases: String,
    pub(crate) claims: String,
    /// Unreadable claimed lines, set aside.
    pub(crate) bad: String,
    /// The shard's epoch: which incarnation of its state this is.
    pub(crate) epoch: String,
}

/// The key layout of one namespace.
#[derive(Debug)]
pub(crate) struct Layout {
    prefix: String,
    shards: Box<[ShardKeys]>,
}

impl Layout {
    pub(crate) fn new(prefix: &str, shards: u16) -> Layout {
        let shards = (0..shards)
            .map(|n| {
                let tag = format!("{{{prefix}:{n}}}");
                ShardKeys {
                    due: format!("{tag}:due"),
                    records: format!("{tag}:r"),
                    gone: format!("{tag}:gone"),
                    dead: format!("{tag}:dead"),
                    leases: format!("{tag}:lease"),
                    claims: format!("{tag}:claim"),
                    bad: format!("{tag}:bad"),
                    epoch: format!("{tag}:epoch"),
                }
            })
            .collect();
        Layout {
            prefix: prefix.to_owned(),
            shards,
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of a raw key or session id.
    pub(crate) fn shard_of(&self, raw: &str) -> usize {
        (fnv1a(raw.as_bytes()) % self.shards.len() as u64) as usize
    }

    pub(crate) fn shard(&self, n: usize) -> &ShardKeys {
        &self.shards[n]
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn events_stream(&self) -> String {
        format!("{}:events", self.prefix)
    }

    pub(crate) fn meta(&self) -> String {
        format!("{}:meta", self.prefix)
    }
}

/// Whether `prefix` may name a namespace: it becomes part of every key.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// FNV-1a, 64 bits: stable across processes and versions, unlike std's
/// hasher, because every replica must find a key in the same shard.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@')
}

/// Percent-encodes every byte outside `[A-Za-z0-9._@-]`, so braces (hash
/// tags), colons, spaces and control characters never reach a key name.
pub(crate) fn escape(raw: &str) -> Cow<'_, str> {
    if raw.bytes().all(plain) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for b in raw.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Cow::Owned(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The deadline a key's record holds (its first field).
pub(crate) fn record_deadline(record: &str) -> Option<u64> {
    record.split(',').next()?.parse().ok()
}

/// The inverse of [`escape`]; `None` for text it cannot have produced.
pub(crate) fn unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_key_syntax_out_and_round_trips() {
        for raw in [
            "alice",
            "a{b}c",
            "x:y z",
            "é%\n\u{0}",
            "",
            "bob@example.com",
        ] {
            let escaped = escape(raw);
            assert!(
                escaped
                    .bytes()
                    .all(|b| plain(b) || b == b'%' || b.is_ascii_hexdigit()),
                "{escaped}"
            );
            assert!(!escaped.contains(['{', '}', ':', ' ']));
            assert_eq!(unescape(&escaped).as_deref(), Some(raw));
        }
        assert_eq!(escape("alice"), Cow::Borrowed("alice"));
        assert_eq!(unescape("%zz"), None);
        assert_eq!(
            record_deadline("1700000000123,0,0,,="),
            Some(1_700_000_000_123)
        );
        assert_eq!(record_deadline("soon,0"), None);
        assert_eq!(unescape("%4"), None);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let layout = Layout::new("to", 16);
        // Fixed values: replicas of every version must agree.
        assert_eq!(layout.shard_of("alice"), (fnv1a(b"alice") % 16) as usize);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[layout.shard_of(&format!("user{i}"))] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(layout.shard(3).due, "{to:3}:due");
        assert_eq!(layout.shard(3).records, "{to:3}:r");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(valid_prefix("to"));
        assert!(valid_prefix("app-1.timeout_v2"));
        for bad in ["", "a{b", "a:b", "a b", &"x".repeat(65)] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }
}
