//! vendor.kinesis.put: against kinesalite (a real Kinesis API on this
//! machine, started by the test), and against a local server speaking the
//! Kinesis JSON protocol that checks the PutRecords limits and injects
//! partial failures.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use controlplane::executor::{Executor, ExecutorContext, ExecutorHandle};
use controlplane::integrations::config::IntegrationsConfig;
use controlplane::integrations::Integration;
use scripting::Effect;
use serde_json::{json, Value};
use support::*;

/// Keeps the standard credential chain on this machine: no instance
/// metadata lookups, no profile files.
fn quiet_aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/skua-test");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/skua-test");
    });
}

fn put(stream: &str, payload: &str, keys: bool) -> Effect {
    Effect::KinesisPut {
        stream: stream.into(),
        payload: payload.into(),
        region: "us-east-1".into(),
        key_id: keys.then(|| "AKIDTEST".to_string()),
        secret: keys.then(|| "secret".to_string()),
    }
}

fn config(endpoint: &str) -> IntegrationsConfig {
    let mut c = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    c.kinesis.endpoint = endpoint.into();
    c.kinesis.linger_ms = 50;
    c.retry.initial_backoff_ms = 20;
    c.retry.max_backoff_ms = 100;
    c
}

fn kinesis_stats(h: &ExecutorHandle) -> controlplane::integrations::IntegrationSnapshot {
    h.counters().into_iter().find(|s| s.integration == Integration::Kinesis).unwrap()
}

/// The skip rule itself: with kinesalite taken away (no node on PATH, no
/// script), the kinesalite test fails under CI naming it, and elsewhere
/// passes with one skip line.
#[test]
fn without_kinesalite_its_test_fails_under_ci_and_skips_elsewhere() {
    let gone = [("PATH", "/nonexistent"), ("SKUA_KINESALITE", "/nonexistent/cli.js")];
    let out = skip::rerun("kinesalite_put_records_arrive", &gone, true);
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "passed without kinesalite under CI:\n{said}");
    assert!(said.contains("missing under CI: kinesalite"), "{said}");

    let out = skip::rerun("kinesalite_put_records_arrive", &gone, false);
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.matches("SKIPPED: kinesalite_put_records_arrive: kinesalite").count(),
        1,
        "{said}"
    );
}

