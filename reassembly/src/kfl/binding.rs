//! How a compiled filter reads an item: the cel environment every filter
//! shares ([`env`]) and the variable binding of one evaluation
//! ([`Binding`]).
//!
//! Compiling rewrites every variable a query names (`src.pod.name`,
//! `request.headers["host"]`, a KFL1 path) into a *slot*: an identifier
//! `#<n>` that indexes the filter's [`Slot`] table. cel-rust asks the
//! binding for `#<n>` when — and only when — evaluation reaches it, and the
//! binding computes that one value from the Rust item, borrowing its bytes
//! where it can. No name is looked up in a table per item, no JSON or map
//! of the item is built, and a variable the expression does not reach is
//! never computed.
//!
//! Regular expressions are compiled once per filter (RE2 semantics, the
//! `regex` crate, bounded by [`super::MAX_REGEX_BYTES`]) and reach cel as
//! slots too: cel-rust's own `matches` compiles its pattern on every call.

use std::sync::{Arc, LazyLock};

use cel::common::types::{CelBool, CelInt, CelString, Type, DYN_TYPE, LIST_TYPE, MAP_TYPE};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::context::VariableResolver;
use cel::{Env, ExecutionError};

use super::json;
use super::value::{timestamp, KVal};
use super::vars::{http::Http, Var};
use crate::item::{Item, NodeInfo};

/// What one slot of a compiled filter reads.
#[derive(Debug)]
pub(crate) enum Slot {
    /// A KFL2 variable.
    Var(&'static Var),
    /// `request.headers["name"]` (or `response.`): the field's value; a
    /// missing field is a missing key, as in a map.
    Header { response: bool, name: Box<str> },
    /// `"name" in request.headers`.
    HasHeader { response: bool, name: Box<str> },
    /// A regular expression, compiled.
    Regex(RegexVal),
    /// A KFL1 selector over the item's JSON shape.
    Path(json::Path),
    /// `var <op> rhs` for an int variable and an int literal (see
    /// `kfl2::Pass::fused_comparison`).
    CmpInt { var: &'static Var, op: CmpOp, rhs: i64 },
    /// A string variable or header compared with a string literal (`==`,
    /// `!=`, `startsWith`, `endsWith`, `contains`) or matched by a regex.
    StrTest { src: StrSrc, test: StrTest },
}

/// Where a fused string test reads its string.
#[derive(Debug)]
pub(crate) enum StrSrc {
    Var(&'static Var),
    /// A header a missing field of which is an error (no match), as the
    /// map lookup it replaces.
    Header {
        response: bool,
        name: Box<str>,
    },
}

/// A test on a string with a literal operand.
#[derive(Debug)]
pub(crate) enum StrTest {
    Eq(Box<str>),
    Ne(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Contains(Box<str>),
    Matches(RegexVal),
}

impl StrTest {
    fn holds(&self, s: &str) -> bool {
        match self {
            StrTest::Eq(l) => s == &**l,
            StrTest::Ne(l) => s != &**l,
            StrTest::StartsWith(l) => s.starts_with(&**l),
            StrTest::EndsWith(l) => s.ends_with(&**l),
            StrTest::Contains(l) => s.contains(&**l),
            StrTest::Matches(r) => r.0.is_match(s),
        }
    }
}

/// An ordering comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The same comparison with its operands swapped.
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }

    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

/// Where an evaluation reads from: a Rust item and the node that
/// captured it.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub item: &'a Item,
    pub node: &'a NodeInfo,
}

impl<'a> Source<'a> {
    /// The value of `v` for this item.
    pub(crate) fn var(self, v: &'static Var) -> KVal<'a> {
        (v.get)(self.item, self.node)
    }

    fn header(self, response: bool, name: &str) -> Option<KVal<'a>> {
        let side = if response { Http::response(self.item) } else { Http::request(self.item) };
        side?.header(name).map(KVal::bytes)
    }
}

/// Slots whose values one evaluation keeps without allocating (a query
/// reads a few variables; the rest are boxed per read).
pub(crate) const CACHED_SLOTS: usize = 8;

/// A slot's value, kept for the rest of one evaluation: cel borrows it, so
/// reading a scalar variable allocates nothing, and reading it twice
/// computes it once. Lists and maps are built per read (boxed).
enum Cached<'a> {
    Bool(CelBool),
    Int(CelInt),
    Str(CelString<'a>),
    /// The item has no value there (a missing header or selector).
    Missing,
    /// A list or map: not kept.
    Compound,
}

impl Slot {
    /// This slot's value when it is a boolean computed without cel (a
    /// boolean variable, a fused comparison, a header presence test), for
    /// the conjuncts a filter checks before running cel; `None` for other
    /// slots.
    pub(crate) fn native_bool(&self, src: Source<'_>) -> Option<bool> {
        match self {
            Slot::Var(v) if v.ty == super::vars::VarTy::Bool => {
                Some(matches!(src.var(v), KVal::Bool(true)))
            }
            Slot::CmpInt { var, op, rhs } => {
                Some(matches!(src.var(var), KVal::Int(x) if op.holds(x, *rhs)))
            }
            Slot::StrTest { src: from, test } => {
                let v = match from {
                    StrSrc::Var(v) => src.var(v),
                    StrSrc::Header { response, name } => src.header(*response, name)?,
                };
                Some(matches!(v, KVal::Str(s) if test.holds(&s)))
            }
            Slot::HasHeader { response, name } => Some(src.header(*response, name).is_some()),
            _ => None,
        }
    }

    pub(crate) fn is_native_bool(&self) -> bool {
        matches!(self, Slot::Var(v) if v.ty == super::vars::VarTy::Bool)
            || matches!(self, Slot::CmpInt { .. } | Slot::HasHeader { .. } | Slot::StrTest { .. })
    }
}

/// One evaluation's variables: the source, the filter's slots and the
/// scalar values read so far.
pub(crate) struct Binding<'a> {
    src: Source<'a>,
    slots: &'a [Slot],
    // `OnceLock`, not `OnceCell`: cel-rust wants its resolver `Sync`. The
    // binding is never shared; an uncontended `OnceLock` costs an atomic
    // load per read.
    cache: [std::sync::OnceLock<Cached<'a>>; CACHED_SLOTS],
}

impl<'a> Binding<'a> {
    pub(crate) fn new(src: Source<'a>, slots: &'a [Slot]) -> Binding<'a> {
        Binding { src, slots, cache: Default::default() }
    }

    fn compute(&self, slot: &Slot) -> Option<KVal<'a>> {
        match slot {
            Slot::Var(v) => Some(self.src.var(v)),
            Slot::Header { response, name } => self.src.header(*response, name),
            Slot::HasHeader { response, name } => {
                Some(KVal::Bool(self.src.header(*response, name).is_some()))
            }
            Slot::Path(p) => json::path(self.src, p),
            Slot::CmpInt { .. } | Slot::StrTest { .. } => {
                slot.native_bool(self.src).map(KVal::Bool)
            }
            Slot::Regex(_) => None,
        }
    }
}

