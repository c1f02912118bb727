//! `LocalExecutor`: runs effects in-process, for tests, standalone runs and
//! `skua test-agent` until the control plane's network executors take over.
//! `file.*` runs for real on disk under `dataDir/<agent>/`; `hub.action`
//! is delivered to a given runtime's `onHubAction`; network helpers
//! (`vendor.*`), `prometheus.metric` and `pcap.*` are recorded and
//! resolved with a plausible value. Every effect is kept in a transcript
//! (credentials redacted).

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use serde_json::{json, Value};

use crate::console::RuntimeId;
use crate::effects::{Effect, EffectRequest, EffectResult, Mailbox};

/// One effect as the executor saw and answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutedEffect {
    pub runtime: RuntimeId,
    pub agent: String,
    pub request_id: u64,
    /// `vendor.webhook`, `file.write`, ...
    pub helper: &'static str,
    /// Arguments, credentials redacted.
    pub args: Value,
    pub result: EffectResult,
}

pub struct LocalExecutor {
    rx: Receiver<EffectRequest>,
    data_dir: PathBuf,
    hub: Option<Mailbox>,
    transcript: Vec<ExecutedEffect>,
    seq: u64,
}

impl LocalExecutor {
    /// Executes what arrives on `rx` (the receiver of an
    /// [`crate::EffectSink`]); `file.*` works under `data_dir/<agent>/`.
    pub fn new(rx: Receiver<EffectRequest>, data_dir: impl Into<PathBuf>) -> Self {
        LocalExecutor { rx, data_dir: data_dir.into(), hub: None, transcript: Vec::new(), seq: 0 }
    }

    /// Delivers `hub.action` to this runtime's `onHubAction` (the hub's
    /// runtime; in a one-process run it may be the same runtime).
    pub fn with_hub(mut self, hub: Mailbox) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Executes every request queued now and completes each. Returns how
    /// many ran.
    pub fn run_pending(&mut self) -> usize {
        let reqs: Vec<EffectRequest> = self.rx.try_iter().collect();
        let n = reqs.len();
        for r in reqs {
            self.execute(r);
        }
        n
    }

    /// Runs on its own thread until every sink is dropped; returns the
    /// transcript.
    pub fn spawn(mut self) -> std::io::Result<JoinHandle<Vec<ExecutedEffect>>> {
        std::thread::Builder::new().name("skua-effects".into()).spawn(move || {
            while let Ok(r) = self.rx.recv() {
                self.execute(r);
            }
            self.transcript
        })
    }

    /// Runs on its own thread until every sink is dropped, sending each
    /// executed effect to the returned receiver as it completes (so a
    /// runtime on the caller's thread can wait for helper results while
    /// its effects run here).
    pub fn spawn_streaming(
        mut self,
    ) -> std::io::Result<(JoinHandle<()>, Receiver<ExecutedEffect>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::Builder::new().name("skua-effects".into()).spawn(move || {
            while let Ok(req) = self.rx.recv() {
                // Shown before the runtime can see the answer.
                let (done, result) = self.run_one(&req);
                let _ = tx.send(done);
                req.complete(result);
            }
        })?;
        Ok((handle, rx))
    }

    pub fn transcript(&self) -> &[ExecutedEffect] {
        &self.transcript
    }

    pub fn take_transcript(&mut self) -> Vec<ExecutedEffect> {
        std::mem::take(&mut self.transcript)
    }

    /// Executes one request and completes it.
    pub fn execute(&mut self, req: EffectRequest) {
        let (done, result) = self.run_one(&req);
        self.transcript.push(done);
        req.complete(result);
    }

    fn run_one(&mut self, req: &EffectRequest) -> (ExecutedEffect, EffectResult) {
        self.seq += 1;
        let result = self.run(&req.agent, &req.effect);
        let done = ExecutedEffect {
            runtime: req.runtime,
            agent: req.agent.to_string(),
            request_id: req.request_id,
            helper: req.effect.helper(),
            args: req.effect.redacted_json(),
            result: result.clone(),
        };
        (done, result)
    }