#[test]
fn kinesalite_put_records_arrive() {
    quiet_aws_env();
    let (_peer, port) = require!(
        start_kinesalite(),
        "kinesalite (npm install kinesalite into /var/tmp/skua-npm) or node"
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(test_client(&endpoint));
    rt.block_on(async {
        client.create_stream().stream_name("skua-items").shard_count(2).send().await.unwrap();
        for _ in 0..100 {
            let d =
                client.describe_stream_summary().stream_name("skua-items").send().await.unwrap();
            if d.stream_description_summary()
                .map(|s| s.stream_status().as_str() == "ACTIVE")
                .unwrap_or(false)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let ex = Executor::start(config(&endpoint), ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    // 1200 HAR-like records at once: more than one PutRecords (500 max).
    let sent: Vec<String> = (0..1200)
        .map(|i| {
            json!({"log": {"entries": [{"request": {"url": format!("/item/{i}")}}]}}).to_string()
        })
        .collect();
    let rxs: Vec<_> = sent.iter().map(|p| submit(&h, "har", put("skua-items", p, true))).collect();
    let mut shards = BTreeMap::new();
    for rx in &rxs {
        let r = rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
        assert!(r["sequenceNumber"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
        *shards.entry(r["shardId"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(shards.len(), 2, "partition keys spread records over both shards: {shards:?}");

    // Over 1 MiB: refused with a clear error, never sent.
    let big = "x".repeat(1024 * 1024);
    let err = call(&h, "har", put("skua-items", &big, true)).unwrap_err();
    assert!(err.contains("over the 1 MiB"), "{err}");

    // No keys: the standard chain (here: the environment) signs the call.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFROMENV");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "env-secret");
    let r = call(&h, "har", put("skua-items", "from-env-chain", false)).unwrap();
    assert!(r["sequenceNumber"].is_string(), "{r}");

    let mut got = rt.block_on(read_all(&client, "skua-items"));
    got.sort();
    let mut want = sent.clone();
    want.push("from-env-chain".into());
    want.sort();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want, "GetRecords returns exactly what was put");
    let s = kinesis_stats(&h);
    assert_eq!((s.sent, s.failed, s.rejected), (1201, 1, 0));
    println!("kinesalite: 1201 records in {shards:?}, latency sum {:?}", s.latency_sum);
}

/// A Kinesis endpoint that records each PutRecords call and answers with
/// what `plan` says for the n-th call.
fn fake_kinesis(
    plan: impl Fn(usize, &[Value]) -> Answer + Send + Sync + 'static,
) -> (TestServer, Arc<Mutex<Vec<Vec<Value>>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let srv = TestServer::start(move |r, _| {
        assert_eq!(
            r.headers.get("x-amz-target").map(String::as_str),
            Some("Kinesis_20131202.PutRecords")
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let records = body["Records"].as_array().cloned().unwrap_or_default();
        let n = {
            let mut g = c.lock().unwrap();
            g.push(records.clone());
            g.len() - 1
        };
        plan(n, &records)
    });
    (srv, calls)
}

fn json_answer(v: Value) -> Answer {
    Answer::new(200, &v.to_string()).header("Content-Type", "application/x-amz-json-1.1")
}

fn ok_records(records: &[Value]) -> Value {
    let r: Vec<Value> = (0..records.len()).map(|i| json!({"SequenceNumber": format!("{}", 1000 + i), "ShardId": "shardId-000000000000"})).collect();
    json!({"FailedRecordCount": 0, "Records": r})
}

#[test]
fn batches_stay_within_put_records_limits() {
    quiet_aws_env();
    let (srv, calls) = fake_kinesis(|_, records| json_answer(ok_records(records)));
    let mut cfg = config(&srv.url(""));
    cfg.kinesis.concurrency = 1;
    cfg.kinesis.linger_ms = 200;
    let ex = Executor::start(cfg, ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    // 1 200 small records and 12 of 900 KiB, all queued together.
    let mut rxs: Vec<_> =
        (0..1200).map(|i| submit(&h, "a", put("s", &format!("r{i}"), true))).collect();
    let big = "y".repeat(900 * 1024);
    rxs.extend((0..12).map(|_| submit(&h, "a", put("s", &big, true))));
    for rx in &rxs {
        rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
    }
    let calls = calls.lock().unwrap();
    let total: usize = calls.iter().map(Vec::len).sum();
    assert_eq!(total, 1212);
    for c in calls.iter() {
        assert!(c.len() <= 500, "{} records in one call", c.len());
        // Data is base64 on the wire: count the decoded size.
        let bytes: usize = c
            .iter()
            .map(|r| {
                r["Data"].as_str().unwrap().len() / 4 * 3
                    + r["PartitionKey"].as_str().unwrap().len()
            })
            .sum();
        assert!(bytes <= 5 * 1024 * 1024, "{bytes} bytes in one call");
    }
    assert!(calls.len() >= 3 + 2, "{} calls", calls.len());
    println!(
        "1212 records in {} PutRecords calls: {:?}",
        calls.len(),
        calls.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

#[test]
fn partial_failures_are_retried_alone() {
    quiet_aws_env();
    let (srv, calls) = fake_kinesis(|n, records| {
        if n == 0 {
            // Every second record throttled, the last one refused for good.
            let last = records.len() - 1;
            let r: Vec<Value> = (0..records.len())
                .map(|i| match i {
                    i if i == last => json!({"ErrorCode": "AccessDeniedException", "ErrorMessage": "not yours"}),
                    i if i % 2 == 1 => json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}),
                    i => json!({"SequenceNumber": format!("{i}"), "ShardId": "shardId-000000000001"}),
                })
                .collect();
            let failed = r.iter().filter(|x| x.get("ErrorCode").is_some()).count();
            json_answer(json!({"FailedRecordCount": failed, "Records": r}))
        } else {
            json_answer(ok_records(records))
        }
    });
    let cfg = config(&srv.url(""));
    let ex = Executor::start(cfg, ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    let rxs: Vec<_> = (0..9).map(|i| submit(&h, "a", put("s", &format!("p{i}"), true))).collect();
    let results: Vec<_> =
        rxs.iter().map(|rx| rx.recv_timeout(Duration::from_secs(30)).unwrap()).collect();
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2, "one retry call");
    assert_eq!(calls[0].len(), 9);
    assert_eq!(calls[1].len(), 4, "only the throttled records are sent again");
    assert!(results[..8].iter().all(|r| r.is_ok()), "{results:?}");
    let err = results[8].as_ref().unwrap_err();
    assert!(err.contains("AccessDeniedException") && err.contains("not yours"), "{err}");
    let s = kinesis_stats(&h);
    assert_eq!((s.sent, s.failed, s.retried), (8, 1, 1));
}

#[test]
fn whole_request_errors_retried_only_when_transient() {
    quiet_aws_env();
    let (srv, calls) = fake_kinesis(|n, records| match n {
        0 => Answer::new(500, r#"{"__type":"InternalFailure","message":"try again"}"#)
            .header("Content-Type", "application/x-amz-json-1.1"),
        1 => json_answer(ok_records(records)),
        _ => Answer::new(
            400,
            r#"{"__type":"ResourceNotFoundException","message":"Stream nope not found"}"#,
        )
        .header("Content-Type", "application/x-amz-json-1.1"),
    });
    let ex = Executor::start(config(&srv.url("")), ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    assert!(call(&h, "a", put("s", "one", true)).is_ok());
    let err = call(&h, "a", put("nope", "two", true)).unwrap_err();
    assert!(
        err.contains("ResourceNotFoundException") && err.contains("Stream nope not found"),
        "{err}"
    );
    assert_eq!(calls.lock().unwrap().len(), 3, "the 400 is not retried");
    let s = kinesis_stats(&h);
    assert_eq!((s.sent, s.failed, s.retried), (1, 1, 1));
}
