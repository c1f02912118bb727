//! Object storage: `vendor.s3.put/clear`, `vendor.gcs.put/clear`,
//! `vendor.azure.put`, through the `object_store` crate (Apache Arrow's
//! client for S3, GCS and Azure Blob, with their credential chains); not a
//! client per cloud SDK, and not hand-written signing.
//!
//! **Keys.** A file is stored under `<node>_<ip>[_<run_id>]/<file name>`
//! (Kubeshark's layout: each node owns its prefix; `run_id` is
//! `integrations.storage.run_id`). `clear` deletes every object under the
//! node's prefixes: `<node>_<ip>/` and `<node>_<ip>_<any run id>/`. The
//! file is one the agent may read (`file::resolve_source`: its directory,
//! or skua's pcap folder by absolute path). The result is the object's URL:
//! `https://<bucket>.s3.<region>.amazonaws.com/<key>`,
//! `https://storage.googleapis.com/<bucket>/<key>`,
//! `https://<account>.blob.core.windows.net/<container>/<key>`, or under the
//! configured endpoint (path style) when there is one.
//!
//! **Uploads.** Files up to `integrations.storage.part_bytes` go in one
//! request; larger ones in parts of that size read from disk one after the
//! other (at most two parts in memory), up to `max_object_bytes`.
//!
//! **Credentials.** S3: `keyId` and `secret` when the agent gives both;
//! otherwise the standard chain as `object_store` reads it: environment
//! (`AWS_ACCESS_KEY_ID`...), web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` +
//! `AWS_ROLE_ARN`: IRSA on EKS), ECS container credentials, EC2 instance
//! metadata (IMDSv2). GCS: the service account key the agent gives (an
//! object or its JSON text); otherwise `GOOGLE_APPLICATION_CREDENTIALS`,
//! application default credentials, or the metadata server (workload
//! identity on GKE). Azure: a connection string (`AccountName`,
//! `AccountKey`, `SharedAccessSignature`, `BlobEndpoint`,
//! `UseDevelopmentStorage=true`), else `account` + `key`, else
//! `AZURE_STORAGE_*` and `AZURE_*` from the environment (workload identity,
//! managed identity).
//!
//! **HTTP.** `object_store` sends through reqwest; skua hands it one client
//! built with the same rustls + ring configuration (and extra CA file) as
//! `http.rs`, so no second crypto stack is linked. Retries are
//! `object_store`'s own, set from `integrations.retry` (count and
//! back-off), inside the lane's timeout; they are not counted in
//! `skua_integration_retries_total`.
//!
//! **Errors.** A missing file, a file over the limit, a bad bucket or
//! container name: `Invalid`. A denied or unauthenticated request (wrong
//! key, expired token, no permission) and a missing bucket: the store's
//! answer as a `Service` error (`s3: PermissionDenied (...)`), not retried
//! again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use url::Url;

use super::config::{IntegrationsConfig, RetryConfig as SkuaRetry};
use super::file::{self, Roots};
use super::IntegrationError;

/// Which store a call goes to, with what it needs to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    S3 { bucket: String, region: String, keys: Option<(String, String)> },
    Gcs { bucket: String, service_account_key: Option<String> },
    Azure { container: String, auth: AzureAuth },
}

/// How `vendor.azure.put` authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AzureAuth {
    /// From a connection string.
    Connection {
        account: String,
        key: Option<String>,
        sas: Option<String>,
        endpoint: Option<String>,
    },
    /// `account` + `key`.
    Key { account: String, key: String },
    /// `account` only (or nothing): the environment's chain.
    Env { account: Option<String> },
}

impl Target {
    fn service(&self) -> &'static str {
        match self {
            Target::S3 { .. } => "s3",
            Target::Gcs { .. } => "gcs",
            Target::Azure { .. } => "azure",
        }
    }
}

/// Where this node's objects go: `<node>_<ip>[_<run_id>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePrefix {
    pub node: String,
    pub ip: String,
    pub run_id: String,
}

impl NodePrefix {
    /// `<node>_<ip>`: the part every run of this node shares.
    pub fn base(&self) -> String {
        let clean = |s: &str| s.trim().replace('/', "_");
        format!("{}_{}", clean(&self.node), clean(&self.ip))
    }

