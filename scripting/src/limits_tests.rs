//! Per-agent limits of one runtime under abuse (issue 30): jobs and timers
//! per agent (`maxJobsPerAgent`, `maxTimersPerAgent`), the console rate
//! (`consoleLinesPerSecond`), shedding the costliest agent when a script
//! core falls behind (`shedAbovePercent`), and what an ignored helper
//! result costs. Each test says what is sent, which bound holds and which
//! counter moves. The end-to-end forms (the `skua` binary, a capture) are
//! in the workspace's `tests/abuse_*.rs`.

use std::time::Duration;

use crossbeam_channel::Receiver;
use reassembly::NodeInfo;

use crate::console::{ConsoleLine, ConsoleSink, RuntimeId};
use crate::effects::EffectSink;
use crate::executor::LocalExecutor;
use crate::runtime::{AgentRuntime, Clock, RuntimeOptions};
use crate::stats::{CallSite, Hook};
use crate::testkit::http_get;
use crate::ScriptingConfig;

struct H {
    rt: AgentRuntime,
    console: Receiver<ConsoleLine>,
    exec: LocalExecutor,
    _dir: tempfile::TempDir,
}

fn harness(tweak: impl FnOnce(&mut ScriptingConfig)) -> H {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        ScriptingConfig { data_dir: dir.path().to_path_buf(), ..ScriptingConfig::default() };
    tweak(&mut config);
    let (console, console_rx) = ConsoleSink::new(1 << 20);
    let (effects, effects_rx) = EffectSink::new(config.effect_queue as usize);
    let rt = AgentRuntime::new(RuntimeOptions {
        id: RuntimeId(3),
        node: NodeInfo { ip: "192.0.2.3".into(), name: "node-l".into() },
        config,
        console,
        effects,
        clock: Clock::System,
    })
    .unwrap();
    let exec = LocalExecutor::new(effects_rx, dir.path());
    H { rt, console: console_rx, exec, _dir: dir }
}

impl H {
    fn load(&mut self, name: &str, src: &str) {
        if let Err(e) = self.rt.load_agent(name, src) {
            panic!("load {name}: {e}");
        }
    }

    fn lines(&self) -> Vec<ConsoleLine> {
        self.console.try_iter().collect()
    }

    fn items(&mut self, from: u64, n: u64) {
        self.rt.on_items_captured((from..from + n).map(|i| http_get(i, "h.example", "/", 200)));
    }

    fn calls(&self, agent: &str, site: CallSite) -> u64 {
        self.rt.stats().iter().filter(|s| s.agent == agent && s.site == site).map(|s| s.calls).sum()
    }

    fn quarantined(&self, agent: &str) -> Option<String> {
        self.rt.agents().into_iter().find(|a| a.name == agent).and_then(|a| a.quarantined)
    }
}

const ITEM: CallSite = CallSite::Hook(Hook::ItemCaptured);

