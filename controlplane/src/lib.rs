//! skua's control plane and command line.
//!
//! Owns today: the configuration (YAML + `--set`), the `skua` CLI, and the
//! exit summary. Will own (see `docs/architecture.md`): the tokio runtime
//! on housekeeping cores, integrations (webhook, Slack, InfluxDB, Kinesis),
//! cron jobs, Kubernetes watchers, the hub API and dashboard, the
//! worker↔hub link and `/metrics`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod gen_cmd;
pub mod hugepages_cmd;
pub mod summary;
