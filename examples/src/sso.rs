//! A small identity provider inside the demos, so "Session expired" ->
//! "Renew session" runs a real single sign-on round trip: the app redirects
//! to the provider, the provider signs an expiring assertion of who logged
//! in, and the app checks the signature, the expiry and its own state
//! nonce before it logs the user in. Framework-free: each demo maps
//! [`Answer`] to its response type.
//!
//! The routes (`/sso/*` belong to the app, `/idp/*` to the provider):
//!
//! - `GET /sso/start`: a fresh state nonce in a cookie, then to the provider.
//! - `GET /idp/authorize?state=..`: with a live provider session (its own
//!   cookie), straight back to the app; else the provider's login form.
//! - `POST /idp/authorize`: the form; starts the provider session.
//! - `GET /sso/callback?assertion=..&state=..`: checked by [`Sso::callback`];
//!   the demo logs the user in and answers [`Sso::logged_in_page`], which
//!   closes the pop-up (or goes to `/` after a full-page login).
//!
//! The provider session outlives the app's idle timeout, as a real one
//! does, so renewing usually asks nothing; the provider asks only when its
//! own session is gone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long an assertion may take from the provider to the app.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);
/// The app's cookie holding the state nonce of a sign-in in progress.
const STATE_COOKIE: &str = "demo_sso_state";
/// The provider's own session cookie.
const IDP_COOKIE: &str = "demo_idp";

/// An answer in framework-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Header name and value pairs (`Location`, `Set-Cookie`, ...).
    pub headers: Vec<(&'static str, String)>,
    /// An HTML body (may be empty).
    pub body: String,
}

impl Answer {
    fn redirect(location: String) -> Answer {
        Answer {
            status: 303,
            headers: vec![("location", location), ("cache-control", "no-store".into())],
            body: String::new(),
        }
    }

    fn html(status: u16, body: String) -> Answer {
        Answer {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ],
            body,
        }
    }

    fn cookie(mut self, cookie: String) -> Answer {
        self.headers.push(("set-cookie", cookie));
        self
    }
}

