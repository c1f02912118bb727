//! The hub's HTTP API over real HTTP on loopback: authentication on every
//! route, the script store surviving a restart (in-process and of the
//! `skua hub` binary), bad input, items as data (never markup), live
//! streams with filters, the worker link, jobs, workers, `hub.action` and
//! `/metrics`.

#[path = "support/hub.rs"]
mod hub_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use controlplane::hub::api::ROUTES;
use controlplane::hub::auth::Need;
use controlplane::hub::{HubEvent, JobOp};
use hub_support::*;
use serde_json::{json, Value};
use skua_suite::require;

const AGENT: &str = "var n = 0;\nfunction onItemCaptured(data) { n++; }\n";

fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_protected_route_needs_a_token_and_the_right_role() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let mut checked = 0;
    for r in ROUTES {
        let path = concrete(r.pattern);
        let body = (r.method != "GET").then_some("{}");
        let anon = hub_support::request(hub.addr, r.method, &path, None, body);
        if r.need == Need::Public {
            assert_ne!(anon.status, 401, "{} {} is public", r.method, r.pattern);
            continue;
        }
        assert_eq!(anon.status, 401, "{} {} without a token", r.method, r.pattern);
        assert!(anon.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        let wrong =
            hub_support::request(hub.addr, r.method, &path, Some("not-a-token-at-all-0000"), body);
        assert_eq!(wrong.status, 401, "{} {} with an unknown token", r.method, r.pattern);
        let read = hub_support::request(hub.addr, r.method, &path, Some(READ), body);
        let worker = hub_support::request(hub.addr, r.method, &path, Some(WORKER), body);
        match r.need {
            Need::Admin | Need::Worker | Need::Action => {
                assert_eq!(read.status, 403, "{} {} with a read-only token", r.method, r.pattern)
            }
            _ => assert_ne!(read.status, 403, "{} {} with a read-only token", r.method, r.pattern),
        }
        match r.need {
            Need::Read | Need::Admin => {
                assert_eq!(worker.status, 403, "{} {} with a worker token", r.method, r.pattern)
            }
            _ => assert_ne!(worker.status, 403, "{} {} with a worker token", r.method, r.pattern),
        }
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
    let m = hub.get("/metrics", Some(READ));
    assert!(m.body.contains("skua_hub_unauthorized_total "), "{}", m.body);
    assert!(m.body.contains("skua_hub_forbidden_total "));
}

#[test]
fn agents_env_and_state_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hub = TestHub::start(dir.path(), |_| {});
        let r = hub.send(
            "PUT",
            "/api/agents/counter",
            Some(ADMIN),
            &json!({ "source": AGENT }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["active"], true);
        let r = hub.send(
            "PUT",
            "/api/agents/quiet",
            Some(ADMIN),
            &json!({ "source": "var x = 1;", "active": false }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        // An agent that does not compile is refused with its line.
        let r = hub.send(
            "PUT",
            "/api/agents/broken",
            Some(ADMIN),
            &json!({ "source": "var a = 1;\nfunction (" }).to_string(),
        );
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.json()["line"], 2);
        assert_eq!(
            hub.send("POST", "/api/agents/counter/deactivate", Some(ADMIN), "").json()["active"],
            false
        );
        assert_eq!(
            hub.send("POST", "/api/agents/quiet/activate", Some(ADMIN), "").json()["active"],
            true
        );
        assert_eq!(
            hub.send("PUT", "/api/env/SLACK_TOKEN", Some(ADMIN), r#"{"value":"xoxb-very-secret"}"#)
                .status,
            204
        );
        assert_eq!(
            hub.send("PUT", "/api/env/bad-name", Some(ADMIN), r#"{"value":"v"}"#).status,
            400
        );
        assert_eq!(
            hub.send(
                "PUT",
                "/api/agents/..%2Fescape",
                Some(ADMIN),
                &json!({ "source": "" }).to_string()
            )
            .status,
            400
        );
    }
    let hub = TestHub::start(dir.path(), |_| {});
    let l = hub.get("/api/agents", Some(READ)).json();
    let names: Vec<(String, bool)> = l["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().into(), a["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, [("counter".to_string(), false), ("quiet".to_string(), true)]);
    let a = hub.get("/api/agents/counter", Some(READ)).json();
    assert_eq!(a["source"], AGENT);
    // Env is write-only: names, never values, whatever the role.
    for t in [READ, ADMIN] {
        let e = hub.get("/api/env", Some(t));
        assert_eq!(e.json()["names"], json!(["SLACK_TOKEN"]));
        assert!(!e.body.contains("xoxb"));
    }
    assert_eq!(hub.send("DELETE", "/api/agents/counter", Some(ADMIN), "").status, 204);
    assert_eq!(hub.send("DELETE", "/api/agents/counter", Some(ADMIN), "").status, 404);
    assert_eq!(hub.get("/api/agents/counter", Some(READ)).status, 404);
    assert_eq!(hub.send("DELETE", "/api/env/SLACK_TOKEN", Some(ADMIN), "").status, 204);
    assert_eq!(hub.get("/readyz", None).json()["agents"], 1);
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| c.max_body_bytes = 4096);
    let r = hub.send("PUT", "/api/agents/a", Some(ADMIN), "{not json");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("invalid JSON body"));
    assert_eq!(
        hub.send("PUT", "/api/agents/a", Some(ADMIN), r#"{"source":"","colour":1}"#).status,
        400
    );
    let big = json!({ "source": "x".repeat(10_000) }).to_string();
    let r = hub.send("PUT", "/api/agents/a", Some(ADMIN), &big);
    assert_eq!(r.status, 413);
    assert!(r.body.contains("hub.max_body_bytes"));
    let r = hub.get("/api/items?filter=colour%3Dred", Some(READ));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown field `colour`"));
    assert_eq!(hub.get("/api/items?limit=lots", Some(READ)).status, 400);
    assert_eq!(hub.send("PATCH", "/api/agents/a", Some(ADMIN), "{}").status, 405);
    assert_eq!(hub.get("/api/nothing", Some(READ)).status, 404);
    assert_eq!(hub.send("POST", "/api/link/items", Some(WORKER), "[1]").status, 400);
    assert_eq!(hub.send("POST", "/api/hub/action", Some(WORKER), r#"{"action":""}"#).status, 400);
    assert_eq!(hub.send("POST", "/api/link/stats", Some(WORKER), r#"{"name":""}"#).status, 400);
    assert_eq!(hub.get("/api/link/events", Some(WORKER)).status, 400);
}

fn item(i: u32, url: &str, status: u16) -> Value {
    json!({
        "id": format!("w1/{i}-0"), "index": 0, "stream": i.to_string(),
        "worker": {"ip": "", "name": "w1"}, "node": {"ip": "", "name": "w1"},
        "protocol": {"name": "http", "version": "1.1", "abbr": "HTTP", "longName": "Hypertext Transfer Protocol -- HTTP/1.1", "layer4": "tcp", "layer3": "ipv4"},
        "src": {"ip": "10.0.0.1", "port": "40000", "name": "", "namespace": ""},
        "dst": {"ip": "10.0.0.2", "port": "80", "name": "api", "namespace": "prod"},
        "timestamp": 1_700_000_000_000u64 + i as u64, "startTime": "2023-11-14T22:13:20.000Z", "elapsedTime": 1.5,
        "request": {"method": "GET", "url": url, "path": url, "headers": {"Host": "api.example", "X-Evil": "<img src=x onerror=alert(1)>"}},
        "response": {"status": status, "statusText": "", "headers": {"Content-Type": "text/html"}, "content": {"text": "<script>alert(2)</script>"}},
        "requestSize": 100, "responseSize": 200, "size": 300, "passed": false, "failed": false, "error": null
    })
}

#[test]
fn items_are_served_as_data_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| c.items_capacity = 50);
    let xss = "/search?q=<script>alert(1)</script>";
    let batch: Vec<Value> = (0..60)
        .map(|i| item(i, if i == 59 { xss } else { "/ok" }, if i % 10 == 0 { 503 } else { 200 }))
        .collect();
    let r = hub.send("POST", "/api/link/items", Some(WORKER), &Value::from(batch).to_string());
    assert_eq!(r.status, 202, "{}", r.body);

    let r = hub.get("/api/items?limit=1000", Some(READ));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let v = r.json();
    assert_eq!(v["items"].as_array().unwrap().len(), 50, "the ring holds items_capacity");
    assert_eq!(v["items"][0]["id"], "w1/10-0", "oldest first, the first ten evicted");
    // The payloads come back as the JSON strings they were, not as markup.
    let last = &v["items"][49];
    assert_eq!(last["request"]["url"], xss);
    assert_eq!(last["request"]["headers"]["X-Evil"], "<img src=x onerror=alert(1)>");

    let one = hub.get("/api/items/w1%2F59-0", Some(READ));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["request"]["url"], xss);
    assert_eq!(hub.get("/api/items/w1%2F0-0", Some(READ)).status, 404, "evicted");

    let f = |q: &str| {
        hub.get(&format!("/api/items?filter={q}&limit=1000"), Some(READ)).json()["items"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(f("status%3E%3D500"), 5);
    assert_eq!(f("status%3E%3D500%20path~%2Fok"), 5);
    assert_eq!(f("url~script"), 1);
    assert_eq!(f("protocol==dns"), 0);
    assert_eq!(
        hub.get("/api/items?limit=3", Some(READ)).json()["items"].as_array().unwrap().len(),
        3
    );
    let m = hub.get("/metrics", Some(READ)).body;
    assert!(m.contains("skua_hub_items_published_total 60\n"), "{m}");
    assert!(m.contains("skua_hub_items_evicted_total 10\n"));
}

#[test]
fn live_streams_follow_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let h = hub.handle();
    h.publish_item(item(1, "/before", 500));
    let mut s = Stream::open(hub.addr, "/api/items/stream?filter=status%3E%3D500&backlog=10", READ);
    s.wait_for("/before", Duration::from_secs(5));
    assert!(s.seen.contains("text/event-stream"));
    h.publish_item(item(2, "/fine", 200));
    h.publish_item(item(3, "/broken", 502));
    s.wait_for("/broken", Duration::from_secs(5));
    assert!(!s.seen.contains("/fine"));
    // One event per item: its name, the JSON on one data line, the ring's
    // sequence number as the id.
    assert!(s.seen.contains("event: item\ndata: {"), "{}", s.seen);
    assert!(s.seen.contains("\"url\":\"/broken\"") && s.seen.contains("\nid: 2\n"), "{}", s.seen);

    let mut c = Stream::open(hub.addr, "/api/console/stream", ADMIN);
    std::thread::sleep(Duration::from_millis(200));
    let line = scripting::ConsoleLine {
        agent: "a".into(),
        node: "w1".into(),
        runtime: scripting::RuntimeId(0),
        level: scripting::ConsoleLevel::Log,
        text: "hello <b>there</b>".into(),
        ts: std::time::SystemTime::now(),
    };
    h.publish_console_line(&line);
    c.wait_for("hello <b>there</b>", Duration::from_secs(5));
    assert_eq!(hub.get("/api/console", Some(ADMIN)).json()["lines"][0]["runtime"], "rt0");
}

#[test]
fn too_many_streams_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| c.max_sse_clients = 1);
    let mut s = Stream::open(hub.addr, "/api/items/stream", READ);
    s.wait_for("200 OK", Duration::from_secs(5));
    assert_eq!(hub.get("/api/items/stream", Some(READ)).status, 503);
    drop(s);
    assert_eq!(hub.handle().counters().refused_streams("viewer", "full"), 1);
    // The slot comes back once the hub notices the client left.
    let ok = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        hub.handle().streams_open().0 == 0
    });
    assert!(ok, "the slot came back");
}