    /// The prefix of this run's objects.
    pub fn current(&self) -> String {
        if self.run_id.trim().is_empty() {
            self.base()
        } else {
            format!("{}_{}", self.base(), self.run_id.trim())
        }
    }

    /// Whether a top-level prefix is this node's (any run).
    pub fn owns(&self, top: &str) -> bool {
        let base = self.base();
        top == base || top.strip_prefix(&base).is_some_and(|rest| rest.starts_with('_'))
    }

    /// The key of a file.
    pub fn key(&self, file: &Path) -> Result<String, IntegrationError> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                IntegrationError::Invalid(format!("{} has no file name", file.display()))
            })?;
        Ok(format!("{}/{name}", self.current()))
    }
}

/// Parses an Azure Storage connection string (`Key=Value;...`).
pub fn parse_connection_string(s: &str) -> Result<AzureAuth, IntegrationError> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            IntegrationError::Invalid("azure: connection string parts are Key=Value".into())
        })?;
        m.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    if m.get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        // Azurite's well-known account.
        return Ok(AzureAuth::Connection {
            account: "devstoreaccount1".into(),
            key: Some(
                "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
                    .into(),
            ),
            sas: None,
            endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
        });
    }
    let account = m.get("accountname").cloned().filter(|a| !a.is_empty()).ok_or_else(|| {
        IntegrationError::Invalid("azure: the connection string has no AccountName".into())
    })?;
    let endpoint = m.get("blobendpoint").cloned().or_else(|| {
        m.get("endpointsuffix").map(|suffix| {
            let proto = m.get("defaultendpointsprotocol").map_or("https", String::as_str);
            format!("{proto}://{account}.blob.{suffix}")
        })
    });
    Ok(AzureAuth::Connection {
        key: m.get("accountkey").cloned(),
        sas: m.get("sharedaccesssignature").cloned(),
        endpoint,
        account,
    })
}

/// The object's URL, as the agent gets it back.
pub fn object_url(
    cfg: &IntegrationsConfig,
    target: &Target,
    key: &str,
) -> Result<String, IntegrationError> {
    let (mut url, segments): (Url, Vec<String>) = match target {
        Target::S3 { bucket, region, .. } => {
            if cfg.s3.endpoint.is_empty() {
                (parse(&format!("https://{bucket}.s3.{region}.amazonaws.com"))?, vec![])
            } else {
                (parse(&cfg.s3.endpoint)?, vec![bucket.clone()])
            }
        }
        Target::Gcs { bucket, .. } => {
            let base = if cfg.gcs.endpoint.is_empty() {
                "https://storage.googleapis.com"
            } else {
                &cfg.gcs.endpoint
            };
            (parse(base)?, vec![bucket.clone()])
        }
        Target::Azure { container, auth } => {
            (parse(&azure_account_url(cfg, auth)?)?, vec![container.clone()])
        }
    };
    {
        let mut p = url
            .path_segments_mut()
            .map_err(|_| IntegrationError::Invalid("storage endpoint cannot hold a path".into()))?;
        p.pop_if_empty();
        p.extend(&segments);
        p.extend(key.split('/'));
    }
    Ok(url.to_string())
}

fn parse(u: &str) -> Result<Url, IntegrationError> {
    Url::parse(u).map_err(|e| IntegrationError::Invalid(format!("storage URL {u:?}: {e}")))
}

fn azure_account(auth: &AzureAuth) -> Option<&str> {
    match auth {
        AzureAuth::Connection { account, .. } | AzureAuth::Key { account, .. } => Some(account),
        AzureAuth::Env { account } => account.as_deref(),
    }
}

/// The account's blob service URL: the connection string's
/// `BlobEndpoint`, else `integrations.azure.endpoint` + `/<account>`
/// (path style, as Azurite and Azure Stack serve it), else Azure's.
fn azure_account_url(
    cfg: &IntegrationsConfig,
    auth: &AzureAuth,
) -> Result<String, IntegrationError> {
    if let AzureAuth::Connection { endpoint: Some(e), .. } = auth {
        return Ok(e.trim_end_matches('/').to_string());
    }
    let account = azure_account(auth)
        .map(str::to_string)
        .or_else(|| std::env::var("AZURE_STORAGE_ACCOUNT_NAME").ok())
        .ok_or_else(|| {
            IntegrationError::Invalid(
                "azure: no account (pass one, a connection string, or set AZURE_STORAGE_ACCOUNT_NAME)"
                    .into(),
            )
        })?;
    Ok(if cfg.azure.endpoint.is_empty() {
        format!("https://{account}.blob.core.windows.net")
    } else {
        format!("{}/{account}", cfg.azure.endpoint.trim_end_matches('/'))
    })
}

