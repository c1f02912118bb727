//! [`Reassembler`]: the one entry point a dataplane core calls.
//!
//! Owns, per core and without locks: the flow table, fragment reassembly,
//! per-flow TCP state and dissector sessions, and the counters. Invariants:
//! all time comes from packet timestamps (`now` never goes backwards); every
//! flow that leaves the table (close, timeout, eviction, `finish`) first
//! delivers its holes as gaps and lets its dissector emit every open
//! transaction, so no request is silently lost; per-core out-of-order memory
//! stays under `max_ooo_bytes_per_core`.

use crate::config::{AppProtocol, ReassemblyConfig};
use crate::counters::{DissectionErrors, ReassemblyCounters};
use crate::dissectors::{
    Confidence, Direction, FinishReason, Limits, ParseCtx, Session, StreamBuf,
};
use crate::flow::{FlowKey, FlowTable, Side, TimerClass};
use crate::frag::FragmentTable;
use crate::item::{Endpoint, Exchange, Item, Layer4};
use crate::packet::{ip_proto, parse_l4, tcp_flags, Packet};
use crate::seq::SeqNumber;
use crate::tcp::{Chunk, OooBuf, TcpCtx, TcpHalf};

const NS_PER_MS: u64 = 1_000_000;
/// How much capture time passes between the expiry sweeps packets make:
/// a flow is ended at most this late past its timeout.
const SWEEP_EVERY_NS: u64 = NS_PER_MS;
/// Flow extensions kept for reuse; past it they are freed.
const EXT_POOL_MAX: usize = 1024;
/// Bytes of a direction held for probing before a flow is left undissected.
const PROBE_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowState {
    HalfOpen,
    Established,
    Closed,
    Udp,
}

/// Heap part of a flow, allocated (from a pool) once it carries payload.
#[derive(Default)]
struct FlowExt {
    ooo: [OooBuf; 2],
    bufs: [StreamBuf; 2],
    session: Option<Session>,
    probes: u8,
    gave_up: bool,
    /// Gap bytes per direction seen before a dissector was chosen; replayed
    /// to it so a request lost at the start still shifts the pairing.
    early_gap: [u32; 2],
}

/// What the flow table holds per flow. Kept small: an idle flow is this
/// plus its table slot (see the size test).
struct Flow {
    stream: u64,
    tcp: [TcpHalf; 2],
    ext: Option<Box<FlowExt>>,
    items: u32,
    client: Side,
    roles_known: bool,
    state: FlowState,
    finished: bool,
}

impl Flow {
    fn class(&self) -> TimerClass {
        match self.state {
            FlowState::HalfOpen => TimerClass::HalfOpen,
            FlowState::Established => TimerClass::Established,
            FlowState::Closed => TimerClass::Closed,
            FlowState::Udp => TimerClass::Udp,
        }
    }

    fn dir(&self, side: Side) -> Direction {
        if side == self.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Evicted,
    Expired,
    Finish,
}

/// Everything a chunk delivery needs besides the flow (disjoint from the
/// flow table, so both can be borrowed at once).
struct Env<'a> {
    out: &'a mut Vec<Exchange>,
    errors: &'a mut DissectionErrors,
    limits: &'a Limits,
    /// Bit `p as usize` set when protocol `p` is enabled.
    enabled: u64,
    max_probes: u8,
    max_buf: usize,
    undetected: &'a mut u64,
}

impl Env<'_> {
    fn ctx(&mut self, ts_ns: u64) -> ParseCtx<'_> {
        ParseCtx { ts_ns, out: self.out, errors: self.errors, limits: self.limits }
    }

    fn enabled(&self, p: AppProtocol) -> bool {
        self.enabled & (1 << p as u64) != 0
    }
}

