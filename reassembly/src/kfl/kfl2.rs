//! KFL2: a CEL expression, parsed by cel-rust, then checked and rewritten
//! here before it is evaluated by cel-rust.
//!
//! The pass over the parsed expression does three things at once:
//! - **binds** each variable the query names to a slot
//!   ([`super::binding`]): `src.pod.name` (a `Select` chain in CEL's AST)
//!   becomes one identifier, `request.headers["host"]` one header lookup,
//!   `"x" in request.headers` one presence test, `s.matches("re")` one
//!   regex compiled now;
//! - **checks types** statically, with what Kubeshark's variables are
//!   (`status_code == "x"` is an error naming its position, not a filter
//!   that silently matches nothing), as far as the types are known: a
//!   value cel only knows at run time (`dyn`) passes;
//! - **rejects** what cannot be evaluated in bounded time: comprehensions
//!   nested deeper than [`MAX_COMPREHENSION_DEPTH`], regexes over
//!   [`super::MAX_REGEX_BYTES`] compiled, `matches` with a pattern that is
//!   not a literal.
//!
//! Why not cel-rust's own checking: cel-rust has no type checker (a
//! mistyped comparison is a run-time error on every item) and resolves
//! every identifier by name at run time.

use std::sync::Arc;

use cel::common::ast::SourceInfo;
use cel::common::ast::{
    operators as op, CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue,
};

use super::binding::{slot_name, CmpOp, RegexVal, Slot, StrSrc, StrTest};
use super::value::Ty;
use super::{vars, KflError, MAX_REGEX_BYTES};

/// Comprehensions (`exists`, `all`, `map`, `filter`) inside one another:
/// each multiplies the work per item by the size of what it iterates.
pub const MAX_COMPREHENSION_DEPTH: usize = 2;

/// What checking found besides errors.
pub(crate) struct Checked {
    pub expr: IdedExpr,
    pub slots: Vec<Slot>,
    /// A raw string literal (`r"…"`) compared with `==`/`!=`: KFL1's regex
    /// syntax, which CEL reads as a plain string.
    pub kfl1_regex: bool,
}

struct Pass<'s> {
    source: &'s str,
    info: &'s SourceInfo,
    slots: Vec<Slot>,
    /// Comprehension variables in scope, innermost last.
    scope: Vec<(String, Ty)>,
    comprehension_depth: usize,
    kfl1_regex: bool,
}

/// Checks and binds a parsed KFL2 expression.
pub(crate) fn check(expr: IdedExpr, source: &str, info: &SourceInfo) -> Result<Checked, KflError> {
    let mut pass = Pass {
        source,
        info,
        slots: Vec::new(),
        scope: Vec::new(),
        comprehension_depth: 0,
        kfl1_regex: false,
    };
    let mut expr = expr;
    let ty = pass.expr(&mut expr)?;
    if !matches!(ty, Ty::Bool | Ty::Dyn) {
        return Err(pass.error(
            &expr,
            format!("a filter must be a boolean expression; this one is {}", ty.name()),
        ));
    }
    Ok(Checked { expr, slots: pass.slots, kfl1_regex: pass.kfl1_regex })
}

/// Identifiers that name a type (`type(x) == string`).
const TYPE_NAMES: &[&str] =
    &["bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type"];

/// The qualified name an expression spells (`src.pod.name`), root first.
fn segments(e: &IdedExpr) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut cur = e;
    loop {
        match &cur.expr {
            Expr::Ident(n) => {
                out.push(n.as_str());
                out.reverse();
                return Some(out);
            }
            Expr::Select(s) if !s.test => {
                out.push(s.field.as_str());
                cur = &s.operand;
            }
            _ => return None,
        }
    }
}

fn literal_ty(l: &LiteralValue) -> Ty {
    match l {
        LiteralValue::Boolean(_) => Ty::Bool,
        LiteralValue::Bytes(_) => Ty::Bytes,
        LiteralValue::Double(_) => Ty::Double,
        LiteralValue::Int(_) => Ty::Int,
        LiteralValue::Null => Ty::Null,
        LiteralValue::String(_) => Ty::Str,
        LiteralValue::UInt(_) => Ty::Uint,
    }
}

