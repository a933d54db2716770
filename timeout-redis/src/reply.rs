//! Reading script replies.

use redis::Value;
use timeout_core::store::StoreError;

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