/// Delivers one in-order chunk of `side`'s stream to the flow's dissector,
/// detecting the protocol (and, without a handshake, the roles) by content.
fn deliver(
    ext: &mut FlowExt,
    client: &mut Side,
    roles_known: bool,
    side: Side,
    chunk: Chunk<'_>,
    env: &mut Env<'_>,
) {
    let dir = |c: Side| if side == c { Direction::ToServer } else { Direction::ToClient };
    match chunk {
        Chunk::Gap(len) => {
            let d = dir(*client);
            match ext.session.as_mut() {
                Some(s) => {
                    if let Some(b) = ext.bufs.get_mut(d.idx()) {
                        b.clear();
                    }
                    s.on_gap(d, len, &mut env.ctx(0));
                }
                None => {
                    if let Some(g) = ext.early_gap.get_mut(d.idx()) {
                        *g = g.saturating_add(len);
                    }
                }
            }
        }
        Chunk::Data(bytes, ts) => {
            let mut held_data: Option<Vec<u8>> = None;
            if ext.session.is_none() {
                if ext.gave_up {
                    return;
                }
                let d = dir(*client);
                let Some(buf) = ext.bufs.get_mut(d.idx()) else { return };
                // A probe sees what this direction carried so far, so a
                // method split over segments ("G" + "ET /") is still found.
                let held = !buf.is_empty();
                if held {
                    buf.hold(bytes, PROBE_BYTES);
                }
                let probe_bytes = if held { buf.bytes() } else { bytes };
                let mut best = (Confidence::None, false, AppProtocol::Http);
                let flips: &[bool] = if roles_known { &[false] } else { &[false, true] };
                'probe: for &flip in flips {
                    let pd = if flip { d.other() } else { d };
                    for p in AppProtocol::ALL {
                        if !env.enabled(p) {
                            continue;
                        }
                        // A probe that says nothing about roles (DNS over
                        // TCP) is tried as sent, never flipped.
                        if flip && !p.probe_roles() {
                            continue;
                        }
                        let c = p.probe(probe_bytes, pd);
                        if c > best.0 {
                            best = (c, flip, p);
                            // Only a higher confidence replaces the best,
                            // and none is higher: the other probes are moot.
                            if c == Confidence::High {
                                break 'probe;
                            }
                        }
                    }
                }
                if best.0 < Confidence::Medium {
                    if !held {
                        buf.hold(bytes, PROBE_BYTES);
                    }
                    ext.probes = ext.probes.saturating_add(1);
                    if ext.probes >= env.max_probes || buf.len() >= PROBE_BYTES {
                        ext.gave_up = true;
                        *env.undetected += 1;
                        for b in &mut ext.bufs {
                            b.clear();
                        }
                    }
                    return;
                }
                if held {
                    held_data = Some(buf.take());
                }
                if best.1 {
                    *client = client.other();
                    ext.bufs.swap(0, 1);
                }
                let mut session = Session::new(best.2, true);
                for gd in [Direction::ToServer, Direction::ToClient] {
                    // Early gaps were recorded before any role flip.
                    let idx = if best.1 { gd.other().idx() } else { gd.idx() };
                    let g = ext.early_gap.get(idx).copied().unwrap_or(0);
                    if g > 0 {
                        session.on_gap(gd, g, &mut env.ctx(ts));
                    }
                }
                ext.early_gap = [0; 2];
                ext.session = Some(session);
            }
            let bytes = held_data.as_deref().unwrap_or(bytes);
            let d = dir(*client);
            let max_buf = env.max_buf;
            if let (Some(s), Some(b)) = (ext.session.as_mut(), ext.bufs.get_mut(d.idx())) {
                s.drive(b, d, bytes, max_buf, &mut env.ctx(ts));
            }
            if let Some(s) = ext.session.as_mut() {
                s.handover(&mut ext.bufs, max_buf, &mut env.ctx(ts));
            }
        }
    }
}

pub struct Reassembler {
    cfg: ReassemblyConfig,
    limits: Limits,
    core: u16,
    table: FlowTable<Flow>,
    frags: FragmentTable,
    counters: ReassemblyCounters,
    mem_used: u64,
    next_stream: u64,
    /// Stream of the flow the last packet belonged to (0: none), for
    /// per-stream packet retention (`last_stream`).
    last_stream: u64,
    now_ns: u64,
    /// Capture time from which a packet sweeps for expired flows again.
    next_sweep_ns: u64,
    exchanges: Vec<Exchange>,
    // Boxed: the same allocation moves between the pool and a flow slot.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<FlowExt>>,
    /// Bit `p as usize` set when protocol `p` is enabled.
    enabled: u64,
}

