//! KFL, Kubeshark's filter language: one engine for every place a filter
//! appears (`kfl.match` in agents, the dashboard's filter bar, the hub's
//! item query and live stream, `skua dissect --filter`).
//!
//! A query is compiled once into a [`Filter`] and evaluated on the Rust
//! [`Item`] with no JSON or JS object built per item:
//! - **KFL2** (`kfl2`): CEL over Kubeshark's flat variables (`vars`),
//!   parsed and evaluated by cel-rust, type-checked and bound here;
//! - **KFL1** (`kfl1`): the older language of published agents, parsed
//!   here and translated to a CEL expression over the same binding.
//!
//! Which language a query is in is decided by its syntax ([`compile`]):
//! a query that is valid CEL over known variables is KFL2 — unless it
//! compares with a raw string (`== r"…"`), KFL1's regex syntax — and one
//! that is not is KFL1 if it parses as KFL1. A query that is neither gets
//! one error, with its position: the KFL2 error when the query was CEL
//! (an unknown variable, a type error), else the error of whichever parser
//! got further.
//!
//! Invariants: compiling never panics and does bounded work
//! ([`MAX_QUERY_BYTES`], [`MAX_DEPTH`], [`MAX_REGEX_BYTES`],
//! [`kfl2::MAX_COMPREHENSION_DEPTH`]); evaluating never panics, never
//! allocates for a variable the expression does not reach, and takes time
//! bounded by the query and the item's (already bounded) fields; an
//! evaluation error (a header that is not there, KFL1's missing selector)
//! is "no match", counted in [`Filter::eval_errors`].

mod binding;
mod json;
mod kfl1;
pub mod kfl2;
pub mod value;
pub mod vars;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cel::common::ast::{Expr, IdedExpr};
use cel::common::types::CelBool;
use cel::{Context, Env, Value};

use crate::item::{Item, NodeInfo};
use binding::{Binding, Slot, Source};

/// The longest query accepted, in bytes. Kubeshark's longest published
/// queries are a few hundred bytes; 4 KiB leaves room for generated ones
/// while bounding parse and check time.
pub const MAX_QUERY_BYTES: usize = 4096;

/// How deep a query may nest (parentheses, operators, selectors): bounds
/// the recursion of both parsers and of evaluation.
pub const MAX_DEPTH: usize = 32;

/// The most memory one regex may compile to (its program and its lazy
/// DFA's cache each): RE2 semantics already make matching linear in the
/// text; this bounds the size of the automaton a pattern such as
/// `(a{1000}){1000}` would build.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// Which language a query was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Kfl1,
    Kfl2,
}

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Language::Kfl1 => "KFL1",
            Language::Kfl2 => "KFL2",
        }
    }
}

/// What kind of mistake a query has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KflErrorKind {
    /// Nothing but white space.
    Empty,
    /// Longer than [`MAX_QUERY_BYTES`].
    TooLong,
    /// Not UTF-8 text.
    NotUtf8,
    /// Neither KFL2 nor KFL1 syntax.
    Syntax,
    /// Valid syntax that means nothing: an unknown variable, a type error,
    /// an invalid or too large regex, nesting past a limit.
    Invalid,
}

/// An invalid query: what is wrong and where (the byte offset into the
/// query, and the 1-based line and column, in characters, of that byte).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at {line}:{column}: {message}")]
pub struct KflError {
    pub kind: KflErrorKind,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl KflError {
    fn new(kind: KflErrorKind, source: &str, offset: usize, message: String) -> KflError {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        KflError { kind, offset, line, column, message }
    }

    /// An error at byte `offset` of `source`.
    pub(crate) fn at_byte(source: &str, offset: usize, message: String) -> KflError {
        KflError::new(KflErrorKind::Syntax, source, offset, message)
    }

    /// An error at character `offset` of `source` (cel-rust counts
    /// characters).
    pub(crate) fn at_char(source: &str, offset: usize, message: String) -> KflError {
        let byte = source.char_indices().nth(offset).map_or(source.len(), |(b, _)| b);
        KflError::new(KflErrorKind::Invalid, source, byte, message)
    }

    fn kind(mut self, kind: KflErrorKind) -> KflError {
        self.kind = kind;
        self
    }
}

/// A compiled query. Cheap to clone (the compiled form is shared) and
/// usable from any thread.
#[derive(Clone)]
pub struct Filter(Arc<Inner>);

struct Inner {
    query: String,
    language: Language,
    expr: IdedExpr,
    slots: Vec<Slot>,
    env: Arc<Env>,
    /// Slots the whole query is a conjunction with whose value is a
    /// boolean computed without cel (`http && status_code >= 500 && …`):
    /// checked on the item first, as `&&` is false when any of them is,
    /// and left out of `expr` (`true && x` is `x` in CEL, errors included).
    prefilter: Vec<usize>,
    /// The query is nothing but those conjuncts: when all hold it matches,
    /// and cel is not entered at all.
    native: bool,
    eval_errors: AtomicU64,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("language", &self.0.language)
            .field("query", &self.0.query)
            .finish()
    }
}

