//! `IntegrationsConfig`: the `integrations` section of the config. Every
//! limit of the control plane's I/O (queues, concurrency, timeouts, retries,
//! the drain at exit) is one named field with a default; the doc comments of
//! the fields are the user documentation (`docs/config.md` repeats them).

use serde::{Deserialize, Serialize};

/// The control plane: the executor that carries agents' I/O helpers
/// (`vendor.*`, `file.*`, `pcap.snapshot`, `hub.action`,
/// `prometheus.metric`) out to the world, and `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsConfig {
    /// Worker threads of the control plane's tokio runtime. They are pinned
    /// to the housekeeping CPUs (those of the process' affinity not used by
    /// dataplane or script cores); never to a capture or script core.
    pub worker_threads: usize,
    /// At the end of a capture and on SIGTERM, how long queued and in-flight
    /// deliveries may take to finish, in milliseconds. What is still
    /// unfinished then is abandoned and counted as failed.
    pub drain_timeout_ms: u64,
    /// Address `/metrics` (Prometheus text format) is served on; empty
    /// disables the server.
    pub metrics_listen: String,
    /// PEM file of CA certificates trusted for https besides the Mozilla
    /// roots built into skua (an internal CA); empty: none. A certificate
    /// that does not verify fails the delivery at once (not retried).
    pub tls_ca_file: String,
    /// Retry policy shared by every integration.
    pub retry: RetryConfig,
    /// `vendor.webhook`.
    pub webhook: WebhookConfig,
    /// `vendor.slack` (incoming webhooks).
    pub slack: LaneConfig,
    /// `vendor.slackBot` (`chat.postMessage`).
    pub slack_bot: SlackBotConfig,
    /// `vendor.influxdb`.
    pub influxdb: InfluxDbConfig,
    /// `vendor.kinesis.put`.
    pub kinesis: KinesisConfig,
    /// `file.write`, `file.append`, `file.read`, `file.delete`, `file.mkdir`.
    pub file: FileConfig,
    /// `pcap.snapshot`.
    pub pcap: PcapConfig,
    /// `prometheus.metric`, `prometheus.vector`.
    pub prometheus: PrometheusConfig,
    /// `vendor.elastic` (`vendor.webhookForm` shares `webhook`'s settings).
    pub elastic: ElasticConfig,
    /// `chatgpt.prompt`.
    pub chatgpt: ChatgptConfig,
    /// `hub.blockPod` (the Kubernetes API).
    pub kube: LaneConfig,
    /// What `vendor.s3`, `vendor.gcs` and `vendor.azure` share.
    pub storage: StorageConfig,
    /// `vendor.s3.put`, `vendor.s3.clear`.
    pub s3: S3Config,
    /// `vendor.gcs.put`, `vendor.gcs.clear`.
    pub gcs: ObjectStoreConfig,
    /// `vendor.azure.put`.
    pub azure: ObjectStoreConfig,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        IntegrationsConfig {
            worker_threads: 2,
            drain_timeout_ms: 10_000,
            metrics_listen: "127.0.0.1:9188".into(),
            tls_ca_file: String::new(),
            retry: RetryConfig::default(),
            webhook: WebhookConfig::default(),
            slack: LaneConfig { queue: 256, concurrency: 4, timeout_ms: 10_000 },
            slack_bot: SlackBotConfig::default(),
            influxdb: InfluxDbConfig::default(),
            kinesis: KinesisConfig::default(),
            file: FileConfig::default(),
            pcap: PcapConfig::default(),
            prometheus: PrometheusConfig::default(),
            elastic: ElasticConfig::default(),
            chatgpt: ChatgptConfig::default(),
            kube: LaneConfig { queue: 64, concurrency: 2, timeout_ms: 10_000 },
            storage: StorageConfig::default(),
            s3: S3Config::default(),
            gcs: ObjectStoreConfig::default(),
            azure: ObjectStoreConfig::default(),
        }
    }
}