#[test]
fn worker_link_gets_snapshot_changes_and_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    hub.send("PUT", "/api/agents/first", Some(ADMIN), &json!({ "source": AGENT }).to_string());
    hub.send("PUT", "/api/env/WEBHOOK_URL", Some(ADMIN), r#"{"value":"http://127.0.0.1:1/hook"}"#);
    let mut s = Stream::open(hub.addr, "/api/link/events?worker=w1", WORKER);
    // Only a worker ever receives env values: it needs them to run agents.
    s.wait_for("event: snapshot", Duration::from_secs(5));
    s.wait_for("http://127.0.0.1:1/hook", Duration::from_secs(5));
    hub.send("PUT", "/api/agents/second", Some(ADMIN), &json!({ "source": AGENT }).to_string());
    s.wait_for("event: agentChanged", Duration::from_secs(5));
    hub.send("POST", "/api/agents/second/deactivate", Some(ADMIN), "");
    s.wait_for("\"active\":false", Duration::from_secs(5));
    hub.send("DELETE", "/api/agents/second", Some(ADMIN), "");
    s.wait_for("event: agentRemoved", Duration::from_secs(5));
    assert_eq!(hub.send("POST", "/api/jobs/other-job/run?worker=w2", Some(ADMIN), "").status, 202);
    assert_eq!(hub.send("DELETE", "/api/jobs/dns-report?worker=w1", Some(ADMIN), "").status, 202);
    s.wait_for("dns-report", Duration::from_secs(5));
    assert!(!s.seen.contains("other-job"), "a job command for w2 reached w1");

    let report = json!({
        "name": "w1", "version": "0.1.0", "stats": {"packets": 10},
        "jobs": [{"tag": "dns-report", "cron": "0 * * * * *", "agent": "top-dns-names", "limit": 0, "runs": 3, "nextRun": 1700000000000u64}]
    });
    assert_eq!(hub.send("POST", "/api/link/stats", Some(WORKER), &report.to_string()).status, 204);
    let w = hub.get("/api/workers", Some(READ)).json();
    assert_eq!(w["workers"][0]["name"], "w1");
    assert_eq!(w["workers"][0]["online"], true);
    let j = hub.get("/api/jobs", Some(READ)).json();
    assert_eq!(j["jobs"][0]["worker"], "w1");
    assert_eq!(j["jobs"][0]["runs"], 3);
}

