//! `skua gen`: writes a seeded, deterministic capture of generated traffic
//! (HTTP/1.1 keep-alive connections with realistic sizes, DNS lookups,
//! optional loss and reordering) for tests, benchmarks and demos, and
//! prints what it holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use dataplane::synth::traffic::{SizeMix, Traffic, TrafficSpec};

#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// The capture to write (`.pcapng` for pcapng, anything else pcap).
    #[arg(short, long)]
    pub output: PathBuf,

    /// Seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// HTTP exchanges (request/response pairs) in total.
    #[arg(long, default_value_t = 10_000)]
    pub exchanges: u32,

    /// Connections open at once, interleaved packet by packet.
    #[arg(long, default_value_t = 256)]
    pub flows: u32,

    /// Most exchanges per keep-alive connection (each draws 1..=this).
    #[arg(long, default_value_t = 8)]
    pub keepalive: u32,

    /// DNS lookups per 1000 HTTP exchanges.
    #[arg(long, default_value_t = 50)]
    pub dns_per_mille: u32,

    /// Response sizes: api (50 B–4 KiB), mixed (API calls to 8 MiB
    /// downloads), downloads (1–8 MiB).
    #[arg(long, default_value = "mixed")]
    pub mix: SizeMix,

    /// Probability that a TCP data segment is lost (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,

    /// Probability that a TCP data segment swaps with the next (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,

    /// Link speed the timestamps are spaced for (Gbit/s).
    #[arg(long, default_value_t = 10.0)]
    pub gbps: f64,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &GenArgs) -> Result<ExitCode> {
    for (name, p) in [("--loss", args.loss), ("--reorder", args.reorder)] {
        if !(0.0..=1.0).contains(&p) {
            bail!("{name} is a probability between 0 and 1, not {p}");
        }
    }
    if args.gbps.is_nan() || args.gbps <= 0.0 {
        bail!("--gbps must be positive");
    }
    let spec = TrafficSpec {
        seed: args.seed,
        exchanges: args.exchanges,
        concurrent: args.flows.max(1),
        keepalive_max: args.keepalive.max(1),
        dns_per_mille: args.dns_per_mille,
        loss: args.loss,
        reorder: args.reorder,
        mix: args.mix,
        link_gbps: args.gbps,
        ..TrafficSpec::default()
    };
    let pcapng = args.output.extension().is_some_and(|e| e.eq_ignore_ascii_case("pcapng"));
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let s = Traffic::write(spec, std::io::BufWriter::with_capacity(1 << 20, file), pcapng)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let secs = s.last_ns.saturating_sub(s.first_ns) as f64 / 1e9;
    if args.json {
        let v = serde_json::json!({
            "file": args.output,
            "packets": s.packets,
            "bytes": s.bytes,
            "seconds": secs,
            "connections": s.connections,
            "httpExchanges": s.http_exchanges,
            "dnsExchanges": s.dns_exchanges,
            "requestsPerHost": s.requests_per_host,
            "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            "lostSegments": s.lost_segments,
            "reorderedSegments": s.reordered_segments,
        });
        println!("{v}");
    } else {
        println!(
            "{}: {} packets, {} bytes over {:.3} s; {} connections, {} HTTP exchanges, {} DNS lookups; {} segments lost, {} reordered",
            args.output.display(),
            s.packets,
            s.bytes,
            secs,
            s.connections,
            s.http_exchanges,
            s.dns_exchanges,
            s.lost_segments,
            s.reordered_segments
        );
    }
    Ok(ExitCode::SUCCESS)
}
