//! Redis: RESP2 and RESP3 over TCP, inline commands, pipelining, pub/sub
//! and `CLIENT REPLY`.
//!
//! `parser.rs` reads RESP values from byte slices (streaming: a large bulk
//! string is never buffered whole); `redis.rs` holds a flow's session: the
//! queue of commands waiting for replies (pairing in order, as the server
//! answers), the `CLIENT REPLY OFF|ON|SKIP` state, subscriptions and the
//! RESP version. This file has the Rust values and their JSON.
//!
//! Fields (`request` is a command, `response` its reply):
//! - `request: {command, key, args[], argCount, inline, noReply}` —
//!   `command` upper-cased (`"SET"`); `args` the arguments after it (lossy
//!   UTF-8, each cut at `max_field_bytes`, at most `max_redis_values`);
//!   `argCount` all of them; `key` the first argument of a command that
//!   takes a key, else `null`; `inline` for a telnet-style command line;
//!   `noReply` when `CLIENT REPLY OFF|SKIP` told the server not to answer
//!   it (its `response` is then `null` and there is no `error`).
//! - `response: {type, value, error, push, count}` — `type` one of
//!   `simple error integer bulk null array map set push bool double
//!   bignumber verbatim`; `value` the reply as JSON (strings, numbers,
//!   `null`, arrays; a map as an object keyed by its keys' text); `error`
//!   the message of an error reply, else `null`; `count` the elements of an
//!   aggregate (kept or not), else `null`; `push` is true for a pub/sub
//!   message or another out-of-band push (RESP3 `>`, or a RESP2
//!   `message`/`pmessage`/`smessage` array on a subscribed connection).
//!   A push is not a reply: it becomes an item of its own with
//!   `request: null` and `error: null`, and adds `channel` (and `pattern`).
//! - `protocol.version` is `"3"` once `HELLO 3` succeeded on the flow,
//!   else `"2"`.

pub mod parser;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod redis;

pub use parser::RespValue;
pub use redis::RedisSession;

