//! Effects: what I/O helpers ask of the world. A helper call never does I/O
//! on a script core; it becomes an [`Effect`] (its arguments as Rust values)
//! in an [`EffectRequest`] on one bounded channel to the control plane, and
//! the helper returns a Promise. The executor answers on the runtime's
//! [`Mailbox`] with a [`Completion`]; the runtime settles the Promise when
//! its owner calls `poll_completions`. A full channel rejects the Promise at
//! once and is counted; nothing waits.
//!
//! The mailbox also carries what the control plane delivers *into* a runtime
//! (hub actions for `onHubAction`, pod events for `onPodEvent`, skua's own
//! log records for `onLogCall` on a queue of their own, taken only while
//! some agent of the runtime defines the hook).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::{json, Value};

use crate::console::RuntimeId;

/// `prometheus.metric` type argument: 1 counter, 2 gauge, 3 untyped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Untyped,
}

impl MetricKind {
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(MetricKind::Counter),
            2 => Some(MetricKind::Gauge),
            3 => Some(MetricKind::Untyped),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Untyped => "untyped",
        }
    }
}

/// One I/O helper call with its arguments. Objects an agent passed stay
/// JSON values; bodies and payloads an agent passed as objects are already
/// JSON text. Paths of `file.*` are relative to the agent's own directory
/// and were checked by [`confine`].
#[derive(Clone, PartialEq)]
pub enum Effect {
    /// `vendor.webhook(method, url, body, headers?)`.
    Webhook { method: String, url: String, body: String, headers: BTreeMap<String, String> },
    /// `vendor.slack(webhookUrl, pretext, text, color)`.
    Slack { webhook_url: String, pretext: String, text: String, color: String },
    /// `vendor.slackBot(token, channelId, pretext, text, color, fields?,
    /// files?)`; `files` is `{name: path}` (paths checked by
    /// [`confine_source`]).
    SlackBot {
        token: String,
        channel_id: String,
        pretext: String,
        text: String,
        color: String,
        fields: Option<Value>,
        files: BTreeMap<String, PathBuf>,
    },
    /// `vendor.influxdb(url, token, org, bucket, measurement, data, tags?)`.
    InfluxDb {
        url: String,
        token: String,
        org: String,
        bucket: String,
        measurement: String,
        data: Value,
        tags: BTreeMap<String, String>,
    },
    /// `vendor.kinesis.put(stream, payload, region, keyId?, secret?)`.
    KinesisPut {
        stream: String,
        payload: String,
        region: String,
        key_id: Option<String>,
        secret: Option<String>,
    },
    /// `hub.action(action, object)`.
    HubAction { action: String, object: Value },
    /// `prometheus.metric(name, help, type, value, labels?)`.
    PrometheusMetric {
        name: String,
        help: String,
        kind: MetricKind,
        value: f64,
        labels: BTreeMap<String, String>,
    },
    /// `file.write(path, content)`.
    FileWrite { path: PathBuf, content: String },
    /// `file.append(path, content)`.
    FileAppend { path: PathBuf, content: String },
    /// `file.read(path)` → the content.
    FileRead { path: PathBuf },
    /// `file.delete(path)` (a file, or an empty directory).
    FileDelete { path: PathBuf },
    /// `file.mkdir(path)` (with parents).
    FileMkdir { path: PathBuf },
    /// `vendor.webhookForm(method, url, fields)` → the response body.
    WebhookForm { method: String, url: String, fields: BTreeMap<String, String> },
    /// `vendor.elastic(url, index, doc, user?, password?, cloudId?, apiKey?,
    /// serviceToken?, certFingerprint?)` → the document id. `doc` is JSON
    /// text.
    Elastic {
        url: String,
        index: String,
        doc: String,
        user: Option<String>,
        password: Option<String>,
        cloud_id: Option<String>,
        api_key: Option<String>,
        service_token: Option<String>,
        cert_fingerprint: Option<String>,
    },
    /// `chatgpt.prompt(apiKey, prompt, maxTokens=1024)` → the answer text.
    ChatgptPrompt { api_key: String, prompt: String, max_tokens: u32 },
    /// `prometheus.vector(name, help, type, value, labels)`: one series of a
    /// counter vec (1) or gauge vec (2).
    PrometheusVector {
        name: String,
        help: String,
        kind: MetricKind,
        value: f64,
        labels: BTreeMap<String, String>,
    },
    /// `hub.blockPod(name, namespace)` → the created NetworkPolicy.
    HubBlockPod { name: String, namespace: String },
    /// `file.move(from, to)`: into a folder keeps the name.
    FileMove { from: PathBuf, to: PathBuf },
    /// `file.copy(from, to)`: into a folder keeps the name.
    FileCopy { from: PathBuf, to: PathBuf },
    /// `file.tar(dir)` → the `.tar.gz` path.
    FileTar { dir: PathBuf },
    /// `file.temp(name, dir, ext)` → the new file's path.
    FileTemp { name: String, dir: Option<PathBuf>, ext: String },
    /// `file.mkdirTemp(name?, dir?)` → the new folder's path.
    FileMkdirTemp { name: String, dir: Option<PathBuf> },
    /// `vendor.s3.put(...)` in either published order → the object URL.
    S3Put {
        bucket: String,
        path: PathBuf,
        region: String,
        key_id: Option<String>,
        secret: Option<String>,
    },
    /// `vendor.s3.clear(region, keyId, secret, bucket)`: deletes this node's
    /// prefix.
    S3Clear { bucket: String, region: String, key_id: Option<String>, secret: Option<String> },
    /// `vendor.gcs.put(bucket, path, serviceAccountKey?)` → the object URL;
    /// the key is JSON text.
    GcsPut { bucket: String, path: PathBuf, service_account_key: Option<String> },
    /// `vendor.gcs.clear(bucket, serviceAccountKey?)`.
    GcsClear { bucket: String, service_account_key: Option<String> },
    /// `vendor.azure.put(container, path, account?, key?, connectionString?)`
    /// → the blob URL.
    AzurePut {
        container: String,
        path: PathBuf,
        account: Option<String>,
        key: Option<String>,
        connection_string: Option<String>,
    },
    /// `pcap.path(stream)` → the path of a pcapng file of that stream's
    /// retained packets.
    PcapPath { stream: u64 },
    /// `pcap.snapshot(streams?, dir?)` / `pcap.snapshot(seconds)` → the
    /// path of the pcapng file written (under `dir`, relative to the pcap
    /// folder, when given).
    PcapSnapshot { select: PcapSelect, dir: Option<PathBuf> },
    /// `pcap.nameResolutionHistory()` → `{"<unix s>": {"<ip>[:port]":
    /// {FullAddress, Namespace}}}` of the Kubernetes name maps seen.
    PcapNameHistory,
}

