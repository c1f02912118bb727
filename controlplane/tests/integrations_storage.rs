//! vendor.s3 / vendor.gcs / vendor.azure at the executor level, against
//! real local servers the tests start: moto (S3), gcp-storage-emulator
//! (GCS) and Azurite (Azure Blob). Every object is read back through the
//! server with the store's own client (boto3, the JSON API, Microsoft's
//! SDK) and compared byte for byte.

mod support;

use std::path::{Path, PathBuf};

use controlplane::executor::{Executor, ExecutorContext, ExecutorHandle};
use controlplane::integrations::config::IntegrationsConfig;
use controlplane::integrations::{Integration, IntegrationSnapshot};
use scripting::Effect;
use support::*;

const AGENT: &str = "recorder";

struct Setup {
    _ex: Executor,
    h: ExecutorHandle,
    data: tempfile::TempDir,
}

impl Setup {
    fn new(cfg: IntegrationsConfig) -> Setup {
        let data = tempfile::tempdir().unwrap();
        let ctx = ExecutorContext {
            data_dir: data.path().to_path_buf(),
            node_name: "node-a".into(),
            node_ip: "10.0.0.1".into(),
            ..Default::default()
        };
        let ex = Executor::start(cfg, ctx, None).unwrap();
        let h = ex.handle();
        Setup { _ex: ex, h, data }
    }

    /// Writes `bytes` into the agent's directory as `rel`.
    fn file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.data.path().join(AGENT).join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        PathBuf::from(rel)
    }

    fn stats(&self, i: Integration) -> IntegrationSnapshot {
        self.h.counters().into_iter().find(|s| s.integration == i).unwrap()
    }
}

fn config() -> IntegrationsConfig {
    let mut c = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    c.retry.max_retries = 1;
    c.retry.initial_backoff_ms = 20;
    c.retry.max_backoff_ms = 50;
    // The smallest part S3 takes, so a 12 MiB file goes in three parts.
    c.storage.part_bytes = 5 << 20;
    c
}

/// Bytes no two tests share and no encoding keeps intact by accident.
fn payload(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn s3_put(bucket: &str, path: &Path) -> Effect {
    Effect::S3Put {
        bucket: bucket.into(),
        path: path.into(),
        region: "us-east-1".into(),
        key_id: Some("AKIDTEST".into()),
        secret: Some("secret".into()),
    }
}

#[test]
fn s3_put_reads_back_multipart_too_and_clear_takes_only_this_nodes_prefix() {
    let (_moto, port) =
        require!(start_moto(), "moto (pip install moto[server] into /var/tmp/skua-venv-storage)");
    boto(port, &["mb", "dfir"]);
    let mut cfg = config();
    cfg.s3.endpoint = format!("http://127.0.0.1:{port}");
    let s = Setup::new(cfg);

    let small = payload(300_000, 1);
    let big = payload(12 << 20, 2);
    let p1 = s.file("1700000000.pcap", &small);
    let p2 = s.file("snap/big.tar.gz", &big);
    let url = call(&s.h, AGENT, s3_put("dfir", &p1)).unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}/dfir/node-a_10.0.0.1/1700000000.pcap"));
    assert_eq!(boto(port, &["get", "dfir", "node-a_10.0.0.1/1700000000.pcap"]), small);
    let url = call(&s.h, AGENT, s3_put("dfir", &p2)).unwrap();
    assert!(url.as_str().unwrap().ends_with("/dfir/node-a_10.0.0.1/big.tar.gz"), "{url}");
    assert_eq!(boto(port, &["get", "dfir", "node-a_10.0.0.1/big.tar.gz"]), big, "multipart");

    // Another node's objects and this node's other runs.
    boto(port, &["put", "dfir", "node-b_10.0.0.2/x.pcap", "theirs"]);
    boto(port, &["put", "dfir", "node-a_10.0.0.12/y.pcap", "similar ip, not ours"]);
    boto(port, &["put", "dfir", "node-a_10.0.0.1_run7/z.pcap", "an older run of ours"]);
    let cleared = call(
        &s.h,
        AGENT,
        Effect::S3Clear {
            bucket: "dfir".into(),
            region: "us-east-1".into(),
            key_id: Some("AKIDTEST".into()),
            secret: Some("secret".into()),
        },
    )
    .unwrap();
    assert_eq!(cleared, 3);
    let left = String::from_utf8(boto(port, &["ls", "dfir"])).unwrap();
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(left, ["node-a_10.0.0.12/y.pcap", "node-b_10.0.0.2/x.pcap"]);

    // Failures: a missing bucket, a missing file, a path leading out.
    let e = call(&s.h, AGENT, s3_put("no-such-bucket", &p1)).unwrap_err();
    assert!(e.starts_with("vendor.s3.put: s3: NotFound"), "{e}");
    let e = call(&s.h, AGENT, s3_put("dfir", Path::new("missing.pcap"))).unwrap_err();
    assert!(e.contains("missing.pcap"), "{e}");
    let e = call(&s.h, AGENT, s3_put("dfir", Path::new("/etc/passwd"))).unwrap_err();
    assert!(e.contains("outside the agent directory"), "{e}");
    let st = s.stats(Integration::S3);
    assert_eq!((st.sent, st.failed), (3, 3), "{st:?}");
}