use parser::AggKind;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct RedisCommand {
    /// Upper-cased command name.
    pub name: String,
    /// Arguments after the name, as kept.
    pub args: Vec<Vec<u8>>,
    /// Arguments after the name, kept or not.
    pub arg_count: u64,
    pub inline: bool,
    /// `CLIENT REPLY OFF|SKIP` made this command go unanswered.
    pub no_reply: bool,
    pub resp3: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisReply {
    pub value: RespValue,
    /// Out-of-band data (pub/sub message, RESP3 push), not a reply.
    pub push: bool,
    pub resp3: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedisMessage {
    Command(RedisCommand),
    Reply(RedisReply),
}

impl RedisMessage {
    pub fn resp3(&self) -> bool {
        match self {
            RedisMessage::Command(c) => c.resp3,
            RedisMessage::Reply(r) => r.resp3,
        }
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON of a RESP value.
pub fn value_json(v: &RespValue) -> Value {
    match v {
        RespValue::Simple(b) | RespValue::Error(b) | RespValue::BigNumber(b) => s(b).into(),
        RespValue::Bulk { data, .. } | RespValue::BlobError { data, .. } => s(data).into(),
        // `txt:` / `mkd:` says how to show it, not what it says.
        RespValue::Verbatim { data, .. } => {
            s(data.get(4..).filter(|_| data.get(3) == Some(&b':')).unwrap_or(data)).into()
        }
        RespValue::Integer(n) => (*n).into(),
        RespValue::Null => Value::Null,
        RespValue::Bool(b) => (*b).into(),
        RespValue::Double(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| s(b).into(), Value::Number),
        RespValue::Aggregate { kind: AggKind::Map | AggKind::Attribute, items, .. } => {
            let mut m = Map::new();
            for kv in items.chunks(2) {
                let key = match kv.first() {
                    Some(k) => match value_json(k) {
                        Value::String(t) => t,
                        other => other.to_string(),
                    },
                    None => continue,
                };
                m.insert(key, kv.get(1).map_or(Value::Null, value_json));
            }
            Value::Object(m)
        }
        RespValue::Aggregate { items, .. } => items.iter().map(value_json).collect(),
    }
}

pub fn type_name(v: &RespValue) -> &'static str {
    match v {
        RespValue::Simple(_) => "simple",
        RespValue::Error(_) | RespValue::BlobError { .. } => "error",
        RespValue::Integer(_) => "integer",
        RespValue::Bulk { .. } => "bulk",
        RespValue::Verbatim { .. } => "verbatim",
        RespValue::Null => "null",
        RespValue::Bool(_) => "bool",
        RespValue::Double(_) => "double",
        RespValue::BigNumber(_) => "bignumber",
        RespValue::Aggregate { kind: AggKind::Array, .. } => "array",
        RespValue::Aggregate { kind: AggKind::Map | AggKind::Attribute, .. } => "map",
        RespValue::Aggregate { kind: AggKind::Set, .. } => "set",
        RespValue::Aggregate { kind: AggKind::Push, .. } => "push",
    }
}

pub fn command_json(c: &RedisCommand) -> Value {
    let key =
        if parser::has_key(&c.name) { c.args.first().map(|k| Value::String(s(k))) } else { None };
    json!({
        "command": c.name,
        "key": key,
        "args": c.args.iter().map(|a| Value::String(s(a))).collect::<Vec<_>>(),
        "argCount": c.arg_count,
        "inline": c.inline,
        "noReply": c.no_reply,
    })
}

pub fn reply_json(r: &RedisReply) -> Value {
    let v = &r.value;
    let mut o = Map::new();
    o.insert("type".into(), type_name(v).into());
    o.insert("value".into(), value_json(v));
    o.insert(
        "error".into(),
        if v.is_error() { v.as_bytes().map_or(Value::Null, |b| s(b).into()) } else { Value::Null },
    );
    o.insert("push".into(), r.push.into());
    o.insert(
        "count".into(),
        match v {
            RespValue::Aggregate { count, .. } => (*count).into(),
            _ => Value::Null,
        },
    );
    if r.push {
        let items = v.items().unwrap_or_default();
        let kind = items.first().and_then(RespValue::as_bytes).map(|k| k.to_ascii_lowercase());
        let (pattern, channel) = match kind.as_deref() {
            Some(b"pmessage") => (items.get(1), items.get(2)),
            _ => (None, items.get(1)),
        };
        let text = |x: Option<&RespValue>| {
            x.and_then(RespValue::as_bytes).map_or(Value::Null, |b| s(b).into())
        };
        o.insert("kind".into(), kind.map_or(Value::Null, |k| s(&k).into()));
        o.insert("channel".into(), text(channel));
        o.insert("pattern".into(), text(pattern));
    }
    Value::Object(o)
}

/// `request` or `response` JSON of a Redis message.
pub fn message_json(m: &RedisMessage) -> Value {
    match m {
        RedisMessage::Command(c) => command_json(c),
        RedisMessage::Reply(r) => reply_json(r),
    }
}

/// Redis in the protocol registry.
pub struct Redis;

impl super::Protocol for Redis {
    const ITEM_NAME: &'static str = "redis";
    const ABBR: &'static str = "REDIS";
    const VERSION: &'static str = "2";
    const LONG_NAME: &'static str = "Redis Serialization Protocol";
    type Session = RedisSession;
    type Message = RedisMessage;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        RedisSession::probe(bytes, dir)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Redis(RedisSession::new())
    }

    /// `"3"` once either side of the item spoke RESP3.
    fn version(item: &crate::item::Item) -> std::borrow::Cow<'static, str> {
        let ex = &item.exchange;
        let resp3 = [&ex.request, &ex.response]
            .into_iter()
            .flatten()
            .any(|m| matches!(m, super::Message::Redis(r) if r.resp3()));
        std::borrow::Cow::Borrowed(if resp3 { "3" } else { Self::VERSION })
    }
}

impl super::ProtocolMessage for RedisMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
