//! The hub's HTTP API on axum. One route table ([`ROUTES`]) says for every
//! method and path what it needs (public, read, admin, worker, action);
//! the router is built from it, the authentication middleware ([`gate`])
//! reads it, the OpenAPI description ([`super::openapi`]) is checked
//! against it, and so are the 401/403 tests.
//!
//! Before authentication every request passes [`super::guard`] (Host,
//! Origin, content type). Bad input never panics: an unknown route is 404,
//! a wrong method 405, malformed JSON or a bad filter 400, a JSON body
//! without a JSON content type 415, a body over `hub.max_body_bytes` 413,
//! a body slower than `hub.body_timeout_ms` 408 (and the connection
//! closed), an agent that does not compile 422. Errors are
//! `{"error": "..."}` ([`ApiError`]). Store calls run on tokio's blocking
//! pool.
//!
//! Why the body limit and deadline are [`JsonBody`]'s and not
//! tower-http's layers: `RequestBodyTimeoutLayer` times each frame of a
//! body, so a client trickling a byte at a time holds the connection for
//! ever (`tests/abuse_slow_body.rs`), and `TimeoutLayer` times the whole
//! handler, a slow store call included; `RequestBodyLimitLayer` answers in
//! its own words, uncounted. [`JsonBody`] reads through
//! `http_body_util::Limited` under one deadline for the whole body and
//! answers like every other error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE,
};
use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower_http::set_header::SetResponseHeaderLayer;

use super::auth::{Caller, Denied, Need, Role};
use super::filter::Filter;
use super::streams::{self, Class, Conn, StreamRefused};
use super::{
    bump, dashboard, guard, lock, HubEvent, HubHandle, JobOp, JobView, LinkSnapshot, Reporter,
    SaveError, StoreError, StoredAgent, WorkerRefused, WorkerReport,
};

/// What a route does: one handler each (see [`router`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Health,
    Ready,
    Static,
    OpenApi,
    Metrics,
    AgentsList,
    AgentGet,
    AgentPut,
    AgentDelete,
    AgentActivate,
    AgentDeactivate,
    Examples,
    EnvList,
    EnvPut,
    EnvDelete,
    ItemsQuery,
    ItemsStream,
    ItemGet,
    Console,
    ConsoleStream,
    Jobs,
    JobRun,
    JobRemove,
    Workers,
    HubAction,
    LinkEvents,
    LinkItems,
    LinkConsole,
    LinkStats,
}

/// One route: `{x}` in a pattern matches one path segment
/// (percent-decoded).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub need: Need,
    pub(crate) op: Op,
}

const fn r(method: &'static str, pattern: &'static str, need: Need, op: Op) -> Route {
    Route { method, pattern, need, op }
}

/// Every route. Console lines are for admins only: an agent may print a
/// secret in a form no mask recognises (`docs/architecture.md`).
pub const ROUTES: &[Route] = &[
    r("GET", "/healthz", Need::Public, Op::Health),
    r("GET", "/readyz", Need::Public, Op::Ready),
    r("GET", "/", Need::Public, Op::Static),
    r("GET", "/index.html", Need::Public, Op::Static),
    r("GET", "/app.js", Need::Public, Op::Static),
    r("GET", "/style.css", Need::Public, Op::Static),
    r("GET", "/api/openapi.json", Need::Read, Op::OpenApi),
    r("GET", "/metrics", Need::Read, Op::Metrics),
    r("GET", "/api/agents", Need::Read, Op::AgentsList),
    r("GET", "/api/agents/{name}", Need::Read, Op::AgentGet),
    r("PUT", "/api/agents/{name}", Need::Admin, Op::AgentPut),
    r("DELETE", "/api/agents/{name}", Need::Admin, Op::AgentDelete),
    r("POST", "/api/agents/{name}/activate", Need::Admin, Op::AgentActivate),
    r("POST", "/api/agents/{name}/deactivate", Need::Admin, Op::AgentDeactivate),
    r("GET", "/api/examples", Need::Read, Op::Examples),
    r("GET", "/api/env", Need::Read, Op::EnvList),
    r("PUT", "/api/env/{name}", Need::Admin, Op::EnvPut),
    r("DELETE", "/api/env/{name}", Need::Admin, Op::EnvDelete),
    r("GET", "/api/items", Need::Read, Op::ItemsQuery),
    r("GET", "/api/items/stream", Need::Read, Op::ItemsStream),
    r("GET", "/api/items/{id}", Need::Read, Op::ItemGet),
    r("GET", "/api/console", Need::Admin, Op::Console),
    r("GET", "/api/console/stream", Need::Admin, Op::ConsoleStream),
    r("GET", "/api/jobs", Need::Read, Op::Jobs),
    r("POST", "/api/jobs/{tag}/run", Need::Admin, Op::JobRun),
    r("DELETE", "/api/jobs/{tag}", Need::Admin, Op::JobRemove),
    r("GET", "/api/workers", Need::Read, Op::Workers),
    r("POST", "/api/hub/action", Need::Action, Op::HubAction),
    r("GET", "/api/link/events", Need::Worker, Op::LinkEvents),
    r("POST", "/api/link/items", Need::Worker, Op::LinkItems),
    r("POST", "/api/link/console", Need::Worker, Op::LinkConsole),
    r("POST", "/api/link/stats", Need::Worker, Op::LinkStats),
];

