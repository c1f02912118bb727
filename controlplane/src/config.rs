//! skua's configuration: one YAML document, sections per subsystem, and
//! Helm-style `--set key=value` overrides applied on top.
//!
//! Unknown keys and values of the wrong type are rejected with the full
//! key (`dataplane.cores: invalid type ...`); range checks name the key
//! too. `docs/config.md` is the reference.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use dataplane::config::{AfPacketConfig, DataplaneConfig, DpdkConfig, PcapConfig};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Dataplane cores and queues.
    pub dataplane: DataplaneConfig,
    /// Capture-file replay.
    pub pcap: PcapConfig,
    /// The DPDK backend.
    pub dpdk: DpdkConfig,
    /// AF_PACKET live capture.
    pub afpacket: AfPacketConfig,
    /// Flows, TCP reassembly and dissection into items.
    pub reassembly: reassembly::ReassemblyConfig,
    /// Hugepages: the DPDK start-up preflight and `skua hugepages`.
    pub hugepages: hugepages::HugepagesConfig,
    /// The control plane's integrations (agents' I/O helpers) and `/metrics`.
    pub integrations: crate::integrations::IntegrationsConfig,
    /// Agents: where they run, their budgets and limits (camelCase keys, as
    /// agents' users know them).
    pub scripting: scripting::ScriptingConfig,
    /// The hub: API, dashboard, script store, who may call it, its limits.
    pub hub: crate::hub::HubConfig,
    /// A worker's link to its hub.
    pub link: crate::link::LinkConfig,
    /// Kubernetes: pod events for agents' `onPodEvent` and pod names on
    /// items' endpoints.
    pub kubernetes: KubernetesConfig,
}

/// Kubernetes awareness: pod watchers feeding `onPodEvent` and the IP → pod
/// map that names items' `src`/`dst`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Watch the cluster: `true`, `false`, or unset (the default) to watch
    /// when running inside a cluster (`KUBERNETES_SERVICE_HOST` is set).
    /// Credentials come from the pod's service account, or outside a
    /// cluster from `KUBECONFIG` / `~/.kube/config`.
    pub enabled: Option<bool>,
    /// Which pods: `node` (pods scheduled on this node, the worker's view)
    /// or `cluster` (every pod, the hub's view). Unset (the default): `node`
    /// for `skua worker` and `skua run`, `cluster` for `skua hub`.
    pub scope: Option<KubernetesScope>,
    /// This node's name for the `node` scope; unset (the default): the
    /// `NODE_NAME` environment variable, else `SKUA_NODE_NAME` (the Helm
    /// chart sets it from `spec.nodeName` with the downward API).
    pub node_name: Option<String>,
    /// Namespaces to watch; empty (the default): all of them.
    pub namespaces: Vec<String>,
    /// Pod events waiting for the agents' runtimes; when full, an event is
    /// dropped and counted (`pod_events_dropped`). Default 1024.
    pub event_queue: usize,
    /// Also watch services and name their cluster IPs on items (traffic
    /// captured before kube-proxy translates it). Default true; needs
    /// `list`/`watch` on `services`.
    pub services: bool,
    /// How often changes to the IP → pod map are published to the capture
    /// cores, in milliseconds (the map is rebuilt whole at most this often).
    /// Default 200.
    pub map_publish_ms: u64,
    /// Published IP → pod maps kept for `pcap.nameResolutionHistory()`
    /// (each a copy of the map, one per second at most); the oldest is
    /// dropped past it. 0 keeps none. Default 64.
    pub name_history: usize,
}

/// `kubernetes.scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesScope {
    Node,
    Cluster,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            enabled: None,
            scope: None,
            node_name: None,
            namespaces: Vec::new(),
            event_queue: 1024,
            services: true,
            map_publish_ms: 200,
            name_history: 64,
        }
    }
}

