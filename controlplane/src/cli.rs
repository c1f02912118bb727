//! The `skua` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use dataplane::config::PaceMode;
use dataplane::dissect::{CountingSink, Dissector};
use dataplane::engine::{self, EngineConfig, PacketHandler, Sources};
use dataplane::source::afpacket::AfPacketSource;
use dataplane::source::file::{FileSource, Input, Pace};

use crate::config::Config;
use crate::summary;

#[derive(Parser, Debug)]
#[command(
    name = "skua",
    version,
    about = "A DPDK packet-capture appliance that runs JavaScript network agents",
    long_about = None,
    arg_required_else_help = true
)]
pub struct Cli {
    /// YAML configuration file (see docs/config.md).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override one configuration key, Helm style; repeatable
    /// (e.g. --set dataplane.cores=2).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub sets: Vec<String>,

    /// skua's log on stderr: text, or one JSON object a line. The level
    /// and per-module filter come from SKUA_LOG (or RUST_LOG), e.g.
    /// SKUA_LOG=debug or SKUA_LOG=warn,controlplane::hub=debug.
    #[arg(long, global = true, value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Capture and process traffic. With no source, replays the bundled
    /// demo capture.
    Run(RunArgs),
    /// A capture node: `run` on a live source (`--dpdk`, `--iface`) with the
    /// agents of `scripting.source`, as the DaemonSet and the systemd unit
    /// start it. (The link to a hub comes with `skua hub`.)
    Worker(RunArgs),
    /// Print the items (request/response pairs) found in a capture file,
    /// ordered by request time. The same pipeline as `run`.
    Dissect(DissectArgs),
    /// Run agents over a capture on the capture's clock, offline: console
    /// lines, the I/O helper calls they made, and a table per hook.
    TestAgent(crate::test_agent::TestAgentArgs),
    /// Push the agents of a folder (scripting.source) to a hub, then keep
    /// the hub in step with the folder's edits.
    Scripts(crate::scripts_cmd::ScriptsArgs),
    /// Write a capture of generated traffic (seeded, deterministic).
    Gen(crate::gen_cmd::GenArgs),
    /// Inspect, reserve and mount hugepages; size them for a configuration.
    Hugepages(crate::hugepages_cmd::HugepagesArgs),
    /// The hub: HTTP API, dashboard and script store (hub.*).
    Hub(crate::hub::HubArgs),
}

#[derive(clap::Args, Debug)]
pub struct DissectArgs {
    /// The pcap or pcapng file.
    pub file: PathBuf,

    /// One JSON object a line, in the agents' item shape.
    #[arg(long)]
    pub jsonl: bool,

    /// Only these protocols (reassembly.protocols), e.g. http,dns.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub protocol: Vec<String>,

    /// Dataplane cores (dataplane.cores).
    #[arg(long)]
    pub cores: Option<usize>,

