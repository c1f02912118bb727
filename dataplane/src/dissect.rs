//! The hand-off from a dataplane core to reassembly: each decoded packet
//! becomes a `reassembly::Packet`, and the items the core's reassembler
//! completes go to an [`ItemSink`].
//!
//! Time is the capture's: timers advance with packet timestamps, checked
//! every [`ADVANCE_EVERY_NS`] of capture time, so a replay expires flows
//! exactly as the live run would have.

use reassembly::{Fragment, Item, Packet, PodMap, Reassembler, ReassemblyConfig};

use crate::counters::CoreCounters;
use crate::engine::PacketHandler;
use crate::parse::PacketMeta;
use crate::retention::{fragment_tag, RetentionWriter};
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
    /// Names items' endpoints (pod/service, namespace) when set.
    pods: Option<PodMap>,
    /// Keeps the core's packets for `pcap.path` when retention is on.
    retain: Option<Retain>,
}

/// Retention on a core: the ring's writer, and the items a packet
/// completed, held until the packet is in the ring (an agent handed such an
/// item may ask for its stream's packets at once).
struct Retain {
    writer: RetentionWriter,
    held: Vec<Item>,
}

impl<S: ItemSink> Dissector<S> {
    pub fn new(cfg: &ReassemblyConfig, core: u16, sink: S) -> Self {
        Self {
            reassembler: Reassembler::new(cfg, core),
            sink,
            items: 0,
            next_advance_ns: 0,
            pods: None,
            retain: None,
        }
    }

    /// Keeps every packet in the core's retention ring (with the stream
    /// its flow got) before the items it completes reach the sink.
    pub fn with_retention(mut self, writer: Option<RetentionWriter>) -> Self {
        self.retain = writer.map(|writer| Retain { writer, held: Vec::new() });
        self
    }

    /// Names every item's endpoints from `pods` (the control plane's
    /// Kubernetes view) before it reaches the sink.
    pub fn with_pod_map(mut self, pods: PodMap) -> Self {
        self.pods = Some(pods);
        self
    }

    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }
}

#[inline]
fn emit_item(mut item: Item, pods: Option<&PodMap>, items: &mut u64, sink: &mut impl ItemSink) {
    if let Some(pods) = pods {
        pods.name_item(&mut item);
    }
    *items += 1;
    sink.item(item);
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
        let Self { reassembler, sink, items, next_advance_ns, pods, retain } = self;
        if sink.wants_packets() {
            sink.packet(frame, meta);
        }
        let pkt = to_packet(frame, meta);
        match retain {
            Some(Retain { writer, held }) if writer.wanted() => {
                reassembler.packet(&pkt, &mut |item: Item| held.push(item));
                writer.push(
                    frame.ts_ns,
                    reassembler.last_stream(),
                    fragment_tag(meta),
                    frame.link,
                    frame.data,
                    frame.wire_len,
                );
                for item in held.drain(..) {
                    emit_item(item, pods.as_ref(), items, sink);
                }
            }
            _ => reassembler
                .packet(&pkt, &mut |item: Item| emit_item(item, pods.as_ref(), items, sink)),
        }
        let mut emit = |item: Item| emit_item(item, pods.as_ref(), items, sink);
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
        let Self { reassembler, sink, items, pods, .. } = self;
        reassembler.finish(&mut |item: Item| emit_item(item, pods.as_ref(), items, sink));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;
    use crate::wire::link::LinkType;
    use reassembly::{PodIndex, PodRef};

    #[test]
    fn items_carry_pod_names_from_the_pod_map() {
        let pods = PodMap::new();
        pods.publish(PodIndex::from_map([(
            "10.1.0.5".parse().unwrap(),
            PodRef::new("api-1", "shop"),
        )]));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let mut d = Dissector::new(&ReassemblyConfig::default(), 0, tx).with_pod_map(pods);
        let mut frames = Vec::new();
        synth::dns_exchange(
            &mut frames,
            1_000_000,
            synth::DnsLookup {
                client: [10, 1, 0, 5],
                server: [10, 96, 0, 10],
                port: 40_000,
                id: 7,
                name: "db.shop",
                answer: [10, 1, 0, 9],
            },
        );
        let mut counters = CoreCounters::default();
        for f in &frames {
            let frame = Frame {
                data: &f.data,
                wire_len: f.data.len() as u32,
                ts_ns: f.ts_ns,
                link: LinkType::Ethernet,
            };
            let meta = crate::parse::parse(LinkType::Ethernet, &f.data, frame.wire_len).unwrap();
            d.packet(&frame, &meta, &mut counters);
        }
        d.finish(&mut counters);
        let item = rx.try_recv().expect("one DNS item");
        assert_eq!((item.src.name.as_str(), item.src.namespace.as_str()), ("api-1", "shop"));
        assert_eq!((item.dst.name.as_str(), item.dst.namespace.as_str()), ("", ""));
    }
}
