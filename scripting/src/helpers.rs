//! The helpers of `AGENTS_API.md` as JS objects. Each agent gets its own
//! set (passed into its scope), so a helper knows which agent called it:
//! console lines are tagged with it, jobs belong to it, `file.*` works in
//! its directory. The global object carries a set tagged `global` for code
//! outside any agent scope (`new Function`, `eval`), without `jobs`.
//!
//! I/O helpers never do I/O here: they turn their arguments into an
//! [`Effect`], submit it, and return a *result* (`crate::results`): a
//! thenable that becomes the helper's plain value when the script uses it,
//! failed at once (and counted) when the arguments are wrong or the queue
//! is full. Arguments that are themselves results are used as their plain
//! values.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::function::Rest;
use rquickjs::{
    Array, Coerced, Ctx, Exception, Function, Object, Persistent, Promise, Result, Value,
};

use crate::console::ConsoleLevel;
use crate::effects::{
    confine, confine_source, parse_stream, s3_put_order, Effect, MetricKind, PcapSelect, S3PutOrder,
};
use crate::item_js::item_of;
use crate::jobs::{next_after, normalize_tag, parse_cron, JobInfo};
use crate::js;
use crate::runtime::{Job, PendingPromise, Shared, HELPERS};

type Args<'js> = Rest<Value<'js>>;

fn arg<'a, 'js>(args: &'a Args<'js>, i: usize) -> Option<&'a Value<'js>> {
    args.0.get(i).filter(|v| !v.is_undefined() && !v.is_null())
}

fn coerce<'js>(v: &Value<'js>) -> std::result::Result<String, String> {
    v.get::<Coerced<String>>().map(|c| c.0).map_err(|e| e.to_string())
}

fn req_str<'js>(args: &Args<'js>, i: usize, what: &str) -> std::result::Result<String, String> {
    match arg(args, i) {
        Some(v) => coerce(v),
        None => Err(format!("{what} is required")),
    }
}

fn opt_str<'js>(args: &Args<'js>, i: usize) -> std::result::Result<Option<String>, String> {
    arg(args, i).map(coerce).transpose()
}

/// A string argument as it is; anything else as its JSON text.
fn text_or_json<'js>(
    ctx: &Ctx<'js>,
    v: Option<&Value<'js>>,
) -> std::result::Result<String, String> {
    match v {
        None => Ok(String::new()),
        Some(v) if v.is_string() => coerce(v),
        Some(v) => Ok(js::to_json(ctx, v.clone())?.to_string()),
    }
}

fn json_arg<'js>(
    ctx: &Ctx<'js>,
    v: Option<&Value<'js>>,
) -> std::result::Result<serde_json::Value, String> {
    match v {
        None => Ok(serde_json::Value::Null),
        Some(v) => js::to_json(ctx, v.clone()),
    }
}

/// An object of strings (headers, tags, labels).
fn string_map<'js>(
    ctx: &Ctx<'js>,
    v: Option<&Value<'js>>,
    what: &str,
) -> std::result::Result<BTreeMap<String, String>, String> {
    match json_arg(ctx, v)? {
        serde_json::Value::Null => Ok(BTreeMap::new()),
        serde_json::Value::Object(m) => Ok(m
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect()),
        _ => Err(format!("{what} must be an object")),
    }
}

fn func<'js, F, P>(ctx: &Ctx<'js>, f: F) -> Result<Function<'js>>
where
    F: rquickjs::function::IntoJsFunc<'js, P> + 'js,
{
    Function::new(ctx.clone(), f)
}