    fn agent_path(&self, agent: &str, rel: &Path) -> Result<PathBuf, String> {
        // The runtime checked the path; check again, this executor may be
        // fed by other code.
        if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(format!("file path {} leaves the agent directory", rel.display()));
        }
        let base = self.data_dir.join(agent);
        fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        let full = base.join(rel);
        // A symlink inside the directory must not lead out of it.
        if let (Ok(b), Some(Ok(p))) = (base.canonicalize(), full.parent().map(Path::canonicalize)) {
            if !p.starts_with(&b) {
                return Err(format!("file path {} leaves the agent directory", rel.display()));
            }
        }
        Ok(full)
    }

    fn run(&mut self, agent: &str, e: &Effect) -> EffectResult {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        match e {
            Effect::Webhook { .. } => Ok(json!({"status": 200, "headers": {}, "body": ""})),
            Effect::Slack { .. } => Ok(json!({"status": 200, "body": "ok"})),
            Effect::SlackBot { channel_id, .. } => {
                Ok(json!({"ok": true, "channel": channel_id, "ts": format!("{}.000100", self.seq)}))
            }
            Effect::InfluxDb { .. } => Ok(json!({"status": 204})),
            Effect::KinesisPut { .. } => Ok(
                json!({"sequenceNumber": format!("{:056}", self.seq), "shardId": "shardId-000000000000"}),
            ),
            Effect::HubAction { action, object } => match &self.hub {
                Some(hub) if !hub.hub_action(action.clone(), object.clone()) => {
                    Err("hub inbox full".into())
                }
                _ => Ok(Value::Null),
            },
            Effect::PrometheusMetric { .. } => Ok(Value::Null),
            // No capture's packets here: a plausible path, nothing written.
            Effect::PcapSnapshot { .. } => {
                let p = self
                    .data_dir
                    .join(agent)
                    .join("snapshots")
                    .join(format!("snapshot-{}.pcapng", self.seq));
                Ok(Value::String(p.to_string_lossy().into_owned()))
            }
            Effect::PcapPath { stream } => {
                let p = self.data_dir.join("pcap").join(format!("stream-{stream}.pcapng"));
                Ok(Value::String(p.to_string_lossy().into_owned()))
            }
            Effect::PcapNameHistory => Ok(json!({})),
            Effect::FileWrite { path, content } => {
                let p = self.agent_path(agent, path)?;
                if let Some(dir) = p.parent() {
                    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
                }
                fs::write(&p, content).map_err(|e| io(&p, e))?;
                Ok(Value::Null)
            }
            Effect::FileAppend { path, content } => {
                let p = self.agent_path(agent, path)?;
                if let Some(dir) = p.parent() {
                    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
                }
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| io(&p, e))?;
                f.write_all(content.as_bytes()).map_err(|e| io(&p, e))?;
                Ok(Value::Null)
            }
            Effect::FileRead { path } => {
                let p = self.agent_path(agent, path)?;
                let bytes = fs::read(&p).map_err(|e| io(&p, e))?;
                Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Effect::FileDelete { path } => {
                let p = self.agent_path(agent, path)?;
                let r = if p.is_dir() { fs::remove_dir(&p) } else { fs::remove_file(&p) };
                r.map_err(|e| io(&p, e))?;
                Ok(Value::Null)
            }
            Effect::FileMkdir { path } => {
                let p = self.agent_path(agent, path)?;
                fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
                Ok(Value::Null)
            }
            // Recorded, answered with what the real helper returns in shape;
            // the control plane's executor does these for real.
            Effect::WebhookForm { .. } | Effect::ChatgptPrompt { .. } => Ok(json!("")),
            Effect::Elastic { .. } => Ok(json!(format!("local-{}", self.seq))),
            Effect::PrometheusVector { .. } => Ok(Value::Null),
            Effect::HubBlockPod { name, namespace } => Ok(json!({
                "kind": "NetworkPolicy",
                "metadata": {"name": format!("skua-block-{name}"), "namespace": namespace},
            })),
            Effect::FileMove { to, .. } | Effect::FileCopy { to, .. } => {
                Ok(json!(to.to_string_lossy()))
            }
            Effect::FileTar { dir } => Ok(json!(format!("{}.tar.gz", dir.to_string_lossy()))),
            Effect::FileTemp { name, dir, ext } => {
                let d = dir.clone().unwrap_or_default();
                Ok(json!(d.join(format!("{name}{}.{ext}", self.seq)).to_string_lossy()))
            }
            Effect::FileMkdirTemp { name, dir } => {
                let d = dir.clone().unwrap_or_default();
                Ok(json!(d.join(format!("{name}{}", self.seq)).to_string_lossy()))
            }
            Effect::S3Put { bucket, path, .. }
            | Effect::GcsPut { bucket, path, .. }
            | Effect::AzurePut { container: bucket, path, .. } => {
                let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                Ok(json!(format!("local://{bucket}/{agent}/{name}")))
            }
            Effect::S3Clear { .. } | Effect::GcsClear { .. } => Ok(json!(0)),
        }
    }
}
