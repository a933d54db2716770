//! What a notification route does once a subscriber is admitted, the same
//! on every framework: the WebSocket loop (notifications out, pings on a
//! timer, close on logout or on a client gone quiet) and the Server-Sent
//! Events frames. The adapters only wrap their framework's socket.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures_core::Stream;
use tokio::time::{Instant, Interval, interval_at};

use crate::{Beat, CLOSE_LOGGED_OUT, CLOSE_TIMED_OUT, CLOSE_UNRESPONSIVE, Heartbeat, Subscription};

/// How often the event stream sends a comment line, so proxies keep it open.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the client sent on a notification socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Anything (a pong, a ping the adapter answered, a text): the client
    /// is there. What it says is ignored: the socket only listens.
    Heard,
    /// The client closed the socket, it failed, or it ended.
    Gone,
}

/// A framework's WebSocket, as [`forward_notifications`] uses it. Each
/// method reports whether the socket still works; the adapter does
/// whatever its framework needs beyond that (answering pings, closing its
/// half after the client's close frame).
pub trait NotificationSocket {
    /// Sends one notification's JSON as a text frame.
    fn send_text(&mut self, json: String) -> impl Future<Output = bool>;
    /// Sends a ping.
    fn send_ping(&mut self) -> impl Future<Output = bool>;
    /// Sends a normal close frame with `reason`.
    fn close(&mut self, reason: &'static str) -> impl Future<Output = ()>;
    /// Waits for what the client sends next.
    fn receive(&mut self) -> impl Future<Output = Incoming>;
}

/// Sends the subscription's notifications until the logout (then closes
/// with [`CLOSE_TIMED_OUT`]), the end of the subscription (an explicit
/// logout: [`CLOSE_LOGGED_OUT`]), the client leaving, or the client not
/// answering a ping within `ping_every` ([`CLOSE_UNRESPONSIVE`]), so a
/// half-open connection frees its subscription.
pub async fn forward_notifications(
    mut socket: impl NotificationSocket,
    mut subscription: Subscription,
    ping_every: Duration,
) {
    let mut heartbeat = Heartbeat::default();
    let mut ping = interval_at(Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            notification = subscription.recv() => {
                let Some(notification) = notification else {
                    socket.close(CLOSE_LOGGED_OUT).await;
                    return;
                };
                let logout = notification.is_logout();
                if !socket.send_text(notification.to_json()).await {
                    return;
                }
                if logout {
                    socket.close(CLOSE_TIMED_OUT).await;
                    return;
                }
            }
            _ = ping.tick() => match heartbeat.tick() {
                Beat::Ping => {
                    if !socket.send_ping().await {
                        return;
                    }
                }
                Beat::Dead => {
                    tracing::debug!(
                        target: "timeout",
                        "closing a notification socket whose client stopped answering"
                    );
                    socket.close(CLOSE_UNRESPONSIVE).await;
                    return;
                }
            },
            incoming = socket.receive() => match incoming {
                Incoming::Heard => heartbeat.heard(),
                Incoming::Gone => return,
            },
        }
    }
}

/// The Server-Sent Events body of a subscription: one `data:` frame per
/// notification and a comment line every [`SSE_KEEP_ALIVE`]; it ends after
/// the logout or an explicit logout. Serve it as `text/event-stream` with
/// `Cache-Control: no-cache`.
///
/// ```
/// use timeout_core::{Policy, Subject, Tracker, adapter::SseFrames};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tracker = Tracker::new(Policy::default());
/// let alice = Subject::new("s1", "alice").unwrap();
/// let frames = SseFrames::new(tracker.subscribe(&alice));
/// # let _ = frames;
/// # }
/// ```
#[derive(Debug)]
pub struct SseFrames {
    subscription: Option<Subscription>,
    keep_alive: Interval,
}

impl SseFrames {
    /// The frames of `subscription`.
    pub fn new(subscription: Subscription) -> Self {
        SseFrames {
            subscription: Some(subscription),
            keep_alive: interval_at(Instant::now() + SSE_KEEP_ALIVE, SSE_KEEP_ALIVE),
        }
    }
}

impl Stream for SseFrames {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let Some(subscription) = self.subscription.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(subscription).poll_next(cx) {
            Poll::Ready(Some(notification)) => {
                if notification.is_logout() {
                    self.subscription = None;
                }
                return Poll::Ready(Some(format!("data: {}\n\n", notification.to_json())));
            }
            Poll::Ready(None) => {
                self.subscription = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match self.keep_alive.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(":\n\n".to_owned())),
            Poll::Pending => Poll::Pending,
        }
    }
}
