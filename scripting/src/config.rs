//! `ScriptingConfig`: the `scripting` section of the config. Every limit of
//! the agent runtime is one named field with its default; the doc comments
//! of the fields are the user documentation of that section.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ScriptingConfig {
    /// Directory of agents: every `*.js` file in it is one agent, named
    /// after the file. In a cluster the agents live in a ConfigMap instead
    /// and this is only used by `skua scripts` to sync a local folder.
    pub source: Option<PathBuf>,
    /// Variables agents read as `env.NAME` (and, as in Kubeshark, as the
    /// bare global `NAME`). Values are strings; a number or a boolean
    /// (`--set scripting.env.MIN_STATUS=400`, `DEBUG: true` in YAML) is
    /// taken as its text. Treated as secrets: their values are masked
    /// (`***`) in console lines and never shown by the API or the
    /// dashboard.
    #[serde(deserialize_with = "env_values")]
    pub env: BTreeMap<String, String>,
    /// Script cores: runtimes in the script pool, each on its own pinned
    /// thread, fed by lock-free rings from the capture cores. `0` runs one
    /// runtime inline on each capture core instead (the fewest cores, but a
    /// slow agent then slows that core's capture).
    pub script_cores: u16,
    /// CPUs the script cores are pinned to, one per script core in order.
    /// Empty: not pinned (the OS schedules them).
    pub script_cpus: Vec<usize>,
    /// Time budget of one hook call (`onItemCaptured`, `onPacketCaptured`,
    /// ...), in milliseconds. A call past it is interrupted, logged and
    /// counted as an interrupt of that agent.
    pub hook_budget_ms: u64,
    /// Time budget of one job run and of an agent's top-level code when it
    /// is loaded, in milliseconds.
    pub job_budget_ms: u64,
    /// Heap limit of one runtime (all agents of a script core share it), in
    /// MiB. A hook that hits it is interrupted; the runtime then collects
    /// garbage and goes on.
    pub memory_limit_mb: u32,
    /// Native stack an agent may use (deep recursion), in KiB. Past it a
    /// hook gets a `RangeError`.
    pub max_stack_kb: u32,
    /// Bytes of an HTTP body shown to agents as `postData.text` /
    /// `content.text`; longer bodies are cut at this size.
    pub max_body_bytes: u32,
    /// Items each capture core can queue to each script core. A full ring
    /// drops the item and counts it (`items_dropped_ring_full`); capture
    /// never waits.
    pub ring_capacity: u32,
    /// Packet infos each capture core can queue to each script core (only
    /// used while some agent defines `onPacketCaptured`). A full ring drops
    /// and counts (`packets_dropped_ring_full`).
    pub packet_ring_capacity: u32,
    /// When a script core falls behind — one of its input rings fuller than
    /// this percentage of its capacity — the agent whose hooks cost the
    /// most per input is *shed*: its `onItemCaptured`/`onPacketCaptured`
    /// is not called for inputs while the backlog lasts (counted per agent
    /// as `shed`), so the other agents of the core keep up and see every
    /// item instead of all losing items to a full ring. If the backlog
    /// still grows, the next most costly agent is shed too; below half
    /// this mark the last one shed is let back. `0` turns shedding off.
    /// Only script cores (`scriptCores ≥ 1`) shed: inline runtimes slow
    /// their capture core instead.
    pub shed_above_percent: u8,
    /// Items or packets a script core takes from one ring at a time before
    /// looking at its other rings, jobs and completions; with
    /// `script_cores = 0`, the items a capture core hands its inline
    /// runtime in one call.
    pub batch_size: u32,
    /// Requests of I/O helpers (`vendor.*`, `hub.action`, `file.*`,
    /// `pcap.snapshot`, `prometheus.metric`) waiting for the control plane,
    /// for all runtimes together. When full, the helper's Promise rejects at
    /// once and the rejection is counted.
    pub effect_queue: u32,
    /// I/O helper Promises one runtime may have unsettled at once; past it a
    /// helper's Promise rejects at once (counted).
    pub max_pending_effects: u32,
    /// Console lines waiting to be printed or shown on the dashboard, for
    /// all runtimes together. When full, lines are dropped and counted.
    pub console_queue: u32,
    /// Longest console line kept, in bytes; longer lines are cut.
    pub max_console_line_bytes: u32,
    /// Console lines (`console.log`, `console.error`, ...) one agent may
    /// print per second in one runtime, with bursts of up to one second's
    /// worth. Past it lines are dropped before they are formatted, counted
    /// (`console_lines_suppressed`), and once the agent may print again a
    /// line says how many were suppressed.
    pub console_lines_per_second: u32,
    /// Hub actions and pod events waiting for one runtime. When full, the
    /// event is dropped and counted.
    pub inbox_queue: u32,
    /// skua's own log records (`info`, `warning`, `error`) waiting for one
    /// runtime's `onLogCall` hook; only queued while some agent of the
    /// runtime defines it. When full, a record is dropped and counted.
    pub log_queue: u32,
    /// Consecutive faults (exceptions, interrupts, heap-limit hits, calls
    /// that hit a per-agent limit such as `maxJobsPerAgent`) after which an
    /// agent is quarantined: its hooks and jobs stop until it is reloaded.
    /// `0` never quarantines.
    pub quarantine_after: u32,
    /// Jobs (`jobs.schedule`) one agent may have scheduled at once in one
    /// runtime. Past it `jobs.schedule` of a new tag throws a catchable
    /// `Error` (re-scheduling an existing tag replaces it and is allowed),
    /// counted as `jobs_refused`; a call that hits it counts as a fault of
    /// the agent, so an agent that keeps trying is quarantined.
    pub max_jobs_per_agent: u32,
    /// Timers (`setTimeout`, `setInterval`) one agent may have pending at
    /// once in one runtime. Past it the call throws a catchable `Error`,
    /// counted as `timers_refused`, and the call counts as a fault of the
    /// agent, as for `maxJobsPerAgent`.
    pub max_timers_per_agent: u32,
    /// Directory under which each agent gets its own folder for `file.*`.
    pub data_dir: PathBuf,
    /// Reject agents whose syntax goes beyond ES5 (`let`, arrow functions,
    /// template literals, ...). When off, such agents load and a warning is
    /// reported.
    pub es5_strict: bool,
    /// How long an idle script core sleeps before polling its rings again,
    /// in microseconds.
    pub idle_sleep_us: u64,
    /// How often the agent directory (`source`) is looked at for added,
    /// changed and removed `*.js` files, in milliseconds. A change is
    /// applied once the file has stayed the same for one look (an editor's
    /// half-written save is not loaded), to every runtime, without pausing
    /// capture; the other agents keep their state. `0` loads the directory
    /// once at start.
    pub watch_ms: u64,
    /// Compiled `kfl.match` / `kfl.validate` queries each runtime keeps
    /// (each query at most 4 KiB of text); past it the query used least
    /// recently is dropped and counted (`kfl_cache_evictions`).
    pub kfl_cache_entries: u32,
}

