//! Property tests: random sequences of activity, passive requests, resets,
//! logouts and time, run against the tracker with a manual clock and
//! compared step by step with a plain model of the rules.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use proptest::prelude::*;
use timeout_core::{
    Decision, Notification, Policy, RequestKind, Scope, Subject, Timestamp, Tracker,
    clock::ManualClock, events::Subscription, hook_fn, store::Expired,
};

const T0: u64 = 1_700_000_000_000;
const WARN_MS: u64 = 10_000;
/// Users: name, groups. `ex` is exempt.
const USERS: [(&str, &[&str]); 4] = [
    ("u0", &[]),
    ("u1", &["long"]),
    ("u2", &["short", "long"]),
    ("ex", &[]),
];

fn timeout_of(user: usize) -> u64 {
    match user {
        1 | 2 => 120_000, // the largest of the user's groups
        _ => 60_000,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Request(usize, RequestKind),
    Reset(usize),
    Logout(usize),
    Sweep,
}

fn op(max_advance: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..=max_advance).prop_map(Op::Advance),
        3 => (0..USERS.len(), prop_oneof![Just(RequestKind::Activity), Just(RequestKind::Passive)])
            .prop_map(|(u, k)| Op::Request(u, k)),
        1 => (0..USERS.len()).prop_map(Op::Reset),
        1 => (0..USERS.len()).prop_map(Op::Logout),
        1 => Just(Op::Sweep),
    ]
}

/// What the model knows of one user.
#[derive(Debug, Default)]
struct Model {
    /// Login generation: a timeout or logout makes the next request a new
    /// login with a new session id.
    generation: u32,
    /// Last activity of the current period, if tracked.
    last: Option<u64>,
    warned: bool,
    /// Logouts the tracker must have run for this user.
    timeouts: usize,
}

struct Harness {
    clock: ManualClock,
    tracker: Tracker,
    hooks: Arc<Mutex<Vec<(Expired, u64)>>>,
    subs: Vec<Option<Subscription>>,
    events: Vec<Vec<(Notification, u32)>>,
    models: Vec<Model>,
    now: u64,
    sweep_each_advance: bool,
}

impl Harness {
    fn new(scope: Scope, sweep_each_advance: bool) -> Harness {
        let clock = ManualClock::new(Timestamp::from_millis(T0));
        let policy = Policy::builder()
            .enabled(true)
            .idle_timeout(Duration::from_secs(60))
            .warn_before(Duration::from_millis(WARN_MS))
            .group("short", Duration::from_secs(30))
            .group("long", Duration::from_secs(120))
            .exempt(["ex"])
            .scope(scope)
            .build()
            .unwrap();
        let hooks: Arc<Mutex<Vec<(Expired, u64)>>> = Arc::default();
        let (record, hook_clock) = (hooks.clone(), clock.clone());
        let tracker = Tracker::builder(policy)
            .clock(clock.clone())
            .hook(hook_fn("record", move |e| {
                let record = record.clone();
                let now = timeout_core::clock::Clock::now(&hook_clock).as_millis();
                async move {
                    record.lock().unwrap().push((e, now));
                    Ok(())
                }
            }))
            .build();
        Harness {
            clock,
            tracker,
            hooks,
            subs: (0..USERS.len()).map(|_| None).collect(),
            events: vec![Vec::new(); USERS.len()],
            models: (0..USERS.len()).map(|_| Model::default()).collect(),
            now: T0,
            sweep_each_advance,
        }
    }

    fn subject(&self, u: usize) -> Subject {
        let (name, groups) = USERS[u];
        Subject::new(
            format!("{name}-session-{}", self.models[u].generation),
            name,
        )
        .unwrap()
        .with_groups(groups.iter().copied())
    }

