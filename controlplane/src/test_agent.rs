//! `skua test-agent`: runs agents over a capture on one thread with the
//! capture's clock, so a job scheduled every minute fires once per minute
//! (and a `setTimeout` after its delay) of capture time however fast the
//! file is read. By default I/O helpers do not reach the network: a local
//! executor answers them (files under a scratch data directory,
//! `hub.action` into the same runtime) and prints each call. What an agent
//! would do in production, shown offline and repeatable. With `--live` the
//! control plane's executor delivers them for real (`integrations.*`), as
//! `skua run` would, still on the capture's clock.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use dataplane::dissect::to_packet;
use dataplane::source::file::{FileSource, Input, Pace};
use dataplane::source::{PacketSource, Poll};
use dataplane::Frame;
use reassembly::{Item, NodeInfo, Reassembler};
use scripting::{AgentRuntime, Clock, ConsoleSink, EffectSink, LocalExecutor};

use crate::agents;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct TestAgentArgs {
    /// Agent files (`.js`) or folders of them.
    #[arg(required = true)]
    pub agents: Vec<PathBuf>,

    /// The capture to replay (default: the bundled demo capture).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Do not print the I/O helper calls the agents made.
    #[arg(long)]
    pub no_effects: bool,

    /// Deliver the I/O helper calls for real through the control plane's
    /// integrations (webhooks, Kinesis, InfluxDB, Slack, files under
    /// `scripting.dataDir`) instead of answering them offline.
    #[arg(long)]
    pub live: bool,
}

fn to_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

