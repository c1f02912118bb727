//! Tests of helper results (`crate::results`): used as plain values they
//! wait for their answer within the call's budget; used as thenables they
//! never wait; ignored they cost nothing. The executor here is a thread
//! answering each request after a delay the test chooses, so waits really
//! cross threads as they do against the control plane.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use reassembly::NodeInfo;
use serde_json::json;

use crate::console::{ConsoleLine, ConsoleSink, RuntimeId};
use crate::effects::{Effect, EffectRequest, EffectResult, EffectSink};
use crate::runtime::{AgentRuntime, Clock, RuntimeOptions};
use crate::stats::{CallSite, Hook};
use crate::testkit::http_get;
use crate::ScriptingConfig;

type Answer = dyn Fn(&Effect) -> (Duration, EffectResult) + Send + Sync;

struct H {
    rt: AgentRuntime,
    console: Receiver<ConsoleLine>,
    // Ends when the runtime (holding the effect sink) is dropped.
    _executor: JoinHandle<usize>,
    _dir: tempfile::TempDir,
}

/// A runtime whose effects a thread answers with `answer` (after its delay).
fn harness(tweak: impl FnOnce(&mut ScriptingConfig), answer: Arc<Answer>) -> H {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        ScriptingConfig { data_dir: dir.path().to_path_buf(), ..ScriptingConfig::default() };
    tweak(&mut config);
    let (console, console_rx) = ConsoleSink::new(config.console_queue as usize);
    let (effects, effects_rx) = EffectSink::new(config.effect_queue as usize);
    let rt = AgentRuntime::new(RuntimeOptions {
        id: RuntimeId(1),
        node: NodeInfo { ip: "192.0.2.1".into(), name: "node-r".into() },
        config,
        console,
        effects,
        clock: Clock::System,
    })
    .unwrap();
    let executor = std::thread::spawn(move || {
        let mut n = 0;
        while let Ok(req) = effects_rx.recv() {
            let req: EffectRequest = req;
            let (delay, result) = answer(&req.effect);
            std::thread::sleep(delay);
            req.complete(result);
            n += 1;
        }
        n
    });
    H { rt, console: console_rx, _executor: executor, _dir: dir }
}

impl H {
    fn load(&mut self, src: &str) {
        if let Err(e) = self.rt.load_agent("agent", src) {
            panic!("load: {e}");
        }
    }

    fn lines(&self) -> Vec<String> {
        self.console.try_iter().map(|l| l.text).collect()
    }

    /// Polls until no effect is pending (or 5 s passed).
    fn drain(&mut self) {
        let t0 = Instant::now();
        while self.rt.pending_effects() > 0 && t0.elapsed() < Duration::from_secs(5) {
            self.rt.poll_completions();
            std::thread::sleep(Duration::from_millis(1));
        }
        self.rt.poll_completions();
    }
}

/// Answers like the control plane does: a webhook with `{status, headers,
/// body}` (the body echoing the request's), Kinesis with a sequence
/// number, `file.read` with a path, each after `delay`.
fn peer(delay: Duration) -> Arc<Answer> {
    Arc::new(move |e: &Effect| {
        let r = match e {
            Effect::Webhook { url, .. } if url.contains("fail") => Err("connection refused".into()),
            Effect::Webhook { body, .. } => Ok(json!({"status": 200, "headers": {}, "body": body})),
            Effect::KinesisPut { .. } => {
                Ok(json!({"sequenceNumber": "4960", "shardId": "shardId-000000000001"}))
            }
            Effect::FileRead { .. } => Ok(json!("reports/today.txt")),
            _ => Ok(json!(null)),
        };
        (delay, r)
    })
}

#[test]
fn a_result_used_as_a_value_is_the_plain_value_kubeshark_returned() {
    let mut h = harness(|c| c.hook_budget_ms = 2_000, peer(Duration::from_millis(5)));
    h.load(
        r#"
        function onItemCaptured(data) {
          var r = vendor.webhook("POST", "http://peer/x", JSON.stringify({a: 1, list: "b,c"}));
          var obj = JSON.parse(r);
          console.log("parse", obj.a, obj.list);
          console.log("concat " + r);
          console.log("length", r.length, "indexOf", r.indexOf("list"), "loose", r == '{"a":1,"list":"b,c"}');
          console.log("stringify", JSON.stringify({r: r}));
          console.log(r);
          var k = vendor.kinesis.put("s", "payload", "us-east-1");
          console.log("kinesis", k.sequenceNumber, k.shardId, Object.keys(k).join("+"));
          var path = file.read("name.txt");
          console.log("as argument", typeof path, String(path));
          file.write(path, "content");
          console.log("typeof", typeof r, r instanceof Promise);
          try { JSON.parse(vendor.webhook("GET", "http://peer/fail")); } catch (e) { console.log("failed:", e.message); }
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "a.example", "/", 200));
    h.drain();
    let lines = h.lines();
    let want = [
        "parse 1 b,c",
        r#"concat {"a":1,"list":"b,c"}"#,
        r#"length 20 indexOf 8 loose true"#,
        r#"stringify {"r":"{\"a\":1,\"list\":\"b,c\"}"}"#,
        r#"{"a":1,"list":"b,c"}"#,
        "kinesis 4960 shardId-000000000001 sequenceNumber+shardId",
        "as argument object reports/today.txt",
        "typeof object true",
        "failed: connection refused",
    ];
    assert_eq!(lines, want, "{lines:#?}");
    let c = h.rt.counters();
    assert_eq!(c.result_waits, 4, "{c:?}");
    assert_eq!((c.result_waits_over_budget, c.unhandled_rejections, c.faults), (0, 0, 0));
    assert!(c.result_wait_ns >= 3 * 4_000_000, "{c:?}");
    let site =
        h.rt.stats().into_iter().find(|s| s.site == CallSite::Hook(Hook::ItemCaptured)).unwrap();
    assert_eq!((site.result_waits, site.result_waits_over_budget), (4, 0));
}

