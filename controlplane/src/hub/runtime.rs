//! The hub-side agent runtime: the store's active agents run on the hub
//! too (node `hub`), where `onHubAction` gets every `hub.action`,
//! `onPodEvent` the events of the hub's cluster-wide pod watcher (through
//! [`HubRuntime::inbox`]) and jobs run on the hub's clock (Kubeshark's
//! hub, same scripts).
//!
//! One thread owns the runtime (QuickJS is not `Send`). It follows the
//! hub's events (agent saved/removed: load/unload; env changed: rebuild,
//! since env is fixed per runtime; hub actions; job commands addressed to
//! `hub` or to every worker), settles helper Promises, runs due jobs, and
//! reports itself as worker `hub` so its jobs and hook stats show in the
//! dashboard. Console lines go to the hub's console feed; I/O helpers to
//! an executor of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reassembly::NodeInfo;
use scripting::{
    AgentRuntime, Clock, ConsoleLevel, ConsoleLine, ConsoleSink, EffectSink, RuntimeId,
    RuntimeOptions, ScriptingConfig,
};
use tokio::sync::broadcast::error::TryRecvError;

use super::{HookView, HubEvent, HubHandle, JobOp, JobView, WorkerReport};
use crate::executor::{Executor, ExecutorContext, ExecutorError, ExecutorHandle};
use crate::integrations::IntegrationsConfig;

/// The hub's name as a node and as a worker in the workers and jobs views.
pub const HUB_NODE: &str = "hub";
/// Runtime ids of workers count from 0; the hub's stays clear of them.
const HUB_RUNTIME: RuntimeId = RuntimeId(1_000_000);
const TICK: Duration = Duration::from_millis(5);
const REPORT_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HubRuntimeError {
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    #[error("starting the hub's agent thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The running hub-side runtime; [`HubRuntime::shutdown`] stops it.
pub struct HubRuntime {
    inbox: HubRuntimeInbox,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    console: Option<std::thread::JoinHandle<()>>,
    executor: Option<Executor>,
}

impl HubRuntime {
    /// Starts the runtime thread. Call from a plain thread (the executor
    /// owns a tokio runtime).
    pub fn start(
        hub: HubHandle,
        scripting: &ScriptingConfig,
        integrations: &IntegrationsConfig,
    ) -> Result<HubRuntime, HubRuntimeError> {
        let (console, console_rx) = ConsoleSink::new(scripting.console_queue as usize);
        let (effects, effects_rx) = EffectSink::new(scripting.effect_queue as usize);
        let ctx = ExecutorContext {
            cpus: Vec::new(),
            data_dir: scripting.data_dir.clone(),
            node_name: HUB_NODE.into(),
            node_ip: crate::cli::node_ip(),
        };
        let executor = Executor::start(integrations.clone(), ctx, Some(effects_rx))?;
        let h = hub.clone();
        let console_thread = std::thread::Builder::new()
            .name("skua-hub-console".into())
            .spawn(move || {
                // On stderr too, as workers write theirs: `skua run`'s
                // terminal and the hub pod's log show onHubAction's lines.
                for line in console_rx.iter() {
                    let _ = crate::logging::console_line(&mut std::io::stderr().lock(), &line);
                    h.publish_console_line(&line);
                }
            })
            .map_err(HubRuntimeError::Thread)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (st, cfg, exec) = (stop.clone(), scripting.clone(), executor.handle());
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("skua-hub-agents".into())
            // The runtime is not Send: it is built on its own thread.
            .spawn(move || {
                let queried = crossbeam_channel::bounded(hub.queried_queue());
                Worker { hub, queried, routing: false, cfg, console, effects, exec, rt: None }
                    .run(&st, ready_tx)
            })
            .map_err(HubRuntimeError::Thread)?;
        // Back only once the store's agents are loaded and the runtime's
        // mailbox registered: a pod watcher started next must not deliver
        // its first list to nobody. (An error ends the thread: recv fails.)
        let _ = ready_rx.recv();
        Ok(HubRuntime {
            inbox: HubRuntimeInbox(executor.handle()),
            stop,
            thread: Some(thread),
            console: Some(console_thread),
            executor: Some(executor),
        })
    }

    /// Where the hub's own pod watcher hands its events.
    pub fn inbox(&self) -> HubRuntimeInbox {
        self.inbox.clone()
    }

    /// Stops the runtime, then drains its helpers' deliveries.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The runtime (and its console sink) is gone: the printer ends.
        if let Some(t) = self.console.take() {
            let _ = t.join();
        }
        if let Some(e) = self.executor.take() {
            e.shutdown();
        }
    }
}

