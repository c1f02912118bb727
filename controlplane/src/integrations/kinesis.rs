//! `vendor.kinesis.put(stream, payload, region, keyId?, secret?)` →
//! `{sequenceNumber, shardId}`.
//!
//! Records are batched into `PutRecords` calls within AWS's limits: at most
//! [`MAX_RECORDS_PER_REQUEST`] records and [`MAX_BYTES_PER_REQUEST`] per
//! call; a record (data plus partition key) over [`MAX_BYTES_PER_RECORD`]
//! is refused with an error before it is queued. Records of one call share
//! a stream, a region and credentials. Partition keys are a per-process
//! counter, so records spread over the stream's shards.
//!
//! `PutRecords` can succeed for some records and fail for others
//! (`ProvisionedThroughputExceededException`, `InternalFailure`): the failed
//! ones are sent again, alone, after a back-off, until they succeed or the
//! retries run out; each record's Promise settles with its own outcome.
//!
//! Credentials: `keyId` and `secret` when the agent gives both; otherwise
//! AWS's standard chain (environment, profile files, web identity / IRSA,
//! ECS, EC2 instance metadata). `integrations.kinesis.endpoint` replaces
//! AWS's endpoint (kinesalite, LocalStack). The SDK's own retries are off:
//! skua's retry policy is the only one, so every retry is counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig as AwsRetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kinesis::config::Credentials;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use serde_json::{json, Value};

use super::config::{KinesisConfig, RetryConfig};
use super::counters::IntegrationCounters;
use super::retry::{next_wait, Failed};
use super::IntegrationError;

/// AWS's `PutRecords` limits.
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
pub const MAX_BYTES_PER_REQUEST: usize = 5 * 1024 * 1024;
pub const MAX_BYTES_PER_RECORD: usize = 1024 * 1024;

// ---- request building -------------------------------------------------------

/// Where a record goes: records with equal targets may share a call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub stream: String,
    pub region: String,
    /// `(keyId, secret)`, or `None` for the standard credential chain.
    pub credentials: Option<(String, String)>,
}

/// One record, checked against the per-record limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub data: Vec<u8>,
    pub partition_key: String,
}

impl Record {
    /// What counts against AWS's limits: data plus partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

static PARTITION_SEQ: AtomicU64 = AtomicU64::new(0);

/// Checks one `kinesis.put` call and makes its target and record.
pub fn build_record(
    cfg: &KinesisConfig,
    stream: &str,
    payload: &str,
    region: &str,
    key_id: Option<&str>,
    secret: Option<&str>,
) -> Result<(Target, Record), IntegrationError> {
    if stream.trim().is_empty() {
        return Err(IntegrationError::Invalid("kinesis: stream name is empty".into()));
    }
    let region = if region.trim().is_empty() { cfg.region.trim() } else { region.trim() };
    if region.is_empty() {
        return Err(IntegrationError::Invalid(
            "kinesis: no region (pass one, or set integrations.kinesis.region)".into(),
        ));
    }
    let credentials =
        match (
            key_id.map(str::trim).filter(|s| !s.is_empty()),
            secret.map(str::trim).filter(|s| !s.is_empty()),
        ) {
            (Some(k), Some(s)) => Some((k.to_string(), s.to_string())),
            (None, None) => None,
            _ => return Err(IntegrationError::Invalid(
                "kinesis: keyId and secret go together (or give neither for the standard chain)"
                    .into(),
            )),
        };
    let record = Record {
        data: payload.as_bytes().to_vec(),
        partition_key: format!("{:016x}", PARTITION_SEQ.fetch_add(1, Ordering::Relaxed)),
    };
    if record.size() > MAX_BYTES_PER_RECORD {
        return Err(IntegrationError::Invalid(format!(
            "kinesis: record of {} bytes is over the 1 MiB ({MAX_BYTES_PER_RECORD} bytes) a Kinesis record may hold",
            record.size()
        )));
    }
    Ok((
        Target { stream: stream.trim().to_string(), region: region.to_string(), credentials },
        record,
    ))
}

/// Splits sizes (in order) into consecutive batches of at most
/// `max_records` items and `max_bytes` bytes; returns the batch lengths.
pub fn plan_batches(sizes: &[usize], max_records: usize, max_bytes: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for &s in sizes {
        if n > 0 && (n == max_records || bytes + s > max_bytes) {
            out.push(n);
            n = 0;
            bytes = 0;
        }
        n += 1;
        bytes += s;
    }
    if n > 0 {
        out.push(n);
    }
    out
}

// ---- clients -----------------------------------------------------------------

/// Region and credentials: what one SDK client is for.
type ClientKey = (String, Option<(String, String)>);

/// One SDK client per (region, credentials), made on first use and kept.
pub struct Clients {
    cfg: KinesisConfig,
    http: aws_sdk_kinesis::config::SharedHttpClient,
    cache: tokio::sync::Mutex<HashMap<ClientKey, Client>>,
}

impl Clients {
    pub fn new(cfg: &KinesisConfig) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        Clients { cfg: cfg.clone(), http, cache: tokio::sync::Mutex::new(HashMap::new()) }
    }

