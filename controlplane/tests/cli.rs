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
