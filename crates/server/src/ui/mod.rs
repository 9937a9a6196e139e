//! The web UI for reviewers, served at `/`: server-rendered askama pages with htmx, assets
//! embedded in the binary. Signing in with an API key makes a session kept in the store (an
//! HttpOnly, SameSite=Strict cookie carries its random token, the store only the token's SHA-256),
//! so every server on the store knows it and a restart keeps it; every state-changing form
//! carries the session's CSRF token.
//! Pages call the same functions as the API handlers, so both enforce the same rules.

mod view;

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use evalmint_model::{DecisionRequest, GroundTruthEdit, Scope, SnapshotChange};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{Caller, resolve};
use crate::body::read_capped;
use crate::error::ApiError;
use crate::routes::releases::{CreateRelease, create_release};
use crate::routes::review::{self, QueueParams};

const SESSION_COOKIE: &str = "evalmint_session";
const SIGNIN_COOKIE: &str = "evalmint_signin";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What a session's row is named by: the SHA-256 of the token its cookie carries, so the store
/// never holds a token that would sign anyone in.
fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("cookie characters")
}

/// A signed-in reviewer: the caller behind the session (its key as the store has it now) and the
/// session's CSRF token.
pub(crate) struct Session {
    token_sha256: [u8; 32],
    caller: Caller,
    csrf: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_signin = || Redirect::to("/signin").into_response();
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or_else(to_signin)?;
        let token_sha256 = token_hash(&token);
        // Expired, ended, or its key revoked or rotated (on any server): sign in again.
        let found = state
            .store
            .ui_session(&token_sha256)
            .await
            .map_err(|e| ApiError::from(e).into_response())?
            .ok_or_else(to_signin)?;
        Ok(Session {
            token_sha256,
            caller: Caller { key: found.key },
            csrf: found.csrf,
        })
    }
}

/// What every page's frame shows.
pub(crate) struct Frame {
    signed_in: bool,
    tenant: String,
    reviewer: String,
    csrf: String,
}

impl Session {
    fn frame(&self) -> Frame {
        Frame {
            signed_in: true,
            tenant: self.caller.tenant().to_string(),
            reviewer: self.caller.key.name.clone(),
            csrf: self.csrf.clone(),
        }
    }

    /// Fields of a posted form, after checking its CSRF token.
    async fn form(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Form, Response> {
        let form = read_form(state, headers, body).await?;
        match form.get("csrf") {
            Some(token) if same(token, &self.csrf) => Ok(form),
            _ => Err(forbidden()),
        }
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("<p>Refused: the form's CSRF token is missing or wrong. Reload the page.</p>"),
    )
        .into_response()
}

/// A url-encoded form body, read through the capped reader.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

async fn read_form(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Form, Response> {
    let is_form =
        crate::body::media_type(headers).as_deref() == Some("application/x-www-form-urlencoded");
    if !is_form {
        return Err(ApiError::UnsupportedMediaType(
            "expected a form (application/x-www-form-urlencoded)".into(),
        )
        .into_response());
    }
    let bytes = read_capped(state, headers, body, MAX_FORM_BYTES)
        .await
        .map_err(IntoResponse::into_response)?
        .bytes;
    Ok(Form(
        form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    ))
}

fn page(template: impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

fn error_page(session: &Session, error: &ApiError) -> Response {
    let status = error.status();
    let mut response = page(view::MessagePage {
        frame: session.frame(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: error.to_string(),
    });
    *response.status_mut() = status;
    response
}

/// The UI's routes, merged into the API router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/review") }))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/review", get(queue_page))
        .route("/review/{id}", get(candidate_page))
        .route("/review/{id}/decision", post(decide))
        .route("/review/{id}/edit-form", get(edit_form))
        .route("/review/{id}/reject-form", get(reject_form))
        .route("/releases", get(releases_page).post(create_release_form))
        .route("/releases/{id}", get(release_page))
        .route("/calibration", get(calibration_page))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/labels/{id}/runs", get(label_runs_page))
        .route("/assets/htmx.min.js", get(asset_htmx))
        .route("/assets/app.js", get(asset_js))
        .route("/assets/app.css", get(asset_css))
}

fn asset(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        bytes,
    )
        .into_response()
}

async fn asset_htmx() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx.min.js"),
    )
}

async fn asset_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    )
}

async fn asset_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    )
}

