//! Shared helpers for the end-to-end tests and benches: finding the `skua`
//! binary and the conformance corpus, running skua and capinfos, and
//! writing generated captures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub mod skip;

/// `require!(option, "what")`: the value, or (`skip::missing`) a failure
/// under CI and a skip line elsewhere, returning from the test.
#[macro_export]
macro_rules! require {
    ($opt:expr, $what:expr) => {
        match $opt {
            Some(v) => v,
            None => {
                $crate::skip::missing(&$what);
                return;
            }
        }
    };
}

/// The `skua` binary of the current build profile, built (or found up to
/// date) by one `cargo build` per test process, so a test never runs a
/// stale binary.
pub fn skua_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>/skua
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
        let bin = profile_dir.join("skua");
        {
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "controlplane", "--bin", "skua"]);
            without_package_env(&mut cmd);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build for skua");
            assert!(status.success(), "building skua failed");
        }
        bin
    })
    .clone()
}

/// Removes from `cmd` the variables cargo sets for a test or bench process
/// about the package under test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`,
/// `OUT_DIR`, ...). A nested `cargo build` inherits them otherwise, and a
/// build script that declares `rerun-if-env-changed` for one of them
/// (ring 0.17.14 does, for `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME` and
/// `CARGO_PKG_VERSION_*`) then sees them "changed" against a build from a
/// shell: it reruns, and everything above it — rustls, kube, the AWS SDK,
/// controlplane — is rebuilt, by every `cargo bench` and again by the next
/// plain `cargo build`. Cargo sets each build script's own values itself,
/// and the variables that configure a build (`CARGO_TARGET_DIR`,
/// `CARGO_PROFILE_*`, `CARGO_BUILD_*`, `RUSTFLAGS`, ...) are kept.
fn without_package_env(cmd: &mut Command) {
    const SET_BY_CARGO: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if SET_BY_CARGO.contains(&key)
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
        {
            cmd.env_remove(key);
        }
    }
}

/// The conformance corpus: `$SKUA_CORPUS`, or `../shared/corpus` beside
/// the repository. `None` after [`skip::missing`] (a failure under CI)
/// when it is not there.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SKUA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("pcaps").is_dir() {
        Some(dir)
    } else {
        skip::missing(&format!("the conformance corpus ({}/pcaps)", dir.display()));
        None
    }
}

/// Every capture of the corpus, sorted; `None` as [`corpus_dir`]. A corpus
/// folder without captures is a failure, so a loop over them never passes
/// over nothing.
pub fn corpus_pcaps() -> Option<Vec<PathBuf>> {
    let dir = corpus_dir()?;
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("pcaps"))
        .expect("reading corpus/pcaps")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no .pcap or .pcapng in {}/pcaps", dir.display());
    Some(v)
}

/// Runs `skua` with `args`.
pub fn skua(args: &[&str]) -> Output {
    Command::new(skua_bin()).args(args).output().expect("running skua")
}

/// Runs `skua run ... --summary json` and returns the parsed summary;
/// panics with skua's stderr if it failed.
pub fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run", "--summary", "json", "--quiet"];
    all.extend_from_slice(args);
    let out = skua(&all);
    assert!(
        out.status.success(),
        "skua {all:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("summary is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// `(packets, data bytes)` as capinfos (from tshark) counts them.
pub fn capinfos(path: &Path) -> (u64, u64) {
    let out = Command::new("capinfos")
        .args(["-T", "-r", "-M", "-c", "-d"])
        .arg(path)
        .output()
        .expect("capinfos not found: install tshark (Debian) — .ci/run does");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let cols: Vec<&str> = line.split('\t').collect();
    assert!(cols.len() >= 3, "unexpected capinfos output for {}: {text:?}", path.display());
    (cols[1].trim().parse().expect("packet count"), cols[2].trim().parse().expect("byte count"))
}

/// `(packets, bytes)` from a summary's `total`.
pub fn totals(summary: &Value) -> (u64, u64) {
    (
        summary["total"]["packets"].as_u64().expect("total.packets"),
        summary["total"]["bytes"].as_u64().expect("total.bytes"),
    )
}

/// A drop counter from a summary's `total.drops`.
pub fn drop_count(summary: &Value, reason: &str) -> u64 {
    summary["total"]["drops"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("no drop reason {reason:?} in {}", summary["total"]["drops"]))
}

/// Whether DPDK can be used by tests here: built in, and not turned off
/// with `SKUA_TEST_NO_DPDK`. When not, [`skip::missing`] (under CI, where
/// `libdpdk-dev` is installed, that fails the test).
pub fn dpdk_usable() -> bool {
    if !dataplane::DPDK_AVAILABLE {
        skip::missing("DPDK (skua built without libdpdk-dev 22.11)");
        return false;
    }
    if std::env::var_os("SKUA_TEST_NO_DPDK").is_some() {
        skip::missing("DPDK (SKUA_TEST_NO_DPDK is set)");
        return false;
    }
    true
}

/// Whether enough free 2 MiB hugepages and a hugetlbfs mount exist for a
/// DPDK run with hugepages.
pub fn hugepages_ready(min_free: u64) -> bool {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let free = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mounted = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" hugetlbfs "));
    free >= min_free && mounted
}

/// Reads a `skua run`'s stderr up to its "/metrics on http://ADDR/metrics"
/// line: the address, what it said so far, and a thread that keeps
/// draining stderr (so skua never blocks on it) and returns the rest.
pub fn metrics_address(
    child: &mut std::process::Child,
) -> (String, String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, Read};
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut said = String::new();
    let addr = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("skua exited before serving /metrics:\n{said}");
        }
        said.push_str(&line);
        if let Some(rest) = line.split("/metrics on http://").nth(1) {
            break rest.trim().trim_end_matches("/metrics").to_string();
        }
    };
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    (addr, said, drain)
}

/// What a DPDK `skua run` test replays and runs in `dir`: the demo
/// capture (`demo.pcap`) and a directory holding one agent that counts
/// items (`agents/count.js`).
pub fn demo_pcap_and_counting_agent(dir: &Path) -> (PathBuf, PathBuf) {
    let pcap = dir.join("demo.pcap");
    std::fs::write(&pcap, dataplane::synth::demo_capture()).unwrap();
    let agents = dir.join("agents");
    std::fs::create_dir(&agents).unwrap();
    std::fs::write(agents.join("count.js"), "var n = 0;\nfunction onItemCaptured(data) { n++; }\n")
        .unwrap();
    (pcap, agents)
}

/// The body of `GET /metrics` on `addr` (asserting a 200).
pub fn scrape_metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connecting to /metrics");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let (head, body) = body.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    body.to_string()
}

/// Runs `cmd` to its end with stdout and stderr captured, sampling the
/// child's peak resident memory (`VmHWM` of `/proc/PID/status`) every
/// 20 ms; returns the output and the last peak read, in bytes (the peak
/// up to a moment before the child exited).
pub fn run_peak_rss(cmd: &mut Command) -> (Output, u64) {
    use std::process::Stdio;
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning the command");
    let pid = child.id();
    let read = |stream: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut s) = stream {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let err = read(child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let mut peak = 0u64;
    let status = loop {
        if let Some(kb) = vm_kib(pid, "VmHWM:") {
            peak = peak.max(kb * 1024);
        }
        match child.try_wait().expect("waiting for the command") {
            Some(status) => break status,
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    (Output { status, stdout, stderr }, peak)
}

/// A `Vm*` figure of `/proc/PID/status`, in KiB.
pub fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
