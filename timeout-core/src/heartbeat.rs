//! Keeping a notification socket honest: the server pings it on a timer and
//! closes it when the client stopped answering, so a half-open connection
//! (a laptop that slept, a proxy that dropped it) frees its subscription
//! within two intervals instead of never.

use std::time::Duration;

/// Default pause between pings of a notification socket.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);
/// The largest message a client may send on the notification socket: it has
/// nothing to say but pongs and close frames.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// What to do when the ping interval has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Beat {
    /// Send a ping.
    Ping,
    /// The last ping went unanswered and nothing else came: close.
    Dead,
}

/// The liveness of one socket's client.
///
/// ```
/// use timeout_core::{adapter::{Beat, Heartbeat}};
///
/// let mut heartbeat = Heartbeat::default();
/// assert_eq!(heartbeat.tick(), Beat::Ping);
/// heartbeat.heard(); // the pong
/// assert_eq!(heartbeat.tick(), Beat::Ping);
/// assert_eq!(heartbeat.tick(), Beat::Dead, "no answer for a whole interval");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Heartbeat {
    awaiting: bool,
}

impl Heartbeat {
    /// The client sent something (a pong or any frame): it is there.
    pub fn heard(&mut self) {
        self.awaiting = false;
    }

    /// The interval passed: ping again, or give up on a client that did not
    /// answer the last ping.
    pub fn tick(&mut self) -> Beat {
        if self.awaiting {
            Beat::Dead
        } else {
            self.awaiting = true;
            Beat::Ping
        }
    }
}