/// The route for `method` (HEAD as GET) and a router pattern.
pub(crate) fn route_of(method: &str, pattern: &str) -> Option<&'static Route> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES.iter().find(|r| r.method == method && r.pattern == pattern)
}

// ---- errors --------------------------------------------------------------------

/// Everything a request can fail with; the answer is its status and
/// `{"error": "<Display>"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such path: {0}")]
    NoRoute(String),
    #[error("method not allowed")]
    Method,
    #[error("a bearer token is needed (Authorization: Bearer TOKEN)")]
    Unauthenticated,
    #[error("this token may not do that")]
    Forbidden,
    #[error(transparent)]
    Refused(#[from] guard::Refused),
    #[error("{0}")]
    BadRequest(String),
    #[error("a JSON body needs Content-Type: application/json")]
    NotJson,
    #[error("request body over {0} bytes (hub.max_body_bytes)")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0} ms (hub.body_timeout_ms)")]
    BodyTimeout(u64),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("script store: {0}")]
    Store(#[source] StoreError),
    /// The agent does not compile (or is not ES5 with `scripting.es5Strict`).
    #[error(transparent)]
    Rejected(scripting::LoadError),
    #[error("{0} (hub.max_sse_clients, hub.max_worker_links, hub.max_streams_per_token, hub.max_links_per_token)")]
    Stream(#[from] StreamRefused),
    #[error(transparent)]
    Worker(#[from] WorkerRefused),
    #[error("script store not readable: {0}")]
    NotReady(#[source] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoRoute(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Method => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Worker(WorkerRefused::Identity(_)) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Refused(guard::Refused::ContentType) | ApiError::NotJson => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::Store(StoreError::InvalidName(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Store(StoreError::InvalidEnvName(_)) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Stream(StreamRefused::Full(_)) | ApiError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Stream(StreamRefused::TokenCap(_))
            | ApiError::Worker(WorkerRefused::Full) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.to_string() });
        if let ApiError::Rejected(e) = &self {
            let at = e.position();
            body["line"] = json!(at.map(|p| p.line));
            body["column"] = json!(at.map(|p| p.column));
        }
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        match self {
            ApiError::Unauthenticated => {
                h.insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"skua\""));
            }
            // The client is still sending: the connection cannot be reused.
            ApiError::BodyTimeout(_) => {
                h.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

/// A store error answered: a bad name is the caller's (400), anything else
/// the store's (500, counted and logged).
fn store_error(hub: &HubHandle, e: StoreError) -> ApiError {
    if !matches!(e, StoreError::InvalidName(_) | StoreError::InvalidEnvName(_)) {
        bump(&hub.state.counters.store_errors);
        tracing::error!("hub store ({}): {e}", hub.state.store.kind());
    }
    ApiError::Store(e)
}

// ---- extractors ----------------------------------------------------------------

/// A JSON body: `Content-Type: application/json`, at most
/// `hub.max_body_bytes`, arrived within `hub.body_timeout_ms`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<HubHandle> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, hub: &HubHandle) -> Result<Self, ApiError> {
        if !guard::is_json(req.headers()) {
            return Err(ApiError::NotJson);
        }
        let b = read_body(hub, req).await?;
        serde_json::from_slice(&b)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

async fn read_body(hub: &HubHandle, req: Request) -> Result<Bytes, ApiError> {
    let cfg = &hub.state.cfg;
    let max = cfg.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::TooLarge(max));
    }
    let read = Limited::new(req.into_body(), max).collect();
    match tokio::time::timeout(Duration::from_millis(cfg.body_timeout_ms), read).await {
        Err(_) => {
            bump(&hub.state.counters.body_timeouts);
            Err(ApiError::BodyTimeout(cfg.body_timeout_ms))
        }
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ApiError::TooLarge(max))
        }
        Ok(Err(e)) => Err(ApiError::BadRequest(format!("reading the request body: {e}"))),
    }
}

/// The one path parameter of a route, percent-decoded.
pub struct Param(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| Param(p.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The connection the request came on (absent for requests not served by
/// [`super::server`]).
pub(crate) struct MaybeConn(Option<Conn>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeConn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeConn(parts.extensions.get::<Conn>().cloned()))
    }
}

type Query = HashMap<String, String>;

fn query(raw: Option<String>) -> Query {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn limit(q: &Query, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match q.get(key) {
        None => Ok(default.min(max)),
        Some(v) => v
            .parse::<usize>()
            .map(|n| n.min(max))
            .map_err(|_| ApiError::BadRequest(format!("{key}: not a number"))),
    }
}

fn filter_of(q: &Query) -> Result<Option<Filter>, ApiError> {
    match q.get("filter").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(f) => Filter::parse(f).map(Some).map_err(|e| ApiError::BadRequest(e.to_string())),
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("store call failed: {e}")))
}

