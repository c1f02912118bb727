//! PostgreSQL variables.

use std::borrow::Cow;

use super::{sizes_of, Var, VarTy};
use crate::config::AppProtocol;
use crate::dissectors::postgresql::{PgMessage, PgRequest, PgResponse};
use crate::item::{Item, Message};
use crate::kfl::value::KVal;

fn request(i: &Item) -> Option<&PgRequest> {
    match &i.exchange.request {
        Some(Message::Postgresql(m)) => match m.as_ref() {
            PgMessage::Request(r) => Some(r),
            PgMessage::Response(_) => None,
        },
        _ => None,
    }
}

fn response(i: &Item) -> Option<&PgResponse> {
    match &i.exchange.response {
        Some(Message::Postgresql(m)) => match m.as_ref() {
            PgMessage::Response(r) => Some(r),
            PgMessage::Request(_) => None,
        },
        _ => None,
    }
}

/// The command: the verb of the last CommandComplete tag (`INSERT 0 1` →
/// `INSERT`), else the first word of the query, upper-cased.
fn command(i: &Item) -> KVal<'_> {
    let first = |b: &[u8]| -> String {
        let t = String::from_utf8_lossy(b);
        t.split_whitespace().next().unwrap_or_default().to_ascii_uppercase()
    };
    if let Some(tag) = response(i).and_then(|r| r.command_tag.as_deref()) {
        return KVal::Str(Cow::Owned(first(tag)));
    }
    match request(i).and_then(|r| r.query.as_deref()) {
        Some(q) => KVal::Str(Cow::Owned(first(q))),
        None => KVal::empty_str(),
    }
}

fn success(r: &PgResponse) -> bool {
    r.error.is_none() && (r.authentication.is_empty() || r.authenticated)
}

pub(super) const VARS: &[Var] = &[
    Var {
        name: "postgresql",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(i.protocol == AppProtocol::Postgresql),
    },
    Var { name: "postgresql_command", ty: VarTy::Str, get: |i, _| command(i) },
    Var {
        name: "postgresql_query",
        ty: VarTy::Str,
        get: |i, _| KVal::opt_bytes(request(i).and_then(|r| r.query.as_deref())),
    },
    Var {
        name: "postgresql_database",
        ty: VarTy::Str,
        get: |i, _| KVal::opt_bytes(request(i).and_then(|r| r.database.as_deref())),
    },
    Var {
        name: "postgresql_user",
        ty: VarTy::Str,
        get: |i, _| KVal::opt_bytes(request(i).and_then(|r| r.user.as_deref())),
    },
    Var {
        name: "postgresql_success",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(response(i).is_some_and(success)),
    },
    Var {
        name: "postgresql_error_code",
        ty: VarTy::Str,
        get: |i, _| {
            KVal::opt_bytes(response(i).and_then(|r| r.error.as_ref()).map(|e| e.code.as_slice()))
        },
    },
    Var {
        name: "postgresql_error_message",
        ty: VarTy::Str,
        get: |i, _| {
            KVal::opt_bytes(
                response(i).and_then(|r| r.error.as_ref()).map(|e| e.message.as_slice()),
            )
        },
    },
];

pub(super) const SIZES: [Var; 3] = sizes_of!(
    AppProtocol::Postgresql,
    "postgresql_request_size",
    "postgresql_response_size",
    "postgresql_total_size"
);
