//! The operator routes (actix-web): a user's sessions with their deadlines,
//! and signing a user out everywhere. The answers are timeout-core's.

use actix_web::{
    HttpResponse,
    web::{self, ServiceConfig},
};
use timeout_core::{
    Tracker,
    admin::{self, Answer, SESSIONS_PATH, SIGN_OUT_PATH},
};

use crate::{Identify, SessionTimeout, config::response};

impl<I: Identify> SessionTimeout<I> {
    /// The operator routes, for a scope of the app's choosing **behind its
    /// own authorization** (they check nobody):
    ///
    /// - `GET /users/{user}/sessions`: the user's tracked sessions, their
    ///   deadlines and time left, `{"user":"alice","sessions":[{"session":
    ///   "s-12…","deadlineMs":..,"secondsLeft":..}]}` (session ids shortened:
    ///   they are bearer secrets);
    /// - `POST /users/{user}/sign-out`: signs the user out of every session
    ///   on every replica (their sockets get the logout notification, the
    ///   hooks run once), `{"user":"alice","signedOut":2}`.
    ///
    /// A user name that cannot be one answers 400; an unreachable store 503.
    ///
    /// ```
    /// use actix_web::{App, dev::ServiceRequest, web};
    /// use timeout_actix::{SessionTimeout, identify_fn};
    /// use timeout_core::{Policy, Subject, Tracker};
    ///
    /// # fn main() -> Result<(), timeout_core::ConfigError> {
    /// let timeout = SessionTimeout::new(
    ///     Tracker::new(Policy::builder().enabled(true).build()?),
    ///     identify_fn(|_request: &actix_web::HttpRequest| None::<Subject>),
    /// );
    /// let app = App::new().service(
    ///     web::scope("/admin/timeout")
    ///         // .wrap(the app's own operator check)
    ///         .configure(timeout.admin_routes()),
    /// );
    /// # let _ = app;
    /// # Ok(()) }
    /// ```
    pub fn admin_routes(&self) -> impl FnOnce(&mut ServiceConfig) + use<I> {
        let tracker = web::Data::new(self.tracker().clone());
        move |config| {
            config
                .service(
                    web::resource(SESSIONS_PATH)
                        .app_data(tracker.clone())
                        .route(web::get().to(sessions)),
                )
                .service(
                    web::resource(SIGN_OUT_PATH)
                        .app_data(tracker)
                        .route(web::post().to(sign_out)),
                );
        }
    }
}

async fn sessions(tracker: web::Data<Tracker>, user: web::Path<String>) -> HttpResponse {
    to_response(admin::list_sessions(&tracker, &user).await)
}

async fn sign_out(tracker: web::Data<Tracker>, user: web::Path<String>) -> HttpResponse {
    to_response(admin::sign_out(&tracker, &user).await)
}

fn to_response(answer: Answer) -> HttpResponse {
    response(answer.status, answer.headers(), answer.body)
}
