//! Packet retention: each dataplane core keeps the packets it saw lately
//! (frame bytes, wire length, capture time, link type and the stream the
//! reassembler gave the packet's flow) so that `pcap.path(data.stream)`,
//! `pcap.snapshot` and the dashboard's "download pcap" can hand out the
//! packets behind an item.
//!
//! Owns: one ring per core, bounded by a byte budget
//! (`dataplane.retention_bytes`, per core) and a time budget
//! (`dataplane.retention_seconds`, on the capture's clock); the counters of
//! what was kept and evicted; the readers that select a stream's packets.
//!
//! **One writer, readers anywhere, no lock.** The core is the only writer of
//! its ring; readers are control-plane threads (the pcap lane of the
//! executor, the hub). The ring is a seqlock over a word array:
//! - records are written at `head` and the oldest evicted at `tail`, both
//!   word positions that only grow;
//! - before overwriting the words of evicted records the writer stores the
//!   new `tail` and issues a release fence; after writing a record it
//!   publishes the new `head` with a release store;
//! - a reader loads `head` (acquire), copies what it wants, issues an
//!   acquire fence and loads `tail`: whatever it copied from below that
//!   `tail` may have been overwritten while it read and is dropped (those
//!   packets were being evicted anyway). Eviction only ever takes the
//!   oldest records, so what a read returns is exactly what was retained at
//!   one moment.
//!
//! Why this and not the alternatives: a lock per packet is what the capture
//! path must not take; chunks handed over to readers when full (or on a
//! reader's request) leave the newest packets — those of the item an agent
//! is looking at — invisible until the core hands them over, and with
//! `scripting.scriptCores = 0` the core is the thread running the agent
//! that waits for them. Words are `AtomicU64` because skua's crates
//! outside the DPDK and AF_PACKET modules carry no `unsafe`: relaxed atomic
//! stores and loads compile to plain moves, at the price of a copy in
//! 8-byte words instead of `memcpy`'s vectors (measured in
//! `BENCHMARKS.md`, "Packet retention"). Why not the `seqlock` crate: it
//! guards one fixed-size `Copy` value, not a ring of variable-length
//! records.
//!
//! Record layout (u64 words): capture time in ns; stream (0: none); captured
//! length | wire length << 32; fragment tag | link type << 32; the frame's
//! bytes, zero-padded to a word.
//!
//! A fragment is recorded with the stream of its datagram: the fragment
//! that completes the datagram gets the stream from the reassembler, the
//! others carry a tag (a hash of addresses, protocol and IP ident) that the
//! reader matches to it, within the reassembler's fragment timeout.
//!
//! **Nothing until wanted.** With `retention_bytes > 0` each core has a
//! writer, but it keeps nothing (and allocates no ring) until something
//! activates retention: an agent that uses `pcap.*` being loaded, an
//! agent's first `pcap.*` call, or a pcap download. Until then the
//! capture path pays one relaxed load of a flag per packet.
//!
//! When a stream has nothing left, a reader says why: retention off, a
//! stream this core never created, or evicted by bytes or by age (a small
//! per-core table remembers the last eviction of each stream, indexed by
//! its number; when another stream took the slot the reason is "evicted").

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::parse::PacketMeta;
use crate::wire::LinkType;

/// Words of a record's header.
const HEADER_WORDS: u64 = 4;
/// Entries of each core's eviction table (stream number → why it went):
/// 32 KiB per core, enough to name the reason for the streams evicted in
/// the last few thousand flows.
const EVICTION_SLOTS: usize = 4096;
/// Stream ids carry their core in the top 16 bits (`Reassembler`).
const CORE_SHIFT: u32 = 48;
const SEQ_MASK: u64 = (1 << CORE_SHIFT) - 1;

const WHY_BYTES: u64 = 1;
const WHY_AGE: u64 = 2;

/// The budgets, from `dataplane.retention_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Bytes of ring per core (records with their 32-byte headers); 0 = off.
    pub bytes_per_core: u64,
    /// Packets older than this (capture time, behind the core's newest
    /// packet) are evicted; 0 = no time budget.
    pub max_age_ns: u64,
    /// How long before the fragment completing a datagram its other
    /// fragments may lie (the reassembler's fragment timeout).
    pub fragment_window_ns: u64,
}

