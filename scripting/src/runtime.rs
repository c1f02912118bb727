//! `AgentRuntime`: one QuickJS runtime and context, the agents loaded in
//! it, and every call into them. Used from one thread (a script core, or a
//! capture core inline).
//!
//! Invariants:
//! - Each agent's top level runs inside its own function scope (script
//!   scope); `this` there is the runtime's global object, shared by all
//!   agents. Hooks are collected from that scope once, at load.
//! - Every call into JS runs under a deadline checked by QuickJS's
//!   interrupt handler (hooks: `hookBudgetMs`; jobs and top-level code:
//!   `jobBudgetMs`) and under the runtime's heap limit. A fault is
//!   attributed to the agent, counted, logged to the console sink, and
//!   after `quarantineAfter` consecutive faults the agent is quarantined.
//! - A hook no agent defines is never called and costs nothing; the hook
//!   mask tells callers which inputs to build at all.
//! - All JS values held from Rust (`Persistent`) are dropped before the
//!   QuickJS runtime is.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

// Hook calls are timed from the TSC where it is invariant (`clock`).
use crate::clock::Instant;

use cron::Schedule;
use reassembly::{Item, NodeInfo};
use rquickjs::context::EvalOptions;
use rquickjs::{Class, Context, Ctx, Function, Object, Persistent, Runtime, Value};

use crate::config::ScriptingConfig;
use crate::console::{ConsoleLevel, ConsoleLine, ConsoleSink, RuntimeId};
use crate::effects::{EffectSink, Mailbox, MailboxReceiver, RuntimeEvent};
use crate::error::{Es5Finding, LoadError, Position, ScriptError};
use crate::item_js::{item_value, ItemEnv, Items, Lazy, Packets, Reusable};
use crate::jobs::{next_after, JobInfo};
use crate::js;
use crate::packet::PacketInfo;
use crate::probe::Probe;
use crate::stats::{AgentStats, CallSite, Hook, HookStats, Outcome};

/// Names of the helper objects each agent gets in its own scope, in the
/// order of the wrapper function's parameters.
pub(crate) const HELPERS: [&str; 17] = [
    "console",
    "env",
    "jobs",
    "hub",
    "utils",
    "vendor",
    "prometheus",
    "file",
    "pcap",
    "test",
    "kfl",
    "aggregation",
    "chatgpt",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
];

thread_local! {
    static IN_LOG_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running `onLogCall` hooks now: a log layer
/// forwarding skua's records to the hook skips what is logged meanwhile,
/// so a hook (or what it calls) that logs never feeds itself.
pub fn in_log_hook() -> bool {
    IN_LOG_HOOK.with(Cell::get)
}

struct LogHookGuard(bool);

impl LogHookGuard {
    fn enter() -> LogHookGuard {
        LogHookGuard(IN_LOG_HOOK.with(|c| c.replace(true)))
    }
}

impl Drop for LogHookGuard {
    fn drop(&mut self) {
        let was = self.0;
        IN_LOG_HOOK.with(|c| c.set(was));
    }
}

/// How many hooks there are (`Hook::ALL`).
const HOOKS: usize = Hook::ALL.len();

/// Promise reactions run per `poll_completions` / hook entry at most, so a
/// script chaining Promises forever cannot starve the rings.
const MAX_PENDING_JOBS_PER_POLL: usize = 10_000;

/// Fault lines logged per agent: every one of the first few, then one in
/// this many (with the running count), so a broken agent cannot flood the
/// console before it is quarantined (or when quarantine is off).
const FAULT_LOG_FIRST: u64 = 10;
const FAULT_LOG_EVERY: u64 = 1_000;

/// Where jobs get the time from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// Wall-clock time (UTC).
    #[default]
    System,
    /// Time moves only when the owner says so (`set_time`,
    /// `run_due_jobs`): the capture's clock in `skua test-agent`, a fake
    /// clock in tests.
    Manual,
}

/// What an [`AgentRuntime`] is made of.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub id: RuntimeId,
    /// The capturing node (`data.node`, `utils.nodeName()`, console tags).
    pub node: NodeInfo,
    pub config: ScriptingConfig,
    pub console: ConsoleSink,
    pub effects: EffectSink,
    pub clock: Clock,
}

/// An agent as the status API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub name: String,
    /// Hooks the agent defines.
    pub hooks: Vec<Hook>,
    /// Why the agent is quarantined (its hooks and jobs do not run until it
    /// is reloaded), or `None`.
    pub quarantined: Option<String>,
    pub consecutive_faults: u32,
    pub faults: u64,
    /// Syntax beyond ES5 (a warning unless `es5Strict`).
    pub warnings: Vec<Es5Finding>,
    /// Hash of the source, to skip no-op reloads.
    pub source_hash: u64,
}

/// Totals of one runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimeCounters {
    pub items: u64,
    pub packets: u64,
    pub hook_calls: u64,
    pub faults: u64,
    pub interrupts: u64,
    pub out_of_memory: u64,
    pub quarantines: u64,
    pub job_runs: u64,
    pub effects_submitted: u64,
    /// Helper Promises rejected at once: effect queue full (or no executor).
    pub effects_rejected_full: u64,
    /// Helper Promises rejected at once: `maxPendingEffects` reached.
    pub effects_rejected_pending: u64,
    pub completions: u64,
    /// Hub actions and pod events dropped because the inbox was full.
    pub events_dropped: u64,
    /// Log records for `onLogCall` dropped because the log queue was full.
    pub log_records_dropped: u64,
    pub console_lines: u64,
    /// Helper Promises rejected with no handler (each also a console error).
    pub unhandled_rejections: u64,
    /// Items and packets shown to the hooks through the object of the one
    /// before (no hook kept or changed it); the rest got a new object.
    pub objects_reused: u64,
    /// Helper calls refused for their arguments (missing, wrong type, bad
    /// value): the result failed at once.
    pub helper_argument_errors: u64,
    /// Helper results a script used before their answer had come, so the
    /// runtime waited for it.
    pub result_waits: u64,
    /// Time spent in those waits, in nanoseconds.
    pub result_wait_ns: u64,
    /// Waits that ran out of the call's budget (the use threw).
    pub result_waits_over_budget: u64,
    /// `kfl.*` queries compiled (a miss of the runtime's query cache).
    pub kfl_compiles: u64,
    /// `kfl.*` calls that found their query compiled already.
    pub kfl_cache_hits: u64,
    /// Compiled queries dropped because the cache was full
    /// (`scripting.kflCacheEntries`).
    pub kfl_cache_evictions: u64,
    /// `jobs.schedule` calls refused at `scripting.maxJobsPerAgent`.
    pub jobs_refused: u64,
    /// `setTimeout`/`setInterval` calls refused at
    /// `scripting.maxTimersPerAgent`.
    pub timers_refused: u64,
    /// Console lines dropped by `scripting.consoleLinesPerSecond`.
    pub console_lines_suppressed: u64,
    /// Inputs (items, packets) not handed to an agent's hook because its
    /// script core was behind and that agent was shed (`scripting.shedAbove`).
    pub shed: u64,
}

/// Where `AgentRuntime::spares` keeps the object of the last item and of
/// the last packet.
const SPARE_ITEM: usize = 0;
const SPARE_PACKET: usize = 1;

/// How a JS call went, for accounting.
struct CallEnd {
    outcome: Outcome,
    message: String,
    at: Option<Position>,
}

/// The deadline of the call running now, checked by QuickJS's interrupt
/// handler; a helper result's wait reads it too (`crate::results`).
pub(crate) struct Interrupt {
    deadline: Cell<Option<Instant>>,
    budget: Cell<Duration>,
    fired: Cell<bool>,
}

impl Interrupt {
    fn new(budget: Duration) -> Interrupt {
        Interrupt { deadline: Cell::new(None), budget: Cell::new(budget), fired: Cell::new(false) }
    }

    /// Starts a call of `budget` from `t0`.
    #[inline]
    fn arm(&self, t0: Instant, budget: Duration) {
        self.fired.set(false);
        self.budget.set(budget);
        self.deadline.set(Some(t0 + budget));
    }