impl Filter {
    /// Compiles a KFL2 or KFL1 query (see the module documentation for how
    /// the language is told).
    pub fn compile(query: &str) -> Result<Filter, KflError> {
        compile(query)
    }

    /// Compiles a query received as bytes (an HTTP parameter, a script's
    /// string): non-UTF-8 input is an error at the first invalid byte.
    pub fn compile_bytes(query: &[u8]) -> Result<Filter, KflError> {
        match std::str::from_utf8(query) {
            Ok(q) => compile(q),
            Err(e) => {
                let valid =
                    String::from_utf8_lossy(query.get(..e.valid_up_to()).unwrap_or_default())
                        .into_owned();
                Err(KflError::new(
                    KflErrorKind::NotUtf8,
                    &valid,
                    valid.len(),
                    format!("the query is not UTF-8 (byte {})", e.valid_up_to()),
                ))
            }
        }
    }

    /// Whether `item`, captured by `node`, matches.
    pub fn matches(&self, item: &Item, node: &NodeInfo) -> bool {
        let inner = &*self.0;
        let src = Source { item, node };
        for &k in &inner.prefilter {
            match inner.slots.get(k).and_then(|s| s.native_bool(src)) {
                Some(true) => {}
                Some(false) => return false,
                None => {
                    // What cel would have found too: a missing key.
                    inner.eval_errors.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
        if inner.native {
            return true;
        }
        let binding = Binding::new(src, &inner.slots);
        let mut ctx = Context::with_env(Arc::clone(&inner.env));
        ctx.set_variable_resolver(&binding);
        let matched = match Value::resolve_val(&inner.expr, &ctx) {
            Ok(v) => v.downcast_ref::<CelBool>().is_some_and(|b| *b.inner()),
            Err(_) => {
                inner.eval_errors.fetch_add(1, Ordering::Relaxed);
                false
            }
        };
        matched
    }

    pub fn language(&self) -> Language {
        self.0.language
    }

    /// The query as given.
    pub fn query(&self) -> &str {
        &self.0.query
    }

    /// Evaluations that ended in an error (counted as no match): a header
    /// looked up that an item does not have, a KFL1 selector it does not
    /// have, arithmetic overflow.
    pub fn eval_errors(&self) -> u64 {
        self.0.eval_errors.load(Ordering::Relaxed)
    }
}

/// The stack cel-rust's parser runs on. Its generated (ANTLR) parser
/// takes hundreds of KiB of stack per nesting level in a debug build, more
/// than a script core's or a test's thread has at [`MAX_DEPTH`]; it runs
/// on a thread of its own with this much (reserved, touched only as
/// used). Compiling is rare (a filter is compiled once), so the thread's
/// cost (tens of µs) does not matter.
const PARSE_STACK_BYTES: usize = 64 << 20;

/// Rejects a query that nests deeper than [`MAX_DEPTH`] before a parser
/// recurses into it: brackets, and runs of prefix operators and `?`.
fn check_nesting(query: &str) -> Result<(), KflError> {
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (at, c) in query.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' | '?' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '!' | '-' => prefix_run += 1,
            c if c.is_whitespace() => {}
            _ => prefix_run = 0,
        }
        if depth + prefix_run > MAX_DEPTH {
            return Err(KflError::new(
                KflErrorKind::Invalid,
                query,
                at,
                format!("the query nests deeper than {MAX_DEPTH} levels"),
            ));
        }
    }
    Ok(())
}

/// Parses and checks a query as KFL2.
fn compile_kfl2(query: &str) -> Result<kfl2::Checked, KflError> {
    let env = binding::env();
    let parser = env.parser().max_recursion_depth(MAX_DEPTH as u16);
    // cel-rust's generated parser is not ours to prove panic-free on every
    // input: a panic in it is a syntax error here, never a crash.
    let parsed = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("kfl-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(s, || parser.parse_with_source_info(query))
            .map(|h| h.join())
    });
    let (expr, info) = match parsed {
        Err(e) => {
            return Err(KflError::new(
                KflErrorKind::Invalid,
                query,
                0,
                format!("the parser could not start: {e}"),
            ))
        }
        Ok(Ok(Ok(p))) => p,
        Ok(Ok(Err(errors))) => {
            let first = errors.errors.first();
            let (line, col) = first.map_or((1, 0), |e| e.pos);
            let msg = first.map_or_else(|| "syntax error".to_string(), |e| e.msg.clone());
            let offset = line_col_to_byte(query, line, col);
            return Err(KflError::at_byte(query, offset, msg));
        }
        Ok(Err(_)) => {
            return Err(KflError::at_byte(query, 0, "the query could not be parsed".into()))
        }
    };
    kfl2::check(expr, query, &info)
}