/// Submits an effect and returns its result (`crate::results`).
fn submit<'js>(
    ctx: &Ctx<'js>,
    sh: &Rc<Shared>,
    agent: &Arc<str>,
    effect: std::result::Result<Effect, String>,
) -> Result<Value<'js>> {
    let failure = match effect {
        Err(m) => {
            sh.argument_error();
            m
        }
        Ok(_) if sh.pending.borrow().len() >= sh.max_pending => {
            sh.counters.borrow_mut().effects_rejected_pending += 1;
            "too many unsettled effects (scripting.maxPendingEffects)".to_owned()
        }
        Ok(effect) => {
            let id = sh.next_request.get();
            sh.next_request.set(id.wrapping_add(1));
            let helper = effect.helper();
            let plain_field = effect.plain_field();
            match sh.effects.submit(sh.id, agent.clone(), id, effect, &sh.mailbox) {
                Ok(()) => {
                    sh.counters.borrow_mut().effects_submitted += 1;
                    // A lazy result: its Promise and Proxy are made only if
                    // the script touches it (`crate::results`).
                    let (result, settles) = crate::results::lazy(ctx, sh, id, plain_field)?;
                    sh.pending.borrow_mut().insert(
                        id,
                        PendingPromise { settles, agent: agent.clone(), helper, plain_field },
                    );
                    return Ok(result);
                }
                Err(m) => {
                    sh.counters.borrow_mut().effects_rejected_full += 1;
                    format!("{helper}: {m}")
                }
            }
        }
    };
    let (promise, _resolve, reject) = Promise::new(ctx)?;
    let e = Exception::from_message(ctx.clone(), &failure)?.into_value();
    sh.rejections.borrow_mut().agent = Some(agent.clone());
    let r = reject.call::<_, ()>((e.clone(),));
    sh.rejections.borrow_mut().agent = None;
    r?;
    crate::results::failed(ctx, sh, promise, e)
}

/// Defines an I/O helper: `build` turns the arguments into an effect.
fn io<'js, B>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>, build: B) -> Result<Function<'js>>
where
    B: Fn(&Ctx<'js>, &Args<'js>) -> std::result::Result<Effect, String> + 'js,
{
    let sh = sh.clone();
    let agent = agent.clone();
    func(ctx, move |ctx: Ctx<'js>, mut args: Args<'js>| -> Result<Value<'js>> {
        for a in args.0.iter_mut() {
            if a.is_object() {
                *a = crate::results::plain(&ctx, &sh, a.clone())?;
            }
        }
        let effect = build(&ctx, &args);
        submit(&ctx, &sh, &agent, effect)
    })
}

fn console<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    let levels = [
        ("log", ConsoleLevel::Log),
        ("info", ConsoleLevel::Log),
        ("debug", ConsoleLevel::Log),
        ("error", ConsoleLevel::Error),
        ("warn", ConsoleLevel::Error),
    ];
    for (name, level) in levels {
        let sh = sh.clone();
        let agent = agent.clone();
        o.set(
            name,
            func(ctx, move |ctx: Ctx<'js>, args: Args<'js>| -> Result<()> {
                // Refused before anything is formatted: a flood costs little.
                if !sh.console_allowed(&agent) {
                    return Ok(());
                }
                let mut text = Vec::with_capacity(args.0.len());
                for v in args.0 {
                    let v = if v.is_object() { crate::results::plain(&ctx, &sh, v)? } else { v };
                    text.push(js::display(&ctx, &v));
                }
                sh.print(&agent, level, text.join(" "));
                Ok(())
            })?,
        )?;
    }
    let (sh, agent) = (sh.clone(), agent.clone());
    o.set("clear", func(ctx, move || sh.print(&agent, ConsoleLevel::Clear, String::new()))?)?;
    Ok(o)
}

pub(crate) fn env_object<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    // Copied out: no borrow is held across QuickJS allocations.
    let vars = sh.env.borrow().clone();
    for (k, v) in &vars {
        o.set(k.as_str(), v.as_str())?;
    }
    let freeze: Function = ctx.globals().get::<_, Object>("Object")?.get("freeze")?;
    freeze.call::<_, Value>((o.clone(),))?;
    Ok(o)
}

fn utils<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    let name = sh.node.name.clone();
    o.set("nodeName", func(ctx, move || name.clone())?)?;
    let sh = sh.clone();
    o.set(
        "json2Yaml",
        func(ctx, move |ctx: Ctx<'js>, v: rquickjs::function::Opt<Value<'js>>| {
            crate::local::json2yaml(&ctx, &sh, v.0)
        })?,
    )?;
    Ok(o)
}

fn test<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    for (name, passed) in [("pass", true), ("fail", false)] {
        o.set(
            name,
            func(ctx, move |data: Value<'js>| -> Result<Value<'js>> {
                if let Some(obj) = data.as_object() {
                    match item_of(&data) {
                        Some(item) => item.borrow().mark(passed),
                        None => obj.set(if passed { "passed" } else { "failed" }, true)?,
                    }
                }
                Ok(data)
            })?,
        )?;
    }
    Ok(o)
}

