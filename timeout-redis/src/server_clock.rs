//! This replica's estimate of the Redis server clock, so the hot path can
//! decide without asking Redis what time it is. Every script reports the
//! server time; the estimate is that time plus what the local monotonic
//! clock measured since, so a replica whose wall clock is skewed still
//! agrees with the others. On a cluster each shard's deadlines are on the
//! clock of the node that holds it, so each shard has its own estimate:
//! nodes whose clocks differ never overwrite each other's.

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

/// The server clocks a store follows: one for a single Redis, one per
/// shard on a cluster.
#[derive(Debug)]
pub(crate) struct ServerClocks {
    clocks: Box<[ServerClock]>,
}

impl ServerClocks {
    pub(crate) fn new(shards: usize, cluster: bool) -> ServerClocks {
        let n = if cluster { shards.max(1) } else { 1 };
        ServerClocks {
            clocks: (0..n).map(|_| ServerClock::new()).collect(),
        }
    }

    /// The clock of `shard`'s node.
    pub(crate) fn of_shard(&self, shard: usize) -> &ServerClock {
        &self.clocks[shard % self.clocks.len()]
    }

    /// The clock of `key`'s node; no hashing on a single Redis.
    pub(crate) fn of_key(&self, layout: &crate::layout::Layout, key: &str) -> &ServerClock {
        if self.clocks.len() == 1 {
            &self.clocks[0]
        } else {
            self.of_shard(layout.shard_of(key))
        }
    }

    /// Some node's time, for what needs no precision (pruning old entries).
    pub(crate) fn any_now(&self) -> Option<u64> {
        self.clocks.iter().find_map(ServerClock::now)
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

    #[test]
    fn each_cluster_shard_follows_its_own_node() {
        let clocks = ServerClocks::new(4, true);
        let sent = Instant::now();
        // Shard 1's node runs 30 s ahead of shard 2's.
        clocks.of_shard(1).observe(sent, 5_030_000);
        clocks.of_shard(2).observe(sent, 5_000_000);
        let (one, two) = (
            clocks.of_shard(1).now().unwrap(),
            clocks.of_shard(2).now().unwrap(),
        );
        assert!((29_950..30_050).contains(&(one - two)), "{one} vs {two}");
        assert_eq!(clocks.of_shard(3).now(), None, "not heard from yet");
        let single = ServerClocks::new(4, false);
        single.of_shard(3).observe(sent, 7_000_000);
        assert!(
            single.of_shard(0).now().is_some(),
            "one clock for one Redis"
        );
    }
}