impl Reassembler {
    pub fn new(cfg: &ReassemblyConfig, core: u16) -> Self {
        Reassembler {
            limits: Limits::from(cfg),
            core,
            table: FlowTable::new(cfg.max_flows),
            frags: FragmentTable::new(
                cfg.max_fragment_datagrams,
                cfg.max_fragment_bytes,
                cfg.fragment_timeout_ms.saturating_mul(NS_PER_MS),
            ),
            counters: ReassemblyCounters::default(),
            mem_used: 0,
            next_stream: 0,
            last_stream: 0,
            now_ns: 0,
            next_sweep_ns: 0,
            exchanges: Vec::with_capacity(16),
            pool: Vec::new(),
            enabled: cfg.protocols.iter().fold(0, |m, p| m | 1 << *p as u64),
            cfg: cfg.clone(),
        }
    }

    pub fn counters(&self) -> &ReassemblyCounters {
        &self.counters
    }

    /// Flows currently tracked.
    pub fn flows(&self) -> usize {
        self.table.len()
    }

    /// Out-of-order bytes buffered on this core (with per-segment overhead).
    pub fn ooo_memory(&self) -> u64 {
        self.mem_used
    }

    /// Bytes one idle tracked flow costs (flow state + its table slot).
    pub fn bytes_per_idle_flow() -> usize {
        FlowTable::<Flow>::bytes_per_flow()
    }

    /// The stream (`Item::stream`) of the flow the last packet given to
    /// [`Self::packet`] belonged to; 0 when it started or joined no flow
    /// (not TCP/UDP, a lone ACK or RST, a fragment of a datagram still
    /// incomplete). The fragment that completes a datagram gets the
    /// datagram's stream.
    #[inline]
    pub fn last_stream(&self) -> u64 {
        self.last_stream
    }

    /// Processes one packet; completed items are passed to `out`.
    pub fn packet(&mut self, pkt: &Packet<'_>, out: &mut impl FnMut(Item)) {
        self.counters.packets += 1;
        self.last_stream = 0;
        if pkt.ts_ns >= self.next_sweep_ns {
            self.advance(pkt.ts_ns, out);
        }
        if pkt.fragment.is_some() {
            let Some(datagram) = self.frags.add(pkt, &mut self.counters) else { return };
            match parse_l4(pkt.protocol, &datagram) {
                Some(l4) => {
                    let whole = Packet {
                        src_port: l4.src_port,
                        dst_port: l4.dst_port,
                        tcp_flags: l4.flags,
                        seq: l4.seq,
                        ack: l4.ack,
                        payload: datagram.get(l4.header_len..).unwrap_or_default(),
                        fragment: None,
                        ..*pkt
                    };
                    self.l4(&whole, out);
                }
                None => self.counters.packets_ignored += 1,
            }
            self.frags.recycle(datagram);
            return;
        }
        self.l4(pkt, out);
    }

    fn l4(&mut self, pkt: &Packet<'_>, out: &mut impl FnMut(Item)) {
        match pkt.protocol {
            ip_proto::TCP => self.tcp(pkt, out),
            ip_proto::UDP => self.udp(pkt, out),
            _ => self.counters.packets_ignored += 1,
        }
    }

    /// Expires flows and fragments idle past their timeouts at `now_ns`.
    /// Packets call this themselves at most once per `SWEEP_EVERY_NS` of
    /// capture time (timeouts are seconds; a sweep per packet cost about
    /// a hundred instructions each); a call from outside always sweeps.
    pub fn advance(&mut self, now_ns: u64, out: &mut impl FnMut(Item)) {
        self.now_ns = self.now_ns.max(now_ns);
        let now = self.now_ns;
        self.next_sweep_ns = now.saturating_add(SWEEP_EVERY_NS);
        let timeouts = [
            (TimerClass::HalfOpen, self.cfg.half_open_timeout_ms),
            (TimerClass::Closed, self.cfg.closed_timeout_ms),
            (TimerClass::Udp, self.cfg.udp_timeout_ms),
            (TimerClass::Established, self.cfg.idle_timeout_ms),
        ];
        for (class, ms) in timeouts {
            while let Some(id) = self.table.expired(class, now, ms.saturating_mul(NS_PER_MS)) {
                self.end_flow(id, EndReason::Expired, out);
            }
        }
        self.frags.expire(now, &mut self.counters);
    }