/// Which retained packets `pcap.snapshot` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapSelect {
    /// Every retained packet (`streams` not an array).
    All,
    /// The packets of these streams, merged in capture order.
    Streams(Vec<u64>),
    /// The last N seconds of every core (a number; skua's own form).
    Seconds(u32),
}

/// Reads an item's `stream` as `pcap.path` and `pcap.snapshot` take it: the
/// string `data.stream` is (decimal digits), or the same number.
pub fn parse_stream(v: &Value) -> Result<u64, String> {
    let bad = || format!("stream must be an item's `stream` (a string of digits), got {v}");
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        }
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        _ => Err(bad()),
    }
}

const REDACTED: &str = "***";

impl Effect {
    /// The helper's name as agents call it.
    pub fn helper(&self) -> &'static str {
        match self {
            Effect::Webhook { .. } => "vendor.webhook",
            Effect::Slack { .. } => "vendor.slack",
            Effect::SlackBot { .. } => "vendor.slackBot",
            Effect::InfluxDb { .. } => "vendor.influxdb",
            Effect::KinesisPut { .. } => "vendor.kinesis.put",
            Effect::HubAction { .. } => "hub.action",
            Effect::PrometheusMetric { .. } => "prometheus.metric",
            Effect::FileWrite { .. } => "file.write",
            Effect::FileAppend { .. } => "file.append",
            Effect::FileRead { .. } => "file.read",
            Effect::FileDelete { .. } => "file.delete",
            Effect::FileMkdir { .. } => "file.mkdir",
            Effect::PcapPath { .. } => "pcap.path",
            Effect::PcapSnapshot { .. } => "pcap.snapshot",
            Effect::WebhookForm { .. } => "vendor.webhookForm",
            Effect::Elastic { .. } => "vendor.elastic",
            Effect::ChatgptPrompt { .. } => "chatgpt.prompt",
            Effect::PrometheusVector { .. } => "prometheus.vector",
            Effect::HubBlockPod { .. } => "hub.blockPod",
            Effect::FileMove { .. } => "file.move",
            Effect::FileCopy { .. } => "file.copy",
            Effect::FileTar { .. } => "file.tar",
            Effect::FileTemp { .. } => "file.temp",
            Effect::FileMkdirTemp { .. } => "file.mkdirTemp",
            Effect::S3Put { .. } => "vendor.s3.put",
            Effect::S3Clear { .. } => "vendor.s3.clear",
            Effect::GcsPut { .. } => "vendor.gcs.put",
            Effect::GcsClear { .. } => "vendor.gcs.clear",
            Effect::AzurePut { .. } => "vendor.azure.put",
            Effect::PcapNameHistory => "pcap.nameResolutionHistory",
        }
    }

    /// The field of the executor's answer that is the plain value the
    /// helper returned in Kubeshark (what a script gets when it uses the
    /// result as a value, `crate::results`); `None`: the whole answer. The
    /// Promise resolves with the whole answer either way.
    pub fn plain_field(&self) -> Option<&'static str> {
        match self {
            // `{status, headers, body}` → the body, as Kubeshark returned.
            Effect::Webhook { .. } => Some("body"),
            _ => None,
        }
    }

    /// The arguments as JSON with credentials (tokens, secrets, Slack
    /// webhook URLs) replaced by `***`: what transcripts and logs may show.
    pub fn redacted_json(&self) -> Value {
        match self {
            Effect::Webhook { method, url, body, headers } => {
                let headers: BTreeMap<&str, &str> = headers
                    .iter()
                    .map(|(k, v)| {
                        let secret = k.eq_ignore_ascii_case("authorization")
                            || k.to_ascii_lowercase().contains("token");
                        (k.as_str(), if secret { REDACTED } else { v.as_str() })
                    })
                    .collect();
                json!({"method": method, "url": url, "body": body, "headers": headers})
            }
            Effect::Slack { pretext, text, color, .. } => {
                json!({"webhookUrl": REDACTED, "pretext": pretext, "text": text, "color": color})
            }
            Effect::SlackBot { channel_id, pretext, text, color, fields, files, .. } => {
                let files: BTreeMap<&str, std::borrow::Cow<'_, str>> =
                    files.iter().map(|(k, v)| (k.as_str(), v.to_string_lossy())).collect();
                json!({
                    "token": REDACTED, "channelId": channel_id, "pretext": pretext, "text": text,
                    "color": color, "fields": fields, "files": files,
                })
            }
            Effect::InfluxDb { url, org, bucket, measurement, data, tags, .. } => json!({
                "url": url, "token": REDACTED, "org": org, "bucket": bucket,
                "measurement": measurement, "data": data, "tags": tags,
            }),
            Effect::KinesisPut { stream, payload, region, key_id, secret } => json!({
                "stream": stream, "payload": payload, "region": region,
                "keyId": key_id.as_ref().map(|_| REDACTED), "secret": secret.as_ref().map(|_| REDACTED),
            }),
            Effect::HubAction { action, object } => json!({"action": action, "object": object}),
            Effect::PrometheusMetric { name, help, kind, value, labels } => json!({
                "name": name, "help": help, "type": kind.as_str(), "value": value, "labels": labels,
            }),
            Effect::FileWrite { path, content } | Effect::FileAppend { path, content } => {
                json!({"path": path.to_string_lossy(), "content": content})
            }
            Effect::FileRead { path }
            | Effect::FileDelete { path }
            | Effect::FileMkdir { path } => {
                json!({"path": path.to_string_lossy()})
            }
            Effect::WebhookForm { method, url, fields } => {
                json!({"method": method, "url": url, "fields": fields})
            }
            Effect::Elastic {
                url,
                index,
                doc,
                user,
                password,
                cloud_id,
                api_key,
                service_token,
                cert_fingerprint,
            } => json!({
                "url": url, "index": index, "doc": doc, "user": user,
                "password": redact(password), "cloudId": cloud_id, "apiKey": redact(api_key),
                "serviceToken": redact(service_token), "certFingerprint": cert_fingerprint,
            }),
            Effect::ChatgptPrompt { prompt, max_tokens, .. } => {
                json!({"apiKey": REDACTED, "prompt": prompt, "maxTokens": max_tokens})
            }
            Effect::PrometheusVector { name, help, kind, value, labels } => json!({
                "name": name, "help": help, "type": kind.as_str(), "value": value, "labels": labels,
            }),
            Effect::HubBlockPod { name, namespace } => {
                json!({"name": name, "namespace": namespace})
            }
            Effect::FileMove { from, to } | Effect::FileCopy { from, to } => {
                json!({"from": from.to_string_lossy(), "to": to.to_string_lossy()})
            }
            Effect::FileTar { dir } => json!({"dir": dir.to_string_lossy()}),
            Effect::FileTemp { name, dir, ext } => json!({
                "name": name, "dir": dir.as_ref().map(|d| d.to_string_lossy()), "ext": ext,
            }),
            Effect::FileMkdirTemp { name, dir } => {
                json!({"name": name, "dir": dir.as_ref().map(|d| d.to_string_lossy())})
            }
            Effect::S3Put { bucket, path, region, key_id, secret } => json!({
                "bucket": bucket, "path": path.to_string_lossy(), "region": region,
                "keyId": redact(key_id), "secret": redact(secret),
            }),
            Effect::S3Clear { bucket, region, key_id, secret } => json!({
                "bucket": bucket, "region": region, "keyId": redact(key_id), "secret": redact(secret),
            }),
            Effect::GcsPut { bucket, path, service_account_key } => json!({
                "bucket": bucket, "path": path.to_string_lossy(),
                "serviceAccountKey": redact(service_account_key),
            }),
            Effect::GcsClear { bucket, service_account_key } => {
                json!({"bucket": bucket, "serviceAccountKey": redact(service_account_key)})
            }
            Effect::AzurePut { container, path, account, key, connection_string } => json!({
                "container": container, "path": path.to_string_lossy(), "account": account,
                "key": redact(key), "connectionString": redact(connection_string),
            }),
            Effect::PcapPath { stream } => json!({"stream": stream.to_string()}),
            Effect::PcapSnapshot { select, dir } => {
                let dir = dir.as_ref().map(|d| d.to_string_lossy().into_owned());
                match select {
                    PcapSelect::All => json!({"streams": "all", "dir": dir}),
                    PcapSelect::Streams(s) => json!({
                        "streams": s.iter().map(u64::to_string).collect::<Vec<_>>(), "dir": dir,
                    }),
                    PcapSelect::Seconds(n) => json!({"seconds": n, "dir": dir}),
                }
            }
            Effect::PcapNameHistory => json!({}),
        }
    }
}

