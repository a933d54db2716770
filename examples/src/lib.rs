//! What the demos share: their command line and the browser page.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde_json::{Value, json};

pub mod redis_sessions;
pub mod sso;
use timeout_core::{ConfigError, Policy, Tracker, passive::PassiveRules};

/// The page's files, served by every demo (no build step).
pub mod page {
    /// `GET /`
    pub const INDEX_HTML: &str = include_str!("../static/index.html");
    /// `GET /static/app.js`
    pub const APP_JS: &str = include_str!("../static/app.js");
    /// `GET /static/style.css`
    pub const STYLE_CSS: &str = include_str!("../static/style.css");

    /// The page's files: path, content type, body.
    pub const FILES: [(&str, &str, &str); 3] = [
        ("/", "text/html; charset=utf-8", INDEX_HTML),
        ("/static/app.js", "text/javascript; charset=utf-8", APP_JS),
        ("/static/style.css", "text/css; charset=utf-8", STYLE_CSS),
    ];
}

/// A demo's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    /// 127.0.0.1 port (0: any free port).
    pub port: u16,
    /// Idle timeout in seconds, over the properties file.
    pub timeout_seconds: Option<u64>,
    /// Warning lead in seconds, over the properties file.
    pub warn_seconds: Option<u64>,
    /// A properties file with `timeout.session.*` keys.
    pub properties: Option<PathBuf>,
    /// Share the timeout state (and the demo's sessions) in this Redis.
    pub redis: Option<String>,
    /// How many replicas to start, on consecutive ports (with `redis`).
    pub replicas: u16,
    /// How long a replica holds a claimed logout, unless renewed, before
    /// another may take it.
    pub lease_ms: Option<u64>,
    /// How long a Redis command may take.
    pub command_timeout_ms: Option<u64>,
    /// Keep the timeout state on this Redis Cluster (comma-separated node
    /// addresses); `redis` then holds only the login sessions.
    pub redis_cluster: Option<Vec<String>>,
    /// How users log in: the password form, or single sign-on through
    /// the demo's identity provider ([`sso`]).
    pub login: LoginMode,
    /// How long the identity provider's own session lasts.
    pub idp_session: Duration,
    /// How long the framework's own session lives without a save
    /// (tower-sessions' `OnInactivity`, actix-session's `session_ttl`);
    /// `None`: until the browser closes (axum), 9 hours (actix).
    pub framework_session: Option<Duration>,
    /// Fault injection for `scripts/chaos.sh`; not for real use.
    pub faults: Faults,
}

/// How the demo's users log in (`--login password|sso`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginMode {
    /// The demo's own form; the timeout asks "Login to continue".
    #[default]
    Password,
    /// The demo's identity provider; the timeout asks "Session expired"
    /// and renews through the provider.
    Sso,
}

impl LoginMode {
    /// What the page reads at `GET /api/demo`.
    pub fn demo_json(self) -> String {
        let login = match self {
            LoginMode::Password => "password",
            LoginMode::Sso => "sso",
        };
        json!({ "login": login }).to_string()
    }
}

/// Faults the chaos harness injects into a demo replica (`--hook-delay-ms`,
/// `--hang-hook-user`, `--hook-timeout-ms`, `--hook-retries`,
/// `--clock-skew-ms`). Test-only: a real application has none of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Each timeout hook takes this long before it completes.
    pub hook_delay_ms: u64,
    /// The timeout hook of this user never returns.
    pub hang_hook_user: Option<String>,
    /// The tracker's hook timeout.
    pub hook_timeout_ms: Option<u64>,
    /// The tracker's hook retries.
    pub hook_retries: Option<u32>,
    /// The replica's clock runs this far ahead of the real time.
    pub clock_skew_ms: u64,
}

impl DemoArgs {
    /// The help text.
    pub const USAGE: &str = "usage: <demo> [--port PORT] [--timeout-seconds N] [--warn-seconds N] [--properties FILE]\n\
        \x20      [--login password|sso] [--idp-session-seconds N] [--framework-session-seconds N]\n\
        \x20      [--redis URL [--replicas N] [--lease-ms N] [--command-timeout-ms N]\n\
        \x20      [--redis-cluster URL,URL,..]]\n\
        \x20      (--redis and after: axum-demo only; for scripts/chaos.sh also --hook-delay-ms N,\n\
        \x20      --hang-hook-user NAME, --hook-timeout-ms N, --hook-retries N, --clock-skew-ms N)\n\
        \n\
        Defaults: port 3000, a 60-second idle timeout with a warning 20 seconds before,\n\
        the password login (--login sso: the demo's identity provider, whose own\n\
        session lasts --idp-session-seconds, 600 by default). A framework session\n\
        shorter than the idle timeout (--framework-session-seconds) shows the audit\n\
        record of a framework session that expired first.\n\
        With --redis, the timeout state and the sessions live in that Redis, and\n\
        --replicas N starts N servers on ports PORT, PORT+1, ... sharing it.\n\
        The properties file takes the keys of the README (timeout.session.*); the\n\
        flags override it. The page's once-a-second poll carries auto=true and is passive.";

