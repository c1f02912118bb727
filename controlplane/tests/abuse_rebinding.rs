//! Issue 30, fault 5: a web page in a browser on the hub's host cannot use
//! the hub through that browser.
//!
//! What is sent, what bound holds, what counter moves
//! (`skua_hub_requests_refused_total{reason}`):
//!
//! - `auth_none_binds_loopback_only`: `hub.auth: none` on `0.0.0.0` or a
//!   LAN address is refused at start (the config error names `hub.auth`),
//!   from the library and from `skua hub`.
//! - `dns_rebinding_is_refused`: with `auth: none`, requests carrying the
//!   attacker's name in `Host` (what a rebound page sends) get 403 on every
//!   route, the dashboard's files included (`reason="host"`); loopback
//!   names pass.
//! - `cross_site_requests_are_refused`: a foreign `Origin` (or `null`) is
//!   403 in every auth mode (`reason="origin"`), a state change without a
//!   JSON content type is 415 with `auth: none` (`reason="content_type"`),
//!   a JSON body sent as `text/plain` is 415 in every mode; nothing is
//!   created, activated, run or delivered.
//! - `a_browser_page_cannot_reach_the_hub`: the same attacks from a real
//!   page in headless Chromium ("simple" cross-site POSTs with no-cors
//!   fetches: `hub.action`, a job run, an activation; and requests to a
//!   name that resolves to 127.0.0.1, as after rebinding); the hub's store
//!   and its subscribers see nothing.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/hub.rs"]
mod hub_support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use controlplane::hub::{AuthMode, DirStore, HubConfig, HubEvent, HubServer};
use hub_support::*;
use serde_json::json;

const AGENT: &str = r#"{"source":"var pwned = 1;"}"#;

fn none_hub(dir: &Path) -> TestHub {
    TestHub::start(dir, |c| {
        c.auth = AuthMode::None;
        c.admin_tokens.clear();
        c.read_only_tokens.clear();
        c.worker_tokens.clear();
    })
}

fn refused(hub: &TestHub, reason: &str) -> u64 {
    // (With auth none any token is accepted.)
    let m = hub.get("/metrics", Some(ADMIN)).body;
    metric(&m, &format!("skua_hub_requests_refused_total{{reason=\"{reason}\"}}"))
}

/// No hub action and no job command reached the hub's subscribers.
fn nothing_ran(heard: &mut tokio::sync::broadcast::Receiver<HubEvent>, what: &str) {
    while let Ok(e) = heard.try_recv() {
        let ran = matches!(e, HubEvent::HubAction { .. } | HubEvent::Job { .. });
        assert!(!ran, "{what}: {e:?} got through");
    }
}

