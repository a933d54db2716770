//! This replica's estimate of the Redis server clock, so the hot path can
//! decide without asking Redis what time it is. Every script reports the
//! server time; the estimate is that time plus what the local monotonic
//! clock measured since, so a replica whose wall clock is skewed still
//! agrees with the others.

use std::{
    sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed},
    time::Instant,
};

#[derive(Debug)]
pub(crate) struct ServerClock {
    origin: Instant,
    /// Server ms minus local ms since `origin`.
    offset: AtomicI64,
    synced: AtomicBool,
}

impl ServerClock {
    pub(crate) fn new() -> ServerClock {
        ServerClock {
            origin: Instant::now(),
            offset: AtomicI64::new(0),
            synced: AtomicBool::new(false),
        }
    }

    fn local_ms(&self, at: Instant) -> i64 {
        i64::try_from(at.duration_since(self.origin).as_millis()).unwrap_or(i64::MAX)
    }

    /// Records a server time read by a call sent at `sent` and answered now:
    /// the server read it about half way.
    pub(crate) fn observe(&self, sent: Instant, server_ms: u64) {
        let received = self.local_ms(Instant::now());
        let midway = (self.local_ms(sent) + received) / 2;
        let server = i64::try_from(server_ms).unwrap_or(i64::MAX);
        self.offset.store(server - midway, Relaxed);
        self.synced.store(true, Relaxed);
    }

    /// The server time now, once a call has reported it.
    pub(crate) fn now(&self) -> Option<u64> {
        if !self.synced.load(Relaxed) {
            return None;
        }
        let ms = self.local_ms(Instant::now()) + self.offset.load(Relaxed);
        u64::try_from(ms).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn follows_the_server_not_the_local_wall_clock() {
        let clock = ServerClock::new();
        assert_eq!(clock.now(), None, "no estimate before the first answer");
        let sent = Instant::now();
        clock.observe(sent, 5_000_000);
        let now = clock.now().unwrap();
        assert!((5_000_000..5_000_050).contains(&now), "{now}");
        std::thread::sleep(Duration::from_millis(30));
        let later = clock.now().unwrap();
        assert!(later >= now + 25, "{now} -> {later}");
    }
}