fn signin_form(error: &str, status: StatusCode) -> Response {
    let token = random_token();
    let mut response = page(view::SigninPage {
        frame: Frame {
            signed_in: false,
            tenant: String::new(),
            reviewer: String::new(),
            csrf: token.clone(),
        },
        error: error.to_owned(),
    });
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, &token, 3600));
    response
}

async fn signin_page() -> Response {
    signin_form("", StatusCode::OK)
}

async fn signin(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&state, &headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    // Before a session exists the token is the sign-in cookie's (double submit), so another
    // site cannot sign a browser in with its own key.
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !form.get("csrf").is_some_and(|t| same(t, &expected)) {
        return forbidden();
    }
    let secret = form.text("api_key").unwrap_or_default();
    let caller = match resolve(&state, &secret).await {
        Ok(caller) => caller,
        Err(_) => return signin_form("That key is not valid.", StatusCode::UNAUTHORIZED),
    };
    if caller.require(Scope::Review).is_err() {
        return signin_form("That key lacks the review scope.", StatusCode::FORBIDDEN);
    }
    let (token, csrf) = (random_token(), random_token());
    let created = state
        .store
        .create_ui_session(
            caller.tenant(),
            &token_hash(&token),
            &caller.key.id,
            &csrf,
            SESSION_TTL,
        )
        .await;
    if let Err(e) = created {
        return ApiError::from(e).into_response();
    }
    let mut response = Redirect::to("/review").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_TTL.as_secs()),
    );
    headers.append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0));
    response
}

async fn signout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = session.form(&state, &headers, body).await {
        return response;
    }
    if let Err(e) = state
        .store
        .end_ui_session(session.caller.tenant(), &session.token_sha256)
        .await
    {
        return ApiError::from(e).into_response();
    }
    let mut response = Redirect::to("/signin").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    response
}