    pub async fn client(&self, target: &Target) -> Client {
        let key = (target.region.clone(), target.credentials.clone());
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&key) {
            return c.clone();
        }
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .http_client(self.http.clone())
            .retry_config(AwsRetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(3)))
                    .build(),
            );
        if let Some((k, s)) = &target.credentials {
            loader = loader.credentials_provider(Credentials::new(k, s, None, None, "skua-agent"));
        }
        if !self.cfg.endpoint.is_empty() {
            loader = loader.endpoint_url(self.cfg.endpoint.clone());
        }
        let client = Client::new(&loader.load().await);
        cache.insert(key, client.clone());
        client
    }
}

// ---- sending -----------------------------------------------------------------

/// Error codes worth another attempt (AWS's throttling and server faults).
fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "KMSThrottlingException"
            | "ThrottlingException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "InternalServerError"
    )
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
    timeout: Duration,
) -> IntegrationError {
    match e {
        SdkError::ConstructionFailure(_) => {
            IntegrationError::Invalid(format!("kinesis: {}", chain(e)))
        }
        SdkError::TimeoutError(_) => IntegrationError::Timeout(timeout),
        SdkError::DispatchFailure(d) if d.is_timeout() => IntegrationError::Timeout(timeout),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            IntegrationError::Connect(format!("kinesis: {}", chain(e)))
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("UnknownError").to_string();
            IntegrationError::Service {
                service: "kinesis",
                retryable: retryable_code(&code),
                message: s.err().message().unwrap_or("").to_string(),
                code,
                retry_after: None,
            }
        }
        other => IntegrationError::Connect(format!("kinesis: {}", chain(other))),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// Sends `records` (one batch within the limits) to `stream`, retrying
/// failed records per `retry`; returns one outcome per record, in order.
pub async fn put_batch(
    client: &Client,
    stream: &str,
    records: &[Record],
    retry: &RetryConfig,
    timeout: Duration,
    counters: &IntegrationCounters,
) -> Vec<Result<Value, Failed>> {
    let mut outcomes: Vec<Option<Result<Value, Failed>>> = vec![None; records.len()];
    let mut pending: Vec<usize> = (0..records.len()).collect();
    let mut retries = 0u32;
    while !pending.is_empty() {
        let entries: Result<Vec<_>, _> = pending
            .iter()
            .map(|&i| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(records[i].data.clone()))
                    .partition_key(records[i].partition_key.clone())
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                let f = Failed {
                    error: IntegrationError::Invalid(format!("kinesis: {e}")),
                    attempts: retries + 1,
                };
                for &i in &pending {
                    outcomes[i] = Some(Err(f.clone()));
                }
                break;
            }
        };
        let sent = tokio::time::timeout(
            timeout,
            client.put_records().stream_name(stream).set_records(Some(entries)).send(),
        )
        .await;
        let (still, error) = match sent {
            Err(_) => (pending.clone(), IntegrationError::Timeout(timeout)),
            Ok(Err(e)) => (pending.clone(), classify(&e, timeout)),
            Ok(Ok(out)) => {
                let mut still = Vec::new();
                let mut last = None;
                for (k, r) in out.records().iter().enumerate() {
                    let Some(&i) = pending.get(k) else { break };
                    match (r.sequence_number(), r.error_code()) {
                        (Some(seq), None) => {
                            outcomes[i] = Some(Ok(
                                json!({"sequenceNumber": seq, "shardId": r.shard_id().unwrap_or("")}),
                            ))
                        }
                        (_, code) => {
                            let code = code.unwrap_or("UnknownError").to_string();
                            let e = IntegrationError::Service {
                                service: "kinesis",
                                retryable: retryable_code(&code),
                                message: r.error_message().unwrap_or("").to_string(),
                                code,
                                retry_after: None,
                            };
                            if e.retryable() {
                                still.push(i);
                                last = Some(e);
                            } else {
                                outcomes[i] = Some(Err(Failed { error: e, attempts: retries + 1 }));
                            }
                        }
                    }
                }
                // A response with fewer entries than sent: the rest are unanswered.
                for &i in pending.iter().skip(out.records().len()) {
                    still.push(i);
                    last.get_or_insert(IntegrationError::Connect(
                        "kinesis: PutRecords answered fewer records than sent".into(),
                    ));
                }
                (still, last.unwrap_or(IntegrationError::Connect(String::new())))
            }
        };
        if still.is_empty() {
            break;
        }
        match next_wait(retry, &error, retries) {
            Some(wait) => {
                counters.retried();
                retries += 1;
                pending = still;
                tokio::time::sleep(wait).await;
            }
            None => {
                let f = Failed { error, attempts: retries + 1 };
                for &i in &still {
                    outcomes[i] = Some(Err(f.clone()));
                }
                break;
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(Failed {
                    error: IntegrationError::Connect("kinesis: no outcome".into()),
                    attempts: 1,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_bytes() {
        assert_eq!(plan_batches(&[1; 1200], 500, MAX_BYTES_PER_REQUEST), vec![500, 500, 200]);
        let mib = 1024 * 1024;
        // Five full-size records fill 5 MiB; the sixth starts a new call.
        assert_eq!(plan_batches(&[mib; 6], 500, MAX_BYTES_PER_REQUEST), vec![5, 1]);
        assert_eq!(plan_batches(&[3, 3, 3], 2, 100), vec![2, 1]);
        assert!(plan_batches(&[], 500, 10).is_empty());
    }

    #[test]
    fn records_over_1_mib_are_refused() {
        let cfg = KinesisConfig::default();
        let big = "x".repeat(MAX_BYTES_PER_RECORD);
        let e = build_record(&cfg, "s", &big, "us-east-1", None, None).unwrap_err();
        assert!(!e.retryable());
        assert!(e.to_string().contains("1 MiB"), "{e}");
        let ok = "x".repeat(MAX_BYTES_PER_RECORD - 16);
        assert!(build_record(&cfg, "s", &ok, "us-east-1", None, None).is_ok());
    }

    #[test]
    fn region_and_keys() {
        let mut cfg = KinesisConfig::default();
        assert!(build_record(&cfg, "s", "{}", "", None, None).is_err());
        cfg.region = "eu-west-1".into();
        let (t, _) = build_record(&cfg, "s", "{}", "", None, None).unwrap();
        assert_eq!((t.region.as_str(), t.credentials.is_none()), ("eu-west-1", true));
        assert!(build_record(&cfg, "s", "{}", "", Some("AKIA"), None).is_err());
        let (t, _) = build_record(&cfg, "s", "{}", "us-east-1", Some("AKIA"), Some("x")).unwrap();
        assert_eq!(t.credentials, Some(("AKIA".into(), "x".into())));
    }
}
