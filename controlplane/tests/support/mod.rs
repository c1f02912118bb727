//! Shared by the integration tests: a local HTTP server that records what
//! it receives and answers as the test says, peers started as child
//! processes, and small helpers. Everything listens on 127.0.0.1 only.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use controlplane::executor::{ExecutorHandle, Job};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use scripting::{Effect, EffectResult};
use serde_json::Value;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn new(status: u16, body: &str) -> Self {
        Answer { status, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Handler = Arc<dyn Fn(&Received, usize) -> Answer + Send + Sync>;

/// A local HTTP/1.1 server on its own thread and runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// `handler(request, n)` answers the n-th request (0-based).
    pub fn start(
        handler: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static,
    ) -> TestServer {
        let handler: Handler = Arc::new(handler);
        let received = Arc::new(Mutex::new(Vec::new()));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rec = received.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        acc = listener.accept() => {
                            let Ok((stream, _)) = acc else { continue };
                            let handler = handler.clone();
                            let rec = rec.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                                    let handler = handler.clone();
                                    let rec = rec.clone();
                                    async move {
                                        let (parts, body) = req.into_parts();
                                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                        let r = Received {
                                            method: parts.method.to_string(),
                                            uri: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                                            headers: parts.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect(),
                                            body: String::from_utf8_lossy(&body).into_owned(),
                                            at: Instant::now(),
                                        };
                                        let n = {
                                            let mut g = rec.lock().unwrap();
                                            g.push(r.clone());
                                            g.len() - 1
                                        };
                                        let a = handler(&r, n);
                                        if !a.delay.is_zero() {
                                            tokio::time::sleep(a.delay).await;
                                        }
                                        let mut resp = Response::new(Full::new(Bytes::from(a.body)));
                                        *resp.status_mut() = hyper::StatusCode::from_u16(a.status).unwrap();
                                        for (k, v) in a.headers {
                                            resp.headers_mut().append(
                                                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                                hyper::header::HeaderValue::from_str(&v).unwrap(),
                                            );
                                        }
                                        Ok::<_, std::convert::Infallible>(resp)
                                    }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        TestServer { addr, received, stop: Some(stop_tx), thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn free_port() -> u16 {
    closed_port()
}

/// Submits one effect and waits for its answer.
pub fn call(h: &ExecutorHandle, agent: &str, effect: Effect) -> EffectResult {
    let (tx, rx) = crossbeam_channel::bounded(1);
    h.submit(Job::new(agent, effect, move |r| {
        let _ = tx.send(r);
    }));
    rx.recv_timeout(Duration::from_secs(60)).expect("no answer within 60 s")
}

/// Submits one effect; its answer arrives on the returned receiver.
pub fn submit(
    h: &ExecutorHandle,
    agent: &str,
    effect: Effect,
) -> crossbeam_channel::Receiver<EffectResult> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    h.submit(Job::new(agent, effect, move |r| {
        let _ = tx.send(r);
    }));
    rx
}

pub fn webhook(method: &str, url: &str, body: &str) -> Effect {
    Effect::Webhook {
        method: method.into(),
        url: url.into(),
        body: body.into(),
        headers: BTreeMap::new(),
    }
}

/// Polls `f` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Finds an executable on PATH or at one of `extra` paths.
pub fn find_binary(name: &str, extra: &[&str]) -> Option<PathBuf> {
    for e in extra {
        let p = Path::new(e);
        if p.is_file() {
            return Some(p.to_path_buf());
        }
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

// The skip rule (`require!`, `skip::missing`: a failure under CI, a skip
// line elsewhere) and the corpus are the root package's, shared by every
// test crate.
#[allow(unused_imports)] // each test crate uses a subset
pub use skua_suite::{corpus_dir, require, skip};

/// A child process killed when dropped.
pub struct Peer {
    pub child: Child,
    pub name: &'static str,
}

impl Peer {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> std::io::Result<Peer> {
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        Ok(Peer { child, name })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    wait_until(timeout, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
}

/// A blocking HTTP/1.0 request (no chunked answers) to 127.0.0.1; returns
/// status and body. For talking to peers without the code under test.
pub fn http10(
    method: &str,
    port: u16,
    path_and_query: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "{method} {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// Real peers shared by the integration tests: InfluxDB 1.x and kinesalite.

pub struct Influx {
    _peer: Peer,
    _dir: tempfile::TempDir,
    pub port: u16,
}

pub fn start_influxd() -> Option<Influx> {
    let bin = find_binary("influxd", &["/usr/bin/influxd"])?;
    let dir = tempfile::tempdir().unwrap();
    let (http, rpc) = (free_port(), free_port());
    let d = dir.path().display();
    let conf = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
         [meta]\n  dir = \"{d}/meta\"\n  logging-enabled = false\n\
         [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [continuous_queries]\n  enabled = false\n\
         [subscriber]\n  enabled = false\n"
    );
    let path = dir.path().join("influxdb.conf");
    std::fs::write(&path, conf).unwrap();
    let peer = Peer::spawn("influxd", Command::new(bin).arg("-config").arg(&path))
        .expect("starting influxd");
    assert!(
        wait_until(Duration::from_secs(30), || http10("GET", http, "/ping", "")
            .is_ok_and(|(s, _)| s == 204)),
        "influxd did not answer /ping"
    );
    let (s, body) =
        http10("POST", http, "/query", &format!("q={}", q("CREATE DATABASE skua"))).unwrap();
    assert_eq!(s, 200, "{body}");
    Some(Influx { _peer: peer, _dir: dir, port: http })
}

pub fn query(port: u16, q_: &str) -> Value {
    let (s, body) = http10("GET", port, &format!("/query?db=skua&q={}", q(q_)), "").unwrap();
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

pub fn start_kinesalite() -> Option<(Peer, u16)> {
    let node = find_binary("node", &[])?;
    let script = std::env::var("SKUA_KINESALITE")
        .unwrap_or_else(|_| "/var/tmp/skua-npm/node_modules/kinesalite/cli.js".into());
    if !std::path::Path::new(&script).is_file() {
        return None;
    }
    let port = free_port();
    let peer = Peer::spawn(
        "kinesalite",
        Command::new(node).arg(&script).args([
            "--port",
            &port.to_string(),
            "--createStreamMs",
            "0",
            "--deleteStreamMs",
            "0",
            "--updateStreamMs",
            "0",
        ]),
    )
    .ok()?;
    assert!(wait_for_port(port, Duration::from_secs(20)), "kinesalite did not listen on {port}");
    Some((peer, port))
}

pub async fn test_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .http_client(http)
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_kinesis::Client::new(&conf)
}

/// Every record's data in the stream, over all shards.
pub async fn read_all(c: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    let shards = c.list_shards().stream_name(stream).send().await.unwrap();
    let mut out = Vec::new();
    for s in shards.shards() {
        let it = c
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(s.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let mut iter = it.shard_iterator().map(str::to_string);
        for _ in 0..50 {
            let Some(i) = iter.take() else { break };
            let r = c.get_records().shard_iterator(i).limit(10_000).send().await.unwrap();
            let n = r.records().len();
            out.extend(
                r.records().iter().map(|x| String::from_utf8_lossy(x.data().as_ref()).into_owned()),
            );
            iter = r.next_shard_iterator().map(str::to_string);
            if n == 0 {
                break;
            }
        }
    }
    out
}

// Object storage peers: moto (S3) and gcp-storage-emulator from a Python
// venv, Azurite from npm; each read back with the store's own client
// (boto3, HTTP, @azure/storage-blob), never with the code under test.

/// The venv holding moto and gcp-storage-emulator (`SKUA_STORAGE_VENV`).
pub fn storage_venv() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("SKUA_STORAGE_VENV").unwrap_or_else(|_| "/var/tmp/skua-venv-storage".into()),
    );
    dir.join("bin/python").is_file().then_some(dir)
}

/// The npm prefix holding azurite and @azure/storage-blob (`SKUA_NPM`).
pub fn npm_prefix() -> PathBuf {
    PathBuf::from(std::env::var("SKUA_NPM").unwrap_or_else(|_| "/var/tmp/skua-npm".into()))
}

pub fn start_moto() -> Option<(Peer, u16)> {
    let bin = storage_venv()?.join("bin/moto_server");
    if !bin.is_file() {
        return None;
    }
    let port = free_port();
    let peer =
        Peer::spawn("moto", Command::new(bin).args(["-H", "127.0.0.1", "-p", &port.to_string()]))
            .ok()?;
    assert!(wait_for_port(port, Duration::from_secs(30)), "moto did not listen on {port}");
    Some((peer, port))
}

/// Starts gcp-storage-emulator with what its XML API lacks and GCS's has
/// (`object_store` talks XML to GCS): an upload answers the object's
/// `ETag` (the MD5 of its bytes, as GCS does for one-part uploads); a
/// bucket lists as `ListBucketResult` (`list-type=2`, prefix and
/// delimiter); an object deletes by its XML path. Each reuses the
/// emulator's own storage and handlers.
const GCS_EMULATOR: &str = r#"
import hashlib, sys
from xml.sax.saxutils import escape
from gcp_storage_emulator import server
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.__main__ import main
upload = objects.xml_upload
def xml_upload(request, response, storage, *a, **k):
    upload(request, response, storage, *a, **k)
    response["ETag"] = '"%s"' % hashlib.md5(request.data).hexdigest()
def xml_list(request, response, storage, *a, **k):
    q = lambda n: request.query.get(n)[0] if request.query.get(n) else None
    try:
        files, prefixes = storage.get_file_list(request.params["bucket_name"], q("prefix"), q("delimiter"))
    except Exception:
        response.status = 404
        return
    out = ["<?xml version='1.0' encoding='UTF-8'?><ListBucketResult>"]
    for f in files:
        out.append("<Contents><Key>%s</Key><Size>%s</Size><LastModified>%s</LastModified><ETag>\"%s\"</ETag></Contents>"
                   % (escape(f["name"]), f["size"], f["updated"], f.get("etag") or ""))
    for p in prefixes:
        out.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % escape(p))
    out.append("</ListBucketResult>")
    response.write_file("".join(out).encode(), "application/xml")
handlers = []
for p, h in server.HANDLERS:
    h = {m: (xml_upload if f is upload else f) for m, f in h.items()}
    if objects.download in h.values() and xml_upload in h.values():
        h[server.DELETE] = objects.delete
    handlers.append((p, h))
server.HANDLERS = (("^/(?P<bucket_name>[-.\\w]+)$", {server.GET: xml_list}),) + tuple(handlers)
main(sys.argv[1:])
"#;

/// gcp-storage-emulator (in memory) with bucket `bucket` made.
pub fn start_gcs_emulator(bucket: &str) -> Option<(Peer, u16)> {
    let venv = storage_venv()?;
    if !venv.join("bin/gcp-storage-emulator").is_file() {
        return None;
    }
    let port = free_port();
    let peer = Peer::spawn(
        "gcp-storage-emulator",
        Command::new(venv.join("bin/python")).arg("-c").arg(GCS_EMULATOR).args([
            "start",
            "-H",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--default-bucket",
            bucket,
            "--in-memory",
            "-q",
        ]),
    )
    .ok()?;
    assert!(wait_for_port(port, Duration::from_secs(30)), "the GCS emulator did not listen");
    Some((peer, port))
}

pub struct Azurite {
    _peer: Peer,
    _dir: tempfile::TempDir,
    pub port: u16,
}

/// Azurite's well-known development account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl Azurite {
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            self.port
        )
    }
}

pub fn start_azurite() -> Option<Azurite> {
    let node = find_binary("node", &[])?;
    let main = npm_prefix().join("node_modules/azurite/dist/src/blob/main.js");
    let sdk = npm_prefix().join("node_modules/@azure/storage-blob");
    if !main.is_file() || !sdk.is_dir() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let peer = Peer::spawn(
        "azurite",
        Command::new(node).arg(&main).args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            dir.path().to_str().unwrap(),
            "--silent",
            "--skipApiVersionCheck",
            "--disableProductStyleUrl",
        ]),
    )
    .ok()?;
    assert!(wait_for_port(port, Duration::from_secs(30)), "azurite did not listen on {port}");
    Some(Azurite { _peer: peer, _dir: dir, port })
}

fn output_of(what: &str, cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

const BOTO: &str = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")
op, bucket = sys.argv[2], sys.argv[3]
if op == "mb":
    s3.create_bucket(Bucket=bucket)
elif op == "get":
    sys.stdout.buffer.write(s3.get_object(Bucket=bucket, Key=sys.argv[4])["Body"].read())
elif op == "put":
    s3.put_object(Bucket=bucket, Key=sys.argv[4], Body=sys.argv[5].encode())
elif op == "ls":
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        print(o["Key"])
"#;

/// boto3 against moto: `mb BUCKET`, `get BUCKET KEY`, `put BUCKET KEY TEXT`,
/// `ls BUCKET`.
pub fn boto(port: u16, args: &[&str]) -> Vec<u8> {
    let py = storage_venv().expect("the storage venv").join("bin/python");
    output_of(
        "boto3",
        Command::new(py).arg("-c").arg(BOTO).arg(format!("http://127.0.0.1:{port}")).args(args),
    )
}

const AZURE_SDK: &str = r#"
const { BlobServiceClient } = require("@azure/storage-blob");
const [cs, op, container, key, text] = process.argv.slice(1);
const c = BlobServiceClient.fromConnectionString(cs).getContainerClient(container);
(async () => {
  if (op === "mb") await c.createIfNotExists();
  else if (op === "get") process.stdout.write(await c.getBlobClient(key).downloadToBuffer());
  else if (op === "put") await c.getBlockBlobClient(key).upload(text, Buffer.byteLength(text));
  else if (op === "ls") for await (const b of c.listBlobsFlat()) console.log(b.name);
})().catch((e) => { console.error(e.message); process.exit(1); });
"#;

/// Microsoft's SDK against Azurite: `mb C`, `get C KEY`, `put C KEY TEXT`,
/// `ls C`.
pub fn azure_sdk(a: &Azurite, args: &[&str]) -> Vec<u8> {
    let node = find_binary("node", &[]).expect("node");
    output_of(
        "@azure/storage-blob",
        Command::new(node)
            .env("NODE_PATH", npm_prefix().join("node_modules"))
            .arg("-e")
            .arg(AZURE_SDK)
            .arg(a.connection_string())
            .args(args),
    )
}

/// A GCS service account key with a fresh RSA key (made by the venv's
/// `cryptography`, which moto brings), as Google hands them out.
pub fn gcs_service_account_key() -> String {
    let py = storage_venv().expect("the storage venv").join("bin/python");
    let pem = output_of(
        "cryptography",
        Command::new(py).arg("-c").arg(
            "from cryptography.hazmat.primitives.asymmetric import rsa\n\
             from cryptography.hazmat.primitives import serialization as s\n\
             k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
             print(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode(), end='')",
        ),
    );
    serde_json::json!({
        "type": "service_account",
        "project_id": "skua-test",
        "private_key_id": "0123456789abcdef",
        "private_key": String::from_utf8(pem).unwrap(),
        "client_email": "skua@skua-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

/// A GET to 127.0.0.1 returning status and raw body bytes.
pub fn http_get_bytes(port: u16, path_and_query: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out[split..].to_vec())
}

/// controlplane/tests/data: the test CA and the 127.0.0.1 server certificate.
pub const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// A local https server (certificate for 127.0.0.1 from the test CA in
/// tests/data) answering every request with `status` and `body`, on its
/// own thread.
pub fn start_tls_server(status: u16, body: &'static str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = TEST_DATA;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/test-server.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/test-server.key")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = hyper::service::service_fn(move |_req| async move {
                        let mut r = hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from_static(body.as_bytes()),
                        ));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    port
}

/// A kubeconfig naming the loopback API server at `url` (a token user).
pub fn write_kubeconfig(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\nusers:\n- name: fake\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    path
}

/// `skua gen`: a capture of `exchanges` HTTP exchanges of the API mix
/// (some answered 5xx) in `dir`; its path and gen's JSON summary.
pub fn gen_capture(dir: &Path, exchanges: u32, seed: u32) -> (PathBuf, Value) {
    let pcap = dir.join("mix.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["gen", "-o", pcap.to_str().unwrap(), "--mix", "api", "--json"])
        .args(["--exchanges", &exchanges.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("running skua gen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (pcap, serde_json::from_slice(&out.stdout).unwrap())
}

/// How many exchanges of a gen summary were answered 5xx.
pub fn server_errors(summary: &Value) -> u64 {
    summary["statuses"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with('5'))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

/// A Prometheus server (Debian's `prometheus`) scraping `target` every
/// second, its data in a temp dir; ready (`/-/ready`) when returned.
pub struct Prometheus {
    _peer: Peer,
    _dir: tempfile::TempDir,
    pub port: u16,
}

pub fn start_prometheus(target: SocketAddr) -> Option<Prometheus> {
    let bin = find_binary("prometheus", &["/usr/bin/prometheus"])?;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: skua\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let peer = Peer::spawn(
        "prometheus",
        Command::new(bin)
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
    )
    .ok()?;
    assert!(
        wait_until(Duration::from_secs(60), || http10("GET", port, "/-/ready", "")
            .is_ok_and(|(s, _)| s == 200)),
        "prometheus was not ready on {port}"
    );
    Some(Prometheus { _peer: peer, _dir: dir, port })
}
