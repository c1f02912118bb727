//! Tests of `AgentRuntime`: one per hook and helper row of `AGENTS_API.md`,
//! scopes, faults and limits, and the seed's complete example.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use reassembly::NodeInfo;
use serde_json::{json, Value};

use crate::console::{ConsoleLevel, ConsoleLine, ConsoleSink, RuntimeId};
use crate::effects::EffectSink;
use crate::error::{LoadError, Position};
use crate::executor::LocalExecutor;
use crate::runtime::{AgentRuntime, Clock, RuntimeOptions};
use crate::stats::{CallSite, Hook};
use crate::testkit::{dns_item, http_get, http_item, packet, BASE_TS_NS};
use crate::ScriptingConfig;

struct H {
    rt: AgentRuntime,
    console: Receiver<ConsoleLine>,
    exec: LocalExecutor,
    _dir: tempfile::TempDir,
}

fn node() -> NodeInfo {
    NodeInfo { ip: "192.0.2.10".into(), name: "node-a".into() }
}

fn harness(clock: Clock, tweak: impl FnOnce(&mut ScriptingConfig)) -> H {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        ScriptingConfig { data_dir: dir.path().to_path_buf(), ..ScriptingConfig::default() };
    config.env.insert("API_TOKEN".into(), "s3cr3t-token".into());
    config.env.insert("REGION".into(), "eu-west-1".into());
    tweak(&mut config);
    let (console, console_rx) = ConsoleSink::new(config.console_queue as usize);
    let (effects, effects_rx) = EffectSink::new(config.effect_queue as usize);
    let rt = AgentRuntime::new(RuntimeOptions {
        id: RuntimeId(7),
        node: node(),
        config,
        console,
        effects,
        clock,
    })
    .unwrap();
    let exec = LocalExecutor::new(effects_rx, dir.path());
    H { rt, console: console_rx, exec, _dir: dir }
}

fn h() -> H {
    harness(Clock::System, |_| {})
}

impl H {
    fn load(&mut self, name: &str, src: &str) {
        if let Err(e) = self.rt.load_agent(name, src) {
            panic!("load {name}: {e}");
        }
    }

    /// Console lines so far (texts).
    fn lines(&self) -> Vec<String> {
        self.console.try_iter().map(|l| l.text).collect()
    }

    fn full_lines(&self) -> Vec<ConsoleLine> {
        self.console.try_iter().collect()
    }

    /// Runs effects and settles Promises until nothing is left.
    fn settle(&mut self) {
        for _ in 0..20 {
            let ran = self.exec.run_pending();
            let polled = self.rt.poll_completions();
            if ran == 0 && polled == 0 && self.rt.pending_effects() == 0 {
                break;
            }
        }
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

// ---------------------------------------------------------------------
// Hooks

/// JSON numbers compared by value (JS prints 2.0 as 2).
fn norm(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap_or(f64::NAN)),
        Value::Array(a) => Value::Array(a.into_iter().map(norm).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, norm(v))).collect()),
        other => other,
    }
}

#[test]
fn on_item_captured_sees_the_full_item_shape() {
    let mut h = h();
    h.load(
        "shape",
        r#"
        function onItemCaptured(data) {
          console.log(JSON.stringify(data));
          console.log(data.request.headers.host, data.request.headers["User-Agent"], data.response.status);
          console.log(Object.keys(data).join(","));
          var names = [];
          for (var k in data.request.headers) names.push(k);
          console.log(names.join(","));
          console.log(data.request === data.request, typeof data.request.headers.nope, "host" in data.request.headers);
        }"#,
    );
    let item = http_get(42, "example.com", "/a/b?x=1&y=two", 503);
    let expected = item.to_json(&node());
    h.rt.on_item_captured(item);
    let lines = h.lines();
    let got: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(norm(got), norm(expected), "JSON.stringify(data) is Item::to_json");
    assert_eq!(lines[1], "example.com skua-test/1.0 503");
    assert_eq!(
        lines[2],
        "id,index,stream,worker,node,protocol,src,dst,timestamp,startTime,elapsedTime,request,response,requestSize,responseSize,size,passed,failed,error"
    );
    assert_eq!(lines[3], "Host,User-Agent,Accept");
    assert_eq!(lines[4], "true undefined true");
}

/// A header read matches the name as written first (every such header,
/// joined with ", "), else the name in any case; and values read back are
/// each item's own, past the number the value memory holds.
#[test]
fn header_reads_prefer_the_exact_name_and_show_each_items_value() {
    let mut h = h();
    h.load(
        "headers",
        r#"
        var seen = [];
        function onItemCaptured(data) {
          var hs = data.request.headers;
          if (data.request.path === "/tags") {
            console.log(hs["X-Tag"] + "|" + hs["x-tag"] + "|" + hs["X-TAG"] + "|" + hs.host + "|" + hs.HOST + "|" + hs["x-ta"]);
            return;
          }
          seen.push(hs.host);
          if (seen.length === 3000) {
            var bad = 0;
            for (var i = 0; i < seen.length; i++) if (seen[i] !== "h" + (i % 1500) + ".example") bad++;
            console.log("bad " + bad);
          }
        }"#,
    );
    let req = b"GET /tags HTTP/1.1\r\nX-Tag: a\r\nHost: h\r\nx-tag: b\r\nX-Tag: c\r\n\r\n";
    h.rt.on_item_captured(http_item(1, req, Some(b"HTTP/1.1 204 No Content\r\n\r\n")));
    h.rt.on_items_captured(
        (0..3000u64).map(|i| http_get(i + 2, &format!("h{}.example", i % 1500), "/", 200)),
    );
    assert_eq!(h.lines(), vec!["a, c|b|a, b, c|h|h|undefined", "bad 0"]);
}

/// `data.protocol` is a lazy object too: for every protocol it shows what
/// the item's JSON shows, in the same key order, and stays the same object.
#[test]
fn data_protocol_matches_the_item_json_for_every_protocol() {
    use reassembly::AppProtocol as P;
    let mut h = h();
    h.load(
        "p",
        r#"function onItemCaptured(d) {
            console.log(JSON.stringify(d.protocol), d.protocol === d.protocol, d.protocol.name === d.protocol.name);
        }"#,
    );
    let all = [P::Http, P::Dns, P::Http2, P::Grpc, P::Redis, P::Kafka, P::Postgresql, P::Amqp];
    for (i, p) in all.into_iter().enumerate() {
        let mut item = http_get(i as u64, "h", "/", 200);
        item.protocol = p;
        if i % 2 == 1 {
            item.ip_version = 6;
        }
        let expected = item.to_json(&node())["protocol"].clone();
        h.rt.on_item_captured(item);
        let line = h.lines().pop().unwrap();
        let (json, rest) = line.split_at(line.find("} ").unwrap() + 1);
        assert_eq!(serde_json::from_str::<Value>(json).unwrap(), expected, "{p:?}");
        let keys: Vec<&str> = json
            .match_indices("\":")
            .map(|(at, _)| json[..at].rsplit('"').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["name", "version", "abbr", "longName", "layer4", "layer3"],
            "{p:?}: key order"
        );
        assert_eq!(rest, " true true");
    }
}

#[test]
fn dns_items_and_console_log_of_data_are_json() {
    let mut h = h();
    h.load("dns", "function onItemCaptured(data) { console.log(data); console.log(data.response.answers[0].ip); }");
    let item = dns_item(9, 77, "www.example.org", [93, 184, 216, 34]);
    let expected = item.to_json(&node());
    h.rt.on_item_captured(item);
    let lines = h.lines();
    assert_eq!(norm(serde_json::from_str::<Value>(&lines[0]).unwrap()), norm(expected));
    assert_eq!(lines[1], "93.184.216.34");
}

