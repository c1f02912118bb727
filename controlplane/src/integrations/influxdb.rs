//! `vendor.influxdb(url, token, org, bucket, measurement, data, tags?)`:
//! one point in InfluxDB line protocol, timestamped (ns) when the control
//! plane takes the request.
//!
//! Fields come from `data`: each key of an object is a field (nested objects
//! are flattened with `.`: `{a: {b: 1}}` → `a.b=1`), arrays are written as
//! their JSON text, `null` is left out; a bare number, string or boolean is
//! one field named `value`. Numbers are floats (see
//! `integrations.influxdb.integers`), NaN and infinities are left out;
//! strings are quoted; booleans are `true`/`false`. Tags with an empty value
//! are left out (InfluxDB does not store them); tags are written sorted by
//! key, as InfluxDB recommends.
//!
//! Escaping, per InfluxDB's line-protocol reference: in the measurement,
//! comma and space get a backslash; in tag keys, tag values and field keys,
//! comma, equals sign and space; in string field values, double quote and
//! backslash. What line protocol cannot carry is refused (not retried): a
//! newline in a measurement, tag or field key, or tag value; a backslash at
//! the end of one of those or right before a character that needs escaping
//! (the parser would read it as an escape); a measurement starting with `#`.
//!
//! The API (`integrations.influxdb.api`): v2 `POST /api/v2/write?org=&bucket=
//! &precision=ns` with `Authorization: Token <token>`; v1 `POST /write?db=`
//! (`bucket` is `db` or `db/rp`; a token `user:password` is sent as basic
//! auth). A URL ending in `/api/v2/write` or `/write` picks its own API.
//! 4xx answers (a bad token, a type conflict) reject at once with
//! InfluxDB's message; 429 and 5xx are retried.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;
use serde_json::{json, Value};

use super::config::{InfluxApi, InfluxDbConfig};
use super::http::{parse_url, HttpClient, HttpRequest, SendOptions};
use super::IntegrationError;

// ---- line protocol -----------------------------------------------------------

fn invalid(what: &str, s: &str, why: &str) -> IntegrationError {
    IntegrationError::Invalid(format!("influxdb: {what} {s:?} {why}"))
}

/// Escapes `special` characters with a backslash; refuses what line
/// protocol cannot represent.
fn escape(what: &str, s: &str, special: &[char]) -> Result<String, IntegrationError> {
    if s.contains(['\n', '\r']) {
        return Err(invalid(what, s, "contains a newline, which line protocol cannot carry"));
    }
    let mut out = String::with_capacity(s.len() + 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                None => {
                    return Err(invalid(
                        what,
                        s,
                        "ends with a backslash, which line protocol cannot carry",
                    ))
                }
                Some(n) if special.contains(n) => return Err(invalid(
                    what,
                    s,
                    "has a backslash before a special character, which line protocol cannot carry",
                )),
                _ => {}
            }
        }
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

pub fn escape_measurement(s: &str) -> Result<String, IntegrationError> {
    if s.is_empty() {
        return Err(IntegrationError::Invalid("influxdb: measurement is empty".into()));
    }
    if s.starts_with('#') {
        return Err(invalid("measurement", s, "starts with '#', which makes the line a comment"));
    }
    escape("measurement", s, &[',', ' '])
}

/// Tag keys, tag values and field keys.
pub fn escape_key(what: &str, s: &str) -> Result<String, IntegrationError> {
    if s.is_empty() {
        return Err(IntegrationError::Invalid(format!("influxdb: a {what} is empty")));
    }
    escape(what, s, &[',', '=', ' '])
}

pub fn escape_string_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn field_value(v: &Value, integers: bool) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            if integers {
                if let Some(i) = n.as_i64() {
                    return Some(format!("{i}i"));
                }
                if let Some(f) = n.as_f64() {
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        return Some(format!("{}i", f as i64));
                    }
                }
            }
            let f = n.as_f64()?;
            // `{}` prints the shortest text that reads back as the same f64,
            // never an exponent: valid line protocol for every finite value.
            f.is_finite().then(|| format!("{f}"))
        }
        Value::String(s) => Some(escape_string_field(s)),
        Value::Array(_) => Some(escape_string_field(&v.to_string())),
        Value::Object(_) => None,
    }
}

