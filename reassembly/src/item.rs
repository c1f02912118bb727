//! The `Item`: one request with its response (or a lone request or response,
//! marked by `error`), as agents see it.
//!
//! Items stay Rust values (header blocks stay bytes, spans point into them);
//! JSON in the `AGENTS_API.md` shape is built on demand by [`Item::to_json`]
//! (also what `Serialize` produces), so the scripting layer can instead build
//! only the fields a hook reads.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::config::AppProtocol;
use crate::dissectors::amqp::AmqpMessage;
use crate::dissectors::dns::DnsMessage;
use crate::dissectors::http::HttpMessage;
use crate::dissectors::http2::{GrpcMessage, Http2Message};
use crate::dissectors::kafka::KafkaMessage;
use crate::dissectors::postgresql::PgMessage;
use crate::dissectors::redis::RedisMessage;

/// The top-level keys of an item's JSON ([`Item::to_json`]), in its order.
pub const JSON_KEYS: [&str; 19] = [
    "id",
    "index",
    "stream",
    "worker",
    "node",
    "protocol",
    "src",
    "dst",
    "timestamp",
    "startTime",
    "elapsedTime",
    "request",
    "response",
    "requestSize",
    "responseSize",
    "size",
    "passed",
    "failed",
    "error",
];

/// `error.type` of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemErrorKind {
    Dissection,
    Timeout,
    PairNotFound,
    Gap,
}

impl ItemErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemErrorKind::Dissection => "dissection",
            ItemErrorKind::Timeout => "timeout",
            ItemErrorKind::PairNotFound => "pair-not-found",
            ItemErrorKind::Gap => "gap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub kind: ItemErrorKind,
    pub msg: Cow<'static, str>,
}

impl ItemError {
    pub fn new(kind: ItemErrorKind, msg: impl Into<Cow<'static, str>>) -> Self {
        ItemError { kind, msg: msg.into() }
    }
}

/// Keeps the first error of a transaction: it is usually the cause of the rest.
pub fn set_error(
    slot: &mut Option<ItemError>,
    kind: ItemErrorKind,
    msg: impl Into<Cow<'static, str>>,
) {
    if slot.is_none() {
        *slot = Some(ItemError::new(kind, msg));
    }
}

/// One side of a transaction, in its protocol's own Rust value.
///
/// A message is moved several times on its way out (session, exchange
/// queue, item), so its size is paid per item: the two variants much larger
/// than an HTTP message are boxed (one allocation for those protocols
/// only), which keeps the enum, and an exchange of two, about a third of
/// the size it would be.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Http(HttpMessage),
    Dns(DnsMessage),
    Http2(Http2Message),
    Grpc(Box<GrpcMessage>),
    Redis(RedisMessage),
    Kafka(KafkaMessage),
    Postgresql(Box<PgMessage>),
    Amqp(AmqpMessage),
}

impl Message {
    /// The protocol an item of this message belongs to.
    pub fn protocol(&self) -> AppProtocol {
        match self {
            Message::Http(_) => AppProtocol::Http,
            Message::Dns(_) => AppProtocol::Dns,
            Message::Http2(_) => AppProtocol::Http2,
            Message::Grpc(_) => AppProtocol::Grpc,
            Message::Redis(_) => AppProtocol::Redis,
            Message::Kafka(_) => AppProtocol::Kafka,
            Message::Postgresql(_) => AppProtocol::Postgresql,
            Message::Amqp(_) => AppProtocol::Amqp,
        }
    }

    /// The `request` JSON of this message.
    pub fn request_json(&self) -> Value {
        match self {
            Message::Http(m) => crate::dissectors::http::request_json(m),
            Message::Dns(m) => crate::dissectors::dns::request_json(m),
            Message::Http2(m) => crate::dissectors::http2::request_json(m),
            Message::Grpc(m) => crate::dissectors::http2::grpc_request_json(m),
            Message::Redis(m) => crate::dissectors::redis::message_json(m),
            Message::Kafka(m) => crate::dissectors::kafka::message_json(m),
            Message::Postgresql(m) => crate::dissectors::postgresql::message_json(m),
            Message::Amqp(m) => crate::dissectors::amqp::message_json(m),
        }
    }

    /// The `response` JSON of this message.
    pub fn response_json(&self) -> Value {
        match self {
            Message::Http(m) => crate::dissectors::http::response_json(m),
            Message::Dns(m) => crate::dissectors::dns::response_json(m),
            Message::Http2(m) => crate::dissectors::http2::response_json(m),
            Message::Grpc(m) => crate::dissectors::http2::grpc_response_json(m),
            Message::Redis(m) => crate::dissectors::redis::message_json(m),
            Message::Kafka(m) => crate::dissectors::kafka::message_json(m),
            Message::Postgresql(m) => crate::dissectors::postgresql::message_json(m),
            Message::Amqp(m) => crate::dissectors::amqp::message_json(m),
        }
    }
}

