//! The request head as the core's passive rules see it.

use http::request::Parts;
use timeout_core::passive::RequestView;

/// [`RequestView`] over an `http` request head.
pub(crate) struct PartsView<'a>(pub(crate) &'a Parts);

impl RequestView for PartsView<'_> {
    fn method(&self) -> &str {
        self.0.method.as_str()
    }

    fn path(&self) -> &str {
        self.0.uri.path()
    }

    fn query(&self) -> Option<&str> {
        self.0.uri.query()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.headers.get(name).map(|value| value.as_bytes())
    }
}
