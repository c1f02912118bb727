//! Issue 30, fault 6: the dashboard survives any item shape.
//!
//! What is sent: items as agents may leave them (`data.startTime =
//! Date.now()` in `onItemQueried`, numbers where strings are expected,
//! objects where text is expected, fields missing, a 2 MB body, markup,
//! control characters and odd Unicode, ids that are numbers or objects),
//! and console lines with a numeric text and a bad timestamp, into a
//! dashboard open in headless Chromium.
//!
//! What holds: every item is one row, exactly once (no "reconnecting…",
//! no duplicated rows after it), rendered as text (no markup runs), the
//! detail view of each opens, a well-formed item after them still streams
//! in, and no event was left unrendered. With a read token the console
//! view says console lines are for admins instead of retrying.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/hub.rs"]
mod hub_support;

use std::path::Path;
use std::time::Duration;

use browser::Driver;
use hub_support::*;
use serde_json::{json, Value};

fn base(i: usize) -> Value {
    json!({
        "id": format!("w1/{i}-0"), "index": 0, "stream": i.to_string(),
        "node": {"ip": "", "name": "w1"},
        "protocol": {"name": "http", "abbr": "HTTP"},
        "src": {"ip": "10.0.0.1", "port": "40000", "name": ""},
        "dst": {"ip": "10.0.0.2", "port": "80", "name": "api"},
        "timestamp": 1_700_000_000_000u64, "startTime": "2023-11-14T22:13:20.000Z", "elapsedTime": 1.5,
        "request": {"method": "GET", "url": "/ok", "path": "/ok", "headers": {"Host": "api.example"}},
        "response": {"status": 200, "statusText": "OK", "headers": {}, "content": {"text": "fine"}}
    })
}

/// Hostile shapes, each a change of a well-formed item.
fn hostile() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let mut add = |what: &'static str, f: &dyn Fn(&mut Value)| {
        let mut v = base(out.len());
        f(&mut v);
        out.push((what, v));
    };
    add("numeric startTime", &|v| v["startTime"] = json!(1_700_000_000_123u64));
    add("startTime object", &|v| v["startTime"] = json!({"at": [1, 2]}));
    add("startTime out of range", &|v| v["startTime"] = json!(1e300));
    add("protocol a string", &|v| v["protocol"] = json!("http"));
    add("abbr an object", &|v| v["protocol"]["abbr"] = json!({"x": "<b>1</b>"}));
    add("method a number", &|v| v["request"]["method"] = json!(7));
    add("url an array", &|v| v["request"]["url"] = json!(["<script>window.__x=1</script>"]));
    add("path an object", &|v| {
        v["request"]["path"] = json!({"<img src=x onerror=window.__x=2>": 1})
    });
    add("headers a string", &|v| v["request"]["headers"] = json!("Host: evil"));
    add("headers an array", &|v| v["request"]["headers"] = json!([["a", "b"]]));
    add("status a string", &|v| v["response"]["status"] = json!("<i>500</i>"));
    add("response a string", &|v| v["response"] = json!("none"));
    add("request null", &|v| v["request"] = Value::Null);
    add("everything missing", &|v| *v = json!({"id": v["id"].clone()}));
    add("huge body", &|v| v["response"]["content"]["text"] = json!("B".repeat(2 << 20)));
    add("markup everywhere", &|v| {
        v["request"]["url"] = json!("<img src=x onerror=window.__x=3>");
        v["dst"]["name"] = json!("<svg onload=window.__x=4>");
        v["response"]["content"]["text"] = json!("<script>window.__x=5</script>");
    });
    add("binary and odd Unicode", &|v| {
        v["request"]["url"] = json!("\u{0}\u{1}\u{7f}\u{202e}evil\u{fffd}\u{1F600}");
        v["response"]["content"]["text"] = json!("\u{0}".repeat(1000));
    });
    add("src a number", &|v| v["src"] = json!(12));
    add("elapsedTime a string", &|v| v["elapsedTime"] = json!("slow"));
    add("error an array", &|v| v["error"] = json!(["boom"]));
    add("id a number", &|v| v["id"] = json!(424242));
    add("id an object", &|v| v["id"] = json!({"x": 1}));
    add("deep nesting", &|v| {
        let mut d = json!("bottom");
        for _ in 0..100 {
            d = json!({ "d": d });
        }
        v["request"]["headers"]["X-Deep"] = d;
    });
    add("dns questions not a list", &|v| {
        v["protocol"] = json!({"name": "dns", "abbr": "DNS"});
        v["request"] = json!({"questions": "a.example"});
    });
    out
}

