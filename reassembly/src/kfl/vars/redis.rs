//! Redis variables, read from the command (a pushed message, which has no
//! command, has only the flag and the sizes).

use std::borrow::Cow;

use super::{sizes_of, Var, VarTy};
use crate::config::AppProtocol;
use crate::dissectors::redis::{parser::has_key, RedisCommand, RedisMessage};
use crate::item::{Item, Message};
use crate::kfl::value::KVal;

/// Kubeshark cuts `redis_key` at 64 bytes.
const MAX_KEY_BYTES: usize = 64;

fn command(i: &Item) -> Option<&RedisCommand> {
    match &i.exchange.request {
        Some(Message::Redis(RedisMessage::Command(c))) => Some(c),
        _ => None,
    }
}

fn key(c: &RedisCommand) -> KVal<'_> {
    if !has_key(&c.name) {
        return KVal::empty_str();
    }
    let k = c.args.first().map(Vec::as_slice).unwrap_or_default();
    let mut end = k.len().min(MAX_KEY_BYTES);
    // Cut on a character boundary when the key is text.
    if let Ok(s) = std::str::from_utf8(k) {
        while !s.is_char_boundary(end) {
            end -= 1;
        }
    }
    KVal::bytes(k.get(..end).unwrap_or_default())
}

fn command_line(c: &RedisCommand) -> KVal<'_> {
    if c.args.is_empty() {
        return KVal::str(&c.name);
    }
    let mut line = c.name.clone();
    for a in &c.args {
        line.push(' ');
        line.push_str(&String::from_utf8_lossy(a));
    }
    KVal::Str(Cow::Owned(line))
}

pub(super) const VARS: &[Var] = &[
    Var {
        name: "redis",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(i.protocol == AppProtocol::Redis),
    },
    Var {
        name: "redis_type",
        ty: VarTy::Str,
        get: |i, _| command(i).map_or_else(KVal::empty_str, |c| KVal::str(&c.name)),
    },
    Var {
        name: "redis_command",
        ty: VarTy::Str,
        get: |i, _| command(i).map_or_else(KVal::empty_str, command_line),
    },
    Var {
        name: "redis_key",
        ty: VarTy::Str,
        get: |i, _| command(i).map_or_else(KVal::empty_str, key),
    },
];

pub(super) const SIZES: [Var; 3] =
    sizes_of!(AppProtocol::Redis, "redis_request_size", "redis_response_size", "redis_total_size");
