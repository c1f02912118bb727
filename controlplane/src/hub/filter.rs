//! The item filter of queries and live streams: a few terms, all of which
//! must hold (there is no `or`).
//!
//! ```text
//! filter := term (" " term)*
//! term   := field op value | value
//! field  := protocol | method | status | host | path | url | src | dst
//!         | node | elapsed | error
//! op     := "==" | "=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<="
//! value  := a word without spaces, or "a double-quoted string"
//! ```
//!
//! `==`/`!=` compare whole values, `~`/`!~` test for a substring; both
//! ignore case. `>`…`<=` compare numbers (`status`, `elapsed` in ms). A
//! value alone matches if the URL, host, method or protocol contains it.
//! `protocol` matches the protocol's name or its abbreviation (`http`,
//! `HTTP/2`); `src`/`dst` match `ip:port` or the pod/service name; `error`
//! is the error's type, or empty.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Protocol,
    Method,
    Status,
    Host,
    Path,
    Url,
    Src,
    Dst,
    Node,
    Elapsed,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
    NotContains,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Compare { field: Field, op: Op, value: String, number: Option<f64> },
    Any(String),
}

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter: {0}")]
pub struct FilterError(pub String);

/// Longest filter accepted, in bytes.
const MAX_FILTER_BYTES: usize = 1024;

fn field(name: &str) -> Option<Field> {
    Some(match name.to_ascii_lowercase().as_str() {
        "protocol" | "proto" => Field::Protocol,
        "method" => Field::Method,
        "status" => Field::Status,
        "host" => Field::Host,
        "path" => Field::Path,
        "url" => Field::Url,
        "src" => Field::Src,
        "dst" => Field::Dst,
        "node" | "worker" => Field::Node,
        "elapsed" => Field::Elapsed,
        "error" => Field::Error,
        _ => return None,
    })
}

/// Splits on spaces outside double quotes; quotes are removed, `\"` and
/// `\\` unescaped inside them.
fn words(s: &str) -> Result<Vec<String>, FilterError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(FilterError("unclosed quote".into())),
                        Some('"') => break,
                        Some('\\') => cur.push(
                            chars.next().ok_or_else(|| FilterError("unclosed quote".into()))?,
                        ),
                        Some(c) => cur.push(c),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

const OPS: [(&str, Op); 9] = [
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("!~", Op::NotContains),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("=", Op::Eq),
    ("~", Op::Contains),
    (">", Op::Gt),
    ("<", Op::Lt),
];

