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