fn string_literal(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// Whether values of these types can be compared for equality (CEL's
/// numbers compare across int, uint and double).
fn comparable(a: &Ty, b: &Ty) -> bool {
    matches!(a, Ty::Dyn | Ty::Null)
        || matches!(b, Ty::Dyn | Ty::Null)
        || a == b
        || (a.is_numeric() && b.is_numeric())
        || matches!((a, b), (Ty::List(_), Ty::List(_)))
        || matches!((a, b), (Ty::StrMap | Ty::Map, Ty::StrMap | Ty::Map))
}

fn ordered(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) => true,
        _ if a.is_numeric() && b.is_numeric() => true,
        (Ty::Str, Ty::Str)
        | (Ty::Bool, Ty::Bool)
        | (Ty::Bytes, Ty::Bytes)
        | (Ty::Timestamp, Ty::Timestamp)
        | (Ty::Duration, Ty::Duration) => true,
        _ => false,
    }
}

impl Pass<'_> {
    /// An error at `e`'s position.
    fn error(&self, e: &IdedExpr, msg: impl Into<String>) -> KflError {
        let offset = self.info.offset_for(e.id).map_or(0, |(start, _)| start as usize);
        KflError::at_char(self.source, offset, msg.into())
    }

    fn slot(&mut self, s: Slot) -> Expr {
        self.slots.push(s);
        Expr::Ident(slot_name(self.slots.len() - 1))
    }

    /// Binds a (possibly dotted) variable name, or says why it cannot.
    fn bind_name(&mut self, e: &mut IdedExpr) -> Result<Option<Ty>, KflError> {
        let Some(segs) = segments(e) else { return Ok(None) };
        let root = segs.first().copied().unwrap_or_default();
        if let Some((_, ty)) = self.scope.iter().rev().find(|(n, _)| n == root) {
            if segs.len() == 1 {
                return Ok(Some(ty.clone()));
            }
            return Ok(None); // a field of a comprehension variable: cel selects it
        }
        let whole = segs.join(".");
        if let Some(v) = vars::find(&whole) {
            e.expr = self.slot(Slot::Var(v));
            return Ok(Some(v.ty.ty()));
        }
        if segs.len() == 1 && TYPE_NAMES.contains(&root) {
            return Ok(Some(Ty::Type));
        }
        // A map variable followed by a field (`node.name`,
        // `request.headers.host`): bind the map, cel selects the field.
        for k in (1..segs.len()).rev() {
            let prefix = segs.get(..k).unwrap_or_default().join(".");
            if let Some(v) = vars::find(&prefix) {
                if matches!(v.ty.ty(), Ty::StrMap | Ty::Map) {
                    return Ok(None);
                }
                let field = segs.get(k).copied().unwrap_or_default();
                return Err(self.error(
                    e,
                    format!("{prefix} is {}: it has no field {field}", v.ty.ty().name()),
                ));
            }
        }
        if vars::is_prefix(&whole) {
            let examples: Vec<&str> = vars::all()
                .map(|v| v.name)
                .filter(|n| n.starts_with(&whole) && n.as_bytes().get(whole.len()) == Some(&b'.'))
                .take(4)
                .collect();
            return Err(self.error(
                e,
                format!("{whole} is not a variable (did you mean {}?)", examples.join(", ")),
            ));
        }
        Err(self.error(e, format!("unknown variable {whole}")))
    }

    fn expr(&mut self, e: &mut IdedExpr) -> Result<Ty, KflError> {
        match &e.expr {
            Expr::Ident(_) => {
                return self.bind_name(e)?.ok_or_else(|| self.error(e, "unknown variable"));
            }
            Expr::Select(s) if !s.test => {
                if let Some(ty) = self.bind_name(e)? {
                    return Ok(ty);
                }
            }
            _ => {}
        }
        // Clone-free dispatch on the node: take it out, put it back.
        let mut node = std::mem::take(&mut e.expr);
        let ty = match &mut node {
            Expr::Unspecified => Err(self.error(e, "empty expression")),
            Expr::Literal(l) => Ok(literal_ty(l)),
            Expr::Ident(_) => Ok(Ty::Dyn),
            Expr::Select(s) => {
                let operand = self.expr(&mut s.operand)?;
                match operand {
                    Ty::StrMap if s.test => Ok(Ty::Bool),
                    Ty::StrMap => Ok(Ty::Str),
                    Ty::Map | Ty::Dyn => Ok(if s.test { Ty::Bool } else { Ty::Dyn }),
                    other => {
                        Err(self.error(e, format!("a {} has no field {}", other.name(), s.field)))
                    }
                }
            }
            Expr::Call(c) => match self.call(e, c) {
                Ok((ty, Some(slot))) => {
                    e.expr = slot;
                    return Ok(ty);
                }
                Ok((ty, None)) => Ok(ty),
                Err(err) => Err(err),
            },
            Expr::Comprehension(c) => self.comprehension(e, c),
            Expr::List(l) => {
                let mut elem: Option<Ty> = None;
                for x in &mut l.elements {
                    let t = self.expr(x)?;
                    elem = Some(match elem {
                        None => t,
                        Some(prev) if prev == t => prev,
                        Some(_) => Ty::Dyn,
                    });
                }
                Ok(Ty::List(Box::new(elem.unwrap_or(Ty::Dyn))))
            }
            Expr::Map(m) => {
                for entry in &mut m.entries {
                    match &mut entry.expr {
                        EntryExpr::MapEntry(me) => {
                            self.expr(&mut me.key)?;
                            self.expr(&mut me.value)?;
                        }
                        EntryExpr::StructField(_) => {
                            return Err(self.error(e, "messages are not supported in KFL"))
                        }
                    }
                }
                Ok(Ty::Map)
            }
            Expr::Struct(_) => Err(self.error(e, "messages are not supported in KFL")),
        };
        e.expr = node;
        ty
    }

    fn comprehension(
        &mut self,
        e: &IdedExpr,
        c: &mut Box<ComprehensionExpr>,
    ) -> Result<Ty, KflError> {
        if self.comprehension_depth >= MAX_COMPREHENSION_DEPTH {
            return Err(self.error(
                e,
                format!(
                    "macros (exists, all, map, filter) nest at most {MAX_COMPREHENSION_DEPTH} deep"
                ),
            ));
        }
        let range = self.expr(&mut c.iter_range)?;
        match range {
            Ty::List(_) | Ty::StrMap | Ty::Map | Ty::Dyn => {}
            other => return Err(self.error(e, format!("cannot iterate over a {}", other.name()))),
        }
        let accu = self.expr(&mut c.accu_init)?;
        self.comprehension_depth += 1;
        let depth = self.scope.len();
        self.scope.push((c.accu_var.clone(), accu));
        self.scope.push((c.iter_var.clone(), range.element()));
        if let Some(v2) = &c.iter_var2 {
            self.scope.push((v2.clone(), Ty::Dyn));
        }
        let cond = self.expr(&mut c.loop_cond);
        let step = cond.and_then(|_| self.expr(&mut c.loop_step));
        self.scope.truncate(depth + 1); // the accumulator stays for the result
        if let Ok(step) = &step {
            if let Some(slot) = self.scope.last_mut() {
                if slot.1 != *step {
                    slot.1 = Ty::Dyn;
                }
            }
        }
        let result = step.and_then(|_| self.expr(&mut c.result));
        self.scope.truncate(depth);
        self.comprehension_depth -= 1;
        result
    }

    /// Checks a call; `Some(expr)` replaces the call (a slot).
    fn call(&mut self, e: &IdedExpr, c: &mut CallExpr) -> Result<(Ty, Option<Expr>), KflError> {
        let name = c.func_name.clone();
        // Header lookups and presence tests on a literal name.
        if name == op::INDEX && c.target.is_none() {
            if let [map, key] = c.args.as_slice() {
                if let (Some(side), Some(k)) = (header_map(map), string_literal(key)) {
                    let slot = Slot::Header { response: side, name: k.into() };
                    return Ok((Ty::Str, Some(self.slot(slot))));
                }
            }
        }
        if name == op::IN && c.target.is_none() {
            if let [key, map] = c.args.as_slice() {
                if let (Some(k), Some(side)) = (string_literal(key), header_map(map)) {
                    let slot = Slot::HasHeader { response: side, name: k.into() };
                    return Ok((Ty::Bool, Some(self.slot(slot))));
                }
            }
        }
        if name == "matches" {
            return self.matches(e, c);
        }
        if let Some(slot) = self.fused_comparison(&name, c) {
            return Ok((Ty::Bool, Some(slot)));
        }
        if let Some(slot) = self.fused_string_test(&name, c) {
            return Ok((Ty::Bool, Some(slot)));
        }
        if (name == op::EQUALS || name == op::NOT_EQUALS)
            && c.args.iter().any(|a| self.is_raw_string(a))
        {
            self.kfl1_regex = true;
        }
        let target = match c.target.as_deref_mut() {
            Some(t) => Some(self.expr(t)?),
            None => None,
        };
        let mut args = Vec::with_capacity(c.args.len());
        for a in &mut c.args {
            args.push(self.expr(a)?);
        }
        self.call_type(e, &name, target, &args).map(|t| (t, None))
    }

    /// `int_variable <op> int_literal` (or the literal first) as one slot
    /// computed on the item: cel-rust builds an error value (six
    /// allocations) for every ordering comparison it evaluates, in case
    /// the operands do not compare; an int variable and an int literal
    /// always do, so this is the same result without that cost.
    fn fused_comparison(&mut self, name: &str, c: &CallExpr) -> Option<Expr> {
        let op = match name {
            op::LESS => CmpOp::Lt,
            op::LESS_EQUALS => CmpOp::Le,
            op::GREATER => CmpOp::Gt,
            op::GREATER_EQUALS => CmpOp::Ge,
            _ => return None,
        };
        let [a, b] = c.args.as_slice() else { return None };
        let int = |e: &IdedExpr| match &e.expr {
            Expr::Literal(LiteralValue::Int(i)) => Some(*i.inner()),
            _ => None,
        };
        let (var, lit, op) = match (int(a), int(b)) {
            (None, Some(n)) => (a, n, op),
            (Some(n), None) => (b, n, op.flip()),
            _ => return None,
        };
        let segs = segments(var)?;
        if self.scope.iter().any(|(n, _)| Some(&n.as_str()) == segs.first()) {
            return None;
        }
        let v = vars::find(&segs.join(".")).filter(|v| v.ty == vars::VarTy::Int)?;
        Some(self.slot(Slot::CmpInt { var: v, op, rhs: lit }))
    }

    /// The string a fused test can read `e` from: a string variable, or a
    /// header looked up by a literal name.
    fn str_source(&self, e: &IdedExpr) -> Option<StrSrc> {
        if let Expr::Call(c) = &e.expr {
            if let ([map, key], true, None) =
                (c.args.as_slice(), c.func_name == op::INDEX, &c.target)
            {
                let response = header_map(map)?;
                return Some(StrSrc::Header { response, name: string_literal(key)?.into() });
            }
            return None;
        }
        let segs = segments(e)?;
        if self.scope.iter().any(|(n, _)| Some(&n.as_str()) == segs.first()) {
            return None;
        }
        vars::find(&segs.join(".")).filter(|v| v.ty == vars::VarTy::Str).map(StrSrc::Var)
    }

    /// A string variable (or header) tested against a string literal as
    /// one slot: `method == "GET"`, `path.startsWith("/api")`,
    /// `request.headers["host"] != "x"`. The same result as cel's, without
    /// cel's per-call cost (a member call resolves its overload by name
    /// and collects its arguments in a new `Vec` every time).
    fn fused_string_test(&mut self, name: &str, c: &CallExpr) -> Option<Expr> {
        let (subject, lit) = match (name, c.target.as_deref(), c.args.as_slice()) {
            (op::EQUALS | op::NOT_EQUALS, None, [a, b]) => {
                match (string_literal(a), string_literal(b)) {
                    (None, Some(l)) => (a, l),
                    (Some(l), None) => (b, l),
                    _ => return None,
                }
            }
            ("startsWith" | "endsWith" | "contains", Some(t), [arg]) => (t, string_literal(arg)?),
            _ => return None,
        };
        if self.is_raw_string_in(c) {
            return None;
        }
        let src = self.str_source(subject)?;
        let lit: Box<str> = lit.into();
        let test = match name {
            op::EQUALS => StrTest::Eq(lit),
            op::NOT_EQUALS => StrTest::Ne(lit),
            "startsWith" => StrTest::StartsWith(lit),
            "endsWith" => StrTest::EndsWith(lit),
            _ => StrTest::Contains(lit),
        };
        Some(self.slot(Slot::StrTest { src, test }))
    }

    fn is_raw_string_in(&self, c: &CallExpr) -> bool {
        c.args.iter().any(|a| self.is_raw_string(a))
    }

    /// Whether `e` is a string literal written raw (`r"…"`).
    fn is_raw_string(&self, e: &IdedExpr) -> bool {
        string_literal(e).is_some()
            && self.info.offset_for(e.id).is_some_and(|(start, _)| {
                let rest = self.source.chars().skip(start as usize);
                let head: String = rest.take(2).collect();
                matches!(head.as_str(), "r\"" | "r'" | "R\"" | "R'")
            })
    }

    /// `s.matches("re")` or `matches(s, "re")`: the regex is compiled now
    /// and the call becomes `kfl_re(s, <regex slot>)`.
    fn matches(&mut self, e: &IdedExpr, c: &mut CallExpr) -> Result<(Ty, Option<Expr>), KflError> {
        let mut parts: Vec<IdedExpr> = Vec::with_capacity(2);
        if let Some(t) = c.target.take() {
            parts.push(*t);
        }
        parts.append(&mut c.args);
        let [mut subject, pattern] = <[IdedExpr; 2]>::try_from(parts)
            .map_err(|_| self.error(e, "matches takes a string and a pattern"))?;
        let Some(re) = string_literal(&pattern) else {
            return Err(self.error(&pattern, "the pattern of matches must be a string literal"));
        };
        let re = compile_regex(re).map_err(|m| self.error(&pattern, m))?;
        if let Some(src) = self.str_source(&subject) {
            let slot = self.slot(Slot::StrTest { src, test: StrTest::Matches(re) });
            return Ok((Ty::Bool, Some(slot)));
        }
        let ty = self.expr(&mut subject)?;
        if !matches!(ty, Ty::Str | Ty::Dyn) {
            return Err(self.error(&subject, format!("matches needs a string, not {}", ty.name())));
        }
        let slot = self.slot(Slot::Regex(re));
        c.func_name = "kfl_re".into();
        c.target = None;
        c.args = vec![subject, IdedExpr { id: pattern.id, expr: slot }];
        Ok((Ty::Bool, None))
    }

    fn call_type(
        &self,
        e: &IdedExpr,
        name: &str,
        target: Option<Ty>,
        args: &[Ty],
    ) -> Result<Ty, KflError> {
        let err = |m: String| Err(self.error(e, m));
        let a = |k: usize| args.get(k).cloned().unwrap_or(Ty::Dyn);
        match (name, &target, args.len()) {
            (op::LOGICAL_AND | op::LOGICAL_OR, None, 2) | (op::LOGICAL_NOT, None, 1) => {
                for t in args {
                    if !matches!(t, Ty::Bool | Ty::Dyn) {
                        let sym = match name {
                            op::LOGICAL_AND => "&&",
                            op::LOGICAL_OR => "||",
                            _ => "!",
                        };
                        return err(format!("{sym} needs booleans, not {}", t.name()));
                    }
                }
                Ok(Ty::Bool)
            }
            (op::NOT_STRICTLY_FALSE, None, 1) => Ok(Ty::Bool),
            (op::EQUALS | op::NOT_EQUALS, None, 2) => {
                if comparable(&a(0), &a(1)) {
                    Ok(Ty::Bool)
                } else {
                    err(format!("cannot compare {} with {}", a(0).name(), a(1).name()))
                }
            }
            (op::LESS | op::LESS_EQUALS | op::GREATER | op::GREATER_EQUALS, None, 2) => {
                if ordered(&a(0), &a(1)) {
                    Ok(Ty::Bool)
                } else {
                    err(format!("cannot order {} and {}", a(0).name(), a(1).name()))
                }
            }
            (op::IN, None, 2) => match a(1) {
                Ty::List(el) if comparable(&a(0), &el) => Ok(Ty::Bool),
                Ty::List(el) => {
                    err(format!("a {} is never in a list of {}", a(0).name(), el.name()))
                }
                Ty::StrMap if matches!(a(0), Ty::Str | Ty::Dyn) => Ok(Ty::Bool),
                Ty::Map | Ty::Dyn => Ok(Ty::Bool),
                other => err(format!("in needs a list or a map, not {}", other.name())),
            },
            (op::CONDITIONAL, None, 3) => {
                if !matches!(a(0), Ty::Bool | Ty::Dyn) {
                    return err(format!("a condition must be a boolean, not {}", a(0).name()));
                }
                Ok(if a(1) == a(2) { a(1) } else { Ty::Dyn })
            }
            (op::INDEX, None, 2) => match (a(0), a(1)) {
                (Ty::List(el), Ty::Int | Ty::Uint | Ty::Dyn) => Ok(*el),
                (Ty::StrMap, Ty::Str | Ty::Dyn) => Ok(Ty::Str),
                (Ty::Map | Ty::Dyn, _) => Ok(Ty::Dyn),
                (c, k) => err(format!("cannot index a {} with a {}", c.name(), k.name())),
            },
            (op::NEGATE, None, 1) => match a(0) {
                t if t.is_numeric() || t == Ty::Dyn || t == Ty::Duration => Ok(t),
                t => err(format!("cannot negate a {}", t.name())),
            },
            (op::ADD | op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO, None, 2) => {
                arithmetic(name, &a(0), &a(1)).map_or_else(
                    || err(format!("no {name} for {} and {}", a(0).name(), a(1).name())),
                    Ok,
                )
            }
            // String functions (cel's and its strings extension).
            (
                "contains" | "startsWith" | "endsWith" | "lowerAscii" | "upperAscii" | "trim"
                | "replace" | "split" | "substring" | "indexOf" | "lastIndexOf" | "charAt"
                | "reverse" | "format",
                Some(t),
                _,
            ) => {
                if !matches!(t, Ty::Str | Ty::Dyn) {
                    return err(format!("{name}() needs a string, not {}", t.name()));
                }
                for (k, arg) in args.iter().enumerate() {
                    let want_int = matches!(
                        (name, k),
                        ("substring", _) | ("charAt", 0) | ("indexOf", 1) | ("lastIndexOf", 1)
                    ) || (name == "replace" && k == 2)
                        || (name == "split" && k == 1);
                    let ok = if want_int {
                        matches!(arg, Ty::Int | Ty::Dyn)
                    } else if name == "format" {
                        true
                    } else {
                        matches!(arg, Ty::Str | Ty::Dyn)
                    };
                    if !ok {
                        return err(format!("wrong argument to {name}(): {}", arg.name()));
                    }
                }
                Ok(match name {
                    "contains" | "startsWith" | "endsWith" => Ty::Bool,
                    "indexOf" | "lastIndexOf" => Ty::Int,
                    "split" => Ty::str_list(),
                    _ => Ty::Str,
                })
            }
            ("join", Some(t), _) => match t {
                Ty::List(_) | Ty::Dyn => Ok(Ty::Str),
                t => err(format!("join() needs a list, not {}", t.name())),
            },
            ("size", Some(_), 0) | ("size", None, 1) => {
                let t = target.clone().unwrap_or_else(|| a(0));
                match t {
                    Ty::Str | Ty::Bytes | Ty::List(_) | Ty::StrMap | Ty::Map | Ty::Dyn => {
                        Ok(Ty::Int)
                    }
                    t => err(format!("size() needs a string, list or map, not {}", t.name())),
                }
            }
            ("int", None, 1) => Ok(Ty::Int),
            ("uint", None, 1) => Ok(Ty::Uint),
            ("double", None, 1) => Ok(Ty::Double),
            ("string", None, 1) => Ok(Ty::Str),
            ("bytes", None, 1) => Ok(Ty::Bytes),
            ("bool", None, 1) => Ok(Ty::Bool),
            ("dyn", None, 1) => Ok(Ty::Dyn),
            ("type", None, 1) => Ok(Ty::Type),
            ("timestamp", None, 1) => Ok(Ty::Timestamp),
            ("duration", None, 1) => Ok(Ty::Duration),
            ("now", None, 0) => Ok(Ty::Timestamp),
            ("map_get", None, 3) => match a(0) {
                Ty::StrMap if matches!(a(2), Ty::Str | Ty::Dyn) => Ok(Ty::Str),
                Ty::StrMap | Ty::Map | Ty::List(_) | Ty::Dyn => Ok(Ty::Dyn),
                t => err(format!("map_get() needs a map, not {}", t.name())),
            },
            (
                "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate"
                | "getDayOfWeek" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds",
                Some(t),
                _,
            ) => match t {
                Ty::Timestamp | Ty::Duration | Ty::Dyn => Ok(Ty::Int),
                t => err(format!("{name}() needs a timestamp, not {}", t.name())),
            },
            // Produced by the macros' expansion.
            ("@not_strictly_false", _, _) => Ok(Ty::Bool),
            _ => err(format!("unknown function {name} with {} argument(s)", args.len())),
        }
    }
}

