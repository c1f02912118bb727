//! The cluster script store: agents in one ConfigMap (key `NAME.js` per
//! agent; the names of inactive agents in the annotation
//! [`INACTIVE_ANNOTATION`], a JSON list, so the data holds agents only),
//! env in one Secret (key per variable). Both live in the hub's namespace
//! and are created on the first write.
//!
//! Every write is read-modify-replace carrying the read's resourceVersion,
//! so two hubs (or a hub and `skua scripts --kube`) never lose each
//! other's changes: a 409 Conflict re-reads and tries again, at most
//! `hub.kube_write_attempts` times.
//!
//! [`ScriptStore`] is blocking (the API calls it on tokio's blocking pool,
//! the hub's agent thread from a plain thread). Rather than `block_on`,
//! which panics when a caller happens to be inside a runtime, each call
//! is spawned on the hub's runtime and waited for on a std channel: that
//! works from any thread that is not one of the runtime's own workers.
//! Env values are never logged: errors name the Secret, not its data.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::kube::api::{Api, PostParams};
use ::kube::{Client, Resource, ResourceExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::ByteString;

use super::config::HubConfig;
use super::store::{check_agent_name, check_env_name, ScriptStore, StoreError, StoredAgent};

/// The ConfigMap annotation listing inactive agents (a JSON list of names).
pub const INACTIVE_ANNOTATION: &str = "skua.io/inactive";

/// Where and how the kube store writes (from `hub.kube_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeStoreOptions {
    /// Empty: the client's default namespace.
    pub namespace: String,
    pub configmap: String,
    pub secret: String,
    pub write_attempts: u32,
    pub max_object_bytes: usize,
    pub timeout: Duration,
}

impl KubeStoreOptions {
    pub fn from_config(cfg: &HubConfig) -> Self {
        KubeStoreOptions {
            namespace: cfg.kube_namespace.clone(),
            configmap: cfg.kube_configmap.clone(),
            secret: cfg.kube_secret.clone(),
            write_attempts: cfg.kube_write_attempts.max(1),
            max_object_bytes: cfg.kube_max_object_bytes,
            timeout: Duration::from_millis(cfg.kube_timeout_ms.max(1)),
        }
    }
}

/// The agents' ConfigMap and the env's Secret.
pub struct KubeStore {
    inner: Inner,
    rt: tokio::runtime::Handle,
}

#[derive(Clone)]
struct Inner {
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
    namespace: String,
    opts: Arc<KubeStoreOptions>,
}

/// Runs `fut` on `rt` and waits for it from this (non-runtime) thread,
/// giving up after `timeout`.
fn wait<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(tokio::time::timeout(timeout, fut).await);
    });
    match rx.recv() {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            Err(StoreError::Timeout { what: what.to_string(), ms: timeout.as_millis() as u64 })
        }
        // The task was dropped unfinished: the runtime is shutting down.
        Err(_) => Err(StoreError::Io {
            what: what.to_string(),
            source: std::io::Error::other("the hub is stopping"),
        }),
    }
}

fn kube_error(what: &str, source: ::kube::Error) -> StoreError {
    let retry = match &source {
        ::kube::Error::Api(s) => s.code >= 500 || s.code == 429 || s.is_conflict(),
        // Transport failures (connection refused, TLS, a dropped stream).
        _ => true,
    };
    StoreError::Kube { what: what.to_string(), retry, source }
}

/// The objects the store keeps, and what counts toward their size limit.
trait Stored:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Default
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Bytes of keys and values (for a Secret, decoded), as the API server
    /// counts them against its 1 MiB.
    fn payload_bytes(&self) -> usize;
}

impl Stored for ConfigMap {
    fn payload_bytes(&self) -> usize {
        let data = self.data.iter().flatten().map(|(k, v)| k.len() + v.len());
        let annotations =
            self.metadata.annotations.iter().flatten().map(|(k, v)| k.len() + v.len());
        data.chain(annotations).sum()
    }
}

impl Stored for Secret {
    fn payload_bytes(&self) -> usize {
        self.data.iter().flatten().map(|(k, v)| k.len() + v.0.len()).sum()
    }
}

fn agent_key(name: &str) -> String {
    format!("{name}.js")
}

