//! In-order delivery of one direction of a TCP flow.
//!
//! [`TcpHalf`] is the per-direction state kept in the flow slot (small, no
//! heap); [`OooBuf`] holds segments that arrived ahead of `next`, sorted by
//! sequence number and never overlapping each other.
//!
//! Overlap policy: **first data wins.** Bytes already delivered are never
//! delivered again, and bytes already buffered are kept over a later copy of
//! the same range; only the new bytes of a segment are used. (Suricata's
//! "first" policy; targets that prefer the last copy exist, but a passive
//! observer cannot know which one the receiver kept, and first-wins never
//! needs to rewrite what a dissector has already seen.)
//!
//! Losses: a hole that the capture will never fill is delivered as
//! [`Chunk::Gap`] when (a) the peer acknowledged past it, (b) a per-flow or
//! per-core buffer limit is hit, or (c) the flow ends.

use crate::counters::TcpCounters;
use crate::seq::SeqNumber;

/// What a direction delivers to its dissector, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order payload and the capture time of the segment that carried it.
    Data(&'a [u8], u64),
    /// That many bytes of the stream were never captured.
    Gap(u32),
}

const NEXT_KNOWN: u8 = 1;
const SYN_SEEN: u8 = 2;
const FIN_SEEN: u8 = 4;
const ENDED: u8 = 8;

/// Per-direction TCP state kept in the flow slot.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpHalf {
    /// Sequence number of the next byte to deliver (valid once known).
    pub next: SeqNumber,
    fin_seq: SeqNumber,
    flags: u8,
}

/// Accounting charged per buffered segment on top of its bytes.
pub const OOO_SEG_OVERHEAD: u64 = core::mem::size_of::<OooSeg>() as u64;

#[derive(Debug)]
pub struct OooSeg {
    seq: SeqNumber,
    ts: u64,
    data: Vec<u8>,
}

/// Segments waiting for a hole before them to fill.
#[derive(Debug, Default)]
pub struct OooBuf {
    segs: Vec<OooSeg>,
    bytes: u32,
}

impl OooBuf {
    pub fn bytes(&self) -> u32 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Moves `self` into `slot`, which `mem::take` left empty for a call
    /// that needed the buffer apart from its flow. An empty buffer that
    /// never allocated owns nothing, so it is forgotten rather than
    /// dropped (a drop call per buffer per packet otherwise); any other is
    /// dropped as usual.
    pub fn put_back(self, slot: &mut OooBuf) {
        let old = std::mem::replace(slot, self);
        if old.segs.capacity() == 0 {
            std::mem::forget(old);
        }
    }
}

/// Limits and accounting shared by every flow of a core.
pub struct TcpCtx<'a> {
    pub mem_used: &'a mut u64,
    pub per_flow: u32,
    pub per_core: u64,
    pub counters: &'a mut TcpCounters,
}

impl TcpHalf {
    pub fn next_known(&self) -> bool {
        self.flags & NEXT_KNOWN != 0
    }

    pub fn syn_seen(&self) -> bool {
        self.flags & SYN_SEEN != 0
    }

    pub fn fin_seen(&self) -> bool {
        self.flags & FIN_SEEN != 0
    }

    /// True once the dissector was told this direction ended.
    pub fn ended(&self) -> bool {
        self.flags & ENDED != 0
    }

    pub fn set_ended(&mut self) {
        self.flags |= ENDED;
    }

    /// A SYN with sequence number `isn`: stream data starts at `isn + 1`.
    pub fn syn(&mut self, isn: SeqNumber) {
        self.next = isn + 1;
        self.flags |= NEXT_KNOWN | SYN_SEEN;
    }

    /// A FIN after `data_len` bytes starting at `seq`.
    pub fn fin(&mut self, seq: SeqNumber, data_len: u32) {
        if !self.fin_seen() {
            self.fin_seq = seq + data_len;
            self.flags |= FIN_SEEN;
        }
    }

    /// True when everything up to the FIN has been delivered.
    pub fn fin_reached(&self) -> bool {
        self.fin_seen() && self.next_known() && self.next.diff(self.fin_seq) >= 0
    }

