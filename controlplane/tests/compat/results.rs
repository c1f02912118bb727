//! Helper results used as Kubeshark used them: plain values.

use std::time::Duration;

use serde_json::Value;

use crate::capture::Capture;
use crate::support::{Answer, TestServer};
use crate::Run;

/// `JSON.parse(vendor.webhook("GET", url))` reads a config from the peer;
/// each 5xx is posted and the answer used as a string.
#[test]
fn a_webhook_answer_is_the_body_kubeshark_returned() {
    let peer = TestServer::start(|r, _| match r.uri.as_str() {
        "/config" => Answer::new(200, r#"{"minStatus": 500, "tag": "compat"}"#),
        _ => Answer::new(200, "accepted"),
    });
    let dir = tempfile::tempdir().unwrap();
    let pcap = Capture::new()
        .get("/a", 200)
        .get("/b", 503)
        .get("/c", 200)
        .get("/d", 500)
        .write(dir.path(), "http.pcap");
    let agent = r#"
var config = null;

function onItemCaptured(data) {
  if (config === null) {
    config = JSON.parse(vendor.webhook("GET", env.PEER + "/config"));
  }
  if (data.response.status >= config.minStatus) {
    var answer = vendor.webhook("POST", env.PEER + "/alert", JSON.stringify({
      path: data.request.path, status: data.response.status, tag: config.tag
    }), {"Content-Type": "application/json"});
    if (answer.indexOf("accepted") !== 0) console.error("unexpected answer " + answer);
    vendor.webhook("POST", env.PEER + "/echo", "len=" + answer.length + " answer=" + answer);
  }
}
"#;
    let out = Run::new("alerts", agent).env("PEER", &peer.url("")).pcap(&pcap).run();
    out.clean();
    let got = peer.received();
    let count = |uri: &str| got.iter().filter(|r| r.uri == uri).count();
    assert_eq!(count("/config"), 1, "{got:#?}");
    let alerts: Vec<Value> = got
        .iter()
        .filter(|r| r.uri == "/alert")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let mut paths: Vec<&str> = alerts.iter().map(|a| a["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, ["/b", "/d"]);
    assert!(alerts.iter().all(|a| a["tag"] == "compat"));
    let echoes: Vec<&str> =
        got.iter().filter(|r| r.uri == "/echo").map(|r| r.body.as_str()).collect();
    assert_eq!(echoes, ["len=8 answer=accepted", "len=8 answer=accepted"]);
}

/// A hook that posts every item and ignores the answer never waits: a peer
/// slower than the hook budget costs nothing and loses nothing.
#[test]
fn an_ignored_result_never_waits() {
    let peer = TestServer::start(|_, _| Answer::new(200, "slow").delay(Duration::from_millis(300)));
    let dir = tempfile::tempdir().unwrap();
    let mut c = Capture::new();
    for i in 0..20 {
        c.get(&format!("/item/{i}"), 200);
    }
    let pcap = c.write(dir.path(), "http.pcap");
    let agent = r#"
function onItemCaptured(data) {
  vendor.webhook("POST", env.PEER + "/items", data.request.path);
}
"#;
    let out = Run::new("forward", agent)
        .env("PEER", &peer.url(""))
        .set("scripting.hookBudgetMs=20")
        .set("integrations.webhook.concurrency=32")
        .pcap(&pcap)
        .run();
    out.clean();
    assert_eq!(peer.received().len(), 20);
}

/// A value used before a slow answer comes throws within the hook's
/// budget; the script catches it and goes on.
#[test]
fn a_slow_answer_used_as_a_value_throws_a_catchable_error() {
    let peer = TestServer::start(|r, _| match r.uri.as_str() {
        "/slow" => Answer::new(200, "{}").delay(Duration::from_millis(500)),
        _ => Answer::new(200, "ok"),
    });
    let dir = tempfile::tempdir().unwrap();
    let pcap = Capture::new().get("/a", 200).write(dir.path(), "http.pcap");
    let agent = r#"
function onItemCaptured(data) {
  try {
    JSON.parse(vendor.webhook("GET", env.PEER + "/slow"));
    vendor.webhook("POST", env.PEER + "/report", "no error");
  } catch (e) {
    vendor.webhook("POST", env.PEER + "/report", e.name + ": " + e.message);
  }
}
"#;
    let out = Run::new("slow", agent)
        .env("PEER", &peer.url(""))
        .set("scripting.hookBudgetMs=50")
        .pcap(&pcap)
        .run();
    out.clean();
    let report: Vec<String> =
        peer.received().into_iter().filter(|r| r.uri == "/report").map(|r| r.body).collect();
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].starts_with("Error: vendor.webhook: no answer within this call's 50 ms budget"),
        "{report:?}"
    );
}
