//! KFL1, the filter language published agents pass to `kfl.match`:
//! parsed here and translated into a CEL expression over the same binding
//! and the same evaluator as KFL2.
//!
//! The subset (Kubeshark's KFL1 reference, as its agents and the old
//! dashboard use it):
//! - `and`, `or` (evaluated left to right, no precedence between them, as
//!   KFL1's reference says; parentheses group), `!`, unary `-`;
//! - `==`, `!=`, `<`, `>`, `<=`, `>=`; a regex literal `r"…"` on one side
//!   of `==`/`!=` matches (RE2 semantics) instead of comparing;
//! - selectors over the item's JSON: `a.b.c`, `a["key"]`, `a[0]`; a
//!   selector alone is true when it holds something (not `false`, `null`,
//!   0 or empty); a selector the item does not have makes the whole query
//!   false (KFL1's rule);
//! - `.startsWith(s)`, `.endsWith(s)`, `.contains(s)` on a selector;
//! - literals: strings, numbers, `true`, `false`, `nil`;
//! - protocol macros: `http`, `dns`, `grpc`, `gql`, `redis`, `kafka`,
//!   `amqp`, `postgresql`, `tcp`, `udp` … (every boolean KFL2 variable
//!   without a dot that is not also a top-level field of the item);
//! - helpers `now()`, `datetime("1/2/2006, 3:04:05 PM")`, `seconds(n)`,
//!   `minutes(n)`, `hours(n)`, `days(n)`, `weeks(n)`, `months(n)` (30
//!   days), `years(n)` (365 days) — times in ms since the epoch, as
//!   `timestamp` is in the item's JSON — and `limit(n)` (always true: a
//!   query's limit is the caller's business).
//!
//! Not supported (a clear error naming the position): the wildcard
//! selector `.*`, `json()`, `xml()`, `redact()`.
//!
//! Comparisons are loose, as KFL1's are over JSON: a number and its text
//! are equal (`src.port == 8080` holds for the JSON's `"8080"`), numbers
//! in text order as numbers.
//!
//! Why a hand-written parser rather than `pest` or `chumsky`: the grammar
//! is a dozen productions, and the errors must carry the byte offset of the
//! offending token in the caller's query; a recursive-descent parser with
//! an explicit depth limit gives both in ~300 lines with no dependency and
//! no unbounded recursion.

use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{CelBool, CelDouble, CelInt, CelString};

use super::binding::{slot_name, Slot};
use super::json::{is_root, Path, Seg};
use super::kfl2::compile_regex;
use super::value::Ty;
use super::{vars, KflError, MAX_DEPTH};
use crate::item::JSON_KEYS;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Regex(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
    End,
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    fn err(&self, at: usize, msg: impl Into<String>) -> KflError {
        KflError::at_byte(self.src, at, msg.into())
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    /// The next token and the byte offset it starts at.
    fn next(&mut self) -> Result<(Tok, usize), KflError> {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
        let at = self.pos;
        let mut chars = trimmed.chars();
        let Some(c) = chars.next() else { return Ok((Tok::End, at)) };
        if (c == 'r' || c == 'R') && matches!(chars.next(), Some('"') | Some('\'')) {
            self.pos += 1;
            let s = self.string()?;
            return Ok((Tok::Regex(s), at));
        }
        if c == '"' || c == '\'' {
            return Ok((Tok::Str(self.string()?), at));
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let len = trimmed
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(trimmed.len());
            self.pos += len;
            return Ok((Tok::Ident(trimmed.get(..len).unwrap_or_default().to_string()), at));
        }
        if c.is_ascii_digit() {
            let len = trimmed
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E'))
                .unwrap_or(trimmed.len());
            let text = trimmed.get(..len).unwrap_or_default();
            self.pos += len;
            if let Ok(i) = text.parse::<i64>() {
                return Ok((Tok::Int(i), at));
            }
            return text
                .parse::<f64>()
                .map(|f| (Tok::Float(f), at))
                .map_err(|_| self.err(at, format!("invalid number {text}")));
        }
        for op in ["==", "!=", "<=", ">=", "<", ">", "!", "-", "(", ")", "[", "]", ".", ",", "*"] {
            if trimmed.starts_with(op) {
                self.pos += op.len();
                return Ok((Tok::Op(op), at));
            }
        }
        Err(self.err(at, format!("unexpected character {c:?}")))
    }

    /// A quoted string at `pos` (its quote included), with `\` escapes.
    fn string(&mut self) -> Result<String, KflError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices();
        let quote = chars.next().map(|(_, c)| c).unwrap_or('"');
        let mut out = String::new();
        while let Some((k, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.pos += k + c.len_utf8();
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, e)) if e == quote || e == '\\' => out.push(e),
                    // Regexes keep their escapes (`r"\d+"`).
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.err(start, "unterminated string"))
    }
}