#[test]
fn hub_action_reaches_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let mut rx = hub.handle().subscribe();
    let r = hub.send(
        "POST",
        "/api/hub/action",
        Some(WORKER),
        r#"{"action":"dns-counts","object":{"a.example":3},"from":"w1"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["delivered"], 1);
    let ev = rx.try_recv().unwrap();
    assert_eq!(
        ev,
        HubEvent::HubAction {
            from: "w1".into(),
            action: "dns-counts".into(),
            object: json!({"a.example": 3})
        }
    );
    hub.handle().job_command(None, None, JobOp::Run);
    assert!(matches!(
        rx.try_recv().unwrap(),
        HubEvent::Job { worker: None, tag: None, op: JobOp::Run }
    ));
}

#[test]
fn dashboard_and_openapi_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let page = hub.get("/", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>skua hub</title>"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(
        hub.get("/app.js", None).header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let ex = hub.get("/api/examples", Some(READ)).json();
    assert!(ex["examples"].as_array().unwrap().iter().any(|e| e["name"] == "top-dns-names"));
    let api = hub.get("/api/openapi.json", Some(READ)).json();
    assert_eq!(api["openapi"], "3.1.0");
    assert_eq!(hub.get("/healthz", None).status, 200);
}

#[test]
fn hub_metrics_pass_promtool() {
    let promtool = require!(
        Some("/usr/bin/promtool").filter(|p| std::path::Path::new(p).exists()),
        "promtool (Debian package prometheus)"
    );
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    hub.handle().publish_item(item(1, "/", 200));
    let text = hub.get("/metrics", Some(READ)).body;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "{said}\n{text}");
}

