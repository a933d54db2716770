//! What goes over the wire to browsers, in the exact formats they depend
//! on: the notifications, the bodies of refused requests and the close
//! reasons of the notification socket.

pub use crate::{
    gate::{
        CLOSE_LOGGED_OUT, CLOSE_TIMED_OUT, CLOSE_UNRESPONSIVE, IDENTIFY_FAILED_JSON,
        NOT_LOGGED_IN_JSON,
    },
    notification::{KeyEvent, LOGOUT_JSON, LOGOUT_REASON, Notification, SIGNED_OUT_REASON},
    tracker::{SESSION_LIMIT_JSON, UNAVAILABLE_JSON},
};
