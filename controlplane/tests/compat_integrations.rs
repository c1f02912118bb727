//! The compatibility suite's I/O integrations: for each helper, an agent
//! written the way Kubeshark's published agents write it (env variables,
//! `data.response.status`, the helper's published argument order, results
//! ignored or chained), run by `skua run --pcap` on a generated capture
//! against the real peer, and what the peer received asserted.
//!
//! Object stores: moto (S3), gcp-storage-emulator (GCS), Azurite (Azure),
//! read back with their own clients. Prometheus: Debian's `prometheus`
//! scraping `skua run`'s `/metrics`. Elasticsearch, OpenAI and Slack do not
//! install here: local servers checking the requests as their APIs define
//! them. `hub.blockPod`: the kube tests' loopback API server.
//!
//! Agents consume helper results through `.then` where they need them
//! (the value form, `var dir = file.mkdirTemp(..)`, is the runtime's and
//! is covered with it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::*;

/// A capture of HTTP exchanges, some answered 5xx; returns its path and
/// how many 5xx it holds.
fn capture(dir: &Path) -> (PathBuf, u64) {
    let (pcap, summary) = gen_capture(dir, 200, 3);
    let errors = server_errors(&summary);
    assert!(errors > 0, "{summary}");
    (pcap, errors)
}

/// `skua run --pcap` with `agents` and a config file carrying `env`
/// (values of any text: keys, JSON) and `integrations`.
fn run_agents(
    dir: &Path,
    pcap: &Path,
    agents: &[(&str, &str)],
    env: Value,
    integrations: Value,
    proc_env: &[(&str, &str)],
    extra: &[&str],
) -> Output {
    let adir = dir.join(format!("agents-{}", agents[0].0));
    std::fs::create_dir_all(&adir).unwrap();
    for (name, src) in agents {
        std::fs::write(adir.join(format!("{name}.js")), src).unwrap();
    }
    let mut integ =
        json!({"metrics_listen": "", "retry": {"initial_backoff_ms": 20, "max_backoff_ms": 100}});
    if let (Some(a), Some(b)) = (integ.as_object_mut(), integrations.as_object()) {
        a.extend(b.clone());
    }
    let cfg = json!({
        "scripting": {"env": env, "dataDir": dir.join("data").to_str().unwrap()},
        "integrations": integ,
    });
    let cfg_path = dir.join(format!("config-{}.yaml", agents[0].0));
    std::fs::write(&cfg_path, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["run", "--pcap", pcap.to_str().unwrap(), "--scripts", adir.to_str().unwrap()])
        .args(["--summary", "json", "--quiet", "--config", cfg_path.to_str().unwrap()])
        .args(["--set", "hub.listen="])
        .args(extra)
        .env("SKUA_NODE_NAME", "node-x")
        .env("SKUA_NODE_IP", "10.9.8.7")
        .envs(proc_env.iter().copied())
        .output()
        .expect("running skua");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "skua run failed:\n{stderr}");
    let run: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(run["deliveriesAbandoned"], 0, "{run}\n{stderr}");
    out
}

/// Records what the first 5xx item's agent wrote, Kubeshark style.
const S3_AGENT: &str = r#"
// Upload evidence of the first server-side error to S3.
var sent = false;

function onItemCaptured(data) {
  if (sent || data.protocol.name !== "http" || !data.response || data.response.status < 500)
    return;
  sent = true;
  var nrh = "name_resolution_history.json";
  file.write(nrh, JSON.stringify({ "1700000000": { "10.0.0.1:80": { FullAddress: "api.shop", Namespace: "shop" } } }));
  // The documented order, with keys.
  vendor.s3.put(env.S3_BUCKET, nrh, env.AWS_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY);
  file.write("item.json", JSON.stringify({ id: data.id, status: data.response.status }));
  // The older order.
  vendor.s3.put(env.AWS_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.S3_BUCKET, "item.json");
  // A folder, archived; uploaded with no keys: the standard chain.
  file.delete("dfir");
  file.mkdir("dfir");
  file.write("dfir/note.txt", "HTTP " + data.response.status);
  file.copy("item.json", "dfir");
  file.tar("dfir").then(function (tarFile) {
    vendor.s3.put(env.S3_BUCKET, tarFile, env.AWS_REGION);
    file.delete(tarFile);
  });
}
"#;

const S3_CLEAR_AGENT: &str = r#"
vendor.s3.clear(env.AWS_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.S3_BUCKET);
function onItemCaptured(data) {}
"#;