/// An optional secret as logs may show it: `***` when given.
fn redact(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| REDACTED)
}

impl fmt::Debug for Effect {
    /// Redacted: an effect may be logged, its credentials may not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.helper(), self.redacted_json())
    }
}

/// Checks a `file.*` path: relative, no `..`, not empty. Returns it
/// normalised (`.` parts dropped), to be joined to the agent's directory.
pub fn confine(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err("file path is empty".into());
    }
    if path.contains('\0') {
        return Err("file path contains a NUL byte".into());
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("file path {path:?}: '..' is not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("file path {path:?}: absolute paths are not allowed"))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("file path {path:?} names the agent directory itself"));
    }
    Ok(out)
}

/// Checks the path of a file a helper only reads (`file.copy`'s and
/// `file.move`'s source, what `vendor.*.put` uploads): as [`confine`], but an
/// absolute path is let through, normalised, for the executor to accept
/// only when it lies in the agent's directory or in skua's pcap folder
/// (what `pcap.path` and `pcap.snapshot` return). `..` is never allowed.
pub fn confine_source(path: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') {
        return confine(path);
    }
    if path.contains('\0') {
        return Err("file path contains a NUL byte".into());
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err(format!("file path {path:?}: '..' is not allowed")),
            Component::Prefix(_) => return Err(format!("file path {path:?} is not a Unix path")),
        }
    }
    Ok(out)
}