fn hub<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set("targeted", func(ctx, |ctx: Ctx<'js>| crate::local::hub_targeted(&ctx))?)?;
    o.set(
        "action",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::HubAction {
                action: req_str(a, 0, "action")?,
                object: json_arg(ctx, arg(a, 1))?,
            })
        })?,
    )?;
    o.set(
        "blockPod",
        io(ctx, sh, agent, |_ctx, a| {
            Ok(Effect::HubBlockPod {
                name: req_str(a, 0, "name")?,
                namespace: opt_str(a, 1)?.unwrap_or_default(),
            })
        })?,
    )?;
    Ok(o)
}

fn vendor<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "webhook",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::Webhook {
                method: req_str(a, 0, "method")?.to_ascii_uppercase(),
                url: req_str(a, 1, "url")?,
                body: text_or_json(ctx, arg(a, 2))?,
                headers: string_map(ctx, arg(a, 3), "headers")?,
            })
        })?,
    )?;
    o.set(
        "slack",
        io(ctx, sh, agent, |_ctx, a| {
            Ok(Effect::Slack {
                webhook_url: req_str(a, 0, "webhookUrl")?,
                pretext: opt_str(a, 1)?.unwrap_or_default(),
                text: opt_str(a, 2)?.unwrap_or_default(),
                color: opt_str(a, 3)?.unwrap_or_default(),
            })
        })?,
    )?;
    o.set(
        "slackBot",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::SlackBot {
                token: req_str(a, 0, "token")?,
                channel_id: req_str(a, 1, "channelId")?,
                pretext: opt_str(a, 2)?.unwrap_or_default(),
                text: opt_str(a, 3)?.unwrap_or_default(),
                color: opt_str(a, 4)?.unwrap_or_default(),
                fields: arg(a, 5).map(|v| js::to_json(ctx, v.clone())).transpose()?,
                files: file_map(ctx, arg(a, 6))?,
            })
        })?,
    )?;
    o.set(
        "webhookForm",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::WebhookForm {
                method: req_str(a, 0, "method")?.to_ascii_uppercase(),
                url: req_str(a, 1, "url")?,
                fields: string_map(ctx, arg(a, 2), "fields")?,
            })
        })?,
    )?;
    o.set(
        "elastic",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::Elastic {
                url: opt_str(a, 0)?.unwrap_or_default(),
                index: req_str(a, 1, "index")?,
                doc: match arg(a, 2) {
                    None => return Err("doc is required".into()),
                    Some(v) => text_or_json(ctx, Some(v))?,
                },
                user: nonempty(opt_str(a, 3)?),
                password: nonempty(opt_str(a, 4)?),
                cloud_id: nonempty(opt_str(a, 5)?),
                api_key: nonempty(opt_str(a, 6)?),
                service_token: nonempty(opt_str(a, 7)?),
                cert_fingerprint: nonempty(opt_str(a, 8)?),
            })
        })?,
    )?;
    o.set("s3", s3(ctx, sh, agent)?)?;
    o.set("gcs", gcs(ctx, sh, agent)?)?;
    o.set("azure", azure(ctx, sh, agent)?)?;
    o.set(
        "influxdb",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::InfluxDb {
                url: req_str(a, 0, "url")?,
                token: opt_str(a, 1)?.unwrap_or_default(),
                org: opt_str(a, 2)?.unwrap_or_default(),
                bucket: req_str(a, 3, "bucket")?,
                measurement: req_str(a, 4, "measurement")?,
                data: json_arg(ctx, arg(a, 5))?,
                tags: string_map(ctx, arg(a, 6), "tags")?,
            })
        })?,
    )?;
    let kinesis = Object::new(ctx.clone())?;
    kinesis.set(
        "put",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::KinesisPut {
                stream: req_str(a, 0, "stream")?,
                payload: text_or_json(ctx, arg(a, 1))?,
                region: req_str(a, 2, "region")?,
                key_id: opt_str(a, 3)?,
                secret: opt_str(a, 4)?,
            })
        })?,
    )?;
    o.set("kinesis", kinesis)?;
    Ok(o)
}