/// The result type of an arithmetic operator, `None` if it has none.
fn arithmetic(name: &str, a: &Ty, b: &Ty) -> Option<Ty> {
    Some(match (name, a, b) {
        (_, Ty::Dyn, _) | (_, _, Ty::Dyn) => Ty::Dyn,
        (_, x, y) if x.is_numeric() && x == y => x.clone(),
        (op::ADD, Ty::Str, Ty::Str) => Ty::Str,
        (op::ADD, Ty::Bytes, Ty::Bytes) => Ty::Bytes,
        (op::ADD, Ty::List(x), Ty::List(y)) => {
            if x == y {
                Ty::List(x.clone())
            } else {
                Ty::List(Box::new(Ty::Dyn))
            }
        }
        (op::ADD, Ty::Timestamp, Ty::Duration) | (op::ADD, Ty::Duration, Ty::Timestamp) => {
            Ty::Timestamp
        }
        (op::ADD | op::SUBSTRACT, Ty::Duration, Ty::Duration) => Ty::Duration,
        (op::SUBSTRACT, Ty::Timestamp, Ty::Duration) => Ty::Timestamp,
        (op::SUBSTRACT, Ty::Timestamp, Ty::Timestamp) => Ty::Duration,
        _ => return None,
    })
}

/// `Some(true)` for `response.headers`, `Some(false)` for
/// `request.headers`, else `None`.
fn header_map(e: &IdedExpr) -> Option<bool> {
    match segments(e)?.as_slice() {
        ["request", "headers"] => Some(false),
        ["response", "headers"] => Some(true),
        _ => None,
    }
}

/// Compiles a KFL regex: RE2 semantics (linear time, no backtracking),
/// bounded in size.
pub(crate) fn compile_regex(re: &str) -> Result<RegexVal, String> {
    regex::RegexBuilder::new(re)
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(MAX_REGEX_BYTES)
        .nest_limit(64)
        .build()
        .map(|r| RegexVal(Arc::new(r)))
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(n) => {
                format!("regex too large: it compiles to more than {n} bytes")
            }
            e => format!("invalid regex: {}", e.to_string().lines().last().unwrap_or_default()),
        })
}
