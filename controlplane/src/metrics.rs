//! `/metrics`: skua's counters in the Prometheus text exposition format
//! (version 0.0.4), rendered from snapshot structs, and a small hyper
//! server for it.
//!
//! Names follow Prometheus' conventions: a `skua_` prefix, base units in the
//! name (`_seconds`, `_bytes`), `_total` on counters and on nothing else,
//! one `# HELP` and `# TYPE` per family with all its samples together, label
//! values escaped (`\\`, `\"`, `\n`). A family without samples is left out.
//! Agents' own metrics (`prometheus.metric`) follow under their own names.
//! `promtool check metrics` passes on the output
//! (`controlplane/tests/metrics_promtool.rs`).
//!
//! Why not `prometheus-client` here (the hub's own counters use it,
//! `hub::metrics`): the worker's values are not metrics objects but
//! snapshots. A dataplane core bumps plain `u64`s (no atomics on the
//! per-packet path) and copies them out per burst; reassembly, agents'
//! hook stats and integrations hand out snapshot structs; agents define
//! families (names, types, labels) at run time. With `prometheus-client`
//! each scrape would first copy every snapshot into a registry's atomics
//! (or implement its `Collector` per source, which is this module's
//! rendering under another name) only to encode them the same way; the
//! text format itself is the few `write!`s below.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dataplane::source::DeviceSample;
use dataplane::{CoreCounters, DropReason};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use reassembly::dissectors::ErrorKind;
use reassembly::ReassemblyCounters;
use scripting::HookStats;

use crate::integrations::counters::LATENCY_BUCKETS_S;
use crate::integrations::prometheus::AgentFamily;
use crate::integrations::IntegrationSnapshot;

/// One dataplane core's counters.
#[derive(Debug, Clone, Default)]
pub struct CoreSample {
    pub core: usize,
    pub counters: CoreCounters,
    /// The core's reassembly counters, when it dissects.
    pub reassembly: Option<ReassemblyCounters>,
}

/// Everything `/metrics` shows, gathered by the caller.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub cores: Vec<CoreSample>,
    /// Per agent, runtime and hook (`scripting` stats).
    pub hooks: Vec<HookStats>,
    pub integrations: Vec<IntegrationSnapshot>,
    pub agent_metrics: Vec<AgentFamily>,
    /// I/O helper calls refused because the effect queue between the
    /// runtimes and the control plane was full (`EffectSink::rejected_full`).
    pub effect_queue_rejected: Option<u64>,
    /// Named limits of agents' helpers hit (file quota, metric series).
    pub limit_hits: Option<crate::executor::LimitHits>,
    /// The Kubernetes watchers' counters, when they run.
    pub kubernetes: Option<crate::kube::KubeSnapshot>,
    pub uptime: Option<Duration>,
    /// The capture devices' own port and RX queue counters (DPDK).
    pub devices: DeviceSample,
    /// Packet retention and the pcap folder, when retention is on.
    pub retention: Option<RetentionSample>,
}

/// Packet retention (`dataplane::retention`) and the pcap files written
/// from it.
#[derive(Debug, Clone, Default)]
pub struct RetentionSample {
    pub cores: Vec<dataplane::retention::RetentionStats>,
    /// `pcap.path`/`pcap.snapshot` streams with nothing retained, by reason.
    pub misses: Vec<(&'static str, u64)>,
    pub store: crate::integrations::pcap::StoreStats,
}

/// `text/plain; version=0.0.4`: the content type Prometheus expects.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers as integers, floats in Go's notation for the
/// special values.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Collects one family's samples, then writes it (header first) if any.
struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
    help: &'a str,
    kind: &'a str,
    body: String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'a str, kind: &'a str, help: &'a str) -> Self {
        Family { out, name, help, kind, body: String::new() }
    }

    fn sample_named(&mut self, suffix: &str, labels: &[(&str, &str)], value: &str) {
        self.body.push_str(self.name);
        self.body.push_str(suffix);
        if !labels.is_empty() {
            self.body.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.body.push(',');
                }
                let _ = write!(self.body, "{k}=\"{}\"", escape_label(v));
            }
            self.body.push('}');
        }
        self.body.push(' ');
        self.body.push_str(value);
        self.body.push('\n');
    }

    fn u(&mut self, labels: &[(&str, &str)], v: u64) {
        self.sample_named("", labels, &v.to_string());
    }

    fn f(&mut self, labels: &[(&str, &str)], v: f64) {
        self.sample_named("", labels, &num(v));
    }
}

