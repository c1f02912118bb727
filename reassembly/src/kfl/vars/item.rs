//! Variables every item has: transport, endpoints and their Kubernetes
//! names, the node, time, and `status_code`, which several protocols give.
//!
//! skua's IP map names an endpoint by the pod (or the service, for a
//! cluster IP) it belongs to without saying which of the two it is, so
//! `src.pod.name` and `src.service.name` both read that one name (and the
//! lists `pods` and `services` both hold it); `docs/kfl.md` says so.

use std::borrow::Cow;

use super::{Var, VarTy};
use crate::item::{Endpoint, Item, Layer4, Message, NodeInfo};
use crate::kfl::value::KVal;

fn ip(e: &Endpoint) -> KVal<'_> {
    KVal::Str(Cow::Owned(e.ip.to_string()))
}

fn name(e: &Endpoint) -> KVal<'_> {
    KVal::str(&e.name)
}

fn namespace(e: &Endpoint) -> KVal<'_> {
    KVal::str(&e.namespace)
}

/// The names of both endpoints that have one (each once).
fn both<'a>(i: &'a Item, f: fn(&'a Endpoint) -> &'a str) -> KVal<'a> {
    let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(2);
    for e in [&i.src, &i.dst] {
        let s = f(e);
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(Cow::Borrowed(s));
        }
    }
    KVal::List(out)
}

/// `status_code`: the HTTP status (HTTP/1.x, HTTP/2, gRPC), a DNS
/// response's RCODE; 0 otherwise or without a response.
fn status_code(i: &Item) -> KVal<'_> {
    let code = match &i.exchange.response {
        Some(Message::Http(m)) => i64::from(m.status),
        Some(Message::Http2(m)) => i64::from(m.status),
        Some(Message::Grpc(g)) => i64::from(g.http.status),
        Some(Message::Dns(d)) => i64::from(d.rcode()),
        _ => 0,
    };
    KVal::Int(code)
}

pub(super) const VARS: &[Var] = &[
    Var { name: "tcp", ty: VarTy::Bool, get: |i, _| KVal::Bool(i.layer4 == Layer4::Tcp) },
    Var { name: "udp", ty: VarTy::Bool, get: |i, _| KVal::Bool(i.layer4 == Layer4::Udp) },
    Var { name: "protocol", ty: VarTy::Str, get: |i, _| KVal::str(i.protocol_info().abbr) },
    Var {
        name: "id",
        ty: VarTy::Str,
        get: |i, n| KVal::Str(Cow::Owned(format!("{}/{}-{}", n.name, i.stream, i.index))),
    },
    Var { name: "index", ty: VarTy::Int, get: |i, _| KVal::int(i.index) },
    Var { name: "stream", ty: VarTy::Str, get: |i, _| KVal::Str(Cow::Owned(i.stream.to_string())) },
    Var { name: "worker", ty: VarTy::Str, get: |_, n: &NodeInfo| KVal::str(&n.name) },
    Var { name: "node_name", ty: VarTy::Str, get: |_, n| KVal::str(&n.name) },
    Var { name: "node_ip", ty: VarTy::Str, get: |_, n| KVal::str(&n.ip) },
    Var {
        name: "node",
        ty: VarTy::StrMap,
        get: |_, n| {
            KVal::Map(vec![
                (Cow::Borrowed("name"), Cow::Borrowed(n.name.as_str())),
                (Cow::Borrowed("ip"), Cow::Borrowed(n.ip.as_str())),
            ])
        },
    },
    Var { name: "timestamp", ty: VarTy::Timestamp, get: |i, _| KVal::Timestamp(i.ts_ns()) },
    Var {
        name: "elapsed_time",
        ty: VarTy::Int,
        get: |i, _| {
            let ex = &i.exchange;
            let us = if ex.request.is_some() && ex.response.is_some() {
                ex.response_ts_ns.saturating_sub(ex.request_ts_ns) / 1_000
            } else {
                0
            };
            KVal::size(us)
        },
    },
    Var { name: "status_code", ty: VarTy::Int, get: |i, _| status_code(i) },
    Var { name: "src.ip", ty: VarTy::Str, get: |i, _| ip(&i.src) },
    Var { name: "dst.ip", ty: VarTy::Str, get: |i, _| ip(&i.dst) },
    Var { name: "src.port", ty: VarTy::Int, get: |i, _| KVal::int(i.src.port) },
    Var { name: "dst.port", ty: VarTy::Int, get: |i, _| KVal::int(i.dst.port) },
    Var { name: "src.name", ty: VarTy::Str, get: |i, _| name(&i.src) },
    Var { name: "dst.name", ty: VarTy::Str, get: |i, _| name(&i.dst) },
    Var { name: "src.namespace", ty: VarTy::Str, get: |i, _| namespace(&i.src) },
    Var { name: "dst.namespace", ty: VarTy::Str, get: |i, _| namespace(&i.dst) },
    Var { name: "src.pod.name", ty: VarTy::Str, get: |i, _| name(&i.src) },
    Var { name: "dst.pod.name", ty: VarTy::Str, get: |i, _| name(&i.dst) },
    Var { name: "src.pod.namespace", ty: VarTy::Str, get: |i, _| namespace(&i.src) },
    Var { name: "dst.pod.namespace", ty: VarTy::Str, get: |i, _| namespace(&i.dst) },
    Var { name: "src.service.name", ty: VarTy::Str, get: |i, _| name(&i.src) },
    Var { name: "dst.service.name", ty: VarTy::Str, get: |i, _| name(&i.dst) },
    Var { name: "src.service.namespace", ty: VarTy::Str, get: |i, _| namespace(&i.src) },
    Var { name: "dst.service.namespace", ty: VarTy::Str, get: |i, _| namespace(&i.dst) },
    Var { name: "namespaces", ty: VarTy::StrList, get: |i, _| both(i, |e| &e.namespace) },
    Var { name: "pods", ty: VarTy::StrList, get: |i, _| both(i, |e| &e.name) },
    Var { name: "services", ty: VarTy::StrList, get: |i, _| both(i, |e| &e.name) },
];