/// An optional string argument, with `""` meaning absent (scripts pass
/// `""` for arguments they skip).
fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `{name: path}` of files to attach (`vendor.slackBot`'s `files`).
fn file_map<'js>(
    ctx: &Ctx<'js>,
    v: Option<&Value<'js>>,
) -> std::result::Result<BTreeMap<String, std::path::PathBuf>, String> {
    string_map(ctx, v, "files")?
        .into_iter()
        .map(|(name, path)| Ok((name, confine_source(&path)?)))
        .collect()
}

fn s3<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "put",
        io(ctx, sh, agent, |_ctx, a| {
            let got: Vec<Option<String>> = (0..a.0.len().min(5))
                .map(|i| opt_str(a, i))
                .collect::<std::result::Result<_, _>>()?;
            let view: Vec<Option<&str>> = got.iter().map(|v| v.as_deref()).collect();
            let at = |i: usize| got.get(i).cloned().flatten();
            // (bucket, path, region, keyId?, secret?) or (region, keyId, secret, bucket, path).
            let (bucket, path, region, key_id, secret) = match s3_put_order(&view) {
                S3PutOrder::BucketFirst => (at(0), at(1), at(2), at(3), at(4)),
                S3PutOrder::RegionFirst => (at(3), at(4), at(0), at(1), at(2)),
            };
            Ok(Effect::S3Put {
                bucket: bucket.filter(|b| !b.trim().is_empty()).ok_or("bucket is required")?,
                path: confine_source(&path.ok_or("path is required")?)?,
                region: region.unwrap_or_default(),
                key_id: nonempty(key_id),
                secret: nonempty(secret),
            })
        })?,
    )?;
    o.set(
        "clear",
        io(ctx, sh, agent, |_ctx, a| {
            Ok(Effect::S3Clear {
                region: opt_str(a, 0)?.unwrap_or_default(),
                key_id: nonempty(opt_str(a, 1)?),
                secret: nonempty(opt_str(a, 2)?),
                bucket: nonempty(opt_str(a, 3)?).ok_or("bucket is required")?,
            })
        })?,
    )?;
    Ok(o)
}

/// A GCS service account key: the object `JSON.parse` made, or its text.
fn service_account_key<'js>(
    ctx: &Ctx<'js>,
    v: Option<&Value<'js>>,
) -> std::result::Result<Option<String>, String> {
    Ok(nonempty(match v {
        None => None,
        Some(v) => Some(text_or_json(ctx, Some(v))?),
    }))
}

fn gcs<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "put",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::GcsPut {
                bucket: nonempty(opt_str(a, 0)?).ok_or("bucket is required")?,
                path: confine_source(&req_str(a, 1, "path")?)?,
                service_account_key: service_account_key(ctx, arg(a, 2))?,
            })
        })?,
    )?;
    o.set(
        "clear",
        io(ctx, sh, agent, |ctx, a| {
            Ok(Effect::GcsClear {
                bucket: nonempty(opt_str(a, 0)?).ok_or("bucket is required")?,
                service_account_key: service_account_key(ctx, arg(a, 1))?,
            })
        })?,
    )?;
    Ok(o)
}

fn azure<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "put",
        io(ctx, sh, agent, |_ctx, a| {
            Ok(Effect::AzurePut {
                container: nonempty(opt_str(a, 0)?).ok_or("container is required")?,
                path: confine_source(&req_str(a, 1, "path")?)?,
                account: nonempty(opt_str(a, 2)?),
                key: nonempty(opt_str(a, 3)?),
                connection_string: nonempty(opt_str(a, 4)?),
            })
        })?,
    )?;
    Ok(o)
}

