//! `/metrics`: the exposition of every family (dataplane per core,
//! reassembly, items per protocol, agent hook stats with quantiles,
//! integrations, agents' own metrics, build info) passes `promtool check
//! metrics` (Debian's `prometheus` package), served by the real server.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use controlplane::executor::{Executor, ExecutorContext};
use controlplane::integrations::config::IntegrationsConfig;
use controlplane::metrics::{self, CoreSample, MetricsSnapshot};
use dataplane::source::{DeviceSample, PortSample, QueueSample};
use dataplane::{CoreCounters, DropReason};
use reassembly::ReassemblyCounters;
use scripting::{CallSite, Effect, Hook, HookStats, MetricKind, RuntimeId};
use support::*;

fn promtool_check(text: &str) -> Result<String, String> {
    let bin = find_binary("promtool", &["/usr/bin/promtool"]).ok_or("no promtool")?;
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && said.trim().is_empty() {
        Ok(said)
    } else {
        Err(said)
    }
}

fn snapshot(ex: &Executor) -> MetricsSnapshot {
    let h = ex.handle();
    let mut core0 = CoreCounters {
        packets: 1000,
        bytes: 800_000,
        captured_bytes: 790_000,
        ipv4: 990,
        tcp: 900,
        udp: 90,
        items: 40,
        flows: 12,
        ..Default::default()
    };
    core0.drop(DropReason::NonIp);
    core0.drop(DropReason::RingFull);
    let mut r0 = ReassemblyCounters { packets: 990, flows_created: 12, ..Default::default() };
    r0.items.0[reassembly::AppProtocol::Http as usize] = 30;
    r0.items.0[reassembly::AppProtocol::Dns as usize] = 10;
    r0.tcp.gaps = 1;
    r0.dissection_errors.0[0] = 2;
    let hook = |agent: &str, site| HookStats {
        runtime: RuntimeId(0),
        agent: agent.into(),
        site,
        calls: 40,
        errors: 1,
        interrupts: 0,
        out_of_memory: 0,
        result_waits: 3,
        result_wait_ns: 1_500_000,
        result_waits_over_budget: 1,
        helper_argument_errors: 2,
        limits_hit: 1,
        console_lines_suppressed: 5,
        shed: 7,
        sum_ns: 4_000_000,
        p50_ns: 80_000,
        p99_ns: 400_000,
        p999_ns: 900_000,
        max_ns: 1_000_000,
    };
    MetricsSnapshot {
        cores: vec![
            CoreSample { core: 0, counters: core0, reassembly: Some(r0) },
            CoreSample {
                core: 1,
                counters: CoreCounters::default(),
                reassembly: Some(ReassemblyCounters::default()),
            },
        ],
        hooks: vec![
            hook("slack-5xx", CallSite::Hook(Hook::ItemCaptured)),
            hook("weird \"name\"\\x", CallSite::Job),
        ],
        integrations: h.counters(),
        agent_metrics: h.agent_metrics(),
        effect_queue_rejected: Some(3),
        limit_hits: Some(h.limit_hits()),
        kubernetes: Some(controlplane::kube::KubeSnapshot {
            pod_events: 7,
            pod_events_dropped: 1,
            relists: 2,
            ..Default::default()
        }),
        uptime: Some(std::time::Duration::from_millis(12_345)),
        devices: DeviceSample {
            ports: vec![PortSample {
                port: "0000:3b:02.0".into(),
                packets: 1000,
                bytes: 800_000,
                missed: 4,
                ..Default::default()
            }],
            queues: (0..2)
                .map(|q| QueueSample {
                    port: "0000:3b:02.0".into(),
                    queue: q,
                    packets: 500,
                    bytes: 400_000,
                    errors: 0,
                })
                .collect(),
        },
        retention: Some(controlplane::metrics::RetentionSample {
            cores: vec![dataplane::retention::RetentionStats {
                core: 0,
                capacity_bytes: 1 << 20,
                used_bytes: 4096,
                packets: 900,
                evicted_bytes: 10,
                evicted_age: 2,
                too_big: 1,
            }],
            misses: vec![("never_seen", 1), ("evicted_bytes", 2)],
            store: Default::default(),
        }),
    }
}

