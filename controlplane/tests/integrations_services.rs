//! vendor.elastic, chatgpt.prompt, vendor.webhookForm, vendor.slackBot's
//! files and hub.blockPod at the executor level. Elasticsearch, OpenAI and
//! Slack do not install here: local servers that check the requests as
//! those APIs define them and answer as they do. hub.blockPod goes to the
//! loopback Kubernetes API server of the kube tests. One opt-in test talks
//! to a real Elasticsearch (`SKUA_ELASTIC_URL`).

mod support;

use std::collections::BTreeMap;

use base64::Engine;
use controlplane::executor::{Executor, ExecutorContext, ExecutorHandle};
use controlplane::integrations::config::IntegrationsConfig;
use controlplane::integrations::{Integration, IntegrationSnapshot};
use scripting::Effect;
use serde_json::{json, Value};
use support::*;

fn config() -> IntegrationsConfig {
    let mut c = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    c.retry.initial_backoff_ms = 10;
    c.retry.max_backoff_ms = 50;
    c
}

fn start(cfg: IntegrationsConfig, data: &std::path::Path) -> (Executor, ExecutorHandle) {
    let ctx = ExecutorContext { data_dir: data.to_path_buf(), ..Default::default() };
    let ex = Executor::start(cfg, ctx, None).unwrap();
    let h = ex.handle();
    (ex, h)
}

fn stats(h: &ExecutorHandle, i: Integration) -> IntegrationSnapshot {
    h.counters().into_iter().find(|s| s.integration == i).unwrap()
}

fn elastic(url: &str, index: &str, doc: &str) -> Effect {
    Effect::Elastic {
        url: url.into(),
        index: index.into(),
        doc: doc.into(),
        user: None,
        password: None,
        cloud_id: None,
        api_key: None,
        service_token: None,
        cert_fingerprint: None,
    }
}

/// Answers the document API as Elasticsearch 8 does, checking what it can.
fn elastic_like(r: &Received, n: usize) -> Answer {
    let Some(index) = r.uri.strip_suffix("/_doc").and_then(|p| p.strip_prefix('/')) else {
        return Answer::new(405, r#"{"error":"Incorrect HTTP method"}"#);
    };
    if r.method != "POST"
        || r.headers.get("content-type").map(String::as_str) != Some("application/json")
    {
        return Answer::new(
            406,
            r#"{"error":"Content-Type header is not supported","status":406}"#,
        );
    }
    match r.headers.get("authorization").map(String::as_str) {
        Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==") | Some("ApiKey aWQ6c2VjcmV0") | Some("Bearer AAEAAWVs") => {}
        _ => {
            return Answer::new(
                401,
                r#"{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user"}],"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/logs/_doc]"},"status":401}"#,
            )
            .header("content-type", "application/json")
        }
    }
    if serde_json::from_str::<serde_json::Map<String, Value>>(&r.body).is_err() {
        return Answer::new(
            400,
            r#"{"error":{"type":"mapper_parsing_exception","reason":"failed to parse"},"status":400}"#,
        );
    }
    Answer::new(
        201,
        &json!({"_index": index, "_id": format!("doc-{n}"), "_version": 1, "result": "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": n, "_primary_term": 1})
        .to_string(),
    )
    .header("content-type", "application/json")
}

#[test]
fn elastic_indexes_the_document_with_each_kind_of_credential() {
    let es = TestServer::start(elastic_like);
    let data = tempfile::tempdir().unwrap();
    let (_ex, h) = start(config(), data.path());
    let doc = r#"{"protocol":{"name":"http"},"response":{"status":500},"elapsedTime":1234}"#;
    let mut e = elastic(&es.url(""), "logs", doc);
    if let Effect::Elastic { user, password, .. } = &mut e {
        *user = Some("elastic".into());
        *password = Some("changeme".into());
    }
    assert_eq!(call(&h, "a", e).unwrap(), "doc-0");
    let mut e = elastic(&es.url("/"), "logs", doc);
    if let Effect::Elastic { api_key, .. } = &mut e {
        *api_key = Some("id:secret".into());
    }
    assert_eq!(call(&h, "a", e).unwrap(), "doc-1");
    let mut e = elastic(&es.url(""), "logs", doc);
    if let Effect::Elastic { service_token, .. } = &mut e {
        *service_token = Some("AAEAAWVs".into());
    }
    assert_eq!(call(&h, "a", e).unwrap(), "doc-2");
    let got = es.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!((r.method.as_str(), r.uri.as_str()), ("POST", "/logs/_doc"));
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap(),
            serde_json::from_str::<Value>(doc).unwrap()
        );
    }
    // Denied credentials: Elasticsearch's reason, not retried.
    let err = call(&h, "a", elastic(&es.url(""), "logs", doc)).unwrap_err();
    assert!(err.starts_with("vendor.elastic: elastic: security_exception"), "{err}");
    // Bad arguments never reach the server.
    assert!(call(&h, "a", elastic(&es.url(""), "Logs", doc)).unwrap_err().contains("index name"));
    assert!(call(&h, "a", elastic(&es.url(""), "logs", "[1,2]"))
        .unwrap_err()
        .contains("JSON object"));
    assert!(call(&h, "a", elastic("", "logs", doc)).unwrap_err().contains("cloudId"));
    assert_eq!(es.count(), 4);
    let s = stats(&h, Integration::Elastic);
    assert_eq!((s.sent, s.failed, s.retried), (3, 4, 0));
}

