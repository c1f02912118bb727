//! The hub's HTTP API: one route table ([`ROUTES`]) says for every method
//! and path what it needs (public, read, admin, worker); the table drives
//! authentication, dispatch, the OpenAPI description's test and the
//! 401/403 tests.
//!
//! Bad input never panics: an unknown route is 404, a wrong method 405,
//! malformed JSON or a bad filter 400, a body over `hub.max_body_bytes`
//! 413, an agent that does not compile 422. Errors are `{"error": "..."}`.
//! Store calls run on tokio's blocking pool.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Denied, Need};
use super::filter::Filter;
use super::sse::{Slot, SseBody};
use super::{
    bump, dashboard, lock, HubEvent, HubHandle, HubState, JobOp, SaveError, StoreError,
    WorkerReport,
};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
type Resp = Response<Body>;

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

/// Every route, in matching order (literal paths before `{x}` ones).
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
    r("GET", "/api/console", Need::Read, Op::Console),
    r("GET", "/api/console/stream", Need::Read, Op::ConsoleStream),
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

/// The OpenAPI 3 description served at `/api/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn match_pattern(pattern: &str, path: &str) -> Option<Vec<String>> {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    if p.len() != s.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in p.iter().zip(&s) {
        if p.starts_with('{') {
            if s.is_empty() {
                return None;
            }
            params.push(percent_decode(s)?);
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// The route for `method` and `path`: `Err(true)` if the path exists with
/// other methods, `Err(false)` if not at all.
pub(crate) fn find(method: &str, path: &str) -> Result<(Route, Vec<String>), bool> {
    let mut path_known = false;
    for route in ROUTES {
        if let Some(params) = match_pattern(route.pattern, path) {
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                return Ok((*route, params));
            }
            path_known = true;
        }
    }
    Err(path_known)
}

// ---- responses -----------------------------------------------------------------

fn with_type(status: StatusCode, ctype: &'static str, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    with_type(status, "application/json", body.into())
}

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Resp {
    json_resp(status, &json!({ "error": msg.to_string() }))
}

fn no_content() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

fn store_error(state: &HubState, e: &StoreError) -> Resp {
    match e {
        StoreError::InvalidName(_) | StoreError::InvalidEnvName(_) => {
            bump(&state.counters.bad_requests);
            error(StatusCode::BAD_REQUEST, e)
        }
        _ => {
            bump(&state.counters.store_errors);
            tracing::error!("hub store ({}): {e}", state.store.kind());
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("script store: {e}"))
        }
    }
}

fn bad_request(state: &HubState, msg: impl std::fmt::Display) -> Resp {
    bump(&state.counters.bad_requests);
    error(StatusCode::BAD_REQUEST, msg)
}

/// Headers every answer carries: no MIME sniffing, no caching of API data,
/// and for the dashboard a policy that allows only its own script and
/// style (defence in depth: captured content is never markup anyway).
fn finish(mut resp: Resp, op: Op) -> Resp {
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if op == Op::Static {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    } else {
        h.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
    resp
}

// ---- requests ------------------------------------------------------------------

fn query(req: &Request<hyper::body::Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn body_bytes(state: &HubState, req: Request<hyper::body::Incoming>) -> Result<Bytes, Resp> {
    let max = state.cfg.max_body_bytes;
    let too_large = || {
        bump(&state.counters.too_large);
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {max} bytes (hub.max_body_bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(too_large())
        }
        Err(e) => Err(bad_request(state, format!("reading the request body: {e}"))),
    }
}

async fn body_json<T: DeserializeOwned>(
    state: &HubState,
    req: Request<hyper::body::Incoming>,
) -> Result<T, Resp> {
    let b = body_bytes(state, req).await?;
    serde_json::from_slice(&b).map_err(|e| bad_request(state, format!("invalid JSON body: {e}")))
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Resp> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("store call failed: {e}")))
}

fn limit(
    q: &HashMap<String, String>,
    key: &str,
    default: usize,
    max: usize,
) -> Result<usize, String> {
    match q.get(key) {
        None => Ok(default.min(max)),
        Some(v) => {
            v.parse::<usize>().map(|n| n.min(max)).map_err(|_| format!("{key}: not a number"))
        }
    }
}

fn filter_of(q: &HashMap<String, String>) -> Result<Option<Filter>, String> {
    match q.get("filter").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(f) => Filter::parse(f).map(Some).map_err(|e| e.to_string()),
    }
}

