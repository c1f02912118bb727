//! What an I/O helper returns: a *result*, usable both the asynchronous way
//! and the way Kubeshark's synchronous helpers were used.
//!
//! Kubeshark's helpers blocked and returned plain values, so its agents do
//! `JSON.parse(vendor.webhook("GET", url))`, `"url: " + vendor.s3.put(...)`,
//! `r.sequenceNumber`. skua's helpers never block: they enqueue an
//! [`Effect`](crate::Effect) and return at once. The result bridges the
//! two: a `Proxy` over the helper's Promise (`results.js`) that
//! - is a thenable: `.then`, `.catch`, `.finally`, `await`, `Promise.all`
//!   work on the Promise, which resolves with the executor's whole answer
//!   (`{status, headers, body}` for a webhook);
//! - becomes the plain value Kubeshark returned (the body for a webhook,
//!   [`Effect::plain_field`]; the answer itself for the others) the moment
//!   the script uses it as a value: converted to a primitive (`"x" + r`,
//!   `JSON.parse(r)`, `r == "ok"`, a helper argument), serialised
//!   (`JSON.stringify`, `console.log`), or read (`r.length`,
//!   `r.indexOf(..)`, `r.sequenceNumber`, `Object.keys(r)`).
//!
//! Using an unsettled result *waits* for it ([`wait`]): the runtime blocks
//! on its completion channel until this request's answer arrives, settling
//! any other answer that comes first, and at most until shortly before the
//! current call's deadline (a tenth of its budget is left for the script to
//! handle the error). Past that the use throws a catchable `Error` (the
//! result stays usable later, when the answer has come). A failed effect
//! throws its error when used. A script that never uses a result never
//! waits. Waits, time waited and waits that ran out are counted per runtime
//! and per agent and call site.
//!
//! Invariants:
//! - A result is settled at most once, by the first of: the runtime's
//!   `poll_completions`, a wait, or the helper itself (argument errors and
//!   a full queue settle it as failed at once: nothing is waited for).
//! - A rejection the script saw (by using the result) is handled: it is
//!   not reported again as an unhandled rejection.
//! - Only the runtime's thread touches the cells; the completion channel is
//!   the only thing a wait shares with other threads.
//!
//! Why a Proxy and not a class with `valueOf`: only a Proxy answers
//! `r.length`, `r.indexOf` and `r.sequenceNumber` from a value it does not
//! have yet; QuickJS's Proxy is complete.
//!
//! **Lazy results.** Most agents ignore what a fire-and-forget helper
//! returns (`vendor.webhook(...)` as a statement), so a result starts as a
//! [`LazyResult`]: one small exotic object holding the request id, with
//! `Promise.prototype` as its prototype (`r instanceof Promise`). Its
//! Promise, resolving functions and Proxy are made the first time the
//! script touches it (any property read, write, `in`, key listing,
//! conversion, `await`), and every such operation is then forwarded to
//! the Proxy, so a touched lazy result behaves exactly as above. An answer
//! that comes while the result is untouched is kept as JSON in the
//! result's [`LazyState`]; an answer for a result the script has dropped
//! (its object freed) is discarded without building any JS value, and a
//! failure of one is reported on the console as an unhandled rejection
//! and counted, as a rejected Promise with no handler is. Measured: an
//! ignored `vendor.webhook` cost the script core ≈ 4.7 µs per call with a
//! Proxy per call (BENCHMARKS.md, issue 28) and far less with lazy
//! results (BENCHMARKS.md, issue 30).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crossbeam_channel::RecvTimeoutError;
use rquickjs::class::{JsCell, JsClass, PropertyDescriptor, PropertyName, Readable, Trace, Tracer};
use rquickjs::{
    Array, Atom, Class, Constructor, Ctx, Exception, Function, JsLifetime, Object, Persistent,
    Promise, Result, Value,
};