/// Whether `s` is an AWS region name (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`, `cn-north-1`, `ap-southeast-5`).
pub fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.trim().split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// The two published argument orders of `vendor.s3.put`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3PutOrder {
    /// `(bucket, path, region, keyId?, secret?)`: the documented order.
    BucketFirst,
    /// `(region, keyId, secret, bucket, path)`: the older scripts' order.
    RegionFirst,
}

/// Tells the orders apart from the argument values (`None` = absent):
/// the older order is recognised when the third argument is not a region
/// name but the first is, and when neither is one but all five are given
/// with an access key id (or nothing) second; everything else is the
/// documented order. A bucket may be named like a region, a secret never
/// is, so the third argument decides first.
pub fn s3_put_order(args: &[Option<&str>]) -> S3PutOrder {
    let at = |i: usize| args.get(i).copied().flatten().unwrap_or("");
    if looks_like_region(at(2)) {
        return S3PutOrder::BucketFirst;
    }
    if looks_like_region(at(0)) {
        return S3PutOrder::RegionFirst;
    }
    let key_id = at(1).trim();
    let key_like = key_id.is_empty()
        || (key_id.len() >= 16
            && key_id.starts_with('A')
            && key_id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    if args.len() >= 5 && args[3].is_some() && args[4].is_some() && key_like {
        S3PutOrder::RegionFirst
    } else {
        S3PutOrder::BucketFirst
    }
}

/// How an effect ended: its result value, or an error message the Promise
/// rejects with.
pub type EffectResult = Result<Value, String>;

/// The answer to one effect, back to the runtime that asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub runtime: RuntimeId,
    pub request_id: u64,
    pub result: EffectResult,
}

