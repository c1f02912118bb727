//! AMQP 0-9-1 over TCP (RabbitMQ and compatible brokers).
//!
//! `parser.rs` reads frames, method arguments, content headers and field
//! tables from byte slices; `amqp.rs` holds a connection's session:
//! content (header + body frames) assembled per channel, synchronous
//! methods waiting for their `-ok` per channel. This file has the Rust
//! value of a method and its JSON.
//!
//! Items: a synchronous method and its reply (`queue.declare` →
//! `queue.declare-ok`, `basic.get` → `basic.get-ok`/`basic.get-empty`,
//! `connection.open` → `connection.open-ok`, `channel.close` →
//! `channel.close-ok` …); when a peer closes a channel or the connection
//! instead of answering (`channel.close` 404 after a passive
//! `queue.declare`), that close is the pending method's `response`. An
//! asynchronous method is an item with `response: {}` and no `error`:
//! `basic.publish` and `basic.deliver`/`basic.return` (emitted once their
//! content is complete), `basic.ack`/`nack`/`reject`, `connection.blocked`,
//! and methods sent with `noWait`. AMQP is symmetric: the `request` of an
//! item may come from the server (`connection.start`, `basic.deliver`,
//! `channel.close`); `from` says which side sent each message.
//!
//! Fields of `request` and `response` (one method each):
//! `{method, classId, methodId, channel, from, …arguments, properties,
//! bodySize, body, bodyEncoding}` — `method` as `class.method`
//! (`"basic.publish"`); `from` `"client"` or `"server"`; the method's
//! arguments by their spec names in camelCase (`exchange`, `routingKey`,
//! `queue`, `consumerTag`, `deliveryTag`, `replyCode`, `replyText`,
//! `virtualHost`, `mechanism`, `serverProperties`, `arguments` …; field
//! tables as objects; reserved fields and secrets — SASL responses,
//! `update-secret` — are never kept); for a method with content
//! (`basic.publish`, `basic.deliver`, `basic.return`, `basic.get-ok`):
//! `properties` (`contentType`, `deliveryMode`, `headers`, `correlationId`,
//! `replyTo`, `messageId`, `timestamp` …), `bodySize` and the first
//! `max_field_bytes` of the body (`bodyEncoding` `"base64"` when it is not
//! UTF-8, else `""`).

// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod amqp;
pub mod parser;

pub use amqp::AmqpSession;

use parser::Value as Field;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmqpMessage {
    pub method: &'static str,
    pub class_id: u16,
    pub method_id: u16,
    pub channel: u16,
    pub from_client: bool,
    pub arguments: Vec<(&'static str, Field)>,
    /// Content header properties (content-bearing methods only).
    pub properties: Vec<(&'static str, Field)>,
    pub body_size: Option<u64>,
    pub body: Vec<u8>,
}

impl AmqpMessage {
    pub fn argument(&self, name: &str) -> Option<&Field> {
        self.arguments.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn field_json(v: &Field) -> Value {
    match v {
        Field::Bool(b) => (*b).into(),
        Field::Int(i) => (*i).into(),
        Field::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Field::Str(b) => s(b).into(),
        Field::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (s(k), field_json(v))).collect::<Map<_, _>>())
        }
        Field::Array(a) => a.iter().map(field_json).collect(),
        Field::Void => Value::Null,
    }
}

/// `request` or `response` JSON of an AMQP method.
pub fn message_json(m: &AmqpMessage) -> Value {
    let mut o = Map::new();
    o.insert("method".into(), m.method.into());
    o.insert("classId".into(), m.class_id.into());
    o.insert("methodId".into(), m.method_id.into());
    o.insert("channel".into(), m.channel.into());
    o.insert("from".into(), if m.from_client { "client" } else { "server" }.into());
    for (n, v) in &m.arguments {
        o.insert((*n).into(), field_json(v));
    }
    if let Some(size) = m.body_size {
        o.insert(
            "properties".into(),
            Value::Object(
                m.properties.iter().map(|(n, v)| ((*n).to_string(), field_json(v))).collect(),
            ),
        );
        o.insert("bodySize".into(), size.into());
        let (text, enc) = match std::str::from_utf8(&m.body) {
            Ok(t) => (t.to_owned(), ""),
            Err(_) => (crate::item::base64(&m.body), "base64"),
        };
        o.insert("body".into(), text.into());
        o.insert("bodyEncoding".into(), enc.into());
    }
    Value::Object(o)
}

/// AMQP 0-9-1 in the protocol registry.
pub struct Amqp;

impl super::Protocol for Amqp {
    const ITEM_NAME: &'static str = "amqp";
    const ABBR: &'static str = "AMQP";
    const VERSION: &'static str = "0-9-1";
    const LONG_NAME: &'static str = "Advanced Message Queuing Protocol 0-9-1";
    type Session = AmqpSession;
    type Message = AmqpMessage;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        AmqpSession::probe(bytes, dir)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Amqp(AmqpSession::new())
    }
}

impl super::ProtocolMessage for AmqpMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