// ---- the router ----------------------------------------------------------------

/// The API and dashboard over `hub`.
pub(crate) fn router(hub: HubHandle) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<HubHandle>)> = Vec::new();
    for route in ROUTES {
        let filter = match route.method {
            "GET" => MethodFilter::GET,
            "PUT" => MethodFilter::PUT,
            "POST" => MethodFilter::POST,
            _ => MethodFilter::DELETE,
        };
        let i = match by_path.iter().position(|(p, _)| *p == route.pattern) {
            Some(i) => i,
            None => {
                by_path.push((route.pattern, MethodRouter::new()));
                by_path.len() - 1
            }
        };
        let m = std::mem::take(&mut by_path[i].1);
        by_path[i].1 = add(m, filter, route.op);
    }
    let mut app = Router::new();
    for (path, m) in by_path {
        app = app.route(path, m);
    }
    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            hyper::header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    app.fallback(|req: Request| async move {
        ApiError::NoRoute(req.uri().path().chars().take(200).collect())
    })
    .method_not_allowed_fallback(|| async { ApiError::Method })
    .layer(middleware::from_fn_with_state(hub.clone(), gate))
    // No MIME sniffing, no referrer, no caching of API data (the dashboard's
    // files set their own).
    .layer(header("x-content-type-options", "nosniff"))
    .layer(header("referrer-policy", "no-referrer"))
    .layer(header("cache-control", "no-store"))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        ApiError::Internal("the handler panicked".into()).into_response()
    }))
    .with_state(hub)
}

/// The handler of `op` on `m`.
fn add(m: MethodRouter<HubHandle>, f: MethodFilter, op: Op) -> MethodRouter<HubHandle> {
    match op {
        Op::Health => m.on(f, health),
        Op::Ready => m.on(f, ready),
        Op::Static => m.on(f, asset),
        Op::OpenApi => m.on(f, openapi_json),
        Op::Metrics => m.on(f, metrics),
        Op::AgentsList => m.on(f, agents_list),
        Op::AgentGet => m.on(f, agent_get),
        Op::AgentPut => m.on(f, agent_put),
        Op::AgentDelete => m.on(f, agent_delete),
        Op::AgentActivate => m.on(f, agent_activate),
        Op::AgentDeactivate => m.on(f, agent_deactivate),
        Op::Examples => m.on(f, examples),
        Op::EnvList => m.on(f, env_list),
        Op::EnvPut => m.on(f, env_put),
        Op::EnvDelete => m.on(f, env_delete),
        Op::ItemsQuery => m.on(f, items_query),
        Op::ItemsStream => m.on(f, items_stream),
        Op::ItemGet => m.on(f, item_get),
        Op::Console => m.on(f, console_query),
        Op::ConsoleStream => m.on(f, console_stream),
        Op::Jobs => m.on(f, jobs),
        Op::JobRun => m.on(f, job_run),
        Op::JobRemove => m.on(f, job_remove),
        Op::Workers => m.on(f, workers),
        Op::HubAction => m.on(f, hub_action),
        Op::LinkEvents => m.on(f, link_events),
        Op::LinkItems => m.on(f, link_items),
        Op::LinkConsole => m.on(f, link_console),
        Op::LinkStats => m.on(f, link_stats),
    }
}

/// Every request: counted, guarded (Host, Origin, content type), then, on
/// a route of the table, authenticated for what the route needs; the
/// caller goes into the request's extensions. Refusals are counted here,
/// bad requests by their status on the way out.
async fn gate(
    State(hub): State<HubHandle>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let c = &hub.state.counters;
    bump(&c.requests);
    if let Err(r) = guard::check(&hub.state.cfg, req.method(), req.headers()) {
        c.request_refused(r.reason());
        return ApiError::Refused(r).into_response();
    }
    let route = matched.and_then(|m| route_of(req.method().as_str(), m.as_str()));
    if let Some(route) = route {
        let auth = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
        match hub.state.tokens.check(route.need, auth) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
            }
            Err(Denied::Unauthenticated) => {
                bump(&c.unauthorized);
                return ApiError::Unauthenticated.into_response();
            }
            Err(Denied::Forbidden) => {
                bump(&c.forbidden);
                return ApiError::Forbidden.into_response();
            }
        }
    }
    let resp = next.run(req).await;
    match resp.status() {
        StatusCode::BAD_REQUEST
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => bump(&c.bad_requests),
        StatusCode::PAYLOAD_TOO_LARGE => bump(&c.too_large),
        StatusCode::FORBIDDEN => bump(&c.forbidden),
        _ => {}
    }
    resp
}