/// `chatgpt.*`: `prompt` is an I/O helper (an effect); `sentiment` answers
/// here (`crate::local`).
fn chatgpt<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "prompt",
        io(ctx, sh, agent, |_ctx, a| {
            let max_tokens = match arg(a, 2).map(|v| v.as_number()) {
                None => 1024,
                Some(Some(n)) if (1.0..=1e6).contains(&n) => n as u32,
                Some(_) => return Err("maxTokens must be a number between 1 and 1000000".into()),
            };
            Ok(Effect::ChatgptPrompt {
                api_key: req_str(a, 0, "apiKey")?,
                prompt: req_str(a, 1, "prompt")?,
                max_tokens,
            })
        })?,
    )?;
    // Local (VADER lexicon), no I/O.
    let sh = sh.clone();
    o.set(
        "sentiment",
        func(ctx, move |ctx: Ctx<'js>, v: rquickjs::function::Opt<Value<'js>>| {
            crate::local::sentiment(&ctx, &sh, v.0)
        })?,
    )?;
    Ok(o)
}

fn valid_metric_name(n: &str, colon: bool) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || (colon && f == ':'))
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || (colon && x == ':'))
}

/// `(name, help, type, value, labels)` of `prometheus.metric` and
/// `prometheus.vector` (which allows types 1 and 2 only and needs labels).
type MetricArgs = (String, String, MetricKind, f64, BTreeMap<String, String>);

fn metric_args<'js>(
    ctx: &Ctx<'js>,
    a: &Args<'js>,
    vector: bool,
) -> std::result::Result<MetricArgs, String> {
    let name = req_str(a, 0, "name")?;
    if !valid_metric_name(&name, true) {
        return Err(format!("metric name {name:?} is not a valid Prometheus name"));
    }
    let code = arg(a, 2).and_then(|v| v.as_number()).unwrap_or(if vector { 0.0 } else { 3.0 });
    let kind = match MetricKind::from_code(code as i64) {
        Some(MetricKind::Untyped) | None if vector => {
            return Err(format!("vector type {code} is not 1 (counter vec) or 2 (gauge vec)"))
        }
        Some(k) => k,
        None => {
            return Err(format!("metric type {code} is not 1 (counter), 2 (gauge) or 3 (untyped)"))
        }
    };
    let value = arg(a, 3).and_then(|v| v.as_number()).ok_or("metric value must be a number")?;
    let labels = string_map(ctx, arg(a, 4), "labels")?;
    if vector && labels.is_empty() {
        return Err("a vector needs labels (an object of label names to values)".into());
    }
    if let Some(bad) = labels.keys().find(|k| !valid_metric_name(k, false) || k.starts_with("__")) {
        return Err(format!("label name {bad:?} is not a valid Prometheus label"));
    }
    Ok((name, opt_str(a, 1)?.unwrap_or_default(), kind, value, labels))
}

fn prometheus<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "metric",
        io(ctx, sh, agent, |ctx, a| {
            let (name, help, kind, value, labels) = metric_args(ctx, a, false)?;
            Ok(Effect::PrometheusMetric { name, help, kind, value, labels })
        })?,
    )?;
    o.set(
        "vector",
        io(ctx, sh, agent, |ctx, a| {
            let (name, help, kind, value, labels) = metric_args(ctx, a, true)?;
            Ok(Effect::PrometheusVector { name, help, kind, value, labels })
        })?,
    )?;
    Ok(o)
}