#[test]
fn elastic_pins_a_self_signed_certificate_by_its_fingerprint() {
    let port = start_tls_server(201, r#"{"_index":"logs","_id":"pinned-1","result":"created"}"#);
    let der =
        rustls::pki_types::pem::PemObject::pem_file_iter(format!("{TEST_DATA}/test-server.pem"))
            .unwrap()
            .map(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| c.unwrap())
            .next()
            .unwrap();
    let sha = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    let fingerprint: Vec<String> = sha.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    let data = tempfile::tempdir().unwrap();
    let (_ex, h) = start(config(), data.path());
    let url = format!("https://127.0.0.1:{port}");
    let with = |f: &str| {
        let mut e = elastic(&url, "logs", "{}");
        if let Effect::Elastic { cert_fingerprint, user, .. } = &mut e {
            *cert_fingerprint = Some(f.into());
            *user = Some("elastic".into());
        }
        e
    };
    // The test CA is not trusted here: only the pin lets the call through.
    assert_eq!(call(&h, "a", with(&fingerprint.join(":"))).unwrap(), "pinned-1");
    let e = call(&h, "a", with(&"00".repeat(32))).unwrap_err();
    assert!(e.contains("TLS") || e.contains("certificate"), "{e}");
    let e = call(&h, "a", elastic(&url, "logs", "{}")).unwrap_err();
    assert!(e.contains("invalid peer certificate"), "{e}");
}

/// Against a real Elasticsearch: opt-in (`cargo test -- --ignored`) with
/// `SKUA_ELASTIC_URL` (e.g. `http://127.0.0.1:9200`), and optionally
/// `SKUA_ELASTIC_USER`/`SKUA_ELASTIC_PASSWORD` and
/// `SKUA_ELASTIC_FINGERPRINT`. Without the URL it skips (fails under CI,
/// like any missing peer; CI does not run ignored tests).
#[test]
#[ignore = "needs a real Elasticsearch named by SKUA_ELASTIC_URL"]
fn elastic_real_server_stores_the_document() {
    let url =
        require!(std::env::var("SKUA_ELASTIC_URL").ok(), "SKUA_ELASTIC_URL (a real Elasticsearch)");
    let data = tempfile::tempdir().unwrap();
    let (_ex, h) = start(config(), data.path());
    let marker = format!("skua-{}", std::process::id());
    let mut e = elastic(&url, "skua-test", &json!({"marker": marker, "status": 500}).to_string());
    if let Effect::Elastic { user, password, cert_fingerprint, .. } = &mut e {
        *user = std::env::var("SKUA_ELASTIC_USER").ok();
        *password = std::env::var("SKUA_ELASTIC_PASSWORD").ok();
        *cert_fingerprint = std::env::var("SKUA_ELASTIC_FINGERPRINT").ok();
    }
    let id = call(&h, "a", e).unwrap();
    let id = id.as_str().unwrap();
    assert!(!id.is_empty());
    // Read it back through the document API.
    let mut get = Effect::Webhook {
        method: "GET".into(),
        url: format!("{}/skua-test/_doc/{id}", url.trim_end_matches('/')),
        body: String::new(),
        headers: BTreeMap::new(),
    };
    if let (Effect::Webhook { headers, .. }, Ok(u)) = (&mut get, std::env::var("SKUA_ELASTIC_USER"))
    {
        let p = std::env::var("SKUA_ELASTIC_PASSWORD").unwrap_or_default();
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        headers.insert("Authorization".into(), format!("Basic {b}"));
    }
    let r = call(&h, "a", get).unwrap();
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["_source"]["marker"], marker.as_str(), "{body}");
}