/// What the control plane delivers into a runtime besides completions.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    /// Calls `onHubAction(action, object)`.
    HubAction { action: String, object: Value },
    /// Calls `onPodEvent(event, pod)`; `event` is `ADDED`, `MODIFIED`,
    /// `DELETED`, `RESTARTED` or `CRASHED`.
    PodEvent { event: String, pod: Value },
    /// Loads or reloads an agent between two hook calls (a hub push or a
    /// changed file); the other agents keep their state. A source that does
    /// not load is reported on the console and the running version kept.
    LoadAgent { name: String, source: Arc<str> },
    /// Removes an agent with its hooks and jobs.
    RemoveAgent { name: String },
    /// Replaces `env` (the hub's env changed); every agent is loaded again
    /// with it.
    SetEnv { env: std::collections::BTreeMap<String, String> },
    /// Runs (or with `remove`, removes) the job `tag`, or every job when
    /// `tag` is `None`: the hub's jobs view.
    Job { tag: Option<String>, remove: bool },
}

/// One of skua's own log records for `onLogCall(level, msg)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// `info`, `warning` or `error`.
    pub level: &'static str,
    /// The record as a JSON object's text: `time`, `level`, `message` and
    /// the record's fields.
    pub msg: String,
}

/// What became of a log record offered to a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDelivery {
    Sent,
    /// No agent of the runtime defines `onLogCall`.
    NotWanted,
    /// The runtime's log queue was full: dropped and counted.
    Full,
    /// The runtime is gone.
    Gone,
}

/// The way into one runtime: completions of its effects and events for its
/// hooks. Cheap to clone; any thread may hold one.
#[derive(Debug, Clone)]
pub struct Mailbox {
    runtime: RuntimeId,
    completions: Sender<Completion>,
    events: Sender<RuntimeEvent>,
    events_dropped: Arc<AtomicU64>,
    logs: Sender<LogRecord>,
    wants_logs: Arc<std::sync::atomic::AtomicBool>,
    logs_dropped: Arc<AtomicU64>,
}

pub(crate) struct MailboxReceiver {
    pub completions: Receiver<Completion>,
    pub events: Receiver<RuntimeEvent>,
    pub events_dropped: Arc<AtomicU64>,
    pub logs: Receiver<LogRecord>,
    pub wants_logs: Arc<std::sync::atomic::AtomicBool>,
    pub logs_dropped: Arc<AtomicU64>,
}

