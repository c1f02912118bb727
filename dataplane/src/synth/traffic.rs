//! A seeded traffic generator: many concurrent HTTP/1.1 keep-alive
//! connections with a realistic spread of sizes (small API calls to large
//! downloads), DNS lookups over UDP, optional segment loss and reordering.
//!
//! Connections are interleaved packet by packet, as on a real link: a pool
//! of `concurrent` open connections, each step sending the next packet of
//! one of them picked at random. Timestamps advance by each frame's time on
//! a link of `link_gbps`, so a capture replayed at recorded pace offers that
//! load. Everything derives from `seed`: the same spec gives the same bytes.
//!
//! [`Summary`] is what was generated, counted independently of any
//! dissector (exchanges, requests per host, bytes), so tests and benchmarks
//! can check what a pipeline found against it.

use std::collections::{BTreeMap, VecDeque};
use std::io;

use super::{tcp4, Packet, PcapNgWriter, PcapWriter, Rng};
use crate::wire::LinkType;

/// What to generate.
#[derive(Debug, Clone)]
pub struct TrafficSpec {
    pub seed: u64,
    /// HTTP exchanges (request/response pairs) in total.
    pub exchanges: u32,
    /// Connections open at once.
    pub concurrent: u32,
    /// Most exchanges one keep-alive connection carries (1 = one per
    /// connection); each connection draws between 1 and this.
    pub keepalive_max: u32,
    /// DNS lookups per 1000 HTTP exchanges.
    pub dns_per_mille: u32,
    /// Probability that a TCP data segment is lost (never delivered).
    pub loss: f64,
    /// Probability that a TCP data segment swaps places with the next
    /// segment of its connection.
    pub reorder: f64,
    /// Response size mix.
    pub mix: SizeMix,
    /// TCP maximum segment size.
    pub mss: usize,
    /// Capture time of the first packet, ns since the epoch.
    pub start_ns: u64,
    /// The link speed timestamps are spaced for.
    pub link_gbps: f64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            exchanges: 10_000,
            concurrent: 256,
            keepalive_max: 8,
            dns_per_mille: 50,
            loss: 0.0,
            reorder: 0.0,
            mix: SizeMix::Mixed,
            mss: 1448,
            start_ns: 1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
            link_gbps: 10.0,
        }
    }
}

/// How response bodies are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeMix {
    /// API calls only: 50 B – 4 KiB.
    Api,
    /// Mostly API calls with pages and some large downloads: 70 % 50 B –
    /// 4 KiB, 22 % 4 – 64 KiB, 7 % 64 KiB – 1 MiB, 1 % 1 – 8 MiB.
    Mixed,
    /// Downloads: 1 – 8 MiB.
    Downloads,
}

impl std::str::FromStr for SizeMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "api" => Ok(Self::Api),
            "mixed" => Ok(Self::Mixed),
            "downloads" => Ok(Self::Downloads),
            _ => Err(format!("unknown size mix {s:?} (api, mixed, downloads)")),
        }
    }
}

/// What a generated capture holds, counted as it was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets: u64,
    /// Frame bytes (what a link carries, without preamble and FCS).
    pub bytes: u64,
    pub connections: u64,
    pub http_exchanges: u64,
    pub dns_exchanges: u64,
    /// HTTP requests per `Host`.
    pub requests_per_host: BTreeMap<String, u64>,
    /// HTTP responses per status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Data segments dropped by `loss` and swapped by `reorder`.
    pub lost_segments: u64,
    pub reordered_segments: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

const HOSTS: [&str; 8] = [
    "api.shop.svc",
    "cart.shop.svc",
    "payments.shop.svc",
    "catalog.shop.svc",
    "search.shop.svc",
    "cdn.shop.example",
    "auth.shop.svc",
    "reviews.shop.svc",
];
const PATHS: [&str; 8] = [
    "/v1/items",
    "/v1/cart",
    "/healthz",
    "/v1/checkout",
    "/v1/items/42",
    "/metrics",
    "/v2/search?q=kettle&page=2",
    "/static/app.js",
];