#[test]
fn compat_s3_put_in_both_orders_with_keys_and_the_chain_then_clear() {
    let (_moto, port) =
        require!(start_moto(), "moto (pip install moto[server] into /var/tmp/skua-venv-storage)");
    boto(port, &["mb", "evidence"]);
    boto(port, &["put", "evidence", "other-node_10.0.0.2/keep.json", "{}"]);
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = capture(dir.path());
    let env = json!({"S3_BUCKET": "evidence", "AWS_REGION": "us-east-1",
                     "AWS_ACCESS_KEY_ID": "AKIDAGENT0000000001", "AWS_SECRET_ACCESS_KEY": "agent/secret+key"});
    let integ = json!({"s3": {"endpoint": format!("http://127.0.0.1:{port}")}});
    // The standard chain of the process (what IRSA or the node's role are
    // on EKS) signs the upload that gives no keys.
    let chain =
        [("AWS_ACCESS_KEY_ID", "AKIDFROMCHAIN000001"), ("AWS_SECRET_ACCESS_KEY", "chain-secret")];
    // Looping for a few seconds keeps the runtime up for `file.tar`'s
    // `.then`.
    let looped = ["--loop", "0", "--duration", "8"];
    run_agents(dir.path(), &pcap, &[("s3", S3_AGENT)], env.clone(), integ.clone(), &chain, &looped);

    let nrh = boto(port, &["get", "evidence", "node-x_10.9.8.7/name_resolution_history.json"]);
    let nrh: Value = serde_json::from_slice(&nrh).unwrap();
    assert_eq!(nrh["1700000000"]["10.0.0.1:80"]["Namespace"], "shop");
    let item: Value =
        serde_json::from_slice(&boto(port, &["get", "evidence", "node-x_10.9.8.7/item.json"]))
            .unwrap();
    assert!(item["status"].as_u64().unwrap() >= 500, "{item}");
    let keys = String::from_utf8(boto(port, &["ls", "evidence"])).unwrap();
    let tar_key = keys
        .lines()
        .find(|k| k.starts_with("node-x_10.9.8.7/dfir_") && k.ends_with(".tar.gz"))
        .unwrap_or_else(|| panic!("no archive among {keys}"))
        .to_string();
    let tgz = boto(port, &["get", "evidence", &tar_key]);
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    let mut files = std::collections::BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut s = String::new();
        if e.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            files.insert(name, s);
        }
    }
    assert_eq!(files["dfir/note.txt"], format!("HTTP {}", item["status"]));
    assert_eq!(serde_json::from_str::<Value>(&files["dfir/item.json"]).unwrap(), item);
    // The agent deleted its local archive after the upload.
    let left: Vec<String> = std::fs::read_dir(dir.path().join("data/s3"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.ends_with(".tar.gz")), "{left:?}");

    // A second run clears this node's objects only.
    run_agents(dir.path(), &pcap, &[("s3clear", S3_CLEAR_AGENT)], env, integ, &[], &[]);
    let keys = String::from_utf8(boto(port, &["ls", "evidence"])).unwrap();
    assert_eq!(keys.trim(), "other-node_10.0.0.2/keep.json");
}

const GCS_AGENT: &str = r#"
var done = false;
function onItemCaptured(data) {
  if (done || data.protocol.name !== "http" || !data.response || data.response.status < 500) return;
  done = true;
  var serviceAccountKey = JSON.parse(env.GCS_SA_KEY_JSON);
  file.write("dfir_item.json", JSON.stringify({ status: data.response.status, path: data.request.path }));
  vendor.gcs.put(env.GCS_BUCKET, "dfir_item.json", serviceAccountKey);
}
"#;

const GCS_CLEAR_AGENT: &str = r#"
vendor.gcs.clear(env.GCS_BUCKET, JSON.parse(env.GCS_SA_KEY_JSON));
"#;