impl Mailbox {
    /// `completions` bounds settled-but-unpolled Promises (the runtime keeps
    /// no more than that many pending, so a completion always fits);
    /// `events` bounds hub actions and pod events; `logs` log records.
    pub(crate) fn new(
        runtime: RuntimeId,
        completions: usize,
        events: usize,
        logs: usize,
    ) -> (Mailbox, MailboxReceiver) {
        let (ctx, crx) = crossbeam_channel::bounded(completions.max(1));
        let (etx, erx) = crossbeam_channel::bounded(events.max(1));
        let (ltx, lrx) = crossbeam_channel::bounded(logs.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let wants_logs = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let logs_dropped = Arc::new(AtomicU64::new(0));
        (
            Mailbox {
                runtime,
                completions: ctx,
                events: etx,
                events_dropped: dropped.clone(),
                logs: ltx,
                wants_logs: wants_logs.clone(),
                logs_dropped: logs_dropped.clone(),
            },
            MailboxReceiver {
                completions: crx,
                events: erx,
                events_dropped: dropped,
                logs: lrx,
                wants_logs,
                logs_dropped,
            },
        )
    }

    /// Whether some agent of the runtime defines `onLogCall` (only then
    /// are log records worth building for it).
    pub fn wants_logs(&self) -> bool {
        self.wants_logs.load(Ordering::Relaxed)
    }

    /// Queues a log record for `onLogCall`: not when no agent of the
    /// runtime wants it; a full queue drops it and counts.
    pub fn log(&self, record: LogRecord) -> LogDelivery {
        if !self.wants_logs() {
            return LogDelivery::NotWanted;
        }
        match self.logs.try_send(record) {
            Ok(()) => LogDelivery::Sent,
            Err(TrySendError::Full(_)) => {
                self.logs_dropped.fetch_add(1, Ordering::Relaxed);
                LogDelivery::Full
            }
            Err(TrySendError::Disconnected(_)) => LogDelivery::Gone,
        }
    }

    pub fn runtime(&self) -> RuntimeId {
        self.runtime
    }

    /// Delivers a completion; `false` if the runtime is gone.
    pub fn complete(&self, c: Completion) -> bool {
        self.completions.try_send(c).is_ok()
    }

    /// Queues a hub action for `onHubAction`; `false` (counted) when the
    /// runtime's inbox is full or the runtime is gone.
    pub fn hub_action(&self, action: impl Into<String>, object: Value) -> bool {
        self.event(RuntimeEvent::HubAction { action: action.into(), object })
    }

    /// Queues a pod event for `onPodEvent`; `false` (counted) when full.
    pub fn pod_event(&self, event: impl Into<String>, pod: Value) -> bool {
        self.event(RuntimeEvent::PodEvent { event: event.into(), pod })
    }

    pub fn event(&self, e: RuntimeEvent) -> bool {
        match self.events.try_send(e) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.events_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// One effect on its way to the control plane.
#[derive(Debug)]
pub struct EffectRequest {
    pub runtime: RuntimeId,
    /// The agent whose helper call this is (`file.*` paths are under its
    /// directory).
    pub agent: Arc<str>,
    pub request_id: u64,
    pub effect: Effect,
    reply: Mailbox,
}

impl EffectRequest {
    /// Answers the request: the agent's Promise resolves with the value or
    /// rejects with an `Error` carrying the message. `false` if the runtime
    /// is gone (the answer is then moot).
    pub fn complete(self, result: EffectResult) -> bool {
        self.reply.complete(Completion {
            runtime: self.runtime,
            request_id: self.request_id,
            result,
        })
    }

    /// The mailbox of the runtime that asked (to complete later, from
    /// another task, after taking the effect out).
    pub fn reply_to(&self) -> &Mailbox {
        &self.reply
    }
}

/// The sending side of the effect queue, cloned into every runtime.
#[derive(Debug, Clone)]
pub struct EffectSink {
    tx: Sender<EffectRequest>,
    rejected_full: Arc<AtomicU64>,
}

impl EffectSink {
    /// A queue of at most `capacity` requests (`scripting.effectQueue`) and
    /// its receiving side, for the control plane or a [`crate::LocalExecutor`].
    pub fn new(capacity: usize) -> (EffectSink, Receiver<EffectRequest>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        (EffectSink { tx, rejected_full: Arc::new(AtomicU64::new(0)) }, rx)
    }

    pub(crate) fn submit(
        &self,
        runtime: RuntimeId,
        agent: Arc<str>,
        request_id: u64,
        effect: Effect,
        reply: &Mailbox,
    ) -> Result<(), &'static str> {
        let req = EffectRequest { runtime, agent, request_id, effect, reply: reply.clone() };
        match self.tx.try_send(req) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.rejected_full.fetch_add(1, Ordering::Relaxed);
                Err("effect queue full")
            }
            Err(TrySendError::Disconnected(_)) => {
                self.rejected_full.fetch_add(1, Ordering::Relaxed);
                Err("no effect executor")
            }
        }
    }