fn sse_response(rx: tokio::sync::mpsc::Receiver<Bytes>, slot: Slot) -> Resp {
    let mut resp = Response::new(SseBody::new(rx, slot).boxed_unsync());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// `{"<key>": [json, json, ...]}` from pre-serialised entries.
fn json_list(key: &str, parts: impl Iterator<Item = Bytes>, extra: &str) -> Bytes {
    let mut b = Vec::with_capacity(4096);
    b.extend_from_slice(format!("{{\"{key}\":[").as_bytes());
    for (i, p) in parts.enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(&p);
    }
    b.push(b']');
    b.extend_from_slice(extra.as_bytes());
    b.push(b'}');
    Bytes::from(b)
}

// ---- the server ----------------------------------------------------------------

pub(crate) async fn serve(listener: tokio::net::TcpListener, state: Arc<HubState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(state: Arc<HubState>, req: Request<hyper::body::Incoming>) -> Resp {
    bump(&state.counters.requests);
    let path = req.uri().path().to_string();
    let (route, params) = match find(req.method().as_str(), &path) {
        Ok(x) => x,
        Err(true) => {
            return finish(error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"), Op::Health)
        }
        Err(false) => {
            return finish(
                error(StatusCode::NOT_FOUND, format!("no such path: {path}")),
                Op::Health,
            )
        }
    };
    let auth = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match state.tokens.check(route.need, auth) {
        Ok(_) => {}
        Err(Denied::Unauthenticated) => {
            bump(&state.counters.unauthorized);
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "a bearer token is needed (Authorization: Bearer TOKEN)",
            );
            r.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"skua\""));
            return finish(r, route.op);
        }
        Err(Denied::Forbidden) => {
            bump(&state.counters.forbidden);
            return finish(error(StatusCode::FORBIDDEN, "this token may not do that"), route.op);
        }
    }
    let resp = dispatch(&state, route.op, &params, &path, req).await.unwrap_or_else(|r| r);
    finish(resp, route.op)
}