/// The generator: an iterator over the capture's packets in time order.
pub struct Traffic {
    spec: TrafficSpec,
    rng: Rng,
    open: Vec<Connection>,
    started: u32,
    next_conn: u32,
    dns_due: u64,
    pending_dns: VecDeque<Packet>,
    t: u64,
    summary: Summary,
}

/// One open connection: its packets still to send, in order.
struct Connection {
    queue: VecDeque<Vec<u8>>,
}

impl Traffic {
    pub fn new(spec: TrafficSpec) -> Self {
        let rng = Rng::new(spec.seed ^ 0x9e37_79b9_7f4a_7c15);
        let t = spec.start_ns;
        Self {
            spec,
            rng,
            open: Vec::new(),
            started: 0,
            next_conn: 0,
            dns_due: 0,
            pending_dns: VecDeque::new(),
            t,
            summary: Summary::default(),
        }
    }

    /// What has been generated so far (all of it once the iterator ends).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Generates everything into memory.
    pub fn collect_all(spec: TrafficSpec) -> (Vec<Packet>, Summary) {
        let mut g = Self::new(spec);
        let pkts: Vec<Packet> = g.by_ref().collect();
        (pkts, g.summary)
    }

    /// Writes the capture to `out` as pcap (or pcapng), nanosecond stamps.
    pub fn write<W: io::Write>(spec: TrafficSpec, out: W, pcapng: bool) -> io::Result<Summary> {
        let mut g = Self::new(spec);
        if pcapng {
            let mut w = PcapNgWriter::new(out, LinkType::Ethernet, true)?;
            for p in g.by_ref() {
                w.write(p.ts_ns, &p.data, p.data.len() as u32)?;
            }
            w.into_inner().flush()?;
        } else {
            let mut w = PcapWriter::new(out, LinkType::Ethernet, true)?;
            for p in g.by_ref() {
                w.write(p.ts_ns, &p.data, p.data.len() as u32)?;
            }
            w.into_inner().flush()?;
        }
        Ok(g.summary)
    }

    fn body_len(&mut self) -> usize {
        let r = &mut self.rng;
        let span = |r: &mut Rng, lo: u64, hi: u64| (lo + r.below(hi - lo)) as usize;
        match self.spec.mix {
            SizeMix::Api => span(r, 50, 4096),
            SizeMix::Downloads => span(r, 1 << 20, 8 << 20),
            SizeMix::Mixed => match r.below(100) {
                0..=69 => span(r, 50, 4096),
                70..=91 => span(r, 4096, 64 << 10),
                92..=98 => span(r, 64 << 10, 1 << 20),
                _ => span(r, 1 << 20, 8 << 20),
            },
        }
    }

    /// Opens connection number `n` (addresses and ports derive from `n`)
    /// carrying `exchanges` request/response pairs.
    fn open_connection(&mut self, n: u32, exchanges: u32) -> Connection {
        let client = [10, 1, (n >> 8) as u8 & 0x3f, (n & 0xff) as u8];
        let host_i = self.rng.below(HOSTS.len() as u64) as usize;
        let server = [10, 2, 0, 10 + host_i as u8];
        let (cp, sp) = (10_000 + (n % 50_000) as u16, 80u16);
        let (mut cseq, mut sseq) = (self.rng.next_u64() as u32, self.rng.next_u64() as u32);
        let mut q: VecDeque<Vec<u8>> = VecDeque::new();
        q.push_back(tcp4(client, server, cp, sp, cseq, 0, 0x02, b""));
        q.push_back(tcp4(server, client, sp, cp, sseq, cseq.wrapping_add(1), 0x12, b""));
        cseq = cseq.wrapping_add(1);
        sseq = sseq.wrapping_add(1);
        q.push_back(tcp4(client, server, cp, sp, cseq, sseq, 0x10, b""));
        for k in 0..exchanges {
            let (req, resp, status) = self.exchange(HOSTS[host_i], k + 1 == exchanges);
            *self.summary.requests_per_host.entry(HOSTS[host_i].to_string()).or_default() += 1;
            *self.summary.statuses.entry(status).or_default() += 1;
            self.summary.http_exchanges += 1;
            self.segments(&mut q, (client, cp), (server, sp), &mut cseq, sseq, &req);
            self.segments(&mut q, (server, sp), (client, cp), &mut sseq, cseq, &resp);
            q.push_back(tcp4(client, server, cp, sp, cseq, sseq, 0x10, b""));
        }
        q.push_back(tcp4(client, server, cp, sp, cseq, sseq, 0x11, b""));
        q.push_back(tcp4(server, client, sp, cp, sseq, cseq.wrapping_add(1), 0x11, b""));
        q.push_back(tcp4(
            client,
            server,
            cp,
            sp,
            cseq.wrapping_add(1),
            sseq.wrapping_add(1),
            0x10,
            b"",
        ));
        self.summary.connections += 1;
        Connection { queue: q }
    }