use crate::clock::Instant;
use crate::effects::Completion;
use crate::js;
use crate::runtime::Shared;

/// The JS side, made once per runtime.
pub(crate) struct ResultFns {
    make: Persistent<Function<'static>>,
    settle: Persistent<Function<'static>>,
    plain: Persistent<Function<'static>>,
    /// `Reflect.ownKeys` and `Reflect.getOwnPropertyDescriptor`, taken
    /// before any agent ran (an agent may replace the globals).
    own_keys: Persistent<Function<'static>>,
    descriptor: Persistent<Function<'static>>,
}

/// What the answer of a pending effect settles.
pub(crate) enum Settles {
    /// A result the script has not touched yet: its state, if it is alive.
    Lazy(Weak<LazyState>),
    /// A result made into a Promise (and Proxy).
    Promise {
        promise: Persistent<Promise<'static>>,
        resolve: Persistent<Function<'static>>,
        reject: Persistent<Function<'static>>,
    },
}

/// An answer that came before the script touched its result.
enum Answer {
    Value(serde_json::Value),
    Error(String),
}

/// The part of a lazy result its pending entry shares (weakly).
#[derive(Default)]
pub(crate) struct LazyState {
    answer: RefCell<Option<Answer>>,
}

/// A helper's result before the script touches it (see the module doc).
#[derive(JsLifetime)]
pub(crate) struct LazyResult<'js> {
    id: u64,
    plain_field: Option<&'static str>,
    state: Rc<LazyState>,
    shared: Weak<Shared>,
    /// The Proxy it became, once touched.
    proxy: RefCell<Option<Object<'js>>>,
}

impl<'js> Trace<'js> for LazyResult<'js> {
    fn trace<'a>(&self, tracer: Tracer<'a, 'js>) {
        if let Ok(p) = self.proxy.try_borrow() {
            if let Some(p) = p.as_ref() {
                p.trace(tracer);
            }
        }
    }
}

impl<'js> JsClass<'js> for LazyResult<'js> {
    const NAME: &'static str = "HelperResult";
    const KIND: rquickjs::class::ClassKind = rquickjs::class::ClassKind::Exotic;
    type Mutable = Readable;

    /// `Promise.prototype`: a result is `instanceof Promise`, as the Proxy
    /// over a Promise it becomes is.
    fn prototype(ctx: &Ctx<'js>) -> Result<Option<Object<'js>>> {
        let promise: Object = ctx.globals().get("Promise")?;
        Ok(Some(promise.get("prototype")?))
    }

    fn constructor(_ctx: &Ctx<'js>) -> Result<Option<Constructor<'js>>> {
        Ok(None)
    }

    fn exotic_get_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: &Atom<'js>,
        _receiver: &Value<'js>,
    ) -> Result<Value<'js>> {
        touch(this, ctx)?.get(atom.clone())
    }

    fn exotic_set_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: Atom<'js>,
        _receiver: Value<'js>,
        value: Value<'js>,
    ) -> Result<bool> {
        touch(this, ctx)?.set(atom, value)?;
        Ok(true)
    }

    fn exotic_delete_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: Atom<'js>,
    ) -> Result<bool> {
        touch(this, ctx)?.remove(atom)?;
        Ok(true)
    }

    fn exotic_has_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: Atom<'js>,
    ) -> Result<bool> {
        touch(this, ctx)?.contains_key(atom)
    }

    fn exotic_get_own_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: Atom<'js>,
    ) -> Result<Option<PropertyDescriptor<'js>>> {
        let proxy = touch(this, ctx)?;
        let sh = shared_of(this, ctx)?;
        let describe = fns(ctx, &sh, |r| &r.descriptor)?;
        let d: Value = describe.call((proxy.clone(), atom.to_value()?))?;
        let Some(d) = d.into_object() else { return Ok(None) };
        let flag = |k: &str| d.get::<_, Option<bool>>(k).map(|v| v.unwrap_or(false));
        let (configurable, enumerable, writable) =
            (flag("configurable")?, flag("enumerable")?, flag("writable")?);
        if d.contains_key("get")? || d.contains_key("set")? {
            // An accessor of the plain value: shown as the value it gives.
            let v = proxy.get(atom)?;
            return Ok(Some(PropertyDescriptor::new_value(v, configurable, enumerable, false)));
        }
        Ok(Some(PropertyDescriptor::new_value(d.get("value")?, configurable, enumerable, writable)))
    }

    fn exotic_get_own_property_names(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
    ) -> Result<Vec<PropertyName<'js>>> {
        let proxy = touch(this, ctx)?;
        let sh = shared_of(this, ctx)?;
        let own_keys = fns(ctx, &sh, |r| &r.own_keys)?;
        let keys: Array = own_keys.call((proxy,))?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys.iter::<Value>() {
            // Enumerability is asked of `exotic_get_own_property` by QuickJS.
            out.push(PropertyName {
                atom: Atom::from_value(ctx.clone(), &k?)?,
                is_enumerable: false,
            });
        }
        Ok(out)
    }
}

