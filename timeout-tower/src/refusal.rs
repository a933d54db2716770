//! The HTTP answers timeout-core decides (a refused request, an operator
//! route's answer), built once for the layer and the routes.

use std::borrow::Cow;

use http::{HeaderName, HeaderValue, Response, StatusCode};
use timeout_core::adapter::Refusal;

/// `refusal` as a response whose body `body` makes from the refusal's text.
pub(crate) fn refusal_response<B>(
    refusal: Refusal,
    body: impl FnOnce(&'static str) -> B,
) -> Response<B> {
    response(refusal.status, refusal.headers(), body(refusal.body))
}

/// A response of `status`, `headers` (lower-case names) and `body`.
pub(crate) fn response<B>(
    status: u16,
    headers: impl Iterator<Item = (&'static str, Cow<'static, str>)>,
    body: B,
) -> Response<B> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in headers {
        let value = match value {
            Cow::Borrowed(value) => HeaderValue::from_static(value),
            Cow::Owned(value) => match HeaderValue::try_from(value) {
                Ok(value) => value,
                Err(_) => continue, // written by timeout-core: always valid
            },
        };
        map.insert(HeaderName::from_static(name), value);
    }
    response
}
