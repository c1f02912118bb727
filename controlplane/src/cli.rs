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
use dataplane::engine::{self, EngineConfig, FlowCounter, Sources};
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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Capture and process traffic. With no source, replays the bundled
    /// demo capture.
    Run(RunArgs),
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
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run(&cli, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skua: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, args: &RunArgs) -> Result<ExitCode> {
    let mut sets = cli.sets.clone();
    if let Some(n) = args.cores {
        sets.push(format!("dataplane.cores={n}"));
    }
    if let Some(n) = args.loops {
        sets.push(format!("pcap.loops={n}"));
    }
    if let Some(p) = args.pace {
        sets.push(format!("pcap.pace={}", match p { PaceArg::Fast => "fast", PaceArg::Recorded => "recorded" }));
    }
    if let Some(d) = args.duration {
        sets.push(format!("dataplane.duration_s={d}"));
    }
    let mut cfg = Config::load(cli.config.as_deref(), &sets)?;
    if let Some(eal) = &args.dpdk {
        cfg.dpdk.eal_args = eal.clone();
    }

    let cpus = engine::affinity();
    let pace = match cfg.pcap.pace {
        PaceMode::Fast => Pace::Fast,
        PaceMode::Recorded => Pace::Recorded { speed: cfg.pcap.speed },
    };
    let sources = if let Some(path) = &args.pcap {
        Sources::Single(Box::new(FileSource::open(Input::Path(path.clone()), pace, cfg.pcap.loops)?))
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
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone()).context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }

    let capacity = cfg.dataplane.flow_table_capacity;
    let running = engine::start(sources, &ecfg, |_| FlowCounter::new(capacity), stop)?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut printed = false;
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
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
    let report = running.wait()?;
    match args.summary {
        SummaryFormat::Json => println!("{}", summary::to_json(&report)),
        SummaryFormat::Text => print!("{}", summary::to_text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

fn open_dpdk(cfg: &Config, cpus: &[usize]) -> Result<Sources> {
    Ok(dataplane::source::open_dpdk(&cfg.dpdk, cfg.dataplane.cores, cpus)?)
}