impl VariableResolver for Binding<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let n: usize = variable.strip_prefix('#')?.parse().ok()?;
        let slot = self.slots.get(n)?;
        if let Slot::Regex(r) = slot {
            return Some(CowVal::Borrowed(r));
        }
        let Some(cell) = self.cache.get(n) else {
            return self.compute(slot).map(KVal::into_cel);
        };
        let mut compound = None;
        let cached = cell.get_or_init(|| match self.compute(slot) {
            None => Cached::Missing,
            Some(KVal::Bool(b)) => Cached::Bool(CelBool::from(b)),
            Some(KVal::Int(i)) => Cached::Int(CelInt::from(i)),
            Some(KVal::Str(std::borrow::Cow::Borrowed(s))) => Cached::Str(CelString::from(s)),
            Some(KVal::Str(std::borrow::Cow::Owned(s))) => Cached::Str(CelString::from(s)),
            Some(other) => {
                compound = Some(other);
                Cached::Compound
            }
        });
        match cached {
            Cached::Bool(b) => Some(CowVal::Borrowed(b)),
            Cached::Int(i) => Some(CowVal::Borrowed(i)),
            Cached::Str(s) => Some(CowVal::Borrowed(s)),
            Cached::Missing => None,
            Cached::Compound => compound.or_else(|| self.compute(slot)).map(KVal::into_cel),
        }
    }
}

/// The slot identifier of slot `n`.
pub(crate) fn slot_name(n: usize) -> String {
    format!("#{n}")
}

/// A compiled regular expression as a cel value (only [`env`]'s `kfl_re`
/// reads it).
#[derive(Debug, Clone)]
pub(crate) struct RegexVal(pub Arc<regex::Regex>);

static REGEX_TYPE: Type = Type::new_unspecified_type("kfl.regex");

impl Val for RegexVal {
    fn get_type(&self) -> &Type {
        &REGEX_TYPE
    }

