//! The dashboard in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): it takes the token from the
//! URL fragment, loads an example into the editor, saves it with Ctrl+S
//! into the store, streams items, opens an item's detail, and shows
//! captured markup as text (an `onerror` payload never runs). Screenshots
//! go to `$CARGO_TARGET_TMPDIR/hub-dashboard/`. Skipped (with a line on
//! stderr) where Chromium is not installed.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/hub.rs"]
mod hub_support;

use std::path::Path;
use std::time::Duration;

use browser::Driver;
use hub_support::*;
use serde_json::{json, Value};

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
    let Some(d) = Driver::start(&shots, &[]) else { return };
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
