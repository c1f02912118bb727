//! `vendor.webhook(method, url, body, headers?)` → `{status, headers, body}`.
//!
//! Any method and any http(s) URL. A body without a `Content-Type` header
//! is sent as `application/json` when it parses as JSON, as
//! `text/plain; charset=utf-8` otherwise. The Promise resolves with the
//! response for every status below 500 except 408 and 429 (a 404 is an
//! answer the agent may want to look at); 408, 429 and 5xx are retried (see
//! `integrations.retry`) and reject the Promise when the retries run out.
//! Redirects follow `integrations.webhook.max_redirects`.
//!
//! `vendor.webhookForm(method, url, fields)` → the response body: `fields`
//! (`{name: value}`) form-encoded (`application/x-www-form-urlencoded`) as
//! the body, or as the query for GET, HEAD and DELETE. Its result is only
//! the body, so any status of 400 or more rejects (`HTTP 404: <body>`)
//! after the retries 408, 429 and 5xx get.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Method;
use serde_json::{json, Map, Value};

use super::config::WebhookConfig;
use super::http::{headers_from, parse_url, HttpClient, HttpRequest, HttpResponse, SendOptions};
use super::{retryable_status, IntegrationError};

// ---- request building -------------------------------------------------------

pub fn build_request(
    method: &str,
    url: &str,
    body: &str,
    headers: &BTreeMap<String, String>,
) -> Result<HttpRequest, IntegrationError> {
    let m = method.trim();
    let method = if m.is_empty() {
        Method::GET
    } else {
        Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| IntegrationError::Invalid(format!("HTTP method {method:?}")))?
    };
    let url = parse_url(url)?;
    let mut h = headers_from(headers)?;
    if !body.is_empty() && !h.contains_key(CONTENT_TYPE) {
        let ct = if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(HttpRequest { method, url, headers: h, body: Bytes::copy_from_slice(body.as_bytes()) })
}

pub fn build_form_request(
    method: &str,
    url: &str,
    fields: &BTreeMap<String, String>,
) -> Result<HttpRequest, IntegrationError> {
    let mut req = build_request(method, url, "", &BTreeMap::new())?;
    let mut enc = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        enc.append_pair(k, v);
    }
    let encoded = enc.finish();
    if matches!(req.method, Method::GET | Method::HEAD | Method::DELETE) {
        if !encoded.is_empty() {
            let q = match req.url.query() {
                Some(q) if !q.is_empty() => format!("{q}&{encoded}"),
                _ => encoded,
            };
            req.url.set_query(Some(&q));
        }
    } else {
        req.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        req.body = Bytes::from(encoded);
    }
    Ok(req)
}

/// One `webhookForm` attempt: the body of a 2xx or 3xx answer.
pub async fn form_attempt(
    client: &HttpClient,
    req: &HttpRequest,
    opts: SendOptions,
) -> Result<Value, IntegrationError> {
    let resp = client.send(req, opts).await?;
    if resp.status >= 400 {
        resp.error_for_status()?;
    }
    Ok(Value::String(resp.body_text()))
}

/// What the agent's Promise resolves with.
pub fn response_value(r: &HttpResponse) -> Value {
    let mut headers = Map::new();
    for name in r.headers.keys() {
        let joined = r
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_string(), Value::String(joined));
    }
    json!({"status": r.status, "headers": headers, "body": r.body_text()})
}

// ---- sending ---------------------------------------------------------------

pub fn send_options(cfg: &WebhookConfig) -> SendOptions {
    SendOptions {
        timeout: Duration::from_millis(cfg.timeout_ms),
        max_redirects: cfg.max_redirects,
        max_body_bytes: cfg.max_response_bytes,
    }
}

/// One attempt: a transport error or a retryable status is an error; any
/// other response is the result.
pub async fn attempt(
    client: &HttpClient,
    req: &HttpRequest,
    opts: SendOptions,
) -> Result<Value, IntegrationError> {
    let resp = client.send(req, opts).await?;
    if retryable_status(resp.status) {
        resp.error_for_status()?;
    }
    Ok(response_value(&resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_guessed_only_when_missing() {
        let r =
            build_request("post", "http://127.0.0.1:1/x", r#"{"a":1}"#, &BTreeMap::new()).unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.headers[CONTENT_TYPE], "application/json");
        let r = build_request("PUT", "http://h/x", "plain", &BTreeMap::new()).unwrap();
        assert_eq!(r.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
        let mut h = BTreeMap::new();
        h.insert("Content-Type".to_string(), "application/xml".to_string());
        let r = build_request("POST", "http://h/x", "<a/>", &h).unwrap();
        assert_eq!(r.headers[CONTENT_TYPE], "application/xml");
        let r = build_request("", "http://h/x", "", &BTreeMap::new()).unwrap();
        assert_eq!(r.method, Method::GET);
        assert!(!r.headers.contains_key(CONTENT_TYPE));
    }

    #[test]
    fn form_fields_go_in_the_body_or_the_query() {
        let mut f = BTreeMap::new();
        f.insert("text".to_string(), "a b&c".to_string());
        f.insert("n".to_string(), "1".to_string());
        let r = build_form_request("POST", "http://h/x", &f).unwrap();
        assert_eq!(r.headers[CONTENT_TYPE], "application/x-www-form-urlencoded");
        assert_eq!(&r.body[..], b"n=1&text=a+b%26c");
        let r = build_form_request("get", "http://h/x?k=v", &f).unwrap();
        assert_eq!(r.url.query(), Some("k=v&n=1&text=a+b%26c"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn bad_arguments_are_not_retryable() {
        let e = build_request("GET", "gopher://h/", "", &BTreeMap::new()).unwrap_err();
        assert!(!e.retryable());
        let mut h = BTreeMap::new();
        h.insert("bad header".to_string(), "v".to_string());
        assert!(!build_request("GET", "http://h/", "", &h).unwrap_err().retryable());
        assert!(build_request("GE T", "http://h/", "", &BTreeMap::new()).is_err());
    }
}
