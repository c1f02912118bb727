//! `skua scripts`: keeps a hub's agents in step with a local folder
//! (`scripting.source`). Every `*.js` is pushed once, then the folder is
//! watched: a new or changed file is checked here first (an agent that
//! does not compile is reported with its line and not pushed), then saved
//! on the hub, which hands it to every worker; a removed file deletes the
//! agent. Content hashes skip saves that change nothing.
//!
//! With `--kube` the folder goes straight into the cluster store (the
//! ConfigMap and Secret of `hub.kube_*`, through the same [`KubeStore`]
//! the hub uses): no hub URL or token, the caller's kubeconfig decides.
//! A running hub announces such changes to its workers when it next rereads
//! its store (`hub.store_poll_ms`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{HeaderMap, Method};

use crate::config::Config;
use crate::hub::kube_store::KubeStore;
use crate::hub::ScriptStore;
use crate::integrations::http::{parse_url, HttpClient, HttpRequest, SendOptions};
use crate::watch::{AgentDir, Change};

#[derive(clap::Args, Debug)]
pub struct ScriptsArgs {
    /// The hub's base URL.
    #[arg(long, value_name = "URL", env = "SKUA_HUB", default_value = "http://127.0.0.1:8899")]
    pub hub: String,

    /// An admin token of the hub (hub.tokens).
    #[arg(long, value_name = "TOKEN", env = "SKUA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Push once and exit instead of watching.
    #[arg(long)]
    pub once: bool,

    /// Delete agents on the hub that have no file in the folder (only with
    /// the first push; later removals always delete).
    #[arg(long)]
    pub prune: bool,

    /// Write to the cluster script store (the ConfigMap and Secret named by
    /// hub.kube_namespace, hub.kube_configmap, hub.kube_secret) with the
    /// kubeconfig (KUBECONFIG or ~/.kube/config) instead of a hub.
    #[arg(long)]
    pub kube: bool,
}

/// Where `skua scripts` saves agents: a hub's API, or the cluster store.
trait Target {
    /// Saves or deletes one agent; `Ok(false)`: the hub rejected it.
    async fn apply(&self, change: &Change) -> Result<bool>;
    /// Names of the agents the target has.
    async fn names(&self) -> Result<Vec<String>>;
}

/// `false` (and a line saying why) when the agent does not compile.
fn compiles(name: &str, source: &str, es5_strict: bool) -> bool {
    match scripting::check_agent(name, source, es5_strict) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("{name}.js not pushed: {e}");
            false
        }
    }
}

struct Hub {
    client: HttpClient,
    base: String,
    token: Option<String>,
}

impl Hub {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let url = parse_url(&format!("{}{path}", self.base.trim_end_matches('/')))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut headers = HeaderMap::new();
        if let Some(t) = &self.token {
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {t}"))
                    .context("the token is not a valid header value")?,
            );
        }
        // Every change says JSON, body or not: a hub with `auth: none`
        // refuses state changes that do not (hub::guard).
        if method != Method::GET {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
        let req = HttpRequest { method, url, headers, body };
        let opts = SendOptions {
            timeout: Duration::from_secs(10),
            max_redirects: 0,
            max_body_bytes: 4 << 20,
        };
        let resp = self
            .client
            .send(&req, opts)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.base))?;
        let v = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
        match resp.status {
            401 => bail!("{}: 401, a token is needed (--token or SKUA_TOKEN)", self.base),
            403 => bail!(
                "{}: 403, the token is read-only; saving agents needs an admin token",
                self.base
            ),
            _ => Ok((resp.status, v)),
        }
    }
}

impl Target for Hub {
    /// Applies one change; a rejected agent is reported, not fatal.
    async fn apply(&self, change: &Change) -> Result<bool> {
        match change {
            Change::Upsert { name, source } => {
                let (status, v) = self
                    .call(
                        Method::PUT,
                        &format!("/api/agents/{name}"),
                        Some(serde_json::json!({ "source": source, "active": true })),
                    )
                    .await?;
                match status {
                    200..=299 => {
                        tracing::info!("{name}.js pushed");
                        Ok(true)
                    }
                    _ => {
                        tracing::warn!(
                            "{name}.js rejected by the hub ({status}): {}",
                            v["error"].as_str().unwrap_or("")
                        );
                        Ok(false)
                    }
                }
            }
            Change::Removed { name } => {
                let (status, _) =
                    self.call(Method::DELETE, &format!("/api/agents/{name}"), None).await?;
                if matches!(status, 200..=299 | 404) {
                    tracing::info!("{name} deleted");
                    Ok(true)
                } else {
                    bail!("deleting {name}: the hub answered {status}")
                }
            }
        }
    }

