//! The API's OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]` attributes
//! (see `api_router` in `lib.rs`), and `/docs`, a self-contained page that renders it.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};

/// Adds what the handlers do not say: title, version and how keys are sent.
pub(crate) fn finish(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("evalmint")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Investigation traces and the feedback users give on them, turned into evaluation \
             labels. Keys are sent as `Authorization: Bearer <key>`; the compatible endpoints also \
             take `x-api-key` (LangSmith) and HTTP Basic `public:secret` (Langfuse).",
        ))
        .build();
    // Handlers in different modules share names (`show`, `list`): ids come from method and path.
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, operation) in [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
        ] {
            if let Some(operation) = operation {
                let words: Vec<&str> = path
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .collect();
                operation.operation_id = Some(format!("{method}_{}", words.join("_")));
            }
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("em_…")
                .build(),
        ),
    );
    components.add_security_scheme(
        "x_api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
    );
    api
}

/// `GET /docs`: renders `/openapi.json` in the browser without anything fetched from elsewhere.
pub(crate) async fn docs_page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DOCS_HTML,
    )
}

const DOCS_HTML: &str = include_str!("openapi_docs.html");