impl KubernetesConfig {
    /// Whether to watch: `enabled`, or when unset whether this process runs
    /// in a cluster.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").is_some())
    }

    /// `node_name`, else `NODE_NAME`, else `SKUA_NODE_NAME` (what the Helm
    /// chart sets) from the environment.
    pub fn node_name(&self) -> Option<String> {
        let env = |name: &str| std::env::var(name).ok();
        [self.node_name.clone(), env("NODE_NAME"), env("SKUA_NODE_NAME")]
            .into_iter()
            .flatten()
            .find(|n| !n.is_empty())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| {
            Err(ConfigError::Invalid { key: key.into(), reason: reason.into() })
        };
        if self.event_queue == 0 {
            return invalid("kubernetes.event_queue", "must be at least 1");
        }
        if self.map_publish_ms == 0 {
            return invalid("kubernetes.map_publish_ms", "must be at least 1");
        }
        if self.namespaces.iter().any(String::is_empty) {
            return invalid("kubernetes.namespaces", "a namespace name is empty");
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not valid YAML: {source}")]
    Yaml { path: String, source: serde_yaml::Error },
    #[error("--set {0}: expected key=value")]
    SetSyntax(String),
    #[error("--set {key}: {reason}")]
    SetPath { key: String, reason: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl Config {
    /// Loads `file` (if any), applies `sets` in order, then validates.
    pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Self, ConfigError> {
        let mut doc =
            match file {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| {
                        ConfigError::Read { path: path.display().to_string(), source }
                    })?;
                    let v: Value = serde_yaml::from_str(&text).map_err(|source| {
                        ConfigError::Yaml { path: path.display().to_string(), source }
                    })?;
                    if v.is_null() {
                        Value::Mapping(Mapping::new())
                    } else {
                        v
                    }
                }
                None => Value::Mapping(Mapping::new()),
            };
        for set in sets {
            apply_set(&mut doc, set)?;
        }
        Self::from_value(doc)
    }

    fn from_value(doc: Value) -> Result<Self, ConfigError> {
        let cfg: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
            let key = e.path().to_string();
            let reason = e.into_inner().to_string();
            ConfigError::Invalid { key: if key == "." { "config".into() } else { key }, reason }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let named = |e: dataplane::config::Invalid| ConfigError::Invalid {
            key: e.key.to_string(),
            reason: e.reason,
        };
        self.dataplane.validate().map_err(named)?;
        self.pcap.validate().map_err(named)?;
        self.dpdk.validate().map_err(named)?;
        self.afpacket.validate().map_err(named)?;
        self.integrations
            .validate()
            .map_err(|e| ConfigError::Invalid { key: e.key, reason: e.reason })?;
        self.hub.validate().map_err(|e| ConfigError::Invalid { key: e.key, reason: e.reason })?;
        self.link.validate().map_err(|(key, reason)| ConfigError::Invalid { key, reason })?;
        self.scripting
            .validate()
            .map_err(|e| ConfigError::Invalid { key: "scripting".into(), reason: e.to_string() })?;
        self.kubernetes.validate()?;
        if self.reassembly.max_flows == 0 {
            return Err(ConfigError::Invalid {
                key: "reassembly.max_flows".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Applies one `a.b.c=value`: the value is read as a YAML scalar (so
/// `true`, `8` and `1.5` get their types; anything else is a string).
fn apply_set(doc: &mut Value, set: &str) -> Result<(), ConfigError> {
    let (key, raw) = set.split_once('=').ok_or_else(|| ConfigError::SetSyntax(set.to_string()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(ConfigError::SetSyntax(set.to_string()));
    }
    let value: Value = if raw.trim().is_empty() {
        Value::String(String::new())
    } else {
        serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
    };
    let mut node = doc;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = match node {
            Value::Mapping(m) => m,
            _ => {
                return Err(ConfigError::SetPath {
                    key: key.to_string(),
                    reason: format!("{} is not a section", parts[..i].join(".")),
                })
            }
        };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::load(
            None,
            &sets(&["dataplane.cores=2", "pcap.pace=recorded", "dpdk.eal_args=--no-pci --no-huge"]),
        )
        .unwrap();
        assert_eq!(c.dataplane.cores, 2);
        assert_eq!(c.pcap.pace, dataplane::config::PaceMode::Recorded);
        assert_eq!(c.dpdk.eal_args, "--no-pci --no-huge");
        assert_eq!(c.dataplane.batch_frames, 256);
    }

    #[test]
    fn file_then_sets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("skua.yaml");
        std::fs::write(&p, "dataplane:\n  cores: 3\n  ring_batches: 8\n").unwrap();
        let c = Config::load(Some(&p), &sets(&["dataplane.cores=1"])).unwrap();
        assert_eq!((c.dataplane.cores, c.dataplane.ring_batches), (1, 8));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::load(None, &sets(&["dataplane.corez=2"])).unwrap_err().to_string();
        assert!(e.starts_with("dataplane.corez: unknown field `corez`"), "{e}");
        let e = Config::load(None, &sets(&["nosuch.x=1"])).unwrap_err().to_string();
        assert!(e.contains("unknown field `nosuch`"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::load(None, &sets(&["dataplane.cores=many"])).unwrap_err().to_string();
        assert!(e.starts_with("dataplane.cores: invalid type"), "{e}");
        let e = Config::load(None, &sets(&["dataplane.cores=0"])).unwrap_err().to_string();
        assert_eq!(e, "dataplane.cores: must be between 1 and 128");
        let e = Config::load(None, &sets(&["pcap.pace=sideways"])).unwrap_err().to_string();
        assert!(e.starts_with("pcap.pace: unknown variant `sideways`"), "{e}");
        let e = Config::load(None, &sets(&["dataplane.cores=1", "dataplane.cores.x=1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dataplane.cores is not a section"), "{e}");
        assert!(Config::load(None, &sets(&["novalue"])).is_err());
    }

    #[test]
    fn env_values_set_as_numbers_and_booleans_are_strings() {
        let c = Config::load(
            None,
            &sets(&[
                "scripting.env.MIN_STATUS=400",
                "scripting.env.VERBOSE=true",
                "scripting.env.WEBHOOK_URL=http://127.0.0.1:9/x",
            ]),
        )
        .unwrap();
        assert_eq!(c.scripting.env["MIN_STATUS"], "400");
        assert_eq!(c.scripting.env["VERBOSE"], "true");
        assert_eq!(c.scripting.env["WEBHOOK_URL"], "http://127.0.0.1:9/x");
        let e = Config::load(None, &sets(&["scripting.env.LIST=[1,2]"])).unwrap_err().to_string();
        assert!(e.contains("env.LIST: expected a string, a number or a boolean"), "{e}");
    }

    #[test]
    fn kubernetes_section() {
        let c = Config::load(
            None,
            &sets(&[
                "kubernetes.enabled=true",
                "kubernetes.scope=cluster",
                "kubernetes.node_name=n1",
            ]),
        )
        .unwrap();
        assert!(c.kubernetes.is_enabled());
        assert_eq!(c.kubernetes.scope, Some(KubernetesScope::Cluster));
        assert_eq!(c.kubernetes.node_name().as_deref(), Some("n1"));
        assert_eq!(c.kubernetes.event_queue, 1024);
        let e = Config::load(None, &sets(&["kubernetes.scope=galaxy"])).unwrap_err().to_string();
        assert!(e.starts_with("kubernetes.scope: unknown variant `galaxy`"), "{e}");
        let e = Config::load(None, &sets(&["kubernetes.event_queue=0"])).unwrap_err().to_string();
        assert_eq!(e, "kubernetes.event_queue: must be at least 1");
        assert!(Config::load(None, &sets(&["kubernetes.watch=1"])).is_err());
    }

    #[test]
    fn unreadable_and_invalid_files() {
        let e =
            Config::load(Some(Path::new("/nonexistent/skua.yaml")), &[]).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/skua.yaml: "), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.yaml");
        std::fs::write(&p, "dataplane: [unclosed").unwrap();
        assert!(Config::load(Some(&p), &[]).unwrap_err().to_string().contains("not valid YAML"));
    }
}