async fn queue_page(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<QueueParams>, QueryRejection>,
) -> Response {
    let params = match crate::routes::labels::params(query) {
        Ok(p) => p,
        Err(e) => return error_page(&session, &e),
    };
    let params = QueueParams {
        limit: Some(params.limit.unwrap_or(50)),
        ..params
    };
    let result = async {
        let query = params.query()?;
        Ok::<_, ApiError>(
            state
                .labels
                .review_queue(session.caller.tenant(), query)
                .await?,
        )
    }
    .await;
    match result {
        Ok((candidates, total)) => page(view::queue(session.frame(), &params, candidates, total)),
        Err(e) => error_page(&session, &e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct CandidateParams {
    #[serde(default)]
    open: Option<String>,
}

async fn candidate_page(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    query: Result<Query<CandidateParams>, QueryRejection>,
) -> Response {
    let open = query.ok().and_then(|Query(q)| q.open).unwrap_or_default();
    render_candidate(&state, &session, &id, &open, "", StatusCode::OK).await
}

async fn render_candidate(
    state: &AppState,
    session: &Session,
    id: &str,
    open: &str,
    error: &str,
    status: StatusCode,
) -> Response {
    let tenant = session.caller.tenant();
    let item = match review::item(state, tenant, id).await {
        Ok(item) => item,
        Err(e) => return error_page(session, &e),
    };
    let trace = item.candidate.investigation_id;
    let loaded = async {
        let investigation = state.store.investigation(tenant, trace).await?;
        let mut feedback = Vec::new();
        for id in &item.candidate.provenance.feedback_ids {
            if let Some(f) = state.store.feedback(tenant, *id).await? {
                feedback.push(f);
            }
        }
        let live = state.labels.snapshot(tenant, trace).await?;
        let shown = item
            .versions
            .last()
            .filter(|v| v.version.candidate_id == item.candidate.id)
            .map_or(&item.candidate.snapshot, |v| &v.version.snapshot);
        let mut results = Vec::new();
        for query in shown {
            let status = live
                .iter()
                .find(|q| q.id == query.id)
                .map_or(query.status, |q| q.status);
            let bytes = if status.has_result() {
                state
                    .labels
                    .snapshot_result(tenant, trace, &query.id)
                    .await?
            } else {
                None
            };
            results.push((query.clone(), status, bytes));
        }
        Ok::<_, ApiError>((investigation, feedback, results))
    }
    .await;
    match loaded {
        Ok((investigation, feedback, results)) => {
            let mut response = page(view::candidate(
                session.frame(),
                item,
                view::CandidateData {
                    investigation,
                    feedback,
                    results,
                },
                &state.config.categories,
                open,
                error,
            ));
            *response.status_mut() = status;
            response
        }
        Err(e) => error_page(session, &e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct InlineParams {
    /// The queue row the form opens under.
    #[serde(default)]
    row: usize,
}

async fn edit_form(
    state: State<AppState>,
    session: Session,
    id: axum::extract::Path<String>,
    query: Result<Query<InlineParams>, QueryRejection>,
) -> Response {
    inline_form(state, session, id, query, view::InlineKind::Edit).await
}

async fn reject_form(
    state: State<AppState>,
    session: Session,
    id: axum::extract::Path<String>,
    query: Result<Query<InlineParams>, QueryRejection>,
) -> Response {
    inline_form(state, session, id, query, view::InlineKind::Reject).await
}

/// An edit or reject form for the queue, a table row to put right under the candidate's row.
async fn inline_form(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    query: Result<Query<InlineParams>, QueryRejection>,
    kind: view::InlineKind,
) -> Response {
    let row = query.map(|Query(q)| q.row).unwrap_or_default();
    match review::item(&state, session.caller.tenant(), &id).await {
        Ok(item) => page(view::inline_form(
            session.csrf.clone(),
            &item,
            row,
            kind,
            &state.config.categories,
        )),
        Err(e) => {
            let mut response = Html(format!(
                "<tr id=\"inline-form\"><td colspan=\"7\" class=\"error\" role=\"alert\">{}</td></tr>",
                html_escape(&e.to_string())
            ))
            .into_response();
            *response.status_mut() = e.status();
            response
        }
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The inline form's fields as submitted, to show them again when the decision is refused.
fn submitted(id: &str, row: usize, form: &Form) -> view::Submitted {
    let field = |name: &str| form.get(name).unwrap_or_default().to_owned();
    view::Submitted {
        id: id.to_owned(),
        row,
        version: form
            .get("version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        kind: if form.get("action") == Some("reject") {
            view::InlineKind::Reject
        } else {
            view::InlineKind::Edit
        },
        statement: field("statement"),
        components: field("components"),
        category: field("category"),
        onset: field("onset"),
        reason: field("reason"),
        note: field("note"),
    }
}

/// A decision form as the API's request.
fn decision_request(form: &Form) -> DecisionRequest {
    let action = form.get("action").unwrap_or_default().to_owned();
    let version = form
        .get("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut request = DecisionRequest {
        action: action.clone(),
        version,
        ..DecisionRequest::default()
    };
    match action.as_str() {
        "edit" => {
            let lines = |name: &str| {
                form.text(name).map(|text| {
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
            };
            let truth = GroundTruthEdit {
                statement: form.text("statement"),
                components: form.text("components").map(|c| {
                    c.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect()
                }),
                category: form.text("category"),
                onset: form.text("onset"),
                causal_chain: lines("causal_chain"),
            };
            request.ground_truth = (!truth.is_empty()).then_some(truth);
            for (name, value) in &form.0 {
                let Some(query_id) = name.strip_prefix("query:") else {
                    continue;
                };
                let query_id = query_id.to_owned();
                match value.as_str() {
                    "evidence" => request.snapshot.push(SnapshotChange::Evidence { query_id }),
                    "noise" => request.snapshot.push(SnapshotChange::Noise { query_id }),
                    "remove" => request.snapshot.push(SnapshotChange::Remove { query_id }),
                    _ => {}
                }
            }
            if let (Some(source), Some(query)) = (form.text("add_source"), form.text("add_query")) {
                request.snapshot.push(SnapshotChange::Add {
                    source,
                    signal: None,
                    tool: None,
                    query,
                });
            }
        }
        "reject" => {
            request.reason = form.text("reason");
            request.note = form.text("note");
        }
        _ => {}
    }
    request
}

async fn decide(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match session.form(&state, &headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let htmx = headers.contains_key("hx-request");
    // Sent by the queue's inline forms: the row they stand under.
    let inline_row = form.get("row").and_then(|r| r.parse::<usize>().ok());
    let request = decision_request(&form);
    let action = request.action.clone();
    match review::record(&state, &session.caller, &id, request).await {
        Ok(version) if htmx => page(view::DecidedRow {
            id,
            action,
            version: version.version,
        }),
        Ok(_) => Redirect::to("/review").into_response(),
        Err(e) if htmx => match inline_row {
            // The form again, in place of itself, with the error; the status stays the
            // decision's (422 a named field, 409 a stale version).
            Some(row) => {
                let again = view::inline_form_refused(
                    session.csrf.clone(),
                    submitted(&id, row, &form),
                    &e,
                    &state.config.categories,
                );
                let mut response = page(again);
                *response.status_mut() = e.status();
                let headers = response.headers_mut();
                headers.insert("hx-retarget", HeaderValue::from_static("#inline-form"));
                headers.insert("hx-reswap", HeaderValue::from_static("outerHTML"));
                response
            }
            None => page(view::DecidedRow {
                id,
                action: format!("not recorded ({e})"),
                version: 0,
            }),
        },
        Err(e) => {
            let open = if action == "reject" { "reject" } else { "edit" };
            render_candidate(&state, &session, &id, open, &e.to_string(), e.status()).await
        }
    }
}

async fn releases_page(State(state): State<AppState>, session: Session) -> Response {
    match state.labels.releases(session.caller.tenant()).await {
        Ok(releases) => page(view::releases(session.frame(), releases, "")),
        Err(e) => error_page(&session, &e.into()),
    }
}

async fn create_release_form(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match session.form(&state, &headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let request = CreateRelease {
        name: form.get("name").unwrap_or_default().to_owned(),
        filters: form
            .get("filters")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    match create_release(&state, session.caller.tenant(), request).await {
        Ok((release, _)) => Redirect::to(&format!("/releases/{}", release.id)).into_response(),
        Err(e) => {
            let releases = state
                .labels
                .releases(session.caller.tenant())
                .await
                .unwrap_or_default();
            let mut response = page(view::releases(session.frame(), releases, &e.to_string()));
            *response.status_mut() = e.status();
            response
        }
    }
}

async fn release_page(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match state.labels.release(session.caller.tenant(), &id).await {
        Ok(Some(release)) => page(view::release(session.frame(), release)),
        Ok(None) => error_page(&session, &ApiError::NotFound("release")),
        Err(e) => error_page(&session, &e.into()),
    }
}

async fn calibration_page(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<review::CalibrationParams>, QueryRejection>,
) -> Response {
    let target = query.ok().and_then(|Query(q)| q.target);
    match review::report(&state, session.caller.tenant(), target).await {
        Ok(report) => page(view::calibration(session.frame(), report)),
        Err(e) => error_page(&session, &e),
    }
}

/// The most runs the runs page lists (and offers as baselines).
const RUNS_LISTED: usize = 200;

async fn runs_page(State(state): State<AppState>, session: Session) -> Response {
    match state
        .labels
        .eval_runs(session.caller.tenant(), RUNS_LISTED)
        .await
    {
        Ok(runs) => page(view::runs(session.frame(), &runs)),
        Err(e) => error_page(&session, &e.into()),
    }
}

/// The most runs a label's history page shows.
const LABEL_RUNS_LISTED: usize = 100;

/// One label's history across runs, newest first.
async fn label_runs_page(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let tenant = session.caller.tenant();
    match crate::routes::runs::label_history(&state, tenant, &id, LABEL_RUNS_LISTED).await {
        Ok((label_id, runs)) => page(view::label_runs(session.frame(), label_id, &runs)),
        Err(e) => error_page(&session, &e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct RunParams {
    #[serde(default)]
    baseline: Option<String>,
}

/// One run, compared with the baseline it remembers, or with `?baseline=` when given (an empty
/// one: with nothing).
async fn run_page(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    query: Result<Query<RunParams>, QueryRejection>,
) -> Response {
    let tenant = session.caller.tenant();
    let chosen = query.ok().and_then(|Query(q)| q.baseline);
    let loaded = async {
        let run = state
            .labels
            .eval_run(tenant, &id)
            .await?
            .ok_or(ApiError::NotFound("run"))?;
        let baseline_id = match chosen {
            Some(b) => Some(b).filter(|b| !b.is_empty()),
            None => run.baseline.clone(),
        };
        let baseline = match &baseline_id {
            Some(b) => Some(
                state
                    .labels
                    .eval_run(tenant, b)
                    .await?
                    .ok_or(ApiError::NotFound("baseline run"))?,
            ),
            None => None,
        };
        let others = state.labels.eval_runs(tenant, RUNS_LISTED).await?;
        Ok::<_, ApiError>((run, baseline, others))
    };
    match loaded.await {
        Ok((run, baseline, others)) => {
            page(view::run(session.frame(), &run, baseline.as_ref(), &others))
        }
        Err(e) => error_page(&session, &e),
    }
}