    /// Data segments of one message, with loss and reordering applied.
    fn segments(
        &mut self,
        q: &mut VecDeque<Vec<u8>>,
        from: ([u8; 4], u16),
        to: ([u8; 4], u16),
        seq: &mut u32,
        ack: u32,
        data: &[u8],
    ) {
        let mut segs: Vec<Vec<u8>> = Vec::with_capacity(data.len() / self.spec.mss + 1);
        for chunk in data.chunks(self.spec.mss.max(1)) {
            let lost =
                self.spec.loss > 0.0 && (self.rng.below(1_000_000) as f64) < self.spec.loss * 1e6;
            if lost {
                self.summary.lost_segments += 1;
            } else {
                segs.push(tcp4(from.0, to.0, from.1, to.1, *seq, ack, 0x18, chunk));
            }
            *seq = seq.wrapping_add(chunk.len() as u32);
        }
        if self.spec.reorder > 0.0 {
            let mut i = 0;
            while i + 1 < segs.len() {
                if (self.rng.below(1_000_000) as f64) < self.spec.reorder * 1e6 {
                    segs.swap(i, i + 1);
                    self.summary.reordered_segments += 1;
                    i += 1;
                }
                i += 1;
            }
        }
        q.extend(segs);
    }

    /// One request and its response: (request bytes, response bytes, status).
    fn exchange(&mut self, host: &str, last: bool) -> (Vec<u8>, Vec<u8>, u16) {
        let path = PATHS[self.rng.below(PATHS.len() as u64) as usize];
        let post = self.rng.below(10) < 2;
        let conn = if last { "close" } else { "keep-alive" };
        let mut req = if post {
            let body_len = 40 + self.rng.below(2_000) as usize;
            let mut r = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: shop-client/1.4\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\nConnection: {conn}\r\n\r\n"
            )
            .into_bytes();
            r.resize(r.len() + body_len, b'x');
            r
        } else {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: shop-client/1.4\r\nAccept: */*\r\nConnection: {conn}\r\n\r\n").into_bytes()
        };
        req.shrink_to_fit();
        let status = match self.rng.below(100) {
            0..=88 => 200,
            89..=94 => 404,
            95..=97 => 500,
            _ => 503,
        };
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Service Unavailable",
        };
        let len = self.body_len();
        let chunked = self.rng.below(10) == 0;
        let mut resp = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/octet-stream\r\nServer: skua-gen\r\n").into_bytes();
        let fill = |out: &mut Vec<u8>, n: usize| out.extend((0..n).map(|i| b'a' + (i % 26) as u8));
        if chunked {
            resp.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut left = len;
            while left > 0 {
                let n = left.min(16 << 10);
                resp.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                fill(&mut resp, n);
                resp.extend_from_slice(b"\r\n");
                left -= n;
            }
            resp.extend_from_slice(b"0\r\n\r\n");
        } else {
            resp.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
            fill(&mut resp, len);
        }
        (req, resp, status)
    }

    fn dns(&mut self) {
        let n = self.summary.dns_exchanges as u32;
        let host = HOSTS[self.rng.below(HOSTS.len() as u64) as usize];
        let client = [10, 1, 200, (n % 250) as u8];
        let mut pkts = Vec::new();
        super::dns_exchange(
            &mut pkts,
            0,
            super::DnsLookup {
                client,
                server: [10, 96, 0, 10],
                port: 30_000 + (n % 30_000) as u16,
                id: n as u16,
                name: host,
                answer: [10, 2, 0, 10],
            },
        );
        self.pending_dns.extend(pkts);
        self.summary.dns_exchanges += 1;
    }

    fn stamp(&mut self, data: Vec<u8>) -> Packet {
        // Time on the wire: frame + preamble/SFD (8) + FCS (4) + gap (12).
        let bits = (data.len() as f64 + 24.0) * 8.0;
        self.t += (bits / self.spec.link_gbps.max(0.001)).ceil() as u64;
        self.summary.packets += 1;
        self.summary.bytes += data.len() as u64;
        if self.summary.first_ns == 0 {
            self.summary.first_ns = self.t;
        }
        self.summary.last_ns = self.t;
        Packet { ts_ns: self.t, data }
    }
}

impl Iterator for Traffic {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        if let Some(p) = self.pending_dns.pop_front() {
            return Some(self.stamp(p.data));
        }
        // Keep the pool full while exchanges remain.
        while self.open.len() < self.spec.concurrent.max(1) as usize
            && self.started < self.spec.exchanges
        {
            let left = self.spec.exchanges - self.started;
            let n = (1 + self.rng.below(u64::from(self.spec.keepalive_max.max(1)))) as u32;
            let n = n.min(left);
            self.started += n;
            let id = self.next_conn;
            self.next_conn += 1;
            let c = self.open_connection(id, n);
            self.open.push(c);
            // DNS lookups in proportion to the HTTP exchanges opened.
            self.dns_due += u64::from(n) * u64::from(self.spec.dns_per_mille);
            if self.dns_due >= 1000 {
                self.dns_due -= 1000;
                self.dns();
            }
        }
        if let Some(p) = self.pending_dns.pop_front() {
            return Some(self.stamp(p.data));
        }
        if self.open.is_empty() {
            return None;
        }
        let i = self.rng.below(self.open.len() as u64) as usize;
        let c = self.open.get_mut(i)?;
        let data = c.queue.pop_front();
        if c.queue.is_empty() {
            self.open.swap_remove(i);
        }
        match data {
            Some(d) => Some(self.stamp(d)),
            None => self.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> TrafficSpec {
        TrafficSpec { exchanges: 300, concurrent: 16, mix: SizeMix::Api, ..TrafficSpec::default() }
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, sa) = Traffic::collect_all(small());
        let (b, sb) = Traffic::collect_all(small());
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _) = Traffic::collect_all(TrafficSpec { seed: 2, ..small() });
        assert_ne!(a, c);
    }

    #[test]
    fn counts_what_it_generates() {
        let (pkts, s) = Traffic::collect_all(small());
        assert_eq!(s.http_exchanges, 300);
        assert_eq!(s.requests_per_host.values().sum::<u64>(), 300);
        assert_eq!(s.statuses.values().sum::<u64>(), 300);
        assert_eq!(s.dns_exchanges, 15);
        assert_eq!(s.packets, pkts.len() as u64);
        assert_eq!(s.bytes, pkts.iter().map(|p| p.data.len() as u64).sum::<u64>());
        assert!(pkts.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
        assert!(s.connections > 300 / 8 && s.connections <= 300);
    }

    #[test]
    fn loss_and_reordering_are_applied_and_counted() {
        let spec = TrafficSpec {
            loss: 0.01,
            reorder: 0.05,
            mix: SizeMix::Mixed,
            exchanges: 200,
            ..small()
        };
        let (_, s) = Traffic::collect_all(spec);
        assert!(s.lost_segments > 0);
        assert!(s.reordered_segments > 0);
    }

    #[test]
    fn timestamps_follow_the_link_speed() {
        let spec = TrafficSpec { link_gbps: 1.0, ..small() };
        let (_, s) = Traffic::collect_all(spec);
        let secs = (s.last_ns - s.first_ns) as f64 / 1e9;
        let gbps = (s.bytes + 24 * s.packets) as f64 * 8.0 / secs / 1e9;
        assert!((gbps - 1.0).abs() < 0.01, "{gbps} Gbps");
    }
}
