//! The embeddable feedback widget: `GET /widget.js` (a dependency-free `<evalmint-feedback>` web
//! component), `GET /widget/demo` (a host page to try it), and CORS for `POST /api/v1/feedback`,
//! the one endpoint a page calls. A page uses a publishable key, which the key's allowed origins
//! confine (checked in `auth.rs`); a refused origin gets no CORS headers, so the page cannot
//! read even the refusal.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::OriginRefused;

const WIDGET_JS: &str = include_str!("widget/widget.js");
const DEMO_HTML: &str = include_str!("widget/demo.html");

/// The path pages post feedback to.
const FEEDBACK_PATH: &str = "/api/v1/feedback";

#[utoipa::path(
    get,
    path = "/widget.js",
    tag = "widget",
    summary = "The <evalmint-feedback> web component",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
}

#[utoipa::path(
    get,
    path = "/widget/demo",
    tag = "widget",
    summary = "A sample host page: ?investigation=<trace id>&key=<publishable key>",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
pub(crate) async fn demo() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DEMO_HTML,
    )
}

/// CORS for the feedback endpoint: preflights are answered for any origin (they carry no key);
/// a real request's answer names its origin unless the key refused that origin.
pub(crate) async fn cors(request: Request, next: Next) -> Response {
    if request.uri().path() != FEEDBACK_PATH {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-evalmint-origin"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if response.extensions().get::<OriginRefused>().is_none() {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("location"),
        );
    }
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}