impl Drop for HubRuntime {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Events for the hub-side runtime's mailbox (pod events for
/// `onPodEvent`), from any thread. They go straight to the runtime, not
/// through [`HubEvent`]s, so worker links never see them: workers watch
/// the pods of their own node.
#[derive(Clone)]
pub struct HubRuntimeInbox(ExecutorHandle);

impl HubRuntimeInbox {
    /// `false` when no runtime took it (none running, or its inbox full).
    pub fn deliver(&self, event: &scripting::RuntimeEvent) -> bool {
        self.0.hub().broadcast(event) > 0
    }
}

struct Worker {
    hub: HubHandle,
    /// Items on their way into the hub through `onItemQueried`.
    queried: (
        crossbeam_channel::Sender<serde_json::Value>,
        crossbeam_channel::Receiver<serde_json::Value>,
    ),
    /// Whether the hub routes items through `queried` now.
    routing: bool,
    cfg: ScriptingConfig,
    console: ConsoleSink,
    effects: EffectSink,
    exec: ExecutorHandle,
    rt: Option<AgentRuntime>,
}

impl Worker {
    /// A line on the hub's console from the hub itself (load failures).
    fn say(&self, agent: &str, text: String) {
        tracing::warn!("hub agent {agent}: {text}");
        let _ = self.console.send(ConsoleLine {
            agent: agent.into(),
            node: HUB_NODE.into(),
            runtime: HUB_RUNTIME,
            level: ConsoleLevel::Error,
            text,
            ts: SystemTime::now(),
        });
    }

    /// (Re)builds the runtime from the store: active agents, the store's
    /// env over `scripting.env`.
    fn rebuild(&mut self) {
        self.rt = None;
        let snap = match self.hub.snapshot() {
            Ok(s) => s,
            Err(e) => return self.say("(store)", format!("cannot read the script store: {e}")),
        };
        let mut config = self.cfg.clone();
        config.env.extend(snap.env);
        let opts = RuntimeOptions {
            id: HUB_RUNTIME,
            node: NodeInfo { ip: String::new(), name: HUB_NODE.into() },
            config,
            console: self.console.clone(),
            effects: self.effects.clone(),
            clock: Clock::System,
        };
        let mut rt = match AgentRuntime::new(opts) {
            Ok(rt) => rt,
            Err(e) => return self.say("(runtime)", format!("cannot start: {e}")),
        };
        // hub.action from the hub's own agents reaches their onHubAction.
        self.exec.hub().register(rt.mailbox());
        crate::logging::forward_logs_to(rt.mailbox());
        for a in snap.agents {
            if let Err(e) = rt.load_agent(&a.name, &a.source) {
                self.say(&a.name, e.to_string());
            }
        }
        self.rt = Some(rt);
    }

