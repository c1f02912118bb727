//! The agent runtime: where users' JavaScript network agents run.
//!
//! Owns one QuickJS runtime per script core ([`ScriptPool`], fed by
//! lock-free rings from the capture cores) or inline on a capture core
//! ([`AgentRuntime`] driven by its owner); agent loading with a per-agent
//! script scope and a shared global `this`; the hooks of `AGENTS_API.md`
//! (`onItemCaptured`, `onPacketCaptured`, ...); the helpers (`console`,
//! `env`, `jobs`, `hub`, `utils`, `vendor.*`, `prometheus`, `file`, `pcap`,
//! `test`, `kfl`, `aggregation`, `chatgpt`, timers), every I/O helper as an
//! [`Effect`] on a bounded queue answered through a *result* (a thenable
//! that becomes the helper's plain value when used, `results`); lazy item
//! objects (a field is built when a hook reads it); and per-hook time
//! budgets, heap limits, quarantine and latency histograms.
//!
//! The crate does no network I/O: effects go to the control plane (or a
//! [`LocalExecutor`] standalone and in tests), and console lines to a
//! [`ConsoleSink`] the caller drains.
//!
//! `unsafe` lives only in `probe` (QuickJS object internals read to reuse
//! item objects) and in `clock` (the TSC read); the rest of the crate
//! denies it.

#![deny(unsafe_code)]

pub mod clock;
pub mod config;
pub mod console;
pub mod effects;
pub mod error;
pub mod es5;
pub mod executor;
mod helpers;
mod item_js;
pub mod jobs;
mod js;
mod kfl;
#[cfg(test)]
mod limits_tests;
mod local;
pub mod packet;
pub mod pool;
mod probe;
mod results;
#[cfg(test)]
mod results_tests;
pub mod runtime;
#[cfg(test)]
mod runtime_tests;
pub mod stats;
pub mod testkit;

pub use config::ScriptingConfig;
pub use console::{ConsoleLevel, ConsoleLine, ConsoleSink, RuntimeId};
pub use effects::{
    Completion, Effect, EffectRequest, EffectResult, EffectSink, LogDelivery, LogRecord, Mailbox,
    MetricKind, PcapSelect, RuntimeEvent,
};
pub use error::{ConfigError, Es5Finding, LoadError, Position, ScriptError};
pub use executor::{ExecutedEffect, LocalExecutor};
pub use jobs::JobInfo;
pub use local::publish_targeted;
pub use packet::{PacketInfo, PacketProtocol};
pub use pool::{CoreReport, PoolOptions, PoolReport, Producer, ProducerCounters, ScriptPool};
pub use runtime::{
    check_agent, in_log_hook, AgentRuntime, AgentStatus, Clock, RuntimeCounters, RuntimeOptions,
};
pub use stats::{CallSite, Hook, HookStats};
