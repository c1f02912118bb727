//! Kafka: the broker wire protocol over TCP.
//!
//! `parser.rs` reads headers and the fields an item keeps from byte slices
//! (size-prefixed messages, flexible versions with compact strings and
//! tagged fields); `kafka.rs` holds a flow's session: requests waiting for
//! their responses, paired by correlation id. This file has the Rust values
//! and their JSON.
//!
//! Fields:
//! - `request: {apiKey, apiKeyId, apiVersion, correlationId, clientId,
//!   flexible, acks, topics[{name, partitions[]}], topicCount, length,
//!   truncated}` — `apiKey` the API name (`"Produce"`, `"Fetch"`,
//!   `"ApiVersions"` …) and `apiKeyId` its number; `clientId` cut at
//!   `max_field_bytes`; `flexible` whether the version uses the compact
//!   (KIP-482) encoding; `acks` for Produce (an `acks=0` Produce gets no
//!   response: its item has `response: {}` and no `error`); `topics` for
//!   Produce and Fetch, each with its partition numbers (topic ids as hex
//!   in versions that name topics by id; at most `max_kafka_topics` topics
//!   and partitions per topic), `topicCount` all of them; `length` the
//!   message size field (the bytes after it); `truncated` when the message
//!   was larger than the buffer and only its first bytes were read (topics
//!   past them are missing).
//! - `response: {correlationId, apiKey, apiVersion, errorCode, errorName,
//!   throttleTimeMs, topics[{name, partitions[{partition, errorCode}]}],
//!   topicCount, length, truncated}` — `errorCode` the top-level error code
//!   of APIs that have one (ApiVersions, SaslHandshake, the group APIs …),
//!   for Produce and Fetch the first partition error that is not 0 (else
//!   0); `errorName` its name (`"NONE"`, `"NOT_LEADER_OR_FOLLOWER"` …);
//!   `null` when the API has no error code the dissector reads.
//! - `protocol.version` is the request's API version.

// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod kafka;
pub mod parser;

pub use kafka::KafkaSession;

use parser::Topics;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaRequest {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<Vec<u8>>,
    pub acks: Option<i16>,
    pub topics: Topics,
    pub length: u32,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaResponse {
    pub correlation_id: i32,
    /// Of the request it answers (`-1` when that was not captured).
    pub api_key: i16,
    pub api_version: i16,
    pub error_code: Option<i16>,
    pub throttle_ms: Option<i32>,
    pub topics: Topics,
    pub length: u32,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KafkaMessage {
    Request(KafkaRequest),
    Response(KafkaResponse),
}

impl KafkaMessage {
    pub fn api_version(&self) -> i16 {
        match self {
            KafkaMessage::Request(r) => r.api_version,
            KafkaMessage::Response(r) => r.api_version,
        }
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn api_name(key: i16) -> Value {
    if key < 0 {
        Value::Null
    } else {
        parser::api(key).0.into()
    }
}

pub fn request_json(r: &KafkaRequest) -> Value {
    let topics: Vec<Value> = r
        .topics
        .topics
        .iter()
        .map(|t| json!({"name": s(&t.name), "partitions": t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(), "partitionCount": t.partition_count}))
        .collect();
    json!({
        "apiKey": api_name(r.api_key),
        "apiKeyId": r.api_key,
        "apiVersion": r.api_version,
        "correlationId": r.correlation_id,
        "clientId": r.client_id.as_deref().map(s),
        "flexible": parser::flexible(r.api_key, r.api_version),
        "acks": r.acks,
        "topics": topics,
        "topicCount": r.topics.count,
        "length": r.length,
        "truncated": r.truncated,
    })
}

pub fn response_json(r: &KafkaResponse) -> Value {
    let topics: Vec<Value> = r
        .topics
        .topics
        .iter()
        .map(|t| {
            let parts: Vec<Value> = t
                .partitions
                .iter()
                .map(|p| json!({"partition": p.index, "errorCode": p.error_code}))
                .collect();
            json!({"name": s(&t.name), "partitions": parts, "partitionCount": t.partition_count})
        })
        .collect();
    json!({
        "correlationId": r.correlation_id,
        "apiKey": api_name(r.api_key),
        "apiVersion": r.api_version,
        "errorCode": r.error_code,
        "errorName": r.error_code.map(parser::error_name),
        "throttleTimeMs": r.throttle_ms,
        "topics": topics,
        "topicCount": r.topics.count,
        "length": r.length,
        "truncated": r.truncated,
    })
}

/// `request` or `response` JSON of a Kafka message.
pub fn message_json(m: &KafkaMessage) -> Value {
    match m {
        KafkaMessage::Request(r) => request_json(r),
        KafkaMessage::Response(r) => response_json(r),
    }
}

/// Kafka in the protocol registry.
pub struct Kafka;

impl super::Protocol for Kafka {
    const ITEM_NAME: &'static str = "kafka";
    const ABBR: &'static str = "KAFKA";
    const VERSION: &'static str = "0";
    const LONG_NAME: &'static str = "Apache Kafka Protocol";
    type Session = KafkaSession;
    type Message = KafkaMessage;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        KafkaSession::probe(bytes, dir)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Kafka(KafkaSession::new())
    }

    /// The API version of the item's request.
    fn version(item: &crate::item::Item) -> std::borrow::Cow<'static, str> {
        match item.message() {
            Some(super::Message::Kafka(k)) => std::borrow::Cow::Owned(k.api_version().to_string()),
            _ => std::borrow::Cow::Borrowed(Self::VERSION),
        }
    }
}

impl super::ProtocolMessage for KafkaMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
