//! A bounded per-core set of the flows seen, used until reassembly owns
//! flow tracking: it answers "is this flow new?" and nothing more.
//!
//! Open addressing over 64-bit fingerprints of the canonical key (5-tuple
//! plus VLAN, endpoints ordered so both directions agree). The table never
//! grows: at `capacity` entries new flows are counted in
//! `flow_table_full` and not tracked.

use crate::counters::CoreCounters;
use crate::parse::PacketMeta;

pub struct FlowSet {
    slots: Box<[u64]>,
    mask: usize,
    len: usize,
    capacity: usize,
}

impl FlowSet {
    /// A set tracking up to `capacity` flows (slots are the next power of
    /// two above 1.25 × capacity, so probes stay short).
    pub fn new(capacity: usize) -> Self {
        let slots = (capacity + capacity / 4).max(16).next_power_of_two();
        Self { slots: vec![0; slots].into_boxed_slice(), mask: slots - 1, len: 0, capacity }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the table occupies.
    pub fn memory(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u64>()
    }

    /// Records the packet's flow; counts it if new, or counts the table full.
    #[inline]
    pub fn observe(&mut self, m: &PacketMeta, c: &mut CoreCounters) {
        let fp = fingerprint(m);
        let mut i = (fp as usize) & self.mask;
        loop {
            let slot = self.slots[i];
            if slot == fp {
                return;
            }
            if slot == 0 {
                if self.len >= self.capacity {
                    c.flow_table_full += 1;
                    return;
                }
                self.slots[i] = fp;
                self.len += 1;
                c.flows += 1;
                return;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// A direction-independent 64-bit fingerprint of the flow key; never 0
/// (0 marks an empty slot).
#[inline]
pub fn fingerprint(m: &PacketMeta) -> u64 {
    let (sp, dp) = if m.has_ports() { (m.src_port, m.dst_port) } else { (0, 0) };
    let a = (m.src_ip, sp);
    let b = (m.dst_ip, dp);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Mixer::new(u64::from(m.vlan) << 8 | u64::from(u8::from(m.protocol)));
    h.add(u64::from_le_bytes(lo.0[..8].try_into().unwrap_or_default()));
    h.add(u64::from_le_bytes(lo.0[8..].try_into().unwrap_or_default()));
    h.add(u64::from_le_bytes(hi.0[..8].try_into().unwrap_or_default()));
    h.add(u64::from_le_bytes(hi.0[8..].try_into().unwrap_or_default()));
    h.add(u64::from(lo.1) << 16 | u64::from(hi.1));
    h.finish().max(1)
}

/// A small multiply-xorshift mixer (the flow key is not attacker-chosen in
/// a way that matters here: a collision merges two flows in a count).
struct Mixer(u64);

impl Mixer {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd);
        self.0 ^= self.0 >> 32;
    }
    fn finish(self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::synth;
    use crate::wire::LinkType;

    fn meta(frame: &[u8]) -> PacketMeta {
        parse(LinkType::Ethernet, frame, frame.len() as u32).unwrap()
    }

    #[test]
    fn both_directions_are_one_flow() {
        let a = synth::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80, 1, 0, 0x02, b"");
        let b = synth::tcp4([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000, 9, 2, 0x12, b"");
        let c = synth::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40001, 80, 1, 0, 0x02, b"");
        let mut set = FlowSet::new(100);
        let mut cnt = CoreCounters::default();
        set.observe(&meta(&a), &mut cnt);
        set.observe(&meta(&b), &mut cnt);
        set.observe(&meta(&c), &mut cnt);
        assert_eq!(cnt.flows, 2);
    }

    #[test]
    fn full_table_counts_and_stays_bounded() {
        let mut set = FlowSet::new(1000);
        let mem = set.memory();
        let mut cnt = CoreCounters::default();
        for port in 0..5000u16 {
            let f = synth::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1024 + port, 80, 1, 0, 0x02, b"");
            set.observe(&meta(&f), &mut cnt);
        }
        assert_eq!(cnt.flows, 1000);
        assert_eq!(cnt.flow_table_full, 4000);
        assert_eq!(set.memory(), mem);
    }
}
