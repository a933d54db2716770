//! Reading script replies and the claimed events they carry.

use redis::Value;
use serde::Deserialize;
use timeout_core::{Cause, Claim, DueWarning, Expired, StoreError, Timestamp};

use crate::layout::unescape;

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}; is another program (or an incompatible version of timeout-redis) \
         writing under this key prefix? Use a prefix of its own"
    ))
}

/// A script's reply: an array whose first item is the server time.
pub(crate) struct Reply {
    items: Vec<Value>,
}

impl Reply {
    pub(crate) fn new(value: Value) -> Result<Reply, StoreError> {
        match value {
            Value::Array(items) if !items.is_empty() => Ok(Reply { items }),
            other => Err(corrupt(format!("a script answered {other:?}"))),
        }
    }

    pub(crate) fn server_time(&self) -> Result<u64, StoreError> {
        u64::try_from(self.int(0)?).map_err(|_| corrupt("a negative server time"))
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.items.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt(format!("item {i} of a script reply is not a number"))),
            other => Err(corrupt(format!("item {i} of a script reply is {other:?}"))),
        }
    }

    pub(crate) fn uint(&self, i: usize) -> Result<u64, StoreError> {
        u64::try_from(self.int(i)?).map_err(|_| corrupt(format!("item {i} is negative")))
    }

    pub(crate) fn text(&self, i: usize) -> Result<&str, StoreError> {
        match self.items.get(i) {
            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                .map_err(|_| corrupt(format!("item {i} of a script reply is not UTF-8"))),
            Some(Value::SimpleString(s)) => Ok(s),
            other => Err(corrupt(format!("item {i} of a script reply is {other:?}"))),
        }
    }
}

/// Lua's cjson writes an empty list as `{}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum List {
    Items(Vec<String>),
    Empty {},
}

#[derive(Deserialize)]
struct ExpiryJson {
    k: String,
    u: String,
    s: List,
    d: String,
    c: String,
}

#[derive(Deserialize)]
struct WarningJson {
    k: String,
    d: String,
}

fn millis(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map(Timestamp::from_millis)
        .map_err(|_| corrupt(format!("a claimed event has the deadline {text:?}")))
}

/// The claim handle of shard `shard`'s claim `id`.
pub(crate) fn claim_of(shard: usize, id: &str) -> Claim {
    Claim(format!("{shard}|{id}"))
}

/// The shard and id of a claim this store made; `None` for any other.
pub(crate) fn parse_claim(claim: &Claim) -> Option<(usize, &str)> {
    let (shard, id) = claim.0.split_once('|')?;
    Some((shard.parse().ok()?, id))
}

pub(crate) fn expired(event: &str, shard: usize, id: &str) -> Result<Expired, StoreError> {
    let json: ExpiryJson = serde_json::from_str(event)
        .map_err(|e| corrupt(format!("a claimed expiry is not readable ({e})")))?;
    let sessions = match json.s {
        List::Items(items) => items
            .iter()
            .map(|s| unescape(s).ok_or_else(|| corrupt("a session id is wrongly escaped")))
            .collect::<Result<_, _>>()?,
        List::Empty {} => Vec::new(),
    };
    Ok(Expired {
        key: json.k,
        user: json.u,
        sessions,
        deadline: millis(&json.d)?,
        cause: if json.c == "a" {
            Cause::Absolute
        } else {
            Cause::Idle
        },
        claim: Some(claim_of(shard, id)),
    })
}

pub(crate) fn warning(event: &str, shard: usize, id: &str) -> Result<DueWarning, StoreError> {
    let json: WarningJson = serde_json::from_str(event)
        .map_err(|e| corrupt(format!("a claimed warning is not readable ({e})")))?;
    Ok(DueWarning {
        key: json.k,
        deadline: millis(&json.d)?,
        claim: Some(claim_of(shard, id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_as_lua_writes_them() {
        let e = expired(
            r#"{"k":"alice","u":"alice","s":["s%3A1","s2"],"d":"1700000000123","c":"i"}"#,
            3,
            "x:alice:1700000000123",
        )
        .unwrap();
        assert_eq!(e.sessions, ["s:1", "s2"]);
        assert_eq!(e.deadline.as_millis(), 1_700_000_000_123);
        assert_eq!(e.cause, Cause::Idle);
        let claim = e.claim.unwrap();
        assert_eq!(parse_claim(&claim), Some((3, "x:alice:1700000000123")));
        let e = expired(r#"{"k":"k","u":"u","s":{},"d":"5","c":"a"}"#, 0, "x").unwrap();
        assert!(e.sessions.is_empty());
        assert_eq!(e.cause, Cause::Absolute);
        let w = warning(r#"{"k":"bob","d":"42"}"#, 1, "w:bob:42").unwrap();
        assert_eq!((w.key.as_str(), w.deadline.as_millis()), ("bob", 42));
        assert!(matches!(expired("{", 0, "x"), Err(StoreError::Corrupt(_))));
        assert!(parse_claim(&Claim("nope".into())).is_none());
    }
}
