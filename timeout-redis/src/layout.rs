//! Where things live in Redis: key names, shards and the escaping that keeps
//! user names and session ids out of key syntax.
//!
//! ```text
//! {<prefix>:<shard>}:due          ZSET  escaped key -> next due ms (warning or deadline)
//! {<prefix>:<shard>}:k:<key>      HASH  K raw key, u user, l last activity, t timeout,
//!                                       a absolute deadline (0: none), w deadline warned
//!                                       for, s:<session> one field per session
//! {<prefix>:<shard>}:lease        ZSET  claim id -> lease end ms
//! {<prefix>:<shard>}:claim        HASH  claim id -> the claimed event (JSON)
//! {<prefix>:<shard>}:gone:<sess>  STRING a timed-out or logged-out session, expiring when
//!                                       forgotten
//! {<prefix>:<shard>}:dead:<key>   STRING a key whose lost state was logged out (once)
//! {<prefix>:<shard>}:epoch        HASH  id of the shard's state, lost: when a loss of it
//!                                       was noticed (0: never)
//! <prefix>:events                 STREAM of claimed events (capped), read by every replica
//! <prefix>:meta                   HASH  settings every replica must share
//! <prefix>:loss-reported          STRING a state loss was reported in the last 30 s
//! ```
//!
//! Everything of one key shares the shard's hash tag, so each script touches
//! one slot of a Redis Cluster; keys are spread over the shards by a hash
//! every replica computes the same way (FNV-1a), so sweeps scale with the
//! cluster.

use std::borrow::Cow;

/// The names of one shard's keys, formatted once.
#[derive(Debug)]
pub(crate) struct ShardKeys {
    pub(crate) due: String,
    pub(crate) leases: String,
    pub(crate) claims: String,
    /// Prefix of the key hashes: append the escaped key.
    pub(crate) hash_prefix: String,
    /// Prefix of the timed-out session markers: append the escaped session.
    pub(crate) gone_prefix: String,
    /// Prefix of the markers of keys logged out after a state loss.
    pub(crate) dead_prefix: String,
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
                    leases: format!("{tag}:lease"),
                    claims: format!("{tag}:claim"),
                    hash_prefix: format!("{tag}:k:"),
                    gone_prefix: format!("{tag}:gone:"),
                    dead_prefix: format!("{tag}:dead:"),
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
        assert_eq!(layout.shard(3).hash_prefix, "{to:3}:k:");
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
