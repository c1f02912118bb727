//! Kafka variables; merged fields prefer the request, as Kubeshark's do.

use std::borrow::Cow;

use super::{sizes_of, Var, VarTy};
use crate::config::AppProtocol;
use crate::dissectors::kafka::{parser, KafkaMessage, KafkaRequest, KafkaResponse};
use crate::item::{Item, Message};
use crate::kfl::value::KVal;

fn request(i: &Item) -> Option<&KafkaRequest> {
    match &i.exchange.request {
        Some(Message::Kafka(KafkaMessage::Request(r))) => Some(r),
        _ => None,
    }
}

fn response(i: &Item) -> Option<&KafkaResponse> {
    match &i.exchange.response {
        Some(Message::Kafka(KafkaMessage::Response(r))) => Some(r),
        _ => None,
    }
}

fn api_key(i: &Item) -> Option<i16> {
    request(i).map(|r| r.api_key).or(response(i).map(|r| r.api_key)).filter(|k| *k >= 0)
}

/// Kubeshark spells API names in upper snake case (`PRODUCE`,
/// `API_VERSIONS`); the dissector's are the protocol's (`ApiVersions`).
fn upper_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (k, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && k > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

pub(super) const VARS: &[Var] = &[
    Var {
        name: "kafka",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(i.protocol == AppProtocol::Kafka),
    },
    Var {
        name: "kafka_api_key",
        ty: VarTy::Int,
        get: |i, _| KVal::Int(api_key(i).map_or(0, i64::from)),
    },
    Var {
        name: "kafka_api_key_name",
        ty: VarTy::Str,
        get: |i, _| {
            api_key(i).map_or_else(KVal::empty_str, |k| {
                KVal::Str(Cow::Owned(upper_snake(parser::api(k).0)))
            })
        },
    },
    Var {
        name: "kafka_client_id",
        ty: VarTy::Str,
        get: |i, _| KVal::opt_bytes(request(i).and_then(|r| r.client_id.as_deref())),
    },
    Var {
        name: "kafka_size",
        ty: VarTy::Int,
        get: |i, _| {
            KVal::int(request(i).map(|r| r.length).or(response(i).map(|r| r.length)).unwrap_or(0))
        },
    },
    Var { name: "kafka_request", ty: VarTy::Bool, get: |i, _| KVal::Bool(request(i).is_some()) },
    Var { name: "kafka_response", ty: VarTy::Bool, get: |i, _| KVal::Bool(response(i).is_some()) },
    Var {
        // The topics the request names, joined by ", ".
        name: "kafka_request_summary",
        ty: VarTy::Str,
        get: |i, _| {
            let Some(r) = request(i) else { return KVal::empty_str() };
            let names: Vec<Cow<'_, str>> =
                r.topics.topics.iter().map(|t| String::from_utf8_lossy(&t.name)).collect();
            match names.as_slice() {
                [] => KVal::empty_str(),
                [one] => KVal::Str(one.clone()),
                _ => KVal::Str(Cow::Owned(names.join(", "))),
            }
        },
    },
];

pub(super) const SIZES: [Var; 3] =
    sizes_of!(AppProtocol::Kafka, "kafka_request_size", "kafka_response_size", "kafka_total_size");

#[cfg(test)]
mod tests {
    #[test]
    fn api_names_are_upper_snake_case() {
        assert_eq!(super::upper_snake("Produce"), "PRODUCE");
        assert_eq!(super::upper_snake("ApiVersions"), "API_VERSIONS");
    }
}
