//! The web UI: one page and its scripts and style, compiled into the
//! binary (no build step, no framework). The page only talks to `/api/v1`.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::State;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const VIEW_JS: &str = include_str!("../web/view.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS) }))
        .route("/view.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], VIEW_JS) }))
        .route("/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE_CSS) }))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found\n").into_response() })
}
