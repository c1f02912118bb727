//! The `skua` command line as a user meets it.

#[path = "support/hub.rs"]
mod hub_support;

use std::process::Command;

fn skua(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skua")).args(args).output().expect("running skua")
}

#[test]
fn version_and_help() {
    let out = skua(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("skua "));
    let out = skua(&["help", "run"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--pcap", "--iface", "--dpdk", "--cores", "--summary", "--loop"] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    let out = skua(&["help", "hub"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--listen") && help.contains("--store") && help.contains("SKUA_LISTEN"),
        "{help}"
    );
}

#[test]
fn unknown_config_key_is_rejected_by_name() {
    let out = skua(&["run", "--set", "dataplane.corez=2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `corez`"), "{err}");
    let out = skua(&["run", "--set", "dataplane.cores=lots"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dataplane.cores: invalid type"));
}

/// The README's first command: `skua run` alone replays the bundled
/// capture through the bundled agents and serves the dashboard, until
/// stopped (here by `--duration`).
#[test]
fn bundled_demo_runs_by_default_with_its_dashboard() {
    use std::io::{BufRead, BufReader, Read};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skua"))
        .args([
            "run",
            "--duration",
            "8",
            "--summary",
            "json",
            "--quiet",
            "--set",
            "hub.listen=127.0.0.1:0",
            "--set",
            "integrations.metrics_listen=",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (addr, token) = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no dashboard line");
        if let Some(rest) = line.trim().split_once("dashboard on http://").map(|(_, r)| r) {
            let (addr, token) = rest.split_once("/#token=").unwrap();
            break (addr.parse::<std::net::SocketAddr>().unwrap(), token.to_string());
        }
    };
    let get = |path: &str| hub_support::request(addr, "GET", path, Some(&token), None);
    assert!(get("/").body.contains("<html"), "the dashboard page");
    let agents = get("/api/agents").json();
    let names: Vec<&str> =
        agents["agents"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, controlplane::hub::DEMO_AGENTS, "the bundled agents run");
    let t0 = std::time::Instant::now();
    while get("/api/items?limit=3").json()["items"].as_array().is_none_or(|a| a.is_empty()) {
        assert!(t0.elapsed() < std::time::Duration::from_secs(5), "items reach the dashboard");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{rest}");
    // stdout is the summary alone (console lines and logs are on stderr).
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["total"]["packets"].as_u64().unwrap() > 0 && v["total"]["items"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["agent"] == "count-per-host" && a["calls"].as_u64() > Some(1)),
        "{v}"
    );
}

#[test]
fn gen_is_deterministic_and_checks_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.pcap");
    let b = dir.path().join("b.pcap");
    for p in [&a, &b] {
        let out = skua(&[
            "gen",
            "-o",
            p.to_str().unwrap(),
            "--exchanges",
            "300",
            "--reorder",
            "0.05",
            "--seed",
            "9",
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["httpExchanges"], 300);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let out = skua(&["gen", "-o", a.to_str().unwrap(), "--loss", "1.5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--loss is a probability"));
    let out = skua(&["gen", "-o", a.to_str().unwrap(), "--mix", "huge"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown size mix"));
}

#[test]
fn worker_needs_a_source_and_takes_the_config_file() {
    let out = skua(&["worker"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dpdk, --iface or --pcap"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("skua.yaml");
    std::fs::write(&cfg, "dataplane:\n  cores: 1\n").unwrap();
    let pcap = dir.path().join("g.pcap");
    assert!(skua(&["gen", "-o", pcap.to_str().unwrap(), "--exchanges", "20"]).status.success());
    let out = skua(&[
        "worker",
        "--config",
        cfg.to_str().unwrap(),
        "--pcap",
        pcap.to_str().unwrap(),
        "--summary",
        "json",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"]["items"].as_u64(), Some(21), "20 exchanges and one DNS lookup");
}

/// Three streams kept apart: `--summary json` alone on stdout; skua's log
/// and the agents' console on stderr, every line of it a JSON object with
/// `--log-format json` (console lines tagged `"stream": "console"`); and
/// `SKUA_LOG` filters the log without touching the console.
#[test]
fn summary_log_and_console_are_separate_streams() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("say.js"),
        "var n = 0;\nfunction onItemCaptured(data) { if (n++ < 3) console.log('item', n); }\n",
    )
    .unwrap();
    let pcap = dir.path().join("demo.pcap");
    std::fs::write(&pcap, dataplane::synth::demo_capture()).unwrap();
    let run = |log: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skua"));
        cmd.args(["run", "--pcap", pcap.to_str().unwrap(), "--scripts"])
            .arg(dir.path())
            .args(["--summary", "json", "--quiet", "--log-format", "json"])
            .args(["--set", "hub.listen=", "--set", "integrations.metrics_listen=127.0.0.1:0"])
            .env_remove("RUST_LOG");
        match log {
            Some(l) => cmd.env("SKUA_LOG", l),
            None => cmd.env_remove("SKUA_LOG"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})"));
        assert!(summary["total"]["items"].as_u64() > Some(0), "{summary}");
        let stderr: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let console: Vec<String> = stderr
            .iter()
            .filter(|v| v["stream"] == "console")
            .map(|v| format!("{} {}", v["agent"].as_str().unwrap(), v["text"].as_str().unwrap()))
            .collect();
        let log: Vec<serde_json::Value> =
            stderr.into_iter().filter(|v| v["stream"].is_null()).collect();
        (console, log)
    };
    let (console, log) = run(None);
    assert_eq!(console, ["say item 1", "say item 2", "say item 3"]);
    assert!(
        log.iter().any(|v| v["level"] == "INFO"
            && v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("/metrics on"))),
        "{log:?}"
    );
    let (console, log) = run(Some("warn"));
    assert_eq!(console.len(), 3, "the filter is the log's, not the console's");
    assert!(log.iter().all(|v| v["level"] != "INFO"), "{log:?}");
}