impl Drop for Family<'_> {
    fn drop(&mut self) {
        if self.body.is_empty() {
            return;
        }
        let _ = writeln!(self.out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(self.out, "# TYPE {} {}", self.name, self.kind);
        self.out.push_str(&self.body);
    }
}

/// The NIC's counters, per port and per RX queue: what arrived below skua
/// and what the device dropped because a queue was not drained in time.
fn devices(out: &mut String, d: &DeviceSample) {
    type Get = fn(&dataplane::source::QueueSample) -> u64;
    let queue_families: [(&str, &str, Get); 3] = [
        (
            "skua_nic_queue_received_packets_total",
            "Frames the device delivered to the RX queue.",
            |q| q.packets,
        ),
        (
            "skua_nic_queue_received_bytes_total",
            "Bytes the device delivered to the RX queue.",
            |q| q.bytes,
        ),
        (
            "skua_nic_queue_errors_total",
            "Receive errors the device counted on the RX queue.",
            |q| q.errors,
        ),
    ];
    for (name, help, get) in queue_families {
        let mut f = Family::new(out, name, "counter", help);
        for q in &d.queues {
            f.u(&[("port", &q.port), ("queue", &q.queue.to_string())], get(q));
        }
    }
    type GetPort = fn(&dataplane::source::PortSample) -> u64;
    let port_families: [(&str, &str, GetPort); 5] = [
        ("skua_nic_received_packets_total", "Frames the port received.", |p| p.packets),
        ("skua_nic_received_bytes_total", "Bytes the port received.", |p| p.bytes),
        ("skua_nic_missed_packets_total", "Frames the port dropped because no RX descriptor was free (a queue not drained in time).", |p| p.missed),
        ("skua_nic_errors_total", "Erroneous frames the port received.", |p| p.errors),
        ("skua_nic_no_buffer_total", "Receive buffer (mbuf) allocation failures.", |p| p.no_buffer),
    ];
    for (name, help, get) in port_families {
        let mut f = Family::new(out, name, "counter", help);
        for p in &d.ports {
            f.u(&[("port", &p.port)], get(p));
        }
    }
}

fn core_counter(
    out: &mut String,
    s: &MetricsSnapshot,
    name: &str,
    help: &str,
    get: impl Fn(&CoreCounters) -> u64,
) {
    let mut f = Family::new(out, name, "counter", help);
    for c in &s.cores {
        f.u(&[("core", &c.core.to_string())], get(&c.counters));
    }
}

fn reassembly_counter(
    out: &mut String,
    s: &MetricsSnapshot,
    name: &str,
    help: &str,
    get: impl Fn(&ReassemblyCounters) -> u64,
) {
    let mut f = Family::new(out, name, "counter", help);
    for c in &s.cores {
        if let Some(r) = &c.reassembly {
            f.u(&[("core", &c.core.to_string())], get(r));
        }
    }
}

fn hook_counter(
    out: &mut String,
    s: &MetricsSnapshot,
    name: &str,
    help: &str,
    get: impl Fn(&HookStats) -> u64,
) {
    let mut f = Family::new(out, name, "counter", help);
    for h in &s.hooks {
        f.u(
            &[("runtime", &h.runtime.to_string()), ("agent", &h.agent), ("hook", h.site_name())],
            get(h),
        );
    }
}

/// A per-hook family of nanosecond figures, in seconds.
fn hook_seconds(
    out: &mut String,
    s: &MetricsSnapshot,
    (name, kind): (&str, &str),
    help: &str,
    get_ns: impl Fn(&HookStats) -> u64,
) {
    let mut f = Family::new(out, name, kind, help);
    for h in &s.hooks {
        f.f(
            &[("runtime", &h.runtime.to_string()), ("agent", &h.agent), ("hook", h.site_name())],
            get_ns(h) as f64 / 1e9,
        );
    }
}