#[test]
fn writes_to_items_are_kept() {
    let mut h = h();
    h.load(
        "w",
        r#"function onItemCaptured(d) {
            d.note = "seen"; d.passed = true;
            console.log(d.note, d.passed, Object.keys(d).indexOf("note") >= 0, JSON.parse(JSON.stringify(d)).note);
            delete d.note; console.log(typeof d.note);
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    assert_eq!(h.lines(), vec!["seen true true seen", "undefined"]);
}

/// Values written through the lazy objects are owned once: reference-
/// counted values of every kind written on every level of many items, kept
/// past their item and collected, leave the runtime sound (the released
/// rquickjs glue freed each written value twice; see vendor/README.md).
#[test]
fn writes_of_counted_values_survive_many_items_and_collections() {
    let mut h = h();
    h.load(
        "w",
        r#"var kept = [], n = 0;
        function onItemCaptured(d) {
            var k = n++;
            d.k = k; d.tag = "t" + k; d.obj = {n: k}; d.arr = [k];
            d.request.note = "r" + k; d.request.headers.extra = {h: k};
            d.response.headers.seen = ["s" + k];
            Object.create(d.response).mine = "p" + k;
            if (k % 97 == 0) kept.push(d);
            if (kept.length > 50) kept.shift();
        }
        function onHubAction() {
            var ok = kept.every(function (d) {
                var k = d.k;
                return d.tag === "t" + k && d.obj.n === k && d.arr[0] === k &&
                    d.request.note === "r" + k && d.request.headers.extra.h === k &&
                    d.response.headers.seen[0] === "s" + k && d.response.mine === undefined;
            });
            console.log(n, kept.length, ok);
        }"#,
    );
    for round in 0..20u64 {
        let items: Vec<_> = (0..500u64).map(|i| http_get(round * 500 + i, "h", "/", 200)).collect();
        h.rt.on_items_captured(items);
        h.rt.collect_garbage();
    }
    h.rt.on_hub_action("check", &json!({}));
    assert_eq!(h.lines(), vec!["10000 50 true"]);
}

#[test]
fn on_packet_captured_gets_info_and_costs_nothing_without_it() {
    let mut h = h();
    h.load("items-only", "function onItemCaptured(d) {}");
    assert!(!h.rt.wants_packets());
    assert_eq!(
        h.rt.on_packets_captured([packet(BASE_TS_NS, 60)]),
        0,
        "no agent defines it: not called"
    );
    h.load(
        "pk",
        r#"function onPacketCaptured(info) {
            console.log(info.timestamp, info.captureLength, info.length, info.truncated, info.fragmented,
                        info.srcIp, info.dstIp, info.srcPort, info.dstPort, info.protocol, info.vlan, info.core);
        }"#,
    );
    assert!(h.rt.wants_packets());
    let mut p = packet(BASE_TS_NS + 5_000_000, 1514);
    p.capture_length = 128;
    p.truncated = true;
    p.vlan = Some(12);
    p.core = 3;
    assert_eq!(h.rt.on_packets_captured([p]), 1);
    assert_eq!(
        h.lines(),
        vec!["1700000000005 128 1514 true false 10.0.0.1 10.0.0.2 40000 80 tcp 12 3"]
    );
    assert!(h.rt.remove_agent("pk"));
    assert!(!h.rt.wants_packets());
}

#[test]
fn on_item_queried_replaces_and_colours() {
    let mut h = h();
    let item = http_get(5, "h", "/x", 500);
    assert_eq!(h.rt.on_item_queried(&item), item.to_json(&node()), "no hook: the item as is");
    h.load(
        "q",
        r#"function onItemQueried(data) {
            if (data.response.status >= 500) return test.fail(data);
            return test.pass(data);
        }"#,
    );
    let out = h.rt.on_item_queried(&item);
    assert_eq!(out["failed"], json!(true));
    assert_eq!(out["passed"], json!(false));
    assert_eq!(out["request"]["path"], json!("/x"));
    h.load(
        "q2",
        "function onItemQueried(data) { return {replaced: data.id, failed: data.failed}; }",
    );
    let out = h.rt.on_item_queried(&item);
    assert_eq!(out, json!({"replaced": "node-a/5-0", "failed": true}));
}

#[test]
fn hub_action_reaches_on_hub_action() {
    let mut h = h();
    let hub = h.rt.mailbox();
    h.exec = std::mem::replace(
        &mut h.exec,
        LocalExecutor::new(crossbeam_channel::never(), "/nonexistent"),
    )
    .with_hub(hub);
    h.load(
        "sender",
        r#"function onItemCaptured(d) {
            hub.action("dns-top", {name: d.request.headers.host, n: 1}).then(function (r) { console.log("sent", r); });
        }"#,
    );
    h.load("receiver", r#"function onHubAction(action, object) { console.log("got", action, object.name, object.n); }"#);
    h.rt.on_item_captured(http_get(1, "a.example", "/", 200));
    h.settle();
    let lines = h.lines();
    assert!(lines.contains(&"sent null".to_owned()), "{lines:?}");
    assert!(lines.contains(&"got dns-top a.example 1".to_owned()), "{lines:?}");
    assert_eq!(h.exec.transcript()[0].helper, "hub.action");
    // Direct delivery too (the hub's control plane calls this).
    h.rt.on_hub_action("x", &json!({"name": "b", "n": 2}));
    assert_eq!(h.lines(), vec!["got x b 2"]);
}

#[test]
fn on_pod_event_from_the_mailbox() {
    let mut h = h();
    h.load("pods", r#"function onPodEvent(event, pod) { console.log(event, pod.metadata.name); }"#);
    let mb = h.rt.mailbox();
    assert!(mb.pod_event("RESTARTED", json!({"metadata": {"name": "api-1"}})));
    assert!(mb.pod_event("CRASHED", json!({"metadata": {"name": "api-2"}})));
    assert_eq!(h.rt.poll_completions(), 2);
    assert_eq!(h.lines(), vec!["RESTARTED api-1", "CRASHED api-2"]);
    h.rt.on_pod_event("ADDED", &json!({"metadata": {"name": "db"}}));
    assert_eq!(h.lines(), vec!["ADDED db"]);
}

#[test]
fn agents_load_reload_and_remove_through_the_mailbox_keeping_the_others_state() {
    use crate::effects::RuntimeEvent;
    let mut h = h();
    h.load("keep", "var n = 0; function onItemCaptured(d) { n++; } function onHubAction() { console.log('keep', n); }");
    h.load("edit", "function onHubAction() { console.log('v1'); }");
    for i in 0..3 {
        h.rt.on_item_captured(http_get(i, "a.example", "/", 200));
    }
    let mb = h.rt.mailbox();
    let load =
        |name: &str, src: &str| RuntimeEvent::LoadAgent { name: name.into(), source: src.into() };
    assert!(mb.event(load("edit", "function onHubAction() { console.log('v2'); }")));
    assert!(mb.event(load("new", "function onHubAction() { console.log('new'); }")));
    h.rt.poll_completions();
    h.rt.on_hub_action("x", &Value::Null);
    let lines = h.lines();
    assert_eq!(lines.iter().filter(|l| *l == "(agent loaded)").count(), 2, "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| !l.starts_with('(')).cloned().collect::<Vec<_>>(),
        ["keep 3", "v2", "new"]
    );

    // The same source again is a no-op; a broken one keeps the running version.
    assert!(mb.event(load("edit", "function onHubAction() { console.log('v2'); }")));
    assert!(mb.event(load("edit", "function onHubAction() { console.log('v3' }")));
    assert!(mb.event(RuntimeEvent::RemoveAgent { name: "new".into() }));
    h.rt.poll_completions();
    let said = h.full_lines();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].level == ConsoleLevel::Error && said[0].text.contains("running version is kept"),
        "{said:?}"
    );
    h.rt.on_hub_action("x", &Value::Null);
    assert_eq!(h.lines(), ["keep 3", "v2"]);
}

