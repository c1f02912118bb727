//! The control plane as `skua run` / `skua worker` start it: the executor
//! for agents' I/O helpers and the `/metrics` server on its runtime, with
//! one shutdown that drains deliveries. The caller supplies what only it
//! knows (dataplane and hook counters); integration counters and agents'
//! metrics are filled in here.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use scripting::EffectRequest;

use crate::executor::{DrainReport, Executor, ExecutorContext, ExecutorError, ExecutorHandle};
use crate::integrations::IntegrationsConfig;
use crate::metrics::{self, MetricsServer, MetricsSnapshot, ServeError};

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    #[error(transparent)]
    Metrics(#[from] ServeError),
}

pub struct ControlPlane {
    executor: Executor,
    metrics: Option<MetricsServer>,
}

impl ControlPlane {
    /// Starts the executor (draining `effects`, the receiver of the
    /// runtimes' `EffectSink`) and, unless `integrations.metrics_listen` is
    /// empty, `/metrics`. `gather` is called once per scrape, on a
    /// control-plane thread; it returns the dataplane/reassembly/hook parts
    /// of the snapshot. Call from a plain thread (not inside a tokio
    /// runtime).
    pub fn start(
        cfg: &IntegrationsConfig,
        ctx: ExecutorContext,
        effects: Option<Receiver<EffectRequest>>,
        gather: impl Fn() -> MetricsSnapshot + Send + Sync + 'static,
    ) -> Result<ControlPlane, ControlPlaneError> {
        let executor = Executor::start(cfg.clone(), ctx, effects)?;
        let metrics = if cfg.metrics_listen.is_empty() {
            None
        } else {
            let h = executor.handle();
            let source: metrics::Source = Arc::new(move || {
                let mut s = gather();
                s.integrations = h.counters();
                s.agent_metrics = h.agent_metrics();
                s.limit_hits = Some(h.limit_hits());
                s.retention = h.retention().map(|r| crate::metrics::RetentionSample {
                    cores: r.stats(),
                    misses: r.misses(),
                    store: h.pcap_store(),
                });
                metrics::render(&s)
            });
            match executor.tokio() {
                Some(rt) => Some(metrics::serve(rt, &cfg.metrics_listen, source)?),
                None => None,
            }
        };
        Ok(ControlPlane { executor, metrics })
    }

    pub fn handle(&self) -> ExecutorHandle {
        self.executor.handle()
    }

    /// The control plane's tokio runtime (housekeeping CPUs).
    pub fn tokio(&self) -> Option<&tokio::runtime::Handle> {
        self.executor.tokio()
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr)
    }

    /// Stops `/metrics`, then drains queued deliveries within
    /// `integrations.drain_timeout_ms`. Drop the runtimes (or stop feeding
    /// the effect channel) first: what is in the channel then is delivered.
    pub fn shutdown(self) -> DrainReport {
        let ControlPlane { executor, metrics } = self;
        drop(metrics);
        executor.shutdown()
    }
}