fn inactive(cm: &ConfigMap, what: &str) -> Result<BTreeSet<String>, StoreError> {
    match cm.annotations().get(INACTIVE_ANNOTATION) {
        None => Ok(BTreeSet::new()),
        Some(s) => serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
            what: format!("{what} annotation {INACTIVE_ANNOTATION}"),
            reason: e.to_string(),
        }),
    }
}

/// Records `name`'s state; `true` if the annotation changed.
fn mark(cm: &mut ConfigMap, name: &str, active: bool, what: &str) -> Result<bool, StoreError> {
    let mut set = inactive(cm, what)?;
    let changed = if active { set.remove(name) } else { set.insert(name.to_string()) };
    if changed {
        let annotations = cm.annotations_mut();
        if set.is_empty() {
            annotations.remove(INACTIVE_ANNOTATION);
        } else {
            annotations.insert(
                INACTIVE_ANNOTATION.into(),
                serde_json::to_string(&set).unwrap_or_default(),
            );
        }
    }
    Ok(changed)
}

impl Inner {
    fn what_agents(&self) -> String {
        format!("ConfigMap {}/{}", self.namespace, self.opts.configmap)
    }

    fn what_env(&self) -> String {
        format!("Secret {}/{}", self.namespace, self.opts.secret)
    }

    async fn read<K: Stored>(
        api: &Api<K>,
        name: &str,
        what: &str,
    ) -> Result<Option<K>, StoreError> {
        api.get_opt(name).await.map_err(|e| kube_error(what, e))
    }

    /// Read, `change` (which says whether it changed anything), replace
    /// with the read's resourceVersion (create when missing); a conflict
    /// starts over from a fresh read.
    async fn modify<K: Stored, R>(
        &self,
        api: &Api<K>,
        name: &str,
        what: &str,
        mut change: impl FnMut(&mut K) -> Result<(R, bool), StoreError>,
    ) -> Result<R, StoreError> {
        for _ in 0..self.opts.write_attempts {
            let current = Self::read(api, name, what).await?;
            let exists = current.is_some();
            let mut obj = current.unwrap_or_else(|| {
                let mut o = K::default();
                o.meta_mut().name = Some(name.to_string());
                o
            });
            let (out, changed) = change(&mut obj)?;
            if !changed {
                return Ok(out);
            }
            let bytes = obj.payload_bytes();
            if bytes > self.opts.max_object_bytes {
                return Err(StoreError::TooLarge {
                    what: what.to_string(),
                    bytes,
                    limit: self.opts.max_object_bytes,
                });
            }
            // Not ours to send back; the server keeps them.
            obj.meta_mut().managed_fields = None;
            let pp = PostParams::default();
            let written = if exists {
                api.replace(name, &pp, &obj).await
            } else {
                api.create(&pp, &obj).await
            };
            match written {
                Ok(_) => return Ok(out),
                Err(::kube::Error::Api(s)) if s.is_conflict() || s.is_already_exists() => continue,
                Err(e) => return Err(kube_error(what, e)),
            }
        }
        Err(StoreError::Conflict { what: what.to_string(), attempts: self.opts.write_attempts })
    }

    async fn agents(&self) -> Result<Vec<StoredAgent>, StoreError> {
        let what = self.what_agents();
        let Some(cm) = Self::read(&self.configmaps, &self.opts.configmap, &what).await? else {
            return Ok(Vec::new());
        };
        let off = inactive(&cm, &what)?;
        // BTreeMap: sorted by key, so by name.
        let agents = cm.data.into_iter().flatten().filter_map(|(key, source)| {
            let name = key.strip_suffix(".js")?;
            // Keys put there by hand that the API would refuse stay unserved.
            check_agent_name(name).ok()?;
            Some(StoredAgent { active: !off.contains(name), name: name.to_string(), source })
        });
        Ok(agents.collect())
    }

    async fn put(
        &self,
        name: String,
        source: String,
        active: Option<bool>,
    ) -> Result<StoredAgent, StoreError> {
        let what = self.what_agents();
        self.modify(&self.configmaps, &self.opts.configmap, &what, |cm| {
            let data = cm.data.get_or_insert_with(BTreeMap::new);
            let existed = data.insert(agent_key(&name), source.clone()).is_some();
            let active = match active {
                Some(a) => a,
                None => !existed || !inactive(cm, &what)?.contains(&name),
            };
            mark(cm, &name, active, &what)?;
            Ok((StoredAgent { name: name.clone(), source: source.clone(), active }, true))
        })
        .await
    }

