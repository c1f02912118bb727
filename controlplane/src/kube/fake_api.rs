//! A loopback fake of the Kubernetes API for ConfigMaps, Secrets and
//! NetworkPolicies (get, create, replace with resourceVersion checks), a
//! fixed pod list (a list, then a quiet watch; services: none) whose pods
//! take merge patches of their labels, for the kube script store's tests,
//! the end-to-end tests of `skua scripts --kube`, the hub's `onPodEvent`
//! and `hub.blockPod`. It is public
//! (hidden) because integration tests in `tests/` cannot see `cfg(test)`
//! code; it is a few dozen lines of hyper, which is a dependency anyway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

/// The objects, keyed `KIND/NAMESPACE/NAME` (`configmaps/ns/x`).
#[derive(Default)]
pub struct FakeApi {
    objects: Mutex<BTreeMap<String, Value>>,
    next_rv: Mutex<u64>,
    /// The next this many replaces answer 409 as if another writer had
    /// changed the object (its resourceVersion moves on too).
    pub conflicts: Mutex<u32>,
    /// `METHOD PATH` of every request.
    pub requests: Mutex<Vec<String>>,
    /// What a pod list answers.
    pub pods: Mutex<Vec<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn respond(code: u16, v: &Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap_or_default()
}

fn status(code: u16, reason: &str) -> hyper::Response<Full<Bytes>> {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": reason, "reason": reason, "code": code}),
    )
}

/// A fake API server: answers one request.
pub trait Answer: Send + Sync + 'static {
    fn answer(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = hyper::Response<Full<Bytes>>> + Send;
}

/// Serves `api` on `listener` (HTTP/1, a task per connection) until the
/// runtime stops.
pub fn serve<A: Answer>(listener: tokio::net::TcpListener, api: Arc<A>) {
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let api = api.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let api = api.clone();
                    async move { Ok::<_, std::convert::Infallible>(api.answer(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(conn), service)
                    .await;
            });
        }
    });
}

impl FakeApi {
    /// Serves on 127.0.0.1 from the current tokio runtime; returns its URL.
    pub async fn start() -> std::io::Result<(Arc<FakeApi>, String)> {
        let api = Arc::new(FakeApi::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        serve(listener, api.clone());
        Ok((api, url))
    }

    /// The stored object `KIND/NAMESPACE/NAME`, if any.
    pub fn object(&self, key: &str) -> Option<Value> {
        lock(&self.objects).get(key).cloned()
    }

    /// Sets the next replaces that answer 409.
    pub fn conflict_next(&self, n: u32) {
        *lock(&self.conflicts) = n;
    }

    /// Adds a pod to what pod lists answer.
    pub fn add_pod(&self, pod: Value) {
        lock(&self.pods).push(pod);
    }

    pub fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }

    /// A JSON merge patch of a listed pod's labels.
    fn patch_pod(&self, ns: &str, name: &str, body: &[u8]) -> hyper::Response<Full<Bytes>> {
        let Ok(patch) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest");
        };
        let mut pods = lock(&self.pods);
        let Some(pod) = pods.iter_mut().find(|p| {
            p["metadata"]["name"] == json!(name) && p["metadata"]["namespace"] == json!(ns)
        }) else {
            return status(404, "NotFound");
        };
        if let Some(labels) = patch["metadata"]["labels"].as_object() {
            for (k, v) in labels {
                pod["metadata"]["labels"][k] = v.clone();
            }
        }
        pod["metadata"]["resourceVersion"] = json!(self.bump_rv());
        respond(200, pod)
    }

    fn bump_rv(&self) -> String {
        let mut rv = lock(&self.next_rv);
        *rv += 1;
        rv.to_string()
    }
}

impl Answer for FakeApi {
    async fn answer(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        lock(&self.requests).push(format!("{method} {path}"));
        let watch = req.uri().query().is_some_and(|q| q.contains("watch=true"));
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        for (suffix, kind) in [("/pods", "PodList"), ("/services", "ServiceList")] {
            if path.ends_with(suffix) && method == "GET" {
                if watch {
                    // A quiet watch: nothing changes.
                    std::future::pending::<()>().await;
                }
                let items = if kind == "PodList" { lock(&self.pods).clone() } else { Vec::new() };
                return respond(
                    200,
                    &json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items}),
                );
            }
        }
        // /api/v1/namespaces/NS/KIND[/NAME], /apis/networking.k8s.io/v1/...
        let Some(rest) = path
            .strip_prefix("/api/v1/namespaces/")
            .or_else(|| path.strip_prefix("/apis/networking.k8s.io/v1/namespaces/"))
        else {
            return status(404, "NotFound");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if let ([ns, "pods", name], "PATCH") = (parts.as_slice(), method.as_str()) {
            return self.patch_pod(ns, name, &body);
        }
        let (ns, kind) = match parts.as_slice() {
            [ns, kind, ..] if matches!(*kind, "configmaps" | "secrets" | "networkpolicies") => {
                (*ns, *kind)
            }
            _ => return status(404, "NotFound"),
        };
        let mut objects = lock(&self.objects);
        match (method.as_str(), parts.get(2)) {
            ("GET", Some(name)) => match objects.get(&format!("{kind}/{ns}/{name}")) {
                Some(o) => respond(200, o),
                None => status(404, "NotFound"),
            },
            ("POST", None) => {
                let Ok(mut o) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest");
                };
                let key =
                    format!("{kind}/{ns}/{}", o["metadata"]["name"].as_str().unwrap_or_default());
                if objects.contains_key(&key) {
                    return status(409, "AlreadyExists");
                }
                o["metadata"]["resourceVersion"] = json!(self.bump_rv());
                o["metadata"]["namespace"] = json!(ns);
                objects.insert(key, o.clone());
                respond(201, &o)
            }
            ("PUT", Some(name)) => {
                let Ok(mut o) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest");
                };
                let Some(stored) = objects.get_mut(&format!("{kind}/{ns}/{name}")) else {
                    return status(404, "NotFound");
                };
                let mut conflicts = lock(&self.conflicts);
                if *conflicts > 0 {
                    *conflicts -= 1;
                    stored["metadata"]["resourceVersion"] = json!(self.bump_rv());
                    return status(409, "Conflict");
                }
                if o["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
                    return status(409, "Conflict");
                }
                o["metadata"]["resourceVersion"] = json!(self.bump_rv());
                *stored = o.clone();
                respond(200, &o)
            }
            _ => status(405, "MethodNotAllowed"),
        }
    }
}
