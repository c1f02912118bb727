//! `skua hugepages status | reserve | mount | plan`, and the hugepage
//! preflight of the DPDK start path. The work is the `hugepages` crate's;
//! this module turns skua's configuration into its [`PlanInput`] and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use hugepages::{human_bytes, PageSize, Plan, PlanInput, PreflightError, System};

use crate::cli::Cli;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct HugepagesArgs {
    #[command(subcommand)]
    pub command: HugepagesCommand,
}

#[derive(Subcommand, Debug)]
pub enum HugepagesCommand {
    /// Per-NUMA-node 2 MiB and 1 GiB pools and the hugetlbfs mounts.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reserve hugepages (root): set the pool of --size to --pages pages on
    /// --node, or on every node without --node. Without --pages, reserve
    /// what `plan` computes for this configuration (never shrinking a pool).
    Reserve {
        /// Pages the pool holds afterwards (its total, not an increment).
        #[arg(long, value_name = "N")]
        pages: Option<u64>,
        /// 2M or 1G (default: hugepages.page_size).
        #[arg(long, value_name = "2M|1G")]
        size: Option<PageSize>,
        /// NUMA node (default: every node, or the nodes the plan uses).
        #[arg(long, value_name = "N")]
        node: Option<u32>,
    },
    /// Mount hugetlbfs (root) with one page size.
    Mount {
        /// Mount point, created if missing (default: hugepages.mount_path).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// 2M or 1G (default: hugepages.page_size).
        #[arg(long, value_name = "2M|1G")]
        size: Option<PageSize>,
    },
    /// The hugepages this configuration (--config, --set) needs on each
    /// NUMA node: mempools, rings, DPDK's own; flow memory on the heap
    /// beside; and the worst-case memory of the whole process outside
    /// hugepages, part by part.
    Plan {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// EAL arguments, as `skua run --dpdk` takes them (dpdk.eal_args).
        #[arg(long, value_name = "EAL ARGS", allow_hyphen_values = true)]
        dpdk: Option<String>,
    },
}

