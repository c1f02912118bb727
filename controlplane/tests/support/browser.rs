//! Headless Chromium (Debian's `chromium` and `chromium-driver`) driven
//! over WebDriver, for the dashboard's tests. Missing Chromium is a skip
//! (a failure under `CI=true`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skua_suite::skip;

use super::hub_support::{exchange_within, raw_request, request, ChildGuard};

/// One browser at a time per test binary: two Chromiums starting at once
/// on a loaded machine miss WebDriver's deadlines.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

pub struct Driver {
    _child: ChildGuard,
    addr: SocketAddr,
    session: String,
    shots: PathBuf,
    /// Last: released once chromedriver is gone.
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium goes with its session; chromedriver with the guard.
        let _ = request(self.addr, "DELETE", &format!("/session/{}", self.session), None, None);
    }
}

impl Driver {
    /// A browser session; `args` are extra Chromium switches (e.g.
    /// `--host-resolver-rules=...`).
    pub fn start(shots: &Path, args: &[&str]) -> Option<Driver> {
        if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
            skip::missing(&format!(
                "{CHROMIUM} and {DRIVER} (Debian packages chromium, chromium-driver)"
            ));
            return None;
        }
        let one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = ChildGuard(
            Command::new(DRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let base = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
        ];
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": all
        }}}});
        // Starting Chromium may take a while on a loaded machine.
        let caps = caps.to_string();
        let host = addr.to_string();
        let headers = [("Host", host.as_str()), ("Content-Type", "application/json")];
        let new = raw_request("POST", "/session", None, &headers, Some(&caps));
        let r = exchange_within(addr, &new, Duration::from_secs(90));
        assert_eq!(r.status, 200, "new session: {}", r.body);
        let session = r.json()["value"]["sessionId"].as_str().unwrap().to_string();
        std::fs::create_dir_all(shots).unwrap();
        Some(Driver { _one: one, _child: child, addr, session, shots: shots.to_path_buf() })
    }

    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (method == "POST").then(|| body.to_string());
        let r = request(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            None,
            body.as_deref(),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        r.json()["value"].clone()
    }

    pub fn js(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": []}))
    }

    pub fn wait(&self, what: &str, script: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.js(script);
            if !v.is_null() && v != json!(false) && v != json!(0) && v != json!("") {
                return v;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                self.shot("timeout");
                panic!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", json!({"using": "css selector", "value": css}));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    pub fn shot(&self, name: &str) {
        let v = self.call("GET", "/screenshot", Value::Null);
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .unwrap_or_default();
        let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
    }
}