    /// Collects what each subscription received, tagged with its generation.
    fn drain(&mut self) {
        for u in 0..USERS.len() {
            let generation = self.models[u].generation;
            if let Some(sub) = &mut self.subs[u] {
                loop {
                    match sub.try_next() {
                        Ok(Some(n)) => self.events[u].push((n, generation)),
                        Ok(None) => break,
                        Err(_) => {
                            self.subs[u] = None;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The user's period ended by timeout: the model moves to a new login.
    fn timed_out(&mut self, u: usize) {
        let m = &mut self.models[u];
        m.timeouts += 1;
        m.last = None;
        m.warned = false;
        m.generation += 1;
    }

    async fn request(
        &mut self,
        u: usize,
        kind: RequestKind,
        reset: bool,
    ) -> Result<(), TestCaseError> {
        let subject = self.subject(u);
        if self.models[u].last.is_none() && self.subs[u].is_none() {
            self.subs[u] = Some(self.tracker.subscribe(&subject));
        }
        let decision = if reset {
            self.tracker.reset(Some(&subject)).await
        } else {
            self.tracker.check(Some(&subject), kind).await
        };
        self.drain();
        let now = self.now;
        let timeout = timeout_of(u);
        if USERS[u].0 == "ex" {
            prop_assert_eq!(decision, Decision::Exempt);
            return Ok(());
        }
        let m = &mut self.models[u];
        match m.last {
            Some(last) if now >= last + timeout => {
                prop_assert_eq!(decision, Decision::TimedOut, "idle past the timeout");
                self.timed_out(u);
            }
            Some(last) if kind == RequestKind::Passive && !reset => {
                prop_assert_eq!(
                    decision,
                    Decision::Allowed {
                        deadline: Timestamp::from_millis(last + timeout)
                    }
                );
            }
            Some(_) => {
                prop_assert_eq!(
                    decision,
                    Decision::Allowed {
                        deadline: Timestamp::from_millis(now + timeout)
                    }
                );
                if m.last != Some(now) {
                    m.warned = false;
                }
                m.last = Some(now);
            }
            None => {
                // A new login: tracking starts, even on a passive request.
                prop_assert_eq!(
                    decision,
                    Decision::Allowed {
                        deadline: Timestamp::from_millis(now + timeout)
                    }
                );
                m.last = Some(now);
                m.warned = false;
            }
        }
        Ok(())
    }

    async fn sweep(&mut self) -> Result<(), TestCaseError> {
        let report = self.tracker.sweep().await.unwrap();
        self.drain();
        let now = self.now;
        let (mut warnings, mut logouts) = (0, 0);
        for u in 0..USERS.len() {
            let Some(last) = self.models[u].last else {
                continue;
            };
            let deadline = last + timeout_of(u);
            if now >= deadline {
                logouts += 1;
                self.timed_out(u);
            } else if now + WARN_MS >= deadline && !self.models[u].warned {
                warnings += 1;
                self.models[u].warned = true;
            }
        }
        prop_assert_eq!((report.warnings, report.logouts), (warnings, logouts));
        Ok(())
    }

    async fn run(&mut self, ops: &[Op]) -> Result<(), TestCaseError> {
        for op in ops {
            match *op {
                Op::Advance(ms) => {
                    self.now += ms;
                    self.clock.set(Timestamp::from_millis(self.now));
                    if self.sweep_each_advance {
                        self.sweep().await?;
                    }
                }
                Op::Request(u, kind) => self.request(u, kind, false).await?,
                Op::Reset(u) => self.request(u, RequestKind::Activity, true).await?,
                Op::Logout(u) => {
                    let subject = self.subject(u);
                    self.tracker.logout(&subject).await.unwrap();
                    self.drain();
                    let m = &mut self.models[u];
                    if m.last.is_some() {
                        m.last = None;
                        m.warned = false;
                        m.generation += 1;
                    }
                    self.subs[u] = None;
                }
                Op::Sweep => self.sweep().await?,
            }
        }
        // Let every remaining period run out: each is logged out once. A
        // prompt sweeper keeps its pace so the warnings still go out.
        let step = if self.sweep_each_advance {
            WARN_MS - 1
        } else {
            1_000_000
        };
        while self.models.iter().any(|m| m.last.is_some()) {
            self.now += step;
            self.clock.set(Timestamp::from_millis(self.now));
            self.sweep().await?;
        }
        self.check_history()
    }

    fn check_history(&self) -> Result<(), TestCaseError> {
        let hooks = self.hooks.lock().unwrap();
        for (expired, at) in hooks.iter() {
            let u = USERS.iter().position(|(n, _)| *n == expired.user).unwrap();
            prop_assert_ne!(USERS[u].0, "ex", "exempt users never time out");
            prop_assert!(
                expired.deadline.as_millis() <= *at,
                "logged out at {} before the deadline {:?}",
                at,
                expired.deadline
            );
        }
        for (u, (name, _)) in USERS.iter().enumerate() {
            let runs = hooks.iter().filter(|(e, _)| e.user == *name).count();
            prop_assert_eq!(
                runs,
                self.models[u].timeouts,
                "hooks of {} run once per timeout",
                name
            );
            if *name == "ex" {
                prop_assert!(self.events[u].is_empty(), "exempt users get no event");
                continue;
            }
            // Per login generation: at most one logout, and it is the last
            // event; with a sweep after every step, a warning precedes it.
            let mut by_generation: HashMap<u32, Vec<&Notification>> = HashMap::new();
            for (n, g) in &self.events[u] {
                by_generation.entry(*g).or_default().push(n);
            }
            for (g, events) in by_generation {
                let logouts = events.iter().filter(|n| n.is_logout()).count();
                prop_assert!(
                    logouts <= 1,
                    "{} got {} logouts in generation {}",
                    name,
                    logouts,
                    g
                );
                if logouts == 1 {
                    prop_assert!(
                        events.last().unwrap().is_logout(),
                        "nothing after the logout"
                    );
                    if self.sweep_each_advance {
                        prop_assert!(
                            events.len() >= 2 && !events[events.len() - 2].is_logout(),
                            "a warning precedes the logout of {}: {:?}",
                            name,
                            events
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// Timers on: hook attempts are bounded by a timeout, as in every server.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// With a sweep after every step shorter than the warning lead time (as
    /// the background sweeper does), every rule holds, warnings included.
    #[test]
    fn rules_hold_with_a_prompt_sweeper(
        ops in prop::collection::vec(op(WARN_MS - 1), 1..80),
        per_session in any::<bool>(),
    ) {
        let scope = if per_session { Scope::Session } else { Scope::User };
        runtime().block_on(Harness::new(scope, true).run(&ops))?;
    }

    /// With sweeps at random and long jumps of time, the gate alone enforces
    /// the timeout and every expiry still runs exactly once.
    #[test]
    fn rules_hold_with_random_sweeps(
        ops in prop::collection::vec(op(150_000), 1..80),
        per_session in any::<bool>(),
    ) {
        let scope = if per_session { Scope::Session } else { Scope::User };
        runtime().block_on(Harness::new(scope, false).run(&ops))?;
    }

    /// A user's timeout is the largest among the groups that have one, or the
    /// global timeout when none does.
    #[test]
    fn group_resolution_is_the_maximum(
        global in 1u64..10_000,
        groups in prop::collection::btree_map("[a-e]", 1u64..10_000, 0..5),
        member_of in prop::collection::vec("[a-h]", 0..6),
    ) {
        let mut builder = Policy::builder().enabled(true).warn_before(Duration::ZERO)
            .idle_timeout(Duration::from_secs(global));
        for (name, s) in &groups {
            builder = builder.group(name.clone(), Duration::from_secs(*s));
        }
        let policy = builder.build().unwrap();
        let expected = member_of
            .iter()
            .filter_map(|g| groups.get(g))
            .max()
            .map_or(global, |s| *s);
        prop_assert_eq!(
            policy.timeout_for(member_of.iter().map(String::as_str)),
            Duration::from_secs(expected)
        );
    }
}
