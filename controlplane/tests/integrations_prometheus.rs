//! prometheus.vector (and metric) on `/metrics`, scraped by a real
//! Prometheus server (Debian's `prometheus`) the test starts with a scrape
//! config in a temp dir, and read back through its HTTP query API.

mod support;

use std::time::Duration;

use controlplane::control::ControlPlane;
use controlplane::executor::ExecutorContext;
use controlplane::integrations::config::IntegrationsConfig;
use scripting::{Effect, MetricKind};
use serde_json::Value;
use support::*;

fn vector(name: &str, kind: MetricKind, value: f64, labels: &[(&str, &str)]) -> Effect {
    Effect::PrometheusVector {
        name: name.into(),
        help: "Pod traffic activity".into(),
        kind,
        value,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn query(port: u16, q_: &str) -> Vec<Value> {
    let (s, body) = http10("GET", port, &format!("/api/v1/query?query={}", q(q_)), "").unwrap();
    if s != 200 {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn prometheus_scrapes_vectors_one_series_per_label_set() {
    let port = free_port();
    let cfg = IntegrationsConfig {
        metrics_listen: format!("127.0.0.1:{port}"),
        prometheus: controlplane::integrations::config::PrometheusConfig { max_series: 3 },
        ..Default::default()
    };
    let data = tempfile::tempdir().unwrap();
    let ctx = ExecutorContext { data_dir: data.path().to_path_buf(), ..Default::default() };
    let cp = ControlPlane::start(&cfg, ctx, None, controlplane::metrics::MetricsSnapshot::default)
        .unwrap();
    let addr = cp.metrics_addr().unwrap();
    let prom = require!(start_prometheus(addr), "prometheus (Debian package prometheus)");
    let h = cp.handle();
    for (p, v) in [("checkout", 3.0), ("checkout", 2.0), ("cart", 7.0)] {
        let labels = [("s_pod", p), ("s_script", "pod_traffic")];
        call(&h, "a", vector("pod_traffic_bytes", MetricKind::Counter, v, &labels)).unwrap();
    }
    call(&h, "a", vector("pod_active", MetricKind::Gauge, 1.0, &[("s_pod", "cart")])).unwrap();
    // Past max_series: refused, counted, the others kept.
    let e =
        call(&h, "a", vector("pod_active", MetricKind::Gauge, 1.0, &[("s_pod", "x")])).unwrap_err();
    assert!(e.contains("series limit"), "{e}");
    // Bad calls are errors, not series.
    assert!(
        call(&h, "a", vector("pod_active", MetricKind::Untyped, 1.0, &[("s_pod", "y")])).is_err()
    );

    let mut got = Vec::new();
    let found = wait_until(Duration::from_secs(60), || {
        got = query(prom.port, "pod_traffic_bytes");
        got.len() == 2
    });
    assert!(found, "Prometheus never saw both series: {got:?}");
    let mut series: Vec<(String, String, String)> = got
        .iter()
        .map(|s| {
            (
                s["metric"]["s_pod"].as_str().unwrap().to_string(),
                s["metric"]["s_script"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    series.sort();
    assert_eq!(
        series,
        [
            ("cart".to_string(), "pod_traffic".to_string(), "7".to_string()),
            ("checkout".to_string(), "pod_traffic".to_string(), "5".to_string()),
        ]
    );
    let active = query(prom.port, "pod_active");
    assert_eq!(active.len(), 1, "{active:?}");
    let refused = query(prom.port, "skua_agent_metric_series_refused_total");
    assert_eq!(refused[0]["value"][1], "1", "{refused:?}");
    // The counter vec is a counter to Prometheus: rate() works on it.
    let meta = http10("GET", prom.port, "/api/v1/metadata?metric=pod_traffic_bytes", "").unwrap().1;
    assert!(meta.contains("\"type\":\"counter\""), "{meta}");
    drop(cp.shutdown());
}