/// `env`: a map of scalars, each kept as its text (`400`, `true`, `1.5`);
/// a list, a map or null as a value is refused by name.
fn env_values<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Bool(bool),
        Int(i64),
        Uint(u64),
        Float(f64),
        Other(serde::de::IgnoredAny),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Scalar::Text(s) => s,
                Scalar::Bool(b) => b.to_string(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Uint(u) => u.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Other(_) => {
                    return Err(serde::de::Error::custom(format!(
                        "env.{k}: expected a string, a number or a boolean"
                    )))
                }
            };
            Ok((k, text))
        })
        .collect()
}

impl Default for ScriptingConfig {
    fn default() -> Self {
        ScriptingConfig {
            source: None,
            env: BTreeMap::new(),
            script_cores: 0,
            script_cpus: Vec::new(),
            hook_budget_ms: 20,
            job_budget_ms: 1_000,
            memory_limit_mb: 64,
            max_stack_kb: 512,
            max_body_bytes: 16 * 1024,
            ring_capacity: 4_096,
            packet_ring_capacity: 16_384,
            shed_above_percent: 50,
            batch_size: 64,
            effect_queue: 4_096,
            max_pending_effects: 4_096,
            console_queue: 4_096,
            max_console_line_bytes: 8 * 1024,
            console_lines_per_second: 200,
            inbox_queue: 1_024,
            log_queue: 256,
            quarantine_after: 10,
            max_jobs_per_agent: 64,
            max_timers_per_agent: 1_024,
            data_dir: PathBuf::from("/var/lib/skua/agents"),
            es5_strict: false,
            idle_sleep_us: 100,
            watch_ms: 500,
            kfl_cache_entries: 64,
        }
    }
}

