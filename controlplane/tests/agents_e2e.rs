//! End to end with real peers: `skua run --pcap <capture> --scripts <agent>`
//! where the agent sends every HTTP 5xx to a webhook, every status to
//! InfluxDB (Debian's influxd 1.6, v1 write path) and every item as a HAR
//! entry to Kinesis (kinesalite). The webhook server receives exactly the
//! 5xx items, an InfluxDB query returns one point per item, and kinesalite's
//! GetRecords returns one record per item: a replay loses nothing it was
//! asked to send.

mod support;

use serde_json::Value;
use support::*;

const AGENT: &str = r#"
function onItemCaptured(data) {
  if (data.protocol.name !== "http" || data.response.status === undefined) return;
  var status = data.response.status;
  if (status >= 500) {
    vendor.webhook("POST", env.WEBHOOK_URL, JSON.stringify({ id: data.id, status: status, url: data.request.url }),
                   { "Content-Type": "application/json" });
  }
  vendor.influxdb(env.INFLUX_URL, "", "", "skua", "http_status", { status: status },
                  { host: data.request.headers.host, id: data.id });
  vendor.kinesis.put("skua-har", JSON.stringify({ startedDateTime: data.startTime, time: data.elapsedTime,
                      request: { method: data.request.method, url: data.request.url },
                      response: { status: status } }), "us-east-1", "AKIDTEST", "secret");
}
"#;

fn skua(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(args)
        .output()
        .expect("running skua")
}

#[test]
fn a_replay_delivers_5xx_to_a_webhook_statuses_to_influxdb_and_har_to_kinesis() {
    let influx = require!(start_influxd(), "influxd (Debian package influxdb)");
    let (_kinesalite, kport) = require!(start_kinesalite(), "kinesalite (npm) or node");
    let endpoint = format!("http://127.0.0.1:{kport}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(test_client(&endpoint));
    rt.block_on(async {
        client.create_stream().stream_name("skua-har").shard_count(2).send().await.unwrap()
    });
    let webhook = TestServer::start(|_, _| Answer::new(200, "ok"));

    let dir = tempfile::tempdir().unwrap();
    let (pcap, summary) = gen_capture(dir.path(), 400, 3);
    let exchanges = summary["httpExchanges"].as_u64().unwrap();
    let errors = server_errors(&summary);
    assert!(errors > 0, "{summary}");
    let agents = dir.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    std::fs::write(agents.join("export.js"), AGENT).unwrap();

    let out = skua(&[
        "run",
        "--pcap",
        pcap.to_str().unwrap(),
        "--scripts",
        agents.to_str().unwrap(),
        "--summary",
        "json",
        "--quiet",
        "--set",
        "integrations.metrics_listen=",
        "--set",
        "integrations.influxdb.api=v1",
        "--set",
        &format!("integrations.kinesis.endpoint={endpoint}"),
        "--set",
        &format!("scripting.env.WEBHOOK_URL={}", webhook.url("/alerts")),
        "--set",
        &format!("scripting.env.INFLUX_URL=http://127.0.0.1:{}", influx.port),
        "--set",
        &format!("scripting.dataDir={}", dir.path().join("data").display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["deliveriesAbandoned"], 0, "{run}");

    // The webhook got exactly the 5xx items.
    let got = webhook.received();
    assert_eq!(got.len() as u64, errors, "webhook deliveries");
    for r in &got {
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert!(v["status"].as_u64().unwrap() >= 500, "{v}");
    }
    // One InfluxDB point per HTTP item.
    let q = query(influx.port, "SELECT count(status) FROM http_status");
    assert_eq!(q["results"][0]["series"][0]["values"][0][1].as_u64(), Some(exchanges), "{q}");
    // One Kinesis record per HTTP item, HAR-shaped.
    let records = rt.block_on(read_all(&client, "skua-har"));
    assert_eq!(records.len() as u64, exchanges);
    let first: Value = serde_json::from_str(&records[0]).unwrap();
    assert!(first["request"]["url"].is_string() && first["response"]["status"].is_u64(), "{first}");

    // The same agent on captures of the conformance corpus: the peer's
    // transactions with a response (one of them a 501) are what arrives.
    let Some(corpus) = corpus_dir() else { return };
    let (mut answered, mut errors) = (exchanges, errors);
    for name in
        ["z_http_deeply-nested-mime.pcap", "z_http_get.pcap", "z_http_pipelined-requests.pcap"]
    {
        let rows =
            std::fs::read_to_string(corpus.join("expected").join(format!("{name}.http.jsonl")))
                .unwrap();
        for row in rows.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()) {
            if let Some(status) = row["status_code"].as_u64() {
                answered += 1;
                errors += u64::from(status >= 500);
            }
        }
        let pcap = corpus.join("pcaps").join(name);
        let out = skua(&[
            "run",
            "--pcap",
            pcap.to_str().unwrap(),
            "--scripts",
            agents.to_str().unwrap(),
            "--quiet",
            "--set",
            "integrations.metrics_listen=",
            "--set",
            "integrations.influxdb.api=v1",
            "--set",
            &format!("integrations.kinesis.endpoint={endpoint}"),
            "--set",
            &format!("scripting.env.WEBHOOK_URL={}", webhook.url("/alerts")),
            "--set",
            &format!("scripting.env.INFLUX_URL=http://127.0.0.1:{}", influx.port),
        ]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(webhook.received().len() as u64, errors, "webhook deliveries, corpus 5xx included");
    let q = query(influx.port, "SELECT count(status) FROM http_status");
    assert_eq!(q["results"][0]["series"][0]["values"][0][1].as_u64(), Some(answered), "{q}");
    assert_eq!(rt.block_on(read_all(&client, "skua-har")).len() as u64, answered);
}
