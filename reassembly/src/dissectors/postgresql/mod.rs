//! PostgreSQL: the frontend/backend protocol 3.0 over TCP.
//!
//! `parser.rs` frames messages (the untyped startup-phase ones and the
//! typed ones) and reads their fields from byte slices; `postgresql.rs`
//! holds a flow's session: the startup and authentication exchange, simple
//! and extended queries (a Parse/Bind/Execute… batch up to its Sync is one
//! item), COPY, and the queue pairing requests with the responses that end
//! at ReadyForQuery. This file has the Rust values and their JSON.
//!
//! Fields:
//! - `request: {type, query, statement, user, database, applicationName, parameters,
//!   protocolVersion, saslMechanism, messages, paramCount, copyBytes}` —
//!   `type` is `startup`, `ssl_request`, `gssenc_request`, `cancel`,
//!   `query` (simple), `extended` (a batch up to Sync), `function_call` or
//!   `terminate`; `query` the SQL text (cut at `max_field_bytes`; for an
//!   extended batch the Parse text, or a named statement's text remembered
//!   from its Parse); `statement` the prepared statement's name; `user` and
//!   `database` and `applicationName` the connection's, on every item
//!   (`null` when the startup was not captured); `parameters` the startup parameters (startup only);
//!   `protocolVersion` `"3.0"` (startup only); `saslMechanism` the SASL
//!   mechanism the client chose (startup only; passwords and SASL payloads
//!   are never kept); `messages` the frontend message types of the item in
//!   order (`"PBDES"`); `paramCount` the Bind parameter count (values are
//!   not kept); `copyBytes` COPY FROM STDIN data sent.
//! - `response: {success, sslAccepted, authentication[], authenticated,
//!   commandTag, commandCount, rows, affectedRows, fields, error, notices[],
//!   noticeCount, parameters, backendPid, transactionStatus, copyBytes,
//!   emptyQuery}` — `success` is false when an ErrorResponse came (or a
//!   startup did not authenticate); `sslAccepted` the one-byte answer to an
//!   SSLRequest/GSSENCRequest (`S`/`G` → true: the rest of the connection is
//!   encrypted and no longer dissected); `authentication` the
//!   authentication requests in order (`SASL`, `SASLContinue`, `SASLFinal`,
//!   `MD5Password`, `CleartextPassword` …; `Ok` excluded) and
//!   `authenticated` whether `AuthenticationOk` came; `commandTag` the last
//!   CommandComplete tag (`"INSERT 0 1"`) and `commandCount` how many came;
//!   `rows` the DataRows returned; `affectedRows` the sum of the counts the
//!   tags end with (`null` when none has one); `fields` the columns of the
//!   last RowDescription; `error` `{severity, code (SQLSTATE), message,
//!   detail, hint, position, routine}` or `null`; `notices` the first
//!   NoticeResponse in the same shape, `noticeCount` all of them;
//!   `parameters` ParameterStatus values (startup only); `backendPid` from
//!   BackendKeyData (the cancel key is not kept); `transactionStatus` from
//!   ReadyForQuery (`"I"` idle, `"T"` in a transaction, `"E"` failed
//!   transaction); `copyBytes` COPY TO STDOUT data received.
//! - An item without a response (`terminate`, `cancel`) has `response:
//!   null` and no `error`: none is sent.

pub mod parser;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod postgresql;

pub use parser::PgError;
pub use postgresql::PgSession;

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PgRequestKind {
    #[default]
    Startup,
    SslRequest,
    GssEncRequest,
    Cancel,
    Query,
    Extended,
    FunctionCall,
    Terminate,
}

