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
    /// `vendor.slackBot(token, channelId, pretext, text, color, fields?)`.
    SlackBot {
        token: String,
        channel_id: String,
        pretext: String,
        text: String,
        color: String,
        fields: Option<Value>,
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
            Effect::SlackBot { channel_id, pretext, text, color, fields, .. } => json!({
                "token": REDACTED, "channelId": channel_id, "pretext": pretext, "text": text,
                "color": color, "fields": fields,
            }),
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
    fn debug_redacts_credentials() {
        let e = Effect::SlackBot {
            token: "xoxb-secret".into(),
            channel_id: "C1".into(),
            pretext: "p".into(),
            text: "t".into(),
            color: "red".into(),
            fields: None,
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