/// An OpenAI-compatible chat endpoint: checks the request as OpenAI's API
/// reference defines it and answers as OpenAI does.
fn openai_like(r: &Received, _: usize) -> Answer {
    if r.uri != "/v1/chat/completions" || r.method != "POST" {
        return Answer::new(
            404,
            r#"{"error":{"message":"Unknown request URL","type":"invalid_request_error","code":"unknown_url"}}"#,
        );
    }
    if r.headers.get("authorization").map(String::as_str) != Some("Bearer sk-test") {
        return Answer::new(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-wrong.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        );
    }
    let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
    let prompt = v["messages"][0]["content"].as_str().unwrap_or("");
    let Some(max) = v["max_tokens"].as_u64() else {
        return Answer::new(
            400,
            r#"{"error":{"message":"max_tokens missing","type":"invalid_request_error"}}"#,
        );
    };
    if v["model"].as_str().is_none() || v["messages"][0]["role"] != "user" {
        return Answer::new(
            400,
            r#"{"error":{"message":"bad request","type":"invalid_request_error"}}"#,
        );
    }
    let answer = if prompt.contains("\"status\":500") { "Yes, the request failed." } else { "No." };
    Answer::new(
        200,
        &json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": v["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("{answer} (max {max})")},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        })
        .to_string(),
    )
    .header("content-type", "application/json")
}