fn integration_family(
    out: &mut String,
    s: &MetricsSnapshot,
    name: &str,
    kind: &str,
    help: &str,
    get: impl Fn(&IntegrationSnapshot) -> u64,
) {
    let mut f = Family::new(out, name, kind, help);
    for i in &s.integrations {
        f.u(&[("integration", i.integration.name())], get(i));
    }
}

/// `items_<protocol>` fields of the reassembly counters, read through
/// their serde form so a protocol added to reassembly shows up here without
/// a change.
pub fn items_by_protocol(r: &ReassemblyCounters) -> Vec<(String, u64)> {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("items_")?.to_string(), v.as_u64()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes one family of a single unlabelled sample: for exporters outside
/// this module (the hub's `/metrics`).
pub fn write_family(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let mut f = Family::new(out, name, kind, help);
    f.f(&[], value);
}

/// Renders the whole exposition.
pub fn render(s: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    {
        let mut f = Family::new(&mut out, "skua_build_info", "gauge", "skua's version; always 1.");
        f.u(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    }
    if let Some(up) = s.uptime {
        let mut f =
            Family::new(&mut out, "skua_uptime_seconds", "gauge", "Seconds since skua started.");
        f.f(&[], up.as_secs_f64());
    }

    // Dataplane, per core.
    core_counter(
        &mut out,
        s,
        "skua_dataplane_packets_total",
        "Frames received by the core, malformed ones included.",
        |c| c.packets,
    );
    core_counter(
        &mut out,
        s,
        "skua_dataplane_bytes_total",
        "Bytes of the received frames on the wire.",
        |c| c.bytes,
    );
    core_counter(
        &mut out,
        s,
        "skua_dataplane_captured_bytes_total",
        "Bytes of the received frames actually captured.",
        |c| c.captured_bytes,
    );
    {
        let mut f = Family::new(
            &mut out,
            "skua_dataplane_dropped_packets_total",
            "counter",
            "Frames not processed further, by reason (docs/config.md lists them).",
        );
        for c in &s.cores {
            let core = c.core.to_string();
            for r in DropReason::ALL {
                f.u(&[("core", &core), ("reason", r.name())], c.counters.drops[*r as usize]);
            }
        }
    }
    {
        let mut f = Family::new(
            &mut out,
            "skua_dataplane_network_packets_total",
            "counter",
            "Frames by network-layer protocol.",
        );
        for c in &s.cores {
            let core = c.core.to_string();
            f.u(&[("core", &core), ("protocol", "ipv4")], c.counters.ipv4);
            f.u(&[("core", &core), ("protocol", "ipv6")], c.counters.ipv6);
        }
    }
    {
        let mut f = Family::new(
            &mut out,
            "skua_dataplane_transport_packets_total",
            "counter",
            "Frames by transport-layer protocol.",
        );
        for c in &s.cores {
            let core = c.core.to_string();
            for (p, v) in [
                ("tcp", c.counters.tcp),
                ("udp", c.counters.udp),
                ("icmp", c.counters.icmp),
                ("other", c.counters.other_l4),
            ] {
                f.u(&[("core", &core), ("protocol", p)], v);
            }
        }
    }
    core_counter(&mut out, s, "skua_dataplane_fragments_total", "IP fragments received.", |c| {
        c.fragments
    });
    core_counter(
        &mut out,
        s,
        "skua_dataplane_snap_truncated_packets_total",
        "Frames cut short by the capture's snap length.",
        |c| c.snap_truncated,
    );
    core_counter(
        &mut out,
        s,
        "skua_dataplane_vlan_tagged_packets_total",
        "Frames carrying at least one VLAN tag.",
        |c| c.vlan_tagged,
    );
    core_counter(&mut out, s, "skua_dataplane_flows_total", "Flows first seen on the core.", |c| {
        c.flows
    });
    core_counter(
        &mut out,
        s,
        "skua_dataplane_flow_table_full_total",
        "New flows not tracked because the flow table was full.",
        |c| c.flow_table_full,
    );

    devices(&mut out, &s.devices);

    // Reassembly, per core.
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_packets_total",
        "Packets handed to reassembly.",
        |r| r.packets,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_ignored_packets_total",
        "Packets that were neither TCP nor UDP or had no usable L4 header.",
        |r| r.packets_ignored,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_packets_without_flow_total",
        "TCP packets that could not start a flow (a lone ACK or RST).",
        |r| r.packets_without_flow,
    );
    reassembly_counter(&mut out, s, "skua_reassembly_flows_created_total", "Flows created.", |r| {
        r.flows_created
    });
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_flows_evicted_total",
        "Flows pushed out of a full table.",
        |r| r.flows_evicted,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_flows_expired_total",
        "Flows finished by a timeout.",
        |r| r.flows_expired,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_flows_closed_total",
        "Flows finished by FIN or RST.",
        |r| r.flows_closed,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_flow_table_full_total",
        "Times a new flow found the table full.",
        |r| r.flow_table_full,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_flows_undetected_total",
        "Flows whose payload matched no enabled dissector.",
        |r| r.flows_undetected,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_retransmitted_bytes_total",
        "TCP payload bytes seen again (retransmissions, overlaps).",
        |r| r.tcp.retransmitted_bytes,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_ooo_segments_total",
        "TCP segments that arrived out of order.",
        |r| r.tcp.ooo_segments,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_ooo_flow_limit_hits_total",
        "Times a flow's out-of-order buffer limit was hit.",
        |r| r.tcp.ooo_flow_limit_hits,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_ooo_core_limit_hits_total",
        "Times the core's out-of-order buffer limit was hit.",
        |r| r.tcp.ooo_core_limit_hits,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_gaps_total",
        "Holes in TCP streams delivered to dissectors as gaps.",
        |r| r.tcp.gaps,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_gap_bytes_total",
        "Bytes missing in those gaps.",
        |r| r.tcp.gap_bytes,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_fragments_total",
        "IP fragments handled.",
        |r| r.fragments,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_fragment_datagrams_reassembled_total",
        "IP datagrams rebuilt from fragments.",
        |r| r.fragment_datagrams_reassembled,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_fragment_datagram_limit_hits_total",
        "Times the fragment-datagram limit was hit.",
        |r| r.fragment_datagram_limit_hits,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_fragment_bytes_limit_hits_total",
        "Times the fragment-bytes limit was hit.",
        |r| r.fragment_bytes_limit_hits,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_fragment_timeouts_total",
        "Datagrams dropped because their fragments did not all arrive.",
        |r| r.fragment_timeouts,
    );
    reassembly_counter(
        &mut out,
        s,
        "skua_reassembly_malformed_fragments_total",
        "Fragments that could not be used.",
        |r| r.fragments_malformed,
    );
    {
        let mut f = Family::new(
            &mut out,
            "skua_items_total",
            "counter",
            "Items (request/response pairs) completed, by application protocol.",
        );
        for c in &s.cores {
            if let Some(r) = &c.reassembly {
                let core = c.core.to_string();
                for (protocol, n) in items_by_protocol(r) {
                    f.u(&[("core", &core), ("protocol", &protocol)], n);
                }
            }
        }
    }
    {
        let mut f = Family::new(
            &mut out,
            "skua_reassembly_dissection_errors_total",
            "counter",
            "Dissection errors and anomalies, by kind.",
        );
        for c in &s.cores {
            if let Some(r) = &c.reassembly {
                let core = c.core.to_string();
                for k in ErrorKind::all() {
                    f.u(&[("core", &core), ("kind", k.name())], r.dissection_errors.get(k));
                }
            }
        }
    }

    // Agents.
    hook_counter(
        &mut out,
        s,
        "skua_agent_calls_total",
        "Calls into an agent, by runtime and hook (job, load included).",
        |h| h.calls,
    );
    hook_counter(&mut out, s, "skua_agent_errors_total", "Calls that threw an exception.", |h| {
        h.errors
    });
    hook_counter(
        &mut out,
        s,
        "skua_agent_interrupts_total",
        "Calls stopped at their time budget.",
        |h| h.interrupts,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_out_of_memory_total",
        "Calls stopped at the runtime's heap limit.",
        |h| h.out_of_memory,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_result_waits_total",
        "Helper results the agent used as values before their answer had come: the call waited.",
        |h| h.result_waits,
    );
    hook_seconds(
        &mut out,
        s,
        ("skua_agent_result_wait_seconds_total", "counter"),
        "Time calls spent waiting for helper results.",
        |h| h.result_wait_ns,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_result_waits_over_budget_total",
        "Waits for a helper result that ran out of the call's budget (the use threw an Error).",
        |h| h.result_waits_over_budget,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_helper_argument_errors_total",
        "Helper calls refused for their arguments (missing, wrong type, bad value): a catchable Error.",
        |h| h.helper_argument_errors,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_limits_hit_total",
        "Helper calls refused at a per-agent limit (scripting.maxJobsPerAgent, maxTimersPerAgent): a catchable Error, and a fault of the call.",
        |h| h.limits_hit,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_console_lines_suppressed_total",
        "Console lines dropped by the per-agent rate limit (scripting.consoleLinesPerSecond).",
        |h| h.console_lines_suppressed,
    );
    hook_counter(
        &mut out,
        s,
        "skua_agent_shed_total",
        "Inputs the agent's hook was not called for: its script core was behind and it was the costliest agent (scripting.shedAbovePercent).",
        |h| h.shed,
    );
    {
        let mut f = Family::new(
            &mut out,
            "skua_agent_call_duration_seconds",
            "summary",
            "Latency of calls into an agent (HDR histogram quantiles).",
        );
        for h in &s.hooks {
            let rt = h.runtime.to_string();
            let base =
                [("runtime", rt.as_str()), ("agent", h.agent.as_str()), ("hook", h.site_name())];
            for (q, ns) in [("0.5", h.p50_ns), ("0.99", h.p99_ns), ("0.999", h.p999_ns)] {
                let l = [base[0], base[1], base[2], ("quantile", q)];
                f.f(&l, ns as f64 / 1e9);
            }
            f.sample_named("_sum", &base, &num(h.sum_ns as f64 / 1e9));
            f.sample_named("_count", &base, &h.calls.to_string());
        }
    }
    hook_seconds(
        &mut out,
        s,
        ("skua_agent_call_duration_max_seconds", "gauge"),
        "Longest call into an agent so far.",
        |h| h.max_ns,
    );
    if let Some(n) = s.effect_queue_rejected {
        let mut f = Family::new(
            &mut out,
            "skua_effect_queue_rejected_total",
            "counter",
            "I/O helper calls refused because the queue to the control plane was full.",
        );
        f.u(&[], n);
    }

    if let Some(l) = s.limit_hits {
        Family::new(
            &mut out,
            "skua_file_quota_exceeded_total",
            "counter",
            "file.* calls refused because the agent's directory would pass integrations.file.quota_bytes.",
        )
        .u(&[], l.file_quota_exceeded);
        Family::new(
            &mut out,
            "skua_agent_metric_series_refused_total",
            "counter",
            "New series of prometheus.metric/vector refused at integrations.prometheus.max_series.",
        )
        .u(&[], l.agent_series_refused);
    }

    // Integrations.
    {
        let mut f = Family::new(
            &mut out,
            "skua_integration_requests_total",
            "counter",
            "Requests of agents' I/O helpers by outcome: sent (resolved), failed (rejected after the last attempt), rejected (queue full or shutting down).",
        );
        for i in &s.integrations {
            for (r, v) in [("sent", i.sent), ("failed", i.failed), ("rejected", i.rejected)] {
                f.u(&[("integration", i.integration.name()), ("result", r)], v);
            }
        }
    }
    integration_family(
        &mut out,
        s,
        "skua_integration_retries_total",
        "counter",
        "Retry attempts.",
        |i| i.retried,
    );
    integration_family(
        &mut out,
        s,
        "skua_integration_abandoned_total",
        "counter",
        "Deliveries abandoned at the drain timeout on shutdown.",
        |i| i.abandoned,
    );
    integration_family(
        &mut out,
        s,
        "skua_integration_queue_depth",
        "gauge",
        "Requests waiting in the integration's queue.",
        |i| i.queued,
    );
    integration_family(
        &mut out,
        s,
        "skua_integration_queue_capacity",
        "gauge",
        "Capacity of the integration's queue (0: answered inline).",
        |i| i.capacity as u64,
    );
    integration_family(
        &mut out,
        s,
        "skua_integration_in_flight",
        "gauge",
        "Requests being delivered now.",
        |i| i.in_flight,
    );
    {
        let mut f = Family::new(
            &mut out,
            "skua_integration_delivery_duration_seconds",
            "histogram",
            "Time from the start of a delivery to its outcome, retries included.",
        );
        for i in &s.integrations {
            let name = i.integration.name();
            for (b, v) in LATENCY_BUCKETS_S.iter().zip(i.latency_buckets.iter()) {
                f.sample_named(
                    "_bucket",
                    &[("integration", name), ("le", &num(*b))],
                    &v.to_string(),
                );
            }
            f.sample_named(
                "_bucket",
                &[("integration", name), ("le", "+Inf")],
                &i.latency_count().to_string(),
            );
            f.sample_named("_sum", &[("integration", name)], &num(i.latency_sum.as_secs_f64()));
            f.sample_named("_count", &[("integration", name)], &i.latency_count().to_string());
        }
    }

    // Kubernetes.
    if let Some(k) = &s.kubernetes {
        {
            let mut f = Family::new(
                &mut out,
                "skua_kubernetes_pod_events_total",
                "counter",
                "Pod events for onPodEvent: queued, or dropped because the event queue was full.",
            );
            f.u(&[("result", "queued")], k.pod_events);
            f.u(&[("result", "dropped")], k.pod_events_dropped);
        }
        let mut one =
            |name: &str, help: &str, v: u64| Family::new(&mut out, name, "counter", help).u(&[], v);
        one(
            "skua_kubernetes_malformed_objects_total",
            "Objects from the API server that did not decode, skipped.",
            k.malformed,
        );
        one(
            "skua_kubernetes_watch_errors_total",
            "Watch errors (each followed by the watcher's back-off).",
            k.watch_errors,
        );
        one(
            "skua_kubernetes_pod_lists_total",
            "Full pod lists: the first, and relists after 410 Gone or a lost watch.",
            k.relists,
        );
    }

    if let Some(r) = &s.retention {
        render_retention(&mut out, r);
    }

    // Agents' own metrics.
    for fam in &s.agent_metrics {
        let mut f = Family::new(&mut out, &fam.name, fam.kind.as_str(), &fam.help);
        for (labels, v) in &fam.series {
            let l: Vec<(&str, &str)> =
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            f.f(&l, *v);
        }
    }
    out
}