    /// Parses the arguments after the program name.
    ///
    /// ```
    /// use examples::DemoArgs;
    ///
    /// let args = DemoArgs::parse(["--timeout-seconds", "5", "--warn-seconds=3"].map(String::from))?;
    /// assert_eq!((args.timeout_seconds, args.warn_seconds), (Some(5), Some(3)));
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<DemoArgs, String> {
        let mut parsed = DemoArgs {
            port: 3000,
            timeout_seconds: None,
            warn_seconds: None,
            properties: None,
            redis: None,
            replicas: 1,
            lease_ms: None,
            command_timeout_ms: None,
            redis_cluster: None,
            login: LoginMode::Password,
            idp_session: Duration::from_secs(600),
            framework_session: None,
            faults: Faults::default(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            if flag == "--help" || flag == "-h" {
                return Err("help".to_owned());
            }
            let value = match inline.or_else(|| args.next()) {
                Some(value) => value,
                None => return Err(format!("{flag} needs a value")),
            };
            let number = |what: &str| -> Result<u64, String> {
                value
                    .parse()
                    .map_err(|_| format!("{flag} {value:?}: expected {what}"))
            };
            match flag.as_str() {
                "--port" => {
                    parsed.port = value
                        .parse()
                        .map_err(|_| format!("--port {value:?}: expected a port number 0-65535"))?
                }
                "--timeout-seconds" => parsed.timeout_seconds = Some(number("whole seconds")?),
                "--warn-seconds" => parsed.warn_seconds = Some(number("whole seconds")?),
                "--properties" => parsed.properties = Some(PathBuf::from(value)),
                "--redis" => parsed.redis = Some(value),
                "--replicas" => {
                    parsed.replicas = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| format!("--replicas {value:?}: expected 1 to 64"))?
                }
                "--lease-ms" => parsed.lease_ms = Some(number("milliseconds")?),
                "--command-timeout-ms" => parsed.command_timeout_ms = Some(number("milliseconds")?),
                "--redis-cluster" => {
                    parsed.redis_cluster = Some(value.split(',').map(str::to_owned).collect())
                }
                "--hook-delay-ms" => parsed.faults.hook_delay_ms = number("milliseconds")?,
                "--hang-hook-user" => parsed.faults.hang_hook_user = Some(value),
                "--hook-timeout-ms" => {
                    parsed.faults.hook_timeout_ms = Some(number("milliseconds")?)
                }
                "--hook-retries" => {
                    parsed.faults.hook_retries = Some(
                        u32::try_from(number("a count")?)
                            .map_err(|_| format!("{flag} {value:?}: too large"))?,
                    )
                }
                "--clock-skew-ms" => parsed.faults.clock_skew_ms = number("milliseconds")?,
                "--login" => {
                    parsed.login = match value.as_str() {
                        "password" => LoginMode::Password,
                        "sso" => LoginMode::Sso,
                        _ => return Err(format!("--login {value:?}: expected password or sso")),
                    }
                }
                "--framework-session-seconds" => {
                    parsed.framework_session = Some(Duration::from_secs(number("whole seconds")?))
                }
                "--idp-session-seconds" => {
                    parsed.idp_session = Duration::from_secs(number("whole seconds")?)
                }
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        if parsed.redis_cluster.is_some() && parsed.redis.is_none() {
            return Err("--redis-cluster needs --redis URL for the login sessions".into());
        }
        if parsed.replicas > 1 && parsed.redis.is_none() {
            return Err("--replicas needs --redis URL: replicas share their state there".into());
        }
        Ok(parsed)
    }

    /// The policy: the demo's defaults, then the properties file, then the
    /// flags; every value checked by the core.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let mut builder = Policy::builder()
            .enabled(true)
            .idle_timeout(Duration::from_secs(60))
            .warn_before(Duration::from_secs(20))
            .passive(PassiveRules::default().with_query_flag("auto", Some("true")));
        if let Some(path) = &self.properties {
            builder = builder.properties_file(path)?;
        }
        if let Some(seconds) = self.timeout_seconds {
            builder = builder.idle_timeout(Duration::from_secs(seconds));
        }
        if let Some(seconds) = self.warn_seconds {
            builder = builder.warn_before(Duration::from_secs(seconds));
        }
        builder.build()
    }
}

/// The README's code blocks (axum, actix-web and the core), compiled as
/// doc tests here, the one crate that has every adapter, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The READMEs of the published crates, compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../../timeout-core/README.md")]
#[doc = include_str!("../../timeout-tower/README.md")]
#[doc = include_str!("../../timeout-actix/README.md")]
#[doc = include_str!("../../timeout-redis/README.md")]
struct CrateReadmeDoctests;

/// Reads the command line and the policy. `Err` is the exit code, after
/// the help or what is wrong has been printed.
pub fn start_up() -> Result<(DemoArgs, Policy), ExitCode> {
    let (args, policy) = start_up_args()?;
    if args.redis.is_some() {
        eprintln!("--redis: this demo runs on the memory store; axum-demo takes --redis");
        return Err(ExitCode::from(2));
    }
    Ok((args, policy))
}

/// [`start_up`] with every argument.
pub fn start_up_args() -> Result<(DemoArgs, Policy), ExitCode> {
    let args = match DemoArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message == "help" => {
            println!("{}", DemoArgs::USAGE);
            return Err(ExitCode::SUCCESS);
        }
        Err(message) => {
            eprintln!("{message}\n\n{}", DemoArgs::USAGE);
            return Err(ExitCode::from(2));
        }
    };
    match args.policy() {
        Ok(policy) => Ok((args, policy)),
        Err(err) => {
            eprintln!("invalid timeout settings: {err}");
            Err(ExitCode::from(2))
        }
    }
}

