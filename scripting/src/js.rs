//! Small bridges between Rust values and QuickJS values used across the
//! crate: atom ids, numbers, JSON values both ways, how `console.*` prints a
//! value, and what an exception says (message, agent file, line, column).

use std::hash::{Hash, Hasher};

use rquickjs::{Array, Atom, Coerced, Ctx, Object, Value};

/// The raw id of an atom. Atoms are interned: while an atom is alive (here,
/// pinned as a property name of an object the runtime keeps), its id names
/// that string and no other, so property names can be matched by comparing
/// `u32`s instead of strings. rquickjs exposes the id only through `Hash`.
#[inline]
pub(crate) fn atom_id(a: &Atom<'_>) -> u32 {
    struct Take(u32);
    impl Hasher for Take {
        fn finish(&self) -> u64 {
            u64::from(self.0)
        }
        fn write(&mut self, _: &[u8]) {}
        fn write_u32(&mut self, v: u32) {
            self.0 = v;
        }
    }
    let mut h = Take(u32::MAX);
    a.hash(&mut h);
    h.0
}

/// A number as QuickJS stores it best: small integers as ints.
#[inline]
pub(crate) fn num<'js>(ctx: &Ctx<'js>, v: u64) -> Value<'js> {
    match i32::try_from(v) {
        Ok(i) => Value::new_int(ctx.clone(), i),
        Err(_) => Value::new_float(ctx.clone(), v as f64),
    }
}

#[inline]
pub(crate) fn string<'js>(ctx: &Ctx<'js>, s: &str) -> rquickjs::Result<Value<'js>> {
    rquickjs::String::from_str(ctx.clone(), s).map(|s| s.into_value())
}

/// A JSON value as a plain JS value (no JSON text in between).
pub(crate) fn from_json<'js>(
    ctx: &Ctx<'js>,
    v: &serde_json::Value,
) -> rquickjs::Result<Value<'js>> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Value::new_null(ctx.clone()),
        J::Bool(b) => Value::new_bool(ctx.clone(), *b),
        J::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Value::new_int(ctx.clone(), i),
            None => Value::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => string(ctx, s)?,
        J::Array(a) => {
            let arr = Array::new(ctx.clone())?;
            for (i, x) in a.iter().enumerate() {
                arr.set(i, from_json(ctx, x)?)?;
            }
            arr.into_value()
        }
        J::Object(m) => {
            let o = Object::new(ctx.clone())?;
            for (k, x) in m {
                o.set(k.as_str(), from_json(ctx, x)?)?;
            }
            o.into_value()
        }
    })
}

/// A JS value as JSON, the way `JSON.stringify` sees it (so lazy items,
/// `toJSON` and dropped functions behave as scripts expect). `undefined`
/// becomes `null`; cycles and BigInts are errors.
pub(crate) fn to_json<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> Result<serde_json::Value, String> {
    if v.is_undefined() {
        return Ok(serde_json::Value::Null);
    }
    match ctx.json_stringify(v) {
        Ok(Some(s)) => {
            let text = s.to_string().map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| e.to_string())
        }
        Ok(None) => Ok(serde_json::Value::Null),
        Err(rquickjs::Error::Exception) => Err(exception_message(ctx, &ctx.catch())),
        Err(e) => Err(e.to_string()),
    }
}

/// How `console.log` prints one argument: strings as they are, objects as
/// JSON (Kubeshark printed `[object Object]`), everything else as `String(v)`.
pub(crate) fn display<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> String {
    if let Some(s) = v.as_string() {
        return s.to_string().unwrap_or_default();
    }
    if v.is_object() && !v.is_function() && !v.is_error() {
        match ctx.json_stringify(v.clone()) {
            Ok(Some(s)) => return s.to_string().unwrap_or_default(),
            Ok(None) => {}
            Err(_) => {
                // A cycle or a BigInt inside: fall back to String(v).
                let _ = ctx.catch();
            }
        }
    }
    if v.is_error() {
        if let Some(o) = v.as_object() {
            let name: Option<Coerced<String>> = o.get("name").ok();
            let msg: Option<Coerced<String>> = o.get("message").ok();
            return format!(
                "{}: {}",
                name.map(|n| n.0).unwrap_or_default(),
                msg.map(|m| m.0).unwrap_or_default()
            );
        }
    }
    match v.get::<Coerced<String>>() {
        Ok(s) => s.0,
        Err(_) => {
            let _ = ctx.catch();
            format!("[{}]", v.type_name())
        }
    }
}

/// The message of a thrown value: `error.message` for an Error, the value
/// as `console.log` prints it otherwise.
pub(crate) fn exception_message<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> String {
    if let Some(o) = v.as_object().filter(|_| v.is_error()) {
        let name: String =
            o.get::<_, Coerced<String>>("name").map(|c| c.0).unwrap_or_else(|_| "Error".into());
        let msg: String = o.get::<_, Coerced<String>>("message").map(|c| c.0).unwrap_or_default();
        return if name == "Error" || name.is_empty() { msg } else { format!("{name}: {msg}") };
    }
    display(ctx, v)
}

/// The stack of a thrown Error, if any.
pub(crate) fn exception_stack<'js>(v: &Value<'js>) -> Option<String> {
    let o = v.as_object().filter(|_| v.is_error())?;
    o.get::<_, Option<Coerced<String>>>("stack").ok().flatten().map(|c| c.0)
}

/// The first `file:line:col` of a QuickJS stack (`    at f (a.js:3:7)` or
/// `    at a.js:3:7`), with its file.
pub(crate) fn first_frame(stack: &str) -> Option<(&str, u32, u32)> {
    stack.lines().find_map(parse_frame)
}

/// The first frame in `file`.
pub(crate) fn frame_in(stack: &str, file: &str) -> Option<(u32, u32)> {
    stack.lines().filter_map(parse_frame).find(|(f, _, _)| *f == file).map(|(_, l, c)| (l, c))
}

fn parse_frame(line: &str) -> Option<(&str, u32, u32)> {
    let line = line.trim();
    let rest = line.strip_prefix("at ")?;
    let loc = match (rest.rfind('('), rest.ends_with(')')) {
        (Some(i), true) => rest.get(i + 1..rest.len() - 1)?,
        _ => rest,
    };
    let mut parts = loc.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line_no = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    Some((file, line_no, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stack_frames() {
        let s = "    at onItemCaptured (count.js:5:9)\n    at <anonymous> (x.js:1:2)\n";
        assert_eq!(first_frame(s), Some(("count.js", 5, 9)));
        assert_eq!(frame_in(s, "x.js"), Some((1, 2)));
        assert_eq!(first_frame("    at a.js:2:9\n"), Some(("a.js", 2, 9)));
        assert_eq!(first_frame("    at f (native)\n"), None);
    }
}
