//! Clocks for tests (feature `test-util`): one moved by hand, one shifted
//! from another by a fixed offset.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{Clock, Timestamp, duration_millis};

/// A clock that moves only when told to: for tests and simulations.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::{Timestamp, clock::{Clock, ManualClock}};
///
/// let clock = ManualClock::new(Timestamp::from_millis(10_000));
/// let same = clock.clone();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(same.now(), Timestamp::from_millis(15_000));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(duration_millis(d), Ordering::SeqCst);
    }

    /// Sets the clock to `t` (it may move backwards, as real clocks do).
    pub fn set(&self, t: Timestamp) {
        self.now.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }
}

/// A clock shifted from another by a fixed offset: how a test gives one
/// replica a skewed clock.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::{Timestamp, clock::{Clock, ManualClock, SkewedClock}};
///
/// let base = ManualClock::new(Timestamp::from_millis(100_000));
/// let ahead = SkewedClock::ahead(base.clone(), Duration::from_secs(30));
/// assert_eq!(ahead.now(), Timestamp::from_millis(130_000));
/// ```
#[derive(Debug, Clone)]
pub struct SkewedClock<C> {
    inner: C,
    ahead: bool,
    offset: Duration,
}

impl<C: Clock> SkewedClock<C> {
    /// `inner` moved forward by `offset`.
    pub fn ahead(inner: C, offset: Duration) -> Self {
        SkewedClock {
            inner,
            ahead: true,
            offset,
        }
    }

    /// `inner` moved back by `offset`.
    pub fn behind(inner: C, offset: Duration) -> Self {
        SkewedClock {
            inner,
            ahead: false,
            offset,
        }
    }
}

impl<C: Clock> Clock for SkewedClock<C> {
    fn now(&self) -> Timestamp {
        let now = self.inner.now();
        if self.ahead {
            now.saturating_add(self.offset)
        } else {
            now.saturating_sub(self.offset)
        }
    }
}
