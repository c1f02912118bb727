//! skua's control plane and command line.
//!
//! Owns today: the configuration (YAML + `--set`), the `skua` CLI, the exit
//! summary, and the control plane's tokio side: the executor of agents' I/O
//! helpers on housekeeping cores ([`executor`], [`integrations`]: webhook,
//! Slack, InfluxDB, Kinesis, file, pcap, hub, agent metrics), `/metrics`
//! ([`metrics`]) and both started together ([`control`]). Kubernetes pod watchers for `onPodEvent` and the IP → pod map
//! ([`kube`]). Will own (see `docs/architecture.md`): cron jobs, the hub
//! API and dashboard, the worker↔hub link.

#![forbid(unsafe_code)]

pub mod agents;
pub mod cli;
pub mod config;
pub mod control;
pub mod executor;
pub mod gen_cmd;
pub mod hugepages_cmd;
pub mod integrations;
pub mod kube;
pub mod metrics;
pub mod summary;
pub mod test_agent;