    #[inline]
    fn disarm(&self) {
        self.deadline.set(None);
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    /// The budget of the call running now (of the last one when none runs).
    pub(crate) fn budget(&self) -> Duration {
        self.budget.get()
    }
}

/// One scheduled job.
pub(crate) struct Job {
    pub(crate) tag: String,
    pub(crate) cron: String,
    pub(crate) schedule: Schedule,
    pub(crate) func: Persistent<Function<'static>>,
    pub(crate) args: Vec<Persistent<Value<'static>>>,
    pub(crate) limit: u32,
    pub(crate) runs: u32,
    /// `None` until a manual clock has given a time to count from.
    pub(crate) next_due: Option<SystemTime>,
    pub(crate) owner: u64,
    pub(crate) owner_name: Arc<str>,
    /// Bumped when the tag is re-scheduled during a run of it.
    pub(crate) generation: u64,
}

/// One `setTimeout` / `setInterval` of an agent.
pub(crate) struct Timer {
    pub(crate) id: u64,
    /// `None` until a manual clock has given a time to count from.
    pub(crate) due: Option<SystemTime>,
    pub(crate) delay: Duration,
    pub(crate) repeat: bool,
    pub(crate) func: Persistent<Function<'static>>,
    pub(crate) args: Vec<Persistent<Value<'static>>>,
    pub(crate) owner: u64,
}

/// An effect waiting for its answer, and what its answer settles.
pub(crate) struct PendingPromise {
    pub(crate) settles: crate::results::Settles,
    pub(crate) agent: Arc<str>,
    /// `vendor.webhook`, ... (for a wait's error).
    pub(crate) helper: &'static str,
    /// [`crate::Effect::plain_field`] of the effect.
    pub(crate) plain_field: Option<&'static str>,
}

/// Helper Promises rejected with no handler yet. A handler attached in the
/// same turn (`vendor.webhook(...).catch(...)` on a Promise rejected at
/// once for bad arguments) takes one off; what is left when the turn ends
/// is reported on the agent's console, so a failed helper call is never
/// silent.
#[derive(Default)]
pub(crate) struct Rejections {
    /// The agent whose helper Promise is being rejected now.
    pub(crate) agent: Option<Arc<str>>,
    pub(crate) unhandled: Vec<(Persistent<Value<'static>>, Arc<str>, String)>,
}

/// Runtime state the helper functions (closures living in the JS heap)
/// share with the runtime.
pub(crate) struct Shared {
    pub(crate) id: RuntimeId,
    pub(crate) node: NodeInfo,
    pub(crate) node_name: Arc<str>,
    pub(crate) console: ConsoleSink,
    pub(crate) effects: EffectSink,
    pub(crate) mailbox: Mailbox,
    /// This runtime's completions (a clone of the inbox's receiver): a
    /// helper result's wait takes them as they come.
    pub(crate) completions: crossbeam_channel::Receiver<crate::effects::Completion>,
    pub(crate) interrupt: Rc<Interrupt>,
    /// The JS side of helper results (`crate::results`), set once the
    /// context exists.
    pub(crate) results: RefCell<Option<crate::results::ResultFns>>,
    /// Waits of the call running now, taken by `Calls::call`.
    pub(crate) wait_tally: Cell<crate::results::WaitTally>,
    pub(crate) env: RefCell<Vec<(String, String)>>,
    secrets: RefCell<Vec<String>>,
    pub(crate) max_line: usize,
    pub(crate) max_pending: usize,
    /// `scripting.maxJobsPerAgent`, `scripting.maxTimersPerAgent`.
    pub(crate) max_jobs: usize,
    pub(crate) max_timers: usize,
    /// Per agent, its `console.*` budget (`scripting.consoleLinesPerSecond`).
    console_budgets: RefCell<HashMap<Arc<str>, ConsoleBudget>>,
    console_rate: f64,
    /// Some agent has lines suppressed not yet reported.
    console_owed: Cell<bool>,
    pub(crate) next_request: Cell<u64>,
    pub(crate) pending: RefCell<HashMap<u64, PendingPromise>>,
    pub(crate) rejections: Rc<RefCell<Rejections>>,
    pub(crate) jobs: RefCell<Vec<Job>>,
    pub(crate) job_generation: Cell<u64>,
    /// Tags `jobs.run`/`runAll` asked for; run after the current call.
    pub(crate) run_now: RefCell<Vec<String>>,
    /// `jobs.scheduler.stop()` pauses cron jobs until `start()`.
    pub(crate) scheduler_running: Cell<bool>,
    pub(crate) timers: RefCell<Vec<Timer>>,
    pub(crate) next_timer: Cell<u64>,
    /// The env keys defined as bare globals (`local::define_env_globals`).
    pub(crate) env_globals: RefCell<Vec<String>>,
    pub(crate) clock: Clock,
    pub(crate) now: Cell<Option<SystemTime>>,
    pub(crate) counters: RefCell<RuntimeCounters>,
    /// Compiled `kfl.*` queries (`crate::kfl`).
    pub(crate) kfl: RefCell<crate::kfl::Cache>,
}

impl Shared {
    /// Current time for scheduling, `None` on a manual clock not yet set.
    pub(crate) fn now(&self) -> Option<SystemTime> {
        match self.clock {
            Clock::System => Some(SystemTime::now()),
            Clock::Manual => self.now.get(),
        }
    }

    /// Counts a helper call refused for its arguments (in the runtime's
    /// totals and, through the call tally, the agent's call site).
    pub(crate) fn argument_error(&self) {
        self.counters.borrow_mut().helper_argument_errors += 1;
        let mut t = self.wait_tally.get();
        t.argument_errors += 1;
        self.wait_tally.set(t);
    }

    /// A helper refused because the agent is at one of its limits
    /// (`scripting.maxJobsPerAgent`, ...): counted by `count`, tallied for
    /// the call (which then counts as a fault of the agent even when the
    /// script catches the error), and the catchable `Error` to throw.
    pub(crate) fn limit_hit(
        &self,
        ctx: &rquickjs::Ctx<'_>,
        count: fn(&mut RuntimeCounters),
        msg: &str,
    ) -> rquickjs::Error {
        count(&mut self.counters.borrow_mut());
        let mut t = self.wait_tally.get();
        t.limits_hit += 1;
        self.wait_tally.set(t);
        rquickjs::Exception::throw_message(ctx, msg)
    }

    /// Whether `agent` may print a console line now
    /// (`scripting.consoleLinesPerSecond`, a token bucket holding one
    /// second's worth). A refused line is counted; the first line allowed
    /// after refusals is preceded by one saying how many were suppressed.
    pub(crate) fn console_allowed(&self, agent: &Arc<str>) -> bool {
        let now = Instant::now();
        let owed = {
            let mut budgets = self.console_budgets.borrow_mut();
            let b = budgets.entry(agent.clone()).or_insert(ConsoleBudget {
                tokens: self.console_rate,
                last: now,
                suppressed: 0,
                since: now,
            });
            b.refill(now, self.console_rate);
            if b.tokens < 1.0 {
                b.suppressed += 1;
                if b.suppressed == 1 {
                    b.since = now;
                }
                drop(budgets);
                self.console_owed.set(true);
                self.counters.borrow_mut().console_lines_suppressed += 1;
                let mut t = self.wait_tally.get();
                t.console_suppressed += 1;
                self.wait_tally.set(t);
                return false;
            }
            b.tokens -= 1.0;
            b.take_owed(now)
        };
        if let Some((n, over)) = owed {
            self.print_suppressed(agent, n, over);
        }
        true
    }

    /// Reports lines suppressed a second or more ago for agents that have
    /// not printed since (called between calls).
    pub(crate) fn report_suppressed(&self) {
        if !self.console_owed.get() {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        let mut left = false;
        for (agent, b) in self.console_budgets.borrow_mut().iter_mut() {
            if b.suppressed == 0 {
                continue;
            }
            if now.duration_since(b.since) >= Duration::from_secs(1) {
                if let Some((n, over)) = b.take_owed(now) {
                    due.push((agent.clone(), n, over));
                }
            } else {
                left = true;
            }
        }
        self.console_owed.set(left);
        for (agent, n, over) in due {
            self.print_suppressed(&agent, n, over);
        }
    }

    fn print_suppressed(&self, agent: &Arc<str>, n: u64, over: Duration) {
        self.print(
            agent,
            ConsoleLevel::Error,
            format!(
                "{n} console line(s) suppressed over {:.1} s: more than \
                 scripting.consoleLinesPerSecond ({}) per second",
                over.as_secs_f64(),
                self.console_rate
            ),
        );
    }

    /// Sends one console line, secrets masked and length bounded.
    pub(crate) fn print(&self, agent: &Arc<str>, level: ConsoleLevel, mut text: String) {
        for s in self.secrets.borrow().iter() {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "***");
            }
        }
        if text.len() > self.max_line {
            let mut end = self.max_line;
            while end > 0 && !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        self.counters.borrow_mut().console_lines += 1;
        self.console.send(ConsoleLine {
            agent: agent.clone(),
            node: self.node_name.clone(),
            runtime: self.id,
            level,
            text,
            ts: SystemTime::now(),
        });
    }
}

/// One agent's console budget (`Shared::console_allowed`).
struct ConsoleBudget {
    tokens: f64,
    last: Instant,
    /// Lines refused since the last report, and when the first was.
    suppressed: u64,
    since: Instant,
}

impl ConsoleBudget {
    fn refill(&mut self, now: Instant, rate: f64) {
        let dt = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(rate.max(1.0));
        self.last = now;
    }

