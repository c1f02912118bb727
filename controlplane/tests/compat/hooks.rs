//! Hooks: onItemCaptured on items without a response (Kubeshark's "Slack
//! on HTTP 500" docs example), onLogCall, jobs and setTimeout on the
//! capture's clock.

use serde_json::Value;

use crate::capture::Capture;
use crate::support::{closed_port, Answer, TestServer};
use crate::Run;

/// The docs example: `data.response.status === 500` on every item, some
/// without a response; the bare global `SLACK_WEBHOOK` as Kubeshark sets
/// env keys. Only the 500s reach Slack; nothing throws.
#[test]
fn slack_on_http_500_with_items_that_have_no_response() {
    let slack = TestServer::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let pcap = Capture::new()
        .get("/ok", 200)
        .unanswered("/lost-1")
        .get("/boom", 500)
        .unanswered("/lost-2")
        .get("/teapot", 418)
        .get("/boom-again", 500)
        .write(dir.path(), "http.pcap");
    let agent = r##"
function onItemCaptured(data) {
  if (data.response.status === 500)
    vendor.slack(
      SLACK_WEBHOOK,
      "Server-side Error",
      JSON.stringify(data),
      "#ff0000"
    );
}
"##;
    let out =
        Run::new("slack", agent).env("SLACK_WEBHOOK", &slack.url("/hooks/T/B/X")).pcap(&pcap).run();
    out.clean();
    let got = slack.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    for r in &got {
        let msg: Value = serde_json::from_str(&r.body).unwrap();
        let text = msg["attachments"][0]["text"].as_str().unwrap_or_default();
        let item: Value = serde_json::from_str(text).unwrap();
        assert_eq!(item["response"]["status"], 500, "{item}");
    }
}

/// onLogCall gets skua's own records as JSON strings: a failing webhook
/// makes the executor log a warning, the agent forwards it.
#[test]
fn on_log_call_receives_skua_warnings_as_json() {
    let peer = TestServer::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let pcap =
        Capture::new().get("/a", 200).wait_ms(100).get("/b", 200).write(dir.path(), "h.pcap");
    let agent = r#"
var sent = false;
function onItemCaptured(data) {
  if (!sent) {
    sent = true;
    vendor.webhook("POST", env.DEAD + "/x", "nobody listens");
  }
}
function onLogCall(level, msg) {
  var record = JSON.parse(msg);
  if (record.message.indexOf("vendor.webhook") >= 0)
    vendor.webhook("POST", env.PEER + "/log", JSON.stringify({level: level, message: record.message, time: record.time}));
}
"#;
    let out = Run::new("logs", agent)
        .env("PEER", &peer.url(""))
        .env("DEAD", &format!("http://127.0.0.1:{}", closed_port()))
        .set("integrations.retry.max_retries=0")
        .pcap(&pcap)
        .on_capture_clock()
        .run();
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let logs: Vec<Value> =
        peer.received().iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
    assert_eq!(logs.len(), 1, "{logs:#?}\n{}", out.stderr);
    assert_eq!(logs[0]["level"], "warning");
    assert!(logs[0]["time"].as_str().is_some_and(|t| t.starts_with("20")), "{logs:#?}");
}

/// `jobs.schedule` with extra arguments (a tag normalised), `setTimeout`,
/// the same tag replacing, `jobs.list()` as strings, the scheduler stopped
/// from a timer: all on the capture's clock (10 s of traffic).
#[test]
fn jobs_and_timers_run_on_the_capture_clock_with_their_arguments() {
    let peer = TestServer::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let mut c = Capture::new();
    for i in 0..=20 {
        c.get(&format!("/t/{i}"), 200).wait_ms(500);
    }
    let pcap = c.write(dir.path(), "ten-seconds.pcap");
    let agent = r#"
var items = 0;
function onItemCaptured(data) { items++; }

function report(url, label) {
  vendor.webhook("POST", url, label + " " + (items > 0));
}
jobs.schedule("Two Seconds", "*/2 * * * * *", function () { vendor.webhook("POST", PEER, "replaced"); });
jobs.schedule("two seconds", "*/2 * * * * *", report, 0, PEER, "every-2s");
jobs.schedule("once", "* * * * * *", report, 1, PEER, "limited");
vendor.webhook("POST", PEER, "list " + JSON.stringify(jobs.list()));

setTimeout(function (what) {
  vendor.webhook("POST", PEER, "timeout " + what + " " + jobs.scheduler.isRunning());
  jobs.scheduler.stop();
}, 5000, "fired");
"#;
    let out = Run::new("jobs", agent)
        .env("PEER", &peer.url("/jobs"))
        .pcap(&pcap)
        .on_capture_clock()
        .run();
    out.clean();
    let bodies: Vec<String> = peer.received().into_iter().map(|r| r.body).collect();
    let n = |s: &str| bodies.iter().filter(|b| b.as_str() == s).count();
    assert_eq!(n(r#"list ["two-seconds","once"]"#), 1, "{bodies:#?}");
    assert_eq!(n("replaced"), 0, "{bodies:#?}");
    assert_eq!(n("limited true"), 1, "{bodies:#?}");
    assert_eq!(n("timeout fired true"), 1, "{bodies:#?}");
    // Every 2 s until the scheduler stopped at 5 s: at 2 s and 4 s.
    let every = bodies.iter().filter(|b| b.starts_with("every-2s")).count();
    assert_eq!(every, 2, "{bodies:#?}");
}