#[test]
fn s3_uploads_a_pcap_by_its_absolute_path_in_the_pcap_folder() {
    let (_moto, port) =
        require!(start_moto(), "moto (pip install moto[server] into /var/tmp/skua-venv-storage)");
    boto(port, &["mb", "pcaps"]);
    let mut cfg = config();
    cfg.s3.endpoint = format!("http://127.0.0.1:{port}");
    cfg.storage.run_id = "r1".into();
    let s = Setup::new(cfg);
    let pcap_dir = s.data.path().join("pcap");
    std::fs::create_dir_all(&pcap_dir).unwrap();
    let bytes = payload(4096, 3);
    std::fs::write(pcap_dir.join("000042.pcap"), &bytes).unwrap();
    let url = call(&s.h, AGENT, s3_put("pcaps", &pcap_dir.join("000042.pcap"))).unwrap();
    assert!(url.as_str().unwrap().ends_with("/pcaps/node-a_10.0.0.1_r1/000042.pcap"), "{url}");
    assert_eq!(boto(port, &["get", "pcaps", "node-a_10.0.0.1_r1/000042.pcap"]), bytes);
}

#[test]
fn gcs_put_with_a_service_account_key_reads_back_and_clears() {
    let (_gcs, port) = require!(
        start_gcs_emulator("traffic"),
        "gcp-storage-emulator (pip install gcp-storage-emulator into /var/tmp/skua-venv-storage)"
    );
    let mut cfg = config();
    cfg.gcs.endpoint = format!("http://127.0.0.1:{port}");
    let s = Setup::new(cfg);
    let key = gcs_service_account_key();
    let bytes = payload(200_000, 4);
    let p = s.file("name_resolution_history.json", &bytes);
    let put = Effect::GcsPut {
        bucket: "traffic".into(),
        path: p.clone(),
        service_account_key: Some(key.clone()),
    };
    let url = call(&s.h, AGENT, put).unwrap();
    assert_eq!(
        url,
        format!("http://127.0.0.1:{port}/traffic/node-a_10.0.0.1/name_resolution_history.json")
    );
    let (status, got) = http_get_bytes(
        port,
        "/download/storage/v1/b/traffic/o/node-a_10.0.0.1%2Fname_resolution_history.json?alt=media",
    );
    assert_eq!(status, 200);
    assert_eq!(got, bytes);
    let n = call(
        &s.h,
        AGENT,
        Effect::GcsClear { bucket: "traffic".into(), service_account_key: Some(key.clone()) },
    )
    .unwrap();
    assert_eq!(n, 1);
    let (_, list) = http_get_bytes(port, "/storage/v1/b/traffic/o");
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    assert!(list["items"].as_array().is_none_or(|a| a.is_empty()), "{list}");

    // A key that is not a key.
    let e = call(
        &s.h,
        AGENT,
        Effect::GcsPut {
            bucket: "traffic".into(),
            path: p,
            service_account_key: Some("{}".into()),
        },
    )
    .unwrap_err();
    assert!(e.starts_with("vendor.gcs.put: "), "{e}");
    let st = s.stats(Integration::Gcs);
    assert_eq!((st.sent, st.failed), (2, 1), "{st:?}");
}

#[test]
fn azure_put_by_connection_string_and_by_key_and_a_wrong_key_is_denied() {
    let az =
        require!(start_azurite(), "azurite and @azure/storage-blob (npm, into /var/tmp/skua-npm)");
    azure_sdk(&az, &["mb", "captures"]);
    let mut cfg = config();
    cfg.azure.endpoint = format!("http://127.0.0.1:{}", az.port);
    let s = Setup::new(cfg);
    let small = payload(70_000, 5);
    let big = payload(11 << 20, 6);
    let p1 = s.file("a.pcap", &small);
    let p2 = s.file("b.pcap", &big);

    let by_cs = Effect::AzurePut {
        container: "captures".into(),
        path: p1,
        account: None,
        key: None,
        connection_string: Some(az.connection_string()),
    };
    let url = call(&s.h, AGENT, by_cs).unwrap();
    assert_eq!(
        url,
        format!("http://127.0.0.1:{}/devstoreaccount1/captures/node-a_10.0.0.1/a.pcap", az.port)
    );
    assert_eq!(azure_sdk(&az, &["get", "captures", "node-a_10.0.0.1/a.pcap"]), small);

    let by_key = |key: &str| Effect::AzurePut {
        container: "captures".into(),
        path: p2.clone(),
        account: Some("devstoreaccount1".into()),
        key: Some(key.into()),
        connection_string: None,
    };
    call(&s.h, AGENT, by_key(AZURITE_KEY)).unwrap();
    assert_eq!(azure_sdk(&az, &["get", "captures", "node-a_10.0.0.1/b.pcap"]), big, "blocks");

    // Denied: a well-formed key that is not the account's.
    let e = call(&s.h, AGENT, by_key("d3Jvbmcta2V5LXdyb25nLWtleQ==")).unwrap_err();
    assert!(
        e.starts_with("vendor.azure.put: azure: PermissionDenied")
            || e.starts_with("vendor.azure.put: azure: Unauthenticated"),
        "{e}"
    );
    let st = s.stats(Integration::Azure);
    assert_eq!((st.sent, st.failed), (2, 1), "{st:?}");
}

#[test]
fn an_unreachable_store_is_a_clear_error_and_counted() {
    let mut cfg = config();
    cfg.s3.endpoint = format!("http://127.0.0.1:{}", closed_port());
    cfg.s3.timeout_ms = 5_000;
    let s = Setup::new(cfg);
    let p = s.file("x.pcap", b"x");
    let e = call(&s.h, AGENT, s3_put("b", &p)).unwrap_err();
    assert!(e.starts_with("vendor.s3.put: "), "{e}");
    assert_eq!(s.stats(Integration::S3).failed, 1);
}