fn render_retention(out: &mut String, r: &RetentionSample) {
    type Stat = fn(&dataplane::retention::RetentionStats) -> u64;
    let per_core: [(&str, &str, &str, Stat); 4] = [
        (
            "skua_retention_packets_total",
            "counter",
            "Packets the core kept for pcap.path / pcap.snapshot.",
            |c| c.packets,
        ),
        (
            "skua_retention_too_big_total",
            "counter",
            "Packets not kept: larger than the core's whole ring (dataplane.retention_bytes).",
            |c| c.too_big,
        ),
        (
            "skua_retention_bytes",
            "gauge",
            "Bytes of the core's ring the retained packets take now.",
            |c| c.used_bytes,
        ),
        (
            "skua_retention_capacity_bytes",
            "gauge",
            "Size of the core's ring (dataplane.retention_bytes).",
            |c| c.capacity_bytes,
        ),
    ];
    for (name, kind, help, get) in per_core {
        let mut f = Family::new(out, name, kind, help);
        for c in &r.cores {
            f.u(&[("core", &c.core.to_string())], get(c));
        }
    }
    {
        let mut f = Family::new(
            out,
            "skua_retention_evicted_packets_total",
            "counter",
            "Packets evicted from the core's ring: for room (bytes, dataplane.retention_bytes) or for age (age, dataplane.retention_seconds).",
        );
        for c in &r.cores {
            let core = c.core.to_string();
            f.u(&[("core", &core), ("reason", "bytes")], c.evicted_bytes);
            f.u(&[("core", &core), ("reason", "age")], c.evicted_age);
        }
    }
    {
        let mut f = Family::new(
            out,
            "skua_pcap_stream_misses_total",
            "counter",
            "pcap.path / pcap.snapshot asked for a stream with no retained packet, by reason.",
        );
        for (reason, n) in &r.misses {
            f.u(&[("reason", reason)], *n);
        }
    }
    let st = &r.store;
    let mut one = |name: &str, kind: &str, help: &str, v: u64| {
        Family::new(out, name, kind, help).u(&[], v);
    };
    one(
        "skua_pcap_files_written_total",
        "counter",
        "pcap files written by pcap.path and pcap.snapshot.",
        st.files_written,
    );
    one(
        "skua_pcap_bytes_written_total",
        "counter",
        "Bytes of the pcap files written.",
        st.bytes_written,
    );
    one(
        "skua_pcap_store_bytes",
        "gauge",
        "Bytes the pcap files skua wrote take now (integrations.pcap.max_store_bytes).",
        st.bytes,
    );
    one(
        "skua_pcap_store_evicted_files_total",
        "counter",
        "pcap files deleted to stay within integrations.pcap.max_store_bytes.",
        st.evicted_files,
    );
    one(
        "skua_pcap_store_too_large_total",
        "counter",
        "pcap files refused: one alone over integrations.pcap.max_store_bytes.",
        st.too_large,
    );
}