pub fn run(cfg: &Config, args: &TestAgentArgs) -> Result<ExitCode> {
    let mut list = Vec::new();
    for p in &args.agents {
        if p.is_dir() {
            list.extend(agents::load_dir(p)?);
        } else {
            let src =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "agent".into());
            list.push((name, src));
        }
    }
    let scratch = tempfile::Builder::new().prefix("skua-test-agent-").tempdir()?;
    let mut scfg = cfg.scripting.clone();
    if !args.live {
        scfg.data_dir = scratch.path().to_path_buf();
    }
    let node = NodeInfo { ip: String::new(), name: "test-agent".into() };
    let (console, console_rx) = ConsoleSink::new(scfg.console_queue as usize);
    let (effects, effects_rx) = EffectSink::new(scfg.effect_queue as usize);
    let opts = agents::runtime_options(0, &node, &scfg, &console, &effects, Clock::Manual);
    let mut rt = AgentRuntime::new(opts)?;
    crate::logging::forward_logs_to(rt.mailbox());
    // On another thread: a script that uses a helper's result as a value
    // waits for it, so the answer must come from elsewhere.
    // `--live`: pcap.path and pcap.snapshot write the capture's packets, as
    // in `skua run` (one core's retention).
    let retention = {
        let r = cfg.dataplane.retention(cfg.reassembly.fragment_timeout_ms);
        (args.live && r.is_on()).then(|| dataplane::retention::Retention::new(r, 1))
    };
    if let Some(r) = &retention {
        if list.iter().any(|(_, src)| src.contains("pcap.")) {
            r.activate();
        }
    }
    let mut keep = retention.as_ref().and_then(|r| r.writer(0));
    let (live, executed) = if args.live {
        let ctx = crate::executor::ExecutorContext {
            cpus: Vec::new(),
            data_dir: scfg.data_dir.clone(),
            node_name: node.name.clone(),
            node_ip: crate::cli::node_ip(),
        };
        let ex = crate::executor::Executor::start(cfg.integrations.clone(), ctx, Some(effects_rx))?;
        ex.handle().hub().register(rt.mailbox());
        if let Some(r) = &retention {
            ex.handle().attach_retention(r.clone());
        }
        (Some(ex), crossbeam_channel::never())
    } else {
        let (_thread, executed) = LocalExecutor::new(effects_rx, scratch.path())
            .with_hub(rt.mailbox())
            .spawn_streaming()?;
        (None, executed)
    };
    let mut failed = false;
    for (name, src) in &list {
        match rt.load_agent(name, src) {
            Ok(warnings) => {
                for w in warnings {
                    tracing::warn!("agent {name}: warning: {w}");
                }
            }
            Err(e) => {
                tracing::warn!("agent {name}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("an agent did not load");
    }

    let input = match &args.pcap {
        Some(p) => Input::Path(p.clone()),
        None => Input::Bytes {
            name: "bundled demo capture".into(),
            bytes: dataplane::synth::demo_capture().into(),
        },
    };
    let mut source = FileSource::open(input, Pace::Fast, 1)?;
    let mut reassembler = Reassembler::new(&cfg.reassembly, 0);
    let mut items: Vec<Item> = Vec::new();
    let mut next_advance = 0u64;
    let mut last_ts = 0u64;
    let mut first_ts = None;
    let mut packets = 0u64;
    let mut malformed = 0u64;

    // One step of the agent loop: jobs due by `ts`, hooks, helpers' answers,
    // console lines and the calls made.
    // (The executor answers every request, so `pending_effects` reaches 0;
    // the bound only guards against a bug.)
    let settle = |rt: &mut AgentRuntime| {
        let t0 = std::time::Instant::now();
        loop {
            let polled = rt.poll_completions();
            if rt.pending_effects() == 0 {
                if polled == 0 {
                    break;
                }
            } else if t0.elapsed() > Duration::from_secs(30) {
                tracing::warn!("{} helper calls still unanswered", rt.pending_effects());
                break;
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        for line in console_rx.try_iter() {
            println!("{line}");
        }
        for e in executed.try_iter() {
            if args.no_effects {
                continue;
            }
            let outcome = match &e.result {
                Ok(v) => format!("→ {v}"),
                Err(err) => format!("→ rejected: {err}"),
            };
            println!("[effect {}] {}({}) {}", e.agent, e.helper, e.args, outcome);
        }
    };

    loop {
        let mut frames: Vec<(u64, dataplane::wire::LinkType, Vec<u8>, u32)> = Vec::new();
        let p = source.poll(&mut |f: Frame<'_>| {
            frames.push((f.ts_ns, f.link, f.data.to_vec(), f.wire_len))
        })?;
        for (ts, link, data, wire_len) in frames {
            // Jobs fire at their times on the capture's clock, before the
            // packets that come after them.
            while let Some(due) = rt.next_job_due().filter(|d| *d <= to_time(ts)) {
                rt.run_due_jobs(due);
                settle(&mut rt);
            }
            rt.set_time(to_time(ts));
            packets += 1;
            last_ts = ts;
            first_ts.get_or_insert(ts);
            let frame = Frame { data: &data, wire_len, ts_ns: ts, link };
            let Ok(meta) = dataplane::parse(link, &data, wire_len) else {
                malformed += 1;
                continue;
            };
            if rt.wants_packets() {
                rt.on_packets_captured(std::iter::once(agents::packet_info(&frame, &meta, 0)));
            }
            reassembler.packet(&to_packet(&frame, &meta), &mut |i| items.push(i));
            if let Some(w) = keep.as_mut().filter(|w| w.wanted()) {
                let tag = dataplane::retention::fragment_tag(&meta);
                w.push(ts, reassembler.last_stream(), tag, link, &data, wire_len);
            }
            if ts >= next_advance {
                reassembler.advance(ts, &mut |i| items.push(i));
                next_advance = ts + dataplane::dissect::ADVANCE_EVERY_NS;
            }
            if !items.is_empty() {
                rt.on_items_captured(items.drain(..));
            }
            settle(&mut rt);
        }
        if p == Poll::End {
            break;
        }
    }
    reassembler.finish(&mut |i| items.push(i));
    rt.on_items_captured(items.drain(..));
    // Jobs due within the last second of the capture still run, as a live
    // run would have fired them before stopping.
    while let Some(due) = rt.next_job_due().filter(|d| *d <= to_time(last_ts)) {
        rt.run_due_jobs(due);
    }
    settle(&mut rt);
    let c = rt.counters();
    let stats = rt.stats();
    let quarantined: Vec<String> = rt
        .agents()
        .into_iter()
        .filter_map(|a| a.quarantined.map(|why| format!("{}: {why}", a.name)))
        .collect();
    // The runtime holds the effect sink: dropped first, so the executor
    // drains what is left and stops.
    drop(rt);
    if let Some(ex) = live {
        let drain = ex.shutdown();
        if drain.abandoned > 0 {
            tracing::warn!("{} deliveries abandoned at exit", drain.abandoned);
        }
    }
    tracing::info!(
        "{packets} packets ({malformed} not decoded), {} items, {} hook calls, {} faults, {} interrupts; capture time {:.1} s",
        c.items,
        c.hook_calls,
        c.faults,
        c.interrupts,
        last_ts.saturating_sub(first_ts.unwrap_or(last_ts)) as f64 / 1e9
    );
    print!("{}", agents::table(&stats));
    for q in &quarantined {
        tracing::warn!("quarantined {q}");
    }
    Ok(if quarantined.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
