//! The HTTP answer to a refused request, built once for the layer and the
//! routes from what timeout-core decides it holds.

use std::borrow::Cow;

use http::{HeaderName, HeaderValue, Response, StatusCode};
use timeout_core::Refusal;

/// `refusal` as a response whose body `body` makes from the refusal's text.
pub(crate) fn refusal_response<B>(
    refusal: Refusal,
    body: impl FnOnce(&'static str) -> B,
) -> Response<B> {
    let mut response = Response::new(body(refusal.body));
    *response.status_mut() =
        StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in refusal.headers() {
        let value = match value {
            Cow::Borrowed(value) => HeaderValue::from_static(value),
            Cow::Owned(value) => match HeaderValue::try_from(value) {
                Ok(value) => value,
                Err(_) => continue, // digits only: cannot happen
            },
        };
        headers.insert(HeaderName::from_static(name), value);
    }
    response
}