    async fn names(&self) -> Result<Vec<String>> {
        let (_, list) = self.call(Method::GET, "/api/agents", None).await?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["name"].as_str().map(str::to_string))
            .collect())
    }
}

/// The cluster store; its blocking calls run on the blocking pool.
struct Kube(std::sync::Arc<KubeStore>);

impl Kube {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&KubeStore) -> Result<T, crate::hub::StoreError> + Send + 'static,
    ) -> Result<T> {
        let store = self.0.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store))
            .await
            .context("the store call failed")??)
    }
}

impl Target for Kube {
    async fn apply(&self, change: &Change) -> Result<bool> {
        match change.clone() {
            Change::Upsert { name, source } => {
                self.blocking(move |s| s.put(&name, &source, Some(true))).await?;
                tracing::info!("{}.js pushed", change.name());
            }
            Change::Removed { name } => {
                self.blocking(move |s| s.delete(&name)).await?;
                tracing::info!("{} deleted", change.name());
            }
        }
        Ok(true)
    }

    async fn names(&self) -> Result<Vec<String>> {
        Ok(self.blocking(|s| s.list()).await?.into_iter().map(|a| a.name).collect())
    }
}

pub fn run(cfg: &Config, args: &ScriptsArgs) -> Result<ExitCode> {
    let Some(dir) = cfg.scripting.source.clone() else {
        bail!("no folder to push: pass --set scripting.source=DIR (or set it in the config)");
    };
    if args.kube {
        // Multi-thread: the store waits on the blocking pool for calls it
        // spawns on this runtime.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the Kubernetes client")?;
        let store = KubeStore::connect(&cfg.hub, rt.handle())?;
        tracing::info!("pushing to {}", store.describe());
        return rt.block_on(push_and_watch(cfg, args, dir, &Kube(std::sync::Arc::new(store))));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client")?;
    let client =
        HttpClient::new(Duration::from_secs(5), None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hub = Hub { client, base: args.hub.clone(), token: args.token.clone() };
    rt.block_on(push_and_watch(cfg, args, dir, &hub))
}

/// Applies one change if it compiles (removals always).
async fn push(target: &impl Target, change: &Change, es5_strict: bool) -> Result<bool> {
    if let Change::Upsert { name, source } = change {
        if !compiles(name, source, es5_strict) {
            return Ok(false);
        }
    }
    target.apply(change).await
}

async fn push_and_watch(
    cfg: &Config,
    args: &ScriptsArgs,
    dir: PathBuf,
    hub: &impl Target,
) -> Result<ExitCode> {
    let es5 = cfg.scripting.es5_strict;
    let mut agents = AgentDir::new(&dir);
    let first = agents.look().with_context(|| format!("reading {}", dir.display()))?;
    let mut rejected = 0;
    for change in &first {
        rejected += usize::from(!push(hub, change, es5).await?);
    }
    if args.prune {
        let local: Vec<&str> = first.iter().map(Change::name).collect();
        for name in hub.names().await? {
            if !local.contains(&name.as_str()) {
                push(hub, &Change::Removed { name }, es5).await?;
            }
        }
    }
    if args.once {
        return Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    tracing::info!("watching {} (Ctrl-C stops)", dir.display());
    let every = Duration::from_millis(cfg.scripting.watch_ms.max(100));
    loop {
        tokio::time::sleep(every).await;
        let changes = match agents.look() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reading {}: {e}", dir.display());
                continue;
            }
        };
        for change in &changes {
            // A hub away for a moment: say so and go on watching; the
            // change is pushed again with the next edit (or a restart).
            if let Err(e) = push(hub, change, es5).await {
                tracing::warn!("{e:#}");
            }
        }
    }
}