/// Sent: an agent scheduling one new cron job per item, catching the
/// error, beside an agent counting items. Bound: at most
/// `maxJobsPerAgent` jobs; the 65th `jobs.schedule` throws a catchable
/// `Error`. Counters: `jobs_refused`, the agent's `limits_hit`; after
/// `quarantineAfter` calls that hit the limit the agent is quarantined
/// and its hook no longer runs; the counting agent sees every item.
#[test]
fn jobs_per_agent_are_bounded_and_an_agent_that_keeps_trying_is_quarantined() {
    let mut h = harness(|c| {
        c.max_jobs_per_agent = 8;
        c.quarantine_after = 5;
    });
    h.load(
        "spawner",
        r#"
        var n = 0, refused = 0;
        function onItemCaptured(data) {
          try {
            jobs.schedule("job-" + (n++), "0 0 * * * *", function () {});
          } catch (e) {
            // Quarantined after 5 refusals: it says what it caught first.
            if (refused++ === 0) console.log("refused", e instanceof Error, e.message);
          }
        }"#,
    );
    h.load("counter", "var n = 0; function onItemCaptured(d) { n++; } function onHubAction() { console.log('seen', n); }");
    h.items(0, 1_000);
    assert_eq!(h.rt.jobs().iter().filter(|j| j.agent == "spawner").count(), 8, "the bound");
    let c = h.rt.counters();
    // 8 scheduled, then 5 refusals in a row quarantine the agent.
    assert_eq!(c.jobs_refused, 5, "{c:?}");
    assert_eq!(c.quarantines, 1);
    let why = h.quarantined("spawner").expect("quarantined");
    assert!(why.contains("per-agent limit"), "{why}");
    assert_eq!(h.calls("spawner", ITEM), 13, "no calls once quarantined");
    assert_eq!(h.calls("counter", ITEM), 1_000, "the other agent saw every item");
    let site = h.rt.stats().into_iter().find(|s| s.agent == "spawner" && s.site == ITEM).unwrap();
    assert_eq!(site.limits_hit, 5);
    h.rt.on_hub_action("dump", &serde_json::Value::Null);
    let lines: Vec<String> = h.lines().into_iter().map(|l| l.text).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("refused true jobs.schedule(\"job-8\"): this agent has 8 jobs")
                && l.contains("scripting.maxJobsPerAgent")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "seen 1000"), "{lines:#?}");
    // Re-scheduling a tag it has is not a new job: a reloaded agent with
    // 8 jobs may replace them as often as it likes.
    h.load(
        "spawner",
        r#"
        for (var i = 0; i < 8; i++) jobs.schedule("job-" + i, "0 0 * * * *", function () {});
        function onItemCaptured(data) { jobs.schedule("job-3", "0 1 * * * *", function () {}); }"#,
    );
    h.items(1_000, 100);
    assert_eq!(h.rt.counters().jobs_refused, 5);
    assert!(h.quarantined("spawner").is_none());
}

/// Sent: `setTimeout` per item that never fires (an hour away), the
/// error not caught. Bound: `maxTimersPerAgent` pending timers; past it
/// the call throws, the hook fails, the agent is quarantined after
/// `quarantineAfter` faults. Timers that fire make room again.
#[test]
fn timers_per_agent_are_bounded() {
    let mut h = harness(|c| {
        c.max_timers_per_agent = 16;
        c.quarantine_after = 3;
    });
    h.load("timers", "function onItemCaptured(d) { setTimeout(function () {}, 3600000); }");
    h.items(0, 100);
    let c = h.rt.counters();
    assert_eq!(c.timers_refused, 3, "{c:?}");
    assert!(h.quarantined("timers").is_some());
    let texts: Vec<String> = h.lines().into_iter().map(|l| l.text).collect();
    assert!(
        texts.iter().any(|l| l.contains("setTimeout: this agent has 16 timers pending")),
        "{texts:#?}"
    );
    // One-shot timers that ran leave room: 16 at a time, 100 in all.
    h.load(
        "short",
        r#"
        var fired = 0;
        function onItemCaptured(d) { setTimeout(function () { fired++; }, 0); }
        function onHubAction() { console.log("fired", fired); }"#,
    );
    for i in 0..10 {
        h.items(i * 10, 10);
        std::thread::sleep(Duration::from_millis(2));
        h.rt.run_due_jobs(std::time::SystemTime::now());
    }
    assert!(h.quarantined("short").is_none());
    h.rt.on_hub_action("x", &serde_json::Value::Null);
    assert!(h.lines().iter().any(|l| l.text == "fired 100"));
}

/// The Rust side of a job (its schedule, tag, handles) lives outside
/// the JS heap, so the count bound is what holds it: 64 jobs of one agent
/// cost a bounded, small amount; their closures are JS values under
/// `memoryLimitMb`.
#[test]
fn a_full_job_table_costs_a_bounded_amount_of_memory() {
    let mut h = harness(|c| c.quarantine_after = 0);
    h.load(
        "spawner",
        r#"
        var n = 0;
        function onItemCaptured(data) {
          var big = new Array(1000).join("x") + n;
          try { jobs.schedule("j" + (n++), "*/5 * * * * *", function () { return big; }); } catch (e) {}
        }"#,
    );
    h.items(0, 64);
    let heap_at_64 = h.rt.memory_used_bytes();
    h.items(64, 20_000);
    assert_eq!(h.rt.jobs().len(), 64);
    assert_eq!(h.rt.counters().jobs_refused, 20_000);
    h.rt.collect_garbage();
    let heap = h.rt.memory_used_bytes();
    assert!(
        heap < heap_at_64 + (1 << 20),
        "JS heap {heap} B after 20,000 refusals, {heap_at_64} B at 64 jobs"
    );
}

