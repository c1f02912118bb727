//! Frames and capture files made from scratch: the bundled demo capture,
//! test fixtures and benchmark inputs. Deterministic: the same arguments
//! give the same bytes.

use std::io::{self, Write};

use crate::wire::LinkType;

pub mod traffic;

const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// An Ethernet II frame around `payload`.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Inserts an 802.1Q (or, with `tpid = 0x88a8`, 802.1ad) tag after the MACs.
pub fn tag(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// The Internet checksum of `data`, folded.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet with a valid header checksum.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet (no extension headers).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(64);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// A TCP segment (20-byte header, checksum left 0: skua never checks it).
pub fn tcp(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&src_port.to_be_bytes());
    s.extend_from_slice(&dst_port.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.push(0x50);
    s.push(flags);
    s.extend_from_slice(&65535u16.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(payload);
    s
}

/// A UDP datagram (checksum 0, "none" for IPv4).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// Ethernet + IPv4 + TCP in one call.
#[allow(clippy::too_many_arguments)]
pub fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    ethernet(0x0800, &ipv4(src, dst, 6, &tcp(sp, dp, seq, ack, flags, payload)))
}

/// Ethernet + IPv4 + UDP in one call.
pub fn udp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    ethernet(0x0800, &ipv4(src, dst, 17, &udp(sp, dp, payload)))
}

