//! The background task that sends warnings and logs out keys that never
//! come back to the gate.

use std::time::Duration;

use tokio::{task::JoinHandle, time::MissedTickBehavior};

use crate::Tracker;

/// The default pause between sweeps: deliveries are at most this late (plus
/// the time to claim), well within the 1-second promise.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Configures and starts the sweeper of a [`Tracker`].
///
/// ```
/// use timeout_core::{Policy, Sweeper, Tracker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build().unwrap());
/// let sweeper = Sweeper::new(tracker.clone()).spawn();
/// // ... serve requests; dropping the handle stops the sweeper.
/// sweeper.stop();
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Sweeper {
    tracker: Tracker,
    interval: Duration,
}

impl Sweeper {
    /// A sweeper for `tracker`, every [`DEFAULT_SWEEP_INTERVAL`].
    pub fn new(tracker: Tracker) -> Self {
        Sweeper {
            tracker,
            interval: DEFAULT_SWEEP_INTERVAL,
        }
    }

    /// The pause between sweeps (at least 1 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Starts the sweeper on the current tokio runtime. It runs until the
    /// handle is dropped or stopped.
    pub fn spawn(self) -> SweeperHandle {
        SweeperHandle {
            task: tokio::spawn(self.run()),
        }
    }

    async fn run(self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        // Gauges once a second; the tracked keys (which asks the store)
        // every ten.
        let mut levels_read: Option<tokio::time::Instant> = None;
        let mut keys_counted: Option<tokio::time::Instant> = None;
        loop {
            ticker.tick().await;
            let started = tokio::time::Instant::now();
            let swept = self.tracker.sweep_with(true).await;
            crate::telemetry::swept(started.elapsed());
            if cfg!(feature = "metrics")
                && levels_read.is_none_or(|at| at.elapsed() >= READ_LEVELS_EVERY)
            {
                levels_read = Some(tokio::time::Instant::now());
                let count_keys = keys_counted.is_none_or(|at| at.elapsed() >= COUNT_KEYS_EVERY);
                if count_keys {
                    keys_counted = Some(tokio::time::Instant::now());
                }
                self.tracker.report_levels(count_keys).await;
            }
            match swept {
                Ok(report) => {
                    if failing {
                        tracing::info!(target: "timeout", "the store answers again: sweeping resumed");
                        failing = false;
                    }
                    if report.warnings + report.logouts > 0 {
                        tracing::debug!(target: "timeout", ?report, "swept");
                    }
                }
                Err(err) if !failing => {
                    tracing::error!(
                        target: "timeout",
                        "sweep failed: {err}; warnings and logouts wait until the store answers \
                         (the gate still refuses expired sessions it can check)"
                    );
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// How often the sweeper reads the metrics' gauges.
const READ_LEVELS_EVERY: Duration = Duration::from_secs(1);
/// How often the sweeper counts the tracked keys for the metrics.
const COUNT_KEYS_EVERY: Duration = Duration::from_secs(10);

/// A running sweeper; dropping it stops the sweeper.
#[derive(Debug)]
pub struct SweeperHandle {
    task: JoinHandle<()>,
}

impl SweeperHandle {
    /// Stops the sweeper. Logouts it claimed finish their hooks in tasks of
    /// their own; the runtime's shutdown ends them.
    pub fn stop(self) {
        drop(self);
    }

    /// Whether the sweeper task is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for SweeperHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tracker {
    /// Starts a [`Sweeper`] with the default interval.
    pub fn spawn_sweeper(&self) -> SweeperHandle {
        Sweeper::new(self.clone()).spawn()
    }
}
