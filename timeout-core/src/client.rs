//! The browser client: a dependency-free ES module and its stylesheet that
//! every adapter serves, so an app includes one `<script type="module">`
//! line instead of copying a demo; and the passive status answer the client
//! counts its warning down from.
//!
//! The files are embedded in the binary. They are answered with an `ETag`
//! of their content and `Cache-Control: no-cache`, so a browser keeps them
//! and revalidates with a `304` until a new release changes them.

use std::sync::LazyLock;

use serde_json::json;

use crate::{Refusal, Subject, Tracker};

/// Default path of the passive status answer: time left, warning lead.
pub const STATUS_PATH: &str = "/rest/user/timeout/status";
/// Default folder of the client's files: `<folder>/idle-timeout.js` and
/// `<folder>/idle-timeout.css`.
pub const CLIENT_PATH: &str = "/rest/user/timeout/client";

/// One of the client's files.
///
/// ```
/// use timeout_core::adapter::ClientAsset;
///
/// let js = ClientAsset::named("idle-timeout.js").expect("the module");
/// assert_eq!(js.content_type, "text/javascript; charset=utf-8");
/// let fresh = js.answer(None);
/// assert_eq!((fresh.status, fresh.body.is_empty()), (200, false));
/// let cached = js.answer(Some(fresh.etag));
/// assert_eq!((cached.status, cached.body), (304, ""));
/// ```
#[derive(Debug)]
pub struct ClientAsset {
    /// The file name under the client folder.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its content.
    pub body: &'static str,
    etag: LazyLock<String>,
}

/// How to answer a request for a [`ClientAsset`]; the same for every adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssetAnswer {
    /// 200, or 304 when the browser's copy is current.
    pub status: u16,
    /// `Content-Type` (sent with the 200 only).
    pub content_type: &'static str,
    /// `ETag`, a strong validator of the content.
    pub etag: &'static str,
    /// `Cache-Control`: keep, but revalidate, since the path does not change
    /// between releases.
    pub cache_control: &'static str,
    /// The body; empty for a 304.
    pub body: &'static str,
}

static ASSETS: [ClientAsset; 2] = [
    ClientAsset {
        name: "idle-timeout.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../client/idle-timeout.js"),
        etag: LazyLock::new(|| etag_of(include_str!("../client/idle-timeout.js"))),
    },
    ClientAsset {
        name: "idle-timeout.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../client/idle-timeout.css"),
        etag: LazyLock::new(|| etag_of(include_str!("../client/idle-timeout.css"))),
    },
];

impl ClientAsset {
    /// Every file of the client.
    pub fn all() -> &'static [ClientAsset] {
        &ASSETS
    }

    /// The file called `name` (no folder), if it is one of the client's.
    pub fn named(name: &str) -> Option<&'static ClientAsset> {
        ASSETS.iter().find(|asset| asset.name == name)
    }

    /// Its `ETag` header value, quoted.
    pub fn etag(&'static self) -> &'static str {
        self.etag.as_str()
    }

    /// The answer to a `GET` carrying `if_none_match` (the raw header).
    pub fn answer(&'static self, if_none_match: Option<&str>) -> AssetAnswer {
        let etag = self.etag();
        let current = if_none_match.is_some_and(|header| {
            header
                .split(',')
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == etag || tag == "*")
        });
        AssetAnswer {
            status: if current { 304 } else { 200 },
            content_type: self.content_type,
            etag,
            cache_control: "no-cache",
            body: if current { "" } else { self.body },
        }
    }
}

/// FNV-1a over the content: not a security check, only a name for this
/// version of the file that changes when the file does.
fn etag_of(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}-{}\"", body.len())
}

/// The status answer for an admitted `subject`: who, how long is left by
/// the store's clock (`null` when the subject does not time out), and the
/// policy's timings, so the client counts down from the server's deadline
/// rather than from the browser's clock. Reading it is passive. A store
/// that does not answer gives the 503 refusal (fail closed).
///
/// ```
/// use timeout_core::{Policy, Subject, Tracker, adapter::status_json};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::new(Policy::builder().enabled(true).build()?);
/// let alice = Subject::new("s1", "alice")?;
/// tracker.login(&alice).await;
/// let body = status_json(&tracker, &alice).await.expect("the memory store answers");
/// let status: serde_json::Value = serde_json::from_str(&body)?;
/// assert_eq!(status["user"], "alice");
/// assert_eq!(status["timeoutSeconds"], 480.0 * 60.0);
/// assert!(status["secondsLeft"].as_f64().is_some_and(|s| s > 0.0));
/// # Ok(()) }
/// ```
pub async fn status_json(tracker: &Tracker, subject: &Subject) -> Result<String, Refusal> {
    let policy = tracker.policy();
    let left = tracker.time_left(subject).await.map_err(|err| {
        // Logged (at most every 10 s) and counted like any store failure;
        // without the store there is no time left to tell.
        let _ = tracker.store_failed(&err);
        crate::tracker::UNAVAILABLE
    })?;
    Ok(json!({
        "user": subject.user(),
        "secondsLeft": left.map(|left| left.as_secs_f64()),
        "timeoutSeconds": policy.timeout_for(subject.groups()).as_secs_f64(),
        "warnSeconds": policy.warn_before().as_secs_f64(),
    })
    .to_string())
}

/// The client file at `path` when it lies directly in `folder`:
/// `/rest/user/timeout/client/idle-timeout.js` in the default folder is the
/// module; anything else is `None`.
pub fn asset_at(folder: &str, path: &str) -> Option<&'static ClientAsset> {
    let name = path.strip_prefix(folder)?.strip_prefix('/')?;
    ClientAsset::named(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_quoted_etag_and_revalidates() {
        let tags: Vec<_> = ClientAsset::all().iter().map(ClientAsset::etag).collect();
        assert_eq!(tags.len(), 2);
        assert_ne!(tags[0], tags[1]);
        for asset in ClientAsset::all() {
            let etag = asset.etag();
            assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
            assert_eq!(asset.answer(None).status, 200);
            assert_eq!(asset.answer(Some("\"stale\"")).status, 200);
            let weak = format!("\"stale\", W/{etag}");
            assert_eq!(asset.answer(Some(&weak)).status, 304);
            assert_eq!(asset.answer(Some(etag)).body, "");
        }
    }

    #[test]
    fn a_path_outside_the_folder_or_an_unknown_file_is_no_asset() {
        assert!(asset_at(CLIENT_PATH, "/rest/user/timeout/client/idle-timeout.js").is_some());
        assert!(asset_at(CLIENT_PATH, "/rest/user/timeout/client/../gate.rs").is_none());
        assert!(asset_at(CLIENT_PATH, "/rest/user/timeout/clientidle-timeout.js").is_none());
        assert!(asset_at(CLIENT_PATH, "/other/idle-timeout.js").is_none());
    }

    #[test]
    fn the_etag_changes_with_the_content() {
        assert_ne!(etag_of("a"), etag_of("b"));
        assert_eq!(etag_of("same"), etag_of("same"));
    }
}