/// Writes classic pcap (microsecond or nanosecond timestamps).
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W, link: LinkType, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out.write_all(&magic.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&link.to_pcap().to_le_bytes())?;
        Ok(Self { out, nanos })
    }

    /// One record; `wire_len` ≥ `data.len()` marks a snapped frame.
    pub fn write(&mut self, ts_ns: u64, data: &[u8], wire_len: u32) -> io::Result<()> {
        let sec = (ts_ns / 1_000_000_000) as u32;
        let frac = (ts_ns % 1_000_000_000) as u32;
        let frac = if self.nanos { frac } else { frac / 1000 };
        self.out.write_all(&sec.to_le_bytes())?;
        self.out.write_all(&frac.to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(&wire_len.to_le_bytes())?;
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes pcapng: one section (with an optional comment naming what the
/// file holds), interfaces added as link types appear (nanosecond
/// resolution when asked), enhanced packet blocks.
pub struct PcapNgWriter<W: Write> {
    out: W,
    nanos: bool,
    /// Link type of each interface written so far, by interface id.
    links: Vec<LinkType>,
}

/// Appends one pcapng option (code, length, value padded to 4 bytes).
fn ng_option(opts: &mut Vec<u8>, code: u16, value: &[u8]) {
    opts.extend_from_slice(&code.to_le_bytes());
    opts.extend_from_slice(&(value.len() as u16).to_le_bytes());
    opts.extend_from_slice(value);
    opts.resize(opts.len().div_ceil(4) * 4, 0);
}

/// Writes one block: type, total length, body, total length.
fn ng_block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let len = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&len.to_le_bytes())
}

impl<W: Write> PcapNgWriter<W> {
    /// A file with one interface of `link` (id 0).
    pub fn new(out: W, link: LinkType, nanos: bool) -> io::Result<Self> {
        let mut w = Self::with_comment(out, nanos, None)?;
        w.interface(link)?;
        Ok(w)
    }

    /// A file with no interface yet (see [`Self::interface_for`]) whose
    /// section header carries `comment` (`shb_comment`) and names skua as
    /// the writing application (`shb_userappl`).
    pub fn with_comment(mut out: W, nanos: bool, comment: Option<&str>) -> io::Result<Self> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        if let Some(c) = comment {
            ng_option(&mut body, 1, c.as_bytes());
            ng_option(&mut body, 4, concat!("skua ", env!("CARGO_PKG_VERSION")).as_bytes());
            ng_option(&mut body, 0, &[]);
        }
        ng_block(&mut out, 0x0a0d_0d0a, &body)?;
        Ok(Self { out, nanos, links: Vec::new() })
    }

    /// Adds an interface description of `link`; returns its id.
    pub fn interface(&mut self, link: LinkType) -> io::Result<u32> {
        let mut body = Vec::new();
        body.extend_from_slice(&(link.to_pcap() as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&262_144u32.to_le_bytes());
        if self.nanos {
            ng_option(&mut body, 9, &[9]); // if_tsresol: 10^-9 s
            ng_option(&mut body, 0, &[]);
        }
        ng_block(&mut self.out, 1, &body)?;
        self.links.push(link);
        Ok(self.links.len() as u32 - 1)
    }

    /// The interface of `link`, added when it is the first of its kind.
    pub fn interface_for(&mut self, link: LinkType) -> io::Result<u32> {
        match self.links.iter().position(|l| *l == link) {
            Some(i) => Ok(i as u32),
            None => self.interface(link),
        }
    }

    /// One packet on interface 0.
    pub fn write(&mut self, ts_ns: u64, data: &[u8], wire_len: u32) -> io::Result<()> {
        self.write_on(0, ts_ns, data, wire_len)
    }

    /// One packet on interface `interface`.
    pub fn write_on(
        &mut self,
        interface: u32,
        ts_ns: u64,
        data: &[u8],
        wire_len: u32,
    ) -> io::Result<()> {
        let ts = if self.nanos { ts_ns } else { ts_ns / 1000 };
        let padded = data.len().div_ceil(4) * 4;
        let len = (32 + padded) as u32;
        self.out.write_all(&6u32.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&interface.to_le_bytes())?;
        self.out.write_all(&((ts >> 32) as u32).to_le_bytes())?;
        self.out.write_all(&(ts as u32).to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(&wire_len.to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..padded - data.len()])?;
        self.out.write_all(&len.to_le_bytes())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A deterministic xorshift generator, so synthetic captures are the same
/// bytes on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A timestamped frame of a synthetic capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// One HTTP/1.1 exchange over a fresh TCP connection: handshake, request,
/// response (split into MSS-sized segments), FIN in both directions.
#[allow(clippy::too_many_arguments)]
pub fn http_conversation(
    out: &mut Vec<Packet>,
    t0_ns: u64,
    client: [u8; 4],
    server: [u8; 4],
    client_port: u16,
    request: &[u8],
    response: &[u8],
    rtt_ns: u64,
) -> u64 {
    const MSS: usize = 1448;
    let (sp, dp) = (client_port, 80);
    let (mut cseq, mut sseq) = (1_000u32, 500_000u32);
    let mut t = t0_ns;
    let half = rtt_ns / 2;
    let mut push = |t: u64, data: Vec<u8>| out.push(Packet { ts_ns: t, data });
    push(t, tcp4(client, server, sp, dp, cseq, 0, 0x02, b""));
    t += half;
    push(t, tcp4(server, client, dp, sp, sseq, cseq + 1, 0x12, b""));
    t += half;
    cseq += 1;
    sseq += 1;
    push(t, tcp4(client, server, sp, dp, cseq, sseq, 0x10, b""));
    for chunk in request.chunks(MSS) {
        t += 10_000;
        push(t, tcp4(client, server, sp, dp, cseq, sseq, 0x18, chunk));
        cseq += chunk.len() as u32;
    }
    t += half;
    for chunk in response.chunks(MSS) {
        push(t, tcp4(server, client, dp, sp, sseq, cseq, 0x18, chunk));
        sseq += chunk.len() as u32;
        t += 12_000;
    }
    t += half;
    push(t, tcp4(client, server, sp, dp, cseq, sseq, 0x11, b""));
    t += half;
    push(t, tcp4(server, client, dp, sp, sseq, cseq + 1, 0x11, b""));
    t += half;
    push(t, tcp4(client, server, sp, dp, cseq + 1, sseq + 1, 0x10, b""));
    t
}

/// A DNS query for an A record and its answer over UDP.
#[derive(Debug, Clone, Copy)]
pub struct DnsLookup<'a> {
    pub client: [u8; 4],
    pub server: [u8; 4],
    /// The client's UDP port.
    pub port: u16,
    pub id: u16,
    pub name: &'a str,
    /// The A record answered.
    pub answer: [u8; 4],
}

/// Appends `lookup`'s query at `t0_ns` and its answer 0.8 ms later.
pub fn dns_exchange(out: &mut Vec<Packet>, t0_ns: u64, lookup: DnsLookup<'_>) {
    let DnsLookup { client, server, port, id, name, answer } = lookup;
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]);
    let mut r = q.clone();
    r[2] = 0x81;
    r[3] = 0x80;
    r[7] = 1; // one answer
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    r.extend_from_slice(&answer);
    out.push(Packet { ts_ns: t0_ns, data: udp4(client, server, port, 53, &q) });
    out.push(Packet { ts_ns: t0_ns + 800_000, data: udp4(server, client, 53, port, &r) });
}