// ---- schemas (the OpenAPI description's, and the handlers' answers) ------------

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub status: &'static str,
    /// `dir` or `kube`.
    pub store: &'static str,
    pub agents: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentSummary {
    pub name: String,
    pub active: bool,
    /// Length of the source.
    pub bytes: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentSummary>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// The agent's JavaScript.
    pub source: String,
    /// Active or not; absent: a new agent is active, a replaced one keeps
    /// its state.
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Es5Warning {
    pub line: u32,
    pub column: u32,
    pub what: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SaveResult {
    pub name: String,
    pub active: bool,
    /// ES5 findings (with `scripting.es5Strict` off they are warnings).
    pub warnings: Vec<Es5Warning>,
}

/// 422: the agent does not compile.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CompileError {
    pub error: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentState {
    pub name: String,
    pub active: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Example {
    pub name: &'static str,
    pub source: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExampleList {
    pub examples: Vec<Example>,
}

/// Env names only: values are write-only (only workers receive them).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnvNames {
    pub names: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvBody {
    pub value: String,
}

/// An item in the agents' shape (`docs/protocols.md`): any JSON object as
/// a worker (or `onItemQueried`) left it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(value_type = Object)]
pub struct Item(pub Value);

/// A page of items, oldest first (written from the JSON each item was
/// serialised to once, when it came in).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// Items the ring holds now.
    pub held: usize,
}

/// A console line: `ts` (ms since the epoch), `node`, `runtime`, `agent`,
/// `level`, `text`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(value_type = Object)]
pub struct ConsoleLine(pub Value);

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsolePage {
    pub lines: Vec<ConsoleLine>,
    pub held: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobRow {
    pub worker: String,
    #[serde(flatten)]
    pub job: JobView,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobRow>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Subscribers {
    /// Subscribers (worker links, the hub's runtime) that heard it.
    pub subscribers: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRow {
    pub name: String,
    pub version: String,
    pub online: bool,
    /// Milliseconds since the epoch.
    pub last_seen: u64,
    #[schema(value_type = Object)]
    pub stats: Value,
    pub hooks: Vec<super::HookView>,
    pub jobs: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerRow>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub action: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub object: Value,
    /// Who called `hub.action` (a worker's name, which a worker token may
    /// only give as its own); `api` when absent.
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Delivered {
    pub delivered: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub accepted: usize,
}

// ---- handlers ------------------------------------------------------------------

#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, description = "The hub runs", body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "meta", security(()),
    responses((status = 200, description = "The script store is readable", body = Ready),
        (status = 503, description = "It is not", body = ErrorBody)))]
pub(crate) async fn ready(State(hub): State<HubHandle>) -> Result<Json<Ready>, ApiError> {
    let store = hub.state.store.clone();
    match blocking(move || store.list().map(|l| l.len())).await? {
        Ok(n) => Ok(Json(Ready { status: "ready", store: hub.state.store.kind(), agents: n })),
        Err(e) => Err(ApiError::NotReady(e)),
    }
}

/// The dashboard's files: a strict Content-Security-Policy that allows only
/// its own script and style (defence in depth: captured content is never
/// markup anyway).
async fn asset(req: Request) -> Result<Response, ApiError> {
    let (ctype, body) =
        dashboard::asset(req.uri().path()).ok_or(ApiError::NotFound("no such file"))?;
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    Ok((
        [
            (CONTENT_TYPE, ctype),
            (hyper::header::CONTENT_SECURITY_POLICY, csp),
            (hyper::header::X_FRAME_OPTIONS, "DENY"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "This description (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> Response {
    ([(CONTENT_TYPE, "application/json")], super::openapi::json()).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition (version 0.0.4): the skua_hub_* families of docs/metrics.md", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(hub): State<HubHandle>) -> Response {
    let text = super::metrics::render(&hub.state);
    ([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

#[utoipa::path(get, path = "/api/agents", tag = "agents",
    responses((status = 200, description = "Agents: names and state, no source", body = AgentList)))]
pub(crate) async fn agents_list(State(hub): State<HubHandle>) -> Result<Json<AgentList>, ApiError> {
    let store = hub.state.store.clone();
    let l = blocking(move || store.list()).await?.map_err(|e| store_error(&hub, e))?;
    let agents = l
        .iter()
        .map(|a| AgentSummary { name: a.name.clone(), active: a.active, bytes: a.source.len() })
        .collect();
    Ok(Json(AgentList { agents }))
}

#[utoipa::path(get, path = "/api/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, description = "One agent with its source", body = StoredAgent),
        (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn agent_get(
    State(hub): State<HubHandle>,
    Param(name): Param,
) -> Result<Json<StoredAgent>, ApiError> {
    let store = hub.state.store.clone();
    match blocking(move || store.get(&name)).await?.map_err(|e| store_error(&hub, e))? {
        Some(a) => Ok(Json(a)),
        None => Err(ApiError::NotFound("no such agent")),
    }
}

#[utoipa::path(put, path = "/api/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "Letters, digits, '.', '_', '-'; at most 128")),
    request_body = AgentBody,
    responses((status = 200, description = "Saved; workers and the hub's runtime load it", body = SaveResult),
        (status = 400, description = "Bad name or body", body = ErrorBody),
        (status = 413, description = "Over hub.max_body_bytes", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "It does not compile", body = CompileError)))]
pub(crate) async fn agent_put(
    State(hub): State<HubHandle>,
    Param(name): Param,
    JsonBody(body): JsonBody<AgentBody>,
) -> Result<Json<SaveResult>, ApiError> {
    let h = hub.clone();
    match blocking(move || h.save_agent(&name, &body.source, body.active)).await? {
        Ok((a, warnings)) => {
            let warnings = warnings
                .iter()
                .map(|f| Es5Warning { line: f.at.line, column: f.at.column, what: f.what })
                .collect();
            Ok(Json(SaveResult { name: a.name, active: a.active, warnings }))
        }
        Err(SaveError::Store(e)) => Err(store_error(&hub, e)),
        Err(SaveError::Rejected(e)) => Err(ApiError::Rejected(e)),
    }
}

#[utoipa::path(delete, path = "/api/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 204, description = "Deleted; workers unload it"),
        (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn agent_delete(
    State(hub): State<HubHandle>,
    Param(name): Param,
) -> Result<StatusCode, ApiError> {
    let h = hub.clone();
    match blocking(move || h.delete_agent(&name)).await?.map_err(|e| store_error(&hub, e))? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NotFound("no such agent")),
    }
}

async fn set_active(
    hub: HubHandle,
    name: String,
    active: bool,
) -> Result<Json<AgentState>, ApiError> {
    let h = hub.clone();
    match blocking(move || h.set_active(&name, active)).await?.map_err(|e| store_error(&hub, e))? {
        Some(a) => Ok(Json(AgentState { name: a.name, active: a.active })),
        None => Err(ApiError::NotFound("no such agent")),
    }
}

#[utoipa::path(post, path = "/api/agents/{name}/activate", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, description = "Active: workers load it", body = AgentState),
        (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn agent_activate(
    State(hub): State<HubHandle>,
    Param(name): Param,
) -> Result<Json<AgentState>, ApiError> {
    set_active(hub, name, true).await
}

#[utoipa::path(post, path = "/api/agents/{name}/deactivate", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, description = "Inactive: kept in the store, runs nowhere", body = AgentState),
        (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn agent_deactivate(
    State(hub): State<HubHandle>,
    Param(name): Param,
) -> Result<Json<AgentState>, ApiError> {
    set_active(hub, name, false).await
}

#[utoipa::path(get, path = "/api/examples", tag = "agents",
    responses((status = 200, description = "The bundled example agents", body = ExampleList)))]
pub(crate) async fn examples() -> Json<ExampleList> {
    let examples =
        dashboard::EXAMPLES.iter().map(|(name, source)| Example { name, source }).collect();
    Json(ExampleList { examples })
}

#[utoipa::path(get, path = "/api/env", tag = "env",
    responses((status = 200, description = "Env names (values are write-only)", body = EnvNames)))]
pub(crate) async fn env_list(State(hub): State<HubHandle>) -> Result<Json<EnvNames>, ApiError> {
    let store = hub.state.store.clone();
    let env = blocking(move || store.env()).await?.map_err(|e| store_error(&hub, e))?;
    Ok(Json(EnvNames { names: env.into_keys().collect() }))
}

#[utoipa::path(put, path = "/api/env/{name}", tag = "env",
    params(("name" = String, Path, description = "Letters, digits, '_'; not starting with a digit")),
    request_body = EnvBody,
    responses((status = 204, description = "Set; workers get the new env"),
        (status = 400, description = "Bad name or body", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody)))]
pub(crate) async fn env_put(
    State(hub): State<HubHandle>,
    Param(name): Param,
    JsonBody(body): JsonBody<EnvBody>,
) -> Result<StatusCode, ApiError> {
    let h = hub.clone();
    blocking(move || h.set_env(&name, Some(&body.value)))
        .await?
        .map_err(|e| store_error(&hub, e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/env/{name}", tag = "env",
    params(("name" = String, Path, description = "The variable")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such variable", body = ErrorBody)))]
pub(crate) async fn env_delete(
    State(hub): State<HubHandle>,
    Param(name): Param,
) -> Result<StatusCode, ApiError> {
    let h = hub.clone();
    match blocking(move || h.set_env(&name, None)).await?.map_err(|e| store_error(&hub, e))? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NotFound("no such variable")),
    }
}

/// `{"<key>": [json, json, ...], "held": N}` from pre-serialised entries.
fn page(key: &str, entries: &[Arc<super::feed::Entry>], held: usize) -> Response {
    let mut b = Vec::with_capacity(64 + entries.iter().map(|e| e.json.len() + 1).sum::<usize>());
    b.extend_from_slice(format!("{{\"{key}\":[").as_bytes());
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(&e.json);
    }
    b.extend_from_slice(format!("],\"held\":{held}}}").as_bytes());
    ([(CONTENT_TYPE, "application/json")], b).into_response()
}

#[utoipa::path(get, path = "/api/items", tag = "items",
    params(("filter" = Option<String>, Query, description = "Item filter (docs/config.md)"),
        ("limit" = Option<usize>, Query, description = "Most items (100; at most hub.max_query_items)")),
    responses((status = 200, description = "Recent items matching the filter, oldest first", body = ItemPage),
        (status = 400, description = "Bad filter or limit", body = ErrorBody)))]
pub(crate) async fn items_query(
    State(hub): State<HubHandle>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    hub.items_queried();
    let q = query(raw);
    let f = filter_of(&q)?;
    let n = limit(&q, "limit", 100, hub.state.cfg.max_query_items)?;
    let (entries, held) = {
        let g = lock(&hub.state.items);
        (g.recent(f.as_ref(), n), g.held().0)
    };
    Ok(page("items", &entries, held))
}

#[utoipa::path(get, path = "/api/items/stream", tag = "items",
    params(("filter" = Option<String>, Query, description = "Item filter"),
        ("backlog" = Option<usize>, Query, description = "Recent matching items sent first (0)")),
    responses((status = 200, description = "Server-sent events `item` (`id:` is the item's sequence number)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 429, description = "This token holds hub.max_streams_per_token streams", body = ErrorBody),
        (status = 503, description = "hub.max_sse_clients viewer streams are open", body = ErrorBody)))]
pub(crate) async fn items_stream(
    State(hub): State<HubHandle>,
    Extension(caller): Extension<Caller>,
    MaybeConn(conn): MaybeConn,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(raw);
    let f = filter_of(&q)?;
    viewer_stream(&hub, &caller, conn, &q, true, f)
}

fn viewer_stream(
    hub: &HubHandle,
    caller: &Caller,
    conn: Option<Conn>,
    q: &Query,
    items: bool,
    f: Option<Filter>,
) -> Result<Response, ApiError> {
    let backlog = limit(q, "backlog", 0, hub.state.cfg.max_query_items)?;
    let o = streams::open(&hub.state, Class::Viewer, caller.token, None, conn)?;
    let feed = if items { &hub.state.items } else { &hub.state.console };
    let dropped = lock(feed).attach(o.tx, f, backlog);
    hub.state.counters.sse_dropped.inc_by(dropped);
    Ok(streams::response(&hub.state, o.rx, o.slot))
}

#[utoipa::path(get, path = "/api/items/{id}", tag = "items",
    params(("id" = String, Path, description = "The item's id (percent-encode the `/`)")),
    responses((status = 200, description = "The item as the hub holds it", body = Item),
        (status = 404, description = "No such item (it may have left the ring)", body = ErrorBody)))]
