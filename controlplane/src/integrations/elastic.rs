//! `vendor.elastic(url, index, doc, user?, password?, cloudId?, apiKey?,
//! serviceToken?, certFingerprint?)` → the new document's `_id`.
//!
//! One `POST <url>/<index>/_doc` of Elasticsearch's document API with the
//! document as JSON (an object an agent passed is sent as its JSON text;
//! a string must already be JSON), answered `201 {"_id": ..., "result":
//! "created"}`. Authentication, as Elasticsearch's clients choose it:
//! `serviceToken` → `Authorization: Bearer`; else `apiKey` → `Authorization:
//! ApiKey` (an `id:key` pair is base64-encoded first, an encoded key sent
//! as it is); else `user`/`password` → basic. `cloudId`
//! (`name:base64(host$es-id$kibana-id)`) gives the URL when `url` is empty:
//! `https://<es-id>.<host>`. `certFingerprint` (the SHA-256 of the server's
//! certificate, hex, colons allowed: what Elasticsearch 8 prints at its
//! first start) pins the certificate instead of verifying it against the
//! roots (`http::HttpClient::pinned`).
//!
//! Failures: 401/403 (denied credentials), 400 (a mapping conflict) and
//! 404 reject at once with Elasticsearch's `error.type: reason`; 408, 429
//! and 5xx are retried. Sent through `http.rs`'s client (no new client).

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;
use serde_json::Value;

use super::http::{
    invalid_response, json_api_error, parse_url, HttpRequest, HttpResponse, SendOptions,
};
use super::IntegrationError;

/// What the agent gave.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub url: &'a str,
    pub index: &'a str,
    pub doc: &'a str,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub cloud_id: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub service_token: Option<&'a str>,
}

// ---- request building -------------------------------------------------------

/// The deployment URL a Cloud ID names.
pub fn cloud_url(cloud_id: &str) -> Result<String, IntegrationError> {
    let bad = |why: &str| IntegrationError::Invalid(format!("elastic: cloudId: {why}"));
    let encoded = cloud_id.rsplit_once(':').map_or(cloud_id, |(_, e)| e).trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad("not base64 after the name"))?;
    let text = String::from_utf8(decoded).map_err(|_| bad("not text"))?;
    let mut parts = text.split('$');
    let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
    let es = parts.next().filter(|h| !h.is_empty()).ok_or_else(|| bad("no Elasticsearch id"))?;
    // The host may carry a port (`host:9243`); the id goes before it.
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, format!(":{p}")),
        _ => (host, String::new()),
    };
    Ok(format!("https://{es}.{host}{port}"))
}

fn valid_index(index: &str) -> bool {
    !index.is_empty()
        && index.len() <= 255
        && !index.starts_with(['-', '_', '+'])
        && index != "."
        && index != ".."
        && index.chars().all(|c| !c.is_ascii_uppercase() && !"\\/*?\"<>| ,#:".contains(c))
}

pub fn build_request(d: &Doc<'_>) -> Result<HttpRequest, IntegrationError> {
    let base = match (d.url.trim(), d.cloud_id) {
        ("", Some(id)) => cloud_url(id)?,
        ("", None) => {
            return Err(IntegrationError::Invalid("elastic: give a url or a cloudId".into()))
        }
        (u, _) => u.to_string(),
    };
    let index = d.index.trim();
    if !valid_index(index) {
        return Err(IntegrationError::Invalid(format!(
            "elastic: {index:?} is not a valid index name (lowercase, no \\ / * ? \" < > | , # : or spaces)"
        )));
    }
    if serde_json::from_str::<serde_json::Map<String, Value>>(d.doc).is_err() {
        return Err(IntegrationError::Invalid(
            "elastic: the document must be a JSON object".into(),
        ));
    }
    let url = parse_url(&format!("{}/{index}/_doc", base.trim_end_matches('/')))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let auth = if let Some(t) = d.service_token {
        Some(format!("Bearer {}", t.trim()))
    } else if let Some(k) = d.api_key {
        let k = k.trim();
        Some(if k.contains(':') { format!("ApiKey {}", b64(k)) } else { format!("ApiKey {k}") })
    } else {
        d.user.map(|u| format!("Basic {}", b64(&format!("{u}:{}", d.password.unwrap_or("")))))
    };
    if let Some(a) = auth {
        let v = HeaderValue::from_str(&a).map_err(|_| {
            IntegrationError::Invalid("elastic: credentials a header cannot carry".into())
        })?;
        headers.insert(AUTHORIZATION, v);
    }
    Ok(HttpRequest {
        method: Method::POST,
        url,
        headers,
        body: Bytes::copy_from_slice(d.doc.as_bytes()),
    })
}

