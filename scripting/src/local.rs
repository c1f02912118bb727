//! Helpers that answer inside the runtime, with no effect and no I/O:
//! `setTimeout`/`setInterval` (one-shot and repeating jobs), env keys as
//! bare globals, `utils.json2Yaml`, `hub.targeted`, `aggregation.*`,
//! `chatgpt.sentiment`, `wrapper.buildHAR`/`joinMaps` (plain JS,
//! `wrapper.js`).
//! Each throws a catchable `Error` (`TypeError` for a wrong argument) and
//! counts it in `helper_argument_errors`.
//!
//! `chatgpt.sentiment` is VADER through the `vader_sentiment` crate (the
//! Rust port of the reference lexicon and rules, the scorer Kubeshark's Go
//! helper used); text past [`MAX_SENTIMENT_BYTES`] is cut, so one call's
//! time stays bounded.

use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rquickjs::function::Rest;
use rquickjs::{Ctx, Exception, Function, Object, Persistent, Result, Value};

use crate::console::ConsoleLevel;
use crate::js;
use crate::runtime::{Shared, Timer};

/// Longest text `chatgpt.sentiment` scores; the rest is left out.
pub const MAX_SENTIMENT_BYTES: usize = 64 * 1024;

/// The JSON text `hub.targeted()` returns until the pod view publishes one.
const NO_TARGETS: &str = r#"{"targets":[],"excluded":[]}"#;

static TARGETED: RwLock<Option<Arc<str>>> = RwLock::new(None);

/// Publishes what `hub.targeted()` returns in every runtime of the
/// process: `{"targets": [pod, ...], "excluded": [pod, ...]}` as JSON text,
/// pods in Kubernetes' JSON (`metadata.name`, `spec.nodeName`). The kube
/// pod view calls it when its pods change.
pub fn publish_targeted(json: String) {
    if let Ok(mut t) = TARGETED.write() {
        *t = Some(Arc::from(json));
    }
}

fn targeted() -> Arc<str> {
    TARGETED.read().ok().and_then(|t| t.clone()).unwrap_or_else(|| Arc::from(NO_TARGETS))
}

fn arg_error(ctx: &Ctx<'_>, sh: &Shared, msg: &str) -> rquickjs::Error {
    sh.argument_error();
    Exception::throw_type(ctx, msg)
}

/// A string argument (a helper result is used as its value).
fn text<'js>(ctx: &Ctx<'js>, sh: &Shared, v: Option<&Value<'js>>, what: &str) -> Result<String> {
    let Some(v) = v.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Err(arg_error(ctx, sh, &format!("{what} is required")));
    };
    let v = crate::results::plain(ctx, sh, v.clone())?;
    match v.as_string() {
        Some(s) => s.to_string(),
        None => Ok(js::display(ctx, &v)),
    }
}

/// `utils.json2Yaml(jsonString)`: YAML text of the JSON (an object is
/// taken as it is, as if stringified first).
pub(crate) fn json2yaml<'js>(ctx: &Ctx<'js>, sh: &Shared, v: Option<Value<'js>>) -> Result<String> {
    let Some(v) = v.filter(|v| !v.is_undefined()) else {
        return Err(arg_error(ctx, sh, "utils.json2Yaml: a JSON string is required"));
    };
    let v = crate::results::plain(ctx, sh, v)?;
    let json: serde_json::Value = match v.as_string() {
        Some(s) => serde_json::from_str(&s.to_string()?)
            .map_err(|e| arg_error(ctx, sh, &format!("utils.json2Yaml: not JSON: {e}")))?,
        None => {
            js::to_json(ctx, v).map_err(|e| arg_error(ctx, sh, &format!("utils.json2Yaml: {e}")))?
        }
    };
    serde_yaml::to_string(&json)
        .map_err(|e| Exception::throw_message(ctx, &format!("utils.json2Yaml: {e}")))
}

/// `hub.targeted()`.
pub(crate) fn hub_targeted<'js>(ctx: &Ctx<'js>) -> Result<Value<'js>> {
    js::string(ctx, &targeted())
}