impl RetentionConfig {
    pub fn is_on(&self) -> bool {
        self.bytes_per_core >= 8 * (HEADER_WORDS + 8)
    }

    /// Heap one core's ring takes (its words and its eviction table); 0
    /// when off.
    pub fn ring_bytes(&self) -> u64 {
        if self.is_on() {
            self.bytes_per_core / 8 * 8 + EVICTION_SLOTS as u64 * 8
        } else {
            0
        }
    }
}

/// Why a stream has no retained packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Miss {
    #[error("packet retention is off (dataplane.retention_bytes = 0)")]
    Off,
    #[error("stream {0} was never seen on this worker")]
    NeverSeen(u64),
    #[error(
        "stream {0} is no longer retained: its packets were evicted to stay within the byte budget (dataplane.retention_bytes)"
    )]
    EvictedBytes(u64),
    #[error(
        "stream {0} is no longer retained: its packets were older than the time budget (dataplane.retention_seconds)"
    )]
    EvictedAge(u64),
    #[error("stream {0} is no longer retained: its packets were evicted")]
    Evicted(u64),
    #[error(
        "stream {0} was not retained: packet retention had not started on its core yet (it starts when an agent that uses pcap.* is loaded, or at the first pcap.* call)"
    )]
    Inactive(u64),
}

impl Miss {
    /// The reason as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Miss::Off => "off",
            Miss::NeverSeen(_) => "never_seen",
            Miss::EvictedBytes(_) => "evicted_bytes",
            Miss::EvictedAge(_) => "evicted_age",
            Miss::Evicted(_) => "evicted",
            Miss::Inactive(_) => "inactive",
        }
    }

    pub const REASONS: [&'static str; 6] =
        ["off", "never_seen", "evicted_bytes", "evicted_age", "evicted", "inactive"];

    fn index(&self) -> usize {
        Miss::REASONS.iter().position(|r| *r == self.reason()).unwrap_or(0)
    }
}

/// One retained packet, copied out of a ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedPacket {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (≥ `data.len()` when the capture snapped it).
    pub wire_len: u32,
    pub link: LinkType,
    /// The stream of its flow (0: none).
    pub stream: u64,
    pub core: u16,
    pub data: Vec<u8>,
}

/// One core's retention counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStats {
    pub core: usize,
    /// Ring size, bytes.
    pub capacity_bytes: u64,
    /// Bytes the retained records take now.
    pub used_bytes: u64,
    /// Packets written to the ring.
    pub packets: u64,
    /// Packets evicted to make room (the byte budget).
    pub evicted_bytes: u64,
    /// Packets evicted for age (the time budget).
    pub evicted_age: u64,
    /// Packets not kept: a record larger than the whole ring.
    pub too_big: u64,
}

/// The rings of every core and their readers. Shared (`Arc`) by the cores,
/// which write through a [`RetentionWriter`] each, and the control plane.
#[derive(Debug)]
pub struct Retention {
    cfg: RetentionConfig,
    /// A core's ring is made by its writer, on the core's thread (so its
    /// memory is the core's NUMA node's).
    cores: Box<[OnceLock<Arc<Ring>>]>,
    misses: [AtomicU64; Miss::REASONS.len()],
    /// Whether the cores keep packets now ([`Retention::activate`]).
    active: AtomicBool,
}

#[derive(Debug)]
struct Ring {
    words: Box<[AtomicU64]>,
    head: AtomicU64,
    tail: AtomicU64,
    /// Newest capture time written.
    newest_ts: AtomicU64,
    /// Highest stream number (without the core) the core wrote.
    max_seq: AtomicU64,
    /// `seq << 2 | why` of the last eviction of a stream, by `seq % len`.
    evicted: Box<[AtomicU64]>,
    packets: AtomicU64,
    evicted_bytes: AtomicU64,
    evicted_age: AtomicU64,
    too_big: AtomicU64,
}

/// A record's header.
#[derive(Debug, Clone, Copy)]
struct Header {
    ts_ns: u64,
    stream: u64,
    caplen: u32,
    wire_len: u32,
    frag: u32,
    link: u32,
}

