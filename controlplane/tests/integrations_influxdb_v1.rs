//! vendor.influxdb against a real InfluxDB 1.x (Debian's `influxdb` 1.6),
//! started by the test on free ports with a temporary data directory: the
//! v1 `/write` path, line-protocol escaping read back through `/query`,
//! numbers as floats (or integers when configured).

mod support;

use std::collections::BTreeMap;

use controlplane::executor::{Executor, ExecutorContext};
use controlplane::integrations::config::{InfluxApi, IntegrationsConfig};
use scripting::Effect;
use serde_json::{json, Value};
use support::*;

#[test]
fn v1_write_round_trips_escaping_and_types() {
    let influx = require!(start_influxd(), "influxd (Debian package influxdb)");
    let mut cfg = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    cfg.influxdb.api = InfluxApi::V1;
    let ex = Executor::start(cfg.clone(), ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    let base = format!("http://127.0.0.1:{}", influx.port);

    let mut tags = BTreeMap::new();
    tags.insert("service name".to_string(), "api,v2=x y".to_string());
    tags.insert("empty".to_string(), String::new());
    let tricky = "say \"hi\" \\ there,\nsecond line";
    for status in [200, 503, 503] {
        let e = Effect::InfluxDb {
            url: base.clone(),
            token: String::new(),
            org: String::new(),
            bucket: "skua".into(),
            measurement: "http status,v1".into(),
            data: json!({"status": status, "elapsed ms": 12.5, "note": tricky, "ok": status < 500}),
            tags: tags.clone(),
        };
        let r = call(&h, "a", e).unwrap();
        assert_eq!(r["status"], 204);
    }
    // The same through an explicit v1 URL with a retention policy.
    let e = Effect::InfluxDb {
        url: format!("{base}/write"),
        token: String::new(),
        org: String::new(),
        bucket: "skua/autogen".into(),
        measurement: "via_url".into(),
        data: json!(7),
        tags: BTreeMap::new(),
    };
    call(&h, "a", e).unwrap();

    let v = query(influx.port, r#"SELECT * FROM "http status,v1""#);
    let series = &v["results"][0]["series"][0];
    assert_eq!(series["name"], "http status,v1");
    let cols: Vec<&str> =
        series["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(cols, ["time", "elapsed ms", "note", "ok", "service name", "status"]);
    let rows = series["values"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][2], tricky, "string field read back exactly");
    assert_eq!(rows[0][4], "api,v2=x y", "tag value read back exactly");
    let statuses: Vec<f64> = rows.iter().map(|r| r[5].as_f64().unwrap()).collect();
    assert_eq!(statuses, [200.0, 503.0, 503.0]);
    assert_eq!((rows[0][3].as_bool(), rows[1][3].as_bool()), (Some(true), Some(false)));
    let v = query(influx.port, r#"SELECT count(status) FROM "http status,v1" WHERE status >= 500"#);
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 2);
    // Numbers are floats, so a field never changes type.
    let v = query(influx.port, r#"SHOW FIELD KEYS FROM "http status,v1""#);
    let types: BTreeMap<String, String> = v["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(types["status"], "float");
    assert_eq!(types["ok"], "boolean");
    assert_eq!(types["note"], "string");
    let v = query(influx.port, "SELECT value FROM via_url");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 7);

    // integers: true writes whole numbers as integers; InfluxDB then refuses
    // a float in that field (a 400, not retried).
    drop(ex);
    cfg.influxdb.integers = true;
    let ex = Executor::start(cfg, ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    let point = |x: Value| Effect::InfluxDb {
        url: base.clone(),
        token: String::new(),
        org: String::new(),
        bucket: "skua".into(),
        measurement: "ints".into(),
        data: json!({ "n": x }),
        tags: BTreeMap::new(),
    };
    call(&h, "a", point(json!(42))).unwrap();
    let v = query(influx.port, "SHOW FIELD KEYS FROM ints");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], "integer");
    let err = call(&h, "a", point(json!(1.5))).unwrap_err();
    assert!(err.contains("HTTP 400") && err.contains("conflict"), "{err}");
    let s = h.counters().into_iter().find(|s| s.integration.name() == "influxdb").unwrap();
    assert_eq!((s.sent, s.failed, s.retried), (1, 1, 0));
}

#[test]
fn v1_server_down_is_retried_then_reported() {
    let port = closed_port();
    let mut cfg = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    cfg.influxdb.api = InfluxApi::V1;
    cfg.retry.max_retries = 2;
    cfg.retry.initial_backoff_ms = 10;
    let ex = Executor::start(cfg, ExecutorContext::default(), None).unwrap();
    let e = Effect::InfluxDb {
        url: format!("http://127.0.0.1:{port}"),
        token: "user:pass".into(),
        org: String::new(),
        bucket: "skua".into(),
        measurement: "m".into(),
        data: json!({"a": 1}),
        tags: BTreeMap::new(),
    };
    let err = call(&ex.handle(), "a", e).unwrap_err();
    assert!(err.contains("connection failed") && err.contains("after 3 attempts"), "{err}");
}
