//! Per agent and call site (each hook, job runs, top-level load): calls,
//! errors, interrupts, heap-limit hits and an HDR histogram of latency in
//! nanoseconds. Recorded by the runtime's own thread with no locks; read as
//! [`HookStats`] snapshots for `/metrics` and the dashboard.

use hdrhistogram::Histogram;

use crate::console::RuntimeId;

/// The hooks of `AGENTS_API.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    ItemCaptured,
    PacketCaptured,
    ItemQueried,
    HubAction,
    PodEvent,
    JobPassed,
    JobFailed,
    LogCall,
}

impl Hook {
    pub const ALL: [Hook; 8] = [
        Hook::ItemCaptured,
        Hook::PacketCaptured,
        Hook::ItemQueried,
        Hook::HubAction,
        Hook::PodEvent,
        Hook::JobPassed,
        Hook::JobFailed,
        Hook::LogCall,
    ];

    /// The function name an agent defines.
    pub fn js_name(self) -> &'static str {
        match self {
            Hook::ItemCaptured => "onItemCaptured",
            Hook::PacketCaptured => "onPacketCaptured",
            Hook::ItemQueried => "onItemQueried",
            Hook::HubAction => "onHubAction",
            Hook::PodEvent => "onPodEvent",
            Hook::JobPassed => "onJobPassed",
            Hook::JobFailed => "onJobFailed",
            Hook::LogCall => "onLogCall",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Where a call into an agent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallSite {
    Hook(Hook),
    /// A function scheduled with `jobs.schedule`.
    Job,
    /// The agent's top-level code, when loaded.
    Load,
}

impl CallSite {
    pub fn name(self) -> &'static str {
        match self {
            CallSite::Hook(h) => h.js_name(),
            CallSite::Job => "job",
            CallSite::Load => "load",
        }
    }

    pub(crate) const COUNT: usize = Hook::ALL.len() + 2;

    pub(crate) fn index(self) -> usize {
        match self {
            CallSite::Hook(h) => h.index(),
            CallSite::Job => Hook::ALL.len(),
            CallSite::Load => Hook::ALL.len() + 1,
        }
    }
}

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// An exception escaped the function.
    Error,
    /// Past its time budget.
    Interrupted,
    /// Hit the runtime's heap limit.
    OutOfMemory,
}

/// A snapshot of one agent's calls at one site.
#[derive(Debug, Clone, PartialEq)]
pub struct HookStats {
    pub runtime: RuntimeId,
    pub agent: String,
    pub site: CallSite,
    pub calls: u64,
    /// Calls that threw.
    pub errors: u64,
    /// Calls stopped at their time budget.
    pub interrupts: u64,
    /// Calls stopped at the heap limit.
    pub out_of_memory: u64,
    /// Helper results used before their answer had come: the call waited.
    pub result_waits: u64,
    /// Time those waits took, in nanoseconds.
    pub result_wait_ns: u64,
    /// Waits that ran out of the call's budget.
    pub result_waits_over_budget: u64,
    /// Helper calls refused for their arguments (missing, wrong type, bad
    /// value).
    pub helper_argument_errors: u64,
    /// Helper calls refused at a per-agent limit (`scripting.maxJobsPerAgent`,
    /// `scripting.maxTimersPerAgent`).
    pub limits_hit: u64,
    /// Console lines dropped by the per-agent rate limit
    /// (`scripting.consoleLinesPerSecond`).
    pub console_lines_suppressed: u64,
    /// Inputs (items, packets) this agent's hook was not called for because
    /// its script core was behind and the agent was the one shed
    /// (`scripting.shedAbove`); the other agents of the core got them.
    pub shed: u64,
    /// Sum of latencies (for a Prometheus summary's `_sum`).
    pub sum_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl HookStats {
    /// `onItemCaptured`, `job`, ...
    pub fn site_name(&self) -> &'static str {
        self.site.name()
    }
}

/// Longest latency the histogram resolves; longer calls count at this value.
const MAX_TRACKED_NS: u64 = 120 * 1_000_000_000;

pub(crate) struct SiteStats {
    calls: u64,
    errors: u64,
    interrupts: u64,
    out_of_memory: u64,
    waits: crate::results::WaitTally,
    shed: u64,
    sum_ns: u64,
    latency: Option<Histogram<u64>>,
}

impl SiteStats {
    pub(crate) fn new() -> Self {
        SiteStats {
            calls: 0,
            errors: 0,
            interrupts: 0,
            out_of_memory: 0,
            waits: crate::results::WaitTally::default(),
            shed: 0,
            sum_ns: 0,
            latency: None,
        }
    }

