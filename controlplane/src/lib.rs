//! skua's control plane and command line.
//!
//! Owns today: the configuration (YAML + `--set`), the `skua` CLI, the exit
//! summary, and the control plane's tokio side: the executor of agents' I/O
//! helpers on housekeeping cores ([`executor`], [`integrations`]: webhook,
//! Slack, InfluxDB, Kinesis, file, pcap, hub, agent metrics), `/metrics`
//! ([`metrics`]) and both started together ([`control`]). The hub ([`hub`]):
//! its API, dashboard, script store and hub-side agent runtime; the worker's
//! end of the worker↔hub link ([`link`]); Kubernetes pod watchers for
//! `onPodEvent` and the IP → pod map ([`kube`]); agent folders watched for
//! edits ([`watch`]) and `skua scripts`.

#![forbid(unsafe_code)]

pub mod agents;
pub mod cli;
pub mod config;
pub mod control;
pub mod executor;
pub mod gen_cmd;
pub mod hub;
pub mod hugepages_cmd;
pub mod integrations;
pub mod kube;
pub mod link;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod scripts_cmd;
pub mod summary;
pub mod test_agent;
pub mod watch;