    /// End of capture: finishes every flow (open requests become items with
    /// a timeout error) and drops incomplete datagrams.
    pub fn finish(&mut self, out: &mut impl FnMut(Item)) {
        for id in self.table.ids() {
            self.end_flow(id, EndReason::Finish, out);
        }
        self.frags.clear(&mut self.counters);
    }

    /// Alias of [`Self::finish`], named as in the brief (`flush_all`).
    pub fn flush_all(&mut self, out: &mut impl FnMut(Item)) {
        self.finish(out);
    }

    fn env(
        &mut self,
    ) -> (Env<'_>, &mut FlowTable<Flow>, &mut u64, &mut crate::counters::TcpCounters) {
        (
            Env {
                out: &mut self.exchanges,
                errors: &mut self.counters.dissection_errors,
                limits: &self.limits,
                enabled: self.enabled,
                max_probes: self.cfg.max_probe_segments.max(1),
                max_buf: self.cfg.max_message_buffer_bytes as usize,
                undetected: &mut self.counters.flows_undetected,
            },
            &mut self.table,
            &mut self.mem_used,
            &mut self.counters.tcp,
        )
    }

    fn take_ext(&mut self) -> Box<FlowExt> {
        self.pool.pop().unwrap_or_default()
    }

    fn recycle(&mut self, mut ext: Box<FlowExt>) {
        if self.pool.len() >= EXT_POOL_MAX {
            return;
        }
        ext.session = None;
        ext.probes = 0;
        ext.gave_up = false;
        ext.early_gap = [0; 2];
        for b in &mut ext.bufs {
            *b = StreamBuf::default();
        }
        for o in &mut ext.ooo {
            if !o.is_empty() {
                *o = OooBuf::default();
            }
        }
        self.pool.push(ext);
    }

    /// Makes room if needed and inserts a new flow.
    fn create(
        &mut self,
        key: FlowKey,
        flow: Flow,
        ts: u64,
        out: &mut impl FnMut(Item),
    ) -> Option<u32> {
        if self.table.is_full() {
            self.counters.flow_table_full += 1;
            if let Some(victim) = self.table.victim() {
                self.end_flow(victim, EndReason::Evicted, out);
            }
        }
        let class = flow.class();
        let id = self.table.insert(key, flow, class, ts).ok()?;
        self.counters.flows_created += 1;
        Some(id)
    }

    fn new_flow(&mut self, client: Side, roles_known: bool, state: FlowState) -> Flow {
        self.next_stream += 1;
        Flow {
            stream: (u64::from(self.core) << 48) | self.next_stream,
            tcp: [TcpHalf::default(); 2],
            ext: None,
            items: 0,
            client,
            roles_known,
            state,
            finished: false,
        }
    }