    fn apply(&mut self, ev: HubEvent) {
        if matches!(ev, HubEvent::EnvChanged { .. }) {
            return self.rebuild();
        }
        let Some(rt) = self.rt.as_mut() else { return };
        let mut failed = None;
        match ev {
            HubEvent::AgentChanged { agent } if agent.active => {
                if let Err(e) = rt.load_agent(&agent.name, &agent.source) {
                    failed = Some((agent.name, e.to_string()));
                }
            }
            HubEvent::AgentChanged { agent } => {
                rt.remove_agent(&agent.name);
            }
            HubEvent::AgentRemoved { name } => {
                rt.remove_agent(&name);
            }
            HubEvent::HubAction { action, object, .. } => {
                rt.on_hub_action(&action, &object);
            }
            HubEvent::Job { worker, tag, op }
                if worker.as_deref().is_none_or(|w| w == HUB_NODE) =>
            {
                let tags: Vec<String> = match tag {
                    Some(t) => vec![t],
                    None => rt.jobs().into_iter().map(|j| j.tag).collect(),
                };
                for t in tags {
                    match op {
                        JobOp::Run => rt.run_job_now(&t),
                        JobOp::Remove => rt.remove_job(&t),
                    };
                }
            }
            HubEvent::Job { .. } | HubEvent::EnvChanged { .. } | HubEvent::Demand { .. } => {}
        }
        if let Some((agent, msg)) = failed {
            self.say(&agent, msg);
        }
    }

    /// Routes the hub's incoming items through this runtime while one of
    /// its agents defines `onItemQueried`.
    /// (Told to the hub only when it changes.)
    fn route_items(&mut self) {
        let wants = self.rt.as_ref().is_some_and(|rt| rt.wants(scripting::Hook::ItemQueried));
        if wants != self.routing {
            self.routing = wants;
            self.hub.set_queried(wants.then(|| self.queried.0.clone()));
        }
    }

    /// Runs queued items through `onItemQueried` into the hub.
    fn query_items(&mut self) {
        for item in self.queried.1.try_iter().take(256).collect::<Vec<_>>() {
            let out = match self.rt.as_mut() {
                Some(rt) => rt.on_item_queried_json(&item).unwrap_or(item),
                None => item,
            };
            self.hub.publish_queried(out);
        }
    }

    fn report(&self) {
        let Some(rt) = self.rt.as_ref() else { return };
        let c = rt.counters();
        let report = WorkerReport {
            name: HUB_NODE.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            stats: serde_json::json!({
                "agents": rt.agents().len(), "hookCalls": c.hook_calls, "faults": c.faults, "jobRuns": c.job_runs,
                "effects": c.effects_submitted, "eventsDropped": c.events_dropped, "consoleLines": c.console_lines,
            }),
            hooks: rt.stats().iter().map(HookView::from).collect(),
            jobs: rt.jobs().iter().map(JobView::from).collect(),
        };
        let _ = self.hub.report_worker_as(report, &super::Reporter::Hub);
    }

    fn run(&mut self, stop: &AtomicBool, ready: std::sync::mpsc::SyncSender<()>) {
        // Subscribe before reading the store, so no change falls between.
        let mut events = self.hub.subscribe();
        self.rebuild();
        let _ = ready.send(());
        let mut last_report = Instant::now() - REPORT_EVERY;
        while !stop.load(Ordering::Relaxed) {
            loop {
                match events.try_recv() {
                    Ok(ev) => self.apply(ev),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Lagged(n)) => {
                        self.hub.counters().events_lagged.inc_by(n);
                        self.rebuild();
                    }
                    Err(TryRecvError::Closed) => return,
                }
            }
            self.route_items();
            self.query_items();
            if let Some(rt) = self.rt.as_mut() {
                rt.poll_completions();
                let now = SystemTime::now();
                if rt.next_job_due().is_some_and(|due| due <= now) {
                    rt.run_due_jobs(now);
                }
            }
            if last_report.elapsed() >= REPORT_EVERY {
                self.report();
                last_report = Instant::now();
            }
            std::thread::sleep(TICK);
        }
        self.hub.set_queried(None);
        // What was queued goes in as it came.
        for item in self.queried.1.try_iter() {
            self.hub.publish_queried(item);
        }
        if let Some(rt) = self.rt.take() {
            self.exec.hub().unregister(rt.id());
        }
    }
}