/// A transaction as a dissector emits it, before flow metadata is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub request: Option<Message>,
    pub response: Option<Message>,
    pub request_ts_ns: u64,
    pub response_ts_ns: u64,
    /// Bytes on the wire (headers + body, framing included).
    pub request_size: u64,
    pub response_size: u64,
    pub error: Option<ItemError>,
}

/// One endpoint; `name`/`namespace` are filled later from the Kubernetes view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub name: String,
    pub namespace: String,
}

impl Endpoint {
    pub fn new(ip_version: u8, ip: [u8; 16], port: u16) -> Self {
        let ip = if ip_version == 6 {
            IpAddr::V6(Ipv6Addr::from(ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
        };
        Endpoint { ip, port, name: String::new(), namespace: String::new() }
    }
}

/// The capturing node (`worker` and `node` of the item).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub ip: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer4 {
    Tcp,
    Udp,
}

/// `data.protocol` of an item (`AGENTS_API.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolInfo {
    pub name: &'static str,
    pub version: Cow<'static, str>,
    pub abbr: &'static str,
    pub long_name: Cow<'static, str>,
    pub layer4: &'static str,
    pub layer3: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Id of the L4 flow, unique per worker (the core is in the top bits).
    pub stream: u64,
    /// Index of the item within its stream.
    pub index: u32,
    pub core: u16,
    pub protocol: AppProtocol,
    pub layer4: Layer4,
    pub ip_version: u8,
    /// The client.
    pub src: Endpoint,
    /// The server.
    pub dst: Endpoint,
    /// Boxed: an item is moved through batches and rings several times on
    /// its way to the agents, and the exchange is most of its size.
    pub exchange: Box<Exchange>,
    pub passed: bool,
    pub failed: bool,
}

impl Item {
    /// Request capture time (the response's for an unpaired response).
    pub fn ts_ns(&self) -> u64 {
        if self.exchange.request.is_some() {
            self.exchange.request_ts_ns
        } else {
            self.exchange.response_ts_ns
        }
    }

    /// Response time minus request time in milliseconds (for display; the
    /// item's `elapsedTime` is [`Item::elapsed_us`]).
    pub fn elapsed_ms(&self) -> f64 {
        self.elapsed_us() as f64 / 1e3
    }

    /// `elapsedTime`: response time minus request time in whole
    /// microseconds (Kubeshark's unit, what its scripts and filters
    /// compare), 0 unless both sides were captured.
    pub fn elapsed_us(&self) -> u64 {
        if self.exchange.request.is_some() && self.exchange.response.is_some() {
            self.exchange.response_ts_ns.saturating_sub(self.exchange.request_ts_ns) / 1_000
        } else {
            0
        }
    }

    pub fn http_request(&self) -> Option<&HttpMessage> {
        match &self.exchange.request {
            Some(Message::Http(m)) => Some(m),
            _ => None,
        }
    }

    pub fn http_response(&self) -> Option<&HttpMessage> {
        match &self.exchange.response {
            Some(Message::Http(m)) => Some(m),
            _ => None,
        }
    }

    pub fn dns_request(&self) -> Option<&DnsMessage> {
        match &self.exchange.request {
            Some(Message::Dns(m)) => Some(m),
            _ => None,
        }
    }

    pub fn dns_response(&self) -> Option<&DnsMessage> {
        match &self.exchange.response {
            Some(Message::Dns(m)) => Some(m),
            _ => None,
        }
    }

    /// The request, or the response of an item without one.
    pub fn message(&self) -> Option<&Message> {
        self.exchange.request.as_ref().or(self.exchange.response.as_ref())
    }