impl Filter {
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        if s.len() > MAX_FILTER_BYTES {
            return Err(FilterError(format!("longer than {MAX_FILTER_BYTES} bytes")));
        }
        let mut terms = Vec::new();
        for w in words(s)? {
            // The first operator character splits field from value.
            let split = w
                .find(['=', '!', '~', '<', '>'])
                .filter(|&i| i > 0 && w[..i].chars().all(|c| c.is_ascii_alphabetic()));
            let Some(i) = split else {
                terms.push(Term::Any(w.to_lowercase()));
                continue;
            };
            let name = &w[..i];
            let f = field(name).ok_or_else(|| {
                FilterError(format!("unknown field `{name}` (protocol, method, status, host, path, url, src, dst, node, elapsed, error)"))
            })?;
            let rest = &w[i..];
            let (sym, op) = OPS
                .iter()
                .find(|(sym, _)| rest.starts_with(sym))
                .copied()
                .ok_or_else(|| FilterError(format!("bad operator in `{w}`")))?;
            let value = rest[sym.len()..].to_string();
            let number = value.parse::<f64>().ok();
            if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && number.is_none() {
                return Err(FilterError(format!("`{w}`: {sym} needs a number")));
            }
            terms.push(Term::Compare { field: f, op, value: value.to_lowercase(), number });
        }
        Ok(Filter { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, item: &Value) -> bool {
        self.terms.iter().all(|t| term_matches(t, item))
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn host(item: &Value) -> String {
    let headers = &item["request"]["headers"];
    if let Some(m) = headers.as_object() {
        if let Some((_, v)) =
            m.iter().find(|(k, _)| k.eq_ignore_ascii_case("host") || *k == ":authority")
        {
            return s(v).to_string();
        }
    }
    let dst = &item["dst"];
    if !s(&dst["name"]).is_empty() {
        s(&dst["name"]).to_string()
    } else {
        s(&dst["ip"]).to_string()
    }
}

fn endpoint(e: &Value) -> Vec<String> {
    vec![format!("{}:{}", s(&e["ip"]), s(&e["port"])), s(&e["name"]).to_string()]
}

/// The candidate strings of `field` in `item` (a term holds if any does).
fn values(field: Field, item: &Value) -> Vec<String> {
    let req = &item["request"];
    match field {
        Field::Protocol => {
            vec![s(&item["protocol"]["name"]).into(), s(&item["protocol"]["abbr"]).into()]
        }
        Field::Method => vec![s(&req["method"]).into()],
        Field::Status => {
            vec![item["response"]["status"].as_i64().map(|v| v.to_string()).unwrap_or_default()]
        }
        Field::Host => vec![host(item)],
        Field::Path => vec![s(&req["path"]).into()],
        Field::Url => vec![s(&req["url"]).into()],
        Field::Src => endpoint(&item["src"]),
        Field::Dst => endpoint(&item["dst"]),
        Field::Node => vec![s(&item["node"]["name"]).into()],
        Field::Elapsed => {
            vec![item["elapsedTime"].as_f64().map(|v| v.to_string()).unwrap_or_default()]
        }
        Field::Error => vec![s(&item["error"]["type"]).into()],
    }
}

fn term_matches(t: &Term, item: &Value) -> bool {
    match t {
        Term::Any(w) => [Field::Url, Field::Host, Field::Method, Field::Protocol]
            .iter()
            .flat_map(|f| values(*f, item))
            .any(|v| v.to_lowercase().contains(w.as_str())),
        Term::Compare { field, op, value, number } => {
            let vals = values(*field, item);
            let lower: Vec<String> = vals.iter().map(|v| v.to_lowercase()).collect();
            match op {
                Op::Eq => lower.iter().any(|v| v == value),
                Op::Ne => !lower.iter().any(|v| v == value),
                Op::Contains => lower.iter().any(|v| v.contains(value.as_str())),
                Op::NotContains => !lower.iter().any(|v| v.contains(value.as_str())),
                Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                    let Some(n) = number else { return false };
                    vals.iter().filter_map(|v| v.parse::<f64>().ok()).any(|x| match op {
                        Op::Gt => x > *n,
                        Op::Ge => x >= *n,
                        Op::Lt => x < *n,
                        _ => x <= *n,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Value {
        json!({
            "protocol": {"name": "http", "abbr": "HTTP"},
            "src": {"ip": "10.0.0.1", "port": "40000", "name": "", "namespace": ""},
            "dst": {"ip": "10.0.0.2", "port": "80", "name": "api", "namespace": "prod"},
            "node": {"name": "node-a", "ip": ""},
            "elapsedTime": 12.5,
            "request": {"method": "GET", "url": "/users/7?x=1", "path": "/users/7", "headers": {"Host": "api.example.com"}},
            "response": {"status": 503},
            "error": null
        })
    }

    fn m(f: &str) -> bool {
        Filter::parse(f).unwrap().matches(&item())
    }

    #[test]
    fn terms() {
        assert!(m(""));
        assert!(m("protocol==HTTP method=get status>=500 status<600"));
        assert!(!m("status<500"));
        assert!(m("host~example path==/users/7 url~x=1"));
        assert!(m("dst==10.0.0.2:80 dst=api src!=api node=node-a"));
        assert!(m("elapsed>10 elapsed<=12.5 error=="));
        assert!(m("USERS"));
        assert!(!m("orders"));
        assert!(m("host!~internal"));
        assert!(m("path~\"/users/\""));
    }

    #[test]
    fn errors_are_named() {
        assert!(Filter::parse("colour=red").unwrap_err().0.contains("unknown field `colour`"));
        assert!(Filter::parse("status>abc").unwrap_err().0.contains("needs a number"));
        assert!(Filter::parse("path=\"open").unwrap_err().0.contains("unclosed quote"));
        assert!(Filter::parse(&"x".repeat(2000)).is_err());
    }
}