#[test]
fn compat_gcs_put_with_the_service_account_key_object_then_clear() {
    let (_gcs, port) = require!(
        start_gcs_emulator("forensics"),
        "gcp-storage-emulator (pip install gcp-storage-emulator into /var/tmp/skua-venv-storage)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = capture(dir.path());
    let env = json!({"GCS_BUCKET": "forensics", "GCS_SA_KEY_JSON": gcs_service_account_key()});
    let integ = json!({"gcs": {"endpoint": format!("http://127.0.0.1:{port}")}});
    run_agents(dir.path(), &pcap, &[("gcs", GCS_AGENT)], env.clone(), integ.clone(), &[], &[]);
    let (status, body) = http_get_bytes(
        port,
        "/download/storage/v1/b/forensics/o/node-x_10.9.8.7%2Fdfir_item.json?alt=media",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["status"].as_u64().unwrap() >= 500 && v["path"].is_string(), "{v}");
    run_agents(dir.path(), &pcap, &[("gcsclear", GCS_CLEAR_AGENT)], env, integ, &[], &[]);
    let (_, list) = http_get_bytes(port, "/storage/v1/b/forensics/o");
    let list: Value = serde_json::from_slice(&list).unwrap();
    assert!(list["items"].as_array().is_none_or(|a| a.is_empty()), "{list}");
}

const AZURE_AGENT: &str = r#"
var done = false;
function onItemCaptured(data) {
  if (done || data.protocol.name !== "http" || !data.response || data.response.status < 500) return;
  done = true;
  file.write("by_connection_string.json", JSON.stringify({ id: data.id }));
  vendor.azure.put(env.AZURE_CONTAINER, "by_connection_string.json", "", "", env.AZURE_STORAGE_CONNECTION_STRING);
  file.write("by_key.json", JSON.stringify({ id: data.id }));
  vendor.azure.put(env.AZURE_CONTAINER, "by_key.json", env.AZURE_ACCOUNT, env.AZURE_KEY);
}
"#;

#[test]
fn compat_azure_put_by_connection_string_and_by_account_key() {
    let az =
        require!(start_azurite(), "azurite and @azure/storage-blob (npm, into /var/tmp/skua-npm)");
    azure_sdk(&az, &["mb", "pcaps"]);
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = capture(dir.path());
    let env = json!({"AZURE_CONTAINER": "pcaps", "AZURE_STORAGE_CONNECTION_STRING": az.connection_string(),
                     "AZURE_ACCOUNT": "devstoreaccount1", "AZURE_KEY": AZURITE_KEY});
    let integ = json!({"azure": {"endpoint": format!("http://127.0.0.1:{}", az.port)}});
    run_agents(dir.path(), &pcap, &[("azure", AZURE_AGENT)], env, integ, &[], &[]);
    let a: Value = serde_json::from_slice(&azure_sdk(
        &az,
        &["get", "pcaps", "node-x_10.9.8.7/by_connection_string.json"],
    ))
    .unwrap();
    let b: Value =
        serde_json::from_slice(&azure_sdk(&az, &["get", "pcaps", "node-x_10.9.8.7/by_key.json"]))
            .unwrap();
    assert!(a["id"].is_string() && a == b, "{a} {b}");
}

const SERVICES_AGENT: &str = r##"
// Server-side errors to Elasticsearch, a form webhook, ChatGPT and Slack
// with the item attached; the first one also isolates its pod.
var n = 0;
function onItemCaptured(data) {
  if (data.protocol.name !== "http" || !data.response || data.response.status < 500) return;
  // The capture loops: act on one pass of it.
  if (++n > Number(env.ERRORS)) return;
  vendor.elastic(env.ELASTIC_URL, env.ELASTIC_INDEX, data, env.ELASTIC_USER, env.ELASTIC_PASSWORD);
  vendor.webhookForm("POST", env.FORM_URL, { id: data.id, status: String(data.response.status) });
  if (n === 1) {
    chatgpt.prompt(env.OPENAI_API_KEY, "Did the HTTP request fail? " + JSON.stringify({ status: data.response.status }), 64)
      .then(function (answer) { vendor.webhook("POST", env.FORM_URL + "/answer", answer); });
    var files = {};
    file.write("data.json", JSON.stringify({ id: data.id, status: data.response.status }, null, 2));
    files["data.json"] = "data.json";
    vendor.slackBot(env.SLACK_AUTH_TOKEN, env.SLACK_CHANNEL_ID, "Server-side Error",
      "An HTTP request resulted with " + data.response.status + " status code:", "#ff0000",
      { "HTTP method": data.request.method, "HTTP path": data.request.path }, files);
    hub.blockPod("checkout-7d9f", "shop");
  }
}
"##;

#[test]
fn compat_elastic_webhook_form_chatgpt_slack_files_and_block_pod() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, errors) = capture(dir.path());
    let es = TestServer::start(|r, n| {
        let ok = r.uri == "/traffic/_doc"
            && r.headers.get("authorization").map(String::as_str) == Some("Basic ZWxhc3RpYzpwdw==")
            && serde_json::from_str::<Value>(&r.body)
                .is_ok_and(|v| v["response"]["status"].is_u64());
        if ok {
            Answer::new(
                201,
                &json!({"_index": "traffic", "_id": format!("id-{n}"), "result": "created"})
                    .to_string(),
            )
        } else {
            Answer::new(400, r#"{"error":{"type":"bad_request","reason":"unexpected"}}"#)
        }
    });
    let form = TestServer::start(|_, _| Answer::new(200, "ok"));
    let openai = TestServer::start(|r, _| {
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        let ok = r.uri == "/v1/chat/completions"
            && r.headers.get("authorization").map(String::as_str) == Some("Bearer sk-agent")
            && v["max_tokens"] == 64;
        if ok {
            Answer::new(
                200,
                r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Yes, it failed."}}]}"#,
            )
        } else {
            Answer::new(400, r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#)
        }
    });
    let slack_upload = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let su = slack_upload.clone();
    let slack = TestServer::start(move |r, _| {
        match r.uri.as_str() {
        "/api/chat.postMessage" => Answer::new(200, r#"{"ok":true,"channel":"C42","ts":"1.5"}"#),
        "/api/files.getUploadURLExternal" => Answer::new(
            200,
            &json!({"ok": true, "upload_url": format!("{}/u1", su.lock().unwrap()), "file_id": "F1"}).to_string(),
        ),
        "/up/u1" => Answer::new(200, "OK"),
        "/api/files.completeUploadExternal" => Answer::new(200, r#"{"ok":true}"#),
        _ => Answer::new(404, "no"),
    }
    });
    *slack_upload.lock().unwrap() = slack.url("/up");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (api, api_url) = rt.block_on(controlplane::kube::fake_api::FakeApi::start()).unwrap();
    api.add_pod(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-7d9f", "namespace": "shop", "uid": "u", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}, "status": {"phase": "Running"}}));
    let kubeconfig = write_kubeconfig(dir.path(), &api_url);

    let env = json!({
        "ELASTIC_URL": es.url(""), "ELASTIC_INDEX": "traffic", "ELASTIC_USER": "elastic", "ELASTIC_PASSWORD": "pw",
        "FORM_URL": form.url("/form"), "OPENAI_API_KEY": "sk-agent",
        "SLACK_AUTH_TOKEN": "xoxb-agent", "SLACK_CHANNEL_ID": "C42", "ERRORS": errors.to_string(),
    });
    let integ = json!({
        "chatgpt": {"base_url": openai.url("/v1")},
        "slack_bot": {"api_url": slack.url("/api")},
    });
    let kc = kubeconfig.to_str().unwrap().to_string();
    // Looping for a few seconds keeps the runtime up until the `.then`
    // reaction (ChatGPT's answer forwarded) has run.
    run_agents(
        dir.path(),
        &pcap,
        &[("services", SERVICES_AGENT)],
        env,
        integ,
        &[("KUBECONFIG", &kc)],
        &["--loop", "0", "--duration", "8"],
    );

    // Elasticsearch: one document per 5xx item, each the item's JSON.
    let docs = es.received();
    assert_eq!(docs.len() as u64, errors);
    assert!(docs.iter().all(|r| r.uri == "/traffic/_doc"));
    // The form webhook: one post per 5xx item, plus ChatGPT's answer.
    let forms = form.received();
    let posts: Vec<_> = forms.iter().filter(|r| r.uri == "/form").collect();
    assert_eq!(posts.len() as u64, errors);
    let fields: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(posts[0].body.as_bytes()).into_owned().collect();
    assert!(fields["status"].starts_with('5') && fields.contains_key("id"), "{fields:?}");
    let answer =
        forms.iter().find(|r| r.uri == "/form/answer").expect("ChatGPT's answer forwarded");
    assert_eq!(answer.body, "Yes, it failed.");
    assert_eq!(openai.count(), 1);
    // Slack: the message, then the file, shared in its thread.
    let s = slack.received();
    let uris: Vec<&str> = s.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/api/chat.postMessage",
            "/api/files.getUploadURLExternal",
            "/up/u1",
            "/api/files.completeUploadExternal"
        ]
    );
    let uploaded: Value = serde_json::from_str(&s[2].body).unwrap();
    assert!(uploaded["status"].as_u64().unwrap() >= 500, "{uploaded}");
    // Kubernetes: the pod labelled and a deny-all policy created.
    let policy = api.object("networkpolicies/shop/skua-block-checkout-7d9f").expect("the policy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    drop(rt);
}

const PROMETHEUS_AGENT: &str = r#"
// Bytes per destination port, as a counter vec.
function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  prometheus.vector("compat_http_items", "HTTP items by status class", 1, 1,
    { status_class: data.response && data.response.status >= 500 ? "5xx" : "other", s_script: "compat" });
}
"#;

#[test]
fn compat_prometheus_vector_is_scraped_by_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = capture(dir.path());
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let prom = require!(start_prometheus(addr), "prometheus (Debian package prometheus)");
    let pport = prom.port;
    // The capture loops for a few seconds, so Prometheus scrapes a live skua.
    run_agents(
        dir.path(),
        &pcap,
        &[("prom", PROMETHEUS_AGENT)],
        json!({}),
        json!({"metrics_listen": addr.to_string()}),
        &[],
        &["--loop", "0", "--duration", "6"],
    );
    let (s, body) = http10(
        "GET",
        pport,
        &format!("/api/v1/query?query={}", q("max_over_time(compat_http_items[1m])")),
        "",
    )
    .unwrap();
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let series = v["data"]["result"].as_array().cloned().unwrap_or_default();
    let classes: std::collections::BTreeSet<&str> =
        series.iter().filter_map(|s| s["metric"]["status_class"].as_str()).collect();
    assert_eq!(classes, ["5xx", "other"].into_iter().collect(), "{body}");
    assert!(series.iter().all(|s| s["metric"]["s_script"] == "compat"));
    let fivexx = series.iter().find(|s| s["metric"]["status_class"] == "5xx").unwrap();
    assert!(fivexx["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 1.0);
}

const FILE_AGENT: &str = r#"
// Kubeshark's file helpers, and what the sandbox refuses.
var report = {};
function note(k) { return function (v) { report[k] = v === undefined ? "ok" : v; }; }
function refused(k) { return function (e) { report[k] = "refused: " + e.message; }; }
file.delete("work");
file.mkdir("work/deep/er");
file.write("work/a.txt", "alpha");
file.append("work/a.txt", "+beta");
file.copy("work/a.txt", "work/deep");
file.move("work/a.txt", "work/b.txt");
file.temp("data", "work", "json").then(note("temp"), refused("temp"));
file.mkdirTemp("snap").then(note("mkdirTemp"), refused("mkdirTemp"));
file.read("work/deep/a.txt").then(note("copied"), refused("copied"));
file.read("work/b.txt").then(note("moved"), refused("moved"));
file.write("../escape.txt", "x").then(note("dotdot"), refused("dotdot"));
file.write("/tmp/skua-escape.txt", "x").then(note("absolute"), refused("absolute"));
file.write("link/escape.txt", "x").then(note("symlink"), refused("symlink"));
file.write("big.bin", new Array(2049).join("x")).then(note("quota"), refused("quota"));
jobs.schedule("report", "* * * * * *", function () {
  if (Object.keys(report).length < 8) return;
  vendor.webhook("POST", env.REPORT_URL, JSON.stringify(report));
  jobs.remove("report");
});
"#;

#[test]
fn compat_file_helpers_stay_in_the_agent_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = capture(dir.path());
    let outside = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("data/files");
    std::fs::create_dir_all(&agent_dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), agent_dir.join("link")).unwrap();
    let srv = TestServer::start(|_, _| Answer::new(200, "ok"));
    let env = json!({"REPORT_URL": srv.url("/report")});
    run_agents(
        dir.path(),
        &pcap,
        &[("files", FILE_AGENT)],
        env,
        json!({"file": {"quota_bytes": 1024}}),
        &[],
        &["--loop", "0", "--duration", "3"],
    );
    let got = srv.received();
    assert!(!got.is_empty(), "no report");
    let r: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(r["copied"], "alpha+beta", "{r}");
    assert_eq!(r["moved"], "alpha+beta", "{r}");
    assert!(
        r["temp"].as_str().unwrap().starts_with("work/data")
            && r["temp"].as_str().unwrap().ends_with(".json"),
        "{r}"
    );
    assert!(r["mkdirTemp"].as_str().unwrap().starts_with("snap"), "{r}");
    assert!(r["dotdot"].as_str().unwrap().contains("'..' is not allowed"), "{r}");
    assert!(r["absolute"].as_str().unwrap().contains("absolute paths are not allowed"), "{r}");
    assert!(r["symlink"].as_str().unwrap().contains("symbolic link"), "{r}");
    assert!(r["quota"].as_str().unwrap().contains("quota exceeded"), "{r}");
    assert!(!outside.path().join("escape.txt").exists());
    assert!(!Path::new("/tmp/skua-escape.txt").exists());
    assert!(!dir.path().join("data/escape.txt").exists());
}