#[test]
fn auth_none_binds_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8899"] {
        let cfg = HubConfig { listen: listen.into(), auth: AuthMode::None, ..Default::default() };
        let store = std::sync::Arc::new(DirStore::open(dir.path()).unwrap());
        let err = HubServer::start(&cfg, false, store, rt.handle()).err().expect(listen);
        assert!(err.to_string().contains("hub.auth"), "{listen}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["hub", "--listen", "0.0.0.0:0", "--store", dir.path().to_str().unwrap()])
        .args(["--set", "hub.auth=none"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("hub.auth") && said.contains("loopback"), "{said}");
}

#[test]
fn dns_rebinding_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = none_hub(dir.path());
    let port = hub.addr.port();
    let evil = format!("evil.example:{port}");
    for (method, path, body) in [
        ("GET", "/", None),
        ("GET", "/app.js", None),
        ("GET", "/api/agents", None),
        ("GET", "/api/console", None),
        ("PUT", "/api/agents/pwn", Some(AGENT)),
        ("POST", "/api/hub/action", Some(r#"{"action":"x"}"#)),
    ] {
        let mut headers = vec![("Host", evil.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = request_with(hub.addr, method, path, None, &headers, body);
        assert_eq!(r.status, 403, "{method} {path} with Host {evil}: {}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains("hub.allowed_hosts"));
    }
    assert_eq!(refused(&hub, "host"), 6);
    // Loopback names are the hub's own.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "[::1]".to_string()] {
        let r =
            request_with(hub.addr, "GET", "/api/agents", None, &[("Host", host.as_str())], None);
        assert_eq!(r.status, 200, "Host {host}");
    }
    assert_eq!(hub.get("/api/agents/pwn", None).status, 404, "nothing was created");
}

#[test]
fn cross_site_requests_are_refused() {
    for mode in [AuthMode::None, AuthMode::Tokens] {
        let dir = tempfile::tempdir().unwrap();
        let hub = if mode == AuthMode::None {
            none_hub(dir.path())
        } else {
            TestHub::start(dir.path(), |_| {})
        };
        let token = (mode == AuthMode::Tokens).then_some(ADMIN);
        assert_eq!(
            hub.send("PUT", "/api/agents/quiet", token, r#"{"source":"var q;","active":false}"#)
                .status,
            200
        );
        let mut heard = hub.handle().subscribe();
        let host = hub.addr.to_string();
        let same = format!("http://{host}");
        let send = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>| {
            let mut all = vec![("Host", host.as_str())];
            all.extend_from_slice(headers);
            request_with(hub.addr, method, path, token, &all, body)
        };
        // A foreign page's requests, whatever their content type.
        for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
            for (method, path, body) in [
                ("PUT", "/api/agents/pwn", Some(AGENT)),
                ("POST", "/api/agents/quiet/activate", None),
                ("POST", "/api/jobs/*/run", None),
                ("POST", "/api/hub/action", Some(r#"{"action":"x"}"#)),
                ("GET", "/api/agents", None),
            ] {
                let r = send(
                    method,
                    path,
                    &[("Origin", origin), ("Content-Type", "application/json")],
                    body,
                );
                assert_eq!(r.status, 403, "{mode:?} {method} {path} from {origin}: {}", r.body);
            }
        }
        assert_eq!(refused(&hub, "origin"), 15);
        // A JSON body as text/plain (a "simple" request): 415 in every mode.
        let r = send("PUT", "/api/agents/pwn", &[("Content-Type", "text/plain")], Some(AGENT));
        assert_eq!(r.status, 415, "{mode:?}: {}", r.body);
        let r = send(
            "POST",
            "/api/hub/action",
            &[("Content-Type", "text/plain")],
            Some(r#"{"action":"x"}"#),
        );
        assert_eq!(r.status, 415, "{mode:?}: {}", r.body);
        // A body-less state change without the JSON content type (an old
        // browser's form post, no Origin): refused with auth none.
        let r = send(
            "POST",
            "/api/agents/quiet/activate",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            None,
        );
        if mode == AuthMode::None {
            assert_eq!(r.status, 415, "{}", r.body);
            assert_eq!(refused(&hub, "content_type"), 3, "the two text/plain bodies and this");
        } else {
            assert_eq!(r.status, 200, "tokens: a form cannot carry the bearer token");
            hub.send("POST", "/api/agents/quiet/deactivate", token, "");
        }
        let agent = hub.get("/api/agents/quiet", token).json();
        assert_eq!(agent["active"], false, "{mode:?}: nothing was activated");
        assert_eq!(hub.get("/api/agents/pwn", token).status, 404, "{mode:?}: nothing was created");
        nothing_ran(&mut heard, &format!("{mode:?}"));
        // The hub's own pages (same origin) go through.
        let r = send(
            "PUT",
            "/api/agents/mine",
            &[("Origin", same.as_str()), ("Content-Type", "application/json")],
            Some(AGENT),
        );
        assert_eq!(r.status, 200, "{mode:?}: {}", r.body);
    }
    // A listed origin (a dashboard behind another name) passes.
    let dir = tempfile::tempdir().unwrap();
    let hub =
        TestHub::start(dir.path(), |c| c.allowed_origins = vec!["https://dash.example".into()]);
    let host = hub.addr.to_string();
    let r = request_with(
        hub.addr,
        "GET",
        "/api/agents",
        Some(READ),
        &[("Host", host.as_str()), ("Origin", "https://dash.example")],
        None,
    );
    assert_eq!(r.status, 200);
}

/// A one-page web server (the attacker's), on its own thread.
fn serve_page(html: String) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    (addr, t)
}

#[test]
fn a_browser_page_cannot_reach_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = none_hub(dir.path());
    let hub_port = hub.addr.port();
    let mut heard = hub.handle().subscribe();
    // The attacker's page: simple cross-site POSTs, and, served from a name
    // that resolves to 127.0.0.1, same-"origin" requests after rebinding.
    let page = format!(
        r#"<!doctype html><title>cat pictures</title><script>
var hub = "http://127.0.0.1:{hub_port}";
var done = 0, results = [];
function note(what, p) {{ p.then(function (r) {{ results.push(what + " " + r.status); }}, function (e) {{ results.push(what + " failed"); }}).then(function () {{ done++; }}); }}
note("simple-job-run", fetch(hub + "/api/jobs/*/run", {{ method: "POST", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }}, body: "x" }}));
note("simple-action", fetch(hub + "/api/hub/action", {{ method: "POST", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }}, body: '{{"action":"pwn"}}' }}));
note("form-activate", fetch(hub + "/api/agents/quiet/activate", {{ method: "POST", mode: "no-cors" }}));
note("rebound-put", fetch("http://rebound.example:{hub_port}/api/agents/pwn2", {{ method: "PUT", headers: {{ "Content-Type": "application/json" }}, body: '{{"source":"var pwned;"}}' }}));
note("rebound-read", fetch("http://rebound.example:{hub_port}/api/agents"));
</script>"#
    );
    let (page_addr, _server) = serve_page(page);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abuse-rebinding");
    let rules = format!(
        "--host-resolver-rules=MAP evil.example 127.0.0.1:{}, MAP rebound.example 127.0.0.1",
        page_addr.port()
    );
    let Some(d) = browser::Driver::start(&shots, &[rules.as_str()]) else { return };
    assert_eq!(
        hub.send("PUT", "/api/agents/quiet", None, r#"{"source":"var q;","active":false}"#).status,
        200
    );
    let before = hub.get("/metrics", None).body;
    d.call("POST", "/url", json!({"url": "http://evil.example/"}));
    d.wait("the page's requests", "return window.done === 5");
    let results = d.js("return results.join(', ')");
    eprintln!("the attacker page saw: {results}");
    d.shot("1-attacker-page");
    let after = hub.get("/metrics", None).body;
    let moved = |reason: &str| {
        let s = format!("skua_hub_requests_refused_total{{reason=\"{reason}\"}}");
        metric(&after, &s) - metric(&before, &s)
    };
    assert!(moved("origin") >= 3, "the cross-site requests were refused as such:\n{after}");
    assert!(moved("host") >= 1, "the rebound requests were refused by Host");
    assert_eq!(hub.get("/api/agents/pwn2", None).status, 404);
    assert_eq!(hub.get("/api/agents/quiet", None).json()["active"], false);
    nothing_ran(&mut heard, "the browser");
}
