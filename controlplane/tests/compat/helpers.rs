//! Helpers answered in the runtime: env keys as bare globals and set as
//! numbers, `utils.json2Yaml`, `hub.targeted`, `chatgpt.sentiment`,
//! `kfl.*` (not supported yet), `aggregation.*`, `test.pass`, `console.*`.

use serde_json::Value;

use crate::capture::Capture;
use crate::support::{Answer, TestServer};
use crate::Run;

/// `--set scripting.env.MIN_STATUS=400` and `=true` as a Helm user sets
/// them: accepted, strings, readable as `env.X` and as the bare global.
#[test]
fn env_set_as_numbers_and_booleans_are_bare_global_strings() {
    let peer = TestServer::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let pcap = Capture::new()
        .get("/fine", 200)
        .get("/missing", 404)
        .get("/down", 503)
        .write(dir.path(), "h.pcap");
    let agent = r#"
function onItemCaptured(data) {
  if (data.response.status >= parseInt(MIN_STATUS) && VERBOSE === "true")
    vendor.webhook("POST", PEER, [typeof MIN_STATUS, env.MIN_STATUS, data.request.path].join(" "));
}
"#;
    let out = Run::new("env", agent)
        .env("PEER", &peer.url("/env"))
        .env("MIN_STATUS", "400")
        .env("VERBOSE", "true")
        .pcap(&pcap)
        .run();
    out.clean();
    let mut bodies: Vec<String> = peer.received().into_iter().map(|r| r.body).collect();
    bodies.sort();
    assert_eq!(bodies, ["string 400 /down", "string 400 /missing"]);
}

/// The helpers with no I/O, as published agents call them, their results
/// sent to the peer.
#[test]
fn local_helpers_answer_as_kubeshark_s() {
    let peer = TestServer::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let pcap = Capture::new().get("/ok", 200).get("/bad", 500).write(dir.path(), "h.pcap");
    let agent = r#"
var yaml = utils.json2Yaml(JSON.stringify({service: "shop", ports: [80, 443]}));
var targets = JSON.parse(hub.targeted());
var happy = chatgpt.sentiment("Everything works, the service is fast and great!");
var kflError = null;
try { kfl.validate("http and response.status =="); } catch (e) { kflError = e.message; }
vendor.webhook("POST", PEER, JSON.stringify({
  yaml: yaml, targets: targets.targets.length, excluded: targets.excluded.length,
  positive: happy.compound > 0.5, keys: Object.keys(happy).join(","), kfl: kflError
}));
aggregation.jsonWithMsg("AP2", "Interface", {key: 12, data: 6}, "hello world");
console.clear();

function onItemCaptured(data) {
  if (kfl.match("http and response.status == 500", data)) {
    var marked = test.fail(data);
    console.log("failed", marked.failed, data.request.path);
  }
  console.log("kfl2", data.request.path, kfl.match('http && status_code >= 500 && path.startsWith("/b")', data));
}
"#;
    let out = Run::new("local", agent).env("PEER", &peer.url("/local")).pcap(&pcap).run();
    out.clean();
    let got = peer.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    // Keys sorted, as Go's YAML encoder writes a map.
    assert_eq!(v["yaml"], "ports:\n- 80\n- 443\nservice: shop\n");
    assert_eq!((v["targets"].as_u64(), v["excluded"].as_u64()), (Some(0), Some(0)));
    assert_eq!(v["positive"], true);
    assert_eq!(v["keys"], "neg,neu,pos,compound");
    let kfl = v["kfl"].as_str().unwrap_or_default();
    assert!(kfl.starts_with("kfl.validate: invalid filter at 1:"), "{kfl}");
    let console = out.console();
    assert!(
        console.iter().any(|l| l == r#"AP2 hello world Interface={"data":6,"key":12}"#),
        "{console:#?}"
    );
    // KFL1 and KFL2 agree, on the Rust item behind `data`.
    let kfl: Vec<&String> =
        console.iter().filter(|l| l.starts_with("failed") || l.starts_with("kfl2")).collect();
    assert_eq!(kfl, ["kfl2 /ok false", "failed true /bad", "kfl2 /bad true"], "{console:#?}");
}
