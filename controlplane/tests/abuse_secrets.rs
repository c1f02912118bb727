//! Issue 30, fault 8 (hub): secrets an agent prints in a derived form
//! (`env.SECRET.toUpperCase()`, reversed, base64, split) reach no read
//! token.
//!
//! Decision (docs/architecture.md, "Secrets"): masking derived forms cannot
//! be complete, so agents' console lines are for admin tokens only. What is
//! sent: an agent printing the secret in five forms, run by the hub's own
//! runtime; then every route a read token may call. What holds: no answer
//! to a read token contains any form (the console routes are 403), an
//! admin sees the lines (the literal value masked), env values never leave
//! through the API. What moves: `skua_hub_forbidden_total`.

#[path = "support/hub.rs"]
mod hub_support;

use std::time::{Duration, Instant};

use controlplane::hub::api::ROUTES;
use controlplane::hub::auth::Need;
use hub_support::*;
use serde_json::json;

const SECRET: &str = "xoxb-Very-Secret-42";

#[test]
fn derived_secrets_reach_no_read_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    assert_eq!(
        hub.send("PUT", "/api/env/SECRET", Some(ADMIN), &json!({"value": SECRET}).to_string())
            .status,
        204
    );
    let leaky = r#"
console.log("literal " + env.SECRET);
console.log("upper " + env.SECRET.toUpperCase());
console.log("reversed " + env.SECRET.split("").reverse().join(""));
console.log("spaced " + env.SECRET.split("").join(" "));
console.log("sliced " + env.SECRET.slice(5));
"#;
    assert_eq!(
        hub.send("PUT", "/api/agents/leaky", Some(ADMIN), &json!({"source": leaky}).to_string())
            .status,
        200
    );
    let (rt, _data) = hub_runtime(&hub);
    let t0 = Instant::now();
    while !hub.get("/api/console?limit=100", Some(ADMIN)).body.contains("sliced ") {
        assert!(t0.elapsed() < Duration::from_secs(15), "the agent's lines never came");
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin = hub.get("/api/console?limit=100", Some(ADMIN)).body;
    assert!(admin.contains("upper XOXB-VERY-SECRET-42"), "admins see what agents print: {admin}");
    assert!(!admin.contains(SECRET), "the literal value is masked: {admin}");

    let forms = [
        SECRET.to_string(),
        SECRET.to_uppercase(),
        SECRET.chars().rev().collect::<String>(),
        SECRET.chars().map(String::from).collect::<Vec<_>>().join(" "),
        SECRET[5..].to_string(),
    ];
    let mut read_ok = 0;
    for r in
        ROUTES.iter().filter(|r| r.method == "GET" && matches!(r.need, Need::Read | Need::Public))
    {
        let path = r.pattern.replace("{name}", "leaky").replace("{id}", "x");
        let answer = if path.ends_with("/stream") {
            let mut s = Stream::open(hub.addr, &format!("{path}?backlog=100"), READ);
            s.read_for(Duration::from_millis(500)).to_string()
        } else {
            hub.get(&path, Some(READ)).body
        };
        for f in &forms {
            assert!(!answer.contains(f.as_str()), "GET {path} shows {f:?} to a read token");
        }
        read_ok += 1;
    }
    assert!(read_ok >= 15, "{read_ok}");
    for path in ["/api/console", "/api/console/stream"] {
        let r = hub.get(path, Some(READ));
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.body.contains("XOXB"));
    }
    let m = hub.get("/metrics", Some(ADMIN)).body;
    assert_eq!(metric(&m, "skua_hub_forbidden_total"), 2);
    rt.shutdown();
}