/// Where the adapters serve the browser client's module by default (the
/// page imports it from there).
pub fn client_module_path() -> String {
    format!("{}/idle-timeout.js", timeout_core::adapter::CLIENT_PATH)
}

/// The 401 body of a wrong login.
pub const WRONG_LOGIN_JSON: &str = r#"{"error":"wrong user name or password (any name of up to 64 characters, password \"demo\")"}"#;

/// The user name of a login request `{"user": .., "password": "demo"}`, or
/// `None` if the login is wrong.
pub fn demo_login(body: &[u8]) -> Option<String> {
    let credentials: Value = serde_json::from_slice(body).ok()?;
    let user = credentials["user"].as_str().unwrap_or("").trim();
    let password = credentials["password"].as_str().unwrap_or("");
    (!user.is_empty() && user.chars().count() <= 64 && password == "demo").then(|| user.to_owned())
}

/// What the page learns about the logged-in user: the name and the timings
/// its dialogs count down.
pub fn user_json(tracker: &Tracker, name: &str, groups: &[String]) -> Value {
    let policy = tracker.policy();
    let timeout = policy.timeout_for(groups.iter().map(String::as_str));
    json!({
        "user": name,
        "timeoutSeconds": timeout.as_secs_f64(),
        "warnSeconds": policy.warn_before().as_secs_f64(),
    })
}

/// The text of a note request `{"text": ".."}`.
pub fn note_text(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value["text"].as_str().map(str::to_owned)
}

/// Each user's note, in memory.
#[derive(Debug, Clone, Default)]
pub struct Notes(Arc<Mutex<HashMap<String, String>>>);

impl Notes {
    /// The note of `user` (empty if none).
    pub fn get(&self, user: &str) -> String {
        let notes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        notes.get(user).cloned().unwrap_or_default()
    }

    /// Replaces the note of `user`.
    pub fn set(&self, user: &str, text: String) {
        let mut notes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        notes.insert(user.to_owned(), text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_and_bad_values_say_what_is_expected() {
        let args = DemoArgs::parse(["--port", "0", "--timeout-seconds", "5"].map(String::from))
            .expect("valid");
        assert_eq!(args.port, 0);
        let policy = DemoArgs {
            warn_seconds: Some(3),
            ..args
        }
        .policy()
        .expect("valid policy");
        assert_eq!(policy.idle_timeout(), Duration::from_secs(5));
        assert_eq!(policy.warn_before(), Duration::from_secs(3));

        let err = DemoArgs::parse(["--timeout-seconds", "five"].map(String::from)).unwrap_err();
        assert!(err.contains("expected whole seconds"), "{err}");
        let err = DemoArgs::parse(["--port"].map(String::from)).unwrap_err();
        assert!(err.contains("needs a value"), "{err}");
        let err = DemoArgs::parse(["--login", "ldap"].map(String::from)).unwrap_err();
        assert!(err.contains("expected password or sso"), "{err}");
        let sso = DemoArgs::parse(["--login", "sso"].map(String::from)).expect("valid");
        assert_eq!(sso.login, LoginMode::Sso);
        let err = DemoArgs::parse(["--colour", "red"].map(String::from)).unwrap_err();
        assert!(err.contains("unknown option"), "{err}");

        let too_long_warning =
            DemoArgs::parse(["--timeout-seconds", "5", "--warn-seconds", "5"].map(String::from))
                .expect("parses")
                .policy()
                .unwrap_err();
        assert!(
            too_long_warning
                .to_string()
                .contains("warning must come before"),
            "{too_long_warning}"
        );
    }
}