/// cel-rust's (1-based line, 0-based character column) as a byte offset.
fn line_col_to_byte(source: &str, line: isize, col: isize) -> usize {
    let mut offset = 0;
    for (k, l) in source.split_inclusive('\n').enumerate() {
        if k as isize + 1 == line {
            let col = usize::try_from(col).unwrap_or(0);
            return offset + l.char_indices().nth(col).map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    source.len()
}

fn compile(query: &str) -> Result<Filter, KflError> {
    if query.len() > MAX_QUERY_BYTES {
        let cut = (0..=MAX_QUERY_BYTES).rev().find(|&b| query.is_char_boundary(b)).unwrap_or(0);
        return Err(KflError::new(
            KflErrorKind::TooLong,
            query.get(..cut).unwrap_or_default(),
            cut,
            format!(
                "the query is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
                query.len()
            ),
        ));
    }
    if query.trim().is_empty() {
        return Err(KflError::new(KflErrorKind::Empty, query, 0, "the query is empty".into()));
    }
    check_nesting(query)?;
    let k2 = compile_kfl2(query);
    if let Ok(c) = &k2 {
        if !c.kfl1_regex {
            return Ok(build(query, Language::Kfl2, k2.ok().map(|c| (c.expr, c.slots))));
        }
    }
    match (k2, kfl1::translate(query)) {
        (_, Ok(t)) => Ok(build(query, Language::Kfl1, Some((t.expr, t.slots)))),
        (Ok(c), Err(_)) => Ok(build(query, Language::Kfl2, Some((c.expr, c.slots)))),
        (Err(e2), Err(e1)) => {
            let e =
                if e2.kind == KflErrorKind::Invalid || e2.offset >= e1.offset { e2 } else { e1 };
            Err(e)
        }
    }
    .map_err(|e| if e.kind == KflErrorKind::Syntax { e } else { e.kind(KflErrorKind::Invalid) })
}

fn build(query: &str, language: Language, compiled: Option<(IdedExpr, Vec<Slot>)>) -> Filter {
    let (expr, slots) = compiled.unwrap_or_default();
    let mut terms = Vec::new();
    flatten_and(expr, &mut terms);
    let (native, rest): (Vec<IdedExpr>, Vec<IdedExpr>) =
        terms.into_iter().partition(|t| native_slot(t, &slots).is_some());
    let prefilter: Vec<usize> = native.iter().filter_map(|t| native_slot(t, &slots)).collect();
    let residual = conjunction(rest);
    Filter(Arc::new(Inner {
        query: query.to_string(),
        language,
        native: residual.is_none(),
        expr: residual.unwrap_or_default(),
        slots,
        env: binding::env(),
        prefilter,
        eval_errors: AtomicU64::new(0),
    }))
}

/// The terms of a conjunction (`a && (b && c)` → `a, b, c`), in order.
fn flatten_and(e: IdedExpr, out: &mut Vec<IdedExpr>) {
    match e.expr {
        Expr::Call(c)
            if c.func_name == cel::common::ast::operators::LOGICAL_AND
                && c.target.is_none()
                && c.args.len() == 2 =>
        {
            for a in c.args {
                flatten_and(a, out);
            }
        }
        expr => out.push(IdedExpr { id: e.id, expr }),
    }
}

/// The terms joined by `&&` again (balanced), `None` for no term.
fn conjunction(mut terms: Vec<IdedExpr>) -> Option<IdedExpr> {
    if terms.len() <= 1 {
        return terms.pop();
    }
    let right = terms.split_off(terms.len() / 2);
    let (l, r) = (conjunction(terms)?, conjunction(right)?);
    let id = l.id;
    Some(IdedExpr {
        id,
        expr: Expr::Call(cel::common::ast::CallExpr {
            func_name: cel::common::ast::operators::LOGICAL_AND.into(),
            target: None,
            args: vec![l, r],
        }),
    })
}

/// The slot a term is, when it is a boolean slot computed without cel.
fn native_slot(e: &IdedExpr, slots: &[Slot]) -> Option<usize> {
    let Expr::Ident(n) = &e.expr else { return None };
    let k = n.strip_prefix('#')?.parse::<usize>().ok()?;
    slots.get(k).filter(|s| s.is_native_bool()).map(|_| k)
}

#[cfg(test)]
mod tests;
