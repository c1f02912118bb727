//! The dashboard in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): it takes the token from the
//! URL fragment, loads an example into the editor, saves it with Ctrl+S
//! into the store, streams items, opens an item's detail, and shows
//! captured markup as text (an `onerror` payload never runs). Screenshots
//! go to `$CARGO_TARGET_TMPDIR/hub-dashboard/`. Skipped (with a line on
//! stderr) where Chromium is not installed.

#[path = "support/hub.rs"]
mod hub_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hub_support::*;
use serde_json::{json, Value};
use skua_suite::skip;

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    shots: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = request(self.addr, "DELETE", &format!("/session/{}", self.session), None, None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

impl Driver {
    fn start(shots: &Path) -> Option<Driver> {
        if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
            skip::missing(&format!(
                "{CHROMIUM} and {DRIVER} (Debian packages chromium, chromium-driver)"
            ));
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"]
        }}}});
        let r = request(addr, "POST", "/session", None, Some(&caps.to_string()));
        assert_eq!(r.status, 200, "new session: {}", r.body);
        let session = r.json()["value"]["sessionId"].as_str().unwrap().to_string();
        std::fs::create_dir_all(shots).unwrap();
        Some(Driver { child, addr, session, shots: shots.to_path_buf() })
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
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

    fn js(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": []}))
    }

    fn wait(&self, what: &str, script: &str) -> Value {
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

    fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", json!({"using": "css selector", "value": css}));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn shot(&self, name: &str) {
        let v = self.call("GET", "/screenshot", Value::Null);
        let png = b64decode(v.as_str().unwrap_or(""));
        let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
    }
}

fn item(i: u32, url: &str) -> Value {
    json!({
        "id": format!("w1/{i}-0"), "index": 0, "stream": i.to_string(),
        "worker": {"ip": "", "name": "w1"}, "node": {"ip": "", "name": "w1"},
        "protocol": {"name": "http", "version": "1.1", "abbr": "HTTP", "layer4": "tcp", "layer3": "ipv4"},
        "src": {"ip": "10.0.0.1", "port": "40000", "name": "", "namespace": ""},
        "dst": {"ip": "10.0.0.2", "port": "80", "name": "api", "namespace": "prod"},
        "timestamp": 1_700_000_000_000u64, "startTime": "2023-11-14T22:13:20.000Z", "elapsedTime": 2.25,
        "request": {"method": "GET", "url": url, "path": url, "httpVersion": "HTTP/1.1",
                    "headers": {"Host": "api.example", "X-Evil": "<img src=x onerror=\"window.__xss=1\">"}},
        "response": {"status": 200, "statusText": "OK", "headers": {"Content-Type": "text/html"},
                     "content": {"text": "<script>window.__xss=2</script>"}},
        "requestSize": 100, "responseSize": 200, "size": 300, "passed": false, "failed": false, "error": null
    })
}

#[test]
fn dashboard_edits_agents_and_shows_items_as_text() {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hub-dashboard");
    let Some(d) = Driver::start(&shots) else { return };
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let h = hub.handle();

    d.call("POST", "/url", json!({"url": format!("http://{}/#token={ADMIN}", hub.addr)}));
    d.wait("the examples list", "return document.querySelectorAll('#examples option').length > 5");
    assert_eq!(d.js("return location.hash"), json!(""), "the token leaves the address bar");

    // Scripting: load an example, save it with Ctrl+S.
    d.click("#tab-scripting");
    d.click("#examples option[value='0']");
    let name =
        d.wait("the example in the editor", "return document.getElementById('agent-name').value");
    let name = name.as_str().unwrap().to_string();
    assert!(d.js("return document.getElementById('editor').value.length").as_u64().unwrap() > 50);
    d.shot("1-example-loaded");
    d.click("#editor");
    let ctrl = "\u{E009}";
    d.call("POST", "/actions", json!({"actions": [{"type": "key", "id": "kb", "actions": [
        {"type": "keyDown", "value": ctrl}, {"type": "keyDown", "value": "s"}, {"type": "keyUp", "value": "s"}, {"type": "keyUp", "value": ctrl}
    ]}]}));
    d.wait(
        "the save",
        "return document.getElementById('status').textContent.indexOf('saved') === 0",
    );
    d.wait(
        "the agent list",
        &format!("return !!document.querySelector('#agent-list li[data-name=\"{name}\"]')"),
    );
    d.shot("2-saved");
    let stored = hub.get(&format!("/api/agents/{name}"), Some(READ));
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.json()["active"], true);

    // Items stream in; the detail shows captured markup as text.
    d.click("#tab-items");
    h.publish_item(item(1, "/first"));
    h.publish_item(item(2, "/search?q=<script>window.__xss=3</script>"));
    d.wait("two rows", "return document.querySelectorAll('#items-body tr').length >= 2");
    d.click("#items-body tr[data-id='w1/2-0']");
    d.wait("the detail", "return document.getElementById('detail-json') && document.getElementById('detail').textContent.indexOf('onerror') >= 0");
    d.shot("3-item-detail");
    let text =
        d.js("return document.getElementById('detail').textContent").as_str().unwrap().to_string();
    assert!(text.contains("<script>window.__xss=3</script>"), "{text}");
    assert!(text.contains("<img src=x onerror=\"window.__xss=1\">"));
    assert_eq!(d.js("return document.querySelectorAll('#detail img, #detail script, #items-body img, #items-body script').length"), json!(0));
    assert_eq!(d.js("return window.__xss === undefined"), json!(true));

    // Console lines arrive live.
    d.click("#tab-console");
    std::thread::sleep(Duration::from_millis(300));
    h.publish_console(json!({"ts": 1_700_000_000_000u64, "node": "w1", "runtime": "rt0", "agent": name, "level": "log", "text": "hello <b>bold</b>"}));
    d.wait(
        "the console line",
        "return document.getElementById('console').textContent.indexOf('hello <b>bold</b>') >= 0",
    );
    d.shot("4-console");
}