/// Runs `skua hugepages ...`.
pub fn run(cli: &Cli, args: &HugepagesArgs) -> Result<ExitCode> {
    let mut cfg = Config::load(cli.config.as_deref(), &cli.sets)?;
    let sys = System::new(&cfg.hugepages.root);
    match &args.command {
        HugepagesCommand::Status { json } => status(&sys, *json),
        HugepagesCommand::Reserve { pages, size, node } => {
            reserve(&cfg, &sys, *pages, size.unwrap_or(cfg.hugepages.page_size), *node)
        }
        HugepagesCommand::Mount { path, size } => {
            let path = path.clone().unwrap_or_else(|| cfg.hugepages.mount_path.clone());
            let size = size.unwrap_or(cfg.hugepages.page_size);
            match sys.mount(&path, size)? {
                hugepages::MountOutcome::Mounted => {
                    println!("mounted hugetlbfs ({size} pages) on {}", path.display())
                }
                hugepages::MountOutcome::AlreadyMounted => {
                    println!("{} already has hugetlbfs with {size} pages", path.display())
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HugepagesCommand::Plan { json, dpdk } => {
            if let Some(eal) = dpdk {
                cfg.dpdk.eal_args = eal.clone();
            }
            let cpus = dataplane::engine::affinity();
            let plan = hugepages::plan(&plan_input(&cfg, &cpus), &sys);
            let memory = crate::memory::worst_case(&cfg);
            if *json {
                #[derive(serde::Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    plan: &'a Plan,
                    /// The worst-case memory outside hugepages.
                    memory: &'a crate::memory::MemoryPlan,
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Out { plan: &plan, memory: &memory })?
                );
            } else {
                print!("{}", plan_text(&cfg, &plan, &sys));
                print!("{}", memory_text(&memory));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What the plan needs of `cfg`; `cpus` is the process' affinity.
pub fn plan_input(cfg: &Config, cpus: &[usize]) -> PlanInput {
    PlanInput {
        eal_args: cfg.dpdk.eal_args.clone(),
        cores: cfg.dataplane.cores,
        cpus: cpus.to_vec(),
        mbufs: cfg.dpdk.mbufs,
        mbuf_cache: cfg.dpdk.mbuf_cache,
        mbuf_data_room: cfg.dpdk.mbuf_data_room,
        rx_descriptors: cfg.dpdk.rx_descriptors,
        tx_descriptors: cfg.dpdk.tx_descriptors,
        burst: cfg.dpdk.burst,
        heap_per_core: heap_per_core(cfg),
    }
}

/// Heap a dataplane core may hold: the flow table, allocated up front, the
/// out-of-order and fragment limits, and its packet retention ring.
fn heap_per_core(cfg: &Config) -> u64 {
    let r = &cfg.reassembly;
    u64::from(r.max_flows) * reassembly::Reassembler::bytes_per_idle_flow() as u64
        + r.max_ooo_bytes_per_core
        + r.max_fragment_bytes
        + cfg.dataplane.retention(r.fragment_timeout_ms).ring_bytes()
}

/// The DPDK start path's check: fails, naming the shortfall and the fixing
/// command, when a node lacks the hugepages the configuration needs.
/// Skipped with `hugepages.preflight: false`, with `--no-huge` (the plan
/// then needs none) and in a build without DPDK.
pub fn preflight(cfg: &Config, cpus: &[usize]) -> Result<(), PreflightError> {
    if !cfg.hugepages.preflight || !dataplane::DPDK_AVAILABLE {
        return Ok(());
    }
    let sys = System::new(&cfg.hugepages.root);
    let plan = hugepages::plan(&plan_input(cfg, cpus), &sys);
    hugepages::preflight(&plan, &sys, &cfg.hugepages)
}

fn status(sys: &System, json: bool) -> Result<ExitCode> {
    let s = sys.status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    for n in &s.nodes {
        let cpus = if n.cpus.is_empty() {
            "CPUs unknown".into()
        } else {
            format!("CPUs {}", cpu_list(&n.cpus))
        };
        if s.numa {
            println!("NUMA node {} ({cpus})", n.node);
        } else {
            println!("no NUMA information: one pool set for the machine ({cpus})");
        }
        if n.pools.is_empty() {
            println!("  no hugepage pools");
        }
        for p in &n.pools {
            let size = p.page_size().map_or(format!("{} KiB", p.size_kib), |s| s.to_string());
            println!(
                "  {size:>7} pages: {:>6} total {:>6} free {:>4} surplus   ({} free)",
                p.total,
                p.free,
                p.surplus,
                human_bytes(p.free_bytes())
            );
        }
    }
    if s.mounts.is_empty() {
        println!("hugetlbfs mounts: none (skua's default EAL mode, --in-memory, needs none; `skua hugepages mount` makes one)");
    } else {
        println!("hugetlbfs mounts:");
        for m in &s.mounts {
            let size = m.page_size_kib.map_or("unknown size".to_string(), |k| {
                PageSize::from_kib(k).map_or(format!("{k} KiB"), |s| s.to_string())
            });
            println!("  {}  ({size} pages)", m.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reserve(
    cfg: &Config,
    sys: &System,
    pages: Option<u64>,
    size: PageSize,
    node: Option<u32>,
) -> Result<ExitCode> {
    let numa = sys.numa();
    let mut done = Vec::new();
    match pages {
        Some(n) => done.extend(sys.reserve(node, size, n)?),
        None => {
            // What the plan needs free, on top of what is in use now.
            let plan = hugepages::plan(&plan_input(cfg, &dataplane::engine::affinity()), sys);
            if !plan.hugepages {
                println!("dpdk.eal_args has --no-huge: this configuration needs no hugepages");
                return Ok(ExitCode::SUCCESS);
            }
            let nodes = sys.nodes()?;
            for need in plan.nodes.iter().filter(|n| node.is_none() || node == Some(n.node)) {
                let pool = nodes.iter().find(|n| n.node == need.node).and_then(|n| n.pool(size));
                let (total, free) = pool.map_or((0, 0), |p| (p.total, p.free));
                let target = total.max(total - free.min(total) + need.pages(size));
                done.extend(sys.reserve(numa.then_some(need.node), size, target)?);
            }
        }
    }
    for r in &done {
        let at = r.node.map_or("this machine".to_string(), |n| format!("NUMA node {n}"));
        println!("{at}: {} pool now {} pages, {} free", r.size, r.total, r.free);
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_text(cfg: &Config, plan: &Plan, sys: &System) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let cores = cfg.dataplane.cores;
    let _ = writeln!(
        o,
        "hugepages plan: {cores} dataplane core{}, {} port{}, {} mbufs × {} B per port",
        if cores == 1 { "" } else { "s" },
        plan.ports.len(),
        if plan.ports.len() == 1 { "" } else { "s" },
        cfg.dpdk.mbufs,
        hugepages::plan::obj_bytes(cfg.dpdk.mbuf_data_room)
    );
    for p in &plan.ports {
        let _ = writeln!(
            o,
            "  port {:<16} node {}, {} RX queue{}",
            p.name,
            p.node,
            p.rx_queues,
            if p.rx_queues == 1 { "" } else { "s" }
        );
    }
    let now = sys.nodes().ok();
    for n in &plan.nodes {
        let _ = writeln!(
            o,
            "node {}: {} × 2 MiB pages or {} × 1 GiB page{}  ({} of hugepages)",
            n.node,
            n.pages_2m,
            n.pages_1g,
            if n.pages_1g == 1 { "" } else { "s" },
            human_bytes(n.hugepage_bytes)
        );
        let _ = writeln!(
            o,
            "  mempools {:>10}  ({} port{})",
            human_bytes(n.mempool_bytes),
            n.ports.len(),
            if n.ports.len() == 1 { "" } else { "s" }
        );
        let _ = writeln!(o, "  rings    {:>10}", human_bytes(n.ring_bytes));
        let _ = writeln!(o, "  DPDK     {:>10}", human_bytes(n.dpdk_bytes));
        if n.eal_floor_bytes > 0 {
            let _ = writeln!(
                o,
                "  EAL asks {:>10}  (--socket-mem / -m)",
                human_bytes(n.eal_floor_bytes)
            );
        }
        let _ = writeln!(
            o,
            "  heap     {:>10}  flow memory and packet retention of {} core{}, ordinary memory outside the hugepage pools",
            human_bytes(n.heap_bytes),
            n.cores,
            if n.cores == 1 { "" } else { "s" }
        );
        if let Some(have) = now.as_ref().and_then(|v| v.iter().find(|h| h.node == n.node)) {
            let free = have.free_bytes();
            let verdict = if !plan.hugepages {
                "not needed (--no-huge)"
            } else if free >= n.hugepage_bytes {
                "enough"
            } else {
                "NOT enough: `skua hugepages reserve` fixes it"
            };
            let _ = writeln!(
                o,
                "  here now {:>10}  free hugepages on this node: {verdict}",
                human_bytes(free)
            );
        }
    }
    for note in &plan.notes {
        let _ = writeln!(o, "note: {note}");
    }
    o
}

/// The worst-case memory, one line per part.
fn memory_text(m: &crate::memory::MemoryPlan) -> String {
    use std::fmt::Write;
    let mut o = format!(
        "worst-case memory outside hugepages: {} (docs/config.md, \"Worst-case memory\")\n",
        human_bytes(m.total_bytes)
    );
    for l in &m.lines {
        let _ = writeln!(
            o,
            "  {:<32} {:>10}  {} × {}  ({})",
            l.part,
            human_bytes(l.bytes),
            l.count,
            human_bytes(l.each),
            l.keys
        );
    }
    for u in &m.unbounded {
        let _ = writeln!(o, "  not in the total: {u}");
    }
    o
}

/// `[0, 1, 2, 5]` → `0-2,5`.
fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start { start.to_string() } else { format!("{start}-{}", cpus[i]) });
        i += 1;
    }
    out.join(",")
}