/// Sent: 100,000 `console.log` calls in one hook. Bound: one second's
/// worth of lines (`consoleLinesPerSecond`) plus one line saying how many
/// were suppressed. Counter: `console_lines_suppressed`, per agent and
/// hook too. Another agent's lines are not suppressed.
#[test]
fn console_lines_are_rate_limited_per_agent_and_the_suppressed_are_counted() {
    let mut h = harness(|c| {
        c.console_lines_per_second = 50;
        // 100,000 calls in one hook: not to be cut by the call budget on
        // a loaded machine.
        c.hook_budget_ms = 60_000;
    });
    h.load(
        "chatty",
        "function onItemCaptured(d) { for (var i = 0; i < 100000; i++) console.log('line', i, d.request.path); }",
    );
    h.load("quiet", "function onItemCaptured(d) { console.log('quiet', d.index); }");
    let t0 = std::time::Instant::now();
    h.items(0, 1);
    let took = t0.elapsed();
    let lines = h.lines();
    let chatty: Vec<&ConsoleLine> = lines.iter().filter(|l| &*l.agent == "chatty").collect();
    let printed = chatty.iter().filter(|l| l.text.starts_with("line ")).count();
    // One second's worth, and what the bucket refilled while the loop ran.
    let bound = 50 + (50.0 * took.as_secs_f64()).ceil() as usize;
    assert!((50..=bound).contains(&printed), "{printed} lines, bound {bound}");
    let suppressed = 100_000 - printed as u64;
    assert_eq!(lines.iter().filter(|l| &*l.agent == "quiet").count(), 1);
    let c = h.rt.counters();
    assert_eq!(c.console_lines_suppressed, suppressed, "{c:?}");
    // Suppressed lines are not formatted: 100,000 calls stay cheap.
    assert!(took < Duration::from_secs(2), "{took:?}");
    let site = h.rt.stats().into_iter().find(|s| s.agent == "chatty" && s.site == ITEM).unwrap();
    assert_eq!(site.console_lines_suppressed, suppressed);
    // A line allowed after refusals first says how many were suppressed;
    // an agent that stays quiet gets that line from the runtime's next
    // pass a second later. Every suppressed line is in one such count.
    std::thread::sleep(Duration::from_millis(1_050));
    h.rt.poll_completions();
    let later: Vec<String> = h.lines().into_iter().map(|l| l.text).collect();
    assert_eq!(later.len(), 1, "{later:#?}");
    let reports: Vec<&str> = chatty
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| !t.starts_with("line "))
        .chain(later.iter().map(String::as_str))
        .collect();
    let mut reported = 0;
    for r in &reports {
        assert!(
            r.contains(" console line(s) suppressed over")
                && r.contains("scripting.consoleLinesPerSecond (50)"),
            "{reports:#?}"
        );
        reported += r.split(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap();
    }
    assert_eq!(reported, suppressed, "{reports:#?}");
    assert!(h.rt.counters().faults == 0, "suppression is not a fault");
}

