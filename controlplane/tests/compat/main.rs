//! The compatibility suite (issue 28): for each hook and helper, an agent
//! written the way Kubeshark's published agents are written (skua's own
//! code in their idiom: `JSON.parse(vendor.webhook("GET", url))`,
//! `if (data.response.status === 500)` on items that have no response, env
//! keys as bare globals, `setTimeout`, `jobs.schedule` with arguments ...)
//! run by the `skua` binary against a real peer started by the test, and
//! what the peer received asserted.
//!
//! Layout:
//! - `main.rs` (this file): [`Run`], one agent run of the binary
//!   (`skua run --pcap`, or `skua test-agent --live` where the clock
//!   matters: jobs and timers fire on the capture's clock), and its
//!   [`Outcome`];
//! - `capture.rs`: captures built packet by packet for what a case needs
//!   (items without a response, DNS with authority records, traffic
//!   spread over seconds);
//! - one file per area: `results.rs` (helper results used as values),
//!   `hooks.rs`, `helpers.rs`, `items.rs`, `pcap.rs` (packet retention:
//!   `pcap.*` files read back by Wireshark's tools).
//!
//! Adding a helper (the pattern the I/O integrations slot into): start
//! its peer (an HTTP server here, an object store, Prometheus ... there),
//! write the agent as a Kubeshark user would, run it with
//! `Run::new(name, source).env(KEY, value).pcap(..).run()`, then assert
//! on what the peer received and on `outcome.faults()` being empty.

#[path = "../support/mod.rs"]
mod support;

mod capture;
mod helpers;
mod hooks;
mod items;
mod pcap;
mod results;

use std::path::{Path, PathBuf};
use std::process::Command;

/// One run of the binary with some agents over a capture.
pub struct Run {
    agents: Vec<(String, String)>,
    sets: Vec<String>,
    pcap: Option<PathBuf>,
    capture_clock: bool,
    /// Environment variables of the process (`KUBECONFIG`).
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

/// What a run printed.
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// The run's folder (agents, `scripting.dataDir`): what the agents
    /// wrote stays until the outcome is dropped.
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn new(name: &str, source: &str) -> Run {
        Run {
            agents: vec![(name.to_string(), source.to_string())],
            sets: Vec::new(),
            pcap: None,
            capture_clock: false,
            vars: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `--set scripting.env.KEY=VALUE` (as a Helm user sets it).
    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.sets.push(format!("scripting.env.{key}={value}"));
        self
    }

    /// Any other `--set`.
    pub fn set(mut self, kv: &str) -> Run {
        self.sets.push(kv.to_string());
        self
    }

    /// An environment variable of the `skua` process.
    pub fn var(mut self, key: &str, value: &str) -> Run {
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    /// The capture to replay (written by `capture.rs`).
    pub fn pcap(mut self, pcap: &Path) -> Run {
        self.pcap = Some(pcap.to_path_buf());
        self
    }

    /// Runs with `skua test-agent --live`: jobs and timers on the
    /// capture's clock, helpers delivered for real.
    pub fn on_capture_clock(mut self) -> Run {
        self.capture_clock = true;
        self
    }

    pub fn run(self) -> Outcome {
        let agents = self.dir.path().join("agents");
        std::fs::create_dir_all(&agents).unwrap();
        for (name, src) in &self.agents {
            std::fs::write(agents.join(format!("{name}.js")), src).unwrap();
        }
        let data = self.dir.path().join("data");
        let pcap = self.pcap.clone().expect("a capture");
        let mut args: Vec<String> = if self.capture_clock {
            ["test-agent", agents.to_str().unwrap(), "--live", "--pcap", pcap.to_str().unwrap()]
                .map(String::from)
                .to_vec()
        } else {
            [
                "run",
                "--pcap",
                pcap.to_str().unwrap(),
                "--scripts",
                agents.to_str().unwrap(),
                "--quiet",
                "--set",
                "integrations.metrics_listen=",
            ]
            .map(String::from)
            .to_vec()
        };
        for s in self.sets.iter().chain([&format!("scripting.dataDir={}", data.display())]) {
            args.push("--set".into());
            args.push(s.clone());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_skua"))
            .args(&args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        Outcome {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
        }
    }
}

impl Outcome {
    /// Console lines of the agents (`[node rt agent] text` → text).
    pub fn console(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| l.starts_with('['))
            .filter_map(|l| l.split_once("] ").map(|(_, t)| t.to_string()))
            .collect()
    }

    /// Lines reporting an agent's fault, a quarantine or a load failure.
    pub fn faults(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| {
                l.contains(" error:")
                    || l.contains("quarantined")
                    || l.contains("not loaded")
                    || l.contains("rejected")
            })
            .map(String::from)
            .collect()
    }

    /// Panics with both streams unless the run succeeded without faults.
    pub fn clean(&self) {
        assert!(
            self.success && self.faults().is_empty(),
            "faults: {:#?}\nstdout:\n{}\nstderr:\n{}",
            self.faults(),
            self.stdout,
            self.stderr
        );
    }
}