/// A parsed operand: something with a value.
enum Operand {
    Expr(IdedExpr),
    /// A selector, with its slot expression.
    Selector(IdedExpr),
    Regex(IdedExpr),
}

struct Parser<'s> {
    lex: Lexer<'s>,
    tok: Tok,
    at: usize,
    depth: usize,
    slots: Vec<Slot>,
    next_id: u64,
}

pub(crate) struct Translated {
    pub expr: IdedExpr,
    pub slots: Vec<Slot>,
}

/// Parses a KFL1 query and translates it to CEL.
pub(crate) fn translate(src: &str) -> Result<Translated, KflError> {
    let mut p = Parser {
        lex: Lexer { src, pos: 0 },
        tok: Tok::End,
        at: 0,
        depth: 0,
        slots: Vec::new(),
        next_id: 1,
    };
    p.advance()?;
    let expr = p.logical()?;
    if p.tok != Tok::End {
        return Err(p.err("expected `and`, `or` or the end of the query"));
    }
    Ok(Translated { expr, slots: p.slots })
}

fn call(name: &str, args: Vec<IdedExpr>) -> Expr {
    Expr::Call(CallExpr { func_name: name.into(), target: None, args })
}

impl Parser<'_> {
    fn err(&self, msg: impl Into<String>) -> KflError {
        KflError::at_byte(self.lex.src, self.at, msg.into())
    }

    fn advance(&mut self) -> Result<(), KflError> {
        let (t, at) = self.lex.next()?;
        self.tok = t;
        self.at = at;
        Ok(())
    }

    fn node(&mut self, expr: Expr) -> IdedExpr {
        self.next_id += 1;
        IdedExpr { id: self.next_id, expr }
    }

    fn slot(&mut self, s: Slot) -> IdedExpr {
        self.slots.push(s);
        let e = Expr::Ident(slot_name(self.slots.len() - 1));
        self.node(e)
    }

    fn lit(&mut self, l: LiteralValue) -> IdedExpr {
        self.node(Expr::Literal(l))
    }

    fn enter(&mut self) -> Result<(), KflError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("the query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// `unary (("and"|"or") unary)*`, left to right. A run of the same
    /// operator is associative, so it is built as a balanced tree (a long
    /// `a and b and c …` does not make evaluation recurse once per term);
    /// each change of operator is one level of nesting.
    fn logical(&mut self) -> Result<IdedExpr, KflError> {
        self.enter()?;
        let mut left = self.unary()?;
        let mut changes = 0usize;
        loop {
            let f = match &self.tok {
                Tok::Ident(w) if w == "and" => "_&&_",
                Tok::Ident(w) if w == "or" => "_||_",
                _ => break,
            };
            let mut run = vec![left];
            loop {
                match &self.tok {
                    Tok::Ident(w) if (w == "and" && f == "_&&_") || (w == "or" && f == "_||_") => {}
                    _ => break,
                }
                self.advance()?;
                run.push(self.unary()?);
            }
            left = self.balanced(f, run);
            changes += 1;
            if changes > MAX_DEPTH {
                return Err(self.err(format!(
                    "`and` and `or` alternate more than {MAX_DEPTH} times; group with parentheses"
                )));
            }
        }
        self.depth -= 1;
        Ok(left)
    }

    fn balanced(&mut self, f: &str, mut terms: Vec<IdedExpr>) -> IdedExpr {
        if terms.len() <= 1 {
            return terms
                .pop()
                .unwrap_or_else(|| self.lit(LiteralValue::Boolean(CelBool::from(true))));
        }
        let right = terms.split_off(terms.len() / 2);
        let l = self.balanced(f, terms);
        let r = self.balanced(f, right);
        let e = call(f, vec![l, r]);
        self.node(e)
    }

    fn unary(&mut self) -> Result<IdedExpr, KflError> {
        if self.tok == Tok::Op("!") {
            self.enter()?;
            self.advance()?;
            let inner = self.unary()?;
            self.depth -= 1;
            let e = call("!_", vec![inner]);
            return Ok(self.node(e));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<IdedExpr, KflError> {
        let left_at = self.at;
        let left = self.operand()?;
        let cmp = match self.tok {
            Tok::Op(o @ ("==" | "!=" | "<" | ">" | "<=" | ">=")) => o,
            _ => return self.boolean(left, left_at),
        };
        self.advance()?;
        let right = self.operand()?;
        let negate = cmp == "!=";
        let value = |p: &mut Self, o: Operand| match o {
            Operand::Expr(e) | Operand::Selector(e) => Ok(e),
            Operand::Regex(_) => Err(p.err("a regex can only be compared with == or !=")),
        };
        let e = match (cmp, left, right) {
            ("==" | "!=", Operand::Regex(re), other) | ("==" | "!=", other, Operand::Regex(re)) => {
                let subject = value(self, other)?;
                let m = call("kfl_re", vec![subject, re]);
                let m = self.node(m);
                if negate {
                    call("!_", vec![m])
                } else {
                    return Ok(m);
                }
            }
            (cmp, l, r) => {
                let f = match cmp {
                    "==" => "kfl1_eq",
                    "!=" => "kfl1_ne",
                    "<" => "kfl1_lt",
                    ">" => "kfl1_gt",
                    "<=" => "kfl1_le",
                    _ => "kfl1_ge",
                };
                let l = value(self, l)?;
                let r = value(self, r)?;
                call(f, vec![l, r])
            }
        };
        Ok(self.node(e))
    }

    /// An operand used as a condition.
    fn boolean(&mut self, o: Operand, at: usize) -> Result<IdedExpr, KflError> {
        match o {
            Operand::Selector(s) => {
                let e = call("kfl1_truthy", vec![s]);
                Ok(self.node(e))
            }
            Operand::Expr(e) => Ok(e),
            Operand::Regex(_) => {
                Err(KflError::at_byte(self.lex.src, at, "a regex alone is not a condition".into()))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, KflError> {
        let at = self.at;
        match std::mem::replace(&mut self.tok, Tok::End) {
            Tok::Op("(") => {
                self.advance()?;
                let e = self.logical()?;
                if self.tok != Tok::Op(")") {
                    return Err(self.err("expected `)`"));
                }
                self.advance()?;
                Ok(Operand::Expr(e))
            }
            Tok::Op("-") => {
                self.advance()?;
                let e = match std::mem::replace(&mut self.tok, Tok::End) {
                    Tok::Int(i) => self.lit(LiteralValue::Int(CelInt::from(i.saturating_neg()))),
                    Tok::Float(f) => self.lit(LiteralValue::Double(CelDouble::from(-f))),
                    _ => {
                        return Err(KflError::at_byte(
                            self.lex.src,
                            at,
                            "expected a number after -".into(),
                        ))
                    }
                };
                self.advance()?;
                Ok(Operand::Expr(e))
            }
            Tok::Str(s) => {
                self.advance()?;
                Ok(Operand::Expr(self.lit(LiteralValue::String(CelString::from(s)))))
            }
            Tok::Regex(r) => {
                let re = compile_regex(&r).map_err(|m| KflError::at_byte(self.lex.src, at, m))?;
                self.advance()?;
                let s = self.slot(Slot::Regex(re));
                Ok(Operand::Regex(s))
            }
            Tok::Int(i) => {
                self.advance()?;
                Ok(Operand::Expr(self.lit(LiteralValue::Int(CelInt::from(i)))))
            }
            Tok::Float(f) => {
                self.advance()?;
                Ok(Operand::Expr(self.lit(LiteralValue::Double(CelDouble::from(f)))))
            }
            Tok::Ident(w) => {
                self.advance()?;
                self.ident(w, at)
            }
            Tok::End => Err(self.err("the query ends where a value was expected")),
            Tok::Op(o) => Err(KflError::at_byte(
                self.lex.src,
                at,
                format!("unexpected `{o}` where a value was expected"),
            )),
        }
    }

    fn ident(&mut self, w: String, at: usize) -> Result<Operand, KflError> {
        let src = self.lex.src;
        match w.as_str() {
            "true" | "false" => {
                return Ok(Operand::Expr(
                    self.lit(LiteralValue::Boolean(CelBool::from(w == "true"))),
                ))
            }
            "nil" => return Ok(Operand::Expr(self.lit(LiteralValue::Null))),
            "and" | "or" => {
                return Err(KflError::at_byte(
                    src,
                    at,
                    format!("`{w}` needs a condition before it"),
                ))
            }
            _ => {}
        }
        if self.tok == Tok::Op("(") {
            return self.helper(&w, at).map(Operand::Expr);
        }
        // A protocol macro.
        if !is_root(&w) && self.tok != Tok::Op(".") && self.tok != Tok::Op("[") {
            if let Some(v) = vars::find(&w).filter(|v| v.ty.ty() == Ty::Bool) {
                return Ok(Operand::Expr(self.slot(Slot::Var(v))));
            }
            return Err(KflError::at_byte(
                src,
                at,
                format!("unknown field or macro {w}: an item has {}", JSON_KEYS.join(", ")),
            ));
        }
        if !is_root(&w) {
            return Err(KflError::at_byte(
                src,
                at,
                format!("unknown field {w}: an item has {}", JSON_KEYS.join(", ")),
            ));
        }
        let mut path: Path = vec![Seg::Key(w)];
        loop {
            match self.tok {
                Tok::Op(".") => {
                    self.advance()?;
                    let name_at = self.at;
                    let name = match std::mem::replace(&mut self.tok, Tok::End) {
                        Tok::Ident(n) => n,
                        Tok::Op("*") => {
                            return Err(self.err("wildcard selectors (.*) are not supported"))
                        }
                        _ => {
                            return Err(KflError::at_byte(
                                src,
                                name_at,
                                "expected a field name after `.`".into(),
                            ))
                        }
                    };
                    self.advance()?;
                    if self.tok == Tok::Op("(") {
                        let sel = self.slot(Slot::Path(path));
                        return self.method(sel, &name, name_at).map(Operand::Expr);
                    }
                    path.push(Seg::Key(name));
                }
                Tok::Op("[") => {
                    self.advance()?;
                    let seg = match std::mem::replace(&mut self.tok, Tok::End) {
                        Tok::Str(s) => Seg::Key(s),
                        Tok::Int(i) => Seg::Index(i),
                        // From the end: `[-1]` is the last element.
                        Tok::Op("-") => {
                            self.advance()?;
                            match self.tok {
                                Tok::Int(i) => Seg::Index(i.saturating_neg()),
                                _ => return Err(self.err("expected an index after `-`")),
                            }
                        }
                        _ => return Err(self.err("expected a string or an index in `[]`")),
                    };
                    self.advance()?;
                    if self.tok != Tok::Op("]") {
                        return Err(self.err("expected `]`"));
                    }
                    self.advance()?;
                    path.push(seg);
                }
                _ => break,
            }
            if path.len() > MAX_DEPTH {
                return Err(self.err(format!("a selector has at most {MAX_DEPTH} steps")));
            }
        }
        Ok(Operand::Selector(self.slot(Slot::Path(path))))
    }

    /// The arguments of a call, `(` already current.
    fn args(&mut self) -> Result<Vec<IdedExpr>, KflError> {
        self.advance()?;
        let mut out = Vec::new();
        while self.tok != Tok::Op(")") {
            let at = self.at;
            let o = self.operand()?;
            match o {
                Operand::Expr(e) | Operand::Selector(e) => out.push(e),
                Operand::Regex(_) => {
                    return Err(KflError::at_byte(
                        self.lex.src,
                        at,
                        "a regex is not an argument".into(),
                    ))
                }
            }
            match self.tok {
                Tok::Op(",") => self.advance()?,
                Tok::Op(")") => {}
                _ => return Err(self.err("expected `,` or `)`")),
            }
        }
        self.advance()?;
        Ok(out)
    }

    fn method(&mut self, sel: IdedExpr, name: &str, at: usize) -> Result<IdedExpr, KflError> {
        let f = match name {
            "startsWith" => "kfl1_starts",
            "endsWith" => "kfl1_ends",
            "contains" => "kfl1_contains",
            _ => {
                return Err(KflError::at_byte(
                    self.lex.src,
                    at,
                    format!("{name}() is not supported (startsWith, endsWith, contains are)"),
                ))
            }
        };
        let mut args = self.args()?;
        if args.len() != 1 {
            return Err(KflError::at_byte(self.lex.src, at, format!("{name}() takes one string")));
        }
        args.insert(0, sel);
        let e = call(f, args);
        Ok(self.node(e))
    }

    fn helper(&mut self, name: &str, at: usize) -> Result<IdedExpr, KflError> {
        let src = self.lex.src;
        let args = self.args()?;
        let int_arg = |args: &[IdedExpr]| match args {
            [IdedExpr { expr: Expr::Literal(LiteralValue::Int(i)), .. }] => Some(*i.inner()),
            _ => None,
        };
        let unit_ms: i64 = match name {
            "now" if args.is_empty() => {
                let e = call("kfl1_now_ms", vec![]);
                return Ok(self.node(e));
            }
            "limit" => return Ok(self.lit(LiteralValue::Boolean(CelBool::from(true)))),
            "datetime" => {
                let text = match args.as_slice() {
                    [IdedExpr { expr: Expr::Literal(LiteralValue::String(s)), .. }] => {
                        s.inner().to_string()
                    }
                    _ => {
                        return Err(KflError::at_byte(src, at, "datetime() takes a string".into()))
                    }
                };
                let ms = chrono::NaiveDateTime::parse_from_str(&text, "%-m/%-d/%Y, %-I:%M:%S %p")
                    .map_err(|_| {
                        KflError::at_byte(
                            src,
                            at,
                            format!("datetime({text:?}): expected \"1/2/2006, 3:04:05 PM\""),
                        )
                    })?
                    .and_utc()
                    .timestamp_millis();
                return Ok(self.lit(LiteralValue::Int(CelInt::from(ms))));
            }
            "seconds" => 1_000,
            "minutes" => 60_000,
            "hours" => 3_600_000,
            "days" => 86_400_000,
            "weeks" => 604_800_000,
            "months" => 30 * 86_400_000,
            "years" => 365 * 86_400_000,
            _ => {
                return Err(KflError::at_byte(src, at, format!("unknown helper {name}()")));
            }
        };
        let n = int_arg(&args)
            .ok_or_else(|| KflError::at_byte(src, at, format!("{name}() takes an integer")))?;
        let now = call("kfl1_now_ms", vec![]);
        let now = self.node(now);
        let delta = self.lit(LiteralValue::Int(CelInt::from(n.saturating_mul(unit_ms))));
        let e = call("_+_", vec![now, delta]);
        Ok(self.node(e))
    }
}