/// A field that failed validation, named by its full key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidIntegrationsConfig {
    pub key: String,
    pub reason: String,
}

impl IntegrationsConfig {
    pub fn validate(&self) -> Result<(), InvalidIntegrationsConfig> {
        let bad = |key: &str, reason: &str| {
            Err(InvalidIntegrationsConfig {
                key: format!("integrations.{key}"),
                reason: reason.into(),
            })
        };
        if !(1..=64).contains(&self.worker_threads) {
            return bad("worker_threads", "must be between 1 and 64");
        }
        if !self.metrics_listen.is_empty()
            && self.metrics_listen.parse::<std::net::SocketAddr>().is_err()
        {
            return bad(
                "metrics_listen",
                "must be an address like 127.0.0.1:9188 (or empty to disable)",
            );
        }
        if self.retry.initial_backoff_ms == 0
            || self.retry.max_backoff_ms < self.retry.initial_backoff_ms
        {
            return bad("retry", "need 0 < initial_backoff_ms <= max_backoff_ms");
        }
        let lanes = [
            ("webhook", self.webhook.lane()),
            ("slack", self.slack),
            ("slack_bot", self.slack_bot.lane()),
            ("influxdb", self.influxdb.lane()),
            ("kinesis", self.kinesis.lane()),
            ("file", self.file.lane()),
            ("pcap", self.pcap.lane()),
            ("elastic", self.elastic.lane()),
            ("chatgpt", self.chatgpt.lane()),
            ("kube", self.kube),
            ("s3", self.s3.lane()),
            ("gcs", self.gcs.lane()),
            ("azure", self.azure.lane()),
        ];
        for (name, lane) in lanes {
            if lane.queue == 0 {
                return bad(&format!("{name}.queue"), "must be at least 1");
            }
            if lane.concurrency == 0 {
                return bad(&format!("{name}.concurrency"), "must be at least 1");
            }
            if lane.timeout_ms == 0 {
                return bad(&format!("{name}.timeout_ms"), "must be at least 1");
            }
        }
        if self.pcap.max_store_bytes < 4096 {
            return bad("pcap.max_store_bytes", "must be at least 4096");
        }
        if !self.kinesis.endpoint.is_empty() && url::Url::parse(&self.kinesis.endpoint).is_err() {
            return bad("kinesis.endpoint", "must be a URL like http://127.0.0.1:4567 (or empty)");
        }
        if !self.slack_bot.api_url.starts_with("http://")
            && !self.slack_bot.api_url.starts_with("https://")
        {
            return bad("slack_bot.api_url", "must be an http:// or https:// URL");
        }
        for (name, endpoint) in [
            ("s3.endpoint", &self.s3.endpoint),
            ("gcs.endpoint", &self.gcs.endpoint),
            ("azure.endpoint", &self.azure.endpoint),
        ] {
            if !endpoint.is_empty() && url::Url::parse(endpoint).is_err() {
                return bad(name, "must be a URL like http://127.0.0.1:9000 (or empty)");
            }
        }
        if url::Url::parse(&self.chatgpt.base_url).is_err() {
            return bad("chatgpt.base_url", "must be a URL like https://api.openai.com/v1");
        }
        if self.storage.clients == 0 {
            return bad("storage.clients", "must be at least 1");
        }
        if self.storage.part_bytes < 5 << 20 {
            return bad("storage.part_bytes", "must be at least 5242880 (S3's smallest part)");
        }
        if self.storage.run_id.contains('/') {
            return bad("storage.run_id", "must not contain '/'");
        }
        if self.kinesis.max_batch_records == 0
            || self.kinesis.max_batch_records
                > crate::integrations::kinesis::MAX_RECORDS_PER_REQUEST
        {
            return bad(
                "kinesis.max_batch_records",
                "must be between 1 and 500 (the PutRecords limit)",
            );
        }
        Ok(())
    }
}

