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
//! have yet; QuickJS's Proxy is complete and costs one object per call.

use std::rc::Rc;

use crossbeam_channel::RecvTimeoutError;
use rquickjs::{Array, Ctx, Exception, Function, Persistent, Promise, Result, Value};

use crate::clock::Instant;
use crate::effects::Completion;
use crate::js;
use crate::runtime::Shared;

/// The JS side, made once per runtime.
pub(crate) struct ResultFns {
    make: Persistent<Function<'static>>,
    settle: Persistent<Function<'static>>,
    plain: Persistent<Function<'static>>,
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
    Ok(ResultFns { make: f(0)?, settle: f(1)?, plain: f(2)? })
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

/// The result of request `id` whose Promise is `promise`, pending.
pub(crate) fn pending<'js>(
    ctx: &Ctx<'js>,
    sh: &Shared,
    promise: Promise<'js>,
    id: u64,
) -> Result<Value<'js>> {
    let make = fns(ctx, sh, |r| &r.make)?;
    make.call((promise, id as f64, PENDING, Value::new_undefined(ctx.clone())))
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
    let settle = fns(ctx, sh, |r| &r.settle)?;
    let promise = p.promise.restore(ctx)?;
    match c.result {
        Ok(v) => {
            let whole = js::from_json(ctx, &v)?;
            let plain = match p.plain_field.and_then(|f| v.get(f)) {
                Some(field) => js::from_json(ctx, field)?,
                None => whole.clone(),
            };
            settle.call::<_, ()>((promise, VALUE, plain))?;
            p.resolve.restore(ctx)?.call::<_, ()>((whole,))
        }
        Err(msg) => {
            let e = Exception::from_message(ctx.clone(), &msg)?;
            settle.call::<_, ()>((promise, ERROR, e.clone()))?;
            let reject = p.reject.restore(ctx)?;
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
