//! DNS variables. Names come from the question sections of both the query
//! and the response (a response echoes its question, so an item whose query
//! was not captured still says what was resolved).

use std::borrow::Cow;

use super::{sizes_of, Var, VarTy};
use crate::config::AppProtocol;
use crate::dissectors::dns::{type_name, DnsMessage, RData};
use crate::item::Item;
use crate::kfl::value::KVal;

fn sides(i: &Item) -> impl Iterator<Item = &DnsMessage> {
    i.dns_request().into_iter().chain(i.dns_response())
}

fn push_unique<'a>(out: &mut Vec<Cow<'a, str>>, s: Cow<'a, str>) {
    if !out.contains(&s) {
        out.push(s);
    }
}

fn questions(i: &Item) -> KVal<'_> {
    let mut out = Vec::new();
    for m in sides(i) {
        for q in &m.questions {
            push_unique(&mut out, String::from_utf8_lossy(&q.name));
        }
    }
    KVal::List(out)
}

fn question_types(i: &Item) -> KVal<'_> {
    let mut out = Vec::new();
    for m in sides(i) {
        for q in &m.questions {
            push_unique(&mut out, Cow::Owned(type_name(q.qtype)));
        }
    }
    KVal::List(out)
}

/// What each answer record says: an address, or the name it points to
/// (CNAME, NS, PTR, MX exchange, SRV target), or its text (TXT).
fn answers(i: &Item) -> KVal<'_> {
    let mut out = Vec::new();
    for r in i.dns_response().map(|m| m.answers.as_slice()).unwrap_or_default() {
        let s = match &r.data {
            RData::A(a) => Cow::Owned(std::net::Ipv4Addr::from(*a).to_string()),
            RData::Aaaa(a) => Cow::Owned(std::net::Ipv6Addr::from(*a).to_string()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => String::from_utf8_lossy(n),
            RData::Mx { exchange, .. } => String::from_utf8_lossy(exchange),
            RData::Srv { target, .. } => String::from_utf8_lossy(target),
            RData::Txt(t) => Cow::Owned(
                t.iter().map(|x| String::from_utf8_lossy(x)).collect::<Vec<_>>().join(""),
            ),
            RData::Soa { mname, .. } => String::from_utf8_lossy(mname),
            RData::Other(_) => continue,
        };
        push_unique(&mut out, s);
    }
    KVal::List(out)
}

pub(super) const VARS: &[Var] = &[
    Var { name: "dns", ty: VarTy::Bool, get: |i, _| KVal::Bool(i.protocol == AppProtocol::Dns) },
    Var { name: "dns_questions", ty: VarTy::StrList, get: |i, _| questions(i) },
    Var { name: "dns_question_types", ty: VarTy::StrList, get: |i, _| question_types(i) },
    Var { name: "dns_answers", ty: VarTy::StrList, get: |i, _| answers(i) },
    Var { name: "dns_request", ty: VarTy::Bool, get: |i, _| KVal::Bool(i.dns_request().is_some()) },
    Var {
        name: "dns_response",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(i.dns_response().is_some()),
    },
];

pub(super) const SIZES: [Var; 3] =
    sizes_of!(AppProtocol::Dns, "dns_request_length", "dns_response_length", "dns_total_size");
