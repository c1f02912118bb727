//! AMQP 0-9-1 variables.

use super::{sizes_of, Var, VarTy};
use crate::config::AppProtocol;
use crate::dissectors::amqp::{parser::Value as Field, AmqpMessage};
use crate::item::{Item, Message};
use crate::kfl::value::KVal;

fn message(m: Option<&Message>) -> Option<&AmqpMessage> {
    match m {
        Some(Message::Amqp(a)) => Some(a),
        _ => None,
    }
}

fn request(i: &Item) -> Option<&AmqpMessage> {
    message(i.exchange.request.as_ref())
}

/// What a method is about: its `queue`, else its `exchange`, else its
/// `routingKey` argument (the first one it has that is not empty).
fn summary(m: &AmqpMessage) -> KVal<'_> {
    for name in ["queue", "exchange", "routingKey"] {
        if let Some(Field::Str(s)) = m.argument(name) {
            if !s.is_empty() {
                return KVal::bytes(s);
            }
        }
    }
    KVal::empty_str()
}

pub(super) const VARS: &[Var] = &[
    Var { name: "amqp", ty: VarTy::Bool, get: |i, _| KVal::Bool(i.protocol == AppProtocol::Amqp) },
    Var {
        name: "amqp_method",
        ty: VarTy::Str,
        get: |i, _| {
            request(i)
                .or(message(i.exchange.response.as_ref()))
                .map_or_else(KVal::empty_str, |m| KVal::str(m.method))
        },
    },
    Var {
        name: "amqp_summary",
        ty: VarTy::Str,
        get: |i, _| request(i).map_or_else(KVal::empty_str, summary),
    },
    Var { name: "amqp_request", ty: VarTy::Bool, get: |i, _| KVal::Bool(request(i).is_some()) },
    Var {
        name: "amqp_response",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(message(i.exchange.response.as_ref()).is_some()),
    },
];

pub(super) const SIZES: [Var; 3] =
    sizes_of!(AppProtocol::Amqp, "amqp_request_length", "amqp_response_length", "amqp_total_size");