/// Sent: a slow agent (≈ 200 µs per item) and a cheap one, with the
/// script core told it is behind. Bound: the slow one is shed (not
/// called) while the backlog stays at or above the mark; the cheap one
/// is called for every item; the slow one comes back below half the
/// mark. Counters: `shed`, per agent.
#[test]
fn a_core_behind_sheds_its_costliest_agent_and_lets_it_back() {
    let mut h = harness(|c| c.shed_above_percent = 50);
    h.load(
        "slow",
        "function onItemCaptured(d) { var t = Date.now(); while (Date.now() - t < 1) {} }",
    );
    h.load("cheap", "var n = 0; function onItemCaptured(d) { n++; }");
    // Costs are learnt from calls.
    h.items(0, 20);
    assert!(h.rt.shed_agents().is_empty());
    h.rt.backlog(0.6);
    assert_eq!(h.rt.shed_agents(), ["slow"]);
    let per = h.rt.inputs_per(Hook::ItemCaptured, Duration::from_millis(1));
    assert!(per > 64, "the cheap agent alone gets through many items per ms: {per}");
    h.items(20, 1_000);
    // Draining: no more agents shed.
    h.rt.backlog(0.55);
    assert_eq!(h.rt.shed_agents(), ["slow"]);
    h.items(1_020, 1_000);
    assert_eq!(h.calls("cheap", ITEM), 2_020);
    assert_eq!(h.calls("slow", ITEM), 20);
    let slow = h.rt.stats().into_iter().find(|s| s.agent == "slow" && s.site == ITEM).unwrap();
    assert_eq!(slow.shed, 2_000);
    assert_eq!(h.rt.counters().shed, 2_000);
    // Still growing at the mark: the next costliest goes too.
    h.rt.backlog(0.7);
    assert_eq!(h.rt.shed_agents().len(), 2);
    h.rt.backlog(0.2);
    h.rt.backlog(0.1);
    assert!(h.rt.shed_agents().is_empty(), "below half the mark everyone is back");
    h.items(2_020, 5);
    assert_eq!(h.calls("slow", ITEM), 25);
    // Off: nothing is ever shed.
    let mut off = harness(|c| c.shed_above_percent = 0);
    off.load("slow", "function onItemCaptured(d) {}");
    off.rt.backlog(1.0);
    assert!(off.rt.shed_agents().is_empty());
}

/// Sent: 20,000 `vendor.webhook` calls whose results are ignored, then
/// their answers. Bound: nothing JS is kept for them — the heap after
/// the answers is where it was, and no Promise job ran. A result kept
/// and used only after its answer came is the plain value (or its error).
#[test]
fn ignored_results_build_nothing_and_kept_ones_work_after_their_answer() {
    let mut h = harness(|c| {
        c.max_pending_effects = 100_000;
        c.effect_queue = 100_000;
    });
    h.load(
        "fire",
        r#"
        var kept = [], seen = 0;
        function onItemCaptured(d) {
          vendor.webhook("POST", "http://127.0.0.1:9/x", "body");
          if (seen < 2) kept.push(file.read(seen === 0 ? "there.txt" : "missing.txt"));
          seen++;
        }
        function onHubAction() {
          try { console.log("kept", kept[0] + "", kept[0] instanceof Promise, Object.keys(kept[0]).length); }
          catch (e) { console.log("threw", e.message); }
          try { console.log("kept", kept[1] + ""); } catch (e) { console.log("threw", e.message.indexOf("missing.txt") >= 0); }
          kept[0].then(function (v) { console.log("then", v); });
        }"#,
    );
    std::fs::create_dir_all(h.rt.agent_dir("fire")).unwrap();
    std::fs::write(h.rt.agent_dir("fire").join("there.txt"), "content").unwrap();
    h.items(0, 10);
    h.rt.collect_garbage();
    let before = h.rt.memory_used_bytes();
    h.items(10, 20_000);
    assert_eq!(h.rt.pending_effects(), 20_012);
    // The local executor answers every webhook (with a made-up 200) and
    // the two reads; the failed read is reported once, as an unhandled
    // rejection of a Promise would be, the answers to dropped results
    // build nothing.
    for _ in 0..50 {
        h.exec.run_pending();
        h.rt.poll_completions();
        if h.rt.pending_effects() == 0 {
            break;
        }
    }
    assert_eq!(h.rt.pending_effects(), 0);
    h.rt.collect_garbage();
    let after = h.rt.memory_used_bytes();
    assert!(after < before + (256 << 10), "heap {before} → {after} B");
    let c = h.rt.counters();
    assert_eq!(c.completions, 20_012);
    assert_eq!(c.unhandled_rejections, 1, "the missing file: {c:?}");
    h.lines();
    h.rt.on_hub_action("x", &serde_json::Value::Null);
    h.rt.poll_completions();
    let texts: Vec<String> = h.lines().into_iter().map(|l| l.text).collect();
    assert_eq!(texts, ["kept content true 7", "threw true", "then content"], "{texts:#?}");
    assert_eq!(h.rt.counters().unhandled_rejections, 1, "a used failure is not reported again");
}