    /// The lines suppressed and over how long, reset.
    fn take_owed(&mut self, now: Instant) -> Option<(u64, Duration)> {
        if self.suppressed == 0 {
            return None;
        }
        let n = std::mem::take(&mut self.suppressed);
        Some((n, now.duration_since(self.since)))
    }
}

struct Agent {
    name: Arc<str>,
    file: String,
    uid: u64,
    hooks: [Option<Persistent<Function<'static>>>; HOOKS],
    stats: AgentStats,
    consecutive_faults: u32,
    faults: u64,
    quarantined: Option<String>,
    warnings: Vec<Es5Finding>,
    source_hash: u64,
    /// Kept to load the agent again when the env changes.
    source: Arc<str>,
    /// Moving average of what one call of its `onItemCaptured` or
    /// `onPacketCaptured` costs, in nanoseconds: who is shed first.
    cost_ns: f64,
}

impl Agent {
    fn defines(&self, h: Hook) -> bool {
        self.hooks.get(h.index()).is_some_and(Option::is_some)
    }
}

/// Length of the wrapper text before the agent's first line; columns on
/// line 1 are shifted by it.
fn wrapper_prefix() -> String {
    format!("(function({}){{", HELPERS.join(","))
}

fn wrap(source: &str) -> String {
    let hooks: Vec<String> = Hook::ALL
        .iter()
        .map(|h| format!("typeof {0} === 'function' ? {0} : undefined", h.js_name()))
        .collect();
    // The prefix stays on the agent's line 1 so its line numbers are the
    // file's; the suffix starts on a new line after it (a last line
    // comment must not swallow it).
    format!("{}{source}\n;return [{}];}})", wrapper_prefix(), hooks.join(","))
}

/// The env values masked in console lines. Short values would mask
/// ordinary words; secrets are longer.
fn secrets_of(env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    env.values().filter(|v| v.len() >= 4).cloned().collect()
}

fn hash_source(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Agent names: what a file stem may be (`.js` is stripped).
fn agent_name(name: &str) -> Result<String, LoadError> {
    let n = name.strip_suffix(".js").unwrap_or(name);
    let ok = !n.is_empty()
        && n.len() <= 128
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !n.starts_with('.');
    if ok {
        Ok(n.to_owned())
    } else {
        Err(LoadError::InvalidName { agent: name.to_owned() })
    }
}

/// Where a fault happened in the agent's own file.
fn position_in(stack: Option<&str>, file: &str) -> Option<Position> {
    let (line, column) = js::frame_in(stack?, file)?;
    let prefix = wrapper_prefix().chars().count() as u32;
    let column = if line == 1 { column.saturating_sub(prefix).max(1) } else { column };
    Some(Position { line, column })
}

/// Checks that an agent compiles (and, with `es5_strict`, is ES5) without
/// running it: for `skua scripts` and the hub before pushing a save.
/// Returns the ES5 warnings.
pub fn check_agent(
    name: &str,
    source: &str,
    es5_strict: bool,
) -> Result<Vec<Es5Finding>, LoadError> {
    let agent = agent_name(name)?;
    let findings = crate::es5::check(source);
    if es5_strict && !findings.is_empty() {
        return Err(LoadError::NotEs5 { agent, findings });
    }
    let engine =
        |e: rquickjs::Error| LoadError::Engine { agent: agent.clone(), message: e.to_string() };
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(64 << 20);
    let ctx = Context::full(&rt).map_err(engine)?;
    ctx.with(|ctx| compile(&ctx, &agent, source).map(|_| ()))?;
    Ok(findings)
}

fn compile<'js>(ctx: &Ctx<'js>, agent: &str, source: &str) -> Result<Function<'js>, LoadError> {
    match parse(ctx, agent, source) {
        Ok(f) => Ok(f),
        Err(Parsed::Failed { message, at }) => {
            let at = match at {
                Some(at) => at,
                None => locate(ctx, agent, source, &message),
            };
            let (at, message) = clamp_to_source(source, at, message);
            Err(LoadError::Compile { agent: agent.to_owned(), at, message })
        }
        Err(Parsed::Escaped) => Err(LoadError::Compile {
            agent: agent.to_owned(),
            at: Position { line: 1, column: 1 },
            message: "the source closes its own scope".into(),
        }),
        Err(Parsed::Engine(message)) => Err(LoadError::Engine { agent: agent.to_owned(), message }),
    }
}

/// How parsing an agent's wrapped source failed.
enum Parsed {
    /// A syntax error, with its place in the agent's file when the engine
    /// gave one.
    Failed {
        message: String,
        at: Option<Position>,
    },
    Escaped,
    Engine(String),
}

/// Parses (does not run) the agent's wrapper function.
fn parse<'js>(ctx: &Ctx<'js>, agent: &str, source: &str) -> Result<Function<'js>, Parsed> {
    let file = format!("{agent}.js");
    let mut opts = EvalOptions::default();
    opts.global = true;
    opts.strict = false;
    opts.backtrace_barrier = true;
    opts.filename = Some(file.clone());
    match ctx.eval_with_options::<Value, _>(wrap(source), opts) {
        Ok(v) => v.into_function().ok_or(Parsed::Escaped),
        Err(rquickjs::Error::Exception) => {
            let exc = ctx.catch();
            let message = js::exception_message(ctx, &exc);
            let stack = js::exception_stack(&exc);
            Err(Parsed::Failed { message, at: position_in(stack.as_deref(), &file) })
        }
        Err(e) => Err(Parsed::Engine(e.to_string())),
    }
}