fn shared_of<'js>(this: &JsCell<'js, LazyResult<'js>>, ctx: &Ctx<'js>) -> Result<Rc<Shared>> {
    this.borrow()
        .shared
        .upgrade()
        .ok_or_else(|| Exception::throw_message(ctx, "the runtime is gone"))
}

/// The lazy result of request `id` (whose answer's plain value is
/// `plain_field` of it, or all of it) and what its pending entry settles.
pub(crate) fn lazy<'js>(
    ctx: &Ctx<'js>,
    sh: &Rc<Shared>,
    id: u64,
    plain_field: Option<&'static str>,
) -> Result<(Value<'js>, Settles)> {
    let state = Rc::new(LazyState::default());
    let settles = Settles::Lazy(Rc::downgrade(&state));
    let r =
        LazyResult { id, plain_field, state, shared: Rc::downgrade(sh), proxy: RefCell::new(None) };
    Ok((Class::instance(ctx.clone(), r)?.into_value(), settles))
}

/// The Proxy a lazy result becomes when the script first touches it: its
/// Promise settled already if the answer came, else left to the pending
/// entry (which now settles the Promise).
fn touch<'js>(this: &JsCell<'js, LazyResult<'js>>, ctx: &Ctx<'js>) -> Result<Object<'js>> {
    // No borrow of the cell is held across a QuickJS allocation (a GC may
    // trace this object).
    let made = this.borrow().proxy.borrow().clone();
    if let Some(p) = made {
        return Ok(p);
    }
    let (id, plain_field, state) = {
        let me = this.borrow();
        (me.id, me.plain_field, me.state.clone())
    };
    let sh = shared_of(this, ctx)?;
    let make = fns(ctx, &sh, |r| &r.make)?;
    let (promise, resolve, reject) = Promise::new(ctx)?;
    let answer = state.answer.borrow_mut().take();
    let proxy: Object = match answer {
        None => {
            if let Some(p) = sh.pending.borrow_mut().get_mut(&id) {
                p.settles = Settles::Promise {
                    promise: Persistent::save(ctx, promise.clone()),
                    resolve: Persistent::save(ctx, resolve),
                    reject: Persistent::save(ctx, reject),
                };
            }
            make.call((promise, id as f64, PENDING, Value::new_undefined(ctx.clone())))?
        }
        Some(Answer::Value(v)) => {
            let (whole, plain) = whole_and_plain(ctx, &v, plain_field)?;
            resolve.call::<_, ()>((whole,))?;
            make.call((promise, id as f64, VALUE, plain))?
        }
        Some(Answer::Error(msg)) => {
            // Reported when it came (no handler then): not again.
            let e = Exception::from_message(ctx.clone(), &msg)?.into_value();
            reject.call::<_, ()>((e.clone(),))?;
            make.call((promise, 0.0, ERROR, e))?
        }
    };
    *this.borrow().proxy.borrow_mut() = Some(proxy.clone());
    Ok(proxy)
}

