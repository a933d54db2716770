//! The request as the core's passive rules see it.

use actix_web::HttpRequest;
use timeout_core::passive::RequestView;

/// [`RequestView`] over an actix-web request.
pub(crate) struct View<'a>(pub(crate) &'a HttpRequest);

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn path(&self) -> &str {
        self.0.path()
    }

    fn query(&self) -> Option<&str> {
        Some(self.0.query_string()).filter(|query| !query.is_empty())
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.headers().get(name).map(|value| value.as_bytes())
    }
}