/// `aggregation.msg(code, msg)`, `.json(code, key, obj)`,
/// `.jsonWithMsg(code, key, obj, msg)`: one record on the agent's console
/// stream, as Kubeshark's log line read: `CODE msg key={json}`.
pub(crate) fn aggregation<'js>(
    ctx: &Ctx<'js>,
    sh: &Rc<Shared>,
    agent: &Arc<str>,
) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    // (name, argument index of the key/object, of the message)
    let forms: [(&str, Option<usize>, Option<usize>); 3] =
        [("msg", None, Some(1)), ("json", Some(1), None), ("jsonWithMsg", Some(1), Some(3))];
    for (name, key_at, msg_at) in forms {
        let (sh, agent) = (sh.clone(), agent.clone());
        let f =
            Function::new(ctx.clone(), move |ctx: Ctx<'js>, a: Rest<Value<'js>>| -> Result<()> {
                if !sh.console_allowed(&agent) {
                    return Ok(());
                }
                let what = format!("aggregation.{name}");
                let code = text(&ctx, &sh, a.0.first(), &format!("{what}: code"))?;
                let mut line = code;
                if let Some(i) = msg_at {
                    line.push(' ');
                    line.push_str(&text(&ctx, &sh, a.0.get(i), &format!("{what}: msg"))?);
                }
                if let Some(i) = key_at {
                    let key = text(&ctx, &sh, a.0.get(i), &format!("{what}: key"))?;
                    let obj = match a.0.get(i + 1) {
                        Some(v) => crate::results::plain(&ctx, &sh, v.clone())?,
                        None => Value::new_undefined(ctx.clone()),
                    };
                    let json = js::to_json(&ctx, obj)
                        .map_err(|e| arg_error(&ctx, &sh, &format!("{what}: {e}")))?;
                    line.push_str(&format!(" {key}={json}"));
                }
                sh.print(&agent, ConsoleLevel::Log, line);
                Ok(())
            })?;
        o.set(name, f)?;
    }
    Ok(o)
}

/// `chatgpt.sentiment(text)` → `{neg, neu, pos, compound}`.
pub(crate) fn sentiment<'js>(
    ctx: &Ctx<'js>,
    sh: &Shared,
    v: Option<Value<'js>>,
) -> Result<Object<'js>> {
    let mut t = text(ctx, sh, v.as_ref(), "chatgpt.sentiment: text")?;
    if t.len() > MAX_SENTIMENT_BYTES {
        let mut end = MAX_SENTIMENT_BYTES;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t.truncate(end);
    }
    // The port indexes words freely; a text it cannot score is an error,
    // never a panic of the runtime's thread.
    let scores = std::panic::catch_unwind(|| {
        let a = vader_sentiment::SentimentIntensityAnalyzer::new();
        let s = a.polarity_scores(&t);
        let get = |k: &str| s.get(k).copied().unwrap_or(0.0);
        [get("neg"), get("neu"), get("pos"), get("compound")]
    })
    .map_err(|_| {
        Exception::throw_message(ctx, "chatgpt.sentiment: this text could not be scored")
    })?;
    let o = Object::new(ctx.clone())?;
    for (k, v) in ["neg", "neu", "pos", "compound"].into_iter().zip(scores) {
        o.set(k, v)?;
    }
    Ok(o)
}

/// `wrapper.buildHAR(items)` and `wrapper.joinMaps(a, b)` (`wrapper.js`).
pub(crate) fn wrapper<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let mut opts = rquickjs::context::EvalOptions::default();
    opts.global = true;
    opts.strict = true;
    opts.filename = Some("<skua wrapper>".into());
    ctx.eval_with_options(include_str!("wrapper.js"), opts)
}

