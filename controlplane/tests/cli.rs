//! The `skua` command line as a user meets it.

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
    assert!(help.contains("--listen") && help.contains("--store") && help.contains("SKUA_LISTEN"), "{help}");
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

#[test]
fn bundled_demo_runs_by_default() {
    let out = skua(&["run", "--summary", "json", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["total"]["packets"].as_u64().unwrap() > 5000);
    assert!(v["total"]["flows"].as_u64().unwrap() >= 600);
}

#[test]
fn gen_is_deterministic_and_checks_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.pcap");
    let b = dir.path().join("b.pcap");
    for p in [&a, &b] {
        let out = skua(&["gen", "-o", p.to_str().unwrap(), "--exchanges", "300", "--reorder", "0.05", "--seed", "9", "--json"]);
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
    let out = skua(&["worker", "--config", cfg.to_str().unwrap(), "--pcap", pcap.to_str().unwrap(), "--summary", "json", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"]["items"].as_u64(), Some(21), "20 exchanges and one DNS lookup");
}