// ---- clients -----------------------------------------------------------------

/// Hands `object_store` skua's reqwest client.
#[derive(Debug, Clone)]
struct Connector(reqwest::Client);

impl object_store::client::HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<object_store::client::HttpClient> {
        Ok(object_store::client::HttpClient::new(self.0.clone()))
    }
}

/// A store client with the tick it was last used at.
type Cached = (Target, Arc<dyn ObjectStore>, u64);

/// The store clients in use, the least recently used dropped past
/// `integrations.storage.clients`.
pub struct Stores {
    connector: Connector,
    retry: RetryConfig,
    cfg: IntegrationsConfig,
    cache: Mutex<Vec<Cached>>,
    tick: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

fn retry_config(r: &SkuaRetry, timeout: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(r.initial_backoff_ms),
            max_backoff: Duration::from_millis(r.max_backoff_ms),
            base: 2.0,
        },
        max_retries: r.max_retries as usize,
        retry_timeout: timeout,
    }
}

impl Stores {
    /// `tls` is the rustls configuration of `http.rs`.
    pub fn new(
        cfg: &IntegrationsConfig,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Self, IntegrationError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(super::http::USER_AGENT)
            .build()
            .map_err(|e| IntegrationError::Unavailable(format!("object storage client: {e}")))?;
        let longest = cfg.s3.timeout_ms.max(cfg.gcs.timeout_ms).max(cfg.azure.timeout_ms);
        Ok(Stores {
            connector: Connector(client),
            retry: retry_config(&cfg.retry, Duration::from_millis(longest)),
            cfg: cfg.clone(),
            cache: Mutex::new(Vec::new()),
            tick: Default::default(),
        })
    }

    /// The client for `target`, made on first use.
    pub fn store(&self, target: &Target) -> Result<Arc<dyn ObjectStore>, IntegrationError> {
        let now = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = cache.iter_mut().find(|(t, _, _)| t == target) {
            e.2 = now;
            return Ok(e.1.clone());
        }
        let store = self.build(target)?;
        if cache.len() >= self.cfg.storage.clients.max(1) {
            if let Some(oldest) = cache.iter().enumerate().min_by_key(|(_, e)| e.2).map(|(i, _)| i)
            {
                cache.swap_remove(oldest);
            }
        }
        cache.push((target.clone(), store.clone(), now));
        Ok(store)
    }

