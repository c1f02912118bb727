//! Slack: `vendor.slack(webhookUrl, pretext, text, color)` posts to an
//! incoming webhook; `vendor.slackBot(token, channelId, pretext, text,
//! color, fields?)` calls `chat.postMessage` with a bot token. Both send one
//! attachment `{pretext, text, color, fallback}` (color: `good`, `warning`,
//! `danger` or `#rrggbb`; empty leaves it out) with Markdown on.
//!
//! Failures: HTTP 429 is retried after Slack's `Retry-After`; 5xx and
//! transport errors are retried with back-off. The Web API answers errors
//! as HTTP 200 with `{"ok": false, "error": "..."}`: the Promise rejects
//! with Slack's error string (`slack: channel_not_found`), retried only for
//! Slack's transient ones (`ratelimited`, `internal_error`, `fatal_error`,
//! `service_unavailable`, `request_timeout`). An incoming webhook answers
//! errors as 4xx with the error as plain text (`invalid_payload`,
//! `no_service`), which reject at once.
//!
//! `files` (`{name: path}`, paths an agent may read: its directory or a
//! pcap by absolute path) are uploaded after the message, each as Slack's
//! external upload asks: `files.getUploadURLExternal` (name, length), the
//! bytes posted to the URL it gives, then `files.completeUploadExternal`
//! sharing them in the message's thread. A file over
//! `integrations.slack_bot.max_file_bytes` is refused before anything is
//! sent. The Promise then resolves with `{ok, channel, ts, files: [ids]}`.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;
use serde_json::{json, Value};

use super::http::{parse_url, HttpClient, HttpRequest, HttpResponse, SendOptions};
use super::{retryable_status, IntegrationError};

// ---- request building -------------------------------------------------------

/// The attachment both helpers send.
pub fn attachment(pretext: &str, text: &str, color: &str, fields: Option<&Value>) -> Value {
    let mut a = json!({
        "fallback": if text.is_empty() { pretext } else { text },
        "pretext": pretext,
        "text": text,
        "mrkdwn_in": ["pretext", "text"],
    });
    if !color.trim().is_empty() {
        a["color"] = Value::String(color.trim().to_string());
    }
    if let Some(f) = fields.and_then(slack_fields) {
        a["fields"] = f;
    }
    a
}

/// `fields` as Slack wants them: an array of `{title, value, short}` is
/// passed through; an object `{title: value}` becomes one short field per
/// key; anything else is left out.
pub fn slack_fields(v: &Value) -> Option<Value> {
    match v {
        Value::Array(a) if !a.is_empty() => Some(Value::Array(a.clone())),
        Value::Object(m) if !m.is_empty() => Some(Value::Array(
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    json!({"title": k, "value": value, "short": true})
                })
                .collect(),
        )),
        _ => None,
    }
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h
}

pub fn build_webhook_request(
    webhook_url: &str,
    pretext: &str,
    text: &str,
    color: &str,
) -> Result<HttpRequest, IntegrationError> {
    let url = parse_url(webhook_url)?;
    let body = json!({"attachments": [attachment(pretext, text, color, None)]});
    Ok(HttpRequest {
        method: Method::POST,
        url,
        headers: json_headers(),
        body: Bytes::from(body.to_string()),
    })
}

pub fn build_bot_request(
    api_url: &str,
    token: &str,
    channel_id: &str,
    pretext: &str,
    text: &str,
    color: &str,
    fields: Option<&Value>,
) -> Result<HttpRequest, IntegrationError> {
    if channel_id.trim().is_empty() {
        return Err(IntegrationError::Invalid("slackBot: channelId is empty".into()));
    }
    let url = parse_url(&format!("{}/chat.postMessage", api_url.trim_end_matches('/')))?;
    let mut headers = json_headers();
    let auth = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
        IntegrationError::Invalid("slackBot: the token has characters a header cannot carry".into())
    })?;
    headers.insert(AUTHORIZATION, auth);
    let body = json!({"channel": channel_id.trim(), "attachments": [attachment(pretext, text, color, fields)]});
    Ok(HttpRequest { method: Method::POST, url, headers, body: Bytes::from(body.to_string()) })
}

// ---- sending and answers ----------------------------------------------------

const TRANSIENT: [&str; 5] =
    ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];

fn opts(timeout: Duration) -> SendOptions {
    // Slack never redirects a post; following one would resend a token.
    SendOptions { timeout, max_redirects: 0, max_body_bytes: 64 * 1024 }
}

/// One incoming-webhook attempt; resolves with `{ok: true}`.
pub async fn webhook_attempt(
    client: &HttpClient,
    req: &HttpRequest,
    timeout: Duration,
) -> Result<Value, IntegrationError> {
    let resp = client.send(req, opts(timeout)).await?;
    webhook_answer(&resp)
}

