//! Hand-built items and packet infos for tests, benchmarks and examples:
//! real dissector output (the HTTP and DNS sessions of `reassembly` fed with
//! raw messages), not hand-filled structs, so what agents see here is what
//! they see on the wire.

use std::net::{IpAddr, Ipv4Addr};

use reassembly::counters::DissectionErrors;
use reassembly::dissectors::dns::DnsSession;
use reassembly::dissectors::http::HttpSession;
use reassembly::dissectors::{
    drive, Direction, Dissector, FinishReason, Limits, ParseCtx, StreamBuf,
};
use reassembly::item::{Endpoint, Exchange, Layer4};
use reassembly::{AppProtocol, Item};

use crate::packet::{PacketInfo, PacketProtocol};

/// 2023-11-14T22:13:20Z, the time hand-built items are captured at.
pub const BASE_TS_NS: u64 = 1_700_000_000_000_000_000;

fn item(
    protocol: AppProtocol,
    layer4: Layer4,
    stream: u64,
    exchange: Exchange,
    dport: u16,
) -> Item {
    let ip = |last: u8| {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, last]);
        a
    };
    Item {
        stream,
        index: 0,
        core: 0,
        protocol,
        layer4,
        ip_version: 4,
        src: Endpoint::new(4, ip(1), 40_000 + (stream % 20_000) as u16),
        dst: Endpoint::new(4, ip(2), dport),
        exchange: Box::new(exchange),
        passed: false,
        failed: false,
    }
}

/// An HTTP/1.x item from a raw request and (optionally) response, the
/// response 1.5 ms after the request.
pub fn http_item(stream: u64, request: &[u8], response: Option<&[u8]>) -> Item {
    let mut out = Vec::new();
    let mut errors = DissectionErrors::default();
    let limits = Limits::default();
    let mut s = HttpSession::new();
    let (mut b0, mut b1) = (StreamBuf::default(), StreamBuf::default());
    let mut ctx =
        ParseCtx { ts_ns: BASE_TS_NS, out: &mut out, errors: &mut errors, limits: &limits };
    drive(&mut s, &mut b0, Direction::ToServer, request, 1 << 20, &mut ctx);
    if let Some(r) = response {
        ctx.ts_ns = BASE_TS_NS + 1_500_000;
        drive(&mut s, &mut b1, Direction::ToClient, r, 1 << 20, &mut ctx);
    }
    s.finish(FinishReason::Closed, &mut ctx);
    let exchange = out.into_iter().next().unwrap_or(Exchange {
        request: None,
        response: None,
        request_ts_ns: BASE_TS_NS,
        response_ts_ns: 0,
        request_size: 0,
        response_size: 0,
        error: None,
    });
    item(AppProtocol::Http, Layer4::Tcp, stream, exchange, 80)
}

/// `GET path` to `host` answered with `status`.
pub fn http_get(stream: u64, host: &str, path: &str, status: u16) -> Item {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: skua-test/1.0\r\nAccept: */*\r\n\r\n"
    );
    let body = "{\"ok\":true}";
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http_item(stream, req.as_bytes(), Some(resp.as_bytes()))
}

fn dns_name(n: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len().min(63) as u8);
        v.extend_from_slice(l.as_bytes().get(..l.len().min(63)).unwrap_or_default());
    }
    v.push(0);
    v
}

/// A DNS A query for `name` and its answer with `ip`.
pub fn dns_item(stream: u64, id: u16, name: &str, ip: [u8; 4]) -> Item {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&dns_name(name));
    q.extend_from_slice(&[0, 1, 0, 1]);
    let mut r = q.clone();
    r[2..4].copy_from_slice(&0x8180u16.to_be_bytes());
    r[6..8].copy_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4]);
    r.extend_from_slice(&ip);
    let mut out = Vec::new();
    let mut errors = DissectionErrors::default();
    let limits = Limits::default();
    let mut s = DnsSession::new(false);
    let mut ctx =
        ParseCtx { ts_ns: BASE_TS_NS, out: &mut out, errors: &mut errors, limits: &limits };
    s.parse(&q, Direction::ToServer, &mut ctx);
    ctx.ts_ns = BASE_TS_NS + 2_000_000;
    s.parse(&r, Direction::ToClient, &mut ctx);
    s.finish(FinishReason::Timeout, &mut ctx);
    let exchange = out.into_iter().next().unwrap_or(Exchange {
        request: None,
        response: None,
        request_ts_ns: BASE_TS_NS,
        response_ts_ns: 0,
        request_size: 0,
        response_size: 0,
        error: None,
    });
    item(AppProtocol::Dns, Layer4::Udp, stream, exchange, 53)
}

/// A TCP packet info of `length` bytes at `ts_ns`.
pub fn packet(ts_ns: u64, length: u32) -> PacketInfo {
    PacketInfo {
        ts_ns,
        capture_length: length,
        length,
        truncated: false,
        fragmented: false,
        src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dst_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        src_port: 40_000,
        dst_port: 80,
        protocol: PacketProtocol::Tcp,
        vlan: None,
        core: 0,
    }
}

/// The agent of the agents benchmark: counts requests per `Host` header.
pub const COUNT_PER_HOST: &str = r#"
var counts = {};
for (var i = 0; i < 16; i++) counts["host-" + i + ".example.com"] = 0;
function onItemCaptured(data) {
  counts[data.request.headers.host]++;
}
"#;

/// `n` HTTP GETs to 16 hosts (`host-0.example.com` …), as the agents
/// benchmark feeds them.
pub fn host_items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| {
            http_get(i as u64, &format!("host-{}.example.com", i % 16), "/api/v1/orders?id=7", 200)
        })
        .collect()
}

/// A runtime on the default configuration with `source` loaded as agent
/// `agent`; its console lines and effects go nowhere (benchmarks).
pub fn runtime_with(source: &str) -> Result<crate::AgentRuntime, Box<dyn std::error::Error>> {
    let (console, _console_rx) = crate::ConsoleSink::new(1024);
    let (effects, _effects_rx) = crate::EffectSink::new(1024);
    let mut rt = crate::AgentRuntime::new(crate::RuntimeOptions {
        id: crate::RuntimeId(0),
        node: reassembly::NodeInfo { ip: "127.0.0.1".into(), name: "bench".into() },
        config: crate::ScriptingConfig::default(),
        console,
        effects,
        clock: crate::Clock::System,
    })?;
    rt.load_agent("agent", source)?;
    Ok(rt)
}
