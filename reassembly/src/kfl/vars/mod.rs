//! KFL2's variables: Kubeshark's flat names (`method`, `status_code`,
//! `dns_questions`, `src.pod.name` …), each read from the Rust item when —
//! and only when — an expression reads it.
//!
//! **Adding a protocol's variables.** Each protocol has one file here with a
//! `VARS` table (name, type, getter) and its entry in [`TABLES`]; nothing
//! else changes: the compiler finds a name in the tables, the checker uses
//! its type, the binding calls its getter, and `docs/kfl.md` must list it
//! (a test checks). A getter takes the item and the capturing node and
//! returns the variable's value, or its default (`""`, `0`, `false`, `[]`,
//! `{}`) when the item has none — never an error: an absent variable is
//! its default, as in Kubeshark.
//!
//! Variables shared by several protocols (`status_code`, the endpoints, the
//! protocol flags `tcp`/`udp`) live in `item.rs`.

use super::value::{KVal, Ty};
use crate::item::{Item, NodeInfo};

mod amqp;
mod dns;
pub(crate) mod http;
mod item;
mod kafka;
mod postgresql;
mod redis;

/// A variable's type, in a form a `const` table can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarTy {
    Bool,
    Int,
    Str,
    StrList,
    StrMap,
    Map,
    Timestamp,
}

impl VarTy {
    pub fn ty(self) -> Ty {
        match self {
            VarTy::Bool => Ty::Bool,
            VarTy::Int => Ty::Int,
            VarTy::Str => Ty::Str,
            VarTy::StrList => Ty::str_list(),
            VarTy::StrMap => Ty::StrMap,
            VarTy::Map => Ty::Map,
            VarTy::Timestamp => Ty::Timestamp,
        }
    }
}

/// Reads one variable of an item.
pub type Getter = for<'a> fn(&'a Item, &'a NodeInfo) -> KVal<'a>;

/// One KFL2 variable.
#[derive(Clone, Copy)]
pub struct Var {
    /// As written in a query, dots included (`src.pod.name`).
    pub name: &'static str,
    pub ty: VarTy,
    pub get: Getter,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var").field("name", &self.name).field("ty", &self.ty).finish()
    }
}

/// Every protocol's table; a protocol added to skua adds its own here.
pub const TABLES: &[&[Var]] = &[
    item::VARS,
    http::VARS,
    http::GRPC_VARS,
    dns::VARS,
    &dns::SIZES,
    redis::VARS,
    &redis::SIZES,
    kafka::VARS,
    &kafka::SIZES,
    postgresql::VARS,
    &postgresql::SIZES,
    amqp::VARS,
    &amqp::SIZES,
];

/// Every variable, in table order.
pub fn all() -> impl Iterator<Item = &'static Var> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// The variable of that name.
pub fn find(name: &str) -> Option<&'static Var> {
    all().find(|v| v.name == name)
}

/// Whether `name` starts a dotted variable name (`src`, `src.pod`,
/// `request`): such a prefix alone is not a value.
pub fn is_prefix(name: &str) -> bool {
    all().any(|v| {
        v.name.len() > name.len()
            && v.name.starts_with(name)
            && v.name.as_bytes().get(name.len()) == Some(&b'.')
    })
}

/// Bytes on the wire of each side of an item and both: the `*_size`,
/// `*_length` and `*_total_size` variables of every protocol.
pub(crate) fn request_size(i: &Item) -> KVal<'_> {
    KVal::size(if i.exchange.request.is_some() { i.exchange.request_size } else { 0 })
}

pub(crate) fn response_size(i: &Item) -> KVal<'_> {
    KVal::size(if i.exchange.response.is_some() { i.exchange.response_size } else { 0 })
}

pub(crate) fn total_size(i: &Item) -> KVal<'_> {
    KVal::size(i.exchange.request_size.saturating_add(i.exchange.response_size))
}

/// A getter of the size variables for items of one protocol only (0 for
/// the others).
macro_rules! sizes_of {
    ($proto:path, $req:literal, $resp:literal, $total:literal) => {
        [
            $crate::kfl::vars::Var {
                name: $req,
                ty: $crate::kfl::vars::VarTy::Int,
                get: |i, _| {
                    if i.protocol == $proto {
                        $crate::kfl::vars::request_size(i)
                    } else {
                        $crate::kfl::value::KVal::Int(0)
                    }
                },
            },
            $crate::kfl::vars::Var {
                name: $resp,
                ty: $crate::kfl::vars::VarTy::Int,
                get: |i, _| {
                    if i.protocol == $proto {
                        $crate::kfl::vars::response_size(i)
                    } else {
                        $crate::kfl::value::KVal::Int(0)
                    }
                },
            },
            $crate::kfl::vars::Var {
                name: $total,
                ty: $crate::kfl::vars::VarTy::Int,
                get: |i, _| {
                    if i.protocol == $proto {
                        $crate::kfl::vars::total_size(i)
                    } else {
                        $crate::kfl::value::KVal::Int(0)
                    }
                },
            },
        ]
    };
}
pub(crate) use sizes_of;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = all().map(|v| v.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a variable is declared twice");
    }

    #[test]
    fn every_variable_is_documented() {
        let doc = include_str!("../../../../docs/kfl.md");
        for v in all() {
            assert!(doc.contains(&format!("`{}`", v.name)), "docs/kfl.md does not list {}", v.name);
        }
    }

    #[test]
    fn prefixes_are_not_variables() {
        assert!(is_prefix("src") && is_prefix("src.pod") && is_prefix("request"));
        assert!(!is_prefix("src.ip") && !is_prefix("method"));
    }
}