fn param(params: &[String]) -> String {
    params.first().cloned().unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    source: String,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvBody {
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action: String,
    #[serde(default)]
    object: Value,
    /// Who called `hub.action` (a worker's name); `api` when absent.
    #[serde(default)]
    from: Option<String>,
}

async fn dispatch(
    state: &Arc<HubState>,
    op: Op,
    params: &[String],
    path: &str,
    req: Request<hyper::body::Incoming>,
) -> Result<Resp, Resp> {
    let hub = HubHandle { state: state.clone() };
    let q = query(&req);
    Ok(match op {
        Op::Health => json_resp(StatusCode::OK, &json!({"status": "ok"})),
        Op::Ready => {
            let store = state.store.clone();
            match blocking(move || store.list().map(|l| l.len())).await? {
                Ok(n) => json_resp(
                    StatusCode::OK,
                    &json!({"status": "ready", "store": state.store.kind(), "agents": n}),
                ),
                Err(e) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("script store not readable: {e}"),
                ),
            }
        }
        Op::Static => match dashboard::asset(path) {
            Some((ctype, body)) => with_type(StatusCode::OK, ctype, Bytes::from_static(body)),
            None => error(StatusCode::NOT_FOUND, "no such file"),
        },
        Op::OpenApi => json_bytes(StatusCode::OK, Bytes::from_static(OPENAPI.as_bytes())),
        Op::Metrics => with_type(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            Bytes::from(render_metrics(state)),
        ),
        Op::AgentsList => {
            let store = state.store.clone();
            match blocking(move || store.list()).await? {
                Ok(l) => {
                    let agents: Vec<Value> = l.iter().map(|a| json!({"name": a.name, "active": a.active, "bytes": a.source.len()})).collect();
                    json_resp(StatusCode::OK, &json!({ "agents": agents }))
                }
                Err(e) => store_error(state, &e),
            }
        }
        Op::AgentGet => {
            let (store, name) = (state.store.clone(), param(params));
            match blocking(move || store.get(&name)).await? {
                Ok(Some(a)) => json_resp(StatusCode::OK, &json!(a)),
                Ok(None) => error(StatusCode::NOT_FOUND, "no such agent"),
                Err(e) => store_error(state, &e),
            }
        }
        Op::AgentPut => {
            let body: AgentBody = body_json(state, req).await?;
            let name = param(params);
            match blocking(move || hub.save_agent(&name, &body.source, body.active)).await? {
                Ok((a, warnings)) => {
                    let w: Vec<Value> = warnings
                        .iter()
                        .map(|f| json!({"line": f.at.line, "column": f.at.column, "what": f.what}))
                        .collect();
                    json_resp(
                        StatusCode::OK,
                        &json!({"name": a.name, "active": a.active, "warnings": w}),
                    )
                }
                Err(SaveError::Store(e)) => store_error(state, &e),
                Err(SaveError::Rejected(e)) => {
                    bump(&state.counters.bad_requests);
                    let at = e.position();
                    json_resp(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &json!({"error": e.to_string(), "line": at.map(|p| p.line), "column": at.map(|p| p.column)}),
                    )
                }
            }
        }
        Op::AgentDelete => {
            let name = param(params);
            match blocking(move || hub.delete_agent(&name)).await? {
                Ok(true) => no_content(),
                Ok(false) => error(StatusCode::NOT_FOUND, "no such agent"),
                Err(e) => store_error(state, &e),
            }
        }
        Op::AgentActivate | Op::AgentDeactivate => {
            let (name, active) = (param(params), op == Op::AgentActivate);
            match blocking(move || hub.set_active(&name, active)).await? {
                Ok(Some(a)) => {
                    json_resp(StatusCode::OK, &json!({"name": a.name, "active": a.active}))
                }
                Ok(None) => error(StatusCode::NOT_FOUND, "no such agent"),
                Err(e) => store_error(state, &e),
            }
        }
        Op::Examples => {
            let ex: Vec<Value> = dashboard::EXAMPLES
                .iter()
                .map(|(name, source)| json!({"name": name, "source": source}))
                .collect();
            json_resp(StatusCode::OK, &json!({ "examples": ex }))
        }
        Op::EnvList => {
            let store = state.store.clone();
            match blocking(move || store.env()).await? {
                // Names only: values never leave the hub this way.
                Ok(env) => {
                    json_resp(StatusCode::OK, &json!({"names": env.keys().collect::<Vec<_>>()}))
                }
                Err(e) => store_error(state, &e),
            }
        }
        Op::EnvPut | Op::EnvDelete => {
            let value = if op == Op::EnvPut {
                Some(body_json::<EnvBody>(state, req).await?.value)
            } else {
                None
            };
            let name = param(params);
            match blocking(move || hub.set_env(&name, value.as_deref())).await? {
                Ok(true) => no_content(),
                Ok(false) => error(StatusCode::NOT_FOUND, "no such variable"),
                Err(e) => store_error(state, &e),
            }
        }
        Op::ItemsQuery | Op::Console => {
            if op == Op::ItemsQuery {
                hub.items_queried();
            }
            let (feed, key) = if op == Op::ItemsQuery {
                (&state.items, "items")
            } else {
                (&state.console, "lines")
            };
            let f = filter_of(&q).map_err(|e| bad_request(state, e))?;
            let n = limit(&q, "limit", 100, state.cfg.max_query_items)
                .map_err(|e| bad_request(state, e))?;
            let f = if op == Op::ItemsQuery { f } else { None };
            let (entries, total) = {
                let g = lock(feed);
                (g.recent(f.as_ref(), n), g.ring.len())
            };
            json_bytes(
                StatusCode::OK,
                json_list(key, entries.into_iter().map(|e| e.json), &format!(",\"held\":{total}")),
            )
        }
        Op::ItemsStream | Op::ConsoleStream => {
            let feed = if op == Op::ItemsStream { &state.items } else { &state.console };
            let f = if op == Op::ItemsStream {
                filter_of(&q).map_err(|e| bad_request(state, e))?
            } else {
                None
            };
            let backlog = limit(&q, "backlog", 0, state.cfg.max_query_items)
                .map_err(|e| bad_request(state, e))?;
            let Some(slot) = Slot::take(state) else {
                return Ok(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many live streams (hub.max_sse_clients)",
                ));
            };
            let rx = lock(feed).attach(f, backlog, state.cfg.sse_client_queue);
            sse_response(rx, slot)
        }
        Op::ItemGet => {
            let id = param(params);
            let found = lock(&state.items)
                .ring
                .iter()
                .rev()
                .find(|e| e.value["id"].as_str() == Some(id.as_str()))
                .map(|e| e.json.clone());
            match found {
                Some(j) => json_bytes(StatusCode::OK, j),
                None => error(StatusCode::NOT_FOUND, "no such item (it may have left the ring)"),
            }
        }
        Op::Jobs => {
            let w = lock(&state.workers);
            let jobs: Vec<Value> = w
                .iter()
                .flat_map(|(name, e)| e.report.jobs.iter().map(move |j| (name, j)))
                .map(|(name, j)| {
                    let mut v = json!(j);
                    v["worker"] = json!(name);
                    v
                })
                .collect();
            json_resp(StatusCode::OK, &json!({ "jobs": jobs }))
        }
        Op::JobRun | Op::JobRemove => {
            let tag = param(params);
            let tag = (tag != "*").then_some(tag);
            let jop = if op == Op::JobRun { JobOp::Run } else { JobOp::Remove };
            let n = hub.job_command(q.get("worker").map(String::as_str), tag.as_deref(), jop);
            json_resp(StatusCode::ACCEPTED, &json!({ "subscribers": n }))
        }
        Op::Workers => {
            let timeout = Duration::from_millis(state.cfg.worker_timeout_ms);
            let w = lock(&state.workers);
            let list: Vec<Value> = w
                .values()
                .map(|e| {
                    let seen = e.seen_wall.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
                    json!({
                        "name": e.report.name, "version": e.report.version, "online": e.seen.elapsed() < timeout,
                        "lastSeen": seen, "stats": e.report.stats, "hooks": e.report.hooks, "jobs": e.report.jobs.len(),
                    })
                })
                .collect();
            json_resp(StatusCode::OK, &json!({ "workers": list }))
        }
        Op::HubAction => {
            let body: ActionBody = body_json(state, req).await?;
            let from = body.from.unwrap_or_else(|| "api".into());
            match hub.hub_action(&from, &body.action, body.object) {
                Ok(n) => json_resp(StatusCode::ACCEPTED, &json!({ "delivered": n })),
                Err(e) => bad_request(state, e),
            }
        }
        Op::LinkEvents => return link_events(state, hub, &q).await,
        Op::LinkItems | Op::LinkConsole => {
            let list: Vec<Value> = body_json(state, req).await?;
            if let Some(i) = list.iter().position(|v| !v.is_object()) {
                return Err(bad_request(state, format!("element {i} is not an object")));
            }
            let n = list.len();
            for v in list {
                if op == Op::LinkItems {
                    hub.publish_item(v)
                } else {
                    hub.publish_console(v)
                }
            }
            json_resp(StatusCode::ACCEPTED, &json!({ "accepted": n }))
        }
        Op::LinkStats => {
            let report: WorkerReport = body_json(state, req).await?;
            if report.name.is_empty() || report.name.len() > 253 {
                return Err(bad_request(state, "name: 1 to 253 characters"));
            }
            match hub.report_worker(report) {
                Ok(()) => no_content(),
                Err(e) => error(StatusCode::TOO_MANY_REQUESTS, e),
            }
        }
    })
}