    fn tcp(&mut self, pkt: &Packet<'_>, out: &mut impl FnMut(Item)) {
        let (key, side) = FlowKey::from_packet(pkt);
        let syn = pkt.has_flag(tcp_flags::SYN);
        let ack = pkt.has_flag(tcp_flags::ACK);
        let rst = pkt.has_flag(tcp_flags::RST);
        let fin = pkt.has_flag(tcp_flags::FIN);
        let mut id = self.table.lookup(&key);
        if let Some(existing) = id {
            let closed = self.table.get(existing).is_some_and(|f| f.state == FlowState::Closed);
            if syn && !ack && closed {
                // Port reuse: a new connection on the 5-tuple of a closed one.
                self.end_flow(existing, EndReason::Expired, out);
                id = None;
            }
        }
        let id = match id {
            Some(id) => id,
            None => {
                if rst || (pkt.payload.is_empty() && !syn && !fin) {
                    self.counters.packets_without_flow += 1;
                    return;
                }
                let (client, known) = if syn && !ack {
                    (side, true)
                } else if syn {
                    (side.other(), true)
                } else {
                    // Mid-stream: guess the server is the lower port; the
                    // first payload's content may still flip it.
                    let server =
                        if key.port(side) < key.port(side.other()) { side } else { side.other() };
                    (server.other(), false)
                };
                let state = if syn && pkt.payload.is_empty() {
                    FlowState::HalfOpen
                } else {
                    FlowState::Established
                };
                let flow = self.new_flow(client, known, state);
                match self.create(key, flow, pkt.ts_ns, out) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        if let Some(f) = self.table.get(id) {
            self.last_stream = f.stream;
        }
        let needs_ext = !pkt.payload.is_empty() || fin || rst;
        if needs_ext && self.table.get(id).is_some_and(|f| f.ext.is_none() && !f.finished) {
            let ext = self.take_ext();
            if let Some(f) = self.table.get_mut(id) {
                f.ext = Some(ext);
            }
        }
        let per_flow = self.cfg.max_ooo_bytes_per_flow;
        let per_core = self.cfg.max_ooo_bytes_per_core;
        let (mut env, table, mem, tcp_counters) = self.env();
        let Some(flow) = table.get_mut(id) else { return };
        let seq = SeqNumber(pkt.seq);
        let si = side.idx();
        if syn {
            if let Some(h) = flow.tcp.get_mut(si) {
                if !h.syn_seen() {
                    h.syn(seq);
                }
            }
            if ack && flow.state == FlowState::HalfOpen {
                flow.state = FlowState::Established;
            }
        }
        let data_seq = if syn { seq + 1 } else { seq };
        if !pkt.payload.is_empty() && flow.state == FlowState::HalfOpen {
            flow.state = FlowState::Established;
        }
        if let (Some(ext), false) = (flow.ext.as_deref_mut(), flow.finished) {
            let mut ctx = TcpCtx { mem_used: mem, per_flow, per_core, counters: tcp_counters };
            let (client, known) = (&mut flow.client, flow.roles_known);
            let FlowExt { ooo, .. } = ext;
            let [ooo_lo, ooo_hi] = ooo;
            let (mine, theirs) = if side == Side::Lo { (ooo_lo, ooo_hi) } else { (ooo_hi, ooo_lo) };
            let (h_lo, h_hi) = flow.tcp.split_at_mut(1);
            let (Some(h_lo), Some(h_hi)) = (h_lo.first_mut(), h_hi.first_mut()) else { return };
            let (half, peer) = if side == Side::Lo { (h_lo, h_hi) } else { (h_hi, h_lo) };
            // Split borrows: the out-of-order buffers are moved out of `ext`
            // for the call, the rest of `ext` goes to the dissector.
            let mut mine_buf = std::mem::take(mine);
            let mut theirs_buf = std::mem::take(theirs);
            if !ext.gave_up {
                // The ACK first: the peer's data it covers came before this
                // packet's payload (a request before its response).
                if ack && !theirs_buf.is_empty() {
                    peer.acked(&mut theirs_buf, SeqNumber(pkt.ack), &mut ctx, &mut |c| {
                        deliver(ext, client, known, side.other(), c, &mut env)
                    });
                }
                half.segment(&mut mine_buf, data_seq, pkt.payload, pkt.ts_ns, &mut ctx, &mut |c| {
                    deliver(ext, client, known, side, c, &mut env)
                });
            } else if !mine_buf.is_empty() || !theirs_buf.is_empty() {
                TcpHalf::discard(&mut mine_buf, &mut ctx);
                TcpHalf::discard(&mut theirs_buf, &mut ctx);
            }
            if fin {
                half.fin(data_seq, pkt.payload.len() as u32);
            }
            let FlowExt { ooo, session, .. } = ext;
            let [lo, hi] = ooo;
            if side == Side::Lo {
                mine_buf.put_back(lo);
                theirs_buf.put_back(hi);
            } else {
                mine_buf.put_back(hi);
                theirs_buf.put_back(lo);
            }
            // A direction ends when its FIN is reached (or, undissected, seen).
            for (s, h) in [(side, &mut *half), (side.other(), &mut *peer)] {
                let reached = h.fin_reached() || (session.is_none() && h.fin_seen());
                if reached && !h.ended() {
                    h.set_ended();
                    let d = if s == *client { Direction::ToServer } else { Direction::ToClient };
                    if let Some(sess) = session.as_mut() {
                        sess.on_end(d, &mut env.ctx(pkt.ts_ns));
                    }
                }
            }
            let both_ended = half.ended() && peer.ended();
            if rst || both_ended {
                flow.state = FlowState::Closed;
            }
        } else if fin || rst {
            flow.state = FlowState::Closed;
        }
        if self.table.get(id).is_some_and(|f| f.state == FlowState::Closed && !f.finished) {
            self.close_flow(id);
        }
        if let Some(f) = self.table.get(id) {
            let class = f.class();
            self.table.touch(id, class, pkt.ts_ns);
        }
        self.emit(id, out);
    }

    /// FIN both ways or RST: deliver holes as gaps, end the dissector with
    /// `Closed`, free the heap part; the slot stays for `closed_timeout_ms`.
    fn close_flow(&mut self, id: u32) {
        let (mut env, table, mem, tcp_counters) = self.env();
        let Some(flow) = table.get_mut(id) else { return };
        flow.finished = true;
        let Some(mut ext) = flow.ext.take() else { return };
        finish_ext(flow, &mut ext, FinishReason::Closed, &mut env, mem, tcp_counters, u64::MAX);
        self.recycle(ext);
    }

    fn end_flow(&mut self, id: u32, reason: EndReason, out: &mut impl FnMut(Item)) {
        let closed = self.table.get(id).is_some_and(|f| f.state == FlowState::Closed);
        let (mut env, table, mem, tcp_counters) = self.env();
        let Some(flow) = table.get_mut(id) else { return };
        let ext = flow.ext.take();
        if let Some(mut ext) = ext {
            let why = if closed { FinishReason::Closed } else { FinishReason::Timeout };
            finish_ext(flow, &mut ext, why, &mut env, mem, tcp_counters, u64::MAX);
            self.recycle(ext);
        }
        let removed = self.table.remove(id);
        if let Some((key, flow)) = removed {
            self.emit_for(&key, &flow, out);
        }
        match reason {
            EndReason::Evicted => self.counters.flows_evicted += 1,
            EndReason::Expired if closed => self.counters.flows_closed += 1,
            EndReason::Expired => self.counters.flows_expired += 1,
            EndReason::Finish => {}
        }
    }

    fn udp(&mut self, pkt: &Packet<'_>, out: &mut impl FnMut(Item)) {
        let (key, side) = FlowKey::from_packet(pkt);
        let id = match self.table.lookup(&key) {
            Some(id) => id,
            None => {
                if pkt.payload.is_empty() {
                    self.counters.packets_without_flow += 1;
                    return;
                }
                // The protocol may say who asked (DNS's QR bit);
                // otherwise the lower port serves.
                let from_client = datagram_protocol(u64::MAX, pkt.payload)
                    .and_then(|p| p.datagram_from_client(pkt.payload));
                let client = match from_client {
                    Some(true) => side,
                    Some(false) => side.other(),
                    None => {
                        if key.port(side) < key.port(side.other()) {
                            side.other()
                        } else {
                            side
                        }
                    }
                };
                let flow = self.new_flow(client, true, FlowState::Udp);
                match self.create(key, flow, pkt.ts_ns, out) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        if let Some(f) = self.table.get(id) {
            self.last_stream = f.stream;
        }
        if self.table.get(id).is_some_and(|f| f.ext.is_none()) && !pkt.payload.is_empty() {
            let ext = self.take_ext();
            if let Some(f) = self.table.get_mut(id) {
                f.ext = Some(ext);
            }
        }
        let (mut env, table, _, _) = self.env();
        if let Some(flow) = table.get_mut(id) {
            let dir = flow.dir(side);
            if let Some(ext) = flow.ext.as_deref_mut() {
                if ext.session.is_none() && !ext.gave_up {
                    if let Some(p) = datagram_protocol(env.enabled, pkt.payload) {
                        ext.session = Some(Session::new(p, false));
                    } else {
                        ext.probes = ext.probes.saturating_add(1);
                        if ext.probes >= env.max_probes {
                            ext.gave_up = true;
                            *env.undetected += 1;
                        }
                    }
                }
                if let Some(s) = ext.session.as_mut() {
                    s.datagram(pkt.payload, dir, &mut env.ctx(pkt.ts_ns));
                }
            }
        }
        self.table.touch(id, TimerClass::Udp, pkt.ts_ns);
        self.emit(id, out);
    }

    fn emit(&mut self, id: u32, out: &mut impl FnMut(Item)) {
        if self.exchanges.is_empty() {
            return;
        }
        let Some(key) = self.table.key(id).copied() else { return };
        let Some(flow) = self.table.get_mut(id) else { return };
        let (client, stream, first) = (flow.client, flow.stream, flow.items);
        flow.items += self.exchanges.len() as u32;
        self.emit_items(&key, client, stream, first, out);
    }

    fn emit_for(&mut self, key: &FlowKey, flow: &Flow, out: &mut impl FnMut(Item)) {
        self.emit_items(key, flow.client, flow.stream, flow.items, out);
    }

    fn emit_items(
        &mut self,
        key: &FlowKey,
        client: Side,
        stream: u64,
        first: u32,
        out: &mut impl FnMut(Item),
    ) {
        let layer4 = if key.protocol == ip_proto::UDP { Layer4::Udp } else { Layer4::Tcp };
        for (i, ex) in self.exchanges.drain(..).enumerate() {
            let protocol = ex
                .request
                .as_ref()
                .or(ex.response.as_ref())
                .map_or(AppProtocol::Http, crate::item::Message::protocol);
            self.counters.items.bump(protocol);
            out(Item {
                stream,
                index: first + i as u32,
                core: self.core,
                protocol,
                layer4,
                ip_version: key.ip_version,
                src: Endpoint::new(key.ip_version, key.ip(client), key.port(client)),
                dst: Endpoint::new(
                    key.ip_version,
                    key.ip(client.other()),
                    key.port(client.other()),
                ),
                exchange: Box::new(ex),
                passed: false,
                failed: false,
            });
        }
    }
}

/// The first protocol among `enabled` (a bit per `AppProtocol`) that a UDP
/// datagram probes as.
fn datagram_protocol(enabled: u64, payload: &[u8]) -> Option<AppProtocol> {
    AppProtocol::ALL.into_iter().find(|&p| {
        enabled & (1 << p as u64) != 0 && p.probe_datagram(payload) >= Confidence::Medium
    })
}

/// Flushes both directions' holes as gaps, ends them, and finishes the
/// dissector. Used on close, timeout, eviction and end of capture.
fn finish_ext(
    flow: &mut Flow,
    ext: &mut FlowExt,
    why: FinishReason,
    env: &mut Env<'_>,
    mem: &mut u64,
    tcp_counters: &mut crate::counters::TcpCounters,
    per_core: u64,
) {
    let mut ctx = TcpCtx { mem_used: mem, per_flow: u32::MAX, per_core, counters: tcp_counters };
    let known = flow.roles_known;
    for side in [Side::Lo, Side::Hi] {
        let mut buf = std::mem::take(&mut ext.ooo[side.idx()]);
        if let Some(h) = flow.tcp.get_mut(side.idx()) {
            if ext.gave_up {
                TcpHalf::discard(&mut buf, &mut ctx);
            } else {
                let client = &mut flow.client;
                h.flush(&mut buf, &mut ctx, &mut |c| deliver(ext, client, known, side, c, env));
            }
            if !h.ended() {
                h.set_ended();
                let d = flow.dir(side);
                if let Some(s) = ext.session.as_mut() {
                    s.on_end(d, &mut env.ctx(0));
                }
            }
        }
    }
    if let Some(s) = ext.session.as_mut() {
        s.finish(why, &mut env.ctx(0));
    }
}

#[cfg(test)]
#[path = "reassembler_tests.rs"]
mod tests;