    /// Print only the items matching this KFL query, KFL2 (`http &&
    /// status_code >= 500`) or KFL1 (`http and response.status == 500`),
    /// as tshark -Y does (docs/kfl.md).
    #[arg(long, short = 'f', value_name = "KFL")]
    pub filter: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Replay a pcap or pcapng file; exits at its end.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["iface", "dpdk"])]
    pub pcap: Option<PathBuf>,

    /// Capture live from a Linux interface through AF_PACKET (TPACKET_V3).
    #[arg(long, value_name = "NAME", conflicts_with = "dpdk")]
    pub iface: Option<String>,

    /// Capture through DPDK with these EAL arguments
    /// (e.g. '-a 0000:3b:02.0' or '--no-pci --vdev net_pcap0,rx_pcap=x.pcap').
    #[arg(long, value_name = "EAL ARGS", allow_hyphen_values = true)]
    pub dpdk: Option<String>,

    /// Dataplane cores (dataplane.cores).
    #[arg(long)]
    pub cores: Option<usize>,

    /// Play the capture N times; 0 loops until stopped (pcap.loops).
    #[arg(long = "loop", value_name = "N")]
    pub loops: Option<u64>,

    /// Replay timing (pcap.pace).
    #[arg(long, value_enum)]
    pub pace: Option<PaceArg>,

    /// Stop after this many seconds (dataplane.duration_s).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Exit summary format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,

    /// No live progress line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,

    /// Run the agents (`*.js`) of this folder on the captured traffic
    /// (scripting.source). Their console lines print as they come; a table
    /// per agent and hook at exit.
    #[arg(long, value_name = "DIR")]
    pub scripts: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PaceArg {
    Fast,
    Recorded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // Off before the first large allocations; `run` turns them back on when
    // the configuration asks (`dataplane.transparent_huge_pages`).
    let thp = dataplane::alloc::transparent_huge_pages(false);
    let cli = Cli::parse();
    crate::logging::init(cli.log_format);
    if let Err(e) = thp {
        tracing::warn!("transparent huge pages left as they were: {e}");
    }
    let result = match &cli.command {
        Command::Run(args) => run(&cli, args, true),
        Command::Worker(args) => {
            if args.dpdk.is_none() && args.iface.is_none() && args.pcap.is_none() {
                tracing::error!("a worker captures from --dpdk, --iface or --pcap");
                return ExitCode::FAILURE;
            }
            run(&cli, args, false)
        }
        Command::Dissect(args) => dissect(&cli, args),
        Command::Gen(args) => crate::gen_cmd::run(args),
        Command::Scripts(args) => Config::load(cli.config.as_deref(), &cli.sets)
            .map_err(Into::into)
            .and_then(|c| crate::scripts_cmd::run(&c, args)),
        Command::TestAgent(args) => Config::load(cli.config.as_deref(), &cli.sets)
            .map_err(Into::into)
            .and_then(|c| crate::test_agent::run(&c, args)),
        Command::Hugepages(args) => crate::hugepages_cmd::run(&cli, args),
        Command::Hub(args) => Config::load(cli.config.as_deref(), &cli.sets)
            .map_err(Into::into)
            .and_then(|c| crate::hub::run(c, args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Transparent huge pages for the heap on or off; a kernel that refuses
/// leaves the process as it was, which is only slower.
fn huge_pages(on: bool) {
    if let Err(e) = dataplane::alloc::transparent_huge_pages(on) {
        tracing::warn!("transparent huge pages left as they were: {e}");
    }
}

/// `skua run` (`as_run`: with the hub in the process) and `skua worker`.
fn run(cli: &Cli, args: &RunArgs, as_run: bool) -> Result<ExitCode> {
    let bundled_capture = args.pcap.is_none() && args.iface.is_none() && args.dpdk.is_none();
    // The demo: the bundled capture ten times its recorded pace, round and
    // round, until stopped; `--loop`, `--pace` or `--set pcap.*` change it.
    let mut sets: Vec<String> =
        if as_run && bundled_capture && args.loops.is_none() && args.pace.is_none() {
            ["pcap.pace=recorded", "pcap.speed=10", "pcap.loops=0"].map(String::from).to_vec()
        } else {
            Vec::new()
        };
    sets.extend(cli.sets.iter().cloned());
    if let Some(n) = args.cores {
        sets.push(format!("dataplane.cores={n}"));
    }
    if let Some(n) = args.loops {
        sets.push(format!("pcap.loops={n}"));
    }
    if let Some(p) = args.pace {
        sets.push(format!(
            "pcap.pace={}",
            match p {
                PaceArg::Fast => "fast",
                PaceArg::Recorded => "recorded",
            }
        ));
    }
    if let Some(d) = args.duration {
        sets.push(format!("dataplane.duration_s={d}"));
    }
    let mut cfg = Config::load(cli.config.as_deref(), &sets)?;
    huge_pages(cfg.dataplane.transparent_huge_pages);
    if let Some(eal) = &args.dpdk {
        cfg.dpdk.eal_args = eal.clone();
    }

    let cpus = engine::affinity();
    let pace = match cfg.pcap.pace {
        PaceMode::Fast => Pace::Fast,
        PaceMode::Recorded => Pace::Recorded { speed: cfg.pcap.speed },
    };
    let sources = if let Some(path) = &args.pcap {
        Sources::Single(Box::new(FileSource::open(
            Input::Path(path.clone()),
            pace,
            cfg.pcap.loops,
        )?))
    } else if let Some(iface) = &args.iface {
        Sources::Single(Box::new(AfPacketSource::open(iface, (&cfg.afpacket).into())?))
    } else if args.dpdk.is_some() {
        open_dpdk(&cfg, &cpus)?
    } else {
        let bytes: Arc<[u8]> = dataplane::synth::demo_capture().into();
        Sources::Single(Box::new(FileSource::open(
            Input::Bytes { name: "bundled demo capture".into(), bytes },
            pace,
            cfg.pcap.loops,
        )?))
    };
    let rcfg = cfg.reassembly.clone();
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let dir = args.scripts.clone().or_else(|| cfg.scripting.source.clone());
    // `skua run` serves the hub and its dashboard while there is something
    // to watch: the demo, a live source, an endless replay. A file played
    // through a set number of times ends too soon for it.
    let with_hub = as_run && (bundled_capture || args.pcap.is_none() || cfg.pcap.loops == 0);
    if dir.is_some() || !cfg.link.hub.is_empty() || with_hub {
        let plan = AgentRun {
            dir: dir.as_deref(),
            cpus,
            sources,
            progress,
            with_hub,
            demo_agents: as_run && bundled_capture,
        };
        return run_with_agents(&cfg, args, plan);
    }
    let report = capture(
        &cfg,
        cpus,
        sources,
        move |core| Dissector::new(&rcfg, core as u16, CountingSink),
        progress,
        |_| {},
    )?;
    match args.summary {
        SummaryFormat::Json => println!("{}", summary::to_json(&report)),
        SummaryFormat::Text => print!("{}", summary::to_text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the dataplane over `sources` until they end or a signal stops it,
/// with a progress line on stderr when asked.
fn capture<H, F>(
    cfg: &Config,
    cpus: Vec<usize>,
    sources: Sources,
    make: F,
    progress: bool,
    on_start: impl FnOnce(&engine::Monitor),
) -> Result<engine::RunReport>
where
    H: PacketHandler + 'static,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let ecfg = EngineConfig {
        cores: cfg.dataplane.cores,
        pin_cores: cfg.dataplane.pin_cores,
        cpus,
        batch_frames: cfg.dataplane.batch_frames,
        ring_batches: cfg.dataplane.ring_batches,
        idle_timeout: Duration::from_millis(cfg.dataplane.idle_timeout_ms),
        duration: Duration::from_secs_f64(cfg.dataplane.duration_s),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let running = engine::start(sources, &ecfg, make, stop)?;
    on_start(running.monitor());
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut printed = false;
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        if progress && last.0.elapsed() >= Duration::from_millis(500) {
            let (p, b) = running.monitor().received();
            let dt = last.0.elapsed().as_secs_f64();
            eprint!(
                "\r\x1b[2K{:>12} pkts {:>10.1} MB {:>9.3} Mpps {:>8.3} Gbps  drops {}",
                p,
                b as f64 / 1e6,
                (p - last.1) as f64 / dt / 1e6,
                (b - last.2) as f64 * 8.0 / dt / 1e9,
                running.monitor().dropped()
            );
            last = (Instant::now(), p, b);
            printed = true;
        }
    }
    if printed {
        eprint!("\r\x1b[2K");
    }
    Ok(running.wait()?)
}

/// A query that does not compile: the error, the query and a caret under
/// the position, on stderr; exit status 2 (a usage error).
fn filter_error(query: &str, e: &reassembly::kfl::KflError) -> ExitCode {
    let line = query.lines().nth(e.line.saturating_sub(1)).unwrap_or_default();
    eprintln!("skua: {e}\n  {line}\n  {:>width$}", "^", width = e.column);
    ExitCode::from(2)
}

fn dissect(cli: &Cli, args: &DissectArgs) -> Result<ExitCode> {
    let filter = match args.filter.as_deref().map(reassembly::kfl::Filter::compile) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return Ok(filter_error(args.filter.as_deref().unwrap_or_default(), &e)),
    };
    let mut sets = cli.sets.clone();
    if let Some(n) = args.cores {
        sets.push(format!("dataplane.cores={n}"));
    }
    if !args.protocol.is_empty() {
        sets.push(format!("reassembly.protocols=[{}]", args.protocol.join(",")));
    }
    let cfg = Config::load(cli.config.as_deref(), &sets)?;
    huge_pages(cfg.dataplane.transparent_huge_pages);
    let source = FileSource::open(Input::Path(args.file.clone()), Pace::Fast, 1)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<reassembly::Item>(65_536);
    let collector = std::thread::spawn(move || rx.into_iter().collect::<Vec<_>>());
    let rcfg = cfg.reassembly.clone();
    let report = capture(
        &cfg,
        engine::affinity(),
        Sources::Single(Box::new(source)),
        move |core| Dissector::new(&rcfg, core as u16, tx.clone()),
        false,
        |_| {},
    )?;
    let mut items = collector.join().map_err(|_| anyhow::anyhow!("item collector panicked"))?;
    items.sort_by_key(|i| (i.ts_ns(), i.stream, i.index));
    let node = reassembly::NodeInfo { ip: String::new(), name: node_name() };
    let dissected = items.len();
    if let Some(f) = &filter {
        items.retain(|i| f.matches(i, &node));
        tracing::info!(
            "{} of {dissected} items match the {} filter",
            items.len(),
            f.language().name()
        );
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write;
    for item in &items {
        if args.jsonl {
            writeln!(out, "{}", item.to_json(&node))?;
        } else {
            writeln!(out, "{}", item_line(&item.to_json(&node)))?;
        }
    }
    out.flush()?;
    let (packets, _, drops) = report.total();
    let dropped: u64 = drops.iter().map(|(_, v)| v).sum();
    tracing::info!("{dissected} items from {packets} packets ({dropped} dropped)");
    Ok(ExitCode::SUCCESS)
}

/// One human line per item: time, protocol, endpoints and the gist.
fn item_line(v: &serde_json::Value) -> String {
    let proto = v["protocol"]["abbr"].as_str().unwrap_or("?");
    let ep = |e: &serde_json::Value| {
        format!("{}:{}", e["ip"].as_str().unwrap_or(""), e["port"].as_str().unwrap_or(""))
    };
    let req = &v["request"];
    let resp = &v["response"];
    let gist = match v["protocol"]["name"].as_str() {
        Some("http") => format!(
            "{} {} → {}",
            req["method"].as_str().unwrap_or("-"),
            req["url"].as_str().or(req["path"].as_str()).unwrap_or("-"),
            resp["status"].as_i64().map_or("-".to_string(), |s| s.to_string())
        ),
        Some("dns") => format!(
            "{} {} → {}",
            req["questions"][0]["type"].as_str().unwrap_or("-"),
            req["questions"][0]["name"].as_str().unwrap_or("-"),
            resp["code"]
                .as_str()
                .map(str::to_string)
                .or_else(|| resp["code"].as_i64().map(|c| c.to_string()))
                .unwrap_or("-".into())
        ),
        _ => String::new(),
    };
    let err = v["error"]["type"].as_str().map(|t| format!("  [{t}]")).unwrap_or_default();
    format!(
        "{} {:<5} {} → {}  {}  {:.3} ms{}",
        v["startTime"].as_str().unwrap_or(""),
        proto,
        ep(&v["src"]),
        ep(&v["dst"]),
        gist,
        // elapsedTime is in microseconds.
        v["elapsedTime"].as_f64().unwrap_or(0.0) / 1_000.0,
        err
    )
}

/// The node's name: `SKUA_NODE_NAME` (the chart sets it from the pod's
/// `spec.nodeName`), else the host name.
pub fn node_name() -> String {
    if let Some(n) = std::env::var("SKUA_NODE_NAME").ok().filter(|n| !n.trim().is_empty()) {
        return n.trim().to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The node's IP, for object keys (`<node>_<ip>/...`): `SKUA_NODE_IP`
/// (the chart sets it from the pod's `status.hostIP`), else the source
/// address this host would use towards a public address (no packet is
/// sent), else `127.0.0.1`.
pub fn node_ip() -> String {
    if let Some(ip) = std::env::var("SKUA_NODE_IP").ok().filter(|n| !n.trim().is_empty()) {
        return ip.trim().to_string();
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}

fn open_dpdk(cfg: &Config, cpus: &[usize]) -> Result<Sources> {
    crate::hugepages_cmd::preflight(cfg, cpus)?;
    Ok(dataplane::source::open_dpdk(&cfg.dpdk, cfg.dataplane.cores, cpus)?)
}

/// `skua run` with agents: the script pool (or inline runtimes), the
/// console printer, the control plane their helpers go to and `/metrics`;
/// at exit the summary, then a table per agent and hook, then the drain of
/// queued deliveries.
/// What `run` decided before agents come in: where they are, what is
/// captured on which CPUs, and whether this process is also the hub.
struct AgentRun<'a> {
    /// The agents' folder (`--scripts` or `scripting.source`).
    dir: Option<&'a std::path::Path>,
    cpus: Vec<usize>,
    sources: Sources,
    /// A live progress line on stderr.
    progress: bool,
    /// Serve the hub and its dashboard in this process (`skua run`).
    with_hub: bool,
    /// With no folder and no hub link, run the bundled demo agents.
    demo_agents: bool,
}

fn run_with_agents(cfg: &Config, args: &RunArgs, plan: AgentRun<'_>) -> Result<ExitCode> {
    let AgentRun { dir, cpus, sources, progress, with_hub, demo_agents } = plan;
    use crate::agents::{self, InlineResults, InlineSink, PoolSink};
    use scripting::{Clock, ConsoleSink, EffectSink, ScriptPool};
    use std::sync::Mutex;

    // An agent that does not compile is reported with its line and column
    // and left out; the others run.
    let linked = !cfg.link.hub.is_empty();
    let found = match dir {
        Some(d) => agents::load_dir(d)?,
        // `skua run` with no agents of its own runs the bundled demo agents.
        None if demo_agents && !linked => crate::hub::examples()
            .iter()
            .filter(|(n, _)| crate::hub::DEMO_AGENTS.contains(n))
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
        None => Vec::new(),
    };
    let list: Vec<(String, String)> = found
        .into_iter()
        .filter(|(name, src)| match scripting::check_agent(name, src, cfg.scripting.es5_strict) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("agent {name} rejected: {e}");
                false
            }
        })
        .collect();
    if list.is_empty() && !linked && !with_hub {
        anyhow::bail!(
            "no agent in {} loaded",
            dir.map(|d| d.display().to_string()).unwrap_or_default()
        );
    }
    let node = reassembly::NodeInfo { ip: String::new(), name: node_name() };
    let (console, console_rx) = ConsoleSink::new(cfg.scripting.console_queue as usize);
    // With a hub, its link takes console lines, hub actions and (when the
    // hub asks) items; it starts with the control plane below.
    let link_tap: Arc<Mutex<Option<crate::link::LinkTap>>> = Arc::default();
    let (effects, effects_rx) = EffectSink::new(cfg.scripting.effect_queue as usize);
    let rejected = effects.clone();

    let cores = cfg.dataplane.cores.max(1);
    let mut busy: Vec<usize> = cpus.iter().copied().take(cores).collect();
    busy.extend(cfg.scripting.script_cpus.iter().copied());
    let ctx = crate::executor::ExecutorContext {
        cpus: crate::executor::housekeeping_cpus(&engine::affinity(), &busy),
        data_dir: cfg.scripting.data_dir.clone(),
        node_name: node.name.clone(),
        node_ip: node_ip(),
    };
    let monitor: Arc<Mutex<Option<engine::Monitor>>> = Arc::default();
    let pool: Arc<Mutex<Option<ScriptPool>>> = Arc::default();
    let inline_results: Arc<Mutex<InlineResults>> = Arc::default();
    let started = Instant::now();
    let kube_snapshot: Arc<Mutex<Option<Arc<crate::kube::KubeCounters>>>> = Arc::default();
    let gather = {
        let (monitor, pool, inline_results, kube) =
            (monitor.clone(), pool.clone(), inline_results.clone(), kube_snapshot.clone());
        move || {
            let mut snap = crate::metrics::MetricsSnapshot::default();
            if let Some(m) = monitor.lock().ok().and_then(|m| m.clone()) {
                snap.cores = m
                    .cores
                    .iter()
                    .enumerate()
                    .map(|(core, c)| crate::metrics::CoreSample {
                        core,
                        counters: c.snapshot(),
                        // Published by the core every 100 ms.
                        reassembly: c.reassembly(),
                    })
                    .collect();
                snap.devices = m.devices();
            }
            if let Some(p) = pool.lock().ok().as_ref().and_then(|p| p.as_ref()) {
                snap.hooks = p.stats().unwrap_or_default();
            } else if let Ok(r) = inline_results.lock() {
                snap.hooks = r.all_stats();
            }
            snap.kubernetes = kube.lock().ok().and_then(|k| k.as_ref().map(|c| c.snapshot()));
            snap.effect_queue_rejected = Some(rejected.rejected_full());
            snap.uptime = Some(started.elapsed());
            snap
        }
    };
    let cp = match crate::control::ControlPlane::start(
        &cfg.integrations,
        ctx.clone(),
        Some(effects_rx.clone()),
        gather.clone(),
    ) {
        // `skua run` on a laptop: a second run finds the port taken; it
        // goes on without /metrics. A worker (a deployment) stops instead.
        Err(crate::control::ControlPlaneError::Metrics(e)) if with_hub => {
            tracing::warn!("no /metrics this run ({e}); integrations.metrics_listen= turns it off");
            let quiet = crate::integrations::IntegrationsConfig {
                metrics_listen: String::new(),
                ..cfg.integrations.clone()
            };
            crate::control::ControlPlane::start(&quiet, ctx, Some(effects_rx), gather.clone())?
        }
        r => r?,
    };
    // Kubernetes: this node's pods name items' endpoints and reach the
    // agents' onPodEvent (off outside a cluster unless kubernetes.enabled).
    let (pod_map, kube_counters, _pod_tasks) = match start_pod_watcher(cfg, &cp)? {
        Some(w) => (Some(w.pod_map), Some(w.counters), w.tasks),
        None => (None, None, Vec::new()),
    };
    *kube_snapshot.lock().unwrap_or_else(|e| e.into_inner()) = kube_counters;
    // Packet retention for `pcap.path` / `pcap.snapshot` (and the hub's pcap
    // download): a ring per core, made on the core's thread.
    let retention = {
        let rcfg = cfg.dataplane.retention(cfg.reassembly.fragment_timeout_ms);
        rcfg.is_on().then(|| dataplane::retention::Retention::new(rcfg, cores))
    };
    if let Some(r) = &retention {
        // Packets are kept only once something will ask for them.
        if list.iter().any(|(_, src)| src.contains("pcap.")) {
            r.activate();
        }
        cp.handle().attach_retention(r.clone());
    }

    // `skua run` is hub and worker in one process: the dashboard, the
    // hub-side runtime, and a link to it without HTTP.
    let local_hub = if with_hub && !linked && !cfg.hub.listen.is_empty() {
        start_local_hub(
            cfg,
            &list,
            cp.tokio().context("the control plane has no runtime for the hub")?,
        )
    } else {
        None
    };
    let link = if linked || local_hub.is_some() {
        let rt = cp.tokio().context("the control plane has no runtime for the hub link")?;
        let report = worker_report(
            &cfg.link,
            &node.name,
            gather.clone(),
            inline_results.clone(),
            pool.clone(),
        );
        let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
        let l = match &local_hub {
            Some(h) => crate::link::Link::start_local(
                &cfg.link,
                &node.name,
                h.server.handle(),
                cp.handle(),
                rt,
                report.clone(),
                &names,
            ),
            None => crate::link::Link::start(
                &cfg.link,
                &node.name,
                cp.handle(),
                rt,
                report.clone(),
                &names,
            )?,
        };
        let (tap, from) = (l.tap.clone(), node.name.clone());
        cp.handle().hub().forward_to(Box::new(move |action, object| {
            Ok(usize::from(tap.hub_action(action, object, &from)))
        }));
        *link_tap.lock().unwrap_or_else(|e| e.into_inner()) = Some(l.tap.clone());
        Some((l, report))
    } else {
        None
    };
    let tap = link_tap.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let printer = agents::spawn_console_printer(console_rx, tap.clone());
    let hub_tap = tap.map(|tap| agents::HubTap { tap, node: node.clone() });
    if let Some(addr) = cp.metrics_addr() {
        tracing::info!("/metrics on http://{addr}/metrics");
    }

    // Edits of the folder reach the runtimes while capture goes on.
    let stop_watch = Arc::new(AtomicBool::new(false));
    // (A linked worker takes its agents from the hub, not the folder.)
    let watcher = if let (true, Some(dir), false) = (cfg.scripting.watch_ms > 0, dir, linked) {
        let dir = crate::watch::AgentDir::with_known(dir, &list);
        let every = Duration::from_millis(cfg.scripting.watch_ms);
        let target = match &local_hub {
            Some(h) => agents::WatchTarget::Hub(h.server.handle()),
            None => agents::WatchTarget::Runtimes(cp.handle()),
        };
        Some(
            agents::spawn_watcher(dir, every, cfg.scripting.es5_strict, target, stop_watch.clone())
                .context("starting the agent folder watcher")?,
        )
    } else {
        None
    };

    // A linked worker holds capture until the hub's agents are in every
    // runtime (a runtime registering later is sent them by the router),
    // or `link.agents_wait_ms` passed.
    let hold = |link: &Option<(crate::link::Link, crate::link::Report)>| {
        let (Some((l, _)), true) = (link, linked) else { return };
        let wait = Duration::from_millis(cfg.link.agents_wait_ms);
        if wait.is_zero() {
            return;
        }
        if l.wait_ready(wait) {
            tracing::info!("agents from hub {} received; capture starts", cfg.link.hub);
        } else {
            tracing::warn!(
                "no agents from hub {} within {} ms (link.agents_wait_ms); capture starts \
                 without them, they load when the hub answers",
                cfg.link.hub,
                cfg.link.agents_wait_ms
            );
        }
    };
    let rcfg = cfg.reassembly.clone();
    let report = if cfg.scripting.script_cores == 0 {
        hold(&link);
        let (scfg, list, node, console, effects, results, hub, hub_tap, pods, retention) = (
            cfg.scripting.clone(),
            Arc::new(list.clone()),
            node.clone(),
            console.clone(),
            effects.clone(),
            inline_results.clone(),
            cp.handle(),
            hub_tap.clone(),
            pod_map.clone(),
            retention.clone(),
        );
        capture(
            cfg,
            cpus,
            sources,
            move |core| {
                let opts = agents::runtime_options(
                    core as u32,
                    &node,
                    &scfg,
                    &console,
                    &effects,
                    Clock::System,
                );
                let mut sink = match InlineSink::new(
                    opts,
                    &list,
                    core as u16,
                    results.clone(),
                    hub_tap.clone(),
                ) {
                    Ok(s) => s,
                    // Only the runtime's own set-up can fail here (agents were checked).
                    Err(e) => panic!("agent runtime on core {core}: {e:#}"),
                };
                hub.hub().register(sink.mailbox());
                // The hub's agents, replayed by the router, run from the
                // core's first packet.
                sink.apply_events();
                crate::logging::forward_logs_to(sink.mailbox());
                with_pods(Dissector::new(&rcfg, core as u16, sink), &pods)
                    .with_retention(retention.as_ref().and_then(|r| r.writer(core)))
            },
            progress,
            |m| *monitor.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone()),
        )?
    } else {
        let opts = scripting::PoolOptions {
            node: node.clone(),
            config: cfg.scripting.clone(),
            producers: cores,
            console: console.clone(),
            effects: effects.clone(),
            first_runtime_id: 0,
        };
        let (p, producers) = ScriptPool::start(opts)?;
        for (name, src) in &list {
            p.load_agent(name, src).with_context(|| format!("loading agent {name}"))?;
        }
        for mb in p.mailboxes() {
            crate::logging::forward_logs_to(mb.clone());
            cp.handle().hub().register(mb);
        }
        hold(&link);
        p.sync().context("script cores applying the hub's agents")?;
        *pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        let producers: Arc<Mutex<Vec<Option<scripting::Producer>>>> =
            Arc::new(Mutex::new(producers.into_iter().map(Some).collect()));
        let (hub_tap, pods, retention) = (hub_tap.clone(), pod_map.clone(), retention.clone());
        capture(
            cfg,
            cpus,
            sources,
            move |core| {
                let producer = producers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(core)
                    .and_then(Option::take);
                let producer =
                    producer.unwrap_or_else(|| panic!("no script producer for core {core}"));
                with_pods(
                    Dissector::new(
                        &rcfg,
                        core as u16,
                        PoolSink::new(producer, core as u16, hub_tap.clone()),
                    ),
                    &pods,
                )
                .with_retention(retention.as_ref().and_then(|r| r.writer(core)))
            },
            progress,
            |m| *monitor.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone()),
        )?
    };
    stop_watch.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(w) = watcher {
        let _ = w.join();
    }
    // Agents finish what the capture gave them, then their deliveries drain.
    let (stats, ring_drops) = match pool.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(p) => {
            let r = p.shutdown();
            let drops: u64 = r
                .producers
                .iter()
                .map(|c| c.items_dropped_ring_full + c.packets_dropped_ring_full)
                .sum();
            (r.stats(), drops)
        }
        None => {
            (std::mem::take(&mut inline_results.lock().unwrap_or_else(|e| e.into_inner()).stats), 0)
        }
    };
    drop(console);
    drop(effects);
    let _ = printer.join();
    if let Some((l, report)) = link {
        l.shutdown(report, Duration::from_secs(2));
    }
    drop(local_hub);
    let drain = cp.shutdown();
    // Packets kept for pcap.* and what their budgets evicted (when an agent
    // used them).
    let kept = retention.as_ref().filter(|r| r.is_active()).map(|r| {
        let cores = r.stats();
        let sum =
            |f: fn(&dataplane::retention::RetentionStats) -> u64| cores.iter().map(f).sum::<u64>();
        let misses: u64 = r.misses().iter().map(|(_, n)| n).sum();
        (sum(|c| c.packets), sum(|c| c.evicted_bytes), sum(|c| c.evicted_age), misses)
    });
    match args.summary {
        SummaryFormat::Json => {
            let mut v = summary::to_json(&report);
            if let Some((packets, bytes, age, misses)) = kept {
                v["retention"] = serde_json::json!({
                    "packets": packets, "evictedBytes": bytes, "evictedAge": age, "streamMisses": misses,
                });
            }
            v["agents"] = serde_json::to_value(
                stats
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "agent": s.agent, "runtime": s.runtime.0, "hook": s.site_name(), "calls": s.calls,
                            "errors": s.errors, "interrupts": s.interrupts, "outOfMemory": s.out_of_memory,
                            "p50Ns": s.p50_ns, "p99Ns": s.p99_ns, "p999Ns": s.p999_ns,
                            "shed": s.shed, "limitsHit": s.limits_hit,
                            "consoleLinesSuppressed": s.console_lines_suppressed,
                        })
                    })
                    .collect::<Vec<_>>(),
            )?;
            v["scriptRingDrops"] = ring_drops.into();
            v["deliveriesAbandoned"] = drain.abandoned.into();
            println!("{v}");
        }
        SummaryFormat::Text => {
            print!("{}", summary::to_text(&report));
            print!("{}", agents::table(&stats));
            if ring_drops > 0 {
                println!("script rings full: {ring_drops} items/packets dropped");
            }
            if drain.abandoned > 0 {
                println!("deliveries abandoned at exit (drain timeout): {}", drain.abandoned);
            }
            if let Some((packets, bytes, age, misses)) = kept {
                println!(
                    "retention: {packets} packets kept, evicted {bytes} for room and {age} for age; {misses} pcap.* streams not retained"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The worker's report to its hub: counters, hook stats and jobs, as the
/// hub's workers view shows them.
fn worker_report(
    link: &crate::link::LinkConfig,
    node_name: &str,
    gather: impl Fn() -> crate::metrics::MetricsSnapshot + Send + Sync + 'static,
    inline: Arc<std::sync::Mutex<crate::agents::InlineResults>>,
    pool: Arc<std::sync::Mutex<Option<scripting::ScriptPool>>>,
) -> crate::link::Report {
    use crate::hub::{HookView, JobView, WorkerReport};
    let name = if link.name.is_empty() { node_name.to_string() } else { link.name.clone() };
    Arc::new(move || {
        let snap = gather();
        let (mut packets, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for c in &snap.cores {
            packets += c.counters.packets;
            bytes += c.counters.bytes;
            dropped += c.counters.dropped();
        }
        let jobs: Vec<JobView> = match pool.lock().ok().as_ref().and_then(|p| p.as_ref()) {
            Some(p) => p
                .jobs()
                .unwrap_or_default()
                .iter()
                .flat_map(|(_, j)| j.iter().map(JobView::from))
                .collect(),
            None => inline
                .lock()
                .map(|r| r.live.values().flat_map(|(_, j)| j).map(JobView::from).collect())
                .unwrap_or_default(),
        };
        let report = WorkerReport {
            name: name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            stats: serde_json::json!({
                "packets": packets, "bytes": bytes, "dropped": dropped, "cores": snap.cores.len(),
                "uptimeSeconds": snap.uptime.map(|u| u.as_secs_f64()).unwrap_or(0.0),
            }),
            hooks: snap.hooks.iter().map(HookView::from).collect(),
            jobs,
        };
        serde_json::to_value(report).unwrap_or_default()
    })
}

/// The hub inside `skua run`: a store of this run's own (a temporary
/// directory seeded with the agents it runs; `skua hub` keeps a lasting
/// one), the API and dashboard on `hub.listen`, and the hub-side runtime.
struct LocalHub {
    runtime: Option<crate::hub::runtime::HubRuntime>,
    server: crate::hub::HubServer,
    _store: tempfile::TempDir,
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        if let Some(r) = self.runtime.take() {
            r.shutdown();
        }
    }
}

/// Starts the local hub; a dashboard that cannot start (its port is taken)
/// is reported and the capture goes on without it.
fn start_local_hub(
    cfg: &Config,
    agents: &[(String, String)],
    rt: &tokio::runtime::Handle,
) -> Option<LocalHub> {
    let started = (|| -> Result<LocalHub> {
        let dir = tempfile::Builder::new()
            .prefix("skua-run-hub")
            .tempdir()
            .context("creating the run's script store")?;
        let store = Arc::new(crate::hub::DirStore::open(dir.path())?);
        let server = crate::hub::HubServer::start(&cfg.hub, cfg.scripting.es5_strict, store, rt)?;
        for (name, source) in agents {
            server
                .handle()
                .save_agent(name, source, Some(true))
                .with_context(|| format!("storing agent {name}"))?;
        }
        for (k, v) in &cfg.scripting.env {
            server.handle().set_env(k, Some(v)).with_context(|| format!("storing env {k}"))?;
        }
        let runtime = if cfg.hub.run_agents {
            Some(crate::hub::runtime::HubRuntime::start(
                server.handle(),
                &cfg.scripting,
                &cfg.integrations,
            )?)
        } else {
            None
        };
        Ok(LocalHub { runtime, server, _store: dir })
    })();
    match started {
        Ok(h) => {
            match h.server.generated_token() {
                Some(t) => {
                    tracing::info!("dashboard on http://{}/#token={t}", h.server.local_addr())
                }
                None => tracing::info!("dashboard on http://{}/", h.server.local_addr()),
            }
            Some(h)
        }
        Err(e) => {
            tracing::warn!("no dashboard this run ({e:#}); capture and agents go on (hub.listen= turns it off)");
            None
        }
    }
}

fn with_pods<S: dataplane::dissect::ItemSink>(
    d: Dissector<S>,
    pods: &Option<reassembly::PodMap>,
) -> Dissector<S> {
    match pods {
        Some(p) => d.with_pod_map(p.clone()),
        None => d,
    }
}

/// Starts the node-scoped pod watcher when Kubernetes is on: its IP → pod
/// map, its counters, and the tasks that watch and hand pod events to
/// every local runtime (a full inbox drops and counts, as for hub actions).
fn start_pod_watcher(
    cfg: &Config,
    cp: &crate::control::ControlPlane,
) -> Result<Option<crate::kube::Watching>> {
    if !cfg.kubernetes.is_enabled() {
        return Ok(None);
    }
    let rt = cp.tokio().context("the control plane has no runtime for the pod watcher")?;
    let executor = cp.handle();
    let deliver = move |e: scripting::RuntimeEvent| {
        executor.hub().broadcast(&e);
    };
    let w = crate::kube::start_watching(
        &cfg.kubernetes,
        crate::config::KubernetesScope::Node,
        rt,
        deliver,
    )?;
    if let Some(w) = &w {
        cp.handle().attach_name_history(w.names.clone());
    }
    Ok(w)
}
