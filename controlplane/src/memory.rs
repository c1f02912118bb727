//! The worst-case memory of a configuration (issue 30): every part of a
//! worker (and of the hub in the same process, `skua run`) that traffic or
//! agents can fill, as bound × size from the configuration, summed.
//! `skua hugepages plan` prints it beside the hugepages; `docs/config.md`
//! ("Worst-case memory") explains each line; `tests/worst_case_memory.rs`
//! runs a hostile capture and holds the process' peak resident memory
//! under the total.
//!
//! Invariant: a line is a product of configuration values (and a few named
//! constants below, each with where it comes from), never a measurement of
//! this run, so the total is the same on every machine and only grows when
//! a limit is raised. A part bounded only by a count whose elements have
//! no byte bound is listed in [`MemoryPlan::unbounded`], not guessed.
//!
//! What is not here: DPDK's hugepages (the plan's per-node figures) and
//! anything an operator adds outside skua.

use serde::Serialize;

use crate::config::Config;

/// Resident memory of the `skua` process before traffic: code, the
/// allocator's arenas, thread stacks actually touched, tokio, the hub's
/// embedded dashboard. Measured: `skua run --pcap` of a 1-packet capture
/// with no agent peaks at 24–31 MB resident (VmHWM) on the project's
/// VM; rounded up.
pub const PROCESS_BASE: u64 = 48 << 20;

/// What an item costs beyond the bytes of its messages (the item struct,
/// endpoints, header index, allocator rounding).
pub const ITEM_OVERHEAD: u64 = 2 << 10;

/// Largest frame a capture core copies into a dispatcher batch (an IPv4
/// datagram at its maximum size; pcap snap lengths allow more, but the
/// dissectors never see more than this per frame).
pub const MAX_FRAME: u64 = 65_535;

/// One line of the plan: `count × each = bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryLine {
    /// What it is (`flow tables`, `agent heaps` ...).
    pub part: &'static str,
    /// The configuration keys that bound it.
    pub keys: String,
    pub count: u64,
    pub each: u64,
    pub bytes: u64,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryPlan {
    pub lines: Vec<MemoryLine>,
    /// Sum of the lines: the most resident memory the configuration can
    /// make the process use outside hugepages.
    pub total_bytes: u64,
    /// Parts bounded by count only (their elements' bytes follow from what
    /// agents or peers send), named so nobody takes the total for more
    /// than it is.
    pub unbounded: Vec<String>,
}

fn line(part: &'static str, keys: &str, count: u64, each: u64) -> MemoryLine {
    MemoryLine { part, keys: keys.to_string(), count, each, bytes: count.saturating_mul(each) }
}

/// Bytes of one item at most: both messages' heads (a head is never
/// longer than the dissector's message buffer) and bodies, and the rest.
pub fn item_bytes(cfg: &Config) -> u64 {
    let r = &cfg.reassembly;
    let body = u64::from(r.max_body_bytes.max(r.max_field_bytes));
    2 * (u64::from(r.max_message_buffer_bytes) + body) + ITEM_OVERHEAD
}