fn collect_fields(prefix: &str, v: &Value, integers: bool, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                collect_fields(&key, v, integers, out);
            }
        }
        other => {
            if let Some(val) = field_value(other, integers) {
                out.push((
                    if prefix.is_empty() { "value".to_string() } else { prefix.to_string() },
                    val,
                ));
            }
        }
    }
}

/// One point: `measurement[,tags] fields timestamp`.
pub fn line(
    measurement: &str,
    data: &Value,
    tags: &BTreeMap<String, String>,
    ts_ns: u128,
    integers: bool,
) -> Result<String, IntegrationError> {
    let mut out = escape_measurement(measurement)?;
    for (k, v) in tags {
        if v.is_empty() {
            continue;
        }
        write!(out, ",{}={}", escape_key("tag key", k)?, escape_key("tag value", v)?).ok();
    }
    let mut fields = Vec::new();
    collect_fields("", data, integers, &mut fields);
    if fields.is_empty() {
        return Err(IntegrationError::Invalid(
            "influxdb: data has no field to write (needs a number, string or boolean)".into(),
        ));
    }
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        out.push_str(&escape_key("field key", k)?);
        out.push('=');
        out.push_str(v);
    }
    write!(out, " {ts_ns}").ok();
    Ok(out)
}

// ---- request building -------------------------------------------------------

pub struct Point<'a> {
    pub url: &'a str,
    pub token: &'a str,
    pub org: &'a str,
    pub bucket: &'a str,
    pub measurement: &'a str,
    pub data: &'a Value,
    pub tags: &'a BTreeMap<String, String>,
}

pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