/// A worker's event stream: a `snapshot` (active agents and env), then
/// every change. A worker that falls behind gets a new `snapshot`.
async fn link_events(
    state: &Arc<HubState>,
    hub: HubHandle,
    q: &HashMap<String, String>,
) -> Result<Resp, Resp> {
    let Some(worker) = q.get("worker").filter(|w| !w.is_empty()).cloned() else {
        return Err(bad_request(state, "worker: the worker's name is needed (?worker=NAME)"));
    };
    let Some(slot) = Slot::take(state) else {
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live streams (hub.max_sse_clients)",
        ));
    };
    // Subscribe before reading the snapshot so no change falls between.
    let mut events = hub.subscribe();
    let h = hub.clone();
    let snapshot = match blocking(move || h.snapshot()).await? {
        Ok(s) => s,
        Err(e) => return Ok(store_error(state, &e)),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(state.cfg.sse_client_queue);
    let frame = |name: &str, v: &Value| {
        super::sse_frame(name, None, &serde_json::to_vec(v).unwrap_or_default())
    };
    let _ = tx.try_send(frame("snapshot", &json!(snapshot)));
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            // A link that went away ends this task now, not at the next event.
            let next = tokio::select! {
                ev = events.recv() => ev,
                _ = tx.closed() => return,
            };
            let ev = match next {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    st.counters.events_lagged.fetch_add(n, Ordering::Relaxed);
                    let h = hub.clone();
                    let Ok(Ok(s)) = tokio::task::spawn_blocking(move || h.snapshot()).await else {
                        continue;
                    };
                    if tx.send(frame("snapshot", &json!(s))).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
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
            // resyncs) a link that stays behind.
            if tx.send(frame(&name, &v)).await.is_err() {
                return;
            }
        }
    });
    Ok(sse_response(rx, slot))
}

