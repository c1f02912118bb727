//! `chatgpt.prompt(apiKey, prompt, maxTokens=1024)` → the answer's text.
//!
//! One `POST <integrations.chatgpt.base_url>/chat/completions` of OpenAI's
//! chat API (which vLLM, Ollama, llama.cpp's server and Azure OpenAI's
//! compatible endpoint also speak): `{model, messages: [{role: "user",
//! content: prompt}], max_tokens}` with `Authorization: Bearer <apiKey>`.
//! The result is `choices[0].message.content`. Sent through the shared
//! client of `http.rs` (no new HTTP client: the request is one JSON post).
//!
//! Failures: 401/403 (a bad key) and other 4xx reject at once with the
//! API's `error.message`; 408, 429 (honouring `Retry-After`) and 5xx are
//! retried; an answer without a message is a `chatgpt: invalid_response`
//! error.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;
use serde_json::{json, Value};

use super::config::ChatgptConfig;
use super::http::{
    invalid_response, json_api_error, parse_url, HttpRequest, HttpResponse, SendOptions,
};
use super::IntegrationError;

// ---- request building -------------------------------------------------------

pub fn build_request(
    cfg: &ChatgptConfig,
    api_key: &str,
    prompt: &str,
    max_tokens: u32,
) -> Result<HttpRequest, IntegrationError> {
    let url = parse_url(&format!("{}/chat/completions", cfg.base_url.trim_end_matches('/')))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if !api_key.trim().is_empty() {
        let auth = HeaderValue::from_str(&format!("Bearer {}", api_key.trim())).map_err(|_| {
            IntegrationError::Invalid(
                "chatgpt: the API key has characters a header cannot carry".into(),
            )
        })?;
        headers.insert(AUTHORIZATION, auth);
    }
    let body = json!({
        "model": cfg.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    });
    Ok(HttpRequest { method: Method::POST, url, headers, body: Bytes::from(body.to_string()) })
}

// ---- sending and answers ----------------------------------------------------

pub fn send_options(cfg: &ChatgptConfig) -> SendOptions {
    SendOptions {
        timeout: Duration::from_millis(cfg.timeout_ms),
        // A redirect would carry the key elsewhere.
        max_redirects: 0,
        max_body_bytes: cfg.max_response_bytes,
    }
}

pub fn answer(resp: &HttpResponse) -> Result<Value, IntegrationError> {
    if !(200..300).contains(&resp.status) {
        return Err(json_api_error(resp, "chatgpt", &["code", "type"], "message"));
    }
    let v: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let text = v.as_ref().and_then(|v| {
        v["choices"][0]["message"]["content"].as_str().or(v["choices"][0]["text"].as_str())
    });
    match text {
        Some(t) => Ok(Value::String(t.to_string())),
        None => Err(invalid_response("chatgpt", "no choices[0].message.content in the answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            truncated: false,
            url: url::Url::parse("http://h/").unwrap(),
        }
    }

    #[test]
    fn request_shape() {
        let cfg = ChatgptConfig { base_url: "http://127.0.0.1:9/v1/".into(), ..Default::default() };
        let r = build_request(&cfg, "sk-1", "why?", 64).unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(r.headers[AUTHORIZATION], "Bearer sk-1");
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["messages"][0], json!({"role": "user", "content": "why?"}));
        assert_eq!(
            (b["max_tokens"].as_u64(), b["model"].as_str()),
            (Some(64), Some("gpt-4o-mini"))
        );
    }

    #[test]
    fn answers_and_errors() {
        let ok = resp(200, r#"{"choices":[{"message":{"role":"assistant","content":"Yes."}}]}"#);
        assert_eq!(answer(&ok).unwrap(), "Yes.");
        let denied = resp(
            401,
            r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        let e = answer(&denied).unwrap_err();
        assert!(!e.retryable() && e.to_string().contains("invalid_api_key"), "{e}");
        assert!(answer(&resp(503, "busy")).unwrap_err().retryable());
        assert!(answer(&resp(200, "{}")).is_err());
    }
}
