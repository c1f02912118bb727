//! Item types as Kubeshark's: ports and stream ids are strings,
//! `elapsedTime` integer microseconds, `request`/`response` never null,
//! DNS `authorities` and `additionals`.

use serde_json::Value;

use crate::capture::Capture;
use crate::support::{Answer, TestServer};
use crate::Run;

#[test]
fn items_have_kubeshark_s_types() {
    let peer = TestServer::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let pcap = Capture::new()
        .get("/answered", 200)
        .unanswered("/lost")
        .dns_with_authority("shop.example")
        .write(dir.path(), "mixed.pcap");
    let agent = r#"
function onItemCaptured(data) {
  vendor.webhook("POST", PEER, JSON.stringify({
    protocol: data.protocol.name,
    srcPort: typeof data.src.port, dstPort: data.dst.port, stream: typeof data.stream,
    elapsed: data.elapsedTime, integer: data.elapsedTime === Math.floor(data.elapsedTime),
    request: typeof data.request, response: typeof data.response,
    status: data.response.status === undefined ? "none" : data.response.status,
    error: data.error && data.error.type,
    authorities: data.response.authorities, additionals: data.response.additionals
  }));
}
"#;
    let out = Run::new("types", agent).env("PEER", &peer.url("/item")).pcap(&pcap).run();
    out.clean();
    let items: Vec<Value> =
        peer.received().iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
    assert_eq!(items.len(), 3, "{items:#?}");
    for i in &items {
        assert_eq!((i["srcPort"].as_str(), i["stream"].as_str()), (Some("string"), Some("string")));
        assert_eq!(
            (i["request"].as_str(), i["response"].as_str()),
            (Some("object"), Some("object"))
        );
        assert_eq!(i["integer"], true, "{i}");
    }
    let find = |f: &dyn Fn(&Value) -> bool| items.iter().find(|i| f(i)).cloned().unwrap();
    let answered = find(&|i| i["status"] == 200);
    assert_eq!(answered["dstPort"], "80");
    // The response came 1 ms after the request (half the round trip
    // after the request's last segment).
    assert_eq!(answered["elapsed"].as_u64(), Some(1_000), "{answered}");
    let lost = find(&|i| i["protocol"] == "http" && i["status"] == "none");
    assert_eq!(
        (lost["elapsed"].as_u64(), lost["error"].as_str()),
        (Some(0), Some("pair-not-found"))
    );
    let dns = find(&|i| i["protocol"] == "dns");
    assert_eq!(dns["authorities"][0]["type"], "NS", "{dns}");
    assert_eq!(dns["authorities"][0]["ns"], "ns1.shop.example");
    assert_eq!(dns["additionals"][0]["ip"], "10.9.0.53");
}
