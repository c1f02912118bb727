//! The hub-side agent runtime: the hub's own runtime of the active agents,
//! where `onHubAction` runs (every `hub.action` of every worker meets here,
//! so state aggregates across the cluster), with the hub's jobs and
//! `utils.nodeName()` = `"hub"`. It never sees items or packets.
//!
//! It lives on its own thread: it loads the store's snapshot, then follows
//! the hub's events (agent and env changes, job commands, hub actions),
//! settles helper Promises and runs due jobs every few milliseconds. A
//! subscriber that lags behind the event broadcast loads a fresh snapshot.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use scripting::{AgentRuntime, Clock, ConsoleSink, EffectSink, RuntimeId, RuntimeOptions, ScriptingConfig};
use tokio::sync::broadcast::error::TryRecvError;

use super::{HubEvent, HubHandle, JobOp};

/// The hub runtime's id in console lines and stats (`rt-hub`-like, far
/// from the workers' 0..n).
pub const HUB_RUNTIME: RuntimeId = RuntimeId(9_999);

/// A running hub-side runtime; stops when dropped.
pub struct HubRuntime {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HubRuntime {
    /// Starts the runtime's thread. Console lines go to `console`, helper
    /// calls to `effects` (the hub's control plane).
    pub fn start(hub: HubHandle, config: ScriptingConfig, console: ConsoleSink, effects: EffectSink) -> std::io::Result<HubRuntime> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new().name("skua-hub-rt".into()).spawn(move || {
            let node = reassembly::NodeInfo { ip: String::new(), name: "hub".into() };
            let opts = RuntimeOptions { id: HUB_RUNTIME, node, config, console, effects, clock: Clock::System };
            let mut rt = match AgentRuntime::new(opts) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("skua: the hub's agent runtime did not start: {e}");
                    return;
                }
            };
            run(&mut rt, &hub, &stop2);
        })?;
        Ok(HubRuntime { stop, thread: Some(thread) })
    }
}

impl Drop for HubRuntime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loads the store's active agents and env, removing agents no longer
/// there.
fn load_snapshot(rt: &mut AgentRuntime, hub: &HubHandle, loaded: &mut BTreeSet<String>) {
    let snap = match hub.snapshot() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skua: hub runtime: reading the store: {e}");
            return;
        }
    };
    rt.set_env(&snap.env);
    let now: BTreeSet<String> = snap.agents.iter().map(|a| a.name.clone()).collect();
    for gone in loaded.difference(&now) {
        rt.remove_agent(gone);
    }
    for a in &snap.agents {
        load(rt, &a.name, &a.source);
    }
    *loaded = now;
}

fn load(rt: &mut AgentRuntime, name: &str, source: &str) {
    if rt.agents().iter().any(|a| a.name == name && a.source_hash == scripting::source_hash(source) && a.quarantined.is_none()) {
        return;
    }
    if let Err(e) = rt.load_agent(name, source) {
        eprintln!("skua: hub runtime: agent {name} not loaded: {e}");
    }
}

fn run(rt: &mut AgentRuntime, hub: &HubHandle, stop: &AtomicBool) {
    let mut events = hub.subscribe();
    let mut loaded = BTreeSet::new();
    load_snapshot(rt, hub, &mut loaded);
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        loop {
            let ev = match events.try_recv() {
                Ok(ev) => ev,
                Err(TryRecvError::Lagged(_)) => {
                    load_snapshot(rt, hub, &mut loaded);
                    continue;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            };
            busy = true;
            match ev {
                HubEvent::AgentChanged { agent } if agent.active => {
                    loaded.insert(agent.name.clone());
                    load(rt, &agent.name, &agent.source);
                }
                HubEvent::AgentChanged { agent } => {
                    loaded.remove(&agent.name);
                    rt.remove_agent(&agent.name);
                }
                HubEvent::AgentRemoved { name } => {
                    loaded.remove(&name);
                    rt.remove_agent(&name);
                }
                HubEvent::EnvChanged { env } => rt.set_env(&env),
                HubEvent::HubAction { action, object, .. } => {
                    rt.on_hub_action(&action, &object);
                }
                HubEvent::Job { worker, tag, op } if worker.as_deref().is_none_or(|w| w == "hub") => {
                    let tags: Vec<String> = match tag {
                        Some(t) => vec![t],
                        None => rt.jobs().into_iter().map(|j| j.tag).collect(),
                    };
                    for t in tags {
                        match op {
                            JobOp::Run => {
                                rt.run_job_now(&t);
                            }
                            JobOp::Remove => {
                                rt.remove_job(&t);
                            }
                        }
                    }
                }
                HubEvent::Job { .. } => {}
            }
        }
        busy |= rt.poll_completions() > 0;
        let now = SystemTime::now();
        if rt.next_job_due().is_some_and(|due| due <= now) {
            rt.run_due_jobs(now);
            busy = true;
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The hub-side runtime with what it needs: a control plane for its
/// agents' helpers (hub actions go back through the hub's event bus) and a
/// console that prints and publishes to the dashboard. Stops when dropped.
pub struct HubSide {
    runtime: Option<HubRuntime>,
    control: Option<crate::control::ControlPlane>,
    printer: Option<std::thread::JoinHandle<()>>,
}

impl HubSide {
    /// Call from a plain thread (not inside a tokio runtime).
    pub fn start(cfg: &crate::config::Config, hub: HubHandle) -> anyhow::Result<HubSide> {
        use anyhow::Context;
        let (console, console_rx) = ConsoleSink::new(cfg.scripting.console_queue as usize);
        let (effects, effects_rx) = EffectSink::new(cfg.scripting.effect_queue as usize);
        // The hub serves its own /metrics.
        let integrations = crate::integrations::IntegrationsConfig { metrics_listen: String::new(), ..cfg.integrations.clone() };
        let ctx = crate::executor::ExecutorContext { cpus: dataplane::engine::affinity(), data_dir: cfg.scripting.data_dir.clone() };
        let control = crate::control::ControlPlane::start(&integrations, ctx, Some(effects_rx), crate::metrics::MetricsSnapshot::default)?;
        let h = hub.clone();
        control.handle().hub().forward_to(Box::new(move |action, object| {
            h.hub_action("hub", action, object.clone()).map_err(|e| crate::integrations::IntegrationError::Invalid(e.to_string()))
        }));
        let h = hub.clone();
        let printer = std::thread::Builder::new()
            .name("skua-hub-console".into())
            .spawn(move || {
                for line in console_rx.iter() {
                    println!("{line}");
                    h.publish_console(super::console_line_json(&line));
                }
            })
            .context("starting the hub's console thread")?;
        let runtime = HubRuntime::start(hub, cfg.scripting.clone(), console, effects).context("starting the hub's agent runtime")?;
        Ok(HubSide { runtime: Some(runtime), control: Some(control), printer: Some(printer) })
    }
}

impl Drop for HubSide {
    fn drop(&mut self) {
        // The runtime first (it holds the console and effect senders), then
        // the deliveries drain, then the console thread sees its end.
        drop(self.runtime.take());
        if let Some(c) = self.control.take() {
            c.shutdown();
        }
        if let Some(p) = self.printer.take() {
            let _ = p.join();
        }
    }
}