/// Starts `skua hub` on a free port; returns the child, its address and
/// the admin token it printed.
fn spawn_skua_hub(store: &std::path::Path) -> (std::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["hub", "--listen", "127.0.0.1:0", "--store", store.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut addr, mut token) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split_once("hub on http://").map(|(_, r)| r) {
            addr = rest.split(' ').next().unwrap().to_string();
        }
        if let Some(t) =
            line.split_once("no hub tokens configured; generated admin token: ").map(|(_, r)| r)
        {
            token = t.to_string();
            break;
        }
    }
    assert!(!addr.is_empty() && token.len() == 64, "{addr} {token}");
    // Keep draining: a closed stderr would fail the hub's next line.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr, token)
}

fn stop(mut child: std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn skua_hub_binary_keeps_agents_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, token) = spawn_skua_hub(dir.path());
    let addr = addr.parse().unwrap();
    let r = hub_support::request(
        addr,
        "PUT",
        "/api/agents/kept",
        Some(&token),
        Some(&json!({ "source": AGENT }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(hub_support::request(addr, "GET", "/api/agents", None, None).status, 401);
    stop(child);

    let (child, addr2, token2) = spawn_skua_hub(dir.path());
    assert_ne!(token, token2, "a fresh token each start");
    let r = hub_support::request(
        addr2.parse().unwrap(),
        "GET",
        "/api/agents/kept",
        Some(&token2),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["source"], AGENT);
    stop(child);
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hub_side_agents_get_hub_actions_and_run_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let summer = r#"var total = 0;
function onHubAction(action, object) { if (action === "add") { total += object.n; console.log("total " + total); } }
jobs.schedule("yearly", "0 0 0 1 1 *", function () { console.log("yearly ran on " + utils.nodeName()); });
"#;
    assert_eq!(
        hub.send(
            "PUT",
            "/api/agents/summer",
            Some(ADMIN),
            &json!({ "source": summer }).to_string()
        )
        .status,
        200
    );
    let (rt, _data) = hub_runtime(&hub);
    let console = || hub.get("/api/console?limit=1000", Some(ADMIN)).body;
    let hub_jobs = || {
        hub.get("/api/jobs", Some(READ)).json()["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["worker"] == "hub")
            .count()
    };
    eventually("the hub's job in the jobs view", || hub_jobs() == 1);
    for _ in 0..2 {
        assert_eq!(
            hub.send(
                "POST",
                "/api/hub/action",
                Some(WORKER),
                r#"{"action":"add","object":{"n":2}}"#
            )
            .status,
            202
        );
    }
    eventually("onHubAction on the hub", || console().contains("total 4"));
    assert_eq!(hub.send("POST", "/api/jobs/yearly/run?worker=hub", Some(ADMIN), "").status, 202);
    eventually("the job run", || console().contains("yearly ran on hub"));
    assert_eq!(hub.send("DELETE", "/api/jobs/yearly?worker=hub", Some(ADMIN), "").status, 202);
    eventually("the job removed", || hub_jobs() == 0);
    // Saved after start: loaded; deactivated: unloaded; a broken save never reaches it.
    let late = "function onHubAction(a, o) { console.log('late ' + a); }";
    hub.send("PUT", "/api/agents/late", Some(ADMIN), &json!({ "source": late }).to_string());
    hub.send("POST", "/api/hub/action", Some(ADMIN), r#"{"action":"ping"}"#);
    eventually("the late agent", || console().contains("late ping"));
    hub.send("POST", "/api/agents/late/deactivate", Some(ADMIN), "");
    hub.send("POST", "/api/hub/action", Some(ADMIN), r#"{"action":"pong"}"#);
    hub.send("POST", "/api/hub/action", Some(ADMIN), r#"{"action":"add","object":{"n":1}}"#);
    eventually("the action after deactivation", || console().contains("total 5"));
    assert!(!console().contains("late pong"));
    let w = hub.get("/api/workers", Some(READ)).json();
    assert!(w["workers"].as_array().unwrap().iter().any(|w| w["name"] == "hub"));
    rt.shutdown();
}

/// `onItemQueried` on the hub: while a hub agent defines it, items pass
/// through it on their way in, so queries (and streams) show what it
/// returns; `test.pass` colours an item; removing the agent stops it.
#[test]
fn hub_on_item_queried_shapes_items_as_they_come_in() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let shaper = r#"function onItemQueried(data) {
  if (data.response && data.response.status >= 500) return test.pass(data);
  data.request.headers["X-Seen-By"] = "hub";
  return data;
}"#;
    assert_eq!(
        hub.send(
            "PUT",
            "/api/agents/shaper",
            Some(ADMIN),
            &json!({ "source": shaper }).to_string()
        )
        .status,
        200
    );
    let (rt, _data) = hub_runtime(&hub);
    // Once the runtime has loaded the agent it routes items through it.
    let h = hub.handle();
    eventually("items routed through onItemQueried", || {
        h.publish_item(item(1, "/probe", 200));
        hub.get("/api/items?limit=1", Some(READ)).json()["items"][0]["request"]["headers"]
            ["X-Seen-By"]
            == "hub"
    });
    h.publish_item(item(2, "/boom", 503));
    eventually("the 5xx item coloured", || {
        let items = hub.get("/api/items?limit=1", Some(READ)).json();
        items["items"][0]["request"]["url"] == "/boom" && items["items"][0]["passed"] == true
    });
    assert_eq!(hub.send("DELETE", "/api/agents/shaper", Some(ADMIN), "").status, 204);
    eventually("items straight in again", || {
        h.publish_item(item(3, "/plain", 200));
        let items = hub.get("/api/items?limit=1", Some(READ)).json();
        items["items"][0]["request"]["url"] == "/plain"
            && items["items"][0]["request"]["headers"]["X-Seen-By"].is_null()
    });
    rt.shutdown();
}

#[test]
fn pod_events_reach_hub_agents_and_no_worker_link() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let agent = "function onPodEvent(event, pod) { console.log('pod ' + event + ' ' + pod.metadata.name); }";
    assert_eq!(
        hub.send("PUT", "/api/agents/pods", Some(ADMIN), &json!({ "source": agent }).to_string())
            .status,
        200
    );
    let mut link = hub.handle().subscribe();
    let (rt, _data) = hub_runtime(&hub);
    // What the hub's pod watcher hands over (a fake watcher).
    let event = scripting::RuntimeEvent::PodEvent {
        event: "CRASHED".into(),
        pod: json!({"metadata": {"name": "api-1", "namespace": "shop"}}),
    };
    assert!(rt.inbox().deliver(&event), "start returns with the runtime's mailbox registered");
    eventually("onPodEvent on the hub", || {
        hub.get("/api/console?limit=100", Some(ADMIN)).body.contains("pod CRASHED api-1")
    });
    // Worker links follow the hub's events: no pod event among them.
    while let Ok(e) = link.try_recv() {
        assert!(matches!(e, HubEvent::AgentChanged { .. }), "{e:?}");
    }
    rt.shutdown();
}

#[test]
fn changes_made_around_the_hub_are_announced_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| c.store_poll_ms = 0);
    let h = hub.handle();
    assert_eq!(
        hub.send("PUT", "/api/agents/a", Some(ADMIN), &json!({ "source": AGENT }).to_string())
            .status,
        200
    );
    assert_eq!(h.resync_store().unwrap(), 0, "the first look records");
    let mut link = h.subscribe();
    // Saved through the hub: announced by the save, not again by a look.
    assert_eq!(
        hub.send("PUT", "/api/agents/b", Some(ADMIN), &json!({ "source": AGENT }).to_string())
            .status,
        200
    );
    assert!(matches!(link.try_recv(), Ok(HubEvent::AgentChanged { agent }) if agent.name == "b"));
    assert_eq!(h.resync_store().unwrap(), 0);
    // Edited by hand: a look announces it, once.
    std::fs::write(dir.path().join("agents/a.js"), "var edited;").unwrap();
    std::fs::remove_file(dir.path().join("agents/b.js")).unwrap();
    assert_eq!(h.resync_store().unwrap(), 2);
    assert!(
        matches!(link.try_recv(), Ok(HubEvent::AgentChanged { agent }) if agent.source == "var edited;")
    );
    assert!(matches!(link.try_recv(), Ok(HubEvent::AgentRemoved { name }) if name == "b"));
    assert_eq!(h.resync_store().unwrap(), 0);
}
