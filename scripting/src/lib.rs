//! The agent runtime: where users' JavaScript network agents run.
//!
//! Will own: one QuickJS runtime per script core (or inline on a dataplane
//! core), agent loading with per-agent script scope and a shared global
//! `this`, the hooks of `AGENTS_API.md` (`onItemCaptured`,
//! `onPacketCaptured`, ...), the helpers (`console`, `env`, `jobs`, `hub`,
//! `vendor.*` as enqueue + Promise), lazy item objects, and per-hook time
//! budgets, heap limits, quarantine and latency histograms.

#![forbid(unsafe_code)]
