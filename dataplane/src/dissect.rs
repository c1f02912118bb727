//! The hand-off from a dataplane core to reassembly: each decoded packet
//! becomes a `reassembly::Packet`, and the items the core's reassembler
//! completes go to an [`ItemSink`].
//!
//! Time is the capture's: timers advance with packet timestamps, checked
//! every [`ADVANCE_EVERY_NS`] of capture time, so a replay expires flows
//! exactly as the live run would have.

use reassembly::{Fragment, Item, Packet, Reassembler, ReassemblyConfig};

use crate::counters::CoreCounters;
use crate::engine::PacketHandler;
use crate::parse::PacketMeta;
use crate::source::Frame;

/// How much capture time passes between two timer sweeps.
pub const ADVANCE_EVERY_NS: u64 = 100_000_000;

/// Where a core's items (and, when asked, its packets) go. Implementations
/// must not block a live capture (count and drop instead); a replay may
/// wait. A sink lives on its core's thread.
pub trait ItemSink {
    fn item(&mut self, item: Item);

    /// Whether [`ItemSink::packet`] wants every packet (an agent defines
    /// `onPacketCaptured`). Asked per packet, so it must be cheap.
    #[inline]
    fn wants_packets(&self) -> bool {
        false
    }

    /// A decoded packet, before reassembly; only called while
    /// [`ItemSink::wants_packets`] says so.
    fn packet(&mut self, _frame: &Frame<'_>, _meta: &PacketMeta) {}

    /// The core is idle or between bursts: a sink that runs work on the core
    /// (an inline agent runtime's timers and completions) does it here.
    fn idle(&mut self) {}

    /// The core's last packet was handled and its last items emitted.
    fn finish(&mut self) {}
}

/// Counts items and drops them: the sink when nothing consumes items yet.
#[derive(Debug, Default)]
pub struct CountingSink;

impl ItemSink for CountingSink {
    fn item(&mut self, _item: Item) {}
}

impl ItemSink for std::sync::mpsc::SyncSender<Item> {
    fn item(&mut self, item: Item) {
        // The receiver only goes away when the run is being torn down.
        let _ = self.send(item);
    }
}

/// A dataplane core's reassembly stage.
pub struct Dissector<S> {
    reassembler: Reassembler,
    sink: S,
    items: u64,
    next_advance_ns: u64,
}

impl<S: ItemSink> Dissector<S> {
    pub fn new(cfg: &ReassemblyConfig, core: u16, sink: S) -> Self {
        Self { reassembler: Reassembler::new(cfg, core), sink, items: 0, next_advance_ns: 0 }
    }

    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }
}

/// The reassembly view of a decoded packet. A fragment's payload is its
/// whole IP payload (the first one's L4 header included): reassembly reads
/// the ports from the reassembled datagram.
#[inline]
pub fn to_packet<'a>(frame: &Frame<'a>, m: &PacketMeta) -> Packet<'a> {
    let payload = if m.fragment.is_some() {
        let start = usize::from(m.l4_offset);
        let end = (m.payload_offset + m.payload_len) as usize;
        frame.data.get(start..end.max(start)).unwrap_or(&[])
    } else {
        m.payload(frame.data)
    };
    Packet {
        ts_ns: frame.ts_ns,
        ip_version: m.ip_version,
        src_ip: m.src_ip,
        dst_ip: m.dst_ip,
        vlan: m.vlan,
        protocol: u8::from(m.protocol),
        src_port: m.src_port,
        dst_port: m.dst_port,
        tcp_flags: m.tcp_flags,
        seq: m.seq,
        ack: m.ack,
        payload,
        fragment: m.fragment.map(|f| Fragment { ident: f.ident, offset: f.offset, more: f.more }),
        wire_len: frame.wire_len,
    }
}

impl<S: ItemSink> PacketHandler for Dissector<S> {
    #[inline]
    fn packet(&mut self, frame: &Frame<'_>, meta: &PacketMeta, counters: &mut CoreCounters) {
        let Self { reassembler, sink, items, next_advance_ns } = self;
        if sink.wants_packets() {
            sink.packet(frame, meta);
        }
        let pkt = to_packet(frame, meta);
        let mut emit = |item: Item| {
            *items += 1;
            sink.item(item);
        };
        reassembler.packet(&pkt, &mut emit);
        if frame.ts_ns >= *next_advance_ns {
            reassembler.advance(frame.ts_ns, &mut emit);
            *next_advance_ns = frame.ts_ns.saturating_add(ADVANCE_EVERY_NS);
        }
        sync(counters, *items, reassembler);
    }

    fn reassembly(&self) -> Option<reassembly::ReassemblyCounters> {
        Some(self.reassembler.counters().clone())
    }

    fn idle(&mut self, _counters: &mut CoreCounters) {
        self.sink.idle();
    }

    fn finish(&mut self, counters: &mut CoreCounters) {
        let Self { reassembler, sink, items, .. } = self;
        reassembler.finish(&mut |item: Item| {
            *items += 1;
            sink.item(item);
        });
        sink.finish();
        sync(counters, *items, reassembler);
    }
}

/// Mirrors the reassembler's flow counts into the core's counters, which
/// the summary and the progress line read.
#[inline]
fn sync(counters: &mut CoreCounters, items: u64, r: &Reassembler) {
    let rc = r.counters();
    counters.items = items;
    counters.flows = rc.flows_created;
    counters.flow_table_full = rc.flow_table_full;
}
