//! `kfl.match(query, data)` and `kfl.validate(query)`: agents filter with
//! the same engine as the dashboard, the hub and `skua dissect --filter`
//! (`reassembly::kfl`), evaluated on the Rust item behind `data` — no JS
//! object is read and no JSON is built.
//!
//! Each runtime keeps the queries its agents used lately, compiled, in a
//! cache of at most `scripting.kflCacheEntries` entries (a query is at most
//! `reassembly::kfl::MAX_QUERY_BYTES`, so the cache is bounded in bytes
//! too): an agent that calls `kfl.match` with the same literal for every
//! item compiles it once. Invalid queries are kept as well, so a broken
//! query in a hook costs a lookup, not a compile, per item. When the cache
//! is full the entry used least recently goes (a scan, on a miss only).
//! Compiles, hits and evictions are counted in `RuntimeCounters`.
//!
//! An invalid query, a non-string query and a `data` that is not an item a
//! hook was given throw a catchable `Error` (`TypeError` for the wrong
//! type), counted as helper argument errors.

use std::collections::HashMap;
use std::rc::Rc;

use reassembly::kfl::{Filter, KflError};
use rquickjs::function::Opt;
use rquickjs::{CString, Ctx, Exception, Function, Object, Result, Value};

use crate::item_js::item_of;
use crate::runtime::Shared;

/// The compiled queries of one runtime.
pub(crate) struct Cache {
    entries: HashMap<Box<str>, Entry>,
    capacity: usize,
    /// Ticks at each use; an entry's `used` is the tick of its last use.
    tick: u64,
    /// The query asked for last, compiled: a hook calling `kfl.match` with
    /// one literal finds it with a string compare, without hashing.
    last: Option<(Box<str>, std::result::Result<Filter, KflError>)>,
}

struct Entry {
    compiled: std::result::Result<Filter, KflError>,
    used: u64,
}

/// What a lookup did, for the runtime's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Hit,
    Compiled { evicted: bool },
}

impl Cache {
    pub(crate) fn new(capacity: u32) -> Cache {
        let capacity = (capacity as usize).max(1);
        Cache { entries: HashMap::with_capacity(capacity.min(1024)), capacity, tick: 0, last: None }
    }

    /// The compiled form of `query`, compiling (and caching) it on a miss.
    fn get(&mut self, query: &str) -> (std::result::Result<Filter, KflError>, Lookup) {
        self.tick += 1;
        if let Some((q, compiled)) = &self.last {
            if **q == *query {
                // Its entry's `used` is refreshed when another query is
                // asked for (below), which is the only time it matters.
                return (compiled.clone(), Lookup::Hit);
            }
        }
        if let Some((q, _)) = self.last.take() {
            if let Some(e) = self.entries.get_mut(&q) {
                e.used = self.tick;
            }
        }
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(query) {
            e.used = self.tick;
            self.last = Some((query.into(), e.compiled.clone()));
            return (e.compiled.clone(), Lookup::Hit);
        }
        let evicted = self.entries.len() >= self.capacity;
        if evicted {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        let compiled = Filter::compile(query);
        self.entries.insert(query.into(), Entry { compiled: compiled.clone(), used: self.tick });
        self.last = Some((query.into(), compiled.clone()));
        (compiled, Lookup::Compiled { evicted })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Compiles `query` through the runtime's cache, counting what happened.
fn compiled(sh: &Shared, query: &str) -> std::result::Result<Filter, KflError> {
    let (r, how) = sh.kfl.borrow_mut().get(query);
    let mut c = sh.counters.borrow_mut();
    match how {
        Lookup::Hit => c.kfl_cache_hits += 1,
        Lookup::Compiled { evicted } => {
            c.kfl_compiles += 1;
            c.kfl_cache_evictions += u64::from(evicted);
        }
    }
    r
}

/// The query's text, read in place (QuickJS lends an ASCII string's own
/// bytes), as the query is read for every item.
fn query_text<'js>(
    ctx: &Ctx<'js>,
    sh: &Shared,
    v: Opt<Value<'js>>,
    name: &str,
) -> Result<CString<'js>> {
    let v = match v.0 {
        Some(v) if v.is_string() => v,
        Some(v) => crate::results::plain(ctx, sh, v)?,
        None => Value::new_undefined(ctx.clone()),
    };
    match v.into_string() {
        Some(s) => CString::from_string(s),
        None => {
            sh.argument_error();
            Err(Exception::throw_type(ctx, &format!("kfl.{name}: the query must be a string")))
        }
    }
}

fn invalid(ctx: &Ctx<'_>, sh: &Shared, name: &str, e: &KflError) -> rquickjs::Error {
    sh.argument_error();
    Exception::throw_message(ctx, &format!("kfl.{name}: {e}"))
}

/// The global `kfl` object of a runtime.
pub(crate) fn object<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    let s = sh.clone();
    o.set(
        "match",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, query: Opt<Value<'js>>, data: Opt<Value<'js>>| -> Result<bool> {
                let q = query_text(&ctx, &s, query, "match")?;
                let filter =
                    compiled(&s, q.as_str()).map_err(|e| invalid(&ctx, &s, "match", &e))?;
                let item = data.0.as_ref().and_then(item_of);
                let Some(item) = item else {
                    s.argument_error();
                    return Err(Exception::throw_type(
                        &ctx,
                        "kfl.match: data must be an item a hook was given",
                    ));
                };
                let obj = item.borrow();
                Ok(obj.with_item(|i| filter.matches(i, &s.node)))
            },
        )?,
    )?;
    let s = sh.clone();
    o.set(
        "validate",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, query: Opt<Value<'js>>| -> Result<bool> {
            let q = query_text(&ctx, &s, query, "validate")?;
            compiled(&s, q.as_str()).map_err(|e| invalid(&ctx, &s, "validate", &e))?;
            Ok(true)
        })?,
    )?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_compiles_once_and_evicts_the_least_recently_used() {
        let mut c = Cache::new(2);
        assert_eq!(c.get("http").1, Lookup::Compiled { evicted: false });
        assert_eq!(c.get("http").1, Lookup::Hit);
        assert_eq!(c.get("dns").1, Lookup::Compiled { evicted: false });
        // Touch `http`: `dns` is now the least recently used.
        assert_eq!(c.get("http").1, Lookup::Hit);
        assert_eq!(c.get("redis").1, Lookup::Compiled { evicted: true });
        assert_eq!(c.len(), 2);
        // `dns` went (least recently used), `http` stayed.
        assert_eq!(c.get("http").1, Lookup::Hit);
        assert_eq!(c.get("dns").1, Lookup::Compiled { evicted: true });
    }

    #[test]
    fn invalid_queries_are_cached_with_their_error() {
        let mut c = Cache::new(4);
        let (r, how) = c.get("status_code == \"x\"");
        assert!(r.is_err());
        assert_eq!(how, Lookup::Compiled { evicted: false });
        let (r, how) = c.get("status_code == \"x\"");
        assert!(r.is_err());
        assert_eq!(how, Lookup::Hit);
    }
}