#[test]
fn a_result_is_a_thenable_with_the_whole_answer_and_never_waits() {
    let mut h = harness(|c| c.hook_budget_ms = 2_000, peer(Duration::from_millis(100)));
    h.load(
        r#"
        function onItemCaptured(data) {
          vendor.webhook("POST", "http://peer/x", "hello").then(function (res) {
            console.log("then", res.status, res.body);
          });
          (async function () {
            var res = await vendor.webhook("GET", "http://peer/y", "awaited");
            console.log("await", res.body);
          })();
          Promise.all([vendor.kinesis.put("s", "p", "r")]).then(function (all) {
            console.log("all", all[0].shardId);
          });
          vendor.webhook("GET", "http://peer/fail").catch(function (e) { console.log("catch", e.message); });
          vendor.webhook("POST", "http://peer/ignored", "x");
        }"#,
    );
    let t0 = Instant::now();
    h.rt.on_item_captured(http_get(1, "a.example", "/", 200));
    assert!(t0.elapsed() < Duration::from_millis(90), "the hook waited: {:?}", t0.elapsed());
    assert_eq!(h.rt.counters().result_waits, 0);
    h.drain();
    let mut lines = h.lines();
    lines.sort();
    assert_eq!(
        lines,
        ["all shardId-000000000001", "await awaited", "catch connection refused", "then 200 hello"],
        "{lines:#?}"
    );
    assert_eq!(h.rt.counters().result_waits, 0);
    assert_eq!(h.rt.counters().unhandled_rejections, 0);
}

#[test]
fn a_wait_past_the_budget_throws_a_catchable_error_and_the_value_comes_later() {
    let mut h = harness(|c| c.hook_budget_ms = 60, peer(Duration::from_millis(300)));
    h.load(
        r#"
        var slow;
        function onItemCaptured(data) {
          if (!slow) {
            slow = vendor.webhook("POST", "http://peer/slow", "late body");
            try {
              console.log("never", slow.length);
            } catch (e) {
              console.log("caught:", e.message);
            }
          } else {
            console.log("later:", slow + "");
          }
        }"#,
    );
    let t0 = Instant::now();
    h.rt.on_item_captured(http_get(1, "a.example", "/", 200));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(200), "{took:?}");
    h.drain();
    h.rt.on_item_captured(http_get(2, "a.example", "/", 200));
    let lines = h.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("caught: vendor.webhook: no answer within this call's 60 ms budget"),
        "{lines:#?}"
    );
    assert_eq!(lines[1], "later: late body");
    let c = h.rt.counters();
    assert_eq!((c.result_waits, c.result_waits_over_budget, c.faults, c.interrupts), (1, 1, 0, 0));
}

#[test]
fn failures_throw_when_used_and_are_reported_when_ignored() {
    let mut h = harness(
        |c| {
            c.hook_budget_ms = 2_000;
            c.effect_queue = 1;
        },
        // The executor takes one request and sits on it: the queue fills.
        Arc::new(|_: &Effect| (Duration::from_millis(400), Ok(json!({"body": "x"})))),
    );
    h.load(
        r#"
        function use(label, r) {
          try { console.log(label, "value", r + ""); } catch (e) { console.log(label, "threw", e.message); }
        }
        function onItemCaptured(data) {
          use("failed", vendor.webhook("GET", "http://peer/fail"));
          use("args", vendor.webhook("GET"));
          vendor.webhook("GET", "http://peer/1");
          vendor.webhook("GET", "http://peer/2");
          var t0 = Date.now();
          use("full", vendor.webhook("GET", "http://peer/3"));
          console.log("full waited", Date.now() - t0 < 50);
          vendor.influxdb();
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "a.example", "/", 200));
    let lines = h.lines();
    // The first request waits 400 ms in the executor and then answers;
    // "peer/fail" is answered with the executor's value (no failure) here.
    assert_eq!(lines[0], "failed value x", "{lines:#?}");
    assert_eq!(lines[1], "args threw url is required", "{lines:#?}");
    assert!(lines[2].starts_with("full threw vendor.webhook: effect queue full"), "{lines:#?}");
    assert_eq!(lines[3], "full waited true");
    // Ignored: reported on the console once the turn ends.
    assert!(
        lines.iter().any(|l| l.contains("unhandled rejection") && l.contains("url is required")),
        "{lines:#?}"
    );
    let c = h.rt.counters();
    assert_eq!(c.helper_argument_errors, 2, "{c:?}");
    let site =
        h.rt.stats().into_iter().find(|s| s.site == CallSite::Hook(Hook::ItemCaptured)).unwrap();
    assert_eq!(site.helper_argument_errors, 2);
    assert!(c.effects_rejected_full >= 1, "{c:?}");
    assert_eq!(c.faults, 0);
    h.drain();
}