// ---- server --------------------------------------------------------------------

/// Renders the current exposition; called once per scrape.
pub type Source = Arc<dyn Fn() -> String + Send + Sync>;

/// A running `/metrics` server; stops when dropped.
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("serving /metrics on {addr}: {source}")]
pub struct ServeError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` (now, so a taken port is reported at start-up) and serves
/// `GET /metrics` on `rt`. Other paths answer 404.
pub fn serve(
    rt: &tokio::runtime::Handle,
    addr: &str,
    source: Source,
) -> Result<MetricsServer, ServeError> {
    let err = |source| ServeError { addr: addr.to_string(), source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(err)?;
    std_listener.set_nonblocking(true).map_err(err)?;
    let local_addr = std_listener.local_addr().map_err(err)?;
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(err)?;
    let task = rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let source = source.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &source)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    Ok(MetricsServer { local_addr, task })
}

fn answer(req: &Request<hyper::body::Incoming>, source: &Source) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let body = source();
            *resp.body_mut() = Full::new(Bytes::from(body));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(CONTENT_TYPE),
            );
        }
        _ => {
            *resp.status_mut() = StatusCode::NOT_FOUND;
            *resp.body_mut() = Full::new(Bytes::from_static(b"skua serves /metrics here\n"));
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_escaped_and_empty_families_left_out() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let out = render(&MetricsSnapshot::default());
        assert!(out.contains("# TYPE skua_build_info gauge\nskua_build_info{version="), "{out}");
        assert!(!out.contains("skua_dataplane_packets_total"), "no cores, no family");
    }

    #[test]
    fn cores_render_per_reason() {
        let mut c = CoreCounters { packets: 10, ..Default::default() };
        c.drop(DropReason::RingFull);
        let s = MetricsSnapshot {
            cores: vec![CoreSample {
                core: 1,
                counters: c,
                reassembly: Some(ReassemblyCounters::default()),
            }],
            ..Default::default()
        };
        let out = render(&s);
        assert!(out.contains("skua_dataplane_packets_total{core=\"1\"} 10\n"));
        assert!(out
            .contains("skua_dataplane_dropped_packets_total{core=\"1\",reason=\"ring_full\"} 1\n"));
        assert!(out.contains("skua_items_total{core=\"1\",protocol=\"http\"} 0\n"));
        assert_eq!(out.matches("# TYPE skua_dataplane_dropped_packets_total counter").count(), 1);
    }

    #[test]
    fn kubernetes_counters() {
        let k = crate::kube::KubeSnapshot {
            pod_events: 5,
            pod_events_dropped: 2,
            relists: 1,
            ..Default::default()
        };
        let out = render(&MetricsSnapshot { kubernetes: Some(k), ..Default::default() });
        assert!(out.contains("skua_kubernetes_pod_events_total{result=\"dropped\"} 2\n"), "{out}");
        assert!(out.contains("skua_kubernetes_pod_lists_total 1\n"), "{out}");
    }
}