fn file<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    let path = |a: &Args<'js>| -> std::result::Result<std::path::PathBuf, String> {
        confine(&req_str(a, 0, "path")?)
    };
    o.set(
        "write",
        io(ctx, sh, agent, move |ctx, a| {
            Ok(Effect::FileWrite { path: path(a)?, content: content(ctx, a)? })
        })?,
    )?;
    o.set(
        "append",
        io(ctx, sh, agent, move |ctx, a| {
            Ok(Effect::FileAppend { path: path(a)?, content: content(ctx, a)? })
        })?,
    )?;
    o.set("read", io(ctx, sh, agent, move |_ctx, a| Ok(Effect::FileRead { path: path(a)? }))?)?;
    o.set("delete", io(ctx, sh, agent, move |_ctx, a| Ok(Effect::FileDelete { path: path(a)? }))?)?;
    o.set("mkdir", io(ctx, sh, agent, move |_ctx, a| Ok(Effect::FileMkdir { path: path(a)? }))?)?;
    // A destination ending in `/` is a folder to put the source into (kept
    // as a trailing separator, which `confine` would drop).
    let two =
        |a: &Args<'js>| -> std::result::Result<(std::path::PathBuf, std::path::PathBuf), String> {
            let dest = req_str(a, 1, "destination path")?;
            let mut to = confine(&dest)?;
            if dest.ends_with('/') {
                to = to.join("");
            }
            Ok((confine_source(&req_str(a, 0, "source path")?)?, to))
        };
    o.set(
        "move",
        io(ctx, sh, agent, move |_ctx, a| {
            let (from, to) = two(a)?;
            Ok(Effect::FileMove { from, to })
        })?,
    )?;
    o.set(
        "copy",
        io(ctx, sh, agent, move |_ctx, a| {
            let (from, to) = two(a)?;
            Ok(Effect::FileCopy { from, to })
        })?,
    )?;
    o.set("tar", io(ctx, sh, agent, move |_ctx, a| Ok(Effect::FileTar { dir: path(a)? }))?)?;
    // `dir` "" (as Kubeshark's docs pass it) is the agent's directory.
    let opt_dir =
        |a: &Args<'js>, i: usize| -> std::result::Result<Option<std::path::PathBuf>, String> {
            nonempty(opt_str(a, i)?).map(|d| confine(&d)).transpose()
        };
    o.set(
        "temp",
        io(ctx, sh, agent, move |_ctx, a| {
            Ok(Effect::FileTemp {
                name: opt_str(a, 0)?.unwrap_or_default(),
                dir: opt_dir(a, 1)?,
                ext: nonempty(opt_str(a, 2)?).unwrap_or_else(|| "txt".into()),
            })
        })?,
    )?;
    o.set(
        "mkdirTemp",
        io(ctx, sh, agent, move |_ctx, a| {
            Ok(Effect::FileMkdirTemp {
                name: opt_str(a, 0)?.unwrap_or_default(),
                dir: opt_dir(a, 1)?,
            })
        })?,
    )?;
    Ok(o)
}

fn content<'js>(ctx: &Ctx<'js>, a: &Args<'js>) -> std::result::Result<String, String> {
    match arg(a, 1) {
        Some(v) if v.is_string() => coerce(v),
        Some(v) => Ok(js::display(ctx, v)),
        None => Ok(String::new()),
    }
}

fn pcap<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "path",
        io(ctx, sh, agent, |ctx, a| {
            let v = arg(a, 0).ok_or("stream is required (an item's `stream`)")?;
            Ok(Effect::PcapPath { stream: parse_stream(&js::to_json(ctx, v.clone())?)? })
        })?,
    )?;
    o.set(
        "snapshot",
        io(ctx, sh, agent, |ctx, a| {
            let select = match arg(a, 0) {
                Some(v) if v.is_number() => match v.as_number() {
                    Some(s) if s > 0.0 && s <= f64::from(u32::MAX) => {
                        PcapSelect::Seconds(s.ceil() as u32)
                    }
                    _ => return Err("seconds must be a positive number".into()),
                },
                Some(v) if v.is_array() => {
                    let list = match js::to_json(ctx, v.clone())? {
                        serde_json::Value::Array(l) => l,
                        _ => Vec::new(),
                    };
                    if list.is_empty() {
                        return Err("streams is an empty array: name at least one stream".into());
                    }
                    PcapSelect::Streams(
                        list.iter().map(parse_stream).collect::<std::result::Result<_, _>>()?,
                    )
                }
                _ => PcapSelect::All,
            };
            let dir = match arg(a, 1) {
                Some(v) if v.is_string() => {
                    let d = coerce(v)?;
                    (!d.is_empty()).then(|| confine(&d)).transpose()?
                }
                Some(_) => return Err("dir must be a string (a folder in the pcap folder)".into()),
                None => None,
            };
            Ok(Effect::PcapSnapshot { select, dir })
        })?,
    )?;
    o.set("nameResolutionHistory", io(ctx, sh, agent, |_ctx, _a| Ok(Effect::PcapNameHistory))?)?;
    Ok(o)
}

