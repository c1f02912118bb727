//! What a test does when something it needs is not on the machine: a peer
//! (influxd, kinesalite, Chromium ...), the conformance corpus, root,
//! hugepages, DPDK.
//!
//! Under CI (`CI=true`, which `.ci/run` sets) the test **fails**, naming
//! what is missing: CI installs every peer, so a missing one is a broken
//! CI, not a reason to pass. On a developer's machine the test prints one
//! `SKIPPED:` line and passes; `.ci/run` counts those lines through
//! `SKUA_SKIP_LOG` and prints the total.
//!
//! One rule for every test crate: the others dev-depend on this package
//! (`skua-suite`) for it.

use std::io::Write;

/// Whether this run is CI's: `CI` set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Reports that `what` is missing. Panics under CI; elsewhere prints one
/// skip line (straight to stderr, so the test harness does not swallow it)
/// and appends it to `$SKUA_SKIP_LOG`. The caller then returns
/// (`require!` does both).
pub fn missing(what: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    assert!(
        !in_ci(),
        "{test}: missing under CI: {what} (.ci/run installs every peer the tests use)"
    );
    let line = format!("SKIPPED: {test}: {what}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("SKUA_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Whether this process runs as root (effective uid 0); [`missing`]
/// ("root") when not.
pub fn root_or_skip() -> bool {
    let uid =
        std::fs::read_to_string("/proc/self/status").unwrap_or_default().lines().find_map(|l| {
            l.strip_prefix("Uid:").and_then(|v| v.split_whitespace().nth(1)).map(str::to_string)
        });
    let root = uid.as_deref() == Some("0");
    if !root {
        missing("root (the test reserves hugepages, mounts or opens raw sockets)");
    }
    root
}

/// Runs test `name` of the running test binary again in a child process,
/// with `env` set, `CI` set to `true` or removed, and no skip log: how a
/// test of this rule takes a peer away and watches what the test does.
pub fn rerun(name: &str, env: &[(&str, &str)], ci: bool) -> std::process::Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", name, "--nocapture"]).env_remove("SKUA_SKIP_LOG");
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("running the test binary again")
}