    async fn set_active(
        &self,
        name: String,
        active: bool,
    ) -> Result<Option<StoredAgent>, StoreError> {
        let what = self.what_agents();
        self.modify(&self.configmaps, &self.opts.configmap, &what, |cm| {
            let Some(source) = cm.data.as_ref().and_then(|d| d.get(&agent_key(&name))).cloned()
            else {
                return Ok((None, false));
            };
            let changed = mark(cm, &name, active, &what)?;
            Ok((Some(StoredAgent { name: name.clone(), source, active }), changed))
        })
        .await
    }

    async fn delete(&self, name: String) -> Result<bool, StoreError> {
        let what = self.what_agents();
        self.modify(&self.configmaps, &self.opts.configmap, &what, |cm| {
            let removed = cm.data.as_mut().and_then(|d| d.remove(&agent_key(&name))).is_some();
            if removed {
                mark(cm, &name, true, &what)?;
            }
            Ok((removed, removed))
        })
        .await
    }

    async fn env(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let what = self.what_env();
        let Some(secret) = Self::read(&self.secrets, &self.opts.secret, &what).await? else {
            return Ok(BTreeMap::new());
        };
        let mut env = BTreeMap::new();
        for (k, ByteString(v)) in secret.data.into_iter().flatten() {
            // The reason names the key only: values are secret.
            let v = String::from_utf8(v).map_err(|_| StoreError::Corrupt {
                what: format!("{what} key {k}"),
                reason: "not UTF-8".into(),
            })?;
            env.insert(k, v);
        }
        Ok(env)
    }

    async fn set_env(&self, name: String, value: Option<String>) -> Result<bool, StoreError> {
        let what = self.what_env();
        self.modify(&self.secrets, &self.opts.secret, &what, |secret| {
            let data = secret.data.get_or_insert_with(BTreeMap::new);
            let existed = match &value {
                Some(v) => data.insert(name.clone(), ByteString(v.clone().into_bytes())).is_some(),
                None => data.remove(&name).is_some(),
            };
            let changed = value.is_some() || existed;
            Ok((changed, changed))
        })
        .await
    }
}

impl KubeStore {
    /// A store over `client`; an empty `opts.namespace` is the client's
    /// default namespace. `rt` runs the API calls (the hub's runtime).
    pub fn new(client: Client, opts: KubeStoreOptions, rt: tokio::runtime::Handle) -> KubeStore {
        let namespace = if opts.namespace.is_empty() {
            client.default_namespace().to_string()
        } else {
            opts.namespace.clone()
        };
        let inner = Inner {
            configmaps: Api::namespaced(client.clone(), &namespace),
            secrets: Api::namespaced(client, &namespace),
            namespace,
            opts: Arc::new(opts),
        };
        KubeStore { inner, rt }
    }

    /// A store with a client from the pod's service account, else
    /// `KUBECONFIG` / `~/.kube/config`. Call from a thread outside `rt`.
    pub fn connect(cfg: &HubConfig, rt: &tokio::runtime::Handle) -> Result<KubeStore, StoreError> {
        let what = "kubernetes client (in-cluster or KUBECONFIG)";
        let client =
            wait(rt, what, Duration::from_millis(cfg.kube_timeout_ms.max(1)), async move {
                // No configuration: retrying does not help.
                Client::try_default().await.map_err(|source| StoreError::Kube {
                    what: what.to_string(),
                    retry: false,
                    source,
                })
            })?;
        Ok(KubeStore::new(client, KubeStoreOptions::from_config(cfg), rt.clone()))
    }

    /// The namespace the ConfigMap and Secret are in.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// `namespace/configmap` and `namespace/secret`, for logs.
    pub fn describe(&self) -> String {
        format!(
            "ConfigMap {ns}/{} and Secret {ns}/{}",
            self.inner.opts.configmap,
            self.inner.opts.secret,
            ns = self.inner.namespace
        )
    }