/// `jobs.*` of one agent: jobs it schedules belong to it (they stop with
/// it); the registry is the runtime's, so tags are shared as in Kubeshark.
fn jobs<'js>(ctx: &Ctx<'js>, sh: &Rc<Shared>, agent: &Arc<str>, uid: u64) -> Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    {
        let (sh, agent) = (sh.clone(), agent.clone());
        o.set(
            "schedule",
            func(ctx, move |ctx: Ctx<'js>, a: Args<'js>| -> Result<Value<'js>> {
                let tag =
                    normalize_tag(&req_str(&a, 0, "tag").map_err(|m| {
                        Exception::throw_type(&ctx, &format!("jobs.schedule: {m}"))
                    })?);
                let cron = req_str(&a, 1, "cron")
                    .map_err(|m| Exception::throw_type(&ctx, &format!("jobs.schedule: {m}")))?;
                let schedule = parse_cron(&cron)
                    .map_err(|m| Exception::throw_type(&ctx, &format!("jobs.schedule: {m}")))?;
                let Some(f) = a.0.get(2).and_then(|v| v.as_function()).cloned() else {
                    return Err(Exception::throw_type(
                        &ctx,
                        "jobs.schedule: the third argument must be a function",
                    ));
                };
                let limit = match arg(&a, 3).map(|v| v.as_number()) {
                    None => 0,
                    Some(Some(n)) if n >= 0.0 => n.min(f64::from(u32::MAX)) as u32,
                    Some(_) => {
                        return Err(Exception::throw_type(
                            &ctx,
                            "jobs.schedule: limit must be a number ≥ 0",
                        ))
                    }
                };
                let args: Vec<_> =
                    a.0.iter().skip(4).map(|v| Persistent::save(&ctx, v.clone())).collect();
                let generation = sh.job_generation.get() + 1;
                sh.job_generation.set(generation);
                let job = Job {
                    tag: tag.clone(),
                    next_due: sh.now().and_then(|now| next_after(&schedule, now)),
                    cron: cron.trim().to_owned(),
                    schedule,
                    func: Persistent::save(&ctx, f),
                    args,
                    limit,
                    runs: 0,
                    owner: uid,
                    owner_name: agent.clone(),
                    generation,
                };
                let mut jobs = sh.jobs.borrow_mut();
                let at = jobs.iter().position(|j| j.tag == tag);
                let full = jobs.iter().filter(|j| j.owner == uid).count() >= sh.max_jobs;
                match at.and_then(|i| jobs.get_mut(i)) {
                    Some(slot) => *slot = job,
                    None if full => {
                        drop(jobs);
                        return Err(sh.limit_hit(
                            &ctx,
                            |c| c.jobs_refused += 1,
                            &format!(
                                "jobs.schedule({tag:?}): this agent has {} jobs scheduled, the \
                                 most it may have (scripting.maxJobsPerAgent); remove one first",
                                sh.max_jobs
                            ),
                        ));
                    }
                    None => jobs.push(job),
                }
                drop(jobs);
                js::string(&ctx, &tag)
            })?,
        )?;
    }
    {
        let sh = sh.clone();
        o.set("remove", func(ctx, move |tag: Coerced<String>| remove_job(&sh, &tag.0))?)?;
    }
    {
        let sh = sh.clone();
        o.set(
            "removeAll",
            func(ctx, move || {
                let mut jobs = sh.jobs.borrow_mut();
                let n = jobs.len();
                jobs.clear();
                n as u32
            })?,
        )?;
    }
    {
        // The tags, as Kubeshark's `jobs.list(): string[]`.
        let sh = sh.clone();
        o.set(
            "list",
            func(ctx, move |ctx: Ctx<'js>| -> Result<Value<'js>> {
                let arr = Array::new(ctx.clone())?;
                for (i, j) in sh.jobs.borrow().iter().enumerate() {
                    arr.set(i, j.tag.as_str())?;
                }
                Ok(arr.into_value())
            })?,
        )?;
    }
    {
        let scheduler = Object::new(ctx.clone())?;
        let sh1 = sh.clone();
        scheduler.set("isRunning", func(ctx, move || sh1.scheduler_running.get())?)?;
        let sh2 = sh.clone();
        scheduler.set(
            "start",
            func(ctx, move || {
                // Due times missed while stopped are not caught up.
                if !sh2.scheduler_running.replace(true) {
                    if let Some(now) = sh2.now() {
                        for j in sh2.jobs.borrow_mut().iter_mut() {
                            j.next_due = next_after(&j.schedule, now);
                        }
                    }
                }
            })?,
        )?;
        let sh3 = sh.clone();
        scheduler.set("stop", func(ctx, move || sh3.scheduler_running.set(false))?)?;
        o.set("scheduler", scheduler)?;
    }
    {
        let sh = sh.clone();
        o.set(
            "run",
            func(ctx, move |tag: Coerced<String>| {
                let tag = normalize_tag(&tag.0);
                let exists = sh.jobs.borrow().iter().any(|j| j.tag == tag);
                if exists {
                    sh.run_now.borrow_mut().push(tag);
                }
                exists
            })?,
        )?;
    }
    {
        let sh = sh.clone();
        o.set(
            "runAll",
            func(ctx, move || {
                let tags: Vec<String> = sh.jobs.borrow().iter().map(|j| j.tag.clone()).collect();
                let n = tags.len() as u32;
                sh.run_now.borrow_mut().extend(tags);
                n
            })?,
        )?;
    }
    Ok(o)
}