/// An answer as the Promise's value (all of it) and as the plain value.
fn whole_and_plain<'js>(
    ctx: &Ctx<'js>,
    v: &serde_json::Value,
    plain_field: Option<&'static str>,
) -> Result<(Value<'js>, Value<'js>)> {
    let whole = js::from_json(ctx, v)?;
    let plain = match plain_field.and_then(|f| v.get(f)) {
        Some(field) => js::from_json(ctx, field)?,
        None => whole.clone(),
    };
    Ok((whole, plain))
}

/// Per call: what [`wait`] (and a helper refusing its arguments) adds up
/// until the call is accounted (`Calls::call` takes it into the agent's
/// site statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WaitTally {
    pub(crate) waits: u64,
    pub(crate) wait_ns: u64,
    pub(crate) over_budget: u64,
    pub(crate) argument_errors: u64,
    /// Helper calls refused at a per-agent limit (`Shared::limit_hit`).
    pub(crate) limits_hit: u64,
    /// Console lines dropped by the per-agent rate limit.
    pub(crate) console_suppressed: u64,
}

/// State of a result as `results.js` keeps it.
const PENDING: i32 = 0;
const VALUE: i32 = 1;
const ERROR: i32 = 2;

/// Evaluates `results.js` with the runtime's `wait`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>) -> Result<ResultFns> {
    let mut opts = rquickjs::context::EvalOptions::default();
    opts.global = true;
    opts.strict = true;
    opts.filename = Some("<skua results>".into());
    let factory: Function = ctx.eval_with_options(include_str!("results.js"), opts)?;
    let weak = Rc::downgrade(sh);
    let wait_fn = Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: f64| -> Result<()> {
        match weak.upgrade() {
            Some(sh) => wait(&ctx, &sh, id as u64),
            None => Err(Exception::throw_message(&ctx, "the runtime is gone")),
        }
    })?;
    let fns: Array = factory.call((wait_fn,))?;
    let f = |i: usize| -> Result<Persistent<Function<'static>>> {
        Ok(Persistent::save(ctx, fns.get::<Function>(i)?))
    };
    Ok(ResultFns { make: f(0)?, settle: f(1)?, plain: f(2)?, own_keys: f(3)?, descriptor: f(4)? })
}

fn fns<'js>(
    ctx: &Ctx<'js>,
    sh: &Shared,
    pick: fn(&ResultFns) -> &Persistent<Function<'static>>,
) -> Result<Function<'js>> {
    let f = sh.results.borrow().as_ref().map(|r| pick(r).clone());
    match f {
        Some(f) => f.restore(ctx),
        None => Err(Exception::throw_message(ctx, "helper results are not set up")),
    }
}

/// A result that failed at once with `error` (its Promise is rejected).
pub(crate) fn failed<'js>(
    ctx: &Ctx<'js>,
    sh: &Shared,
    promise: Promise<'js>,
    error: Value<'js>,
) -> Result<Value<'js>> {
    let make = fns(ctx, sh, |r| &r.make)?;
    make.call((promise, 0.0, ERROR, error))
}

/// A helper argument as the helper should see it: a result becomes its
/// plain value (waiting for it), anything else is as it was.
pub(crate) fn plain<'js>(ctx: &Ctx<'js>, sh: &Shared, v: Value<'js>) -> Result<Value<'js>> {
    if !v.is_object() || v.is_function() {
        return Ok(v);
    }
    let plain = fns(ctx, sh, |r| &r.plain)?;
    plain.call((v,))
}