    /// `data.protocol.name`: what agents test first, so it is had without
    /// the rest of [`Item::protocol_info`].
    pub fn protocol_name(&self) -> &'static str {
        match self.protocol {
            AppProtocol::Http | AppProtocol::Http2 => "http",
            AppProtocol::Dns => "dns",
            AppProtocol::Grpc => "grpc",
            AppProtocol::Redis => "redis",
            AppProtocol::Kafka => "kafka",
            AppProtocol::Postgresql => "postgresql",
            AppProtocol::Amqp => "amqp",
        }
    }

    /// What `data.protocol` says of this item.
    pub fn protocol_info(&self) -> ProtocolInfo {
        let name = self.protocol_name();
        let layer4 = match self.layer4 {
            Layer4::Tcp => "tcp",
            Layer4::Udp => "udp",
        };
        let layer3 = if self.ip_version == 6 { "ipv6" } else { "ipv4" };
        let named = |version: &'static str, abbr, long_name| ProtocolInfo {
            name,
            version: Cow::Borrowed(version),
            abbr,
            long_name: Cow::Borrowed(long_name),
            layer4,
            layer3,
        };
        match self.protocol {
            AppProtocol::Http => {
                let version = self
                    .http_request()
                    .or(self.http_response())
                    .map(|m| m.version_number())
                    .unwrap_or("1.1");
                let long_name = match version {
                    "1.1" => Cow::Borrowed("Hypertext Transfer Protocol -- HTTP/1.1"),
                    "1.0" => Cow::Borrowed("Hypertext Transfer Protocol -- HTTP/1.0"),
                    v => Cow::Owned(format!("Hypertext Transfer Protocol -- HTTP/{v}")),
                };
                ProtocolInfo {
                    name,
                    version: Cow::Borrowed(version),
                    abbr: "HTTP",
                    long_name,
                    layer4,
                    layer3,
                }
            }
            AppProtocol::Dns => named("0", "DNS", "Domain Name System"),
            AppProtocol::Http2 => {
                named("2", "HTTP/2", "Hypertext Transfer Protocol Version 2 (HTTP/2)")
            }
            AppProtocol::Grpc => named("2", "gRPC", "gRPC Remote Procedure Calls over HTTP/2"),
            AppProtocol::Redis => {
                let resp3 = [&self.exchange.request, &self.exchange.response]
                    .into_iter()
                    .flatten()
                    .any(|m| matches!(m, Message::Redis(r) if r.resp3()));
                named(if resp3 { "3" } else { "2" }, "REDIS", "Redis Serialization Protocol")
            }
            AppProtocol::Kafka => {
                let version = match self.message() {
                    Some(Message::Kafka(k)) => Cow::Owned(k.api_version().to_string()),
                    _ => Cow::Borrowed("0"),
                };
                ProtocolInfo { version, ..named("0", "KAFKA", "Apache Kafka Protocol") }
            }
            AppProtocol::Postgresql => {
                named("3.0", "PGSQL", "PostgreSQL Frontend/Backend Protocol")
            }
            AppProtocol::Amqp => named("0-9-1", "AMQP", "Advanced Message Queuing Protocol 0-9-1"),
        }
    }

    fn protocol_json(&self) -> Value {
        let p = self.protocol_info();
        json!({
            "name": p.name, "version": p.version, "abbr": p.abbr, "longName": p.long_name,
            "layer4": p.layer4, "layer3": p.layer3,
        })
    }

    /// The `AGENTS_API.md` JSON of this item.
    pub fn to_json(&self, node: &NodeInfo) -> Value {
        let ex = &self.exchange;
        let ts = self.ts_ns();
        let endpoint = |e: &Endpoint| json!({"ip": e.ip.to_string(), "port": e.port.to_string(), "name": e.name, "namespace": e.namespace});
        let node_json = json!({"ip": node.ip, "name": node.name});
        // Never null, as in Kubeshark: `data.response.status` on an item
        // without a response is undefined, not a TypeError; `error` says
        // why the side is missing.
        let empty = || Value::Object(Map::new());
        let request = ex.request.as_ref().map_or_else(empty, Message::request_json);
        let response = ex.response.as_ref().map_or_else(empty, Message::response_json);
        let error = match &ex.error {
            Some(e) => json!({"type": e.kind.as_str(), "msg": e.msg}),
            None => Value::Null,
        };
        let mut m = Map::new();
        m.insert("id".into(), format!("{}/{}-{}", node.name, self.stream, self.index).into());
        m.insert("index".into(), self.index.into());
        m.insert("stream".into(), self.stream.to_string().into());
        m.insert("worker".into(), node_json.clone());
        m.insert("node".into(), node_json);
        m.insert("protocol".into(), self.protocol_json());
        m.insert("src".into(), endpoint(&self.src));
        m.insert("dst".into(), endpoint(&self.dst));
        m.insert("timestamp".into(), (ts / 1_000_000).into());
        m.insert("startTime".into(), rfc3339(ts).into());
        m.insert("elapsedTime".into(), self.elapsed_us().into());
        m.insert("request".into(), request);
        m.insert("response".into(), response);
        m.insert("requestSize".into(), ex.request_size.into());
        m.insert("responseSize".into(), ex.response_size.into());
        m.insert("size".into(), (ex.request_size + ex.response_size).into());
        m.insert("passed".into(), self.passed.into());
        m.insert("failed".into(), self.failed.into());
        m.insert("error".into(), error);
        Value::Object(m)
    }
}

impl Serialize for Item {
    /// Serializes with an unnamed node; use [`Item::to_json`] to name it.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json(&NodeInfo::default()).serialize(s)
    }
}

/// RFC 3339 UTC with nanoseconds trimmed of trailing zeros (Go's RFC3339Nano).
pub fn rfc3339(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let nanos = ts_ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out =
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Standard base64 (for non-UTF-8 bodies in `content.text`).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123_000_000), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000_000_001), "2000-02-29T00:00:00.000000001Z");
    }

    #[test]
    fn encodes_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