pub(crate) async fn item_get(
    State(hub): State<HubHandle>,
    Param(id): Param,
) -> Result<Response, ApiError> {
    let e = lock(&hub.state.items)
        .find_id(&id)
        .ok_or(ApiError::NotFound("no such item (it may have left the ring)"))?;
    Ok(([(CONTENT_TYPE, "application/json")], e.json.clone()).into_response())
}

#[utoipa::path(get, path = "/api/console", tag = "console",
    params(("limit" = Option<usize>, Query, description = "Most lines (100; at most hub.max_query_items)")),
    responses((status = 200, description = "Recent console lines (admin tokens only)", body = ConsolePage)))]
pub(crate) async fn console_query(
    State(hub): State<HubHandle>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(raw);
    let n = limit(&q, "limit", 100, hub.state.cfg.max_query_items)?;
    let (entries, held) = {
        let g = lock(&hub.state.console);
        (g.recent(None, n), g.held().0)
    };
    Ok(page("lines", &entries, held))
}

#[utoipa::path(get, path = "/api/console/stream", tag = "console",
    params(("backlog" = Option<usize>, Query, description = "Recent lines sent first (0)")),
    responses((status = 200, description = "Server-sent events `console` (admin tokens only)", content_type = "text/event-stream", body = String),
        (status = 429, description = "This token holds hub.max_streams_per_token streams", body = ErrorBody),
        (status = 503, description = "hub.max_sse_clients viewer streams are open", body = ErrorBody)))]
