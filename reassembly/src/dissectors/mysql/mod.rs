//! MySQL (and MariaDB): the client/server protocol over TCP.
//!
//! `parser.rs` reads packet headers, the handshake, OK/ERR/EOF packets and
//! query attributes from byte slices; `mysql.rs` holds a flow's session:
//! the handshake and authentication exchange (one `login` item, auth
//! switches included), each command with the packets that answer it
//! (result sets counted row by row, multi-result sets, prepared
//! statements remembered), the compressed protocol (zlib frames inflated
//! within `max_decompressed_bytes`; zstd reported, not dissected) and the
//! hand-over to TLS after an SSL request. This file has the Rust values and
//! their JSON.
//!
//! Fields:
//! - `request: {command, query, statementId, database, user, table,
//!   paramCount, attributes, connectAttributes, authPlugin, tls,
//!   compression}` — `command` the command's name as Zeek's `mysql.log`
//!   spells it (`login`, `query`, `init_db`, `field_list`, `ping`, `quit`,
//!   `change_user`, `stmt_prepare`, `stmt_execute`, `stmt_close`,
//!   `statistics` …); `query` the SQL text (cut at `max_field_bytes`; for
//!   `stmt_execute` the text of its `stmt_prepare`, remembered per
//!   connection); `statementId` of the prepared-statement commands;
//!   `database` the connection's schema (for `init_db` the one asked for,
//!   for `login` the one the client named; `null` when not known); `user`
//!   the connection's (for `login`/`change_user` the one logging in);
//!   `table` of `field_list`; `paramCount` of `stmt_execute` (from its
//!   prepare; values are not kept); `attributes` query attributes
//!   `{name: value}` (MySQL 8.0.23+); `connectAttributes` what a client
//!   says of itself at login (`_client_name` …); `authPlugin` the client's
//!   plugin (login); `tls` true for the SSL request that starts TLS (the
//!   connection's items then are TLS items); `compression` `"zlib"` or
//!   `"zstd"` when client and server agreed on it (login).
//! - `response: {success, affectedRows, lastInsertId, warnings, statusFlags,
//!   info, error, rows, columns, fields, resultSets, statementId,
//!   paramCount, serverVersion, connectionId, authPlugin, authSwitch,
//!   text}` — `success` false after an ERR; `affectedRows` … `info` from the
//!   last OK (or EOF) packet; `error` `{code, sqlState, message}`; `rows`
//!   rows returned over all result sets, `columns` the last result set's
//!   column count and `fields` its column names (cut at `max_field_bytes`
//!   together), `resultSets` how many; `statementId`/`paramCount` what a
//!   `stmt_prepare` got; `serverVersion`, `connectionId` and `authPlugin`
//!   from the server's greeting (`login`), `authSwitch` the plugin the
//!   server switched the login to; `text` the string COM_STATISTICS answers.
//! - Commands that get no response by design (`quit`, `stmt_close`,
//!   `stmt_send_long_data`) have `response: null` and no `error`; a
//!   connection refused at the greeting (an ERR in place of the greeting)
//!   is an item with `request: null` and that ERR.

pub mod parser;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod mysql;

pub use mysql::MysqlSession;

use serde_json::{json, Map, Value};

crate::protocol_errors! { Mysql;
    /// A packet shorter than its fields, a length that does not add up, or
    /// a command byte no server knows.
    Malformed => "mysql_malformed",
    /// A compressed frame that does not inflate, or inflates past its
    /// announced size or `max_decompressed_bytes`.
    Decompression => "mysql_decompression",
    /// zstd-compressed traffic (MySQL 8.0.18+): reported at login, the rest
    /// of the connection is not dissected.
    Zstd => "mysql_zstd_compressed",
}