    fn build(&self, target: &Target) -> Result<Arc<dyn ObjectStore>, IntegrationError> {
        let service = target.service();
        let bad = |e: object_store::Error| {
            IntegrationError::Invalid(format!("{service}: {}", scrub(&e.to_string())))
        };
        let conn = self.connector.clone();
        match target {
            Target::S3 { bucket, region, keys } => {
                let mut b = match keys {
                    Some((k, s)) => {
                        AmazonS3Builder::new().with_access_key_id(k).with_secret_access_key(s)
                    }
                    None => AmazonS3Builder::from_env(),
                };
                b = b
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_http_connector(conn)
                    .with_retry(self.retry.clone());
                if !self.cfg.s3.endpoint.is_empty() {
                    b = b
                        .with_endpoint(self.cfg.s3.endpoint.clone())
                        .with_virtual_hosted_style_request(false)
                        .with_allow_http(true);
                }
                Ok(Arc::new(b.build().map_err(bad)?))
            }
            Target::Gcs { bucket, service_account_key } => {
                let mut b = match service_account_key {
                    Some(k) => GoogleCloudStorageBuilder::new().with_service_account_key(k),
                    None => GoogleCloudStorageBuilder::from_env(),
                };
                b = b
                    .with_bucket_name(bucket)
                    .with_http_connector(conn)
                    .with_retry(self.retry.clone());
                if !self.cfg.gcs.endpoint.is_empty() {
                    b = b.with_base_url(self.cfg.gcs.endpoint.trim_end_matches('/'));
                }
                Ok(Arc::new(b.build().map_err(bad)?))
            }
            Target::Azure { container, auth } => {
                let mut b = match auth {
                    AzureAuth::Env { .. } => MicrosoftAzureBuilder::from_env(),
                    _ => MicrosoftAzureBuilder::new(),
                };
                if let Some(a) = azure_account(auth) {
                    b = b.with_account(a);
                }
                match auth {
                    AzureAuth::Key { key, .. } | AzureAuth::Connection { key: Some(key), .. } => {
                        b = b.with_access_key(key);
                    }
                    AzureAuth::Connection { sas: Some(sas), .. } => {
                        let pairs: Vec<(String, String)> =
                            url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes())
                                .into_owned()
                                .collect();
                        b = b.with_sas_authorization(pairs);
                    }
                    _ => {}
                }
                let explicit_endpoint =
                    matches!(auth, AzureAuth::Connection { endpoint: Some(_), .. })
                        || !self.cfg.azure.endpoint.is_empty();
                if explicit_endpoint {
                    b = b.with_endpoint(azure_account_url(&self.cfg, auth)?).with_allow_http(true);
                }
                b = b
                    .with_container_name(container)
                    .with_http_connector(conn)
                    .with_retry(self.retry.clone());
                Ok(Arc::new(b.build().map_err(bad)?))
            }
        }
    }
}

/// An `object_store` error as the agent sees it.
fn store_error(service: &'static str, e: object_store::Error) -> IntegrationError {
    let code = match &e {
        object_store::Error::NotFound { .. } => "NotFound",
        object_store::Error::PermissionDenied { .. } => "PermissionDenied",
        object_store::Error::Unauthenticated { .. } => "Unauthenticated",
        object_store::Error::AlreadyExists { .. } => "AlreadyExists",
        object_store::Error::Precondition { .. } => "PreconditionFailed",
        _ => "Error",
    };
    IntegrationError::Service {
        service,
        code: code.into(),
        message: scrub(&e.to_string()),
        retryable: false,
        retry_after: None,
    }
}