pub(crate) async fn console_stream(
    State(hub): State<HubHandle>,
    Extension(caller): Extension<Caller>,
    MaybeConn(conn): MaybeConn,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    viewer_stream(&hub, &caller, conn, &query(raw), false, None)
}

#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    responses((status = 200, description = "Jobs as workers (and the hub, as worker `hub`) reported them", body = JobList)))]
pub(crate) async fn jobs(State(hub): State<HubHandle>) -> Json<JobList> {
    let w = lock(&hub.state.workers);
    let jobs = w
        .iter()
        .flat_map(|(name, e)| {
            e.report.jobs.iter().map(move |j| JobRow { worker: name.clone(), job: j.clone() })
        })
        .collect();
    Json(JobList { jobs })
}

fn job_command(hub: &HubHandle, tag: String, raw: Option<String>, op: JobOp) -> Response {
    let q = query(raw);
    let tag = (tag != "*").then_some(tag);
    let n = hub.job_command(q.get("worker").map(String::as_str), tag.as_deref(), op);
    (StatusCode::ACCEPTED, Json(Subscribers { subscribers: n })).into_response()
}

#[utoipa::path(post, path = "/api/jobs/{tag}/run", tag = "jobs",
    params(("tag" = String, Path, description = "The job's tag (`*`: all)"),
        ("worker" = Option<String>, Query, description = "Only this worker (`hub`: the hub's runtime)")),
    responses((status = 202, description = "Sent to the workers", body = Subscribers)))]
