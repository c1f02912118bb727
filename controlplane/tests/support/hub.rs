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
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    if let Some(b) = body {
        out.extend_from_slice(b.as_bytes());
    }
    out
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
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&head(addr, method, path, token, body)).unwrap();
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
    s: TcpStream,
    pub seen: String,
}

impl Stream {
    pub fn open(addr: SocketAddr, path: &str, token: &str) -> Stream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.write_all(&head(addr, "GET", path, Some(token), None)).unwrap();
        Stream { s, seen: String::new() }
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