    fn cel_type() -> &'static Type {
        &REGEX_TYPE
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl StaticVal for RegexVal {}

/// The text a KFL1 comparison sees in a value: strings as they are,
/// numbers and booleans as JSON writes them (KFL1 compares `"200"` and
/// `200` alike, as the item's JSON mixes them: ports are strings).
fn text(v: &dyn Val) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    if let Some(s) = v.downcast_ref::<CelString>() {
        return Some(Cow::Borrowed(s.inner()));
    }
    if let Some(i) = v.downcast_ref::<CelInt>() {
        return Some(Cow::Owned(i.inner().to_string()));
    }
    if let Some(b) = v.downcast_ref::<CelBool>() {
        return Some(Cow::Borrowed(if *b.inner() { "true" } else { "false" }));
    }
    if let Some(d) = v.downcast_ref::<cel::common::types::CelDouble>() {
        return Some(Cow::Owned(d.inner().to_string()));
    }
    if let Some(u) = v.downcast_ref::<cel::common::types::CelUInt>() {
        return Some(Cow::Owned(u.inner().to_string()));
    }
    None
}

/// A number, from a number or from text that is one.
fn number(v: &dyn Val) -> Option<f64> {
    if let Some(i) = v.downcast_ref::<CelInt>() {
        return Some(*i.inner() as f64);
    }
    if let Some(u) = v.downcast_ref::<cel::common::types::CelUInt>() {
        return Some(*u.inner() as f64);
    }
    if let Some(d) = v.downcast_ref::<cel::common::types::CelDouble>() {
        return Some(*d.inner());
    }
    v.downcast_ref::<CelString>().and_then(|s| s.inner().trim().parse::<f64>().ok())
}

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn two<'c, 'b, 'v>(
    name: &str,
    args: &'c Args<'b, 'v>,
) -> Result<(&'c (dyn Val + 'v), &'c (dyn Val + 'v)), ExecutionError> {
    match args.as_slice() {
        [a, b] => Ok((a.as_ref(), b.as_ref())),
        _ => Err(ExecutionError::invalid_argument_count(2, args.len())),
    }
    .map_err(|e: ExecutionError| ExecutionError::function_error(name, e))
}

fn boolean<'b, 'v>(b: bool) -> Ret<'b, 'v> {
    Ok(CowVal::owned(CelBool::from(b)))
}

/// `kfl_re(text, regex)`: the regex matches somewhere in the text (a
/// number is matched as its decimal text, for KFL1's `status == r"5.."`).
fn kfl_re<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (s, re) = two("kfl_re", &args)?;
    let re = re
        .downcast_ref::<RegexVal>()
        .ok_or_else(|| ExecutionError::function_error("kfl_re", "not a regex"))?;
    let s = text(s).ok_or_else(|| ExecutionError::function_error("matches", "not a string"))?;
    boolean(re.0.is_match(&s))
}

/// KFL1's equality: as text when either side is text, so `src.port ==
/// 8080` holds for the JSON's `"8080"`; else cel's equality.
fn kfl1_eq<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two("==", &args)?;
    if a.downcast_ref::<CelString>().is_some() || b.downcast_ref::<CelString>().is_some() {
        if let (Some(x), Some(y)) = (text(a), text(b)) {
            return boolean(x == y);
        }
    }
    boolean(a.equals(b))
}

fn kfl1_ne<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let r = kfl1_eq(args)?;
    boolean(!r.downcast_ref::<CelBool>().is_some_and(|b| *b.inner()))
}

/// KFL1's ordering: numbers (or text that is a number) as numbers, else
/// text as text; anything else does not compare (an error: no match).
fn kfl1_order(name: &str, args: &Args<'_, '_>) -> Result<std::cmp::Ordering, ExecutionError> {
    let (a, b) = two(name, args)?;
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y).ok_or_else(|| ExecutionError::function_error(name, "NaN"));
    }
    match (a.downcast_ref::<CelString>(), b.downcast_ref::<CelString>()) {
        (Some(x), Some(y)) => Ok(x.inner().cmp(y.inner())),
        _ => Err(ExecutionError::function_error(name, "values do not compare")),
    }
}

fn kfl1_lt<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(kfl1_order("<", &args)?.is_lt())
}
fn kfl1_le<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(kfl1_order("<=", &args)?.is_le())
}
fn kfl1_gt<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(kfl1_order(">", &args)?.is_gt())
}
fn kfl1_ge<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(kfl1_order(">=", &args)?.is_ge())
}

/// KFL1's selector alone: true unless the value is `false`, `null`, 0 or
/// empty (a selector that is not found never gets here: no match).
fn kfl1_truthy<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let v = args.first().ok_or_else(|| ExecutionError::invalid_argument_count(1, 0))?;
    let truthy = if let Some(b) = v.downcast_ref::<CelBool>() {
        *b.inner()
    } else if v.get_type().kind() == cel::common::types::Kind::NullType {
        false
    } else if let Some(s) = v.as_sizer() {
        *s.size().inner() != 0
    } else if let Some(n) = number(v.as_ref()) {
        n != 0.0
    } else {
        true
    };
    boolean(truthy)
}