    fn call<T: Send + 'static, F: Future<Output = Result<T, StoreError>> + Send + 'static>(
        &self,
        what: String,
        f: impl FnOnce(Inner) -> F,
    ) -> Result<T, StoreError> {
        wait(&self.rt, &what, self.inner.opts.timeout, f(self.inner.clone()))
    }
}

impl ScriptStore for KubeStore {
    fn kind(&self) -> &'static str {
        "kube"
    }

    fn list(&self) -> Result<Vec<StoredAgent>, StoreError> {
        self.call(self.inner.what_agents(), |i| async move { i.agents().await })
    }

    fn get(&self, name: &str) -> Result<Option<StoredAgent>, StoreError> {
        check_agent_name(name)?;
        Ok(self.list()?.into_iter().find(|a| a.name == name))
    }

    fn put(
        &self,
        name: &str,
        source: &str,
        active: Option<bool>,
    ) -> Result<StoredAgent, StoreError> {
        check_agent_name(name)?;
        let (name, source) = (name.to_string(), source.to_string());
        self.call(self.inner.what_agents(), |i| async move { i.put(name, source, active).await })
    }

    fn set_active(&self, name: &str, active: bool) -> Result<Option<StoredAgent>, StoreError> {
        check_agent_name(name)?;
        let name = name.to_string();
        self.call(self.inner.what_agents(), |i| async move { i.set_active(name, active).await })
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        check_agent_name(name)?;
        let name = name.to_string();
        self.call(self.inner.what_agents(), |i| async move { i.delete(name).await })
    }

    fn env(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.call(self.inner.what_env(), |i| async move { i.env().await })
    }

    fn set_env(&self, name: &str, value: Option<&str>) -> Result<bool, StoreError> {
        check_env_name(name)?;
        let (name, value) = (name.to_string(), value.map(str::to_string));
        self.call(self.inner.what_env(), |i| async move { i.set_env(name, value).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fake_api::FakeApi;

    fn opts() -> KubeStoreOptions {
        KubeStoreOptions::from_config(&HubConfig {
            kube_namespace: "skua".into(),
            ..Default::default()
        })
    }

    /// A multi-thread runtime (the store waits on a plain thread while the
    /// runtime answers) with the fake API server on it.
    fn setup() -> (tokio::runtime::Runtime, Arc<FakeApi>, String) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (api, url) = rt.block_on(FakeApi::start()).unwrap();
        (rt, api, url)
    }

    fn store(rt: &tokio::runtime::Runtime, url: &str, opts: KubeStoreOptions) -> KubeStore {
        let _g = rt.enter();
        let client = Client::try_from(::kube::Config::new(url.parse().unwrap())).unwrap();
        KubeStore::new(client, opts, rt.handle().clone())
    }

    #[test]
    fn agents_and_env_survive_a_new_store() {
        let (rt, api, url) = setup();
        {
            let s = store(&rt, &url, opts());
            assert!(s.list().unwrap().is_empty(), "a missing ConfigMap is an empty store");
            assert!(s.put("b", "var b;", None).unwrap().active);
            s.put("a", "var a;", Some(false)).unwrap();
            assert!(!s.put("a", "var a = 1;", None).unwrap().active, "replacing keeps the state");
            assert!(s.set_env("TOKEN", Some("s3cret")).unwrap());
        }
        // Created in the configured namespace, once each.
        let requests = api.requests();
        assert_eq!(requests.iter().filter(|r| r.starts_with("POST")).count(), 2, "{requests:?}");
        assert!(
            requests.iter().any(|r| r == "POST /api/v1/namespaces/skua/configmaps"),
            "{requests:?}"
        );
        let cm = api.object("configmaps/skua/skua-agents").unwrap();
        assert_eq!(cm["data"]["a.js"], "var a = 1;");
        assert_eq!(cm["metadata"]["annotations"][INACTIVE_ANNOTATION], r#"["a"]"#);
        // Base64 in the Secret, as the API server keeps it.
        assert_eq!(
            api.object("secrets/skua/skua-agents-env").unwrap()["data"]["TOKEN"],
            "czNjcmV0"
        );

        // A hub restart: a new store sees the same agents and env.
        let s = store(&rt, &url, opts());
        let l = s.list().unwrap();
        assert_eq!(
            l.iter().map(|a| (a.name.as_str(), a.active)).collect::<Vec<_>>(),
            [("a", false), ("b", true)]
        );
        assert_eq!(s.get("a").unwrap().unwrap().source, "var a = 1;");
        assert_eq!(s.env().unwrap()["TOKEN"], "s3cret");
        assert!(s.set_active("a", true).unwrap().unwrap().active);
        assert!(api.object("configmaps/skua/skua-agents").unwrap()["metadata"]["annotations"]
            .get(INACTIVE_ANNOTATION)
            .is_none());
        assert!(s.delete("a").unwrap());
        assert!(!s.delete("a").unwrap());
        assert!(s.get("a").unwrap().is_none());
        assert!(s.set_active("nope", true).unwrap().is_none());
        assert!(!s.set_env("NOPE", None).unwrap());
        assert!(s.set_env("TOKEN", None).unwrap());
        assert!(s.env().unwrap().is_empty());
        assert!(matches!(s.put("../x", "", None), Err(StoreError::InvalidName(_))));
    }

    #[test]
    fn conflicts_are_retried_then_reported() {
        let (rt, api, url) = setup();
        let s = store(&rt, &url, opts());
        s.put("a", "var a;", None).unwrap();
        api.conflict_next(2);
        s.put("a", "var a = 2;", None).unwrap();
        assert_eq!(
            api.object("configmaps/skua/skua-agents").unwrap()["data"]["a.js"],
            "var a = 2;"
        );
        let puts = api.requests().iter().filter(|r| r.starts_with("PUT")).count();
        assert_eq!(puts, 3, "two conflicts, then the write");

        api.conflict_next(100);
        let e = s.put("a", "var a = 3;", None).unwrap_err();
        assert!(matches!(e, StoreError::Conflict { attempts: 5, .. }), "{e}");
        assert_eq!(
            api.object("configmaps/skua/skua-agents").unwrap()["data"]["a.js"],
            "var a = 2;"
        );
    }

    #[test]
    fn the_size_limit_is_a_clear_error() {
        let (rt, _api, url) = setup();
        let s = store(&rt, &url, KubeStoreOptions { max_object_bytes: 1000, ..opts() });
        s.put("small", "var a;", None).unwrap();
        let e = s.put("big", &"x".repeat(2000), None).unwrap_err();
        assert!(matches!(e, StoreError::TooLarge { limit: 1000, .. }), "{e}");
        assert!(e.to_string().contains("hub.kube_max_object_bytes"), "{e}");
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn an_unreachable_api_server_is_a_retryable_error() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let s = store(&rt, "http://127.0.0.1:1", opts());
        let e = s.list().unwrap_err();
        assert!(
            matches!(e, StoreError::Kube { retry: true, .. } | StoreError::Timeout { .. }),
            "{e}"
        );
    }

    /// Against a real cluster, in a namespace you may create ConfigMaps and
    /// Secrets in:
    /// `KUBECONFIG=~/.kube/config SKUA_TEST_NAMESPACE=default cargo test -p controlplane --lib kube_store -- --ignored`
    /// (leaves `skua-test-agents` and `skua-test-agents-env` behind).
    #[test]
    #[ignore = "needs a Kubernetes cluster (KUBECONFIG)"]
    fn real_cluster_round_trip() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cfg = HubConfig {
            kube_namespace: std::env::var("SKUA_TEST_NAMESPACE").unwrap_or_default(),
            kube_configmap: "skua-test-agents".into(),
            kube_secret: "skua-test-agents-env".into(),
            ..Default::default()
        };
        let s = KubeStore::connect(&cfg, rt.handle()).unwrap();
        s.put("roundtrip", "function onItem(i) {}", Some(false)).unwrap();
        s.set_env("SKUA_TEST", Some("v")).unwrap();
        let s = KubeStore::connect(&cfg, rt.handle()).unwrap();
        assert!(!s.get("roundtrip").unwrap().unwrap().active);
        assert_eq!(s.env().unwrap()["SKUA_TEST"], "v");
        assert!(s.delete("roundtrip").unwrap());
        s.set_env("SKUA_TEST", None).unwrap();
    }
}
