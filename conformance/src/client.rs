//! A browser-like client: a cookie jar, HTTP, the notification socket and
//! the event stream, each call failing with a message that says what broke.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use reqwest::{Url, cookie::CookieStore, cookie::Jar};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::header::COOKIE},
};

/// One user agent with its own cookies (one framework session).
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: Url,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// `ETag`, when sent.
    pub etag: Option<String>,
    /// `Cache-Control`, when sent.
    pub cache_control: Option<String>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("expected a JSON body, got {:?}: {e}", self.body))
    }
}

impl Browser {
    /// A browser for the app at `base`.
    pub fn new(base: &str) -> Browser {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("building the HTTP client");
        Browser {
            http,
            jar,
            base: Url::parse(base).expect("the app's base URL"),
        }
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a path relative to the app")
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path)), path).await
    }

    /// `GET path` with a header.
    pub async fn get_with_header(&self, path: &str, name: &str, value: &str) -> Answer {
        self.send(self.http.get(self.url(path)).header(name, value), path)
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request, path).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, path: &str) -> Answer {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, cache_control) = (header("etag"), header("cache-control"));
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("reading the body of {path} failed: {e}"));
        Answer {
            status,
            body,
            etag,
            cache_control,
        }
    }

    /// Logs `user` in with `groups`; panics unless the app answers 200.
    pub async fn login(&self, user: &str, groups: &[&str]) {
        let answer = self
            .post("/login", json!({ "user": user, "groups": groups }))
            .await;
        assert_eq!(answer.status, 200, "login of {user} failed: {answer:?}");
    }

    /// Milliseconds the caller's session has left; `None` if untracked.
    pub async fn time_left_ms(&self) -> Option<u64> {
        let answer = self.get("/test/time-left").await;
        assert_eq!(answer.status, 200, "/test/time-left: {answer:?}");
        answer.json()["ms"].as_u64()
    }

    /// Opens the notification socket with this browser's cookies.
    pub async fn socket(&self) -> Socket {
        self.try_socket()
            .await
            .unwrap_or_else(|e| panic!("opening the notification socket failed: {e}"))
    }

    /// Opens the notification socket; the error of a refused handshake.
    pub async fn try_socket(&self) -> Result<Socket, tungstenite::Error> {
        let mut url = self.url(timeout_tower::NOTIFICATIONS_PATH);
        url.set_scheme("ws").expect("ws scheme");
        let mut request = url.as_str().into_client_request()?;
        if let Some(cookies) = self.jar.cookies(&self.base) {
            request.headers_mut().insert(COOKIE, cookies);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Socket { ws })
    }

    /// Opens the Server-Sent Events stream.
    pub async fn events(&self) -> EventStream {
        let response = self
            .http
            .get(self.url(timeout_tower::EVENTS_PATH))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("opening the event stream failed: {e}"));
        assert_eq!(response.status().as_u16(), 200, "event stream refused");
        EventStream {
            response,
            buffer: String::new(),
        }
    }
}

/// What the socket gave within a wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A text message.
    Text(String),
    /// The server closed the socket.
    Closed,
    /// Nothing arrived in time.
    Nothing,
}

/// A notification socket.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// The next text message or close within `wait`; pings and pongs are
    /// skipped.
    pub async fn next(&mut self, wait: Duration) -> Received {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Received::Nothing,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                    return Received::Closed;
                }
                Ok(Some(Ok(Message::Text(text)))) => return Received::Text(text.to_string()),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Sends a message as a client would (the server must ignore it).
    pub async fn send(&mut self, message: Message) {
        self.ws
            .send(message)
            .await
            .unwrap_or_else(|e| panic!("sending on the socket failed: {e}"));
    }
}

/// A Server-Sent Events stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The `data` of the next event within `wait`; `None` if the stream
    /// ended or nothing came in time. Comments (keep-alives) are skipped.
    pub async fn next_data(&mut self, wait: Duration) -> Option<String> {
        let until = Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return Some(data.join("\n"));
            }
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Whether the server ended the stream within `wait`.
    pub async fn ends(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Ok(Ok(Some(chunk))) => {
                    let text = String::from_utf8_lossy(&chunk);
                    assert!(
                        text.lines().all(|l| l.is_empty() || l.starts_with(':')),
                        "expected the stream to end, got {text:?}"
                    );
                }
            }
        }
    }
}
