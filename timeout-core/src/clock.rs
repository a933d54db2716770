//! Time as the tracker sees it: milliseconds since the Unix epoch, from a
//! pluggable [`Clock`].
//!
//! Milliseconds since the epoch (not `Instant`) because deadlines are shared
//! with other replicas through stores such as Redis, whose server clock is
//! the one every replica must agree on.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A point in time: whole milliseconds since the Unix epoch.
///
/// ```
/// use std::time::Duration;
/// use timeout_core::Timestamp;
///
/// let t = Timestamp::from_millis(1_000);
/// assert_eq!(t + Duration::from_secs(2), Timestamp::from_millis(3_000));
/// assert_eq!(Timestamp::from_millis(3_000).saturating_since(t), Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The latest representable time; used as "never".
    pub const NEVER: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self` moved forward by `d`, saturating at [`Timestamp::NEVER`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// `self` moved back by `d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Timestamp::NEVER {
            f.write_str("Timestamp(never)")
        } else {
            write!(f, "Timestamp({}ms)", self.0)
        }
    }
}

/// Whole milliseconds of `d`, saturating; sub-millisecond remainders are
/// dropped because every store keeps millisecond scores.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where the tracker reads the current time.
///
/// Implement it to inject time in tests or to follow an external clock.
///
/// ```
/// use timeout_core::{clock::{Clock, SystemClock}};
///
/// let now = SystemClock.now();
/// assert!(now.as_millis() > 1_600_000_000_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
///
/// On Linux it reads the kernel's coarse real-time clock, which is updated
/// every tick (1 to 4 ms) and costs a quarter of the precise one: it is read
/// on every request, and a few milliseconds are nothing against timeouts of
/// minutes and a delivery promise of one second.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(wall_millis())
    }
}

#[cfg(target_os = "linux")]
fn wall_millis() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_REALTIME_COARSE
    // exists on every Linux since 2.6.32; failure is reported, not UB.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    match (rc, u64::try_from(ts.tv_sec), u64::try_from(ts.tv_nsec)) {
        (0, Ok(secs), Ok(nanos)) => secs.saturating_mul(1_000) + nanos / 1_000_000,
        _ => precise_wall_millis(),
    }
}

#[cfg(not(target_os = "linux"))]
fn wall_millis() -> u64 {
    precise_wall_millis()
}

fn precise_wall_millis() -> u64 {
    // A clock before 1970 is a broken host; treating it as the epoch keeps
    // the tracker running (everything looks idle) instead of panicking.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_mul(1_000) + u64::from(d.subsec_millis()))
        .unwrap_or(0)
}

#[cfg(any(test, feature = "test-util"))]
mod test_util;
#[cfg(any(test, feature = "test-util"))]
pub use self::test_util::{ManualClock, SkewedClock};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_moves_forward_and_agrees_with_the_precise_clock() {
        let a = SystemClock.now();
        std::thread::sleep(Duration::from_millis(20));
        let b = SystemClock.now();
        assert!(b > a, "{b:?} should be after {a:?}");
        let precise = precise_wall_millis();
        assert!(
            precise.abs_diff(b.as_millis()) < 50,
            "coarse {b:?} vs precise {precise} ms"
        );
    }

    #[test]
    fn manual_clock_can_go_back() {
        let c = ManualClock::new(Timestamp::from_millis(5_000));
        c.set(Timestamp::from_millis(1_000));
        assert_eq!(c.now().as_millis(), 1_000);
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        assert_eq!(
            Timestamp::NEVER + Duration::from_secs(1),
            Timestamp::NEVER,
            "adding to never stays never"
        );
        assert_eq!(
            Timestamp::from_millis(5).saturating_sub(Duration::from_secs(1)),
            Timestamp::from_millis(0)
        );
        assert_eq!(
            Timestamp::from_millis(5).saturating_since(Timestamp::from_millis(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn skewed_behind() {
        let base = ManualClock::new(Timestamp::from_millis(100_000));
        let c = SkewedClock::behind(base, Duration::from_secs(30));
        assert_eq!(c.now().as_millis(), 70_000);
    }
}