/// What the client sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MysqlRequest {
    /// The command byte (`None`: the login).
    pub command: Option<u8>,
    pub query: Option<Vec<u8>>,
    pub statement_id: Option<u32>,
    pub database: Option<Vec<u8>>,
    pub user: Option<Vec<u8>>,
    pub table: Option<Vec<u8>>,
    pub param_count: Option<u16>,
    pub attributes: Vec<(Vec<u8>, Vec<u8>)>,
    pub connect_attributes: Vec<(Vec<u8>, Vec<u8>)>,
    pub auth_plugin: Option<Vec<u8>>,
    pub tls: bool,
    pub compression: Option<&'static str>,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MysqlResponse {
    pub ok: Option<parser::Ok>,
    pub error: Option<parser::Err>,
    pub rows: u64,
    pub columns: Option<u64>,
    pub fields: Vec<Vec<u8>>,
    pub result_sets: u32,
    pub statement_id: Option<u32>,
    pub param_count: Option<u16>,
    pub server_version: Option<Vec<u8>>,
    pub connection_id: Option<u32>,
    pub auth_plugin: Option<Vec<u8>>,
    pub auth_switch: Option<Vec<u8>>,
    pub text: Option<Vec<u8>>,
}

// Built once per item and moved with it in a box (see `Message`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum MysqlMessage {
    Request(MysqlRequest),
    Response(MysqlResponse),
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opt(b: &Option<Vec<u8>>) -> Value {
    b.as_deref().map_or(Value::Null, |x| s(x).into())
}

fn pairs(p: &[(Vec<u8>, Vec<u8>)]) -> Value {
    if p.is_empty() {
        return Value::Null;
    }
    Value::Object(p.iter().map(|(k, v)| (s(k), Value::String(s(v)))).collect::<Map<_, _>>())
}

pub fn request_json(r: &MysqlRequest) -> Value {
    let command = match r.command {
        None => "login",
        Some(c) => parser::command_name(c).unwrap_or("unknown"),
    };
    json!({
        "command": command,
        "query": opt(&r.query),
        "statementId": r.statement_id,
        "database": opt(&r.database),
        "user": opt(&r.user),
        "table": opt(&r.table),
        "paramCount": r.param_count,
        "attributes": pairs(&r.attributes),
        "connectAttributes": pairs(&r.connect_attributes),
        "authPlugin": opt(&r.auth_plugin),
        "tls": r.tls,
        "compression": r.compression,
    })
}

pub fn response_json(r: &MysqlResponse) -> Value {
    let ok = r.ok.as_ref();
    json!({
        "success": r.error.is_none(),
        "affectedRows": ok.map(|o| o.affected_rows),
        "lastInsertId": ok.map(|o| o.last_insert_id),
        "warnings": ok.map(|o| o.warnings),
        "statusFlags": ok.map(|o| o.status),
        "info": ok.map(|o| s(&o.info)),
        "error": r.error.as_ref().map(|e| json!({"code": e.code, "sqlState": s(&e.sql_state), "message": s(&e.message)})),
        "rows": r.rows,
        "columns": r.columns,
        "fields": r.fields.iter().map(|f| s(f)).collect::<Vec<_>>(),
        "resultSets": r.result_sets,
        "statementId": r.statement_id,
        "paramCount": r.param_count,
        "serverVersion": opt(&r.server_version),
        "connectionId": r.connection_id,
        "authPlugin": opt(&r.auth_plugin),
        "authSwitch": opt(&r.auth_switch),
        "text": opt(&r.text),
    })
}

/// `request` or `response` JSON of a MySQL message.
pub fn message_json(m: &MysqlMessage) -> Value {
    match m {
        MysqlMessage::Request(r) => request_json(r),
        MysqlMessage::Response(r) => response_json(r),
    }
}

/// MySQL in the protocol registry.
pub struct Mysql;

impl super::Protocol for Mysql {
    const ITEM_NAME: &'static str = "mysql";
    const ABBR: &'static str = "MYSQL";
    const VERSION: &'static str = "10";
    const LONG_NAME: &'static str = "MySQL Client/Server Protocol";
    const ERRORS: &'static [&'static str] = Error::NAMES;
    // Boxed: the largest session by far, and every flow's slot holds one.
    type Session = Box<MysqlSession>;
    type Message = Box<MysqlMessage>;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        parser::probe(bytes, dir == super::Direction::ToServer)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Mysql(Box::new(MysqlSession::new()))
    }
}

impl super::ProtocolMessage for MysqlMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