pub fn build_request(
    p: &Point<'_>,
    cfg: &InfluxDbConfig,
    ts_ns: u128,
) -> Result<HttpRequest, IntegrationError> {
    let body = line(p.measurement, p.data, p.tags, ts_ns, cfg.integers)?;
    let mut url = parse_url(p.url)?;
    let path = url.path().trim_end_matches('/').to_string();
    let api = if path.ends_with("/api/v2/write") {
        InfluxApi::V2
    } else if path.ends_with("/write") {
        InfluxApi::V1
    } else {
        url.set_path(&format!(
            "{path}{}",
            if cfg.api == InfluxApi::V2 { "/api/v2/write" } else { "/write" }
        ));
        cfg.api
    };
    if p.bucket.is_empty() {
        return Err(IntegrationError::Invalid("influxdb: bucket is empty".into()));
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    {
        let mut q = url.query_pairs_mut();
        match api {
            InfluxApi::V2 => {
                q.append_pair("org", p.org)
                    .append_pair("bucket", p.bucket)
                    .append_pair("precision", "ns");
            }
            InfluxApi::V1 => {
                let (db, rp) = p.bucket.split_once('/').unwrap_or((p.bucket, ""));
                q.append_pair("db", db);
                if !rp.is_empty() {
                    q.append_pair("rp", rp);
                }
            }
        }
    }
    let token = p.token.trim();
    if !token.is_empty() {
        let auth = match api {
            InfluxApi::V2 => format!("Token {token}"),
            InfluxApi::V1 if token.contains(':') => format!("Basic {}", base64(token.as_bytes())),
            InfluxApi::V1 => format!("Token {token}"),
        };
        let v = HeaderValue::from_str(&auth).map_err(|_| {
            IntegrationError::Invalid(
                "influxdb: the token has characters a header cannot carry".into(),
            )
        })?;
        headers.insert(AUTHORIZATION, v);
    }
    Ok(HttpRequest { method: Method::POST, url, headers, body: Bytes::from(body) })
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- sending -----------------------------------------------------------------

pub async fn attempt(
    client: &HttpClient,
    req: &HttpRequest,
    timeout: Duration,
) -> Result<Value, IntegrationError> {
    let resp = client
        .send(req, SendOptions { timeout, max_redirects: 0, max_body_bytes: 64 * 1024 })
        .await?;
    if let Err(IntegrationError::Status { status, retry_after, body }) = resp.error_for_status() {
        // InfluxDB explains a refusal in JSON: v2 `{"message"}`, v1 `{"error"}`.
        let msg = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().or(v["error"].as_str()).map(str::to_string))
            .unwrap_or(body);
        return Err(IntegrationError::Status { status, retry_after, body: msg });
    }
    Ok(json!({"ok": true, "status": resp.status}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn escaping_follows_the_reference() {
        let l = line(
            "my measurement,x",
            &json!({"field key": "say \"hi\" \\ there", "n,=": 1.5, "ok": true, "skip": null}),
            &tags(&[("tag key", "a,b=c d"), ("empty", "")]),
            1_700_000_000_000_000_000,
            false,
        )
        .unwrap();
        assert_eq!(
            l,
            r#"my\ measurement\,x,tag\ key=a\,b\=c\ d field\ key="say \"hi\" \\ there",n\,\==1.5,ok=true 1700000000000000000"#
        );
    }

    #[test]
    fn numbers_floats_by_default_integers_when_asked() {
        let d =
            json!({"status": 200, "ms": 12.25, "big": 1e21, "nested": {"a": 1}, "list": [1, 2]});
        let l = line("m", &d, &BTreeMap::new(), 1, false).unwrap();
        assert_eq!(
            l,
            r#"m big=1000000000000000000000,list="[1,2]",ms=12.25,nested.a=1,status=200 1"#
        );
        let l = line("m", &json!({"status": 200, "ms": 12.25}), &BTreeMap::new(), 1, true).unwrap();
        assert_eq!(l, "m ms=12.25,status=200i 1");
        assert_eq!(line("m", &json!(3), &BTreeMap::new(), 1, false).unwrap(), "m value=3 1");
    }

    #[test]
    fn unrepresentable_input_is_refused() {
        let none = BTreeMap::new();
        for bad in ["", "#comment", "a\nb", "ends\\"] {
            assert!(
                !line(bad, &json!({"a": 1}), &none, 1, false).unwrap_err().retryable(),
                "{bad:?}"
            );
        }
        assert!(line("m", &json!({"a": 1}), &tags(&[("k", "a\\,b")]), 1, false).is_err());
        assert!(line("m", &json!({}), &none, 1, false).is_err());
        assert!(line("m", &json!({"a": null}), &none, 1, false).is_err());
        // A backslash before an ordinary character is fine.
        assert!(line("m", &json!({"a": 1}), &tags(&[("path", "C:\\dir")]), 1, false).is_ok());
    }

    #[test]
    fn v1_and_v2_urls() {
        let cfg = InfluxDbConfig::default();
        let data = json!({"a": 1});
        let t = BTreeMap::new();
        let p = Point {
            url: "http://h:8086",
            token: "tok",
            org: "my org",
            bucket: "b",
            measurement: "m",
            data: &data,
            tags: &t,
        };
        let r = build_request(&p, &cfg, 5).unwrap();
        assert_eq!(r.url.as_str(), "http://h:8086/api/v2/write?org=my+org&bucket=b&precision=ns");
        assert_eq!(r.headers[AUTHORIZATION], "Token tok");
        let p = Point { url: "http://h:8086/write", token: "u:p", bucket: "db/rp", ..p };
        let r = build_request(&p, &cfg, 5).unwrap();
        assert_eq!(r.url.as_str(), "http://h:8086/write?db=db&rp=rp");
        assert_eq!(r.headers[AUTHORIZATION], "Basic dTpw");
        let v1 = InfluxDbConfig { api: InfluxApi::V1, ..cfg };
        let p = Point { url: "http://h:8086/prefix/", token: "", bucket: "db", ..p };
        let r = build_request(&p, &v1, 5).unwrap();
        assert_eq!(r.url.as_str(), "http://h:8086/prefix/write?db=db");
        assert!(!r.headers.contains_key(AUTHORIZATION));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