/// `setTimeout(fn, ms, ...args)`, `clearTimeout(id)`, `setInterval(fn, ms,
/// ...args)`, `clearInterval(id)` of one agent: jobs that run once (or
/// every `ms`) in this runtime, on its clock, under the job budget. An id
/// is a number; clearing an unknown id does nothing, as in browsers.
pub(crate) fn timers<'js>(
    ctx: &Ctx<'js>,
    sh: &Rc<Shared>,
    agent: &Arc<str>,
    uid: u64,
) -> Result<[Function<'js>; 4]> {
    let _ = agent;
    let set = |repeat: bool| -> Result<Function<'js>> {
        let sh = sh.clone();
        let name = if repeat { "setInterval" } else { "setTimeout" };
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, a: Rest<Value<'js>>| -> Result<f64> {
            let Some(f) = a.0.first().and_then(|v| v.as_function()).cloned() else {
                return Err(arg_error(
                    &ctx,
                    &sh,
                    &format!("{name}: the first argument must be a function"),
                ));
            };
            let ms = match a.0.get(1) {
                None => 0.0,
                Some(v) if v.is_undefined() => 0.0,
                Some(v) => match v.as_number() {
                    Some(n) if n.is_finite() => n.max(0.0),
                    _ => {
                        return Err(arg_error(
                            &ctx,
                            &sh,
                            &format!("{name}: the delay must be a number of milliseconds"),
                        ))
                    }
                },
            };
            let delay = Duration::from_millis(ms.min(u64::MAX as f64 / 2.0) as u64);
            if sh.timers.borrow().iter().filter(|t| t.owner == uid).count() >= sh.max_timers {
                return Err(sh.limit_hit(
                    &ctx,
                    |c| c.timers_refused += 1,
                    &format!(
                        "{name}: this agent has {} timers pending, the most it may have \
                         (scripting.maxTimersPerAgent); clear one first",
                        sh.max_timers
                    ),
                ));
            }
            let id = sh.next_timer.get() + 1;
            sh.next_timer.set(id);
            let args = a.0.iter().skip(2).map(|v| Persistent::save(&ctx, v.clone())).collect();
            let due = sh.now().map(|now| now + delay);
            sh.timers.borrow_mut().push(Timer {
                id,
                due,
                delay,
                repeat,
                func: Persistent::save(&ctx, f),
                args,
                owner: uid,
            });
            Ok(id as f64)
        })
    };
    let clear = || -> Result<Function<'js>> {
        let sh = sh.clone();
        Function::new(ctx.clone(), move |id: Option<f64>| {
            if let Some(id) = id {
                sh.timers.borrow_mut().retain(|t| t.id as f64 != id || t.owner != uid);
            }
        })
    };
    Ok([set(false)?, clear()?, set(true)?, clear()?])
}

/// Defines each `scripting.env` key that is a valid identifier as a bare
/// global holding its value (as Kubeshark does), unless the global object
/// already has that name (a builtin or a helper wins); the names defined
/// before are removed first.
pub(crate) fn define_env_globals(ctx: &Ctx<'_>, sh: &Shared) -> Result<()> {
    let g = ctx.globals();
    let old = std::mem::take(&mut *sh.env_globals.borrow_mut());
    for name in old {
        g.remove(name.as_str())?;
    }
    let vars = sh.env.borrow().clone();
    let mut defined = Vec::new();
    for (k, v) in vars {
        if !is_identifier(&k) || g.contains_key(k.as_str())? {
            continue;
        }
        g.set(k.as_str(), v.as_str())?;
        defined.push(k);
    }
    *sh.env_globals.borrow_mut() = defined;
    Ok(())
}

/// An IdentifierName that is not a reserved word (ASCII: what env keys are).
fn is_identifier(s: &str) -> bool {
    const RESERVED: [&str; 46] = [
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "let",
        "static",
        "implements",
        "interface",
        "package",
        "private",
        "protected",
        "public",
        "await",
    ];
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == '$')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '$')
        && !RESERVED.contains(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("SLACK_AUTH_TOKEN"));
        assert!(is_identifier("_x$1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("my-key"));
        assert!(!is_identifier("var"));
        assert!(!is_identifier(""));
    }
}
