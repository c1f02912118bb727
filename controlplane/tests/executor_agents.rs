//! The whole path of an I/O helper: a real agent runtime (QuickJS) calls
//! vendor.webhook, file.*, hub.action, prometheus.metric, pcap.snapshot;
//! the requests cross the bounded effect channel to the executor's intake
//! thread, are delivered (to a local HTTP server, the agent's folder, the
//! hub-side mailbox), and the Completions settle the agent's Promises.

mod support;

use std::sync::Arc;
use std::time::Duration;

use controlplane::executor::{Executor, ExecutorContext};
use controlplane::integrations::config::IntegrationsConfig;
use dataplane::retention::{Retention, RetentionConfig};
use reassembly::NodeInfo;
use scripting::{
    AgentRuntime, Clock, ConsoleSink, EffectSink, RuntimeId, RuntimeOptions, ScriptingConfig,
};
use support::*;

/// A retention with one UDP packet of stream 1 on core 0.
fn one_packet() -> Arc<Retention> {
    let r = Retention::new(
        RetentionConfig { bytes_per_core: 1 << 16, max_age_ns: 0, fragment_window_ns: 0 },
        1,
    );
    let frame = dataplane::synth::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5353, 53, b"q");
    r.writer(0).unwrap().push(
        1_700_000_000_000_000_000,
        1,
        0,
        dataplane::wire::link::LinkType::Ethernet,
        &frame,
        frame.len() as u32,
    );
    r
}

#[test]
fn agent_promises_settle_through_the_executor() {
    let srv = TestServer::start(|r, _| Answer::new(200, &format!("echo {}", r.body)));
    let refused = closed_port();
    let data = tempfile::tempdir().unwrap();
    let (effects, effects_rx) = EffectSink::new(64);
    let (console, console_rx) = ConsoleSink::new(1024);
    let scfg = ScriptingConfig { data_dir: data.path().to_path_buf(), ..Default::default() };
    let mut rt = AgentRuntime::new(RuntimeOptions {
        id: RuntimeId(0),
        node: NodeInfo { ip: "127.0.0.1".into(), name: "test-node".into() },
        config: scfg,
        console,
        effects,
        clock: Clock::Manual,
    })
    .unwrap();

    let mut cfg = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    cfg.retry.max_retries = 1;
    cfg.retry.initial_backoff_ms = 10;
    let ctx = ExecutorContext { data_dir: data.path().to_path_buf(), ..Default::default() };
    let ex = Executor::start(cfg, ctx, Some(effects_rx)).unwrap();
    let h = ex.handle();
    h.hub().register(rt.mailbox());

    let agent = format!(
        r#"
        function onHubAction(action, object) {{ console.log("hub", action, object.n); }}
        vendor.webhook("POST", "{url}", JSON.stringify({{a: 1}})).then(
            function (r) {{ console.log("webhook", r.status, r.body); }},
            function (e) {{ console.log("webhook failed", e.message); }});
        vendor.webhook("GET", "http://127.0.0.1:{refused}/", "").then(null,
            function (e) {{ console.log("refused", e.message.indexOf("connection failed") >= 0); }});
        file.write("notes/x.txt", "hello").then(function () {{ return file.read("notes/x.txt"); }})
            .then(function (t) {{ console.log("read", t); }});
        hub.action("count", {{n: 3}}).then(function (n) {{ console.log("hub delivered", n); }});
        prometheus.metric("agent_items_total", "items seen", 1, 2, {{k: "v"}});
        pcap.snapshot(5).then(function (p) {{ console.log("pcap", p.indexOf(".pcapng") > 0); }},
            function (e) {{ console.log("pcap failed", e.message); }});
        "#,
        url = srv.url("/hook")
    );
    rt.load_agent("e2e", &agent).unwrap();

    let mut lines: Vec<String> = Vec::new();
    let want = [
        "webhook 200 echo {\"a\":1}",
        "refused true",
        "read hello",
        "hub count 3",
        "hub delivered 1",
        "pcap failed",
    ];
    let done = wait_until(Duration::from_secs(20), || {
        rt.poll_completions();
        lines.extend(console_rx.try_iter().map(|l| l.text));
        want.iter().all(|w| lines.iter().any(|l| l.starts_with(w)))
    });
    assert!(done, "console: {lines:#?}");
    // No retention attached: pcap.snapshot says why.
    assert!(
        lines.iter().any(|l| l.contains("pcap failed") && l.contains("retention is off")),
        "{lines:#?}"
    );
    assert_eq!(std::fs::read_to_string(data.path().join("e2e/notes/x.txt")).unwrap(), "hello");
    let fams = h.agent_metrics();
    assert_eq!(fams[0].name, "agent_items_total");

    // With retention attached, the snapshot is written to <dataDir>/pcap.
    h.attach_retention(one_packet());
    rt.load_agent("snap", r#"pcap.snapshot().then(function (p) { console.log("pcap at", p); });"#)
        .unwrap();
    let mut path = None;
    wait_until(Duration::from_secs(20), || {
        rt.poll_completions();
        for l in console_rx.try_iter() {
            if let Some(p) = l.text.strip_prefix("pcap at ") {
                path = Some(p.to_string());
            }
        }
        path.is_some()
    });
    let path = path.expect("pcap.snapshot resolved");
    assert!(path.starts_with(&data.path().join("pcap").display().to_string()), "{path}");
    assert!(std::fs::metadata(&path).unwrap().len() > 28);
    assert_eq!(rt.pending_effects(), 0);
    let report = ex.shutdown();
    assert!(report.complete);
}

#[test]
fn control_plane_threads_stay_on_housekeeping_cpus_and_serve_metrics() {
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let Some(first) = (0..1024).find(|c| cpus.is_set(*c).unwrap_or(false)) else { return };
    let cfg = IntegrationsConfig { metrics_listen: "127.0.0.1:0".into(), ..Default::default() };
    let data = tempfile::tempdir().unwrap();
    let ctx = ExecutorContext {
        cpus: vec![first],
        data_dir: data.path().to_path_buf(),
        ..Default::default()
    };
    let cp = controlplane::control::ControlPlane::start(
        &cfg,
        ctx,
        None,
        controlplane::metrics::MetricsSnapshot::default,
    )
    .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(8);
    let h = cp.handle();
    // Ask a worker thread where it may run: through a file.* job's blocking
    // thread and the answer path (both are control-plane threads).
    h.submit(controlplane::executor::Job::new(
        "a",
        scripting::Effect::FileMkdir { path: "affinity-probe".into() },
        move |_| {
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
            let on: Vec<usize> = (0..1024).filter(|c| set.is_set(*c).unwrap_or(false)).collect();
            let _ = tx.send(on);
        },
    ));
    let on = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(on, vec![first], "control-plane thread pinned to the housekeeping CPU");
    let port = cp.metrics_addr().unwrap().port();
    let (status, body) = http10("GET", port, "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("skua_integration_requests_total{integration=\"file\",result=\"sent\"} 1"),
        "{body}"
    );
    assert!(cp.shutdown().complete);
}