/// How failed deliveries are retried: exponential back-off with full
/// jitter, for retryable errors only (connection refused or reset, DNS
/// failures, timeouts, HTTP 408/429/5xx, Kinesis throttling and partial
/// failures, Slack `ratelimited`). Errors a retry cannot fix (HTTP 4xx, an
/// invalid URL, Slack `channel_not_found`, a record over 1 MiB) fail at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Back-off before the first retry, in milliseconds; it doubles each
    /// retry up to `max_backoff_ms`, and each wait is drawn at random
    /// between half of it and all of it.
    pub initial_backoff_ms: u64,
    /// Longest back-off between two attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// A `Retry-After` from the server (HTTP 429/503) is honoured up to this
    /// many milliseconds; a longer one fails the delivery instead of
    /// holding a queue slot.
    pub max_retry_after_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 4,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
            max_retry_after_ms: 60_000,
        }
    }
}

/// Queue, concurrency and timeout of one integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneConfig {
    /// Requests waiting for this integration. When full, a helper's
    /// Promise rejects at once (`queue full`) and it is counted as rejected;
    /// other integrations are not affected.
    pub queue: usize,
    /// Requests of this integration in flight at once.
    pub concurrency: usize,
    /// Time one attempt may take (connect, send, read the response), in
    /// milliseconds.
    pub timeout_ms: u64,
}

impl Default for LaneConfig {
    fn default() -> Self {
        LaneConfig { queue: 1024, concurrency: 16, timeout_ms: 10_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Requests waiting; see `LaneConfig`.
    pub queue: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Time one attempt may take, redirects included, in milliseconds.
    pub timeout_ms: u64,
    /// Time to establish a TCP connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Redirects (301, 302, 303, 307, 308) followed; 0 returns the 3xx
    /// response itself. 301/302 turn a POST into a GET and 303 turns every
    /// method but HEAD into a GET (without body), as browsers do; 307/308
    /// keep the method and body. `Authorization` and `Cookie` headers are
    /// not sent to another host.
    pub max_redirects: u32,
    /// Bytes of a response body given back to the agent; longer bodies are
    /// cut there.
    pub max_response_bytes: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            queue: 1024,
            concurrency: 16,
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            max_redirects: 5,
            max_response_bytes: 1 << 20,
        }
    }
}

impl WebhookConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackBotConfig {
    /// Requests waiting; see `LaneConfig`.
    pub queue: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Time one attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// Slack's Web API base; `chat.postMessage` is posted under it. Changed
    /// only for tests or a proxy.
    pub api_url: String,
    /// Largest file `vendor.slackBot`'s `files` uploads, in bytes; a larger
    /// one fails the call before anything is sent.
    pub max_file_bytes: u64,
}

impl Default for SlackBotConfig {
    fn default() -> Self {
        SlackBotConfig {
            queue: 256,
            concurrency: 4,
            timeout_ms: 10_000,
            api_url: "https://slack.com/api".into(),
            max_file_bytes: 100 << 20,
        }
    }
}

impl SlackBotConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

/// Which InfluxDB write API `vendor.influxdb` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfluxApi {
    /// InfluxDB 2.x (and 1.8+ in compatibility mode):
    /// `POST <url>/api/v2/write?org=<org>&bucket=<bucket>&precision=ns`
    /// with `Authorization: Token <token>`.
    V2,
    /// InfluxDB 1.x: `POST <url>/write?db=<bucket>&precision=n`; a bucket
    /// `db/rp` also sets the retention policy; a token `user:password`
    /// is sent as basic authentication; `org` is ignored.
    V1,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxDbConfig {
    /// Requests waiting; see `LaneConfig`.
    pub queue: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Time one attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// `v2` or `v1`. A URL whose path already ends in `/api/v2/write` or
    /// `/write` chooses for itself, whatever this says.
    pub api: InfluxApi,
    /// JavaScript has one number type, so numbers are written as floats
    /// (InfluxDB's default numeric type) and a field keeps one type. `true`
    /// writes whole numbers as integers (`42i`) instead, for buckets whose
    /// fields were created as integers; a field that is sometimes fractional
    /// is then refused by InfluxDB as a type conflict.
    pub integers: bool,
}