/// Where a syntax error the engine gave no place for is (QuickJS raises a
/// bad regular expression literal that way): the first line whose prefix
/// of the source fails with the same message, found by bisection (each
/// step a parse of the prefix, nothing run); column 1 of it.
fn locate(ctx: &Ctx<'_>, agent: &str, source: &str, message: &str) -> Position {
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let same = |n: usize| {
        let prefix: String = lines.iter().take(n).copied().collect();
        matches!(parse(ctx, agent, &prefix), Err(Parsed::Failed { message: m, .. }) if m == message)
    };
    let (mut lo, mut hi) = (1usize, lines.len().max(1));
    if !same(hi) {
        return Position { line: 1, column: 1 };
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if same(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let column = lines
        .get(lo - 1)
        .and_then(|l| l.find(|c: char| !c.is_whitespace()))
        .map_or(1, |i| i as u32 + 1);
    Position { line: lo as u32, column }
}

/// An error the engine places after the agent's last line (in the text
/// skua wraps it in) is an unclosed construct: it is reported at the end
/// of the file, saying so.
fn clamp_to_source(source: &str, at: Position, message: String) -> (Position, String) {
    let lines = source.lines().count().max(1) as u32;
    if at.line <= lines {
        return (at, message);
    }
    let last = source.lines().last().unwrap_or("");
    let at = Position { line: lines, column: last.chars().count() as u32 + 1 };
    let message = format!(
        "SyntaxError: unexpected end of the file: a `}}`, `)` or `]` is missing ({message})"
    );
    (at, message)
}

/// Where a `return` outside any function is in `source`, if there is one:
/// the source parsed as global code never run (`if (false) {...}`) in a
/// throwaway runtime, where such a `return` is a syntax error with its
/// place. (Wrapped in skua's function, it silently ends the top level.)
fn top_level_return(agent: &str, source: &str) -> Option<Position> {
    let rt = Runtime::new().ok()?;
    rt.set_memory_limit(64 << 20);
    let ctx = Context::full(&rt).ok()?;
    ctx.with(|ctx| {
        let file = format!("{agent}.js");
        let prefix = "if (false) {";
        let mut opts = EvalOptions::default();
        opts.global = true;
        opts.strict = false;
        opts.filename = Some(file.clone());
        match ctx.eval_with_options::<Value, _>(format!("{prefix}{source}\n}}"), opts) {
            Err(rquickjs::Error::Exception) => {
                let exc = ctx.catch();
                let message = js::exception_message(&ctx, &exc);
                if !message.contains("return") {
                    return None;
                }
                let (line, column) = js::frame_in(&js::exception_stack(&exc)?, &file)?;
                let shift = if line == 1 { prefix.len() as u32 } else { 0 };
                Some(Position { line, column: column.saturating_sub(shift).max(1) })
            }
            _ => None,
        }
    })
}

pub struct AgentRuntime {
    agents: Vec<Agent>,
    /// Per hook, indices of the agents (not quarantined) that define it.
    active: [Vec<usize>; HOOKS],
    mask: u8,
    next_uid: u64,
    shared: Rc<Shared>,
    interrupt: Rc<Interrupt>,
    env: Rc<ItemEnv>,
    inbox: MailboxReceiver,
    hook_budget: Duration,
    job_budget: Duration,
    quarantine_after: u32,
    es5_strict: bool,
    memory_limit_mb: u32,
    gc_needed: bool,
    data_dir: PathBuf,
    /// Shedding (`scripting.shedAbovePercent`): the mark as a fraction of a
    /// ring, how many of the costliest agents are shed now, which ones (by
    /// agent index), and the backlog seen last.
    shed_above: f32,
    shed_level: usize,
    shed: Vec<bool>,
    last_fill: f32,
    /// Tells when an item's objects can be reused for the next item.
    probe: Probe,
    /// The objects of the last item and packet (`SPARE_ITEM`,
    /// `SPARE_PACKET`), kept for the next one (see `dispatch`), across
    /// calls: the inline sink hands items one by one.
    spares: [Option<Persistent<Value<'static>>>; 2],
    /// Prototype of every lazy item, message, header and packet object.
    proto: Persistent<Object<'static>>,
    ctx: Context,
    rt: Runtime,
}

impl AgentRuntime {
    pub fn new(opts: RuntimeOptions) -> Result<AgentRuntime, ScriptError> {
        opts.config.validate()?;
        let cfg = &opts.config;
        let engine = |e: rquickjs::Error| ScriptError::Engine(e.to_string());
        let rt = Runtime::new().map_err(engine)?;
        rt.set_memory_limit(cfg.memory_limit_bytes());
        rt.set_max_stack_size((cfg.max_stack_kb as usize).saturating_mul(1024));
        let interrupt = Rc::new(Interrupt::new(Duration::from_millis(cfg.hook_budget_ms)));
        let int = interrupt.clone();
        rt.set_interrupt_handler(Some(Box::new(move || match int.deadline.get() {
            Some(d) if Instant::now() >= d => {
                int.fired.set(true);
                true
            }
            _ => false,
        })));
        let rejections: Rc<RefCell<Rejections>> = Rc::default();
        let r = rejections.clone();
        rt.set_host_promise_rejection_tracker(Some(Box::new(
            move |ctx, promise, reason, handled| {
                // Only helper Promises (an agent is being named) are tracked:
                // an agent's own Promises are its business.
                let Ok(mut r) = r.try_borrow_mut() else { return };
                if handled {
                    r.unhandled.retain(|(p, _, _)| {
                        p.clone().restore(&ctx).ok().as_ref() != Some(&promise)
                    });
                } else if let Some(agent) = r.agent.clone() {
                    let why = reason
                        .as_exception()
                        .and_then(|e| e.message())
                        .or_else(|| reason.as_string().and_then(|s| s.to_string().ok()))
                        .unwrap_or_default();
                    r.unhandled.push((Persistent::save(&ctx, promise), agent, why));
                }
            },
        )));
        let ctx = Context::full(&rt).map_err(engine)?;
        let max_pending = cfg.max_pending_effects as usize;
        let (mailbox, inbox) =
            Mailbox::new(opts.id, max_pending, cfg.inbox_queue as usize, cfg.log_queue as usize);
        let env = ctx
            .with(|ctx| ItemEnv::new(&ctx, opts.node.clone(), cfg.max_body_bytes as usize))
            .map_err(engine)?;
        let proto = ctx
            .with(|ctx| Lazy::new(&ctx).map(|l| Persistent::save(&ctx, l.proto)))
            .map_err(engine)?;
        let shared = Rc::new(Shared {
            id: opts.id,
            node_name: Arc::from(opts.node.name.as_str()),
            node: opts.node.clone(),
            console: opts.console.clone(),
            effects: opts.effects.clone(),
            completions: inbox.completions.clone(),
            mailbox,
            interrupt: interrupt.clone(),
            results: RefCell::new(None),
            wait_tally: Cell::new(crate::results::WaitTally::default()),
            env: RefCell::new(cfg.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            secrets: RefCell::new(secrets_of(&cfg.env)),
            max_line: cfg.max_console_line_bytes as usize,
            max_pending,
            console_budgets: RefCell::new(HashMap::new()),
            console_rate: f64::from(cfg.console_lines_per_second),
            console_owed: Cell::new(false),
            max_jobs: cfg.max_jobs_per_agent as usize,
            max_timers: cfg.max_timers_per_agent as usize,
            next_request: Cell::new(1),
            pending: RefCell::new(HashMap::new()),
            rejections,
            jobs: RefCell::new(Vec::new()),
            job_generation: Cell::new(0),
            run_now: RefCell::new(Vec::new()),
            scheduler_running: Cell::new(true),
            timers: RefCell::new(Vec::new()),
            next_timer: Cell::new(0),
            env_globals: RefCell::new(Vec::new()),
            clock: opts.clock,
            now: Cell::new(None),
            counters: RefCell::new(RuntimeCounters::default()),
            kfl: RefCell::new(crate::kfl::Cache::new(cfg.kfl_cache_entries)),
        });
        ctx.with(|ctx| -> rquickjs::Result<()> {
            let fns = crate::results::install(&ctx, &shared)?;
            *shared.results.borrow_mut() = Some(fns);
            crate::helpers::install_globals(&ctx, &shared)
        })
        .map_err(engine)?;
        let probe = ctx.with(|ctx| Probe::new(&ctx));
        Ok(AgentRuntime {
            agents: Vec::new(),
            active: Default::default(),
            mask: 0,
            next_uid: 1,
            shared,
            interrupt,
            env,
            inbox,
            hook_budget: Duration::from_millis(cfg.hook_budget_ms),
            job_budget: Duration::from_millis(cfg.job_budget_ms),
            quarantine_after: cfg.quarantine_after,
            es5_strict: cfg.es5_strict,
            memory_limit_mb: cfg.memory_limit_mb,
            gc_needed: false,
            data_dir: cfg.data_dir.clone(),
            shed_above: f32::from(cfg.shed_above_percent) / 100.0,
            shed_level: 0,
            shed: Vec::new(),
            last_fill: 0.0,
            proto,
            probe,
            spares: [None, None],
            ctx,
            rt,
        })
    }

    pub fn id(&self) -> RuntimeId {
        self.shared.id
    }

    /// Where completions and events for this runtime are delivered.
    pub fn mailbox(&self) -> Mailbox {
        self.shared.mailbox.clone()
    }

    /// The directory `file.*` of `agent` works in.
    pub fn agent_dir(&self, agent: &str) -> PathBuf {
        self.data_dir.join(agent)
    }

    // -----------------------------------------------------------------
    // Agents

    /// Loads an agent, or reloads it if one of that name is loaded. The
    /// other agents keep their state; a failed reload keeps the running
    /// version. Returns the ES5 warnings.
    pub fn load_agent(&mut self, name: &str, source: &str) -> Result<Vec<Es5Finding>, LoadError> {
        let agent = agent_name(name)?;
        let warnings = crate::es5::check(source);
        if self.es5_strict && !warnings.is_empty() {
            return Err(LoadError::NotEs5 { agent, findings: warnings });
        }
        let uid = self.next_uid;
        self.next_uid += 1;
        let name: Arc<str> = Arc::from(agent.as_str());
        let file = format!("{agent}.js");
        let shared = self.shared.clone();
        let interrupt = self.interrupt.clone();
        let budget = self.job_budget;
        let limit_mb = self.memory_limit_mb;
        let started = Instant::now();
        let result = self.ctx.with(
            |ctx| -> Result<[Option<Persistent<Function<'static>>>; HOOKS], LoadError> {
                let f = compile(&ctx, &agent, source)?;
                let engine = |e: rquickjs::Error| LoadError::Engine {
                    agent: agent.clone(),
                    message: e.to_string(),
                };
                let helpers =
                    crate::helpers::agent_helpers(&ctx, &shared, &name, uid).map_err(engine)?;
                let mut args = rquickjs::function::Args::new(ctx.clone(), helpers.len());
                args.this(ctx.globals()).map_err(engine)?;
                for h in helpers {
                    args.push_arg(h).map_err(engine)?;
                }
                interrupt.arm(Instant::now(), budget);
                let r = f.call_arg::<Value>(args);
                interrupt.disarm();
                let hooks = match r {
                    Ok(v) => v,
                    Err(rquickjs::Error::Exception) => {
                        let end = classify(
                            &ctx,
                            &interrupt,
                            &file,
                            budget,
                            limit_mb,
                            rquickjs::Error::Exception,
                        );
                        return Err(LoadError::TopLevel {
                            agent: agent.clone(),
                            at: end.at.unwrap_or_default(),
                            message: end.message,
                        });
                    }
                    Err(e) => return Err(engine(e)),
                };
                let Some(arr) = hooks.into_array() else {
                    // A `return` at the top level ended it before the
                    // hooks were collected.
                    return Err(LoadError::TopLevel {
                        agent: agent.clone(),
                        at: top_level_return(&agent, source).unwrap_or_default(),
                        message: "SyntaxError: `return` outside a function: the top-level code \
                                  ended there and its hooks were not seen"
                            .into(),
                    });
                };
                let mut out: [Option<Persistent<Function<'static>>>; HOOKS] = Default::default();
                for (i, slot) in out.iter_mut().enumerate() {
                    let v: Value = arr.get(i).map_err(engine)?;
                    *slot = v.into_function().map(|f| Persistent::save(&ctx, f));
                }
                Ok(out)
            },
        );
        let elapsed = started.elapsed().as_nanos() as u64;
        let hooks = match result {
            Ok(h) => h,
            Err(e) => {
                // Jobs the failed top level scheduled belong to nobody.
                self.drop_jobs_of(uid);
                if matches!(e, LoadError::TopLevel { .. }) {
                    self.gc_needed = true;
                }
                self.after_call();
                return Err(e);
            }
        };
        let mut new = Agent {
            name: name.clone(),
            file,
            uid,
            hooks,
            stats: AgentStats::new(),
            consecutive_faults: 0,
            faults: 0,
            quarantined: None,
            warnings: warnings.clone(),
            source_hash: hash_source(source),
            source: Arc::from(source),
            cost_ns: 0.0,
        };
        new.stats.site(CallSite::Load).record(elapsed, Outcome::Ok);
        match self.agents.iter().position(|a| *a.name == *name) {
            Some(i) => {
                let old = std::mem::replace(&mut self.agents[i], new);
                self.drop_jobs_of(old.uid);
                drop(old);
            }
            None => self.agents.push(new),
        }
        self.rebuild();
        self.after_call();
        Ok(warnings)
    }

    /// Replaces `env` and loads every agent again, as at start: an agent's
    /// `env` is fixed for its life (a frozen object), so its state starts
    /// over with the new values.
    pub fn set_env(&mut self, env: &std::collections::BTreeMap<String, String>) {
        if *self.shared.env.borrow()
            == env.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
        {
            return;
        }
        *self.shared.env.borrow_mut() = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        *self.shared.secrets.borrow_mut() = secrets_of(env);
        let shared = self.shared.clone();
        let installed = self.ctx.with(|ctx| -> rquickjs::Result<()> {
            ctx.globals().set("env", crate::helpers::env_object(&ctx, &shared)?)?;
            crate::local::define_env_globals(&ctx, &shared)
        });
        if let Err(e) = installed {
            self.shared.print(
                &Arc::from("global"),
                ConsoleLevel::Error,
                format!("env not replaced: {e}"),
            );
            return;
        }
        let agents: Vec<(Arc<str>, Arc<str>)> =
            self.agents.iter().map(|a| (a.name.clone(), a.source.clone())).collect();
        for (name, source) in agents {
            if let Err(e) = self.load_agent(&name, &source) {
                self.shared.print(
                    &name,
                    ConsoleLevel::Error,
                    format!("not loaded again with the new env: {e}"),
                );
            }
        }
    }

    /// Drops the jobs and timers of the agent with `uid`.
    fn drop_jobs_of(&self, uid: u64) {
        self.shared.jobs.borrow_mut().retain(|j| j.owner != uid);
        self.shared.timers.borrow_mut().retain(|t| t.owner != uid);
    }

    /// Removes an agent, its hooks and its jobs. `false` if not loaded.
    pub fn remove_agent(&mut self, name: &str) -> bool {
        let name = name.strip_suffix(".js").unwrap_or(name);
        let Some(i) = self.agents.iter().position(|a| &*a.name == name) else { return false };
        let old = self.agents.remove(i);
        self.drop_jobs_of(old.uid);
        drop(old);
        self.rebuild();
        self.gc_needed = true;
        self.after_call();
        true
    }

    pub fn agents(&self) -> Vec<AgentStatus> {
        self.agents
            .iter()
            .map(|a| AgentStatus {
                name: a.name.to_string(),
                hooks: Hook::ALL.iter().copied().filter(|h| a.defines(*h)).collect(),
                quarantined: a.quarantined.clone(),
                consecutive_faults: a.consecutive_faults,
                faults: a.faults,
                warnings: a.warnings.clone(),
                source_hash: a.source_hash,
            })
            .collect()
    }

    fn rebuild(&mut self) {
        // Agents came or went: shedding starts over from what it measures.
        self.shed_level = 0;
        self.shed = vec![false; self.agents.len()];
        let mut mask = 0u8;
        for h in Hook::ALL {
            let list: Vec<usize> = self
                .agents
                .iter()
                .enumerate()
                .filter(|(_, a)| a.quarantined.is_none() && a.defines(h))
                .map(|(i, _)| i)
                .collect();
            if !list.is_empty() {
                mask |= h.bit();
            }
            if let Some(slot) = self.active.get_mut(h.index()) {
                *slot = list;
            }
        }
        self.mask = mask;
        self.inbox
            .wants_logs
            .store(mask & Hook::LogCall.bit() != 0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether some running agent defines `hook`.
    #[inline]
    pub fn wants(&self, hook: Hook) -> bool {
        self.mask & hook.bit() != 0
    }

    /// Some agent defines `onPacketCaptured`: only then should the caller
    /// build packet infos at all.
    #[inline]
    pub fn wants_packets(&self) -> bool {
        self.wants(Hook::PacketCaptured)
    }

    #[inline]
    pub fn wants_items(&self) -> bool {
        self.wants(Hook::ItemCaptured)
    }

    /// Bit `1 << hook` set for each hook some running agent defines.
    #[inline]
    pub fn hook_mask(&self) -> u8 {
        self.mask
    }

    // -----------------------------------------------------------------
    // Shedding

    /// Tells the runtime how full its input rings are (`fill`, the fullest
    /// one's occupancy, 0 to 1), once per pass over them: at or above
    /// `scripting.shedAbovePercent` while not draining, one more of the
    /// costliest agents is shed; below half the mark, the last one shed is
    /// let back. A script core's loop calls it; inline runtimes never shed.
    pub fn backlog(&mut self, fill: f32) {
        if self.shed_above <= 0.0 {
            return;
        }
        let before = self.shed_level;
        if fill >= self.shed_above && fill >= self.last_fill {
            let candidates = self.shed_candidates().len();
            self.shed_level = (self.shed_level + 1).min(candidates);
        } else if fill < self.shed_above / 2.0 {
            self.shed_level = self.shed_level.saturating_sub(1);
        }
        self.last_fill = fill;
        if self.shed_level != before {
            self.pick_shed();
        }
    }

    /// Agents that may be shed: running, with an input hook.
    fn shed_candidates(&self) -> Vec<usize> {
        (0..self.agents.len())
            .filter(|&i| {
                self.agents.get(i).is_some_and(|a| {
                    a.quarantined.is_none()
                        && (a.defines(Hook::ItemCaptured) || a.defines(Hook::PacketCaptured))
                })
            })
            .collect()
    }

    /// Marks the `shed_level` costliest candidates as shed.
    fn pick_shed(&mut self) {
        let mut by_cost = self.shed_candidates();
        let cost = |i: &usize| self.agents.get(*i).map_or(0.0, |a| a.cost_ns);
        by_cost.sort_by(|a, b| cost(b).total_cmp(&cost(a)));
        self.shed = vec![false; self.agents.len()];
        for i in by_cost.into_iter().take(self.shed_level) {
            if let Some(s) = self.shed.get_mut(i) {
                *s = true;
            }
        }
    }

    /// Agents shed now (for tests and the status API).
    pub fn shed_agents(&self) -> Vec<String> {
        self.agents
            .iter()
            .zip(&self.shed)
            .filter(|(_, s)| **s)
            .map(|(a, _)| a.name.to_string())
            .collect()
    }

    /// How many inputs of `hook` fit in `slice` at what the agents not
    /// shed cost per input now (at least 1): a script core takes no more
    /// than that from a ring before it looks at its backlog again, so one
    /// slow agent cannot make it blind for a whole batch.
    pub fn inputs_per(&self, hook: Hook, slice: Duration) -> usize {
        let Some(list) = self.active.get(hook.index()) else { return 1 };
        let per_input: f64 = list
            .iter()
            .filter(|&&i| !self.shed.get(i).copied().unwrap_or(false))
            .filter_map(|&i| self.agents.get(i).map(|a| a.cost_ns))
            .sum();
        if per_input <= 0.0 {
            return usize::MAX;
        }
        ((slice.as_nanos() as f64 / per_input) as usize).max(1)
    }

    // -----------------------------------------------------------------
    // Hooks

    /// `onItemCaptured(data)` for one item.
    pub fn on_item_captured(&mut self, item: Item) {
        self.on_items_captured(std::iter::once(item));
    }

    /// `onItemCaptured(data)` for each item, in order, in one entry into the
    /// engine. Returns the items handed to agents.
    pub fn on_items_captured<I: IntoIterator<Item = Item>>(&mut self, items: I) -> usize {
        let Some(list) = self.active.get(Hook::ItemCaptured.index()).filter(|l| !l.is_empty())
        else {
            return 0;
        };
        let list = list.clone();
        let n = self.dispatch::<Items, _>(Hook::ItemCaptured, &list, items, SPARE_ITEM);
        self.shared.counters.borrow_mut().items += n as u64;
        self.after_call();
        n
    }

    /// `onPacketCaptured(info)` for each packet info.
    pub fn on_packets_captured<I: IntoIterator<Item = PacketInfo>>(&mut self, infos: I) -> usize {
        let Some(list) = self.active.get(Hook::PacketCaptured.index()).filter(|l| !l.is_empty())
        else {
            return 0;
        };
        let list = list.clone();
        let n = self.dispatch::<Packets, _>(Hook::PacketCaptured, &list, infos, SPARE_PACKET);
        self.shared.counters.borrow_mut().packets += n as u64;
        self.after_call();
        n
    }

    /// One engine entry for a batch: one JS object per input, each agent's
    /// hook called on it under the hook budget. The object of an input no
    /// hook kept or changed is the next input's (`R::spare`, then `R::make`
    /// rebinds it; see `item_js`), in this batch or the next
    /// (`self.spares[kind]`, whose class is checked once per batch).
    fn dispatch<R: Reusable, I: IntoIterator<Item = R::Input>>(
        &mut self,
        hook: Hook,
        list: &[usize],
        inputs: I,
        kind: usize,
    ) -> usize {
        let budget = self.hook_budget;
        let mut count = 0usize;
        let proto = self.proto.clone();
        let probe = self.probe;
        let mut stored = self.spares.get_mut(kind).and_then(Option::take);
        // Shed agents are not called for this batch (`backlog`).
        let shedding = self.shed_level > 0;
        let shed: Vec<usize> = if shedding {
            list.iter().copied().filter(|&i| self.shed.get(i).copied().unwrap_or(false)).collect()
        } else {
            Vec::new()
        };
        let kept_list: Vec<usize>;
        let list = if shedding {
            kept_list = list.iter().copied().filter(|i| !shed.contains(i)).collect();
            &kept_list[..]
        } else {
            list
        };
        let (mut calls, ctx, env) = self.calls();
        ctx.with(|ctx| {
            let fns: Vec<(usize, Function)> = calls.restore(&ctx, hook, list);
            let Some(lazy) = restore_lazy(&ctx, &proto) else { return };
            let mut t0 = Instant::now();
            let mut kept: Option<Class<R::Obj<'_>>> = stored
                .take()
                .and_then(|p| p.restore(&ctx).ok())
                .and_then(|v| Class::from_value(&v).ok());
            let mut reused = 0u64;
            for input in inputs {
                count += 1;
                reused += u64::from(kept.is_some());
                let arg = match R::make(&lazy, env, input, kept.take()) {
                    Ok(v) => v,
                    Err(_) => {
                        // No memory left to build the object: skip it.
                        let _ = ctx.catch();
                        calls.gc_needed = true;
                        continue;
                    }
                };
                for (i, f) in &fns {
                    t0 = calls
                        .call(
                            &ctx,
                            *i,
                            CallSite::Hook(hook),
                            || f.call_lent(arg.as_value()),
                            budget,
                            t0,
                        )
                        .1;
                }
                kept = R::spare(&probe, &lazy, arg);
            }
            calls.shared.counters.borrow_mut().objects_reused += reused;
            stored = kept.map(|c| Persistent::save(&ctx, c.into_value()));
        });
        self.gc_needed |= calls.finish();
        if let Some(s) = self.spares.get_mut(kind) {
            *s = stored;
        }
        if !shed.is_empty() && count > 0 {
            for &i in &shed {
                if let Some(a) = self.agents.get_mut(i) {
                    a.stats.site(CallSite::Hook(hook)).shed(count as u64);
                }
            }
            self.shared.counters.borrow_mut().shed += (count * shed.len()) as u64;
        }
        count
    }

    /// Borrows the parts a batch of calls needs, apart from the context.
    fn calls(&mut self) -> (Calls<'_>, &Context, &Rc<ItemEnv>) {
        let AgentRuntime {
            agents,
            shared,
            interrupt,
            quarantine_after,
            memory_limit_mb,
            ctx,
            env,
            active,
            mask,
            inbox,
            ..
        } = self;
        (
            Calls {
                agents,
                shared,
                interrupt,
                quarantine_after: *quarantine_after,
                memory_limit_mb: *memory_limit_mb,
                gc_needed: false,
                changed: false,
                active,
                mask,
                wants_logs: &inbox.wants_logs,
            },
            ctx,
            env,
        )
    }

    /// Calls `hook` of every agent defining it with the same arguments.
    fn call_all<F>(&mut self, hook: Hook, args: F) -> usize
    where
        F: for<'js> Fn(&Ctx<'js>) -> rquickjs::Result<Vec<Value<'js>>>,
    {
        let Some(list) = self.active.get(hook.index()).filter(|l| !l.is_empty()).cloned() else {
            return 0;
        };
        let budget = self.hook_budget;
        let (mut calls, ctx, _) = self.calls();
        ctx.with(|ctx| {
            let fns = calls.restore(&ctx, hook, &list);
            let Ok(values) = args(&ctx) else {
                let _ = ctx.catch();
                return;
            };
            for (i, f) in &fns {
                calls.call(
                    &ctx,
                    *i,
                    CallSite::Hook(hook),
                    || call_with(&ctx, f, &values),
                    budget,
                    Instant::now(),
                );
            }
        });
        self.gc_needed |= calls.finish();
        list.len()
    }

    /// `onItemQueried(data)`: each agent defining it may replace the item
    /// (a returned object is what the next agent and the answer get;
    /// `test.pass`/`test.fail` mark it). Returns the item's JSON as the
    /// dashboard/API should show it.
    pub fn on_item_queried(&mut self, item: &Item) -> serde_json::Value {
        let proto = self.proto.clone();
        let made = self.item_queried(|ctx, env| {
            let lazy = restore_lazy(ctx, &proto).ok_or(rquickjs::Error::Unknown)?;
            item_value(ctx, &lazy, env, item.clone())
        });
        made.flatten().unwrap_or_else(|| item.to_json(&self.shared.node))
    }

    /// `onItemQueried(data)` for an item that arrives as JSON (the hub gets
    /// workers' items that way): `None` when no agent defines the hook,
    /// else the item as the agents leave it.
    pub fn on_item_queried_json(&mut self, item: &serde_json::Value) -> Option<serde_json::Value> {
        let made = self.item_queried(|ctx, _| js::from_json(ctx, item))?;
        Some(made.unwrap_or_else(|| item.clone()))
    }

    /// Runs every agent's `onItemQueried` on the object `make` builds:
    /// `None` when no agent defines it, `Some(None)` when the item could
    /// not be built or serialised.
    fn item_queried<M>(&mut self, make: M) -> Option<Option<serde_json::Value>>
    where
        M: for<'js> FnOnce(&Ctx<'js>, &Rc<ItemEnv>) -> rquickjs::Result<Value<'js>>,
    {
        let list = self.active.get(Hook::ItemQueried.index()).filter(|l| !l.is_empty()).cloned()?;
        let budget = self.hook_budget;
        let (mut calls, ctx, env) = self.calls();
        let out = ctx.with(|ctx| {
            let fns = calls.restore(&ctx, Hook::ItemQueried, &list);
            let Ok(mut current) = make(&ctx, env) else {
                let _ = ctx.catch();
                return None;
            };
            for (i, f) in &fns {
                if let (CallResult::Ok(v), _) = calls.call(
                    &ctx,
                    *i,
                    CallSite::Hook(Hook::ItemQueried),
                    || f.call((current.clone(),)),
                    budget,
                    Instant::now(),
                ) {
                    if v.is_object() && !v.is_function() {
                        current = v;
                    }
                }
            }
            js::to_json(&ctx, current).ok()
        });
        self.gc_needed |= calls.finish();
        self.after_call();
        Some(out)
    }

    /// `onHubAction(action, object)` in every agent defining it.
    pub fn on_hub_action(&mut self, action: &str, object: &serde_json::Value) -> usize {
        let n = self.call_all(Hook::HubAction, |ctx| {
            Ok(vec![js::string(ctx, action)?, js::from_json(ctx, object)?])
        });
        self.after_call();
        n
    }

    /// `onPodEvent(event, pod)` in every agent defining it.
    pub fn on_pod_event(&mut self, event: &str, pod: &serde_json::Value) -> usize {
        let n = self.call_all(Hook::PodEvent, |ctx| {
            Ok(vec![js::string(ctx, event)?, js::from_json(ctx, pod)?])
        });
        self.after_call();
        n
    }

    // -----------------------------------------------------------------
    // Effects and events

    /// Settles the Promises whose effects completed, delivers queued hub
    /// actions and pod events to their hooks, and runs the Promise
    /// reactions that became ready. Returns completions and events handled.
    pub fn poll_completions(&mut self) -> usize {
        let completions: Vec<_> = self.inbox.completions.try_iter().collect();
        let events: Vec<_> = self.inbox.events.try_iter().collect();
        let logs: Vec<_> = self.inbox.logs.try_iter().collect();
        let n = completions.len() + events.len() + logs.len();
        if !completions.is_empty() {
            let shared = self.shared.clone();
            self.ctx.with(|ctx| {
                for c in completions {
                    if crate::results::complete(&ctx, &shared, c, false).is_err() {
                        let _ = ctx.catch();
                    }
                }
            });
        }
        if !logs.is_empty() {
            // What skua logs while onLogCall runs here is not offered to it
            // again (`in_log_hook`).
            let _guard = LogHookGuard::enter();
            for r in logs {
                self.call_all(Hook::LogCall, |ctx| {
                    Ok(vec![js::string(ctx, r.level)?, js::string(ctx, &r.msg)?])
                });
            }
        }
        for e in events {
            match e {
                RuntimeEvent::HubAction { action, object } => {
                    self.call_all(Hook::HubAction, |ctx| {
                        Ok(vec![js::string(ctx, &action)?, js::from_json(ctx, &object)?])
                    });
                }
                RuntimeEvent::PodEvent { event, pod } => {
                    self.call_all(Hook::PodEvent, |ctx| {
                        Ok(vec![js::string(ctx, &event)?, js::from_json(ctx, &pod)?])
                    });
                }
                RuntimeEvent::LoadAgent { name, source } => {
                    let unchanged = self.agents.iter().any(|a| {
                        *a.name == *name
                            && a.source_hash == hash_source(&source)
                            && a.quarantined.is_none()
                    });
                    if !unchanged {
                        let said = match self.load_agent(&name, &source) {
                            Ok(_) => (ConsoleLevel::Log, "(agent loaded)".to_string()),
                            Err(e) => (
                                ConsoleLevel::Error,
                                format!("not loaded, the running version is kept: {e}"),
                            ),
                        };
                        self.shared.print(&Arc::from(name.as_str()), said.0, said.1);
                    }
                }
                RuntimeEvent::RemoveAgent { name } => {
                    self.remove_agent(&name);
                }
                RuntimeEvent::SetEnv { env } => self.set_env(&env),
                RuntimeEvent::Job { tag, remove } => {
                    let tags: Vec<String> = match tag {
                        Some(t) => vec![crate::jobs::normalize_tag(&t)],
                        None => self.shared.jobs.borrow().iter().map(|j| j.tag.clone()).collect(),
                    };
                    for t in tags {
                        if remove {
                            self.remove_job(&t);
                        } else {
                            self.run_job_now(&t);
                        }
                    }
                }
            }
        }
        self.after_call();
        n
    }

    /// Effects of this runtime still waiting for a completion.
    pub fn pending_effects(&self) -> usize {
        self.shared.pending.borrow().len()
    }

    /// Work left over from the last call: `jobs.run` requests, Promise
    /// reactions, a garbage collection after a heap-limit hit.
    /// Reports helper Promises still rejected with no handler.
    fn report_unhandled(&mut self) {
        let left = std::mem::take(&mut self.shared.rejections.borrow_mut().unhandled);
        for (_, agent, why) in left {
            self.shared.counters.borrow_mut().unhandled_rejections += 1;
            self.shared.print(
                &agent,
                ConsoleLevel::Error,
                format!("unhandled rejection of a helper's Promise: {why}"),
            );
        }
    }

    fn after_call(&mut self) {
        for _ in 0..64 {
            let tags: Vec<String> = std::mem::take(&mut *self.shared.run_now.borrow_mut());
            if tags.is_empty() {
                break;
            }
            let now = self.shared.now().unwrap_or_else(SystemTime::now);
            for tag in tags {
                self.run_job(&tag, now, true);
            }
        }
        self.run_promise_jobs();
        if !self.shared.rejections.borrow().unhandled.is_empty() {
            self.report_unhandled();
        }
        self.shared.report_suppressed();
        if self.gc_needed {
            self.gc_needed = false;
            self.rt.run_gc();
        }
    }

    /// A full garbage collection now (tests).
    #[cfg(test)]
    pub(crate) fn collect_garbage(&mut self) {
        self.rt.run_gc();
    }

    fn run_promise_jobs(&mut self) {
        let mut n = 0;
        while n < MAX_PENDING_JOBS_PER_POLL && self.rt.is_job_pending() {
            n += 1;
            self.interrupt.arm(Instant::now(), self.hook_budget);
            let r = self.rt.execute_pending_job();
            self.interrupt.disarm();
            match r {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let fired = self.interrupt.fired.get();
                    let (text, file) = e.0.with(|ctx| {
                        let exc = ctx.catch();
                        let stack = js::exception_stack(&exc).unwrap_or_default();
                        let file = js::first_frame(&stack).map(|(f, _, _)| f.to_owned());
                        (js::exception_message(&ctx, &exc), file)
                    });
                    let agent: Arc<str> = file
                        .and_then(|f| {
                            self.agents.iter().find(|a| a.file == f).map(|a| a.name.clone())
                        })
                        .unwrap_or_else(|| Arc::from("-"));
                    let what =
                        if fired { "interrupted: ran past its budget".to_owned() } else { text };
                    self.shared.counters.borrow_mut().faults += 1;
                    self.shared.print(
                        &agent,
                        ConsoleLevel::Error,
                        format!("promise reaction failed: {what}"),
                    );
                    self.gc_needed = true;
                }
            }
        }
    }

    // -----------------------------------------------------------------
    // Jobs

    /// Sets a manual clock (and gives jobs scheduled before any time was
    /// known their first due time). Ignored with the system clock.
    pub fn set_time(&mut self, now: SystemTime) {
        if self.shared.clock != Clock::Manual {
            return;
        }
        self.shared.now.set(Some(now));
        for j in self.shared.jobs.borrow_mut().iter_mut() {
            if j.next_due.is_none() {
                j.next_due = next_after(&j.schedule, now);
            }
        }
        for t in self.shared.timers.borrow_mut().iter_mut() {
            if t.due.is_none() {
                t.due = Some(now + t.delay);
            }
        }
    }

    /// When the next job or timer is due (of agents not quarantined; cron
    /// jobs only while the scheduler runs).
    pub fn next_job_due(&self) -> Option<SystemTime> {
        let live =
            |owner: u64| self.agents.iter().any(|a| a.uid == owner && a.quarantined.is_none());
        let running = self.shared.scheduler_running.get();
        let jobs = self.shared.jobs.borrow();
        let job = jobs.iter().filter(|j| running && live(j.owner)).filter_map(|j| j.next_due).min();
        let timers = self.shared.timers.borrow();
        let timer = timers.iter().filter(|t| live(t.owner)).filter_map(|t| t.due).min();
        match (job, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every job due at `now` (once each, however many due times were
    /// missed), then `onJobPassed`/`onJobFailed`. Returns the runs.
    pub fn run_due_jobs(&mut self, now: SystemTime) -> usize {
        self.set_time(now);
        let due: Vec<String> = if self.shared.scheduler_running.get() {
            self.shared
                .jobs
                .borrow()
                .iter()
                .filter(|j| j.next_due.is_some_and(|d| d <= now))
                .map(|j| j.tag.clone())
                .collect()
        } else {
            Vec::new()
        };
        let mut runs = 0;
        for tag in due {
            if self.run_job(&tag, now, false) {
                runs += 1;
            }
        }
        let timers: Vec<u64> = self
            .shared
            .timers
            .borrow()
            .iter()
            .filter(|t| t.due.is_some_and(|d| d <= now))
            .map(|t| t.id)
            .collect();
        for id in timers {
            if self.run_timer(id, now) {
                runs += 1;
            }
        }
        self.after_call();
        runs
    }

    /// Runs timer `id` (a one-shot one is gone after; a repeating one is
    /// due again `delay` after `now`, at least 1 ms on).
    fn run_timer(&mut self, id: u64, now: SystemTime) -> bool {
        let found = {
            let mut timers = self.shared.timers.borrow_mut();
            let Some(pos) = timers.iter().position(|t| t.id == id) else { return false };
            match timers.get_mut(pos) {
                Some(t) if t.repeat => {
                    t.due = Some(now + t.delay.max(Duration::from_millis(1)));
                    (t.func.clone(), t.args.clone(), t.owner)
                }
                _ => {
                    let t = timers.remove(pos);
                    (t.func, t.args, t.owner)
                }
            }
        };
        let (func, args, owner) = found;
        let Some(ai) = self.agents.iter().position(|a| a.uid == owner) else { return false };
        self.call_job(ai, func, args);
        self.shared.counters.borrow_mut().job_runs += 1;
        true
    }

    /// Calls a job's (or timer's) function of agent `ai` with its
    /// arguments under the job budget; its failure, if it failed.
    fn call_job(
        &mut self,
        ai: usize,
        func: Persistent<Function<'static>>,
        args: Vec<Persistent<Value<'static>>>,
    ) -> Option<String> {
        let budget = self.job_budget;
        let (mut calls, ctx, _) = self.calls();
        let failure = ctx.with(|ctx| {
            let Ok(f) = func.restore(&ctx) else { return Some("job function lost".to_owned()) };
            let values: Vec<Value> =
                args.into_iter().filter_map(|a| a.restore(&ctx).ok()).collect();
            let call = || call_with(&ctx, &f, &values);
            match calls.call(&ctx, ai, CallSite::Job, call, budget, Instant::now()).0 {
                CallResult::Ok(_) => None,
                CallResult::Failed(m) => Some(m),
                CallResult::Skipped => Some("agent quarantined".to_owned()),
            }
        });
        self.gc_needed |= calls.finish();
        failure
    }

    /// Runs one job now (as `jobs.run(tag)`). `false` if there is no such
    /// job or its agent is quarantined.
    pub fn run_job_now(&mut self, tag: &str) -> bool {
        let now = self.shared.now().unwrap_or_else(SystemTime::now);
        let ran = self.run_job(&crate::jobs::normalize_tag(tag), now, true);
        self.after_call();
        ran
    }

    /// Removes one job (as `jobs.remove(tag)`): for the hub's jobs view.
    /// `false` if there was no such job.
    pub fn remove_job(&mut self, tag: &str) -> bool {
        crate::helpers::remove_job(&self.shared, tag)
    }

    /// The scheduled jobs.
    pub fn jobs(&self) -> Vec<JobInfo> {
        crate::helpers::job_infos(&self.shared)
    }

    fn run_job(&mut self, tag: &str, now: SystemTime, manual: bool) -> bool {
        let found = self.shared.jobs.borrow().iter().find(|j| j.tag == tag).map(|j| {
            (j.func.clone(), j.args.clone(), j.cron.clone(), j.limit, j.owner, j.generation)
        });
        let Some((func, args, cron, limit, owner, generation)) = found else { return false };
        let Some(ai) = self.agents.iter().position(|a| a.uid == owner) else { return false };
        if self.agents.get(ai).is_some_and(|a| a.quarantined.is_some()) {
            return false;
        }
        let failure = self.call_job(ai, func, args);
        {
            let mut jobs = self.shared.jobs.borrow_mut();
            if let Some(pos) = jobs.iter().position(|j| j.tag == tag && j.generation == generation)
            {
                let done = match jobs.get_mut(pos) {
                    Some(j) => {
                        j.runs = j.runs.saturating_add(1);
                        if !manual || j.next_due.is_some_and(|d| d <= now) {
                            j.next_due = next_after(&j.schedule, now);
                        }
                        j.limit > 0 && j.runs >= j.limit
                    }
                    None => false,
                };
                if done {
                    jobs.remove(pos);
                }
            }
        }
        self.shared.counters.borrow_mut().job_runs += 1;
        let tag_s = tag.to_owned();
        match failure {
            None => {
                self.call_all(Hook::JobPassed, |ctx| {
                    Ok(vec![
                        js::string(ctx, &tag_s)?,
                        js::string(ctx, &cron)?,
                        js::num(ctx, u64::from(limit)),
                    ])
                });
            }
            Some(err) => {
                self.call_all(Hook::JobFailed, |ctx| {
                    Ok(vec![
                        js::string(ctx, &tag_s)?,
                        js::string(ctx, &cron)?,
                        js::num(ctx, u64::from(limit)),
                        js::string(ctx, &err)?,
                    ])
                });
            }
        }
        true
    }

    // -----------------------------------------------------------------
    // Stats

    /// Per agent and call site: calls, errors, interrupts, heap-limit hits,
    /// latency quantiles.
    pub fn stats(&self) -> Vec<HookStats> {
        let mut out = Vec::new();
        for a in &self.agents {
            a.stats.snapshots(self.shared.id, &a.name, &mut out);
        }
        out
    }

    /// Whether item and packet objects can be reused on this build (the
    /// QuickJS layout check passed; see `probe`).
    pub fn reuses_objects(&self) -> bool {
        self.probe.is_on()
    }

    pub fn counters(&self) -> RuntimeCounters {
        let mut c = *self.shared.counters.borrow();
        c.events_dropped = self.inbox.events_dropped.load(std::sync::atomic::Ordering::Relaxed);
        c.log_records_dropped = self.inbox.logs_dropped.load(std::sync::atomic::Ordering::Relaxed);
        c
    }

    /// Bytes the JS heap uses now.
    pub fn memory_used_bytes(&self) -> u64 {
        u64::try_from(self.rt.memory_usage().memory_used_size).unwrap_or(0)
    }
}

impl Drop for AgentRuntime {
    fn drop(&mut self) {
        // Log records are no longer taken.
        self.inbox.wants_logs.store(false, std::sync::atomic::Ordering::Relaxed);
        // Every JS value Rust holds goes while QuickJS is still alive.
        self.agents.clear();
        self.shared.jobs.borrow_mut().clear();
        self.shared.timers.borrow_mut().clear();
        self.shared.pending.borrow_mut().clear();
        self.shared.results.borrow_mut().take();
        self.spares = [None, None];
        self.env.release();
    }
}

/// How a call into an agent ended, for its caller.
pub(crate) enum CallResult<'js> {
    Ok(Value<'js>),
    /// The agent is quarantined; not called.
    Skipped,
    /// It threw, ran past its budget or hit the heap limit.
    Failed(String),
}

/// The parts of a runtime a series of calls needs, borrowed apart from the
/// context so calls can run inside `Context::with`.
struct Calls<'r> {
    agents: &'r mut Vec<Agent>,
    shared: &'r Rc<Shared>,
    interrupt: &'r Interrupt,
    quarantine_after: u32,
    memory_limit_mb: u32,
    gc_needed: bool,
    /// An agent was quarantined: the hook lists need rebuilding.
    changed: bool,
    active: &'r mut [Vec<usize>; HOOKS],
    mask: &'r mut u8,
    wants_logs: &'r std::sync::atomic::AtomicBool,
}

impl Calls<'_> {
    fn restore<'js>(
        &self,
        ctx: &Ctx<'js>,
        hook: Hook,
        list: &[usize],
    ) -> Vec<(usize, Function<'js>)> {
        list.iter()
            .filter_map(|&i| {
                let f = self.agents.get(i)?.hooks.get(hook.index())?.clone()?.restore(ctx).ok()?;
                Some((i, f))
            })
            .collect()
    }

    /// Calls `f` of agent `i` under `budget` counted from `t0`; records
    /// latency and faults. Returns the result and the end time (the next
    /// call's start, saving a clock read).
    #[inline]
    fn call<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        i: usize,
        site: CallSite,
        invoke: impl FnOnce() -> rquickjs::Result<Value<'js>>,
        budget: Duration,
        t0: Instant,
    ) -> (CallResult<'js>, Instant) {
        let Some(agent) = self.agents.get_mut(i) else { return (CallResult::Skipped, t0) };
        if agent.quarantined.is_some() {
            return (CallResult::Skipped, t0);
        }
        // What was tallied outside any call (Promise reactions, a load) is
        // not this call's.
        self.shared.wait_tally.set(crate::results::WaitTally::default());
        self.interrupt.arm(t0, budget);
        let r = invoke();
        self.interrupt.disarm();
        let r = match r {
            Ok(v) => Ok(v),
            Err(e) => {
                Err(classify(ctx, self.interrupt, &agent.file, budget, self.memory_limit_mb, e))
            }
        };
        let t1 = Instant::now();
        let ns = u64::try_from(t1.duration_since(t0).as_nanos()).unwrap_or(u64::MAX);
        if matches!(site, CallSite::Hook(Hook::ItemCaptured | Hook::PacketCaptured)) {
            // 1/16 of each call: a few dozen calls follow a change of pace.
            agent.cost_ns += (ns as f64 - agent.cost_ns) / 16.0;
        }
        self.shared.counters.borrow_mut().hook_calls += 1;
        let waits = self.shared.wait_tally.get();
        if waits != crate::results::WaitTally::default() {
            self.shared.wait_tally.set(crate::results::WaitTally::default());
            agent.stats.site(site).waited(waits);
        }
        match r {
            Ok(v) if waits.limits_hit > 0 => {
                // The script caught the limit's error: the call still counts
                // as a fault, so an agent that keeps hitting a limit is
                // quarantined like one that keeps throwing.
                agent.stats.site(site).record(ns, Outcome::Ok);
                let message = format!(
                    "hit a per-agent limit {} time(s) in this call (see the error it threw)",
                    waits.limits_hit
                );
                self.fault(i, site, CallEnd { outcome: Outcome::Error, message, at: None });
                (CallResult::Ok(v), t1)
            }
            Ok(v) => {
                agent.stats.site(site).record(ns, Outcome::Ok);
                agent.consecutive_faults = 0;
                (CallResult::Ok(v), t1)
            }
            Err(end) => {
                agent.stats.site(site).record(ns, end.outcome);
                let msg = end.message.clone();
                self.fault(i, site, end);
                (CallResult::Failed(msg), t1)
            }
        }
    }

    fn fault(&mut self, i: usize, site: CallSite, end: CallEnd) {
        let Some(agent) = self.agents.get_mut(i) else { return };
        agent.faults += 1;
        agent.consecutive_faults = agent.consecutive_faults.saturating_add(1);
        {
            let mut c = self.shared.counters.borrow_mut();
            c.faults += 1;
            match end.outcome {
                Outcome::Interrupted => c.interrupts += 1,
                Outcome::OutOfMemory => c.out_of_memory += 1,
                _ => {}
            }
        }
        if end.outcome == Outcome::OutOfMemory {
            self.gc_needed = true;
        }
        if agent.faults <= FAULT_LOG_FIRST || agent.faults % FAULT_LOG_EVERY == 0 {
            let at = end.at.map(|p| format!(" at {}:{p}", agent.file)).unwrap_or_default();
            let count = if agent.faults > FAULT_LOG_FIRST {
                format!(" ({} faults so far)", agent.faults)
            } else {
                String::new()
            };
            self.shared.print(
                &agent.name,
                ConsoleLevel::Error,
                format!("{}{at}: {}{count}", site.name(), end.message),
            );
        }
        if self.quarantine_after > 0
            && agent.consecutive_faults >= self.quarantine_after
            && agent.quarantined.is_none()
        {
            let why = format!(
                "{} consecutive faults, last in {}: {}",
                agent.consecutive_faults,
                site.name(),
                end.message
            );
            self.shared.print(
                &agent.name,
                ConsoleLevel::Error,
                format!("quarantined ({why}); reload the agent to resume"),
            );
            self.shared.counters.borrow_mut().quarantines += 1;
            agent.quarantined = Some(why);
            self.changed = true;
        }
    }

    /// Applies what the calls changed: hook lists after a quarantine.
    fn finish(self) -> bool {
        if self.changed {
            let mut mask = 0u8;
            for h in Hook::ALL {
                if let Some(list) = self.active.get_mut(h.index()) {
                    list.retain(|&i| self.agents.get(i).is_some_and(|a| a.quarantined.is_none()));
                    if !list.is_empty() {
                        mask |= h.bit();
                    }
                }
            }
            *self.mask = mask;
            self.wants_logs
                .store(mask & Hook::LogCall.bit() != 0, std::sync::atomic::Ordering::Relaxed);
        }
        self.gc_needed
    }
}

fn restore_lazy<'js>(ctx: &Ctx<'js>, p: &Persistent<Object<'static>>) -> Option<Lazy<'js>> {
    Some(Lazy { proto: p.clone().restore(ctx).ok()? })
}

/// Calls `f` with a list of arguments (and `this` undefined).
fn call_with<'js>(
    ctx: &Ctx<'js>,
    f: &Function<'js>,
    values: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let mut args = rquickjs::function::Args::new(ctx.clone(), values.len());
    for v in values {
        args.push_arg(v.clone())?;
    }
    f.call_arg(args)
}

/// Turns a failed call into a [`CallEnd`], taking the pending exception.
fn classify<'js>(
    ctx: &Ctx<'js>,
    interrupt: &Interrupt,
    file: &str,
    budget: Duration,
    memory_limit_mb: u32,
    err: rquickjs::Error,
) -> CallEnd {
    if !matches!(err, rquickjs::Error::Exception) {
        return CallEnd { outcome: Outcome::Error, message: err.to_string(), at: None };
    }
    let exc = ctx.catch();
    let stack = js::exception_stack(&exc);
    let at = position_in(stack.as_deref(), file);
    if interrupt.fired.get() {
        return CallEnd {
            outcome: Outcome::Interrupted,
            message: format!("interrupted: ran past its {} ms budget", budget.as_millis()),
            at,
        };
    }
    let message = js::exception_message(ctx, &exc);
    // QuickJS throws `InternalError: out of memory`, or `null` when even
    // that error object cannot be allocated.
    if exc.is_null() || message.ends_with("out of memory") {
        return CallEnd {
            outcome: Outcome::OutOfMemory,
            message: format!("out of memory: hit the runtime heap limit ({memory_limit_mb} MiB)"),
            at,
        };
    }
    CallEnd { outcome: Outcome::Error, message, at }
}