pub(crate) async fn job_run(
    State(hub): State<HubHandle>,
    Param(tag): Param,
    RawQuery(raw): RawQuery,
) -> Response {
    job_command(&hub, tag, raw, JobOp::Run)
}

#[utoipa::path(delete, path = "/api/jobs/{tag}", tag = "jobs",
    params(("tag" = String, Path, description = "The job's tag (`*`: all)"),
        ("worker" = Option<String>, Query, description = "Only this worker")),
    responses((status = 202, description = "Sent to the workers", body = Subscribers)))]
pub(crate) async fn job_remove(
    State(hub): State<HubHandle>,
    Param(tag): Param,
    RawQuery(raw): RawQuery,
) -> Response {
    job_command(&hub, tag, raw, JobOp::Remove)
}

#[utoipa::path(get, path = "/api/workers", tag = "workers",
    responses((status = 200, description = "Workers and their last reports", body = WorkerList)))]
pub(crate) async fn workers(State(hub): State<HubHandle>) -> Json<WorkerList> {
    let timeout = Duration::from_millis(hub.state.cfg.worker_timeout_ms);
    let w = lock(&hub.state.workers);
    let workers = w
        .values()
        .map(|e| WorkerRow {
            name: e.report.name.clone(),
            version: e.report.version.clone(),
            online: e.seen.elapsed() < timeout,
            last_seen: e
                .seen_wall
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            stats: e.report.stats.clone(),
            hooks: e.report.hooks.clone(),
            jobs: e.report.jobs.len(),
        })
        .collect();
    Json(WorkerList { workers })
}

/// A worker token speaks only as its own worker: the name it is pinned
/// to, and no name another token (or the hub) holds.
fn check_worker_name(hub: &HubHandle, caller: &Caller, name: &str) -> Result<(), ApiError> {
    if caller.pinned.as_deref().is_some_and(|p| p != name) {
        hub.state.counters.worker_refused("identity");
        return Err(WorkerRefused::Identity(name.to_string()).into());
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/hub/action", tag = "link",
    request_body = ActionBody,
    responses((status = 202, description = "Delivered to the hub-side onHubAction (worker or admin token)", body = Delivered),
        (status = 400, description = "Empty action or bad body", body = ErrorBody),
        (status = 403, description = "`from` names another token's worker", body = ErrorBody)))]
pub(crate) async fn hub_action(
    State(hub): State<HubHandle>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<(StatusCode, Json<Delivered>), ApiError> {
    let from = body.from.unwrap_or_else(|| "api".into());
    if caller.role == Role::Worker {
        check_worker_name(&hub, &caller, &from)?;
        if !hub.may_speak_as(&from, &Reporter::Token(caller.token)) {
            hub.state.counters.worker_refused("identity");
            return Err(WorkerRefused::Identity(from).into());
        }
    }
    let n = hub
        .hub_action(&from, &body.action, body.object)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(Delivered { delivered: n })))
}

fn worker_name(q: &Query) -> Result<String, ApiError> {
    match q.get("worker") {
        Some(w) if !w.is_empty() && w.len() <= 253 => Ok(w.clone()),
        _ => Err(ApiError::BadRequest(
            "worker: the worker's name is needed (?worker=NAME, at most 253 characters)".into(),
        )),
    }
}

#[utoipa::path(get, path = "/api/link/events", tag = "link",
    params(("worker" = String, Query, description = "The worker's name (owned by the first token that uses it)")),
    responses((status = 200, description = "Server-sent events: `snapshot` (a LinkSnapshot: active agents and env), then agentChanged, agentRemoved, envChanged, job and demand events; a link that falls behind gets a new snapshot", content_type = "text/event-stream", body = LinkSnapshot),
        (status = 400, description = "No worker name", body = ErrorBody),
        (status = 403, description = "The name belongs to another token or to the hub", body = ErrorBody),
        (status = 429, description = "This token holds hub.max_links_per_token links", body = ErrorBody),
        (status = 503, description = "hub.max_worker_links links are open", body = ErrorBody)))]