impl Header {
    fn words(&self) -> u64 {
        HEADER_WORDS + u64::from(self.caplen).div_ceil(8)
    }
}

fn zeroed(n: usize) -> Box<[AtomicU64]> {
    std::iter::repeat_with(|| AtomicU64::new(0)).take(n).collect()
}

impl Ring {
    fn new(capacity_words: usize) -> Ring {
        Ring {
            words: zeroed(capacity_words),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            newest_ts: AtomicU64::new(0),
            max_seq: AtomicU64::new(0),
            evicted: zeroed(EVICTION_SLOTS),
            packets: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
            evicted_age: AtomicU64::new(0),
            too_big: AtomicU64::new(0),
        }
    }

    fn cap(&self) -> u64 {
        self.words.len() as u64
    }

    #[inline]
    fn word(&self, pos: u64) -> u64 {
        let i = (pos % self.cap()) as usize;
        self.words.get(i).map_or(0, |w| w.load(Ordering::Relaxed))
    }

    #[inline]
    fn set(&self, pos: u64, v: u64) {
        let i = (pos % self.cap()) as usize;
        if let Some(w) = self.words.get(i) {
            w.store(v, Ordering::Relaxed);
        }
    }

    fn header(&self, pos: u64) -> Header {
        let lens = self.word(pos + 2);
        let tag = self.word(pos + 3);
        Header {
            ts_ns: self.word(pos),
            stream: self.word(pos + 1),
            caplen: lens as u32,
            wire_len: (lens >> 32) as u32,
            frag: tag as u32,
            link: (tag >> 32) as u32,
        }
    }

    /// Stores `data` as words from `pos` (the writer only).
    #[inline]
    fn store_bytes(&self, pos: u64, data: &[u8]) {
        let cap = self.cap();
        let start = (pos % cap) as usize;
        let n = data.len().div_ceil(8);
        let first = n.min(self.words.len() - start);
        let (a, b) = data.split_at((first * 8).min(data.len()));
        store_chunks(self.words.get(start..start + first).unwrap_or_default(), a);
        store_chunks(self.words.get(..n - first).unwrap_or_default(), b);
    }