/// A SHA-256 fingerprint as bytes (hex, with or without colons).
pub fn parse_fingerprint(f: &str) -> Result<[u8; 32], IntegrationError> {
    let hex: String = f.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    let bad = || {
        IntegrationError::Invalid(format!("elastic: certFingerprint {f:?} is not a SHA-256 in hex"))
    };
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

// ---- sending and answers ----------------------------------------------------

pub fn send_options(timeout: Duration) -> SendOptions {
    SendOptions { timeout, max_redirects: 0, max_body_bytes: 64 * 1024 }
}

pub fn answer(resp: &HttpResponse) -> Result<Value, IntegrationError> {
    if !(200..300).contains(&resp.status) {
        return Err(json_api_error(resp, "elastic", &["type"], "reason"));
    }
    let v: Option<Value> = serde_json::from_slice(&resp.body).ok();
    match v.as_ref().and_then(|v| v["_id"].as_str()) {
        Some(id) => Ok(Value::String(id.to_string())),
        None => Err(invalid_response("elastic", "no _id in the answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(url: &'a str, index: &'a str) -> Doc<'a> {
        Doc {
            url,
            index,
            doc: r#"{"a":1}"#,
            user: None,
            password: None,
            cloud_id: None,
            api_key: None,
            service_token: None,
        }
    }

    #[test]
    fn cloud_id_names_the_deployment() {
        // "name:" + base64("us-east-1.aws.found.io$abc123$kib456")
        let id = format!(
            "my-deployment:{}",
            base64::engine::general_purpose::STANDARD
                .encode("us-east-1.aws.found.io$abc123$kib456")
        );
        assert_eq!(cloud_url(&id).unwrap(), "https://abc123.us-east-1.aws.found.io");
        let with_port = base64::engine::general_purpose::STANDARD.encode("example.com:9243$es1$k");
        assert_eq!(cloud_url(&with_port).unwrap(), "https://es1.example.com:9243");
        assert!(cloud_url("x:%%%").is_err());
    }

    #[test]
    fn auth_headers_by_precedence() {
        let mut d = doc("http://h:9200/", "logs");
        let r = build_request(&d).unwrap();
        assert_eq!(r.url.as_str(), "http://h:9200/logs/_doc");
        assert!(!r.headers.contains_key(AUTHORIZATION));
        d.user = Some("elastic");
        d.password = Some("pw");
        assert_eq!(build_request(&d).unwrap().headers[AUTHORIZATION], "Basic ZWxhc3RpYzpwdw==");
        d.api_key = Some("id:key");
        assert_eq!(build_request(&d).unwrap().headers[AUTHORIZATION], "ApiKey aWQ6a2V5");
        d.api_key = Some("aWQ6a2V5");
        assert_eq!(build_request(&d).unwrap().headers[AUTHORIZATION], "ApiKey aWQ6a2V5");
        d.service_token = Some("tok");
        assert_eq!(build_request(&d).unwrap().headers[AUTHORIZATION], "Bearer tok");
    }

    #[test]
    fn bad_arguments() {
        assert!(build_request(&doc("http://h", "Logs")).is_err());
        assert!(build_request(&doc("", "logs")).is_err());
        let mut d = doc("http://h", "logs");
        d.doc = "[1]";
        assert!(build_request(&d).is_err());
        assert!(parse_fingerprint("AB:CD").is_err());
        let f = "a".repeat(64);
        assert_eq!(parse_fingerprint(&f).unwrap(), [0xaa; 32]);
    }
}