fn render_metrics(state: &HubState) -> String {
    use crate::metrics::write_family;
    let snap = crate::metrics::MetricsSnapshot {
        uptime: Some(state.started.elapsed()),
        kubernetes: state.kube.get().map(|k| k.snapshot()),
        ..Default::default()
    };
    let mut out = crate::metrics::render(&snap);
    let c = &state.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let counters = [
        ("skua_hub_items_published_total", "Items published to the hub.", get(&c.items_published)),
        ("skua_hub_items_evicted_total", "Items pushed out of the hub's ring (hub.items_capacity).", get(&c.items_evicted)),
        ("skua_hub_items_unqueried_total", "Items published without the hub's onItemQueried because its queue was full (hub.queried_queue).", get(&c.items_unqueried)),
        ("skua_hub_console_lines_total", "Console lines published to the hub.", get(&c.console_lines)),
        ("skua_hub_console_evicted_total", "Console lines pushed out of the hub's ring (hub.console_capacity).", get(&c.console_evicted)),
        ("skua_hub_sse_dropped_total", "Live-stream events dropped because the client's queue was full (hub.sse_client_queue).", get(&c.sse_dropped)),
        ("skua_hub_sse_refused_total", "Live streams refused at hub.max_sse_clients.", get(&c.sse_refused)),
        ("skua_hub_actions_total", "hub.action calls received.", get(&c.hub_actions)),
        ("skua_hub_actions_unheard_total", "hub.action calls no subscriber took.", get(&c.hub_actions_unheard)),
        ("skua_hub_events_lagged_total", "Events worker links missed (they resynced from a snapshot).", get(&c.events_lagged)),
        ("skua_hub_worker_reports_total", "Worker reports received.", get(&c.worker_reports)),
        ("skua_hub_workers_refused_total", "Worker reports refused at hub.max_workers.", get(&c.workers_refused)),
        ("skua_hub_requests_total", "HTTP requests received.", get(&c.requests)),
        ("skua_hub_unauthorized_total", "Requests refused with 401 (no or unknown token).", get(&c.unauthorized)),
        ("skua_hub_forbidden_total", "Requests refused with 403 (the token's role may not).", get(&c.forbidden)),
        ("skua_hub_bad_requests_total", "Requests refused with 400 or 422.", get(&c.bad_requests)),
        ("skua_hub_too_large_total", "Requests refused with 413 (hub.max_body_bytes).", get(&c.too_large)),
        ("skua_hub_store_errors_total", "Script store operations that failed.", get(&c.store_errors)),
    ];
    for (name, help, v) in counters {
        write_family(&mut out, name, "counter", help, v as f64);
    }
    let held = lock(&state.items).ring.len();
    write_family(
        &mut out,
        "skua_hub_items_held",
        "gauge",
        "Items in the hub's ring now.",
        held as f64,
    );
    write_family(
        &mut out,
        "skua_hub_sse_clients",
        "gauge",
        "Live streams open now.",
        state.sse_clients.load(Ordering::Relaxed) as f64,
    );
    let timeout = Duration::from_millis(state.cfg.worker_timeout_ms);
    let online = lock(&state.workers).values().filter(|e| e.seen.elapsed() < timeout).count();
    write_family(
        &mut out,
        "skua_hub_workers_online",
        "gauge",
        "Workers heard from within hub.worker_timeout_ms.",
        online as f64,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_and_decode() {
        let (r, p) = find("GET", "/api/items/node%2F12-0").unwrap();
        assert_eq!((r.op, p), (Op::ItemGet, vec!["node/12-0".to_string()]));
        assert_eq!(find("GET", "/api/items/stream").unwrap().0.op, Op::ItemsStream);
        assert_eq!(find("POST", "/api/agents/a/activate").unwrap().0.op, Op::AgentActivate);
        assert!(matches!(find("PATCH", "/api/agents/a"), Err(true)));
        assert!(matches!(find("GET", "/api/nothing"), Err(false)));
        assert!(matches!(find("GET", "/api/agents/%zz"), Err(false)));
        assert!(matches!(find("GET", "/api/agents/"), Err(false)));
    }

    #[test]
    fn openapi_lists_every_api_route() {
        let v: Value = serde_json::from_str(OPENAPI).unwrap();
        for r in ROUTES.iter().filter(|r| r.op != Op::Static) {
            let m = r.method.to_ascii_lowercase();
            assert!(
                v["paths"][r.pattern][&m].is_object(),
                "openapi.json lacks {} {}",
                r.method,
                r.pattern
            );
        }
    }
}