    /// Copies `len` bytes stored from `pos`.
    fn load_bytes(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        let cap = self.cap();
        let start = (pos % cap) as usize;
        let n = len.div_ceil(8);
        let first = n.min(self.words.len() - start);
        out.reserve(n * 8);
        let mark = out.len();
        for w in self.words.get(start..start + first).unwrap_or_default() {
            out.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        for w in self.words.get(..n - first).unwrap_or_default() {
            out.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        out.truncate(mark + len);
    }

    /// Whether what was read from `pos` on may have been overwritten.
    #[inline]
    fn overwritten(&self, pos: u64) -> bool {
        fence(Ordering::Acquire);
        pos < self.tail.load(Ordering::Relaxed)
    }

    /// The headers of the retained records, oldest first, as of one moment.
    fn headers(&self) -> Vec<(u64, Header)> {
        let head = self.head.load(Ordering::Acquire);
        let mut pos = self.tail.load(Ordering::Acquire);
        let mut out: Vec<(u64, Header)> = Vec::new();
        while pos < head {
            let h = self.header(pos);
            if self.overwritten(pos) {
                // The writer lapped this reader: go on from its tail, and
                // forget what it has evicted since.
                pos = self.tail.load(Ordering::Relaxed);
                out.retain(|(p, _)| *p >= pos);
                continue;
            }
            let end = pos + h.words();
            if h.caplen as u64 > self.cap() * 8 || end > head {
                // Cannot be: a record is whole below `head`. Stop rather
                // than walk garbage.
                break;
            }
            out.push((pos, h));
            pos = end;
        }
        out
    }

    /// Copies the records of `picked` (from [`Self::headers`]) that are
    /// still retained, oldest first.
    fn copy(&self, core: u16, picked: &[(u64, Header)]) -> Vec<RetainedPacket> {
        let mut out = Vec::with_capacity(picked.len());
        for (pos, h) in picked {
            let mut data = Vec::new();
            self.load_bytes(pos + HEADER_WORDS, h.caplen as usize, &mut data);
            if self.overwritten(*pos) {
                // Evicted while copied: so was everything before it.
                out.clear();
                continue;
            }
            out.push(RetainedPacket {
                ts_ns: h.ts_ns,
                wire_len: h.wire_len,
                link: LinkType::from_pcap(h.link),
                stream: h.stream,
                core,
                data,
            });
        }
        out
    }

    fn stats(&self, core: usize) -> RetentionStats {
        let used =
            self.head.load(Ordering::Relaxed).saturating_sub(self.tail.load(Ordering::Relaxed));
        RetentionStats {
            core,
            capacity_bytes: self.cap() * 8,
            used_bytes: used * 8,
            packets: self.packets.load(Ordering::Relaxed),
            evicted_bytes: self.evicted_bytes.load(Ordering::Relaxed),
            evicted_age: self.evicted_age.load(Ordering::Relaxed),
            too_big: self.too_big.load(Ordering::Relaxed),
        }
    }
}

#[inline]
fn store_chunks(dst: &[AtomicU64], src: &[u8]) {
    let mut chunks = src.chunks_exact(8);
    let mut words = dst.iter();
    // Chunks first: `zip` takes from its first iterator first, so the word
    // for the remainder is not consumed when the chunks run out.
    for (c, w) in chunks.by_ref().zip(words.by_ref()) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
    let rest = chunks.remainder();
    if let (false, Some(w)) = (rest.is_empty(), words.next()) {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

/// The tag that ties a fragment to the others of its datagram: addresses,
/// protocol and IP ident (FNV-1a, folded to 32 bits; never 0).
pub fn fragment_tag(m: &PacketMeta) -> u32 {
    let Some(f) = m.fragment else { return 0 };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let alen = if m.ip_version == 6 { 16 } else { 4 };
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&m.src_ip[..alen]);
    eat(&m.dst_ip[..alen]);
    eat(&[u8::from(m.protocol)]);
    eat(&f.ident.to_le_bytes());
    ((h >> 32) as u32 ^ h as u32).max(1)
}

impl Retention {
    /// Rings for `cores` cores; each is allocated when its core's writer
    /// is made.
    pub fn new(cfg: RetentionConfig, cores: usize) -> Arc<Retention> {
        Arc::new(Retention {
            cfg,
            cores: (0..cores).map(|_| OnceLock::new()).collect(),
            misses: Default::default(),
            active: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> RetentionConfig {
        self.cfg
    }

    /// Starts keeping packets: until then the cores' writers do nothing
    /// (and no ring is allocated). Called when an agent that uses `pcap.*`
    /// is loaded, at an agent's first `pcap.*` call, or by what serves pcap
    /// downloads.
    pub fn activate(&self) {
        if self.cfg.is_on() {
            self.active.store(true, Ordering::Relaxed);
        }
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The writer of `core` (to be used on the core's own thread, where it
    /// allocates the ring when retention becomes active); `None` when
    /// retention is off or `core` is out of range.
    pub fn writer(self: &Arc<Self>, core: usize) -> Option<RetentionWriter> {
        if !self.cfg.is_on() || core >= self.cores.len() {
            return None;
        }
        Some(RetentionWriter { retention: self.clone(), core, ring: None })
    }

    /// `core`'s ring and its writer's state, the ring allocated if needed.
    fn ring_writer(&self, core: usize) -> RingWriter {
        let ring = match self.cores.get(core) {
            Some(c) => {
                c.get_or_init(|| Arc::new(Ring::new((self.cfg.bytes_per_core / 8) as usize)))
            }
            // `writer` checked the core.
            None => return RingWriter::detached(),
        }
        .clone();
        let (head, tail) = (ring.head.load(Ordering::Relaxed), ring.tail.load(Ordering::Relaxed));
        RingWriter {
            cap: ring.cap(),
            max_age_ns: self.cfg.max_age_ns,
            head,
            tail,
            max_seq: ring.max_seq.load(Ordering::Relaxed),
            counts: Counts {
                packets: ring.packets.load(Ordering::Relaxed),
                evicted_bytes: ring.evicted_bytes.load(Ordering::Relaxed),
                evicted_age: ring.evicted_age.load(Ordering::Relaxed),
                too_big: ring.too_big.load(Ordering::Relaxed),
            },
            ring,
        }
    }

    fn ring(&self, core: usize) -> Option<&Arc<Ring>> {
        self.cores.get(core).and_then(OnceLock::get)
    }

    /// Counters of every core; a core whose ring is not allocated yet
    /// (retention idle until an agent uses `pcap.*`) reads zeros, so the
    /// metrics families exist from the start.
    pub fn stats(&self) -> Vec<RetentionStats> {
        (0..self.cores.len())
            .map(|c| {
                self.ring(c)
                    .map_or(RetentionStats { core: c, ..RetentionStats::default() }, |r| r.stats(c))
            })
            .collect()
    }

    /// `pcap.path` misses so far, by [`Miss::reason`].
    pub fn misses(&self) -> Vec<(&'static str, u64)> {
        Miss::REASONS
            .iter()
            .zip(&self.misses)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
            .collect()
    }

    fn miss(&self, m: Miss) -> Miss {
        if let Some(n) = self.misses.get(m.index()) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        m
    }

    /// Why `stream` has no retained packet (and counted).
    fn why_missing(&self, stream: u64) -> Miss {
        if !self.cfg.is_on() {
            return self.miss(Miss::Off);
        }
        let (core, seq) = ((stream >> CORE_SHIFT) as usize, stream & SEQ_MASK);
        let Some(ring) = self.ring(core) else {
            let m = if core < self.cores.len() {
                Miss::Inactive(stream)
            } else {
                Miss::NeverSeen(stream)
            };
            return self.miss(m);
        };
        if seq == 0 || seq > ring.max_seq.load(Ordering::Relaxed) {
            return self.miss(Miss::NeverSeen(stream));
        }
        let slot = ring
            .evicted
            .get(seq as usize % EVICTION_SLOTS)
            .map_or(0, |s| s.load(Ordering::Relaxed));
        let m = match (slot >> 2 == seq, slot & 3) {
            (true, WHY_BYTES) => Miss::EvictedBytes(stream),
            (true, WHY_AGE) => Miss::EvictedAge(stream),
            _ => Miss::Evicted(stream),
        };
        self.miss(m)
    }

    /// The retained packets of `streams` (both directions, the fragments
    /// of their datagrams included), merged in capture order. The first
    /// stream with none is an error saying why.
    pub fn streams(&self, streams: &[u64]) -> Result<Vec<RetainedPacket>, Miss> {
        if !self.cfg.is_on() {
            return Err(self.miss(Miss::Off));
        }
        let mut per_core: Vec<Vec<RetainedPacket>> = Vec::new();
        let mut found = vec![false; streams.len()];
        for core in 0..self.cores.len() {
            let mine: Vec<u64> =
                streams.iter().copied().filter(|s| (s >> CORE_SHIFT) as usize == core).collect();
            let Some(ring) = self.ring(core).filter(|_| !mine.is_empty()) else { continue };
            let headers = ring.headers();
            let picked = pick_streams(&headers, &mine, self.cfg.fragment_window_ns);
            let packets = ring.copy(core as u16, &picked);
            for (i, s) in streams.iter().enumerate() {
                found[i] |= packets.iter().any(|p| p.stream == *s);
            }
            per_core.push(packets);
        }
        if let Some(i) = found.iter().position(|f| !f) {
            return Err(self.why_missing(streams[i]));
        }
        Ok(merge(per_core))
    }

    /// Every retained packet of every core (any protocol, with or without a
    /// stream), merged in capture order.
    pub fn all(&self) -> Vec<RetainedPacket> {
        self.select(|_| true)
    }

    /// The packets of the last `window_ns` of capture time, up to the newest
    /// packet any core holds.
    pub fn last(&self, window_ns: u64) -> Vec<RetainedPacket> {
        let newest = (0..self.cores.len())
            .filter_map(|c| self.ring(c))
            .map(|r| r.newest_ts.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let cutoff = newest.saturating_sub(window_ns);
        self.select(|h| h.ts_ns >= cutoff)
    }

    fn select(&self, keep: impl Fn(&Header) -> bool) -> Vec<RetainedPacket> {
        let per_core = (0..self.cores.len())
            .filter_map(|c| self.ring(c).map(|r| (c, r)))
            .map(|(c, r)| {
                let picked: Vec<(u64, Header)> =
                    r.headers().into_iter().filter(|(_, h)| keep(h)).collect();
                r.copy(c as u16, &picked)
            })
            .collect();
        merge(per_core)
    }
}

/// The records of `streams`, and the fragments that share a tag with one
/// of theirs and came at most `window` before it.
fn pick_streams(headers: &[(u64, Header)], streams: &[u64], window: u64) -> Vec<(u64, Header)> {
    let tagged: Vec<(u32, u64)> = headers
        .iter()
        .filter(|(_, h)| h.frag != 0 && streams.contains(&h.stream))
        .map(|(_, h)| (h.frag, h.ts_ns))
        .collect();
    headers
        .iter()
        .filter(|(_, h)| {
            streams.contains(&h.stream)
                || (h.stream == 0
                    && h.frag != 0
                    && tagged.iter().any(|(tag, ts)| {
                        *tag == h.frag && h.ts_ns <= *ts && ts - h.ts_ns <= window
                    }))
        })
        .copied()
        .collect()
}

/// Merges per-core lists (each in capture order) by capture time; equal
/// times keep core order.
fn merge(mut per_core: Vec<Vec<RetainedPacket>>) -> Vec<RetainedPacket> {
    per_core.retain(|v| !v.is_empty());
    if per_core.len() <= 1 {
        return per_core.pop().unwrap_or_default();
    }
    let total = per_core.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut iters: Vec<std::iter::Peekable<std::vec::IntoIter<RetainedPacket>>> =
        per_core.into_iter().map(|v| v.into_iter().peekable()).collect();
    loop {
        let next = iters
            .iter_mut()
            .enumerate()
            .filter_map(|(i, it)| it.peek().map(|p| (p.ts_ns, i)))
            .min()
            .map(|(_, i)| i);
        match next.and_then(|i| iters.get_mut(i)).and_then(Iterator::next) {
            Some(p) => out.push(p),
            None => break,
        }
    }
    out
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    packets: u64,
    evicted_bytes: u64,
    evicted_age: u64,
    too_big: u64,
}

/// A core's end of retention: the only writer of its ring. Lives on the
/// core's thread.
#[derive(Debug)]
pub struct RetentionWriter {
    retention: Arc<Retention>,
    core: usize,
    /// Made at the first packet kept.
    ring: Option<RingWriter>,
}

impl RetentionWriter {
    /// Whether packets are to be kept now (one relaxed load: the capture
    /// path's whole cost while no agent uses `pcap.*`).
    #[inline]
    pub fn wanted(&self) -> bool {
        self.retention.active.load(Ordering::Relaxed)
    }

    /// Keeps one packet. `stream` is the reassembler's stream for it (0:
    /// none), `frag` its [`fragment_tag`] (0: not a fragment).
    #[inline]
    pub fn push(
        &mut self,
        ts_ns: u64,
        stream: u64,
        frag: u32,
        link: LinkType,
        data: &[u8],
        wire_len: u32,
    ) {
        let w = match &mut self.ring {
            Some(w) => w,
            None => self.ring.insert(self.retention.ring_writer(self.core)),
        };
        w.push(ts_ns, stream, frag, link, data, wire_len);
    }
}

/// The writer's view of its ring.
#[derive(Debug)]
struct RingWriter {
    ring: Arc<Ring>,
    cap: u64,
    max_age_ns: u64,
    // The ring's positions and counters as this writer last stored them:
    // read here without touching the shared cache lines.
    head: u64,
    tail: u64,
    max_seq: u64,
    counts: Counts,
}

impl RingWriter {
    /// A writer of a ring of its own that nothing reads (cannot happen:
    /// [`Retention::writer`] checks the core).
    fn detached() -> RingWriter {
        let ring = Arc::new(Ring::new(HEADER_WORDS as usize + 8));
        RingWriter {
            cap: ring.cap(),
            max_age_ns: 0,
            head: 0,
            tail: 0,
            max_seq: 0,
            counts: Counts::default(),
            ring,
        }
    }

    #[inline]
    fn push(
        &mut self,
        ts_ns: u64,
        stream: u64,
        frag: u32,
        link: LinkType,
        data: &[u8],
        wire_len: u32,
    ) {
        let need = HEADER_WORDS + (data.len() as u64).div_ceil(8);
        if need > self.cap {
            self.counts.too_big += 1;
            self.ring.too_big.store(self.counts.too_big, Ordering::Relaxed);
            return;
        }
        let ring = &*self.ring;
        let (head, mut tail) = (self.head, self.tail);
        let end = head + need;
        while end - tail > self.cap {
            tail += evict(ring, &mut self.counts, tail, WHY_BYTES);
        }
        if self.max_age_ns > 0 {
            let cutoff = ts_ns.saturating_sub(self.max_age_ns);
            while tail < head && ring.word(tail) < cutoff {
                tail += evict(ring, &mut self.counts, tail, WHY_AGE);
            }
        }
        if tail != self.tail {
            self.tail = tail;
            ring.tail.store(tail, Ordering::Relaxed);
            // Readers that see any word written below must see this tail.
            fence(Ordering::Release);
            ring.evicted_bytes.store(self.counts.evicted_bytes, Ordering::Relaxed);
            ring.evicted_age.store(self.counts.evicted_age, Ordering::Relaxed);
        }
        ring.set(head, ts_ns);
        ring.set(head + 1, stream);
        ring.set(head + 2, data.len() as u64 | u64::from(wire_len) << 32);
        ring.set(head + 3, u64::from(frag) | u64::from(link.to_pcap()) << 32);
        ring.store_bytes(head + HEADER_WORDS, data);
        self.head = end;
        ring.head.store(end, Ordering::Release);
        self.counts.packets += 1;
        ring.packets.store(self.counts.packets, Ordering::Relaxed);
        if ts_ns > ring.newest_ts.load(Ordering::Relaxed) {
            ring.newest_ts.store(ts_ns, Ordering::Relaxed);
        }
        let seq = stream & SEQ_MASK;
        if seq > self.max_seq {
            self.max_seq = seq;
            ring.max_seq.store(seq, Ordering::Relaxed);
        }
    }
}

/// Evicts the record at `pos` (the writer only); returns its length in
/// words.
#[inline]
fn evict(ring: &Ring, counts: &mut Counts, pos: u64, why: u64) -> u64 {
    let h = ring.header(pos);
    let seq = h.stream & SEQ_MASK;
    if seq != 0 {
        if let Some(slot) = ring.evicted.get(seq as usize % EVICTION_SLOTS) {
            slot.store(seq << 2 | why, Ordering::Relaxed);
        }
    }
    if why == WHY_BYTES {
        counts.evicted_bytes += 1;
    } else {
        counts.evicted_age += 1;
    }
    h.words()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(bytes: u64, age_s: u64) -> RetentionConfig {
        RetentionConfig {
            bytes_per_core: bytes,
            max_age_ns: age_s * 1_000_000_000,
            fragment_window_ns: 30_000_000_000,
        }
    }

    fn frame(n: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| n.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn keeps_a_stream_in_order_across_wraps() {
        let r = Retention::new(cfg(4096, 0), 1);
        let mut w = r.writer(0).unwrap();
        // 40 packets of 61..100 bytes: the ring wraps several times.
        for i in 0..40u8 {
            let s = 1 + u64::from(i % 2);
            w.push(u64::from(i) * 1000, s, 0, LinkType::Ethernet, &frame(i, 61 + i as usize), 200);
        }
        let got = r.streams(&[2]).unwrap();
        assert!(!got.is_empty());
        for p in &got {
            let i = (p.ts_ns / 1000) as u8;
            assert_eq!(p.data, frame(i, 61 + i as usize));
            assert_eq!((p.stream, p.wire_len, p.link), (2, 200, LinkType::Ethernet));
        }
        // The newest packets, consecutive, up to the last one of stream 2.
        let ts: Vec<u64> = got.iter().map(|p| p.ts_ns / 1000).collect();
        assert_eq!(*ts.last().unwrap(), 39);
        assert!(ts.windows(2).all(|w| w[1] == w[0] + 2), "{ts:?}");
        let st = r.stats()[0];
        assert_eq!(st.packets, 40);
        assert!(st.evicted_bytes > 0 && st.used_bytes <= 4096);
        // Stream 1's oldest packets went for room, stream 99 never was.
        assert_eq!(r.streams(&[99]).unwrap_err(), Miss::NeverSeen(99));
    }

    #[test]
    fn says_why_a_stream_is_gone() {
        let r = Retention::new(cfg(1024, 0), 1);
        let mut w = r.writer(0).unwrap();
        w.push(1, 1, 0, LinkType::Ethernet, &frame(1, 100), 100);
        for i in 0..20 {
            w.push(2 + i, 2, 0, LinkType::Ethernet, &frame(2, 100), 100);
        }
        assert_eq!(r.streams(&[1]).unwrap_err(), Miss::EvictedBytes(1));
        let aged = Retention::new(cfg(1 << 16, 1), 1);
        let mut w = aged.writer(0).unwrap();
        w.push(0, 1, 0, LinkType::Ethernet, &frame(1, 60), 60);
        w.push(2_000_000_000, 2, 0, LinkType::Ethernet, &frame(2, 60), 60);
        assert_eq!(aged.streams(&[1]).unwrap_err(), Miss::EvictedAge(1));
        assert_eq!(aged.streams(&[2]).unwrap().len(), 1);
        assert_eq!(aged.stats()[0].evicted_age, 1);
        let off = Retention::new(cfg(0, 0), 1);
        assert!(off.writer(0).is_none());
        let idle = Retention::new(cfg(1 << 16, 0), 2);
        let w = idle.writer(1).unwrap();
        assert!(!w.wanted());
        assert_eq!(idle.streams(&[1]).unwrap_err(), Miss::Inactive(1));
        idle.activate();
        assert!(w.wanted());
        assert!(idle.writer(2).is_none());
        assert_eq!(off.streams(&[1]).unwrap_err(), Miss::Off);
        let misses: u64 = r.misses().iter().map(|(_, n)| n).sum();
        assert_eq!(misses, 1);
    }

    #[test]
    fn a_frame_bigger_than_the_ring_is_counted_not_kept() {
        let r = Retention::new(cfg(256, 0), 1);
        let mut w = r.writer(0).unwrap();
        w.push(1, 1, 0, LinkType::Ethernet, &frame(0, 1500), 1500);
        assert_eq!(r.stats()[0].too_big, 1);
        assert!(r.all().is_empty());
    }

    #[test]
    fn fragments_join_their_datagram_and_cores_merge_by_time() {
        let r = Retention::new(cfg(1 << 16, 0), 2);
        let (mut w0, mut w1) = (r.writer(0).unwrap(), r.writer(1).unwrap());
        let s1 = (1u64 << CORE_SHIFT) | 1;
        w1.push(10, 0, 77, LinkType::RawIp, &frame(1, 20), 20); // first fragment
        w0.push(15, 1, 0, LinkType::RawIp, &frame(2, 20), 20);
        w1.push(20, s1, 77, LinkType::RawIp, &frame(3, 20), 20); // completes it
        w1.push(25, 0, 78, LinkType::RawIp, &frame(4, 20), 20); // another datagram
        let got = r.streams(&[1, s1]).unwrap();
        let ts: Vec<u64> = got.iter().map(|p| p.ts_ns).collect();
        assert_eq!(ts, vec![10, 15, 20]);
        assert_eq!(r.all().len(), 4);
        assert_eq!(r.last(10).iter().map(|p| p.ts_ns).collect::<Vec<_>>(), vec![15, 20, 25]);
    }

    #[test]
    fn readers_racing_the_writer_see_whole_packets() {
        use std::sync::atomic::AtomicBool;
        let r = Retention::new(cfg(8192, 0), 1);
        let mut w = r.writer(0).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (r, done) = (r.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut seen, mut reads) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    for p in r.all() {
                        let n = p.data[0];
                        assert_eq!(p.data, frame(n, p.data.len()), "torn packet");
                        assert_eq!(p.stream, u64::from(n % 7) + 1);
                        seen += 1;
                    }
                    reads += 1;
                }
                seen
            })
        };
        for i in 0..2_000_000u64 {
            let n = (i % 251) as u8;
            w.push(
                i,
                u64::from(n % 7) + 1,
                0,
                LinkType::Ethernet,
                &frame(n, 40 + (i % 90) as usize),
                0,
            );
        }
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }
}