#[test]
fn any_item_shape_is_one_row_of_text() {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abuse-dashboard");
    let Some(d) = Driver::start(&shots, &[]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| c.max_body_bytes = 8 << 20);
    let h = hub.handle();
    d.call("POST", "/url", json!({"url": format!("http://{}/#token={ADMIN}", hub.addr)}));
    d.wait("the dashboard", "return document.getElementById('conn').textContent === 'live'");

    let items = hostile();
    let n = items.len();
    for (_, it) in &items {
        h.publish_item(it.clone());
    }
    let mut last = base(n);
    last["id"] = json!("last/0");
    last["request"]["url"] = json!("/after-the-hostile-ones");
    last["request"]["path"] = json!("/after-the-hostile-ones");
    h.publish_item(last);
    d.wait(
        "every row",
        &format!("return document.querySelectorAll('#items-body tr').length >= {}", n + 1),
    );
    // Give a broken renderer the time to reconnect and duplicate rows.
    std::thread::sleep(Duration::from_secs(3));
    d.shot("1-hostile-items");
    let rows = d.js("return document.querySelectorAll('#items-body tr').length").as_u64().unwrap();
    assert_eq!(rows as usize, n + 1, "one row per item, none twice");
    assert_eq!(d.js("return document.getElementById('conn').textContent"), json!("live"));
    assert_eq!(d.js("return document.getElementById('unrendered').textContent"), json!(""));
    let first = d.js("return document.querySelector('#items-body tr').textContent");
    assert!(first.as_str().unwrap().contains("/after-the-hostile-ones"), "{first}");

    // Every row's detail opens and shows text only.
    let ids: Vec<String> = serde_json::from_value(d.js(
        "return Array.prototype.map.call(document.querySelectorAll('#items-body tr'), function (r) { return r.dataset.id; })",
    ))
    .unwrap();
    for (i, id) in ids.iter().enumerate() {
        let js = format!(
            "document.getElementById('detail').replaceChildren(); document.querySelectorAll('#items-body tr')[{i}].click(); return 1;"
        );
        d.js(&js);
        // The detail (or, for an id the hub cannot look up, its error).
        let shown = d.wait(
            &format!("the detail of {id}"),
            "var j = document.getElementById('detail-json'); var e = document.querySelector('#detail .error'); return (j && j.textContent.length > 0) || (e && e.textContent);",
        );
        assert!(shown == json!(true) || id.starts_with('{'), "detail of {id:?}: {shown}");
    }
    d.shot("2-detail");
    let markup = d.js("return document.querySelectorAll('#items-body img, #items-body script, #items-body svg, #items-body b, #items-body i, #detail img, #detail script, #detail svg').length");
    assert_eq!(markup, json!(0));
    assert_eq!(d.js("return window.__x === undefined"), json!(true), "no payload ran");

    // Console lines of any shape.
    d.click("#tab-console");
    std::thread::sleep(Duration::from_millis(300));
    h.publish_console(json!({"ts": "yesterday", "node": 1, "runtime": null, "agent": {"a": 1}, "level": "log", "text": 42}));
    h.publish_console(json!({"ts": 1e300, "text": {"obj": "<b>x</b>"}}));
    h.publish_console(json!({"ts": 1_700_000_000_000u64, "node": "w1", "runtime": "rt0", "agent": "a", "level": "log", "text": "after the odd lines"}));
    d.wait(
        "the console lines",
        "return document.getElementById('console').textContent.indexOf('after the odd lines') >= 0",
    );
    let console = d.js("return document.getElementById('console').textContent");
    assert!(console.as_str().unwrap().contains("{\"obj\":\"<b>x</b>\"}"), "{console}");
    assert_eq!(d.js("return document.querySelectorAll('#console b').length"), json!(0));
    assert_eq!(d.js("return document.getElementById('unrendered').textContent"), json!(""));
    d.shot("3-console");
}

#[test]
fn a_read_token_is_told_console_lines_are_for_admins() {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abuse-dashboard");
    let Some(d) = Driver::start(&shots, &[]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    hub.handle().publish_console(json!({"ts": 1, "node": "w1", "runtime": "rt0", "agent": "a", "level": "log", "text": "SECRET-DERIVED"}));
    d.call("POST", "/url", json!({"url": format!("http://{}/#token={READ}", hub.addr)}));
    d.wait("the dashboard", "return document.getElementById('conn').textContent === 'live'");
    d.click("#tab-console");
    d.wait(
        "the notice",
        "return document.getElementById('console').textContent.indexOf('admin tokens only') >= 0",
    );
    std::thread::sleep(Duration::from_secs(3));
    let text = d.js("return document.getElementById('console').textContent");
    assert!(!text.as_str().unwrap().contains("SECRET-DERIVED"));
    assert_eq!(d.js("return document.getElementById('conn').textContent"), json!("live"));
    let m = hub.get("/metrics", Some(ADMIN)).body;
    assert_eq!(metric(&m, "skua_hub_forbidden_total"), 1, "asked once, not retried");
}
