//! DNS over UDP and TCP.
//!
//! `parser.rs` decodes one message from a byte slice (own code rather than
//! `simple-dns`: a monitor needs the records parsed *before* a malformed
//! part, and distinct anomalies for truncation and compression-pointer loops,
//! where a strict parser returns one error and no message). `dns.rs` pairs
//! queries and responses by transaction id. This file holds the Rust values
//! and their `AGENTS_API.md` JSON.
//!
//! Fields: `request: {opCode, questions[{name, type, class}]}`,
//! `response: {code, questions[...], answers[{name, type, class, ttl,
//! ip|cname|mx|ns|ptr|txts|srv|soa|data}], authorities[...],
//! additionals[...]}` (the last two as Kubeshark names its sections). The response's `questions` (the
//! section a server echoes) goes beyond the contract: a response whose query
//! was not captured still says what was resolved.

// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod dns;
pub mod parser;

pub use dns::DnsSession;

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Dotted name as bytes (no trailing dot; empty for the root).
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A([u8; 4]),
    Aaaa([u8; 16]),
    Cname(Vec<u8>),
    Ns(Vec<u8>),
    Ptr(Vec<u8>),
    Mx {
        preference: u16,
        exchange: Vec<u8>,
    },
    /// Each character-string of the record.
    Txt(Vec<Vec<u8>>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Vec<u8>,
    },
    Soa {
        mname: Vec<u8>,
        rname: Vec<u8>,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Other(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: Vec<u8>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<DnsQuestion>,
    pub answers: Vec<DnsRecord>,
    pub authorities: Vec<DnsRecord>,
    pub additionals: Vec<DnsRecord>,
}

impl DnsMessage {
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }

    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }
}

pub fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        43 => "DS".into(),
        46 => "RRSIG".into(),
        47 => "NSEC".into(),
        48 => "DNSKEY".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        249 => "TKEY".into(),
        250 => "TSIG".into(),
        251 => "IXFR".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        257 => "CAA".into(),
        n => format!("TYPE{n}"),
    }
}

pub fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        n => format!("CLASS{n}"),
    }
}

pub fn opcode_name(o: u8) -> &'static str {
    match o {
        0 => "Query",
        1 => "IQuery",
        2 => "Status",
        4 => "Notify",
        5 => "Update",
        _ => "Unknown",
    }
}

pub fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NoError",
        1 => "FormErr",
        2 => "ServFail",
        3 => "NXDomain",
        4 => "NotImp",
        5 => "Refused",
        6 => "YXDomain",
        7 => "YXRRSet",
        8 => "NXRRSet",
        9 => "NotAuth",
        10 => "NotZone",
        _ => "Unknown",
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn questions_json(m: &DnsMessage) -> Value {
    m.questions
        .iter()
        .map(|q| json!({"name": s(&q.name), "type": type_name(q.qtype), "class": class_name(q.qclass)}))
        .collect()
}

pub fn record_json(r: &DnsRecord) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), s(&r.name).into());
    o.insert("type".into(), type_name(r.rtype).into());
    o.insert("class".into(), class_name(r.class).into());
    o.insert("ttl".into(), r.ttl.into());
    let (k, v): (&str, Value) = match &r.data {
        RData::A(a) => ("ip", std::net::Ipv4Addr::from(*a).to_string().into()),
        RData::Aaaa(a) => ("ip", std::net::Ipv6Addr::from(*a).to_string().into()),
        RData::Cname(n) => ("cname", s(n).into()),
        RData::Ns(n) => ("ns", s(n).into()),
        RData::Ptr(n) => ("ptr", s(n).into()),
        RData::Mx { preference, exchange } => {
            ("mx", json!({"preference": preference, "exchange": s(exchange)}))
        }
        RData::Txt(t) => ("txts", t.iter().map(|x| Value::from(s(x))).collect()),
        RData::Srv { priority, weight, port, target } => (
            "srv",
            json!({"priority": priority, "weight": weight, "port": port, "target": s(target)}),
        ),
        RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => (
            "soa",
            json!({"mname": s(mname), "rname": s(rname), "serial": serial, "refresh": refresh,
                   "retry": retry, "expire": expire, "minimum": minimum}),
        ),
        RData::Other(d) => ("data", crate::item::base64(d).into()),
    };
    o.insert(k.into(), v);
    Value::Object(o)
}

pub fn request_json(m: &DnsMessage) -> Value {
    json!({"opCode": opcode_name(m.opcode()), "questions": questions_json(m)})
}

pub fn response_json(m: &DnsMessage) -> Value {
    json!({
        "code": rcode_name(m.rcode()),
        // The question section a server echoes: it names what was resolved
        // even when the query itself was not captured.
        "questions": questions_json(m),
        "answers": m.answers.iter().map(record_json).collect::<Vec<_>>(),
        "authorities": m.authorities.iter().map(record_json).collect::<Vec<_>>(),
        "additionals": m.additionals.iter().map(record_json).collect::<Vec<_>>(),
    })
}

/// DNS in the protocol registry.
pub struct Dns;

impl super::Protocol for Dns {
    const ITEM_NAME: &'static str = "dns";
    const ABBR: &'static str = "DNS";
    const VERSION: &'static str = "0";
    const LONG_NAME: &'static str = "Domain Name System";
    // DNS over TCP says nothing about roles: probed as sent, never flipped.
    const PROBE_ROLES: bool = false;
    type Session = DnsSession;
    type Message = DnsMessage;

    fn probe(bytes: &[u8], _dir: super::Direction) -> super::Confidence {
        DnsSession::probe(bytes, true)
    }

    fn probe_datagram(bytes: &[u8]) -> super::Confidence {
        DnsSession::probe(bytes, false)
    }

    /// The QR bit: a query comes from the client.
    fn datagram_from_client(bytes: &[u8]) -> Option<bool> {
        bytes.get(2).map(|b| b & 0x80 == 0)
    }

    fn session(tcp: bool) -> super::Session {
        super::Session::Dns(DnsSession::new(tcp))
    }
}

impl super::ProtocolMessage for DnsMessage {
    fn request_json(&self) -> Value {
        request_json(self)
    }

    fn response_json(&self) -> Value {
        response_json(self)
    }
}