pub(crate) async fn link_events(
    State(hub): State<HubHandle>,
    Extension(caller): Extension<Caller>,
    MaybeConn(conn): MaybeConn,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let worker = worker_name(&query(raw))?;
    check_worker_name(&hub, &caller, &worker)?;
    hub.claim_link(&worker, &Reporter::Token(caller.token))?;
    let o = streams::open(&hub.state, Class::Link, caller.token, Some(&worker), conn)?;
    // Subscribe before reading the snapshot so no change falls between.
    let mut events = hub.subscribe();
    let h = hub.clone();
    let snapshot = blocking(move || h.snapshot()).await?.map_err(|e| store_error(&hub, e))?;
    let frame = |name: &str, v: &Value| super::feed::Frame {
        event: name.to_string().into(),
        id: None,
        json: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    };
    let tx = o.tx;
    let _ = tx.send(frame("snapshot", &json!(snapshot))).await;
    let (st, h) = (hub.state.clone(), hub.clone());
    tokio::spawn(async move {
        let hub = h;
        use tokio::sync::broadcast::error::RecvError;
        loop {
            // A link that went away ends this task now, not at the next event.
            let next = tokio::select! {
                ev = events.recv() => ev,
                _ = tx.tx.closed() => return,
            };
            let ev = match next {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    st.counters.events_lagged.inc_by(n);
                    let h = hub.clone();
                    let Ok(Ok(s)) = tokio::task::spawn_blocking(move || h.snapshot()).await else {
                        continue;
                    };
                    if tx.send(frame("snapshot", &json!(s))).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let for_this = match &ev {
                HubEvent::Job { worker: Some(w), .. } => *w == worker,
                // Hub actions are for the hub-side runtime, not workers.
                HubEvent::HubAction { .. } => false,
                _ => true,
            };
            if !for_this {
                continue;
            }
            let v = json!(ev);
            let name = v["type"].as_str().unwrap_or("event").to_string();
            // Waiting here is fine: the broadcast buffers, and lags (then
            // resyncs) a link that stays behind; one that takes nothing is
            // evicted (hub.stream_stall_ms).
            if tx.send(frame(&name, &v)).await.is_err() {
                return;
            }
        }
    });
    Ok(streams::response(&hub.state, o.rx, o.slot))
}

fn publish_all(hub: &HubHandle, list: Vec<Value>, items: bool) -> Result<Json<Accepted>, ApiError> {
    if let Some(i) = list.iter().position(|v| !v.is_object()) {
        return Err(ApiError::BadRequest(format!("element {i} is not an object")));
    }
    let n = list.len();
    for v in list {
        if items {
            hub.publish_item(v)
        } else {
            hub.publish_console(v)
        }
    }
    Ok(Json(Accepted { accepted: n }))
}

#[utoipa::path(post, path = "/api/link/items", tag = "link",
    request_body(content = Vec<Item>, description = "Items in the agents' shape"),
    responses((status = 202, description = "Published (each object; the ring evicts the oldest)", body = Accepted),
        (status = 400, description = "Not a list of objects", body = ErrorBody),
        (status = 413, description = "Over hub.max_body_bytes", body = ErrorBody)))]
pub(crate) async fn link_items(
    State(hub): State<HubHandle>,
    JsonBody(list): JsonBody<Vec<Value>>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    publish_all(&hub, list, true).map(|j| (StatusCode::ACCEPTED, j))
}

#[utoipa::path(post, path = "/api/link/console", tag = "link",
    request_body(content = Vec<ConsoleLine>, description = "Console lines"),
    responses((status = 202, description = "Published", body = Accepted),
        (status = 400, description = "Not a list of objects", body = ErrorBody),
        (status = 413, description = "Over hub.max_body_bytes", body = ErrorBody)))]
pub(crate) async fn link_console(
    State(hub): State<HubHandle>,
    JsonBody(list): JsonBody<Vec<Value>>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    publish_all(&hub, list, false).map(|j| (StatusCode::ACCEPTED, j))
}

#[utoipa::path(post, path = "/api/link/stats", tag = "link",
    request_body = WorkerReport,
    responses((status = 204, description = "Recorded"),
        (status = 400, description = "Bad report", body = ErrorBody),
        (status = 403, description = "The name belongs to another token or to the hub", body = ErrorBody),
        (status = 429, description = "hub.max_workers workers are known", body = ErrorBody)))]
pub(crate) async fn link_stats(
    State(hub): State<HubHandle>,
    Extension(caller): Extension<Caller>,
    JsonBody(report): JsonBody<WorkerReport>,
) -> Result<StatusCode, ApiError> {
    if report.name.is_empty() || report.name.len() > 253 {
        return Err(ApiError::BadRequest("name: 1 to 253 characters".into()));
    }
    check_worker_name(&hub, &caller, &report.name)?;
    hub.report_worker_as(report, &Reporter::Token(caller.token))?;
    Ok(StatusCode::NO_CONTENT)
}