#[test]
fn chatgpt_prompt_returns_the_answer_text() {
    let api = TestServer::start(openai_like);
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.chatgpt.base_url = api.url("/v1");
    cfg.chatgpt.model = "local-model".into();
    let (_ex, h) = start(cfg, data.path());
    let ask = |key: &str, prompt: &str, max: u32| Effect::ChatgptPrompt {
        api_key: key.into(),
        prompt: prompt.into(),
        max_tokens: max,
    };
    let r = call(&h, "a", ask("sk-test", r#"Did it fail? {"status":500}"#, 1024)).unwrap();
    assert_eq!(r, "Yes, the request failed. (max 1024)");
    assert_eq!(call(&h, "a", ask("sk-test", "ok?", 16)).unwrap(), "No. (max 16)");
    let got = api.received();
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["model"], "local-model");
    // A wrong key: OpenAI's code and message, at once.
    let e = call(&h, "a", ask("sk-wrong", "x", 1)).unwrap_err();
    assert!(e.contains("invalid_api_key") && e.contains("Incorrect API key"), "{e}");
    let s = stats(&h, Integration::Chatgpt);
    assert_eq!((s.sent, s.failed, s.retried), (2, 1, 0));
}

#[test]
fn webhook_form_posts_fields_and_returns_the_body() {
    let srv = TestServer::start(|r, _| match r.uri.as_str() {
        "/missing" => Answer::new(404, "no such hook"),
        _ => Answer::new(200, &format!("got {}", r.body)),
    });
    let data = tempfile::tempdir().unwrap();
    let (_ex, h) = start(config(), data.path());
    let mut fields = BTreeMap::new();
    fields.insert("text".to_string(), "HTTP 500 on /api & more".to_string());
    fields.insert("channel".to_string(), "#alerts".to_string());
    let form =
        |url: String| Effect::WebhookForm { method: "POST".into(), url, fields: fields.clone() };
    let r = call(&h, "a", form(srv.url("/hook"))).unwrap();
    assert_eq!(r, "got channel=%23alerts&text=HTTP+500+on+%2Fapi+%26+more");
    let got = srv.received();
    assert_eq!(got[0].headers["content-type"], "application/x-www-form-urlencoded");
    let e = call(&h, "a", form(srv.url("/missing"))).unwrap_err();
    assert_eq!(e, "vendor.webhookForm: HTTP 404: no such hook");
}

#[test]
fn slack_bot_uploads_files_after_the_message() {
    let data = tempfile::tempdir().unwrap();
    let upload_url = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let u = upload_url.clone();
    let srv = TestServer::start(move |r, _| match r.uri.as_str() {
        "/api/chat.postMessage" => {
            Answer::new(200, r#"{"ok":true,"channel":"C1","ts":"1700000000.000100"}"#)
        }
        "/api/files.getUploadURLExternal" => {
            let q: BTreeMap<String, String> =
                url::form_urlencoded::parse(r.body.as_bytes()).into_owned().collect();
            Answer::new(
                200,
                &json!({"ok": true, "upload_url": format!("{}/{}", u.lock().unwrap(), q["filename"]),
                        "file_id": format!("F-{}-{}", q["filename"], q["length"])})
                .to_string(),
            )
        }
        p if p.starts_with("/upload/") => Answer::new(200, &format!("OK - {}", r.body.len())),
        "/api/files.completeUploadExternal" => Answer::new(200, r#"{"ok":true,"files":[]}"#),
        _ => Answer::new(404, "not_found"),
    });
    *upload_url.lock().unwrap() = srv.url("/upload");
    let agent_dir = data.path().join("bot");
    std::fs::create_dir_all(&agent_dir).unwrap();
    std::fs::write(agent_dir.join("data.json"), r#"{"status":500}"#).unwrap();
    std::fs::create_dir_all(data.path().join("pcap")).unwrap();
    std::fs::write(data.path().join("pcap/000007.pcap"), b"\xd4\xc3\xb2\xa1pcap").unwrap();
    let mut cfg = config();
    cfg.slack_bot.api_url = srv.url("/api");
    let (_ex, h) = start(cfg, data.path());
    let mut files = BTreeMap::new();
    files.insert("data.json".to_string(), "data.json".into());
    files.insert("000007.pcap".to_string(), data.path().join("pcap/000007.pcap"));
    let bot = |files: BTreeMap<String, std::path::PathBuf>| Effect::SlackBot {
        token: "xoxb-1".into(),
        channel_id: "C1".into(),
        pretext: "Server-side Error".into(),
        text: "HTTP 500".into(),
        color: "#ff0000".into(),
        fields: Some(json!({"Service": "api"})),
        files,
    };
    let r = call(&h, "bot", bot(files)).unwrap();
    assert_eq!(r["files"], json!(["F-000007.pcap-8", "F-data.json-14"]));
    let got = srv.received();
    let uris: Vec<&str> = got.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/api/chat.postMessage",
            "/api/files.getUploadURLExternal",
            "/upload/000007.pcap",
            "/api/files.getUploadURLExternal",
            "/upload/data.json",
            "/api/files.completeUploadExternal"
        ]
    );
    assert_eq!(got[4].body, r#"{"status":500}"#);
    let done: Value = serde_json::from_str(&got[5].body).unwrap();
    assert_eq!(done["channel_id"], "C1");
    assert_eq!(done["thread_ts"], "1700000000.000100");
    assert_eq!(done["files"][1], json!({"id": "F-data.json-14", "title": "data.json"}));
    assert!(got
        .iter()
        .all(|r| r.uri.starts_with("/upload/") || r.headers["authorization"] == "Bearer xoxb-1"));
    // A missing file fails the call before anything is sent.
    let n = srv.count();
    let mut missing = BTreeMap::new();
    missing.insert("x".to_string(), "nope.txt".into());
    let e = call(&h, "bot", bot(missing)).unwrap_err();
    assert!(e.contains("nope.txt"), "{e}");
    assert_eq!(srv.count(), n);
}

#[test]
fn block_pod_creates_a_deny_all_network_policy_for_that_pod() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (api, url) = rt.block_on(controlplane::kube::fake_api::FakeApi::start()).unwrap();
    api.add_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-7d9f", "namespace": "shop", "uid": "u1", "resourceVersion": "1",
                     "labels": {"app": "checkout"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": "10.1.0.7"}
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &url);
    // The executor makes its client from KUBECONFIG on first use; this test
    // binary has no other test reading it.
    std::env::set_var("KUBECONFIG", &kubeconfig);
    let (_ex, h) = start(config(), dir.path());
    let block =
        |name: &str, ns: &str| Effect::HubBlockPod { name: name.into(), namespace: ns.into() };
    let r = call(&h, "a", block("checkout-7d9f", "shop")).unwrap();
    assert_eq!(r["kind"], "NetworkPolicy");
    assert_eq!(r["metadata"]["name"], "skua-block-checkout-7d9f");
    assert_eq!(r["spec"]["podSelector"]["matchLabels"]["skua.io/blocked-pod"], "checkout-7d9f");
    assert_eq!(r["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let stored = api.object("networkpolicies/shop/skua-block-checkout-7d9f").unwrap();
    assert_eq!(stored["spec"], r["spec"]);
    let pod = api.pods.lock().unwrap()[0].clone();
    assert_eq!(pod["metadata"]["labels"]["skua.io/blocked-pod"], "checkout-7d9f");
    // Twice: the existing policy is the answer.
    let again = call(&h, "a", block("checkout-7d9f", "shop")).unwrap();
    assert_eq!(again["metadata"]["name"], r["metadata"]["name"]);
    // A pod that is not there: the API's NotFound, catchable.
    let e = call(&h, "a", block("ghost", "shop")).unwrap_err();
    assert!(e.starts_with("hub.blockPod: kubernetes: NotFound"), "{e}");
    let e = call(&h, "a", block("Bad_Name", "shop")).unwrap_err();
    assert!(e.contains("not a pod name"), "{e}");
    let reqs = api.requests();
    assert!(
        reqs.contains(&"PATCH /api/v1/namespaces/shop/pods/checkout-7d9f".to_string()),
        "{reqs:?}"
    );
    assert!(reqs
        .contains(&"POST /apis/networking.k8s.io/v1/namespaces/shop/networkpolicies".to_string()));
    let s = stats(&h, Integration::Kube);
    assert_eq!((s.sent, s.failed), (2, 2));
    drop(rt);
}