/// `jobs.remove(tag)`: `false` if there was no such job.
pub(crate) fn remove_job(sh: &Shared, tag: &str) -> bool {
    let tag = normalize_tag(tag);
    let mut jobs = sh.jobs.borrow_mut();
    let before = jobs.len();
    jobs.retain(|j| j.tag != tag);
    before != jobs.len()
}

pub(crate) fn job_infos(sh: &Shared) -> Vec<JobInfo> {
    sh.jobs
        .borrow()
        .iter()
        .map(|j| JobInfo {
            tag: j.tag.clone(),
            cron: j.cron.clone(),
            agent: j.owner_name.to_string(),
            limit: j.limit,
            runs: j.runs,
            next_run: j.next_due,
        })
        .collect()
}

/// The helper objects of one agent, in the order of [`HELPERS`].
pub(crate) fn agent_helpers<'js>(
    ctx: &Ctx<'js>,
    sh: &Rc<Shared>,
    agent: &Arc<str>,
    uid: u64,
) -> Result<Vec<Value<'js>>> {
    let g = ctx.globals();
    let values = vec![
        console(ctx, sh, agent)?.into_value(),
        g.get::<_, Value>("env")?,
        jobs(ctx, sh, agent, uid)?.into_value(),
        hub(ctx, sh, agent)?.into_value(),
        g.get::<_, Value>("utils")?,
        vendor(ctx, sh, agent)?.into_value(),
        prometheus(ctx, sh, agent)?.into_value(),
        file(ctx, sh, agent)?.into_value(),
        pcap(ctx, sh, agent)?.into_value(),
        g.get::<_, Value>("test")?,
        g.get::<_, Value>("kfl")?,
        crate::local::aggregation(ctx, sh, agent)?.into_value(),
        chatgpt(ctx, sh, agent)?.into_value(),
    ];
    let mut values = values;
    values.extend(crate::local::timers(ctx, sh, agent, uid)?.into_iter().map(Function::into_value));
    debug_assert_eq!(values.len(), HELPERS.len());
    Ok(values)
}

/// The global helpers (agent `global`, no `jobs`).
pub(crate) fn install_globals(ctx: &Ctx<'_>, sh: &Rc<Shared>) -> Result<()> {
    let g = ctx.globals();
    let agent: Arc<str> = Arc::from("global");
    g.set("console", console(ctx, sh, &agent)?)?;
    g.set("env", env_object(ctx, sh)?)?;
    g.set("utils", utils(ctx, sh)?)?;
    g.set("test", test(ctx)?)?;
    g.set("hub", hub(ctx, sh, &agent)?)?;
    g.set("vendor", vendor(ctx, sh, &agent)?)?;
    g.set("prometheus", prometheus(ctx, sh, &agent)?)?;
    g.set("file", file(ctx, sh, &agent)?)?;
    g.set("pcap", pcap(ctx, sh, &agent)?)?;
    g.set("kfl", crate::kfl::object(ctx, sh)?)?;
    g.set("wrapper", crate::local::wrapper(ctx)?)?;
    g.set("aggregation", crate::local::aggregation(ctx, sh, &agent)?)?;
    g.set("chatgpt", chatgpt(ctx, sh, &agent)?)?;
    // Last: a helper or builtin keeps its name over an env key.
    crate::local::define_env_globals(ctx, sh)
}