/// The capture `skua run` replays when given nothing: a few minutes of
/// API traffic between pods (HTTP/1.1 with a realistic spread of paths,
/// statuses, sizes and latencies) and the DNS lookups in front of it.
pub fn demo_capture() -> Vec<u8> {
    let mut rng = Rng::new(0x5c0a);
    let mut pkts = Vec::new();
    let hosts = ["api.shop.svc", "cart.shop.svc", "payments.shop.svc", "catalog.shop.svc"];
    let paths = ["/v1/items", "/v1/cart", "/healthz", "/v1/checkout", "/v1/items/42", "/metrics"];
    let base = 1_767_225_600_000_000_000u64; // 2026-01-01T00:00:00Z
    let mut t = base;
    for i in 0..600u32 {
        let client = [10, 1, (i % 7) as u8, 10 + (i % 23) as u8];
        let host_i = rng.below(hosts.len() as u64) as usize;
        let server = [10, 2, 0, 10 + host_i as u8];
        if i % 10 == 0 {
            dns_exchange(
                &mut pkts,
                t,
                DnsLookup {
                    client,
                    server: [10, 96, 0, 10],
                    port: 30000 + (i % 20000) as u16,
                    id: i as u16,
                    name: hosts[host_i],
                    answer: server,
                },
            );
            t += 1_000_000;
        }
        let path = paths[rng.below(paths.len() as u64) as usize];
        let status = match rng.below(100) {
            0..=84 => 200,
            85..=91 => 404,
            92..=96 => 500,
            _ => 503,
        };
        let body_len = match rng.below(10) {
            0..=5 => 64 + rng.below(512) as usize,
            6..=8 => 2_000 + rng.below(8_000) as usize,
            _ => 40_000 + rng.below(60_000) as usize,
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shop-client/1.4\r\nAccept: application/json\r\n\r\n",
            hosts[host_i]
        );
        let body: String = std::iter::repeat_n("{\"ok\":true}", body_len / 11 + 1)
            .collect::<String>()[..body_len]
            .to_string();
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Service Unavailable",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let rtt = 200_000 + rng.below(if status >= 500 { 40_000_000 } else { 4_000_000 });
        let end = http_conversation(
            &mut pkts,
            t,
            client,
            server,
            40000 + (i % 25000) as u16,
            request.as_bytes(),
            response.as_bytes(),
            rtt,
        );
        // Spread 600 conversations over about three minutes, overlapping.
        t += 250_000_000 + rng.below(100_000_000);
        let _ = end;
    }
    pkts.sort_by_key(|p| p.ts_ns);
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, false)
        .expect("writing to a Vec cannot fail");
    for p in &pkts {
        w.write(p.ts_ns, &p.data, p.data.len() as u32).expect("writing to a Vec cannot fail");
    }
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_header() {
        // The classic example header from RFC 1071 discussions.
        let h = ipv4([192, 168, 0, 1], [192, 168, 0, 199], 17, &[]);
        assert_eq!(checksum(&h[..20]), 0, "a header with its checksum sums to zero");
    }

    #[test]
    fn demo_capture_is_deterministic_and_parses() {
        let a = demo_capture();
        assert_eq!(a, demo_capture());
        assert!(a.len() > 100_000);
    }

    #[test]
    fn pcapng_pads_to_four_bytes() {
        let mut w = PcapNgWriter::new(Vec::new(), LinkType::Ethernet, true).unwrap();
        w.write(1, &[1, 2, 3, 4, 5], 5).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len() % 4, 0);
    }
}
