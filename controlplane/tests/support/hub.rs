//! A hub on loopback for tests, and a tiny blocking HTTP/1.1 client (raw
//! `TcpStream`, `Connection: close`) so tests see exactly what a browser or
//! curl would: status, headers, bytes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use controlplane::hub::{DirStore, HubConfig, HubHandle, HubServer};

pub const ADMIN: &str = "admin-token-for-tests-0001";
pub const READ: &str = "read-token-for-tests-00001";
pub const WORKER: &str = "worker-token-for-tests-001";

/// A hub with its own runtime; dropping it stops everything.
pub struct TestHub {
    pub addr: SocketAddr,
    pub server: Option<HubServer>,
    rt: Option<tokio::runtime::Runtime>,
}

impl TestHub {
    pub fn start(store_dir: &Path, tweak: impl FnOnce(&mut HubConfig)) -> TestHub {
        let mut cfg = HubConfig {
            listen: "127.0.0.1:0".into(),
            store_dir: store_dir.to_path_buf(),
            admin_tokens: vec![ADMIN.into()],
            read_only_tokens: vec![READ.into()],
            worker_tokens: vec![WORKER.into()],
            ..Default::default()
        };
        tweak(&mut cfg);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(DirStore::open(store_dir).unwrap());
        let server = HubServer::start(&cfg, false, store, rt.handle()).unwrap();
        TestHub { addr: server.local_addr(), server: Some(server), rt: Some(rt) }
    }

    pub fn handle(&self) -> HubHandle {
        self.server.as_ref().unwrap().handle()
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        request(self.addr, "GET", path, token, None)
    }

    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
        request(self.addr, method, path, token, Some(body))
    }
}

/// A child process killed (and reaped) when dropped, also when a test
/// panics: a process that outlives its test keeps what it inherited (under
/// `flock`, the machine's cargo lock) and its port.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The hub-side agent runtime on `hub` (its data dir lives as long as the
/// returned directory).
pub fn hub_runtime(hub: &TestHub) -> (controlplane::hub::runtime::HubRuntime, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let scfg =
        scripting::ScriptingConfig { data_dir: data.path().to_path_buf(), ..Default::default() };
    let rt =
        controlplane::hub::runtime::HubRuntime::start(hub.handle(), &scfg, &Default::default())
            .unwrap();
    (rt, data)
}

impl Drop for TestHub {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Vec<u8> {
    let host = addr.to_string();
    let mut headers = vec![("Host", host.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    raw_request(method, path, token, &headers, body)
}

/// The bytes of a request with exactly these headers (and
/// `Connection: close`, `Content-Length` for a body).
pub fn raw_request(
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    if let Some(b) = body {
        out.extend_from_slice(b.as_bytes());
    }
    out
}

/// Sends `bytes` as they are and reads the answer.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> Reply {
    exchange_within(addr, bytes, Duration::from_secs(10))
}

/// [`exchange`] for a peer that may take up to `wait` to answer.
pub fn exchange_within(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    read_reply(&mut s)
}

/// A request with exactly these headers (`Host` included or not).
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    exchange(addr, &raw_request(method, path, token, headers, body))
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Reply { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    exchange(addr, &head(addr, method, path, token, body))
}

fn read_reply(s: &mut TcpStream) -> Reply {
    // Read to the end of the body as Content-Length gives it (a peer may
    // keep the connection open despite `Connection: close`), else to EOF.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            // A live stream never ends: its status and headers are the answer.
            if head.contains("text/event-stream") || len.is_some_and(|n| raw.len() >= end + 4 + n) {
                break;
            }
        }
    }
    parse(&raw)
}

/// An open live stream (server-sent events).
pub struct Stream {
    pub s: TcpStream,
    pub seen: String,
}

/// A metric's value in an exposition (`name` with its labels as written),
/// 0 when absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

impl Stream {
    pub fn open(addr: SocketAddr, path: &str, token: &str) -> Stream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.write_all(&head(addr, "GET", path, Some(token), None)).unwrap();
        Stream { s, seen: String::new() }
    }

    /// Reads what has arrived within `wait` (nothing is an answer too).
    pub fn read_for(&mut self, wait: Duration) -> &str {
        let t0 = Instant::now();
        let mut buf = [0u8; 65536];
        while t0.elapsed() < wait {
            match self.s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
        }
        &self.seen
    }

    /// The status of the answer (once its first line arrived).
    pub fn status(&mut self) -> u16 {
        self.wait_for("\r\n", Duration::from_secs(10));
        self.seen.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// Whether the hub closed the connection (reading gives EOF or an
    /// error other than a timeout) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let t0 = Instant::now();
        let mut buf = [0u8; 65536];
        while t0.elapsed() < within {
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Reads until `needle` has been seen (or panics after `within`).
    pub fn wait_for(&mut self, needle: &str, within: Duration) -> &str {
        let t0 = Instant::now();
        let mut buf = [0u8; 8192];
        while !self.seen.contains(needle) {
            assert!(
                t0.elapsed() < within,
                "no {needle:?} in the stream within {within:?}; got:\n{}",
                self.seen
            );
            match self.s.read(&mut buf) {
                Ok(0) => panic!("stream closed; got:\n{}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
        }
        &self.seen
    }
}