#[test]
fn a_new_env_loads_every_agent_again_with_it_and_masks_the_new_secrets() {
    use crate::effects::RuntimeEvent;
    let mut h = h();
    h.load("a", "var n = 0; function onItemCaptured(d) { n++; } function onHubAction() { console.log(env.REGION, n, env.NEW_KEY); }");
    h.rt.on_item_captured(http_get(1, "a.example", "/", 200));
    h.rt.on_hub_action("x", &Value::Null);
    assert_eq!(h.lines(), ["*** 1 undefined"], "env values are masked");
    // (Values under 4 bytes are not treated as secrets.)
    let env = [("REGION", "us2"), ("NEW_KEY", "k3y-value")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(h.rt.mailbox().event(RuntimeEvent::SetEnv { env }));
    h.rt.poll_completions();
    h.rt.on_hub_action("x", &Value::Null);
    // Loaded again: its count starts over; the new value is masked.
    assert_eq!(h.lines(), ["us2 0 ***"]);
}

#[test]
fn on_job_passed_and_failed_after_each_run() {
    let mut h = harness(Clock::Manual, |_| {});
    h.rt.set_time(at(1_700_000_000));
    h.load(
        "jobs",
        r#"
        var runs = 0;
        jobs.schedule("Good Job", "*/10 * * * * *", function (a, b) { runs++; console.log("run", a, b); }, 0, "x", 2);
        jobs.schedule("bad", "*/10 * * * * *", function () { throw new Error("boom " + runs); }, 2);
        function onJobPassed(tag, cron, limit) { console.log("passed", tag, cron, limit); }
        function onJobFailed(tag, cron, limit, err) { console.log("failed", tag, limit, err); }
        "#,
    );
    assert_eq!(h.rt.next_job_due(), Some(at(1_700_000_010)));
    assert_eq!(h.rt.run_due_jobs(at(1_700_000_009)), 0);
    assert_eq!(h.rt.run_due_jobs(at(1_700_000_010)), 2);
    let lines = h.lines();
    assert!(lines.contains(&"run x 2".to_owned()), "{lines:?}");
    assert!(lines.contains(&"passed good-job */10 * * * * * 0".to_owned()), "{lines:?}");
    assert!(lines.contains(&"failed bad 2 boom 1".to_owned()), "{lines:?}");
    assert_eq!(h.rt.run_due_jobs(at(1_700_000_020)), 2);
    // "bad" had limit 2: gone after its second run.
    let tags: Vec<String> = h.rt.jobs().into_iter().map(|j| j.tag).collect();
    assert_eq!(tags, vec!["good-job"]);
    let stats = h.rt.stats();
    let job = stats.iter().find(|s| s.site == CallSite::Job).unwrap();
    assert_eq!((job.calls, job.errors), (4, 2));
}

// ---------------------------------------------------------------------
// Helpers

#[test]
fn console_joins_args_prints_objects_as_json_and_tags_lines() {
    let mut h = h();
    h.load(
        "con",
        r#"console.log("a", 1, true, null, undefined, {x: [1, "y"]}, [2]);
           console.error("bad", new Error("oops"));
           console.clear();
           console.log("token", env.API_TOKEN);"#,
    );
    let lines = h.full_lines();
    assert_eq!(lines[0].text, r#"a 1 true null undefined {"x":[1,"y"]} [2]"#);
    assert_eq!(
        (&*lines[0].agent, &*lines[0].node, lines[0].runtime, lines[0].level),
        ("con", "node-a", RuntimeId(7), ConsoleLevel::Log)
    );
    assert_eq!(lines[1].text, "bad Error: oops");
    assert_eq!(lines[1].level, ConsoleLevel::Error);
    assert_eq!(lines[2].level, ConsoleLevel::Clear);
    assert_eq!(lines[3].text, "token ***", "env values are masked in console lines");
    assert_eq!(
        lines[0].to_string(),
        r#"[node-a rt7 con] a 1 true null undefined {"x":[1,"y"]} [2]"#
    );
}

#[test]
fn env_and_utils_node_name() {
    let mut h = h();
    h.load(
        "e",
        r#"console.log(env.REGION === "eu-west-1", utils.nodeName(), typeof env.MISSING);
           env.REGION = "x"; console.log(env.REGION.length, env.REGION);"#,
    );
    // env values are secrets: usable, but masked in console lines.
    assert_eq!(h.lines(), vec!["true node-a undefined", "9 ***"]);
}

#[test]
fn jobs_registry_tags_replace_remove_run() {
    let mut h = harness(Clock::Manual, |_| {});
    h.rt.set_time(at(1_700_000_000));
    h.load(
        "j",
        r#"
        var n = 0;
        jobs.schedule("My Tag", "0 */1 * * * *", function () { console.log("first"); });
        jobs.schedule("my tag", "0 */1 * * * *", function () { n++; console.log("second", n); jobs.run("my-tag"); });
        jobs.schedule("other", "0 0 * * * *", function () { console.log("other"); });
        jobs.schedule("gone", "0 0 * * * *", function () {});
        console.log(jobs.list().length, jobs.list()[0], jobs.remove("GONE"), jobs.remove("gone"));
        "#,
    );
    assert_eq!(h.lines(), vec!["3 my-tag true false"]);
    assert!(h.rt.run_job_now("My Tag"));
    // The job asked to run itself again: that run comes after, not inside.
    let lines = h.lines();
    assert_eq!(&lines[..2], &["second 1", "second 2"], "{lines:?}");
    h.load("k", r#"jobs.runAll(); console.log(jobs.removeAll(), jobs.list().length);"#);
    let lines = h.lines();
    assert!(lines.contains(&"other".to_owned()) || lines.contains(&"2 0".to_owned()), "{lines:?}");
    assert!(h.rt.jobs().is_empty());
}

#[test]
fn five_field_cron_is_rejected_with_the_six_field_form() {
    let mut h = h();
    let e =
        h.rt.load_agent("c", "\njobs.schedule('x', '*/5 * * * *', function () {});").unwrap_err();
    match e {
        LoadError::TopLevel { at, message, .. } => {
            assert_eq!(at.line, 2);
            assert!(message.contains("\"0 */5 * * * *\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.rt.jobs().is_empty());
}

#[test]
fn vendor_helpers_enqueue_and_resolve() {
    let mut h = h();
    h.load(
        "v",
        r##"
        function show(name) { return function (r) { console.log(name, JSON.stringify(r)); }; }
        function fail(name) { return function (e) { console.log(name, "rejected", e.message); }; }
        vendor.webhook("post", "http://127.0.0.1:9/hook", {a: 1}, {"X-Key": "v", "Authorization": "Bearer zzz"}).then(show("webhook"));
        vendor.slack("https://hooks.slack.invalid/T/B/C", "pre", "text", "#ff0000").then(show("slack"));
        vendor.slackBot(env.API_TOKEN, "C123", "pre", "text", "good", [{title: "t", value: "v"}]).then(show("slackBot"));
        vendor.influxdb("http://127.0.0.1:8086", "tok", "org", "bucket", "m", {count: 3}, {host: "h"}).then(show("influxdb"));
        vendor.kinesis.put("stream-1", {k: "v"}, "us-east-1").then(show("kinesis"));
        vendor.webhook().then(show("never"), fail("webhook-noargs"));
        "##,
    );
    h.settle();
    let lines = h.lines();
    for want in [
        r#"webhook {"body":"","headers":{},"status":200}"#,
        r#"slack {"body":"ok","status":200}"#,
        r#"influxdb {"status":204}"#,
        "webhook-noargs rejected method is required",
    ] {
        assert!(lines.iter().any(|l| l == want), "missing {want}: {lines:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("kinesis {\"sequenceNumber\"")
                && l.contains("shardId-000000000000")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("slackBot {\"channel\":\"C123\"")), "{lines:?}");
    let t = h.exec.transcript();
    let helpers: Vec<&str> = t.iter().map(|e| e.helper).collect();
    assert_eq!(
        helpers,
        vec![
            "vendor.webhook",
            "vendor.slack",
            "vendor.slackBot",
            "vendor.influxdb",
            "vendor.kinesis.put"
        ]
    );
    assert_eq!(t[0].args["method"], json!("POST"));
    assert_eq!(t[0].args["body"], json!(r#"{"a":1}"#));
    assert_eq!(t[0].args["headers"]["Authorization"], json!("***"));
    assert_eq!(t[2].args["token"], json!("***"));
    assert_eq!(t[3].args["data"], json!({"count": 3}));
    assert_eq!(t[4].args["payload"], json!(r#"{"k":"v"}"#));
    assert!(!format!("{t:?}").contains("s3cr3t-token"));
}

#[test]
fn helper_promises_rejected_without_a_handler_are_reported() {
    let mut h = h();
    h.load(
        "r",
        r#"
        function onHubAction(action) {
          if (action === "bad-args") vendor.webhook();                           // rejected at once, unhandled
          if (action === "caught") vendor.webhook().catch(function (e) {});        // rejected at once, handled
          if (action === "later") file.read("missing.txt");                      // rejected on completion, unhandled
          if (action === "later-caught") file.read("missing.txt").then(null, function () {});
        }
        "#,
    );
    let reported = |h: &mut H| -> Vec<String> {
        h.full_lines()
            .into_iter()
            .filter(|l| l.level == ConsoleLevel::Error)
            .map(|l| format!("{}: {}", l.agent, l.text))
            .collect()
    };
    h.rt.on_hub_action("bad-args", &Value::Null);
    h.settle();
    let said = reported(&mut h);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("r: unhandled rejection of a helper's Promise: method is required"),
        "{said:?}"
    );
    h.rt.on_hub_action("caught", &Value::Null);
    h.settle();
    assert_eq!(reported(&mut h), Vec::<String>::new());
    h.rt.on_hub_action("later", &Value::Null);
    h.settle();
    let said = reported(&mut h);
    assert!(said.len() == 1 && said[0].starts_with("r: unhandled rejection"), "{said:?}");
    h.rt.on_hub_action("later-caught", &Value::Null);
    h.settle();
    assert_eq!(reported(&mut h), Vec::<String>::new());
    assert_eq!(h.rt.counters().unhandled_rejections, 2);
}

#[test]
fn prometheus_metric_and_pcap_snapshot() {
    let mut h = h();
    h.load(
        "m",
        r#"
        prometheus.metric("http_requests_total", "requests", 1, 5, {code: "200"}).then(function (r) { console.log("metric", r); });
        prometheus.metric("bad name", "x", 1, 1).catch(function (e) { console.log("bad:", e.message); });
        prometheus.metric("g", "x", 9, 1).catch(function (e) { console.log("type:", e.message); });
        pcap.snapshot(30).then(function (p) { console.log("pcap", /snapshot-.*\.pcapng$/.test(p)); });
        pcap.path("12").then(function (p) { console.log("path", /stream-12\.pcapng$/.test(p)); });
        pcap.path("1e3").catch(function (e) { console.log("path:", e.message); });
        pcap.snapshot(["3", 4], "merged/x").then(function (p) { console.log("snap", typeof p); });
        pcap.snapshot([{}]).catch(function (e) { console.log("snap:", e.message); });
        "#,
    );
    h.settle();
    let lines = h.lines();
    assert!(lines.contains(&"metric null".to_owned()), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("bad: metric name")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("type: metric type 9")), "{lines:?}");
    assert!(lines.contains(&"pcap true".to_owned()), "{lines:?}");
    assert!(lines.contains(&"path true".to_owned()), "{lines:?}");
    assert!(lines.contains(&"snap string".to_owned()), "{lines:?}");
    for bad in ["path: stream must be", "snap: stream must be"] {
        assert!(lines.iter().any(|l| l.starts_with(bad)), "{bad}: {lines:?}");
    }
    let t = h.exec.transcript();
    assert_eq!(
        t[0].args,
        json!({"name": "http_requests_total", "help": "requests", "type": "counter", "value": 5.0, "labels": {"code": "200"}})
    );
    assert_eq!(t[1].args, json!({"seconds": 30, "dir": null}));
    assert_eq!(t[2].args, json!({"stream": "12"}));
    assert_eq!(t[3].args, json!({"streams": ["3", "4"], "dir": "merged/x"}));
}

#[test]
fn file_helpers_are_confined_to_the_agent_dir() {
    let mut h = h();
    h.load(
        "files",
        r#"
        function log(x) { return function (r) { console.log(x, r); }; }
        function err(x) { return function (e) { console.log(x, "rejected:", e.message); }; }
        file.mkdir("out/sub").then(log("mkdir"));
        file.write("out/a.txt", "hello").then(log("write"));
        file.append("out/a.txt", " world").then(log("append"));
        file.read("out/a.txt").then(log("read"));
        file.write("../escape.txt", "x").then(log("no"), err("dotdot"));
        file.read("/etc/passwd").then(log("no"), err("abs"));
        "#,
    );
    h.settle();
    let lines = h.lines();
    assert!(lines.contains(&"read hello world".to_owned()), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("dotdot rejected: file path \"../escape.txt\": '..'")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("abs rejected: file path \"/etc/passwd\": absolute")),
        "{lines:?}"
    );
    let dir = h.rt.agent_dir("files");
    assert_eq!(std::fs::read_to_string(dir.join("out/a.txt")).unwrap(), "hello world");
    assert!(dir.join("out/sub").is_dir());
    assert!(!dir.parent().unwrap().join("escape.txt").exists());
    h.load("files2", r#"file.delete("x").catch(function (e) { console.log("missing"); });"#);
    h.settle();
    assert_eq!(h.lines(), vec!["missing"], "agents have separate directories");
}

#[test]
fn test_pass_and_fail_mark_and_return_the_item() {
    let mut h = h();
    h.load(
        "t",
        r#"function onItemCaptured(d) {
            var r = test.pass(d);
            console.log(r === d, d.passed, d.failed);
            test.fail(d);
            console.log(d.failed, JSON.parse(JSON.stringify(d)).failed);
            var plain = test.fail({});
            console.log(plain.failed);
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    assert_eq!(h.lines(), vec!["true true false", "true true", "true"]);
}

#[test]
fn kfl_match_filters_the_item_a_hook_was_given_in_kfl2_and_kfl1() {
    let mut h = harness(Clock::System, |c| c.kfl_cache_entries = 3);
    h.load(
        "k",
        r#"function onItemCaptured(d) {
            var out = [
                kfl.match("http && status_code >= 500", d),
                kfl.match('http && request.headers["host"] == "api.example"', d),
                kfl.match('request.path == "/orders" and response.status == 503', d),
                kfl.match('dns', d),
                kfl.match('node_name == "node-a" && dst.port == 80', d)
            ];
            console.log(out.join(" "));
            try { kfl.match("status_code == \"x\"", d); } catch (e) { console.log(e instanceof Error, e.message.indexOf("kfl.match: invalid filter at 1:") == 0); }
            try { kfl.match(42, d); } catch (e) { console.log(e.name); }
            try { kfl.validate("http &&"); } catch (e) { console.log(e.message.indexOf("invalid filter") >= 0); }
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "api.example", "/orders", 503));
    h.rt.on_item_captured(http_get(2, "www.example", "/", 200));
    assert_eq!(
        h.lines(),
        vec![
            "true true true false true",
            "true true",
            "TypeError",
            "true",
            "false false false false true",
            "true true",
            "TypeError",
            "true",
        ]
    );
    let c = h.rt.counters();
    // Seven distinct queries in the same order for each item, through a
    // cache of three: the least recently used is always the next one
    // asked for, so every call compiles, and all but the first three
    // evict. The invalid query, the number and `validate`'s syntax error
    // are argument errors, twice.
    assert_eq!((c.kfl_compiles, c.kfl_cache_hits, c.kfl_cache_evictions), (14, 0, 11));
    assert_eq!(c.helper_argument_errors, 6);
}

#[test]
fn kfl_match_compiles_a_query_once_per_runtime() {
    let mut h = h();
    h.load(
        "k",
        r#"var n = 0;
        function onItemCaptured(d) { if (kfl.match("http && status_code == 200", d)) n++; }
"#,
    );
    for i in 0..100 {
        h.rt.on_item_captured(http_get(i, "h", "/", if i % 4 == 0 { 500 } else { 200 }));
    }
    let c = h.rt.counters();
    assert_eq!((c.kfl_compiles, c.kfl_cache_hits, c.kfl_cache_evictions), (1, 99, 0));
}

// ---------------------------------------------------------------------
// Scopes

#[test]
fn script_scopes_apart_global_this_shared() {
    let mut h = h();
    h.load(
        "a",
        "var count = 0; this.total = 0; function onItemCaptured(d) { count++; this.total++; }",
    );
    h.load("b", "var count = 100; function onItemCaptured(d) { count += 10; console.log('b', count, this.total); }");
    for i in 0..3 {
        h.rt.on_item_captured(http_get(i, "h", "/", 200));
    }
    assert_eq!(h.lines(), vec!["b 110 1", "b 120 2", "b 130 3"]);
    // Reloading b keeps a's state.
    h.load("b", "function onItemCaptured(d) { console.log('b2', typeof count, this.total); }");
    h.rt.on_item_captured(http_get(9, "h", "/", 200));
    assert_eq!(h.lines(), vec!["b2 undefined 4"]);
    assert_eq!(h.rt.agents().iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
}

// ---------------------------------------------------------------------
// Faults and limits

#[test]
fn runaway_hook_is_interrupted_within_budget_and_the_next_item_runs() {
    let mut h = harness(Clock::System, |c| {
        c.hook_budget_ms = 50;
        c.quarantine_after = 0;
    });
    h.load("spin", "var n = 0; function onItemCaptured(d) { n++; if (n === 1) { while (true) {} } console.log('item', n); }");
    let t = Instant::now();
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    let elapsed = t.elapsed();
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(400), "interrupted within budget: {elapsed:?}");
    h.rt.on_item_captured(http_get(2, "h", "/", 200));
    let lines = h.full_lines();
    assert!(lines[0].text.starts_with("onItemCaptured at spin.js:1:"), "{:?}", lines[0].text);
    assert!(lines[0].text.contains("interrupted: ran past its 50 ms budget"));
    assert_eq!(lines[1].text, "item 2");
    let s = &h.rt.stats()[0];
    assert_eq!((s.calls, s.interrupts, s.errors), (2, 1, 0));
    assert!(s.max_ns >= 50_000_000);
}

#[test]
fn unbounded_allocation_hits_the_heap_limit_and_the_runtime_lives_on() {
    let mut h = harness(Clock::System, |c| {
        c.memory_limit_mb = 16;
        c.hook_budget_ms = 10_000;
    });
    h.load(
        "hog",
        r#"var n = 0, keep = [];
        function onItemCaptured(d) {
          n++;
          if (n === 1) { var a = []; while (true) a.push("x" + a.length + new Array(64).join("y")); }
          keep.push(d.id);
          console.log("ok", n, keep.length);
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    let first = h.full_lines();
    assert!(
        first.iter().any(|l| l.level == ConsoleLevel::Error && l.text.contains("out of memory")),
        "{first:?}"
    );
    assert!(
        h.rt.memory_used_bytes() < 8 << 20,
        "garbage collected after the hit: {}",
        h.rt.memory_used_bytes()
    );
    for i in 2..5 {
        h.rt.on_item_captured(http_get(i, "h", "/", 200));
    }
    assert_eq!(h.lines(), vec!["ok 2 1", "ok 3 2", "ok 4 3"]);
    assert_eq!(h.rt.stats()[0].out_of_memory, 1);
    assert_eq!(h.rt.counters().out_of_memory, 1);
}

#[test]
fn syntax_errors_are_rejected_with_line_and_column_while_others_run() {
    let mut h = h();
    h.load("good", "var n = 0; function onItemCaptured(d) { n++; console.log('good', n); }");
    let e = h.rt.load_agent("bad", "var a = 1;\nvar b = ;\n").unwrap_err();
    assert!(matches!(&e, LoadError::Compile { at: Position { line: 2, column: 9 }, .. }), "{e:?}");
    assert_eq!(e.to_string(), "bad.js:2:9: SyntaxError: unexpected token in expression: ';'");
    // Line 1 columns are the file's, not the wrapper's.
    let e = h.rt.load_agent("bad1", "var x = ;").unwrap_err();
    assert_eq!(e.position(), Some(Position { line: 1, column: 9 }), "{e}");
    // A failed reload keeps the running version.
    assert!(h.rt.load_agent("good", "function onItemCaptured( {").is_err());
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    assert_eq!(h.lines(), vec!["good 1"]);
    assert_eq!(h.rt.agents().len(), 1);
    // An unclosed block: at the end of the file, not in skua's wrapper.
    let e =
        h.rt.load_agent("open", "function onItemCaptured(d) {\n  if (d) {\n    n++;\n")
            .unwrap_err();
    assert_eq!(e.position(), Some(Position { line: 3, column: 9 }), "{e}");
    assert!(e.to_string().contains("unexpected end of the file"), "{e}");
    // A bad regular expression: the engine gives no place; skua finds the line.
    let e =
        h.rt.load_agent("re", "var a = 1;\nvar b = 2;\n  var re = /abc(/;\nvar c = 3;\n")
            .unwrap_err();
    assert_eq!(e.position(), Some(Position { line: 3, column: 3 }), "{e}");
    // A top-level `return` (Kubeshark refused it too): named with its place,
    // not an engine error.
    let e =
        h.rt.load_agent("ret", "function onItemCaptured(d) {}\nif (true) {\n  return;\n}\n")
            .unwrap_err();
    assert!(matches!(e, LoadError::TopLevel { .. }), "{e:?}");
    assert_eq!(e.position(), Some(Position { line: 3, column: 3 }), "{e}");
    assert!(e.to_string().contains("`return` outside a function"), "{e}");
    // And the compile check used before pushing a save agrees.
    assert!(crate::check_agent("bad", "var b = ;", false).is_err());
    assert!(crate::check_agent("ok", "var b = 1;", false).unwrap().is_empty());
}

#[test]
fn exceptions_are_logged_with_agent_hook_and_line() {
    let mut h = h();
    h.load("thrower", "function onItemCaptured(d) {\n  var x = null;\n  return x.y;\n}");
    h.load("fine", "function onItemCaptured(d) { console.log('fine'); }");
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    let lines = h.full_lines();
    assert_eq!(&*lines[0].agent, "thrower");
    assert_eq!(lines[0].level, ConsoleLevel::Error);
    assert_eq!(
        lines[0].text,
        "onItemCaptured at thrower.js:3:10: TypeError: cannot read property 'y' of null"
    );
    assert_eq!(lines[1].text, "fine");
}

#[test]
fn an_agent_throwing_on_every_item_is_quarantined_until_reloaded() {
    let mut h = harness(Clock::System, |c| c.quarantine_after = 3);
    h.load("broken", "function onItemCaptured(d) { throw new Error('nope'); }");
    h.load("ok", "var n = 0; function onItemCaptured(d) { n++; }  function onHubAction(a) { console.log('ok saw', n); }");
    h.rt.on_items_captured((0..10).map(|i| http_get(i, "h", "/", 200)));
    let st = h.rt.agents();
    assert!(
        st[0].quarantined.as_deref().unwrap_or("").starts_with("3 consecutive faults"),
        "{st:?}"
    );
    assert_eq!(st[0].faults, 3);
    assert!(st[1].quarantined.is_none());
    let calls = h.rt.stats().iter().find(|s| s.agent == "broken").unwrap().calls;
    assert_eq!(calls, 3, "no calls once quarantined");
    h.rt.on_hub_action("x", &Value::Null);
    let lines = h.lines();
    assert!(lines.iter().any(|l| l.starts_with("quarantined (3 consecutive faults")), "{lines:?}");
    assert_eq!(lines.last().unwrap(), "ok saw 10");
    assert_eq!(h.rt.counters().quarantines, 1);
    h.load("broken", "function onItemCaptured(d) { console.log('fixed'); }");
    assert!(h.rt.agents()[0].quarantined.is_none());
    h.rt.on_item_captured(http_get(1, "h", "/", 200));
    assert_eq!(h.lines(), vec!["fixed"]);
}

#[test]
fn a_full_effect_queue_rejects_the_promise_at_once() {
    let mut h = harness(Clock::System, |c| c.effect_queue = 1);
    h.load(
        "flood",
        r#"vendor.webhook("GET", "http://127.0.0.1:9/").then(function () { console.log("first ok"); });
           vendor.webhook("GET", "http://127.0.0.1:9/").catch(function (e) { console.log("second", e.message); });"#,
    );
    // Nothing drained the queue: the second call was rejected before any
    // executor ran.
    assert_eq!(h.lines(), vec!["second vendor.webhook: effect queue full"]);
    assert_eq!(h.rt.counters().effects_rejected_full, 1);
    h.settle();
    assert_eq!(h.lines(), vec!["first ok"]);
}

#[test]
fn es5_strict_rejects_and_lax_mode_warns() {
    let mut h = h();
    let w =
        h.rt.load_agent("modern", "const f = (x) => x;\nfunction onItemCaptured(d) { f(d); }")
            .unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(h.rt.agents()[0].warnings.len(), 2);
    let mut s = harness(Clock::System, |c| c.es5_strict = true);
    let e = s.rt.load_agent("modern", "let x = 1;").unwrap_err();
    assert!(matches!(e, LoadError::NotEs5 { .. }));
    assert_eq!(e.to_string(), "modern.js: syntax beyond ES5 and scripting.es5Strict is on: 1:1: let declaration (beyond ES5)");
}

#[test]
fn stats_per_agent_and_hook() {
    let mut h = h();
    h.load(
        "s",
        "function onItemCaptured(d) { d.request.headers.host; } function onPacketCaptured(i) {}",
    );
    h.rt.on_items_captured((0..100).map(|i| http_get(i, "h", "/", 200)));
    h.rt.on_packets_captured((0..10).map(|i| packet(BASE_TS_NS + i, 60)));
    let stats = h.rt.stats();
    let item = stats.iter().find(|s| s.site == CallSite::Hook(Hook::ItemCaptured)).unwrap();
    assert_eq!((item.calls, item.errors, item.interrupts), (100, 0, 0));
    assert!(
        item.p50_ns > 0
            && item.p50_ns <= item.p99_ns
            && item.p99_ns <= item.p999_ns
            && item.p999_ns <= item.max_ns
    );
    assert!(item.sum_ns >= item.p50_ns * 50);
    let pk = stats.iter().find(|s| s.site == CallSite::Hook(Hook::PacketCaptured)).unwrap();
    assert_eq!(pk.calls, 10);
    assert!(stats.iter().any(|s| s.site == CallSite::Load));
    assert_eq!(h.rt.counters().items, 100);
}

#[test]
fn unanswered_request_and_binary_body() {
    let mut h = h();
    h.load("u", "function onItemCaptured(d) { console.log(JSON.stringify(d.response), d.response.status, d.error.type, d.request.method, d.request.postData.text.length); }");
    let body = "z".repeat(100);
    let req =
        format!("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    h.rt.on_item_captured(http_item(3, req.as_bytes(), None));
    assert_eq!(h.lines(), vec!["{} undefined pair-not-found POST 100"]);
    let mut small = harness(Clock::System, |c| c.max_body_bytes = 10);
    small.load("u", "function onItemCaptured(d) { console.log(d.request.postData.text); }");
    small.rt.on_item_captured(http_item(3, req.as_bytes(), None));
    assert_eq!(small.lines(), vec!["zzzzzzzzzz"], "text cut at maxBodyBytes");
}

// ---------------------------------------------------------------------
// The seed's complete example, verbatim.

// `examples/packets-per-minute.js` is the seed's text, unchanged.
const SEED_EXAMPLE: &str = include_str!("../../examples/packets-per-minute.js");

#[test]
fn seed_complete_example_runs_verbatim_on_a_fake_clock() {
    let mut h = harness(Clock::Manual, |_| {});
    // 22:13:20 UTC; the job is due at 22:14:00, then every minute.
    let start = BASE_TS_NS;
    h.rt.set_time(UNIX_EPOCH + Duration::from_nanos(start));
    h.load("log-packets", SEED_EXAMPLE);
    assert!(h.rt.wants_packets());
    assert_eq!(h.rt.next_job_due(), Some(at(1_700_000_040)));
    let mut expected = Vec::new();
    let mut ts = start;
    for minute in 0..3u64 {
        let boundary = 1_700_000_040 + 60 * minute;
        let (mut count, mut kb) = (0u64, 0f64);
        let mut batch = Vec::new();
        while ts < boundary * 1_000_000_000 {
            let len = 60 + ((ts / 7_000_000) % 1400) as u32;
            batch.push(packet(ts, len));
            count += 1;
            kb += f64::from(len) / 1000.0;
            ts += 137_000_000;
        }
        h.rt.on_packets_captured(batch);
        assert_eq!(h.rt.run_due_jobs(UNIX_EPOCH + Duration::from_secs(boundary)), 1);
        expected.push(format!("Captured packet count per minute: {count}"));
        expected.push(format!("Total KB captured per minute: {kb}"));
    }
    assert_eq!(h.lines(), expected);
}

// ---------------------------------------------------------------------
// Reuse of item objects

/// An item's objects show the next item only when no script kept or
/// changed them: whatever a script keeps (the item, its request, its
/// headers, a weak reference) keeps showing its own item, and what a script
/// wrote or froze never shows on a later item.
#[test]
fn item_objects_are_reused_only_when_no_script_kept_or_changed_them() {
    let mut h = h();
    h.load(
        "keeper",
        r#"
        var kept = [], reqs = [], heads = [], resps = [], protos = [], weak = new WeakMap(), refs = [], leaks = [], seen = [], first;
        function onItemCaptured(data) {
          if (data.protocol.name !== "http") { seen.push("dns " + data.request.questions[0].name); return; }
          var path = data.request.path, host = data.request.headers.host;
          seen.push(path + " " + host + " " + data.response.status);
          // What earlier items were given must not show on this one.
          if (weak.has(data)) leaks.push("weak-map key at " + path);
          if (data.note !== undefined) leaks.push("own property at " + path);
          if (data.request.x !== undefined) leaks.push("defined property at " + path);
          if (!Object.isExtensible(data.request.headers)) leaks.push("sealed headers at " + path);
          if (first === undefined) first = Object.getPrototypeOf(data);
          if (Object.getPrototypeOf(data) !== first) leaks.push("prototype at " + path);
          if (path === "/keep-item") kept.push(data);
          if (path === "/keep-request") reqs.push(data.request);
          if (path === "/keep-headers") heads.push(data.request.headers);
          if (path === "/keep-response") resps.push(data.response);
          if (path === "/keep-protocol") protos.push(data.protocol);
          if (path === "/weak-map") weak.set(data, path);
          if (path === "/weak-ref") refs.push([new WeakRef(data.request), host]);
          if (path === "/write") data.note = "written";
          if (path === "/define") Object.defineProperty(data.request, "x", { value: 1 });
          if (path === "/seal") Object.preventExtensions(data.request.headers);
          if (path === "/reparent") Object.setPrototypeOf(data, { custom: 1 });
        }
        function onHubAction() {
          console.log(JSON.stringify({
            kept: kept.map(function (d) { return d.request.path + " " + d.request.headers.host + " " + d.response.status; }),
            reqs: reqs.map(function (r) { return r.path + " " + r.headers.host; }),
            heads: heads.map(function (x) { return x.host; }),
            resps: resps.map(function (r) { return r.status; }),
            protos: protos.map(function (p) { return p.name + " " + p.abbr; }),
            refs: refs.map(function (p) { var r = p[0].deref(); return (r ? r.headers.host : "gone") + " " + p[1]; }),
            leaks: leaks, seen: seen }));
        }
    "#,
    );
    let paths = [
        // A DNS item follows each index 3 mod 7: `/keep-protocol` is one.
        "/a",
        "/keep-item",
        "/b",
        "/keep-request",
        "/c",
        "/keep-headers",
        "/d",
        "/weak-map",
        "/keep-response",
        "/weak-ref",
        "/keep-protocol",
        "/write",
        "/g",
        "/define",
        "/h",
        "/seal",
        "/i",
        "/reparent",
        "/j",
        "/k",
    ];
    let mut items = Vec::new();
    for round in 0..2u64 {
        for (i, p) in paths.iter().enumerate() {
            let n = round * 100 + i as u64;
            items.push(http_get(n, &format!("host-{n}"), p, 200 + n as u16));
            if i % 7 == 3 {
                // A DNS item in between: its request is no HTTP message.
                items.push(dns_item(1000 + n, 7, &format!("name-{n}.example"), [10, 0, 0, 1]));
            }
        }
    }
    let total = items.len() as u64;
    h.rt.on_items_captured(items);
    h.rt.on_hub_action("report", &json!({}));
    let out: Value = serde_json::from_str(h.lines().last().expect("report")).unwrap();

    assert_eq!(out["leaks"], json!([]), "{out}");
    let want_seen: Vec<String> = (0..2u64)
        .flat_map(|round| {
            paths.iter().enumerate().flat_map(move |(i, p)| {
                let n = round * 100 + i as u64;
                let mut v = vec![format!("{p} host-{n} {}", 200 + n)];
                if i % 7 == 3 {
                    v.push(format!("dns name-{n}.example"));
                }
                v
            })
        })
        .collect();
    assert_eq!(out["seen"], json!(want_seen));
    assert_eq!(out["kept"], json!(["/keep-item host-1 201", "/keep-item host-101 301"]));
    assert_eq!(out["reqs"], json!(["/keep-request host-3", "/keep-request host-103"]));
    assert_eq!(out["heads"], json!(["host-5", "host-105"]));
    assert_eq!(out["resps"], json!([208, 308]));
    assert_eq!(out["protos"], json!(["http HTTP", "http HTTP"]));
    // A weakly held request is the one it was, or gone; never another.
    for r in out["refs"].as_array().unwrap() {
        let (got, host) = r.as_str().unwrap().split_once(' ').unwrap();
        assert!(got == host || got == "gone", "{r}");
    }

    // And reuse did happen: most items were shown through the object of
    // the one before.
    let reused = h.rt.counters().objects_reused;
    assert!(h.rt.reuses_objects(), "the QuickJS layout check failed on this build");
    assert!(reused > total / 2 && reused < total, "{reused} of {total} reused");
}

/// The values the runtime makes plain own properties (`data.request`,
/// `request.headers` and the like, once a tree is reused) look to scripts
/// as they did before: listed once and in order, described the same, and
/// whatever a script does to them (assign, delete, redefine, keep) shows
/// on its item only.
#[test]
fn values_made_plain_look_the_same_and_never_leak_to_later_items() {
    let mut h = h();
    h.load(
        "plain",
        r#"
        var keys, reqKeys, kept = [], leaks = [], seen = [];
        function onItemCaptured(data) {
          if (data.protocol.name !== "http") { seen.push("dns " + data.request.questions[0].name); return; }
          var path = data.request.path;
          seen.push(path + " " + data.request.headers.host);
          var k = Object.keys(data).join(), rk = Object.keys(data.request).join();
          if (keys === undefined) { keys = k; reqKeys = rk; }
          if (k !== keys) leaks.push("keys at " + path + ": " + k);
          if (rk !== reqKeys) leaks.push("request keys at " + path + ": " + rk);
          if (JSON.stringify(data).split('"request":').length !== 2) leaks.push("request twice at " + path);
          var d = Object.getOwnPropertyDescriptor(data, "request");
          if (!(d.writable && d.enumerable && d.configurable)) leaks.push("descriptor at " + path);
          if (data.request !== data.request || !("request" in data) || !data.hasOwnProperty("headers") === false) leaks.push("identity at " + path);
          if (typeof data.request !== "object" || typeof data.request.headers !== "object") leaks.push("changed at " + path);
          var names = []; for (var n in data.request) names.push(n);
          if (names.join() !== reqKeys) leaks.push("for-in at " + path);
          if (path === "/assign") data.request = "replaced";
          if (path === "/assign-headers") data.request.headers = 5;
          if (path === "/delete-keep") { var r = data.request; delete data.request; kept.push(r); }
          if (path === "/delete-headers") delete data.request.headers;
          if (path === "/readonly") Object.defineProperty(data, "request", { writable: false });
          if (path === "/getter") Object.defineProperty(data.request, "headers", { get: function () { return { host: "fake" }; } });
          if (path === "/swap-keep") { kept.push(data.request); data.request = {}; }
          if (path === "/assign-same") data.request = data.request;
        }
        function onHubAction() {
          console.log(JSON.stringify({ leaks: leaks, seen: seen,
            kept: kept.map(function (r) { return r.path + " " + r.headers.host; }) }));
        }
    "#,
    );
    let paths = [
        "/a",
        "/b",
        "/assign",
        "/c",
        "/assign-headers",
        "/d",
        "/delete-keep",
        "/e",
        "/delete-headers",
        "/f",
        "/readonly",
        "/g",
        "/getter",
        "/h",
        "/swap-keep",
        "/i",
        "/assign-same",
        "/j",
        "/k",
        "/l",
    ];
    let mut items = Vec::new();
    let mut want_seen = Vec::new();
    for round in 0..3u64 {
        for (i, p) in paths.iter().enumerate() {
            let n = round * 100 + i as u64;
            items.push(http_get(n, &format!("host-{n}"), p, 200));
            want_seen.push(format!("{p} host-{n}"));
            if round == 1 && i % 5 == 4 {
                // A DNS item in between: its request is no HTTP message.
                items.push(dns_item(1000 + n, 7, &format!("name-{n}.example"), [10, 0, 0, 1]));
                want_seen.push(format!("dns name-{n}.example"));
            }
        }
    }
    let total = items.len() as u64;
    h.rt.on_items_captured(items);
    h.rt.on_hub_action("report", &json!({}));
    let out: Value = serde_json::from_str(h.lines().last().expect("report")).unwrap();
    assert_eq!(out["leaks"], json!([]), "{out}");
    assert_eq!(out["seen"], json!(want_seen));
    assert_eq!(
        out["kept"],
        json!([
            "/delete-keep host-6",
            "/swap-keep host-14",
            "/delete-keep host-106",
            "/swap-keep host-114",
            "/delete-keep host-206",
            "/swap-keep host-214"
        ])
    );
    let reused = h.rt.counters().objects_reused;
    assert!(h.rt.reuses_objects(), "the QuickJS layout check failed on this build");
    assert!(reused > total / 2 && reused < total, "{reused} of {total} reused");
}

/// Reused objects follow the item through every level a hook reads:
/// counts per host over many items, with the objects kept every so often.
#[test]
fn reused_objects_show_each_items_own_values() {
    let mut h = h();
    h.load(
        "counter",
        r#"
        var counts = {}, paths = {}, kept = [], n = 0;
        function onItemCaptured(data) {
          var host = data.request.headers.host;
          counts[host] = (counts[host] || 0) + 1;
          paths[data.request.path] = (paths[data.request.path] || 0) + data.response.status;
          if (n++ % 97 === 0) kept.push(data.request.headers);
        }
        // The counts are too many for one console line: the test sends
        // the ones it expects and gets back what differs.
        function onHubAction(action, want) {
          var diff = [];
          for (var k in want) if (counts[k] !== want[k]) diff.push(k + ": " + counts[k] + " != " + want[k]);
          for (var k in counts) if (!(k in want)) diff.push("unexpected " + k);
          console.log(JSON.stringify({ diff: diff, hosts: Object.keys(counts).length, paths: paths, kept: kept.map(function (x) { return x.host; }) }));
        }
    "#,
    );
    // Hosts repeat on even items; odd ones are all different (more than
    // the runtime remembers, so its memory of values fills and restarts),
    // some too long to be interned.
    let host = |i: u64| match i {
        _ if i.is_multiple_of(2) => format!("h{}", i % 13),
        _ if i.is_multiple_of(101) => format!("long-{i}-{}", "x".repeat(70)),
        _ => format!("u{i}"),
    };
    let items: Vec<_> = (0..3000u64)
        .map(|i| http_get(i, &host(i), &format!("/p{}", i % 5), 200 + (i % 3) as u16))
        .collect();
    let mut counts = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let mut kept = Vec::new();
    for i in 0..items.len() as u64 {
        let c = counts.entry(host(i)).or_insert(json!(0));
        *c = json!(c.as_u64().unwrap() + 1);
        let p = paths.entry(format!("/p{}", i % 5)).or_insert(json!(0));
        *p = json!(p.as_u64().unwrap() + 200 + i % 3);
        if i % 97 == 0 {
            kept.push(host(i));
        }
    }
    // Half one by one (as the inline sink hands them), half in batches:
    // the objects carry over from call to call.
    let (one_by_one, batched) = items.split_at(1500);
    for item in one_by_one {
        h.rt.on_item_captured(item.clone());
    }
    for chunk in batched.chunks(256) {
        h.rt.on_items_captured(chunk.to_vec());
    }
    let hosts = counts.len();
    h.rt.on_hub_action("report", &Value::Object(counts));
    let out: Value = serde_json::from_str(h.lines().last().expect("report")).unwrap();
    assert_eq!(out, json!({ "diff": [], "hosts": hosts, "paths": paths, "kept": kept }));
    // All but the first and those after a kept one.
    let reused = h.rt.counters().objects_reused;
    assert!(reused >= 3000 - 1 - 31, "{reused}");
}

/// What objects under `data` cached for one item (query strings, cookies,
/// bodies, names written through an object made from them) is not shown
/// for the next, when the tree goes on to it.
#[test]
fn reused_trees_let_go_of_what_they_cached_for_the_item_before() {
    let mut h = h();
    h.load(
        "cacher",
        r#"
        var seen = [];
        function onItemCaptured(data) {
          var req = data.request, headers = req.headers;
          var had = "mark" in headers;
          // Written through an object whose prototype is the headers:
          // the name is noted on them, for this item only.
          var derived = Object.create(headers);
          derived.mark = 1;
          seen.push([req.queryString.i, req.cookies.c, data.response.content.text, req.pathSegments.join("/"),
                     had, "mark" in headers].join(" "));
        }
        function onHubAction() { console.log(JSON.stringify(seen)); }
    "#,
    );
    let items: Vec<_> = (0..40u64)
        .map(|i| {
            let req = format!("GET /p/{i}?i={i} HTTP/1.1\r\nHost: h\r\nCookie: c=v{i}\r\n\r\n");
            let body = format!("{{\"n\":{i}}}");
            let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            http_item(i, req.as_bytes(), Some(resp.as_bytes()))
        })
        .collect();
    h.rt.on_items_captured(items);
    h.rt.on_hub_action("report", &json!({}));
    let out: Value = serde_json::from_str(h.lines().last().expect("report")).unwrap();
    let want: Vec<String> =
        (0..40u64).map(|i| format!("{i} v{i} {{\"n\":{i}}} p/{i} false true")).collect();
    assert_eq!(out, json!(want));
    assert_eq!(
        h.rt.counters().objects_reused,
        39,
        "every item after the first through the same objects"
    );
}

// ---------------------------------------------------------------------
// Hooks and helpers answered in the runtime (`crate::local`), item types.

#[test]
fn env_keys_are_bare_globals_replaced_with_the_env() {
    let mut h = harness(Clock::System, |c| {
        c.env.insert("console".into(), "not a console".into());
        c.env.insert("MIN_STATUS".into(), "400".into());
    });
    h.load(
        "e",
        r#"console.log(REGION === "eu-west-1", typeof API_TOKEN, MIN_STATUS, env.MIN_STATUS, typeof console.log);"#,
    );
    assert_eq!(h.lines(), vec!["true string 400 400 function"]);
    let mut env = std::collections::BTreeMap::new();
    env.insert("OTHER".to_string(), "x".to_string());
    h.rt.set_env(&env);
    h.load("f", r#"console.log(typeof REGION, OTHER);"#);
    assert!(h.lines().contains(&"undefined x".to_owned()));
}

#[test]
fn set_timeout_and_set_interval_run_on_the_runtime_clock_with_args() {
    let mut h = harness(Clock::Manual, |_| {});
    h.rt.set_time(at(1_700_000_000));
    h.load(
        "t",
        r#"
        var ticks = 0;
        setTimeout(function (a, b) { console.log("timeout", a, b); }, 3000, "x", 2);
        var gone = setTimeout(function () { console.log("cleared"); }, 1000);
        clearTimeout(gone);
        var iv = setInterval(function () { ticks++; console.log("tick", ticks); if (ticks === 3) clearInterval(iv); }, 1000);
        try { setTimeout("code", 10); } catch (e) { console.log(e.name); }
        "#,
    );
    assert_eq!(h.lines(), vec!["TypeError"]);
    for s in 1..=5 {
        while let Some(due) = h.rt.next_job_due().filter(|d| *d <= at(1_700_000_000 + s)) {
            h.rt.run_due_jobs(due);
        }
    }
    assert_eq!(h.lines(), vec!["tick 1", "tick 2", "timeout x 2", "tick 3"]);
    assert_eq!(h.rt.next_job_due(), None);
    assert_eq!(h.rt.counters().helper_argument_errors, 1);
}

#[test]
fn jobs_list_is_tags_and_the_scheduler_stops_and_starts() {
    let mut h = harness(Clock::Manual, |_| {});
    h.rt.set_time(at(1_700_000_000));
    h.load(
        "s",
        r#"
        function job(label, n) { console.log("ran", label, n); }
        jobs.schedule("Every Second", "* * * * * *", job, 0, "a", 1);
        console.log(JSON.stringify(jobs.list()), jobs.scheduler.isRunning());
        function onHubAction(action) {
          if (action === "stop") jobs.scheduler.stop();
          if (action === "start") jobs.scheduler.start();
          console.log("running", jobs.scheduler.isRunning());
        }
        "#,
    );
    assert_eq!(h.lines(), vec![r#"["every-second"] true"#]);
    h.rt.run_due_jobs(at(1_700_000_001));
    h.rt.on_hub_action("stop", &json!(null));
    assert_eq!(h.rt.next_job_due(), None);
    h.rt.run_due_jobs(at(1_700_000_002));
    h.rt.on_hub_action("start", &json!(null));
    h.rt.run_due_jobs(at(1_700_000_003));
    assert_eq!(h.lines(), vec!["ran a 1", "running false", "running true", "ran a 1"]);
}

#[test]
fn utils_json2yaml_hub_targeted_aggregation_sentiment_and_kfl() {
    let mut h = h();
    h.load(
        "u",
        r#"
        console.log(utils.json2Yaml(JSON.stringify({name: "api", ports: [80, 443]})));
        try { utils.json2Yaml("{nope"); } catch (e) { console.log(e.name, e.message.indexOf("not JSON") >= 0); }
        var t = JSON.parse(hub.targeted());
        console.log(typeof hub.targeted(), t.targets.length, t.excluded.length);
        aggregation.msg("AP0", "hello world");
        aggregation.json("AP1", "Interface", {key: 1, data: [2]});
        aggregation.jsonWithMsg("AP2", "Interface", {key: 3}, "with msg");
        var good = chatgpt.sentiment("This is great, I love it!");
        var bad = chatgpt.sentiment("This is terrible and I hate it.");
        console.log(good.pos > good.neg, good.compound > 0.5, bad.compound < -0.5, Object.keys(good).join(","));
        try { kfl.match("http", {}); } catch (e) { console.log(e instanceof Error, e.message); }
        console.log(kfl.validate("http"));
        "#,
    );
    assert_eq!(
        h.lines(),
        vec![
            "name: api\nports:\n- 80\n- 443\n",
            "TypeError true",
            "string 0 0",
            "AP0 hello world",
            r#"AP1 Interface={"data":[2],"key":1}"#,
            r#"AP2 with msg Interface={"key":3}"#,
            "true true true neg,neu,pos,compound",
            "true kfl.match: data must be an item a hook was given",
            "true",
        ]
    );
}

#[test]
fn on_log_call_gets_records_only_while_an_agent_defines_it() {
    use crate::effects::{LogDelivery, LogRecord};
    let mut h = harness(Clock::System, |c| c.log_queue = 2);
    let mb = h.rt.mailbox();
    let rec = |m: &str| LogRecord { level: "warning", msg: m.to_string() };
    assert_eq!(mb.log(rec("{}")), LogDelivery::NotWanted);
    h.load(
        "l",
        r#"function onLogCall(level, msg) { var r = JSON.parse(msg); console.log(level, r.message); }"#,
    );
    assert!(mb.wants_logs());
    assert_eq!(mb.log(rec(r#"{"message":"one"}"#)), LogDelivery::Sent);
    assert_eq!(mb.log(rec(r#"{"message":"two"}"#)), LogDelivery::Sent);
    assert_eq!(mb.log(rec(r#"{"message":"three"}"#)), LogDelivery::Full);
    h.rt.poll_completions();
    assert_eq!(h.lines(), vec!["warning one", "warning two"]);
    assert_eq!(h.rt.counters().log_records_dropped, 1);
    assert!(!crate::runtime::in_log_hook());
    h.rt.remove_agent("l");
    assert!(!mb.wants_logs());
}

#[test]
fn item_types_are_kubeshark_s() {
    let mut h = h();
    h.load(
        "i",
        r#"function onItemCaptured(d) {
          console.log(typeof d.src.port, typeof d.dst.port, typeof d.stream, d.elapsedTime,
                      Number.isInteger(d.elapsedTime), typeof d.request, typeof d.response);
          if (d.protocol.name === "dns")
            console.log(JSON.stringify(d.response.authorities), JSON.stringify(d.response.additionals));
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "a", "/", 200));
    h.rt.on_item_captured(dns_item(2, 7, "example.com", [10, 0, 0, 9]));
    assert_eq!(
        h.lines(),
        vec![
            "string string string 1500 true object object",
            "string string string 2000 true object object",
            "[] []",
        ]
    );
    let j = http_get(1, "a", "/", 200).to_json(&node());
    assert_eq!(j["elapsedTime"], 1500);
}

#[test]
fn wrapper_build_har_and_join_maps() {
    let mut h = h();
    h.load(
        "w",
        r#"
        var items = [];
        function onItemCaptured(d) {
          items.push(d);
          if (items.length < 2) return;
          var har = JSON.parse(wrapper.buildHAR(items));
          var e = har.log.entries[0];
          console.log(har.log.version, har.log.entries.length, e.request.method, e.request.url,
                      e.response.status, e.time, e.request.headers[0].name, e.serverIPAddress);
          console.log(JSON.stringify(wrapper.joinMaps({a: 1, b: "x"}, {a: 2, c: 3})));
          try { wrapper.buildHAR("nope"); } catch (err) { console.log(err.name); }
        }"#,
    );
    h.rt.on_item_captured(http_get(1, "a.example", "/x?y=1", 200));
    h.rt.on_item_captured(http_get(2, "b.example", "/z", 503));
    assert_eq!(
        h.lines(),
        vec!["1.2 2 GET /x?y=1 200 1.5 Host 10.0.0.2", r#"{"a":3,"b":"x","c":3}"#, "TypeError",]
    );
}