fn string_pair<'c>(
    name: &str,
    args: &'c Args<'_, '_>,
) -> Result<(std::borrow::Cow<'c, str>, std::borrow::Cow<'c, str>), ExecutionError> {
    let (a, b) = two(name, args)?;
    match (text(a), text(b)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err(ExecutionError::function_error(name, "not a string")),
    }
}

fn kfl1_starts<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = string_pair("startsWith", &args)?;
    boolean(a.starts_with(b.as_ref()))
}
fn kfl1_ends<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = string_pair("endsWith", &args)?;
    boolean(a.ends_with(b.as_ref()))
}
fn kfl1_contains<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = string_pair("contains", &args)?;
    boolean(a.contains(b.as_ref()))
}

/// `now()`: the current time (wall clock).
fn now<'b, 'v>(_: Args<'b, 'v>) -> Ret<'b, 'v> {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Ok(CowVal::owned(timestamp(ns)))
}

/// `kfl1_now_ms()`: KFL1's `now()`, milliseconds since the epoch.
fn kfl1_now_ms<'b, 'v>(_: Args<'b, 'v>) -> Ret<'b, 'v> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(CowVal::owned(CelInt::from(ms)))
}

/// `map_get(map, key, default)`: the value under `key` (for a header map,
/// case-insensitively), else `default` — never a missing-key error.
fn map_get<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut args = args;
    let default = args.pop().ok_or_else(|| ExecutionError::invalid_argument_count(3, 0))?;
    let (map, key) = two("map_get", &args)?;
    let indexer =
        map.as_indexer().ok_or_else(|| ExecutionError::function_error("map_get", "not a map"))?;
    if let Ok(v) = indexer.get(key) {
        return Ok(CowVal::Owned(v.into_owned()));
    }
    if let Some(k) = key.downcast_ref::<CelString>() {
        let lower = k.inner().to_ascii_lowercase();
        if lower != k.inner() {
            if let Ok(v) = indexer.get(&CelString::from(lower)) {
                return Ok(CowVal::Owned(v.into_owned()));
            }
        }
    }
    Ok(default)
}

/// The environment every filter evaluates in: cel's standard library and
/// string extension (`lowerAscii`, `split`, `replace` …), and KFL's own
/// functions. Built once; filters share it.
pub(crate) fn env() -> Arc<Env> {
    static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build_env()));
    Arc::clone(&ENV)
}

fn build_env() -> Env {
    let mut env = Env::stdlib();
    let declared = (|| -> Result<(), cel::DeclarationError> {
        cel::extensions::strings(&mut env)?;
        env.add_overload("now", "now", vec![], now)?;
        env.add_overload("map_get", "map_get_map", vec![MAP_TYPE, DYN_TYPE, DYN_TYPE], map_get)?;
        env.add_overload("map_get", "map_get_list", vec![LIST_TYPE, DYN_TYPE, DYN_TYPE], map_get)?;
        env.add_overload("kfl1_now_ms", "kfl1_now_ms", vec![], kfl1_now_ms)?;
        env.add_overload("kfl_re", "kfl_re", vec![DYN_TYPE, DYN_TYPE], kfl_re)?;
        env.add_overload("kfl1_eq", "kfl1_eq", vec![DYN_TYPE, DYN_TYPE], kfl1_eq)?;
        env.add_overload("kfl1_ne", "kfl1_ne", vec![DYN_TYPE, DYN_TYPE], kfl1_ne)?;
        env.add_overload("kfl1_lt", "kfl1_lt", vec![DYN_TYPE, DYN_TYPE], kfl1_lt)?;
        env.add_overload("kfl1_le", "kfl1_le", vec![DYN_TYPE, DYN_TYPE], kfl1_le)?;
        env.add_overload("kfl1_gt", "kfl1_gt", vec![DYN_TYPE, DYN_TYPE], kfl1_gt)?;
        env.add_overload("kfl1_ge", "kfl1_ge", vec![DYN_TYPE, DYN_TYPE], kfl1_ge)?;
        env.add_overload("kfl1_truthy", "kfl1_truthy", vec![DYN_TYPE], kfl1_truthy)?;
        env.add_overload("kfl1_starts", "kfl1_starts", vec![DYN_TYPE, DYN_TYPE], kfl1_starts)?;
        env.add_overload("kfl1_ends", "kfl1_ends", vec![DYN_TYPE, DYN_TYPE], kfl1_ends)?;
        env.add_overload(
            "kfl1_contains",
            "kfl1_contains",
            vec![DYN_TYPE, DYN_TYPE],
            kfl1_contains,
        )?;
        Ok(())
    })();
    // The names above are KFL's own: a clash is a programming error caught
    // by the first test that builds a filter.
    debug_assert!(declared.is_ok(), "{declared:?}");
    env
}
