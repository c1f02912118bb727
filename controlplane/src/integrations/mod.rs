//! Integrations: what agents' I/O helpers reach. Each one has the same
//! parts, in the same order in its file: request building from the
//! helper's arguments (pure, unit-tested), sending with a timeout, and the
//! classification of its failures into [`IntegrationError`] (which says
//! whether a retry may help). Queues, concurrency, retries and counters are
//! the same for all and live in [`crate::executor`], [`retry`] and
//! [`counters`].
//!
//! | helper | integration | file |
//! |---|---|---|
//! | `vendor.webhook`, `vendor.webhookForm` | `webhook` | `webhook.rs` (on `http.rs`) |
//! | `vendor.slack`, `vendor.slackBot` (with `files`) | `slack`, `slack_bot` | `slack.rs` |
//! | `vendor.influxdb` | `influxdb` | `influxdb.rs` |
//! | `vendor.kinesis.put` | `kinesis` | `kinesis.rs` |
//! | `vendor.elastic` | `elastic` | `elastic.rs` (on `http.rs`) |
//! | `chatgpt.prompt` | `chatgpt` | `chatgpt.rs` (on `http.rs`) |
//! | `vendor.s3.put`, `vendor.s3.clear` | `s3` | `storage.rs` |
//! | `vendor.gcs.put`, `vendor.gcs.clear` | `gcs` | `storage.rs` |
//! | `vendor.azure.put` | `azure` | `storage.rs` |
//! | `file.*` | `file` | `file.rs` |
//! | `pcap.path`, `pcap.snapshot`, `pcap.nameResolutionHistory` | `pcap` | `pcap.rs` (on `dataplane::retention`), `kube/history.rs` |
//! | `hub.action` | `hub` | `hub.rs` |
//! | `hub.blockPod` | `kube` | `block_pod.rs` |
//! | `prometheus.metric`, `prometheus.vector` | `prometheus` | `prometheus.rs` |
//!
//! HTTP clients: the integrations above `http.rs` share its pooled hyper
//! client (one TLS setup, one redirect and body-cap policy); the object
//! stores go through `object_store`'s own client, reqwest, handed the same
//! rustls-with-ring setup (`storage.rs`); Kinesis through the AWS SDK's.

pub mod block_pod;
pub mod chatgpt;
pub mod config;
pub mod counters;
pub mod elastic;
pub mod file;
pub mod http;
pub mod hub;
pub mod influxdb;
pub mod kinesis;
pub mod pcap;
pub mod prometheus;
pub mod retry;
pub mod slack;
pub mod storage;
pub mod webhook;

use std::fmt;
use std::time::Duration;

pub use config::IntegrationsConfig;
pub use counters::{IntegrationCounters, IntegrationSnapshot};

/// The integrations, one queue and one set of counters each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Integration {
    Webhook,
    Slack,
    SlackBot,
    InfluxDb,
    Kinesis,
    File,
    Pcap,
    Hub,
    Prometheus,
    Elastic,
    Chatgpt,
    Kube,
    S3,
    Gcs,
    Azure,
}

impl Integration {
    pub const ALL: [Integration; 15] = [
        Integration::Webhook,
        Integration::Slack,
        Integration::SlackBot,
        Integration::InfluxDb,
        Integration::Kinesis,
        Integration::File,
        Integration::Pcap,
        Integration::Hub,
        Integration::Prometheus,
        Integration::Elastic,
        Integration::Chatgpt,
        Integration::Kube,
        Integration::S3,
        Integration::Gcs,
        Integration::Azure,
    ];

    /// The `integration` label on `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Integration::Webhook => "webhook",
            Integration::Slack => "slack",
            Integration::SlackBot => "slack_bot",
            Integration::InfluxDb => "influxdb",
            Integration::Kinesis => "kinesis",
            Integration::File => "file",
            Integration::Pcap => "pcap",
            Integration::Hub => "hub",
            Integration::Prometheus => "prometheus",
            Integration::Elastic => "elastic",
            Integration::Chatgpt => "chatgpt",
            Integration::Kube => "kube",
            Integration::S3 => "s3",
            Integration::Gcs => "gcs",
            Integration::Azure => "azure",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrationError {
    /// The helper's arguments cannot make a valid request (a bad URL, a
    /// record over 1 MiB, a path outside the agent's directory). Not retried.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The host name did not resolve. Retried: resolvers fail transiently,
    /// and in a cluster a service's name may appear after its first use.
    #[error("cannot resolve {host}: {detail}")]
    Dns { host: String, detail: String },
    /// Connection refused, reset or closed early. Retried.
    #[error("connection failed: {0}")]
    Connect(String),
    /// TLS failed: the certificate did not verify, no common protocol.
    /// Not retried (the same certificate fails again).
    #[error("TLS: {0}")]
    Tls(String),
    /// The attempt took longer than its timeout. Retried.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status. Retried for 408, 429 and
    /// 5xx; `retry_after` is the server's `Retry-After`.
    #[error("HTTP {status}{}", body_suffix(body))]
    Status { status: u16, retry_after: Option<Duration>, body: String },
    /// The service answered with an error of its own (Slack `ok: false`,
    /// a Kinesis error code).
    #[error("{service}: {code}{}", message_suffix(message))]
    Service {
        service: &'static str,
        code: String,
        message: String,
        retryable: bool,
        retry_after: Option<Duration>,
    },
    /// A local I/O error (`file.*`, `pcap.*`).
    #[error("{0}")]
    Io(String),
    /// Something skua cannot do here (packet retention off, a stream no
    /// longer retained).
    #[error("{0}")]
    Unavailable(String),
    /// A named limit would be passed (an agent's storage quota). Not
    /// retried.
    #[error("quota exceeded: {0}")]
    Quota(String),
}

fn body_suffix(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        String::new()
    } else {
        let cut: String = b.chars().take(200).collect();
        format!(": {cut}")
    }
}

fn message_suffix(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(" ({m})")
    }
}

impl IntegrationError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            IntegrationError::Invalid(_)
            | IntegrationError::Io(_)
            | IntegrationError::Unavailable(_)
            | IntegrationError::Quota(_)
            | IntegrationError::Tls(_) => false,
            IntegrationError::Dns { .. }
            | IntegrationError::Connect(_)
            | IntegrationError::Timeout(_) => true,
            IntegrationError::Status { status, .. } => retryable_status(*status),
            IntegrationError::Service { retryable, .. } => *retryable,
        }
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IntegrationError::Status { retry_after, .. }
            | IntegrationError::Service { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// HTTP statuses worth another attempt: timeouts, rate limits, server errors.
pub fn retryable_status(status: u16) -> bool {
    status == 408
        || status == 429
        || (500..=599).contains(&status) && status != 501 && status != 505
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the
/// services skua talks to and is ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
}