/// The worst-case memory of `cfg`.
pub fn worst_case(cfg: &Config) -> MemoryPlan {
    let r = &cfg.reassembly;
    let s = &cfg.scripting;
    let cores = cfg.dataplane.cores.max(1) as u64;
    let flows = u64::from(r.max_flows);
    let item = item_bytes(cfg);
    let mut lines = vec![
        line("process base", "(measured constant)", 1, PROCESS_BASE),
        line(
            "flow tables",
            "dataplane.cores × reassembly.max_flows",
            cores * flows,
            reassembly::Reassembler::bytes_per_idle_flow() as u64,
        ),
    ];
    // Unfinished messages: every flow holding a message head up to the
    // buffer in each direction, and its requests awaiting answers. The
    // dissectors' per-core budget for these (issue 30, fault 2) replaces
    // this line's count × each by min(that, the budget) when it lands:
    // `unfinished_budget_per_core` below is where it goes.
    let per_flow =
        2 * u64::from(r.max_message_buffer_bytes) + u64::from(r.max_pending_requests) * (item / 2);
    let unfinished_budget_per_core: Option<u64> = None;
    let unfinished = match unfinished_budget_per_core {
        Some(b) => line(
            "unfinished messages",
            "the dissectors' per-core budget",
            cores,
            b.min(flows.saturating_mul(per_flow)),
        ),
        None => line(
            "unfinished messages",
            "dataplane.cores × reassembly.max_flows × (2 × max_message_buffer_bytes + max_pending_requests × one message)",
            cores * flows,
            per_flow,
        ),
    };
    lines.push(unfinished);
    if r.protocols.contains(&reassembly::AppProtocol::Http2) {
        lines.push(line(
            "HTTP/2 header tables",
            "dataplane.cores × reassembly.max_flows × 2 × max_hpack_table_bytes",
            cores * flows,
            2 * u64::from(r.max_hpack_table_bytes),
        ));
    }
    lines.push(line(
        "out-of-order segments",
        "dataplane.cores × reassembly.max_ooo_bytes_per_core",
        cores,
        r.max_ooo_bytes_per_core,
    ));
    lines.push(line(
        "IP fragments",
        "dataplane.cores × reassembly.max_fragment_bytes",
        cores,
        r.max_fragment_bytes,
    ));
    if cores > 1 {
        // Only a source without RSS goes through the dispatcher; batches
        // travel there and back, each keeping its largest size.
        lines.push(line(
            "dispatcher batches",
            "dataplane.cores × (ring_batches + 2) × batch_frames",
            cores * (cfg.dataplane.ring_batches as u64 + 2) * cfg.dataplane.batch_frames as u64,
            MAX_FRAME,
        ));
    }
    let runtimes = if s.script_cores == 0 {
        lines.push(line(
            "items batched for inline agents",
            "dataplane.cores × scripting.batchSize",
            cores * u64::from(s.batch_size),
            item,
        ));
        cores
    } else {
        let sc = u64::from(s.script_cores);
        lines.push(line(
            "items queued to script cores",
            "dataplane.cores × scripting.scriptCores × ringCapacity",
            cores * sc * u64::from(s.ring_capacity),
            item,
        ));
        lines.push(line(
            "packets queued to script cores",
            "dataplane.cores × scripting.scriptCores × packetRingCapacity",
            cores * sc * u64::from(s.packet_ring_capacity),
            std::mem::size_of::<scripting::PacketInfo>() as u64,
        ));
        sc
    };
    // The hub-side runtime of `skua run` / `skua hub`.
    let hub = !cfg.hub.listen.is_empty();
    let runtimes = runtimes + u64::from(hub && cfg.hub.run_agents);
    lines.push(line(
        "agent heaps",
        "runtimes × scripting.memoryLimitMb",
        runtimes,
        u64::from(s.memory_limit_mb) << 20,
    ));
    lines.push(line(
        "console lines queued",
        "scripting.consoleQueue + link.console_queue, × maxConsoleLineBytes",
        u64::from(s.console_queue) + cfg.link.console_queue as u64,
        u64::from(s.max_console_line_bytes),
    ));
    lines.push(line(
        "items queued for the hub link",
        "link.item_queue × one item as JSON (2 × item)",
        cfg.link.item_queue as u64,
        2 * item,
    ));
    if hub {
        lines.push(line(
            "hub item ring",
            "hub.items_capacity × one item as JSON (2 × item)",
            cfg.hub.items_capacity as u64,
            2 * item,
        ));
        lines.push(line(
            "hub console ring",
            "hub.console_capacity × maxConsoleLineBytes",
            cfg.hub.console_capacity as u64,
            u64::from(s.max_console_line_bytes),
        ));
    }
    let total_bytes = lines.iter().fold(0u64, |t, l| t.saturating_add(l.bytes));
    let unbounded = vec![
        format!(
            "I/O helper requests: scripting.effectQueue ({}) waiting, each a copy of what an agent passed (bounded by its runtime's heap when made)",
            s.effect_queue
        ),
        format!(
            "hub actions and pod events: scripting.inboxQueue ({}) per runtime, each an object an agent or the cluster sent",
            s.inbox_queue
        ),
    ];
    MemoryPlan { lines, total_bytes, unbounded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_its_product_and_the_total_their_sum() {
        let p = worst_case(&Config::default());
        assert!(p.lines.len() >= 10);
        for l in &p.lines {
            assert_eq!(l.bytes, l.count * l.each, "{l:?}");
        }
        assert_eq!(p.total_bytes, p.lines.iter().map(|l| l.bytes).sum::<u64>());
    }

    #[test]
    fn raising_a_limit_raises_its_line_and_nothing_else() {
        let base = worst_case(&Config::default());
        let mut cfg = Config::default();
        cfg.scripting.memory_limit_mb *= 2;
        let more = worst_case(&cfg);
        let heaps =
            |p: &MemoryPlan| p.lines.iter().find(|l| l.part == "agent heaps").unwrap().bytes;
        assert_eq!(heaps(&more), 2 * heaps(&base));
        assert_eq!(more.total_bytes - base.total_bytes, heaps(&base));
        // A pool instead of inline runtimes: rings instead of batches.
        cfg.scripting.script_cores = 2;
        let pool = worst_case(&cfg);
        assert!(pool.lines.iter().any(|l| l.part == "items queued to script cores"));
        assert!(!pool.lines.iter().any(|l| l.part == "items batched for inline agents"));
    }
}