impl Default for InfluxDbConfig {
    fn default() -> Self {
        InfluxDbConfig {
            queue: 1024,
            concurrency: 8,
            timeout_ms: 10_000,
            api: InfluxApi::V2,
            integers: false,
        }
    }
}

impl InfluxDbConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    /// Records waiting; see `LaneConfig`.
    pub queue: usize,
    /// `PutRecords` requests in flight at once.
    pub concurrency: usize,
    /// Time one `PutRecords` call may take, in milliseconds.
    pub timeout_ms: u64,
    /// Endpoint URL used instead of AWS's (kinesalite, LocalStack, a VPC
    /// endpoint); empty uses the region's AWS endpoint.
    pub endpoint: String,
    /// Region used when an agent passes an empty one.
    pub region: String,
    /// Records per `PutRecords` request, at most 500 (AWS's limit). Requests
    /// are also kept under 5 MiB; a record over 1 MiB (data plus partition
    /// key) is refused with an error.
    pub max_batch_records: usize,
    /// How long a record may wait for others to share its `PutRecords`
    /// request, in milliseconds (0 = send what is queued at once).
    pub linger_ms: u64,
}

impl Default for KinesisConfig {
    fn default() -> Self {
        KinesisConfig {
            queue: 4096,
            concurrency: 4,
            timeout_ms: 10_000,
            endpoint: String::new(),
            region: String::new(),
            max_batch_records: 500,
            linger_ms: 20,
        }
    }
}

impl KinesisConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Requests waiting; see `LaneConfig`.
    pub queue: usize,
    /// File operations in flight at once.
    pub concurrency: usize,
    /// Time one operation may take, in milliseconds.
    pub timeout_ms: u64,
    /// Largest file `file.read` returns, in bytes; a larger one is an error.
    pub max_read_bytes: u64,
    /// Bytes one agent's directory may hold. A `file.write`, `append`,
    /// `copy`, `move` (into it) or `tar` that would take it past this fails
    /// with a catchable Error, is counted
    /// (`skua_file_quota_exceeded_total`), and writes nothing; 0: no quota.
    pub quota_bytes: u64,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            queue: 256,
            concurrency: 4,
            timeout_ms: 5_000,
            max_read_bytes: 16 << 20,
            quota_bytes: 1 << 30,
        }
    }
}

impl FileConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PcapConfig {
    /// `pcap.path`/`pcap.snapshot` calls waiting; see `LaneConfig`.
    pub queue: usize,
    /// Files written at once.
    pub concurrency: usize,
    /// Time writing one file may take, in milliseconds.
    pub timeout_ms: u64,
    /// Most seconds a snapshot may ask for; more is cut to this.
    pub max_seconds: u32,
    /// The pcap folder: `pcap.path` writes `stream-<id>.pcapng` there,
    /// `pcap.snapshot` `[<dir>/]<agent>-<UTC time>-<n>.pcapng`; empty: a
    /// `pcap` folder in `scripting.dataDir`.
    pub dir: String,
    /// Bytes the files skua writes to the pcap folder may take together;
    /// past it the oldest are deleted (counted), and a single file larger
    /// than this is refused.
    pub max_store_bytes: u64,
}

impl Default for PcapConfig {
    fn default() -> Self {
        PcapConfig {
            queue: 256,
            concurrency: 2,
            timeout_ms: 30_000,
            max_seconds: 300,
            dir: String::new(),
            max_store_bytes: 1 << 30,
        }
    }
}