    /// Takes one segment's payload and delivers whatever became in-order.
    pub fn segment(
        &mut self,
        ooo: &mut OooBuf,
        seq: SeqNumber,
        data: &[u8],
        ts: u64,
        ctx: &mut TcpCtx<'_>,
        deliver: &mut impl FnMut(Chunk<'_>),
    ) {
        if data.is_empty() {
            return;
        }
        if !self.next_known() {
            // Mid-stream pickup: the first byte we see is where the stream starts.
            self.next = seq;
            self.flags |= NEXT_KNOWN;
        }
        loop {
            let off = seq.diff(self.next);
            if off <= 0 {
                let skip = off.unsigned_abs() as usize;
                match data.get(skip..) {
                    Some(rest) if !rest.is_empty() => {
                        ctx.counters.retransmitted_bytes += skip as u64;
                        deliver(Chunk::Data(rest, ts));
                        self.next = self.next + rest.len() as u32;
                        self.drain(ooo, ctx, deliver);
                    }
                    _ => ctx.counters.retransmitted_bytes += data.len() as u64,
                }
                return;
            }
            let cost = data.len() as u64 + OOO_SEG_OVERHEAD;
            let flow_ok = u64::from(ooo.bytes) + data.len() as u64 <= u64::from(ctx.per_flow);
            let core_ok = *ctx.mem_used + cost <= ctx.per_core;
            if flow_ok && core_ok {
                ctx.counters.ooo_segments += 1;
                self.insert(ooo, seq, data, ts, ctx);
                return;
            }
            if !flow_ok {
                ctx.counters.ooo_flow_limit_hits += 1;
            } else {
                ctx.counters.ooo_core_limit_hits += 1;
            }
            if ooo.is_empty() {
                // Nothing to give up: the hole before this segment is lost.
                self.gap(off as u32, ctx, deliver);
            } else {
                self.gap_to_first(ooo, ctx, deliver);
            }
        }
    }

    /// The peer acknowledged up to `ack`: holes below it were received by the
    /// peer but not by us, so they will never be filled.
    pub fn acked(
        &mut self,
        ooo: &mut OooBuf,
        ack: SeqNumber,
        ctx: &mut TcpCtx<'_>,
        deliver: &mut impl FnMut(Chunk<'_>),
    ) {
        while let Some(first) = ooo.segs.first() {
            if ack.diff(first.seq) < 0 || !self.next_known() {
                return;
            }
            self.gap_to_first(ooo, ctx, deliver);
        }
    }

    /// End of flow: every remaining hole becomes a gap.
    pub fn flush(
        &mut self,
        ooo: &mut OooBuf,
        ctx: &mut TcpCtx<'_>,
        deliver: &mut impl FnMut(Chunk<'_>),
    ) {
        while !ooo.is_empty() {
            self.gap_to_first(ooo, ctx, deliver);
        }
    }

    /// Drops buffered data without delivering it (a flow being forgotten).
    pub fn discard(ooo: &mut OooBuf, ctx: &mut TcpCtx<'_>) {
        for s in ooo.segs.drain(..) {
            *ctx.mem_used = ctx.mem_used.saturating_sub(s.data.len() as u64 + OOO_SEG_OVERHEAD);
        }
        ooo.bytes = 0;
    }

    fn gap(&mut self, len: u32, ctx: &mut TcpCtx<'_>, deliver: &mut impl FnMut(Chunk<'_>)) {
        if len == 0 {
            return;
        }
        ctx.counters.gaps += 1;
        ctx.counters.gap_bytes += u64::from(len);
        deliver(Chunk::Gap(len));
        self.next = self.next + len;
    }

    fn gap_to_first(
        &mut self,
        ooo: &mut OooBuf,
        ctx: &mut TcpCtx<'_>,
        deliver: &mut impl FnMut(Chunk<'_>),
    ) {
        if let Some(first) = ooo.segs.first() {
            let off = first.seq.diff(self.next);
            if off > 0 {
                self.gap(off as u32, ctx, deliver);
            }
            self.drain(ooo, ctx, deliver);
        }
    }

    /// Delivers buffered segments that are now in order.
    fn drain(
        &mut self,
        ooo: &mut OooBuf,
        ctx: &mut TcpCtx<'_>,
        deliver: &mut impl FnMut(Chunk<'_>),
    ) {
        while let Some(first) = ooo.segs.first() {
            let off = first.seq.diff(self.next);
            if off > 0 {
                return;
            }
            let seg = ooo.segs.remove(0);
            ooo.bytes = ooo.bytes.saturating_sub(seg.data.len() as u32);
            *ctx.mem_used = ctx.mem_used.saturating_sub(seg.data.len() as u64 + OOO_SEG_OVERHEAD);
            let skip = off.unsigned_abs() as usize;
            if let Some(rest) = seg.data.get(skip..) {
                if !rest.is_empty() {
                    ctx.counters.retransmitted_bytes += skip as u64;
                    deliver(Chunk::Data(rest, seg.ts));
                    self.next = self.next + rest.len() as u32;
                }
            }
        }
    }

    /// Buffers the parts of `data` not already buffered (first data wins).
    fn insert(
        &mut self,
        ooo: &mut OooBuf,
        seq: SeqNumber,
        data: &[u8],
        ts: u64,
        ctx: &mut TcpCtx<'_>,
    ) {
        // Offsets relative to `next` are all positive here, so plain integer
        // arithmetic replaces wrapping comparisons.
        let base = self.next;
        let rel = |s: SeqNumber| i64::from(s.diff(base));
        let start = rel(seq);
        let end = start + data.len() as i64;
        let mut cursor = start;
        let mut pieces: Vec<(i64, i64)> = Vec::new();
        for s in &ooo.segs {
            let (s0, s1) = (rel(s.seq), rel(s.seq) + s.data.len() as i64);
            if s1 <= cursor {
                continue;
            }
            if s0 >= end {
                break;
            }
            if s0 > cursor {
                pieces.push((cursor, s0));
            }
            cursor = cursor.max(s1);
        }
        if cursor < end {
            pieces.push((cursor, end));
        }
        let dup = (end - start) - pieces.iter().map(|(a, b)| b - a).sum::<i64>();
        ctx.counters.retransmitted_bytes += dup.max(0) as u64;
        for (a, b) in pieces {
            let (lo, hi) = ((a - start) as usize, (b - start) as usize);
            let Some(bytes) = data.get(lo..hi) else { continue };
            let seg_seq = base + a as u32;
            let pos = ooo.segs.iter().position(|s| rel(s.seq) > a).unwrap_or(ooo.segs.len());
            ooo.bytes = ooo.bytes.saturating_add(bytes.len() as u32);
            *ctx.mem_used += bytes.len() as u64 + OOO_SEG_OVERHEAD;
            ooo.segs.insert(pos, OooSeg { seq: seg_seq, ts, data: bytes.to_vec() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rig {
        half: TcpHalf,
        ooo: OooBuf,
        mem: u64,
        counters: TcpCounters,
        out: Vec<u8>,
        gaps: Vec<u32>,
        per_flow: u32,
        per_core: u64,
    }

    impl Rig {
        fn new(isn: u32) -> Rig {
            let mut half = TcpHalf::default();
            half.syn(SeqNumber(isn));
            Rig {
                half,
                ooo: OooBuf::default(),
                mem: 0,
                counters: TcpCounters::default(),
                out: Vec::new(),
                gaps: Vec::new(),
                per_flow: 1 << 20,
                per_core: 1 << 30,
            }
        }

        fn seg(&mut self, seq: u32, data: &[u8]) {
            let mut ctx = TcpCtx {
                mem_used: &mut self.mem,
                per_flow: self.per_flow,
                per_core: self.per_core,
                counters: &mut self.counters,
            };
            let (out, gaps) = (&mut self.out, &mut self.gaps);
            self.half.segment(&mut self.ooo, SeqNumber(seq), data, 0, &mut ctx, &mut |c| match c {
                Chunk::Data(d, _) => out.extend_from_slice(d),
                Chunk::Gap(n) => {
                    gaps.push(n);
                    out.extend(std::iter::repeat_n(b'?', n as usize));
                }
            });
        }

        fn flush(&mut self) {
            let mut ctx = TcpCtx {
                mem_used: &mut self.mem,
                per_flow: self.per_flow,
                per_core: self.per_core,
                counters: &mut self.counters,
            };
            let (out, gaps) = (&mut self.out, &mut self.gaps);
            self.half.flush(&mut self.ooo, &mut ctx, &mut |c| match c {
                Chunk::Data(d, _) => out.extend_from_slice(d),
                Chunk::Gap(n) => {
                    gaps.push(n);
                    out.extend(std::iter::repeat_n(b'?', n as usize));
                }
            });
        }
    }

    #[test]
    fn in_order_and_reordered() {
        let mut r = Rig::new(99);
        r.seg(100, b"abc");
        r.seg(106, b"ghi");
        r.seg(103, b"def");
        assert_eq!(r.out, b"abcdefghi");
        assert_eq!(r.mem, 0);
        assert!(r.gaps.is_empty());
    }

    #[test]
    fn retransmission_and_overlap_first_wins() {
        let mut r = Rig::new(99);
        r.seg(100, b"abc");
        r.seg(100, b"XYZ"); // full retransmission with different bytes
        r.seg(102, b"CDE"); // overlaps one delivered byte
        r.seg(108, b"ij");
        r.seg(107, b"HIJK"); // overlaps the buffered "ij": those stay
        r.seg(105, b"fg");
        assert_eq!(r.out, b"abcDEfgHijK");
        assert!(r.counters.retransmitted_bytes >= 3 + 1 + 2);
        assert_eq!(r.mem, 0);
    }

    #[test]
    fn wraps_around_sequence_space() {
        let isn = u32::MAX - 4;
        let mut r = Rig::new(isn);
        r.seg(isn.wrapping_add(1), b"abcd"); // up to u32::MAX
        r.seg(isn.wrapping_add(9), b"ijk"); // after the wrap, out of order
        r.seg(isn.wrapping_add(5), b"efgh"); // crosses 0
        assert_eq!(r.out, b"abcdefghijk");
        assert_eq!(r.half.next, SeqNumber(isn.wrapping_add(12)));
    }

    #[test]
    fn flush_reports_holes_as_gaps() {
        let mut r = Rig::new(0);
        r.seg(1, b"ab");
        r.seg(6, b"fg");
        r.seg(10, b"j");
        r.flush();
        assert_eq!(r.out, b"ab???fg??j");
        assert_eq!(r.gaps, vec![3, 2]);
        assert_eq!(r.counters.gaps, 2);
        assert_eq!(r.mem, 0);
    }

    #[test]
    fn per_flow_limit_skips_to_buffered_data() {
        let mut r = Rig::new(0);
        r.per_flow = 4;
        r.seg(1, b"a");
        r.seg(5, b"efg");
        r.seg(10, b"jk"); // would exceed 4 buffered bytes
        assert_eq!(r.counters.ooo_flow_limit_hits, 1);
        assert_eq!(r.out, b"a???efg");
        r.flush();
        assert_eq!(r.out, b"a???efg??jk");
    }

    #[test]
    fn per_core_limit_is_counted() {
        let mut r = Rig::new(0);
        r.per_core = OOO_SEG_OVERHEAD + 3;
        r.seg(5, b"xyz");
        r.seg(10, b"q");
        assert_eq!(r.counters.ooo_core_limit_hits, 1);
        assert_eq!(r.out, b"????xyz", "the hole before the buffered data was given up");
        r.flush();
        assert_eq!(r.out, b"????xyz??q");
        assert_eq!(r.mem, 0);
    }

    #[test]
    fn oversized_segment_with_empty_buffer_is_delivered_after_gap() {
        let mut r = Rig::new(0);
        r.per_flow = 2;
        r.seg(4, b"defg");
        assert_eq!(r.out, b"???defg");
    }

    #[test]
    fn ack_past_a_hole_declares_the_gap() {
        let mut r = Rig::new(0);
        r.seg(1, b"ab");
        r.seg(5, b"ef");
        let mut ctx = TcpCtx {
            mem_used: &mut r.mem,
            per_flow: 100,
            per_core: 1000,
            counters: &mut r.counters,
        };
        let out = &mut r.out;
        r.half.acked(&mut r.ooo, SeqNumber(3), &mut ctx, &mut |_| {});
        assert_eq!(out, b"ab", "ack below the buffered data changes nothing");
        r.half.acked(&mut r.ooo, SeqNumber(7), &mut ctx, &mut |c| {
            if let Chunk::Data(d, _) = c {
                out.extend_from_slice(d)
            }
        });
        assert_eq!(out, b"abef");
    }

    #[test]
    fn fin_tracking() {
        let mut h = TcpHalf::default();
        h.syn(SeqNumber(10));
        h.fin(SeqNumber(11), 5);
        assert!(!h.fin_reached());
        h.next = SeqNumber(16);
        assert!(h.fin_reached());
    }
}