pub fn webhook_answer(resp: &HttpResponse) -> Result<Value, IntegrationError> {
    if (200..300).contains(&resp.status) {
        return Ok(json!({"ok": true}));
    }
    if retryable_status(resp.status) {
        resp.error_for_status()?;
    }
    let code = resp.body_text().trim().to_string();
    Err(IntegrationError::Service {
        service: "slack",
        code: if code.is_empty() { format!("HTTP {}", resp.status) } else { code },
        message: format!("HTTP {}", resp.status),
        retryable: false,
        retry_after: None,
    })
}

/// One `chat.postMessage` attempt; resolves with `{ok, channel, ts}`.
pub async fn bot_attempt(
    client: &HttpClient,
    req: &HttpRequest,
    timeout: Duration,
) -> Result<Value, IntegrationError> {
    let resp = client.send(req, opts(timeout)).await?;
    bot_answer(&resp)
}

pub fn bot_answer(resp: &HttpResponse) -> Result<Value, IntegrationError> {
    let v = web_api_answer(resp)?;
    Ok(json!({"ok": true, "channel": v["channel"], "ts": v["ts"]}))
}

// ---- file uploads -------------------------------------------------------------

fn web_api_answer(resp: &HttpResponse) -> Result<Value, IntegrationError> {
    resp.error_for_status()?;
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| super::http::invalid_response("slack", format!("not JSON: {e}")))?;
    if v["ok"].as_bool() == Some(true) {
        return Ok(v);
    }
    let code = v["error"].as_str().unwrap_or("unknown_error").to_string();
    Err(IntegrationError::Service {
        service: "slack",
        retryable: TRANSIENT.contains(&code.as_str()),
        retry_after: resp.header("retry-after").and_then(super::parse_retry_after),
        code,
        message: v["warning"].as_str().unwrap_or("").to_string(),
    })
}

fn bearer(token: &str) -> Result<HeaderValue, IntegrationError> {
    HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
        IntegrationError::Invalid("slackBot: the token has characters a header cannot carry".into())
    })
}

/// Uploads one file; returns its Slack file id (not yet shared).
pub async fn upload_file(
    client: &HttpClient,
    api_url: &str,
    token: &str,
    name: &str,
    bytes: Bytes,
    timeout: Duration,
) -> Result<String, IntegrationError> {
    // Made and dropped before any await (the serializer is not Send).
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filename", name)
        .append_pair("length", &bytes.len().to_string())
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, bearer(token)?);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    let req = HttpRequest {
        method: Method::POST,
        url: parse_url(&format!("{}/files.getUploadURLExternal", api_url.trim_end_matches('/')))?,
        headers,
        body: Bytes::from(form),
    };
    let v = web_api_answer(&client.send(&req, opts(timeout)).await?)?;
    let (Some(upload_url), Some(id)) = (v["upload_url"].as_str(), v["file_id"].as_str()) else {
        return Err(super::http::invalid_response(
            "slack",
            "files.getUploadURLExternal gave no upload_url or file_id",
        ));
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    let up =
        HttpRequest { method: Method::POST, url: parse_url(upload_url)?, headers, body: bytes };
    client.send(&up, opts(timeout)).await?.error_for_status()?;
    Ok(id.to_string())
}

/// Shares uploaded files in the thread of message `ts` of `channel`.
pub async fn complete_uploads(
    client: &HttpClient,
    api_url: &str,
    token: &str,
    channel: &str,
    ts: Option<&str>,
    files: &[(String, String)],
    timeout: Duration,
) -> Result<(), IntegrationError> {
    let mut headers = json_headers();
    headers.insert(AUTHORIZATION, bearer(token)?);
    let list: Vec<Value> =
        files.iter().map(|(id, title)| json!({"id": id, "title": title})).collect();
    let mut body = json!({"files": list, "channel_id": channel});
    if let Some(ts) = ts {
        body["thread_ts"] = json!(ts);
    }
    let req = HttpRequest {
        method: Method::POST,
        url: parse_url(&format!("{}/files.completeUploadExternal", api_url.trim_end_matches('/')))?,
        headers,
        body: Bytes::from(body.to_string()),
    };
    web_api_answer(&client.send(&req, opts(timeout)).await?).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_shapes() {
        let a = attachment("pre", "body", "danger", None);
        assert_eq!(a["pretext"], "pre");
        assert_eq!(a["color"], "danger");
        assert!(a.get("fields").is_none());
        let a = attachment("pre", "", " ", Some(&json!({"status": 503, "path": "/x"})));
        assert!(a.get("color").is_none());
        assert_eq!(a["fallback"], "pre");
        assert_eq!(a["fields"][0], json!({"title": "path", "value": "/x", "short": true}));
        assert_eq!(a["fields"][1]["value"], "503");
    }

    #[test]
    fn bot_request_has_bearer_and_channel() {
        let r =
            build_bot_request("http://127.0.0.1:9/api/", "xoxb-1", "C1", "p", "t", "good", None)
                .unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:9/api/chat.postMessage");
        assert_eq!(r.headers[AUTHORIZATION], "Bearer xoxb-1");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["channel"], "C1");
        assert!(build_bot_request("http://h/api", "t", " ", "p", "t", "", None).is_err());
    }
}
