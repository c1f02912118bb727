//! MongoDB: the wire protocol over TCP (OP_MSG, and the legacy opcodes
//! older drivers and the shell's first handshake still send).
//!
//! `parser.rs` reads headers, OP_MSG sections, legacy bodies and
//! OP_COMPRESSED wrappers, and turns BSON (read with the `bson` crate's raw
//! documents) into bounded JSON; `mongodb.rs` holds a flow's session:
//! requests waiting for the reply whose `responseTo` names them. This file
//! has the Rust values and their JSON.
//!
//! Fields:
//! - `request: {opCode, requestId, command, database, collection, flags,
//!   checksum, moreToCome, document, sequences, compressor, numberToSkip,
//!   numberToReturn}` — `opCode` `OP_MSG`, `OP_QUERY`, `OP_GET_MORE`,
//!   `OP_INSERT` …; `command` the command's name (the first key of the
//!   command document; `find` for a legacy query on a collection,
//!   `insert`/`update`/`delete`/`getMore`/`killCursors` for the legacy
//!   opcodes); `database` from `$db` (or the namespace of a legacy
//!   message); `collection` the command's string argument (`{find:
//!   "users"}`), or `collection` of `getMore`, or the namespace's; `flags`
//!   the OP_MSG flag bits, `checksum` whether a CRC-32C trails it,
//!   `moreToCome` a request that gets no reply; `document` the command
//!   document as relaxed extended JSON (bounded by `max_bson_depth`,
//!   `max_bson_elements` and `max_field_bytes`; SASL payloads and
//!   passwords `[REDACTED]`); `sequences` `{identifier: documents}` of
//!   kind-1 sections (bulk writes); `compressor` (`zlib`, `snappy`,
//!   `zstd`, `noop`) of an OP_COMPRESSED request (snappy and zstd are named,
//!   not inflated: `command` is then `null`).
//! - `response: {opCode, responseTo, success, ok, code, codeName, errmsg,
//!   document, documents, replies, compressor}` — `ok` the reply's `ok`
//!   (`success` is `ok == 1` and no `$err`, `writeErrors` or query
//!   failure); `code`, `codeName`, `errmsg` of a failed command (or the
//!   first write error; `$err` of a legacy reply); `documents` what an
//!   OP_REPLY returned (`numberReturned`), or the cursor's batch size;
//!   `replies` the messages of an exhaust stream (`moreToCome` replies).
//! - A request sent with `moreToCome` (or a legacy write, which gets no
//!   reply) has `response: null` and no `error`.

pub mod parser;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod mongodb;

pub use mongodb::MongoSession;

use serde_json::{json, Value};

crate::protocol_errors! { Mongodb;
    /// A message shorter than its fields, a document whose length lies,
    /// or a section of an unknown kind.
    Malformed => "mongodb_malformed",
    /// A document nested deeper than `max_bson_depth` (a BSON bomb): cut there.
    BsonDepth => "mongodb_bson_depth",
    /// An OP_COMPRESSED message that does not inflate to its announced size
    /// (or past `max_decompressed_bytes`).
    Decompression => "mongodb_decompression",
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MongoRequest {
    pub op_code: i32,
    pub request_id: i32,
    pub command: Option<String>,
    pub database: Option<String>,
    pub collection: Option<String>,
    pub flags: u32,
    pub document: Option<Value>,
    pub sequences: Vec<(String, u32)>,
    pub compressor: Option<&'static str>,
    pub skip: Option<i32>,
    pub limit: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MongoResponse {
    pub op_code: i32,
    pub response_to: i32,
    pub ok: Option<f64>,
    pub failed: bool,
    pub code: Option<i64>,
    pub code_name: Option<String>,
    pub errmsg: Option<String>,
    pub document: Option<Value>,
    pub documents: Option<u64>,
    pub replies: u32,
    pub compressor: Option<&'static str>,
}

impl MongoResponse {
    pub fn success(&self) -> bool {
        !self.failed && self.ok.is_none_or(|ok| ok == 1.0)
    }
}

// Built once per item and moved with it in a box (see `Message`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum MongoMessage {
    Request(MongoRequest),
    Response(MongoResponse),
}

pub fn request_json(r: &MongoRequest) -> Value {
    json!({
        "opCode": parser::op_name(r.op_code),
        "requestId": r.request_id,
        "command": r.command,
        "database": r.database,
        "collection": r.collection,
        "flags": r.flags,
        "checksum": r.flags & parser::flag::CHECKSUM_PRESENT != 0,
        "moreToCome": r.flags & parser::flag::MORE_TO_COME != 0,
        "document": r.document,
        "sequences": Value::Object(r.sequences.iter().map(|(k, n)| (k.clone(), Value::from(*n))).collect()),
        "compressor": r.compressor,
        "numberToSkip": r.skip,
        "numberToReturn": r.limit,
    })
}

pub fn response_json(r: &MongoResponse) -> Value {
    json!({
        "opCode": parser::op_name(r.op_code),
        "responseTo": r.response_to,
        "success": r.success(),
        "ok": r.ok,
        "code": r.code,
        "codeName": r.code_name,
        "errmsg": r.errmsg,
        "document": r.document,
        "documents": r.documents,
        "replies": r.replies,
        "compressor": r.compressor,
    })
}

pub fn message_json(m: &MongoMessage) -> Value {
    match m {
        MongoMessage::Request(r) => request_json(r),
        MongoMessage::Response(r) => response_json(r),
    }
}

/// MongoDB in the protocol registry.
pub struct Mongodb;

impl super::Protocol for Mongodb {
    const ITEM_NAME: &'static str = "mongodb";
    const ABBR: &'static str = "MONGODB";
    const VERSION: &'static str = "0";
    const LONG_NAME: &'static str = "MongoDB Wire Protocol";
    const ERRORS: &'static [&'static str] = Error::NAMES;
    type Session = MongoSession;
    type Message = Box<MongoMessage>;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        parser::probe(bytes, dir == super::Direction::ToServer)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Mongodb(MongoSession::new())
    }
}

impl super::ProtocolMessage for MongoMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