    /// Helper calls rejected because the queue was full (or had no reader).
    pub fn rejected_full(&self) -> u64 {
        self.rejected_full.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_rejects_escapes() {
        assert_eq!(confine("a/b.txt").unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(confine("./a").unwrap(), PathBuf::from("a"));
        assert!(confine("../x").is_err());
        assert!(confine("a/../../x").is_err());
        assert!(confine("/etc/passwd").is_err());
        assert!(confine("").is_err());
        assert!(confine(".").is_err());
    }

    #[test]
    fn confine_source_lets_absolute_paths_through_normalised() {
        assert_eq!(
            confine_source("/data/pcap/./x.pcap").unwrap(),
            PathBuf::from("/data/pcap/x.pcap")
        );
        assert!(confine_source("/data/../etc/passwd").is_err());
        assert_eq!(confine_source("dfir/a").unwrap(), PathBuf::from("dfir/a"));
        assert!(confine_source("../a").is_err());
    }

    #[test]
    fn s3_put_orders_are_told_apart() {
        use S3PutOrder::*;
        let o = |a: &[Option<&str>]| s3_put_order(a);
        // Documented: (bucket, path, region, keyId?, secret?).
        assert_eq!(o(&[Some("b"), Some("x.pcap"), Some("us-east-1")]), BucketFirst);
        assert_eq!(
            o(&[
                Some("b"),
                Some("x"),
                Some("eu-west-3"),
                Some("AKIAEXAMPLE000000001"),
                Some("s/k+y")
            ]),
            BucketFirst
        );
        // A bucket named like a region: the third argument decides.
        assert_eq!(o(&[Some("us-east-1"), Some("x"), Some("us-east-1")]), BucketFirst);
        // Older: (region, keyId, secret, bucket, path).
        assert_eq!(
            o(&[
                Some("us-east-1"),
                Some("AKIAEXAMPLE000000001"),
                Some("wJalr/K7MDENG+bPxRfiCY"),
                Some("b"),
                Some("x")
            ]),
            RegionFirst
        );
        assert_eq!(
            o(&[Some("us-gov-west-1"), Some(""), Some(""), Some("b"), Some("x")]),
            RegionFirst
        );
        // A custom region (an S3-compatible store) in the older order.
        assert_eq!(
            o(&[Some("garage"), Some("AKIAEXAMPLE000000001"), Some("s"), Some("b"), Some("x")]),
            RegionFirst
        );
        // Empty region in the documented order.
        assert_eq!(o(&[Some("b"), Some("x"), Some("")]), BucketFirst);
        assert!(looks_like_region("ap-southeast-5") && looks_like_region("cn-north-1"));
        assert!(!looks_like_region("my-bucket") && !looks_like_region("us-east-x"));
    }

    #[test]
    fn debug_redacts_credentials() {
        let e = Effect::SlackBot {
            token: "xoxb-secret".into(),
            channel_id: "C1".into(),
            pretext: "p".into(),
            text: "t".into(),
            color: "red".into(),
            fields: None,
            files: BTreeMap::new(),
        };
        let s = format!("{e:?}");
        assert!(!s.contains("xoxb-secret"), "{s}");
        assert!(s.contains("vendor.slackBot"));
        let k = Effect::KinesisPut {
            stream: "s".into(),
            payload: "{}".into(),
            region: "us-east-1".into(),
            key_id: Some("AKIA".into()),
            secret: Some("sekret".into()),
        };
        assert!(!format!("{k:?}").contains("sekret"));
    }
}