    /// Adds the result waits of one call.
    pub(crate) fn waited(&mut self, t: crate::results::WaitTally) {
        self.waits.waits += t.waits;
        self.waits.wait_ns = self.waits.wait_ns.saturating_add(t.wait_ns);
        self.waits.over_budget += t.over_budget;
        self.waits.argument_errors += t.argument_errors;
        self.waits.limits_hit += t.limits_hit;
        self.waits.console_suppressed += t.console_suppressed;
    }

    /// Counts `n` inputs not handed to this hook (shed).
    #[inline]
    pub(crate) fn shed(&mut self, n: u64) {
        self.shed += n;
    }

    #[inline]
    pub(crate) fn record(&mut self, ns: u64, outcome: Outcome) {
        self.calls += 1;
        match outcome {
            Outcome::Ok => {}
            Outcome::Error => self.errors += 1,
            Outcome::Interrupted => self.interrupts += 1,
            Outcome::OutOfMemory => self.out_of_memory += 1,
        }
        self.sum_ns = self.sum_ns.saturating_add(ns);
        // Two significant digits: 1% resolution is plenty for p99 and keeps
        // each histogram at a few tens of KiB.
        let h = self.latency.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, MAX_TRACKED_NS, 2)
                .expect("constant histogram bounds are valid")
        });
        h.saturating_record(ns.clamp(1, MAX_TRACKED_NS));
    }

    pub(crate) fn snapshot(
        &self,
        runtime: RuntimeId,
        agent: &str,
        site: CallSite,
    ) -> Option<HookStats> {
        if self.calls == 0 && self.shed == 0 {
            return None;
        }
        let q = |p: f64| self.latency.as_ref().map_or(0, |h| h.value_at_quantile(p));
        Some(HookStats {
            runtime,
            agent: agent.to_owned(),
            site,
            calls: self.calls,
            errors: self.errors,
            interrupts: self.interrupts,
            out_of_memory: self.out_of_memory,
            result_waits: self.waits.waits,
            result_wait_ns: self.waits.wait_ns,
            result_waits_over_budget: self.waits.over_budget,
            helper_argument_errors: self.waits.argument_errors,
            limits_hit: self.waits.limits_hit,
            console_lines_suppressed: self.waits.console_suppressed,
            shed: self.shed,
            sum_ns: self.sum_ns,
            p50_ns: q(0.5),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            max_ns: self.latency.as_ref().map_or(0, |h| h.max()),
        })
    }
}

/// All sites of one agent.
pub(crate) struct AgentStats {
    sites: [SiteStats; CallSite::COUNT],
}

impl AgentStats {
    pub(crate) fn new() -> Self {
        AgentStats { sites: std::array::from_fn(|_| SiteStats::new()) }
    }

    #[inline]
    pub(crate) fn site(&mut self, site: CallSite) -> &mut SiteStats {
        // `index()` is always below COUNT.
        &mut self.sites[site.index() % CallSite::COUNT]
    }

    pub(crate) fn snapshots(&self, runtime: RuntimeId, agent: &str, out: &mut Vec<HookStats>) {
        let sites =
            Hook::ALL.iter().map(|h| CallSite::Hook(*h)).chain([CallSite::Job, CallSite::Load]);
        for site in sites {
            if let Some(s) =
                self.sites[site.index() % CallSite::COUNT].snapshot(runtime, agent, site)
            {
                out.push(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_counts() {
        let mut s = AgentStats::new();
        for i in 1..=1000u64 {
            s.site(CallSite::Hook(Hook::ItemCaptured)).record(i * 1000, Outcome::Ok);
        }
        s.site(CallSite::Hook(Hook::ItemCaptured)).record(5, Outcome::Error);
        s.site(CallSite::Job).record(7, Outcome::Interrupted);
        let mut out = Vec::new();
        s.snapshots(RuntimeId(3), "a", &mut out);
        assert_eq!(out.len(), 2);
        let h = &out[0];
        assert_eq!((h.calls, h.errors, h.interrupts), (1001, 1, 0));
        assert!((495_000..=505_000).contains(&h.p50_ns), "{}", h.p50_ns);
        assert!(h.p99_ns >= 980_000 && h.p999_ns >= h.p99_ns);
        assert_eq!(out[1].site, CallSite::Job);
        assert_eq!(out[1].interrupts, 1);
    }
}