impl PgRequestKind {
    pub fn name(self) -> &'static str {
        match self {
            PgRequestKind::Startup => "startup",
            PgRequestKind::SslRequest => "ssl_request",
            PgRequestKind::GssEncRequest => "gssenc_request",
            PgRequestKind::Cancel => "cancel",
            PgRequestKind::Query => "query",
            PgRequestKind::Extended => "extended",
            PgRequestKind::FunctionCall => "function_call",
            PgRequestKind::Terminate => "terminate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgRequest {
    pub kind: PgRequestKind,
    pub query: Option<Vec<u8>>,
    pub statement: Option<Vec<u8>>,
    pub user: Option<Vec<u8>>,
    pub database: Option<Vec<u8>>,
    /// The startup's `application_name`.
    pub application: Option<Vec<u8>>,
    pub parameters: Vec<(Vec<u8>, Vec<u8>)>,
    pub protocol_version: Option<(u16, u16)>,
    pub sasl_mechanism: Option<Vec<u8>>,
    /// Frontend message types in order (bounded by `max_field_bytes`).
    pub messages: Vec<u8>,
    pub param_count: u32,
    pub copy_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgResponse {
    pub ssl_accepted: Option<bool>,
    pub authentication: Vec<&'static str>,
    pub authenticated: bool,
    pub command_tag: Option<Vec<u8>>,
    pub command_count: u32,
    pub rows: u64,
    pub affected_rows: Option<u64>,
    pub fields: Option<u16>,
    pub error: Option<PgError>,
    pub notice: Option<PgError>,
    pub notice_count: u32,
    pub parameters: Vec<(Vec<u8>, Vec<u8>)>,
    pub backend_pid: Option<u32>,
    pub transaction_status: Option<u8>,
    pub copy_bytes: u64,
    pub empty_query: bool,
}

// Built once per item and moved with it (see `Message`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PgMessage {
    Request(PgRequest),
    Response(PgResponse),
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opt(b: &Option<Vec<u8>>) -> Value {
    b.as_deref().map_or(Value::Null, |x| s(x).into())
}

fn params(p: &[(Vec<u8>, Vec<u8>)]) -> Value {
    Value::Object(p.iter().map(|(k, v)| (s(k), Value::String(s(v)))).collect::<Map<_, _>>())
}

pub fn error_json(e: &PgError) -> Value {
    json!({
        "severity": s(&e.severity), "code": s(&e.code), "message": s(&e.message),
        "detail": s(&e.detail), "hint": s(&e.hint), "position": s(&e.position), "routine": s(&e.routine),
    })
}

pub fn request_json(r: &PgRequest) -> Value {
    let startup = r.kind == PgRequestKind::Startup;
    json!({
        "type": r.kind.name(),
        "query": opt(&r.query),
        "statement": opt(&r.statement),
        "user": opt(&r.user),
        "database": opt(&r.database),
        "applicationName": opt(&r.application),
        "parameters": if startup { params(&r.parameters) } else { Value::Null },
        "protocolVersion": r.protocol_version.map(|(a, b)| format!("{a}.{b}")),
        "saslMechanism": opt(&r.sasl_mechanism),
        "messages": s(&r.messages),
        "paramCount": r.param_count,
        "copyBytes": r.copy_bytes,
    })
}

pub fn response_json(r: &PgResponse) -> Value {
    let failed = r.error.is_some() || (!r.authentication.is_empty() && !r.authenticated);
    json!({
        "success": !failed,
        "sslAccepted": r.ssl_accepted,
        "authentication": r.authentication,
        "authenticated": r.authenticated,
        "commandTag": opt(&r.command_tag),
        "commandCount": r.command_count,
        "rows": r.rows,
        "affectedRows": r.affected_rows,
        "fields": r.fields,
        "error": r.error.as_ref().map_or(Value::Null, error_json),
        "notices": r.notice.iter().map(error_json).collect::<Vec<_>>(),
        "noticeCount": r.notice_count,
        "parameters": if r.parameters.is_empty() { Value::Null } else { params(&r.parameters) },
        "backendPid": r.backend_pid,
        "transactionStatus": r.transaction_status.map(|c| char::from(c).to_string()),
        "copyBytes": r.copy_bytes,
        "emptyQuery": r.empty_query,
    })
}

/// `request` or `response` JSON of a PostgreSQL message.
pub fn message_json(m: &PgMessage) -> Value {
    match m {
        PgMessage::Request(r) => request_json(r),
        PgMessage::Response(r) => response_json(r),
    }
}

/// PostgreSQL in the protocol registry.
pub struct Postgresql;

impl super::Protocol for Postgresql {
    const ITEM_NAME: &'static str = "postgresql";
    const ABBR: &'static str = "PGSQL";
    const VERSION: &'static str = "3.0";
    const LONG_NAME: &'static str = "PostgreSQL Frontend/Backend Protocol";
    type Session = PgSession;
    type Message = Box<PgMessage>;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        PgSession::probe(bytes, dir)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Postgresql(PgSession::new())
    }
}

impl super::ProtocolMessage for PgMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