/// Settles the result and the Promise of a completion; `waited` when the
/// script is waiting for it (its error is then thrown, not reported as an
/// unhandled rejection).
pub(crate) fn complete<'js>(
    ctx: &Ctx<'js>,
    sh: &Shared,
    c: Completion,
    waited: bool,
) -> Result<()> {
    let Some(p) = sh.pending.borrow_mut().remove(&c.request_id) else { return Ok(()) };
    sh.counters.borrow_mut().completions += 1;
    let (promise, resolve, reject) = match p.settles {
        Settles::Lazy(state) => {
            // Nothing JS is built for an untouched result; a dropped one's
            // answer goes here, a failure reported as a Promise's would be.
            if let Err(msg) = &c.result {
                sh.counters.borrow_mut().unhandled_rejections += 1;
                sh.print(
                    &p.agent,
                    crate::console::ConsoleLevel::Error,
                    format!("unhandled rejection of a helper's Promise: {msg}"),
                );
            }
            if let Some(state) = state.upgrade() {
                *state.answer.borrow_mut() = Some(match c.result {
                    Ok(v) => Answer::Value(v),
                    Err(msg) => Answer::Error(msg),
                });
            }
            return Ok(());
        }
        Settles::Promise { promise, resolve, reject } => (promise, resolve, reject),
    };
    let settle = fns(ctx, sh, |r| &r.settle)?;
    let promise = promise.restore(ctx)?;
    match c.result {
        Ok(v) => {
            let (whole, plain) = whole_and_plain(ctx, &v, p.plain_field)?;
            settle.call::<_, ()>((promise, VALUE, plain))?;
            resolve.restore(ctx)?.call::<_, ()>((whole,))
        }
        Err(msg) => {
            let e = Exception::from_message(ctx.clone(), &msg)?;
            settle.call::<_, ()>((promise, ERROR, e.clone()))?;
            let reject = reject.restore(ctx)?;
            if !waited {
                sh.rejections.borrow_mut().agent = Some(p.agent.clone());
            }
            let r = reject.call::<_, ()>((e,));
            sh.rejections.borrow_mut().agent = None;
            r
        }
    }
}

/// Blocks until request `id` completes (settling it and whatever completes
/// before it), or throws when the current call's budget would run out.
fn wait(ctx: &Ctx<'_>, sh: &Shared, id: u64) -> Result<()> {
    let helper = match sh.pending.borrow().get(&id) {
        Some(p) => p.helper,
        None => {
            return Err(Exception::throw_message(
                ctx,
                "this helper result was lost (its runtime was reset)",
            ))
        }
    };
    let t0 = Instant::now();
    let budget = sh.interrupt.budget();
    let deadline = sh.interrupt.deadline().unwrap_or(t0 + budget);
    // A tenth of the budget is left for the script to handle the error.
    let reserve = budget / 10;
    let mut found = false;
    let mut failure = None;
    loop {
        let left = deadline.duration_since(Instant::now()).saturating_sub(reserve);
        if left.is_zero() {
            break;
        }
        match sh.completions.recv_timeout(left) {
            Ok(c) => {
                let mine = c.request_id == id;
                if let Err(e) = complete(ctx, sh, c, mine) {
                    failure = Some(e);
                }
                if mine {
                    found = true;
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let waited = t0.elapsed();
    let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
    {
        let mut c = sh.counters.borrow_mut();
        c.result_waits += 1;
        c.result_wait_ns = c.result_wait_ns.saturating_add(ns);
        if !found {
            c.result_waits_over_budget += 1;
        }
    }
    let mut t = sh.wait_tally.get();
    t.waits += 1;
    t.wait_ns = t.wait_ns.saturating_add(ns);
    t.over_budget += u64::from(!found);
    sh.wait_tally.set(t);
    if let Some(e) = failure {
        return Err(e);
    }
    if found {
        return Ok(());
    }
    Err(Exception::throw_message(
        ctx,
        &format!(
            "{helper}: no answer within this call's {} ms budget (waited {} ms); \
             use .then() or a job for slow calls",
            budget.as_millis(),
            waited.as_millis()
        ),
    ))
}