/// The app's side and the provider's side of the demo's single sign-on.
#[derive(Clone)]
pub struct Sso {
    key: [u8; 32],
    idp_session: Duration,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("idp_session", &self.idp_session)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Sso {
    /// A provider signing with `key` whose own sessions last `idp_session`.
    pub fn new(key: [u8; 32], idp_session: Duration) -> Sso {
        Sso { key, idp_session }
    }

    /// A provider with a random key (the app and the provider live in one
    /// process, so they share it without configuration).
    pub fn random(idp_session: Duration) -> Sso {
        let generated = actix_web::cookie::Key::generate();
        let mut key = [0u8; 32];
        key.copy_from_slice(&generated.signing()[..32]);
        Sso::new(key, idp_session)
    }

    /// `GET /sso/start`: remember a fresh nonce, go to the provider.
    pub fn start(&self) -> Answer {
        let nonce = self.nonce();
        Answer::redirect(format!("/idp/authorize?state={nonce}")).cookie(format!(
            "{STATE_COOKIE}={nonce}; Path=/sso; HttpOnly; SameSite=Lax; Max-Age=600"
        ))
    }

    /// `GET /idp/authorize`: back to the app at once when the provider
    /// session is live, else its login form.
    pub fn authorize(&self, query: &str, cookies: &str) -> Answer {
        let Some(state) = param(query.as_bytes(), "state").filter(|s| is_token(s)) else {
            return Answer::html(
                400,
                page(
                    "Identity provider",
                    "<p>Missing sign-in state: start again from the app.</p>",
                ),
            );
        };
        match cookie(cookies, IDP_COOKIE).and_then(|value| self.verify(&value, "idp")) {
            Some(user) => self.back_to_app(&user, &state),
            None => Answer::html(200, login_form(&state, "", "")),
        }
    }

    /// `POST /idp/authorize`: the provider's login form (any name, password
    /// `demo`); starts the provider session.
    pub fn authorize_form(&self, body: &[u8]) -> Answer {
        let state = param(body, "state")
            .filter(|s| is_token(s))
            .unwrap_or_default();
        let user = param(body, "user").unwrap_or_default();
        let user = user.trim();
        let password = param(body, "password").unwrap_or_default();
        if state.is_empty() {
            return Answer::html(
                400,
                page(
                    "Identity provider",
                    "<p>Missing sign-in state: start again from the app.</p>",
                ),
            );
        }
        if user.is_empty() || user.chars().count() > 64 || password != "demo" {
            return Answer::html(
                401,
                login_form(
                    &state,
                    user,
                    "Wrong user name or password (the password is demo).",
                ),
            );
        }
        let session = self.sign(user, "idp", self.idp_session);
        self.back_to_app(user, &state).cookie(format!(
            "{IDP_COOKIE}={session}; Path=/idp; HttpOnly; SameSite=Lax; Max-Age={}",
            self.idp_session.as_secs()
        ))
    }

    /// `GET /sso/callback`: the user the assertion names, once its
    /// signature, expiry and state are right; else the page to answer.
    pub fn callback(&self, query: &str, cookies: &str) -> Result<String, Answer> {
        let refuse = |why: &str| {
            Answer::html(
                401,
                page(
                    "Sign-in failed",
                    &format!("<p>{why}</p><p><a href=\"/sso/start\">Try again</a></p>"),
                ),
            )
        };
        let assertion =
            param(query.as_bytes(), "assertion").ok_or_else(|| refuse("No assertion."))?;
        let state = param(query.as_bytes(), "state").unwrap_or_default();
        let expected = cookie(cookies, STATE_COOKIE).unwrap_or_default();
        if state.is_empty() || state != expected {
            return Err(refuse("The sign-in state does not match this browser's."));
        }
        self.verify(&assertion, &format!("app:{state}"))
            .ok_or_else(|| refuse("The assertion is forged or expired."))
    }

    /// The app's answer once it logged the user in: closes the pop-up and
    /// tells the page that opened it, or goes to the app after a full-page
    /// sign-in. `client` is the path of `idle-timeout.js`.
    pub fn logged_in_page(client: &str) -> Answer {
        let body = page(
            "Signed in",
            &format!(
                "<p>Signed in. You can close this window.</p>\
                 <script type=\"module\">\
                 import {{ completeRenewal }} from '{client}';\
                 if (!completeRenewal()) location.replace('/');\
                 </script>"
            ),
        );
        Answer::html(200, body).cookie(format!(
            "{STATE_COOKIE}=; Path=/sso; HttpOnly; SameSite=Lax; Max-Age=0"
        ))
    }

    fn back_to_app(&self, user: &str, state: &str) -> Answer {
        let assertion = self.sign(user, &format!("app:{state}"), ASSERTION_LIFETIME);
        Answer::redirect(format!("/sso/callback?assertion={assertion}&state={state}"))
    }

    /// `hex(user).expires_ms.mac`: the MAC covers the audience too, so a
    /// provider session cookie is no assertion and an assertion for one
    /// sign-in does not serve another.
    fn sign(&self, user: &str, audience: &str, lifetime: Duration) -> String {
        let expires =
            now_ms().saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
        let body = format!("{}.{expires}", hex(user.as_bytes()));
        format!("{body}.{}", hex(&self.mac(audience, &body)))
    }

    fn verify(&self, token: &str, audience: &str) -> Option<String> {
        let (body, mac) = token.rsplit_once('.')?;
        // Constant-time comparison of the MAC.
        self.keyed(audience, body).verify_slice(&unhex(mac)?).ok()?;
        let (user, expires) = body.split_once('.')?;
        (expires.parse::<u64>().ok()? > now_ms()).then_some(())?;
        String::from_utf8(unhex(user)?).ok()
    }

    fn mac(&self, audience: &str, body: &str) -> Vec<u8> {
        self.keyed(audience, body).finalize().into_bytes().to_vec()
    }

    /// The HMAC of `audience|body` under the provider's key.
    fn keyed(&self, audience: &str, body: &str) -> HmacSha256 {
        // HMAC takes keys of any length: the key is 32 bytes anyway.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(audience.as_bytes());
        mac.update(b"|");
        mac.update(body.as_bytes());
        mac
    }

    fn nonce(&self) -> String {
        hex(&actix_web::cookie::Key::generate().signing()[..16])
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A field of a query string or form body.
fn param(encoded: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A cookie of a `Cookie` header.
fn cookie(header: &str, name: &str) -> Option<String> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><main class=\"card\"><h1>{title}</h1>{content}</main></body></html>"
    )
}

fn login_form(state: &str, user: &str, error: &str) -> String {
    page(
        "Demo identity provider",
        &format!(
            "<form id=\"idp-form\" method=\"post\" action=\"/idp/authorize\">\
             <p class=\"hint\">Any user name; the password is <code>demo</code>.</p>\
             <input type=\"hidden\" name=\"state\" value=\"{state}\">\
             <label for=\"idp-user\">User</label>\
             <input id=\"idp-user\" name=\"user\" autocomplete=\"username\" required maxlength=\"64\" value=\"{}\">\
             <label for=\"idp-password\">Password</label>\
             <input id=\"idp-password\" name=\"password\" type=\"password\" required>\
             <p id=\"idp-error\" class=\"error\" role=\"alert\">{}</p>\
             <button id=\"idp-submit\" type=\"submit\">Sign in</button></form>",
            escape(user),
            escape(error)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(answer: &Answer) -> &str {
        answer
            .headers
            .iter()
            .find(|(name, _)| *name == "location")
            .map(|(_, value)| value.as_str())
            .expect("a redirect")
    }

    fn set_cookie(answer: &Answer) -> String {
        let value = answer
            .headers
            .iter()
            .find(|(name, _)| *name == "set-cookie")
            .map(|(_, value)| value.clone())
            .expect("a cookie");
        value.split(';').next().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_round_trip_names_the_user_and_a_second_one_asks_nothing() {
        let sso = Sso::random(Duration::from_secs(600));
        let start = sso.start();
        let state_cookie = set_cookie(&start);
        let to_idp = location(&start)
            .split_once('?')
            .expect("a query")
            .1
            .to_owned();

        let form = sso.authorize(&to_idp, "");
        assert_eq!(form.status, 200, "no provider session: the form");
        let state = param(to_idp.as_bytes(), "state").expect("state");
        let signed_in =
            sso.authorize_form(format!("state={state}&user=al%20ice&password=demo").as_bytes());
        assert_eq!(signed_in.status, 303);
        let idp_cookie = set_cookie(&signed_in);
        let query = location(&signed_in)
            .split_once('?')
            .expect("a query")
            .1
            .to_owned();
        assert_eq!(sso.callback(&query, &state_cookie), Ok("al ice".to_owned()));

        // The provider session makes the next round trip silent.
        let again = sso.start();
        let state_cookie = set_cookie(&again);
        let to_idp = location(&again)
            .split_once('?')
            .expect("a query")
            .1
            .to_owned();
        let silent = sso.authorize(&to_idp, &idp_cookie);
        assert_eq!(silent.status, 303, "a live provider session asks nothing");
        let query = location(&silent)
            .split_once('?')
            .expect("a query")
            .1
            .to_owned();
        assert_eq!(sso.callback(&query, &state_cookie), Ok("al ice".to_owned()));
    }

    #[test]
    fn forged_expired_replayed_or_foreign_assertions_are_refused() {
        let sso = Sso::random(Duration::from_secs(600));
        let other = Sso::random(Duration::from_secs(600));
        let state = "00ff";
        let cookies = format!("{STATE_COOKIE}={state}");
        let good = sso.sign("alice", &format!("app:{state}"), ASSERTION_LIFETIME);
        assert_eq!(
            sso.callback(&format!("assertion={good}&state={state}"), &cookies),
            Ok("alice".into())
        );

        let forged = other.sign("alice", &format!("app:{state}"), ASSERTION_LIFETIME);
        assert!(
            sso.callback(&format!("assertion={forged}&state={state}"), &cookies)
                .is_err()
        );
        let expired = sso.sign("alice", &format!("app:{state}"), Duration::ZERO);
        assert!(
            sso.callback(&format!("assertion={expired}&state={state}"), &cookies)
                .is_err()
        );
        let tampered = good.replacen(&hex(b"alice"), &hex(b"mallory"), 1);
        assert!(
            sso.callback(&format!("assertion={tampered}&state={state}"), &cookies)
                .is_err()
        );
        // Another browser's sign-in state, or none.
        assert!(
            sso.callback(
                &format!("assertion={good}&state={state}"),
                &format!("{STATE_COOKIE}=abcd")
            )
            .is_err()
        );
        assert!(
            sso.callback(&format!("assertion={good}&state={state}"), "")
                .is_err()
        );
        // A provider session cookie is not an assertion.
        let idp = sso.sign("alice", "idp", Duration::from_secs(60));
        assert!(
            sso.callback(&format!("assertion={idp}&state={state}"), &cookies)
                .is_err()
        );
        // Garbage never panics.
        for junk in ["", ".", "zz.1.zz", "616c696365.x.00", "%FF%FE"] {
            assert!(
                sso.callback(&format!("assertion={junk}&state={state}"), &cookies)
                    .is_err()
            );
        }
    }

    #[test]
    fn the_provider_form_refuses_a_wrong_password_and_a_missing_state() {
        let sso = Sso::random(Duration::from_secs(600));
        assert_eq!(
            sso.authorize_form(b"state=00&user=alice&password=nope")
                .status,
            401
        );
        assert_eq!(sso.authorize_form(b"user=alice&password=demo").status, 400);
        assert_eq!(sso.authorize("", "").status, 400);
        let wrong = sso.authorize_form(b"state=00&user=%3Cb%3E&password=x");
        assert!(
            wrong.body.contains("value=\"&lt;b&gt;\""),
            "the name is kept, escaped: {}",
            wrong.body
        );
        assert!(!wrong.body.contains("<b>"), "echoed input is escaped");
    }
}