impl ScriptingConfig {
    /// Checks the limits that would make the runtime unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("hookBudgetMs", self.hook_budget_ms),
            ("jobBudgetMs", self.job_budget_ms),
            ("memoryLimitMb", u64::from(self.memory_limit_mb)),
            ("maxStackKb", u64::from(self.max_stack_kb)),
            ("ringCapacity", u64::from(self.ring_capacity)),
            ("packetRingCapacity", u64::from(self.packet_ring_capacity)),
            ("batchSize", u64::from(self.batch_size)),
            ("effectQueue", u64::from(self.effect_queue)),
            ("maxPendingEffects", u64::from(self.max_pending_effects)),
            ("consoleQueue", u64::from(self.console_queue)),
            ("maxConsoleLineBytes", u64::from(self.max_console_line_bytes)),
            ("consoleLinesPerSecond", u64::from(self.console_lines_per_second)),
            ("inboxQueue", u64::from(self.inbox_queue)),
            ("logQueue", u64::from(self.log_queue)),
            ("maxJobsPerAgent", u64::from(self.max_jobs_per_agent)),
            ("maxTimersPerAgent", u64::from(self.max_timers_per_agent)),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::Zero { key });
            }
        }
        if !self.script_cpus.is_empty() && self.script_cpus.len() < usize::from(self.script_cores) {
            return Err(ConfigError::TooFewCpus {
                cores: self.script_cores,
                cpus: self.script_cpus.len(),
            });
        }
        if self.shed_above_percent > 100 {
            return Err(ConfigError::Range {
                key: "shedAbovePercent",
                why: "a percentage of the ring, 0 (off) to 100".into(),
            });
        }
        for name in self.env.keys() {
            let mut chars = name.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(ConfigError::EnvName { name: name.clone() });
            }
        }
        Ok(())
    }

    pub(crate) fn memory_limit_bytes(&self) -> usize {
        (self.memory_limit_mb as usize).saturating_mul(1 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_keys_and_defaults() {
        let c: ScriptingConfig = serde_json::from_value(serde_json::json!({
            "hookBudgetMs": 5, "memoryLimitMb": 16, "scriptCores": 2, "env": {"A": "1"},
            "es5Strict": true, "dataDir": "/tmp/x", "quarantineAfter": 3,
        }))
        .unwrap();
        assert_eq!(c.hook_budget_ms, 5);
        assert_eq!(c.memory_limit_mb, 16);
        assert_eq!(c.script_cores, 2);
        assert!(c.es5_strict);
        assert_eq!(c.ring_capacity, ScriptingConfig::default().ring_capacity);
        c.validate().unwrap();
    }

    #[test]
    fn env_takes_numbers_and_booleans_as_text() {
        let c: ScriptingConfig = serde_json::from_value(serde_json::json!({
            "env": {"MIN_STATUS": 400, "DEBUG": true, "RATIO": 1.5, "NAME": "x"}
        }))
        .unwrap();
        assert_eq!(c.env["MIN_STATUS"], "400");
        assert_eq!(c.env["DEBUG"], "true");
        assert_eq!(c.env["RATIO"], "1.5");
        assert_eq!(c.env["NAME"], "x");
        let e = serde_json::from_value::<ScriptingConfig>(serde_json::json!({"env": {"L": [1]}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("env.L: expected a string, a number or a boolean"), "{e}");
    }

    #[test]
    fn unknown_keys_and_zero_limits_rejected() {
        assert!(serde_json::from_value::<ScriptingConfig>(
            serde_json::json!({"hook_budget_ms": 5})
        )
        .is_err());
        let c = ScriptingConfig { ring_capacity: 0, ..ScriptingConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::Zero { key: "ringCapacity" })));
        let mut c = ScriptingConfig::default();
        c.env.insert("BAD-NAME".into(), "x".into());
        assert!(c.validate().is_err());
    }
}
