//! The key of a tracked entry and, when it differs, its user, stored in the
//! entry itself when short (most user names and session ids): a million
//! tracked keys then cost a million allocations fewer.

/// Bytes that fit inline, beside the length fields and the variant tag, in
/// the 24 bytes a heap string and its split take anyway.
const INLINE: usize = 21;

pub(super) struct Names(Repr);

enum Repr {
    /// `bytes[..len]`: the key, then the user when it differs.
    Inline {
        len: u8,
        key_len: u8,
        bytes: [u8; INLINE],
    },
    /// The key, then the user when it differs.
    Heap { text: Box<str>, key_len: u32 },
}

const _: () = assert!(std::mem::size_of::<Names>() == 24);

impl Names {
    pub(super) fn new(key: &str, user: &str) -> Names {
        let user = if user == key { "" } else { user };
        let len = key.len() + user.len();
        if len <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            bytes[key.len()..len].copy_from_slice(user.as_bytes());
            // Both fit in u8: len <= INLINE.
            return Names(Repr::Inline {
                len: len as u8,
                key_len: key.len() as u8,
                bytes,
            });
        }
        match u32::try_from(key.len()) {
            Ok(key_len) => Names(Repr::Heap {
                text: [key, user].concat().into_boxed_str(),
                key_len,
            }),
            // A key over 4 GiB cannot arrive in a request; keep it whole
            // rather than fail (its user then reads as the key).
            Err(_) => Names(Repr::Heap {
                text: key.into(),
                key_len: u32::MAX,
            }),
        }
    }

    fn split(&self) -> (&[u8], &[u8]) {
        match &self.0 {
            Repr::Inline {
                len,
                key_len,
                bytes,
            } => bytes[..usize::from(*len)].split_at(usize::from(*key_len)),
            Repr::Heap { text, key_len } => text
                .as_bytes()
                .split_at((*key_len as usize).min(text.len())),
        }
    }

    /// Whether the key is `other`: a byte comparison, for the request path.
    pub(super) fn is_key(&self, other: &str) -> bool {
        self.split().0 == other.as_bytes()
    }

    pub(super) fn key(&self) -> &str {
        text(self.split().0)
    }

    pub(super) fn user(&self) -> &str {
        match self.split() {
            (key, []) => text(key),
            (_, user) => text(user),
        }
    }
}

/// Both halves were whole `str`s, so they are valid UTF-8; the fallback is
/// never taken.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn short_and_long_names_read_back_whole() {
        for (key, user) in [
            ("alice", "alice"),
            ("s1", "alice"),
            ("", "bob"),
            ("é€𝄞", "ünï"),
            ("123456789012345678901", "123456789012345678901"),
            ("1234567890", "12345678901"),
            ("1234567890", "123456789012"),
            ("a-session-id-of-thirty-two-chars", "alice"),
            ("alice", "a user name longer than twenty-one bytes"),
        ] {
            let names = Names::new(key, user);
            assert_eq!((names.key(), names.user()), (key, user), "{key:?} {user:?}");
            assert!(names.is_key(key));
            assert!(!names.is_key(&format!("{key}x")));
        }
    }
}