/// Drops query strings (a SAS token, a signature) from an error text.
fn scrub(s: &str) -> String {
    s.split_whitespace()
        .map(|w| match w.split_once('?') {
            Some((head, _)) if head.starts_with("http") => format!("{head}?…"),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- operations ----------------------------------------------------------------

/// Uploads one file; returns the object's URL.
pub async fn put(
    stores: &Stores,
    roots: &Roots,
    agent: &str,
    prefix: &NodePrefix,
    target: &Target,
    file: &Path,
) -> Result<Value, IntegrationError> {
    let service = target.service();
    let src: PathBuf = file::resolve_source(roots, agent, file)?;
    let meta = tokio::fs::metadata(&src)
        .await
        .map_err(|e| IntegrationError::Invalid(format!("{service}: {}: {e}", file.display())))?;
    if !meta.is_file() {
        return Err(IntegrationError::Invalid(format!(
            "{service}: {} is not a file",
            file.display()
        )));
    }
    let max = stores.cfg.storage.max_object_bytes;
    if meta.len() > max {
        return Err(IntegrationError::Invalid(format!(
            "{service}: {} is {} bytes, over integrations.storage.max_object_bytes ({max})",
            file.display(),
            meta.len()
        )));
    }
    let key = prefix.key(file)?;
    let location = ObjectPath::parse(&key)
        .map_err(|e| IntegrationError::Invalid(format!("{service}: key {key:?}: {e}")))?;
    let store = stores.store(target)?;
    let part = stores.cfg.storage.part_bytes;
    let io = |e: std::io::Error| {
        IntegrationError::Io(format!("{service}: reading {}: {e}", file.display()))
    };
    if meta.len() <= part as u64 {
        let bytes = tokio::fs::read(&src).await.map_err(io)?;
        store.put(&location, bytes.into()).await.map_err(|e| store_error(service, e))?;
    } else {
        let upload = store.put_multipart(&location).await.map_err(|e| store_error(service, e))?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, part);
        let mut f = tokio::fs::File::open(&src).await.map_err(io)?;
        let mut buf = vec![0u8; part];
        loop {
            let mut filled = 0;
            while filled < part {
                let n = f.read(&mut buf[filled..]).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            // At most two parts in flight: memory stays bounded by the part size.
            w.wait_for_capacity(2).await.map_err(|e| store_error(service, e))?;
            w.write(&buf[..filled]);
            if filled < part {
                break;
            }
        }
        w.finish().await.map_err(|e| store_error(service, e))?;
    }
    Ok(Value::String(object_url(&stores.cfg, target, &key)?))
}

/// Deletes this node's objects; returns how many.
pub async fn clear(
    stores: &Stores,
    prefix: &NodePrefix,
    target: &Target,
) -> Result<Value, IntegrationError> {
    let service = target.service();
    let store = stores.store(target)?;
    let top = store.list_with_delimiter(None).await.map_err(|e| store_error(service, e))?;
    let mine: Vec<ObjectPath> =
        top.common_prefixes.into_iter().filter(|p| prefix.owns(p.as_ref())).collect();
    let mut deleted = 0u64;
    for p in mine {
        let listed = store.list(Some(&p)).map_ok(|m| m.location).boxed();
        let mut results = store.delete_stream(listed);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) => deleted += 1,
                // Gone between the list and the delete: what was asked.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(service, e)),
            }
        }
    }
    Ok(json!(deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes() {
        let p = NodePrefix { node: "node-a".into(), ip: "10.0.0.1".into(), run_id: String::new() };
        assert_eq!(p.key(Path::new("/data/pcap/123.pcap")).unwrap(), "node-a_10.0.0.1/123.pcap");
        let r = NodePrefix { run_id: "r7".into(), ..p.clone() };
        assert_eq!(r.key(Path::new("dir/x.tar.gz")).unwrap(), "node-a_10.0.0.1_r7/x.tar.gz");
        assert!(p.owns("node-a_10.0.0.1") && p.owns("node-a_10.0.0.1_r7"));
        assert!(!p.owns("node-a_10.0.0.12") && !p.owns("node-b_10.0.0.1"));
    }

    #[test]
    fn urls_by_store() {
        let mut cfg = IntegrationsConfig::default();
        let s3 = Target::S3 { bucket: "b".into(), region: "eu-west-1".into(), keys: None };
        assert_eq!(
            object_url(&cfg, &s3, "n_1.2.3.4/a b.pcap").unwrap(),
            "https://b.s3.eu-west-1.amazonaws.com/n_1.2.3.4/a%20b.pcap"
        );
        cfg.s3.endpoint = "http://127.0.0.1:9000/".into();
        assert_eq!(object_url(&cfg, &s3, "k/x").unwrap(), "http://127.0.0.1:9000/b/k/x");
        let gcs = Target::Gcs { bucket: "g".into(), service_account_key: None };
        assert_eq!(object_url(&cfg, &gcs, "k/x").unwrap(), "https://storage.googleapis.com/g/k/x");
        let az = Target::Azure {
            container: "c".into(),
            auth: AzureAuth::Key { account: "acct".into(), key: "a2V5".into() },
        };
        assert_eq!(
            object_url(&cfg, &az, "k/x").unwrap(),
            "https://acct.blob.core.windows.net/c/k/x"
        );
    }

    #[test]
    fn connection_strings() {
        let a = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        )
        .unwrap();
        assert_eq!(
            a,
            AzureAuth::Connection {
                account: "devstoreaccount1".into(),
                key: Some("a2V5".into()),
                sas: None,
                endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
            }
        );
        let b = parse_connection_string(
            "AccountName=acct;SharedAccessSignature=sv=1&sig=x;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert!(matches!(b, AzureAuth::Connection { ref endpoint, ref sas, .. }
            if endpoint.as_deref() == Some("https://acct.blob.core.windows.net") && sas.as_deref() == Some("sv=1&sig=x")));
        assert!(parse_connection_string("AccountKey=x").is_err());
        assert!(matches!(
            parse_connection_string("UseDevelopmentStorage=true").unwrap(),
            AzureAuth::Connection { .. }
        ));
        assert_eq!(scrub("GET http://h/c/b?sig=SECRET failed"), "GET http://h/c/b?… failed");
    }
}