impl PcapConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Series (a name with one set of label values) agents may create with
    /// `prometheus.metric` and `prometheus.vector`; past it a new series is
    /// refused (a catchable Error, counted in
    /// `skua_agent_metric_series_refused_total`), the existing ones keep
    /// updating.
    pub max_series: usize,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig { max_series: 10_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatgptConfig {
    /// Prompts waiting; see `LaneConfig`.
    pub queue: usize,
    /// Prompts in flight at once.
    pub concurrency: usize,
    /// Time one attempt may take, in milliseconds (a model may take long).
    pub timeout_ms: u64,
    /// Base URL of an OpenAI-compatible API; `/chat/completions` is posted
    /// under it (OpenAI, Azure OpenAI's compatible endpoint, vLLM, Ollama,
    /// llama.cpp's server).
    pub base_url: String,
    /// The `model` asked for.
    pub model: String,
    /// Bytes of an answer read; a longer one is cut there.
    pub max_response_bytes: usize,
}

impl Default for ChatgptConfig {
    fn default() -> Self {
        ChatgptConfig {
            queue: 64,
            concurrency: 4,
            timeout_ms: 60_000,
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            max_response_bytes: 1 << 20,
        }
    }
}

impl ChatgptConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

/// Object keys and uploads of `vendor.s3`, `vendor.gcs` and `vendor.azure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Run id in object keys, `<node>_<ip>_<run_id>/<file name>`; empty
    /// leaves it out (`<node>_<ip>/<file name>`). `clear` deletes the
    /// node's objects under every run id.
    pub run_id: String,
    /// Largest file uploaded, in bytes; a larger one fails with an error.
    pub max_object_bytes: u64,
    /// Files larger than this are uploaded in parts of this size (S3
    /// multipart, Azure blocks, GCS resumable XML parts), read from disk
    /// part by part; smaller ones in one request. At least 5 MiB.
    pub part_bytes: usize,
    /// Store clients (one per bucket, region and credentials, keeping their
    /// connections and tokens) kept for reuse; past it the least recently
    /// used is dropped.
    pub clients: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            run_id: String::new(),
            max_object_bytes: 5 << 30,
            part_bytes: 8 << 20,
            clients: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Uploads waiting; see `LaneConfig`.
    pub queue: usize,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Time one upload (or clear) may take, in milliseconds.
    pub timeout_ms: u64,
    /// Endpoint URL used instead of AWS's, path-style (MinIO, Ceph, moto, a
    /// VPC endpoint); empty: `https://<bucket>.s3.<region>.amazonaws.com`.
    pub endpoint: String,
    /// Region used when an agent passes an empty one.
    pub region: String,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            queue: 64,
            concurrency: 2,
            timeout_ms: 300_000,
            endpoint: String::new(),
            region: String::new(),
        }
    }
}

impl S3Config {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectStoreConfig {
    /// Uploads waiting; see `LaneConfig`.
    pub queue: usize,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Time one upload (or clear) may take, in milliseconds.
    pub timeout_ms: u64,
    /// Endpoint URL used instead of the cloud's (an emulator, a private
    /// endpoint); empty: the public service.
    pub endpoint: String,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        ObjectStoreConfig {
            queue: 64,
            concurrency: 2,
            timeout_ms: 300_000,
            endpoint: String::new(),
        }
    }
}

impl ObjectStoreConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticConfig {
    /// Documents waiting; see `LaneConfig`.
    pub queue: usize,
    /// Documents in flight at once.
    pub concurrency: usize,
    /// Time one attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// Clients kept for `certFingerprint`s (one per pinned certificate,
    /// keeping its connections); past it the oldest is dropped.
    pub pinned_clients: usize,
}

impl Default for ElasticConfig {
    fn default() -> Self {
        ElasticConfig { queue: 1024, concurrency: 8, timeout_ms: 10_000, pinned_clients: 8 }
    }
}

impl ElasticConfig {
    pub fn lane(&self) -> LaneConfig {
        LaneConfig { queue: self.queue, concurrency: self.concurrency, timeout_ms: self.timeout_ms }
    }
}