#[test]
fn promtool_accepts_the_exposition_served_on_metrics() {
    let cfg = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    let ex = Executor::start(cfg, ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    // Some integration traffic and agents' own metrics, labels needing escapes.
    let srv = TestServer::start(|_, _| Answer::new(200, "ok"));
    call(&h, "a", webhook("POST", &srv.url("/"), "{}")).unwrap();
    let mut labels = BTreeMap::new();
    labels.insert("path".to_string(), "/a \"quoted\" \\ back\nslash".to_string());
    let metric = |name: &str, kind, value| Effect::PrometheusMetric {
        name: name.into(),
        help: format!("{name} from an agent"),
        kind,
        value,
        labels: labels.clone(),
    };
    call(&h, "a", metric("http_5xx_responses_total", MetricKind::Counter, 2.0)).unwrap();
    call(&h, "a", metric("http_5xx_responses_total", MetricKind::Counter, 3.0)).unwrap();
    call(&h, "a", metric("inflight_requests", MetricKind::Gauge, 7.0)).unwrap();
    assert!(call(&h, "a", metric("bad-name", MetricKind::Gauge, 1.0)).is_err());

    let text = metrics::render(&snapshot(&ex));
    for family in [
        "skua_build_info",
        "skua_dataplane_packets_total",
        "skua_dataplane_dropped_packets_total",
        "skua_nic_queue_received_packets_total",
        "skua_nic_missed_packets_total",
        "skua_reassembly_gaps_total",
        "skua_items_total",
        "skua_agent_calls_total",
        "skua_agent_call_duration_seconds",
        "skua_agent_result_waits_total",
        "skua_agent_result_wait_seconds_total",
        "skua_agent_result_waits_over_budget_total",
        "skua_integration_requests_total",
        "skua_integration_queue_depth",
        "skua_integration_delivery_duration_seconds",
        "skua_retention_evicted_packets_total",
        "skua_pcap_stream_misses_total",
        "skua_pcap_store_evicted_files_total",
        "http_5xx_responses_total",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family} missing");
    }
    assert!(text.contains(r#"skua_items_total{core="0",protocol="http"} 30"#));
    assert!(text
        .contains(r#"skua_nic_queue_received_packets_total{port="0000:3b:02.0",queue="1"} 500"#));
    assert!(text.contains(r#"skua_agent_call_duration_seconds{runtime="rt0",agent="slack-5xx",hook="onItemCaptured",quantile="0.99"} 0.0004"#));
    assert!(text.contains(r#"skua_agent_result_wait_seconds_total{runtime="rt0",agent="slack-5xx",hook="onItemCaptured"} 0.0015"#), "{text}");
    assert!(
        text.contains(r#"http_5xx_responses_total{path="/a \"quoted\" \\ back\nslash"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skua_integration_requests_total{integration="webhook",result="sent"} 1"#)
    );

    // Every family is documented.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .unwrap();
    for family in
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next())
    {
        if family.starts_with("skua_") {
            assert!(doc.contains(&format!("`{family}`")), "{family} is not in docs/metrics.md");
        }
    }

    // Served over HTTP.
    let source: metrics::Source = {
        let text = text.clone();
        Arc::new(move || text.clone())
    };
    let server = metrics::serve(ex.tokio().unwrap(), "127.0.0.1:0", source).unwrap();
    let port = server.local_addr.port();
    let (status, body) = http10("GET", port, "/metrics", "").unwrap();
    assert_eq!((status, body.as_str()), (200, text.as_str()));
    assert_eq!(http10("GET", port, "/other", "").unwrap().0, 404);
    // A taken port is an error at start-up, naming the address.
    let e =
        metrics::serve(ex.tokio().unwrap(), &server.local_addr.to_string(), Arc::new(String::new))
            .err()
            .unwrap();
    assert!(e.to_string().contains(&server.local_addr.to_string()), "{e}");

    let promtool = require!(
        find_binary("promtool", &["/usr/bin/promtool"]),
        "promtool (Debian package prometheus)"
    );
    let _ = promtool;
    if let Err(said) = promtool_check(&body) {
        panic!("promtool check metrics failed:\n{said}\n--- exposition ---\n{body}");
    }
}
