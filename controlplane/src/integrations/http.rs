//! The HTTP client every HTTP integration sends through: hyper 1.x
//! (hyper-util's pooled client), http and https (rustls with ring and the
//! Mozilla roots of `webpki-roots`), a connect timeout, a timeout for the
//! whole exchange, a redirect policy and a cap on the response body read.
//!
//! It reports transport failures as [`IntegrationError`]s (DNS, connect,
//! timeout) and returns every HTTP response, whatever its status: the
//! integration decides what a status means.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, LOCATION, PROXY_AUTHORIZATION,
};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use url::Url;

use super::IntegrationError;

/// One request, before redirects.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How redirects and the response body are handled for one request.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Time for the whole exchange, redirects and body included.
    pub timeout: Duration,
    pub max_redirects: u32,
    pub max_body_bytes: usize,
}

/// A response, after redirects.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body was longer than `max_body_bytes` and was cut there.
    pub truncated: bool,
    /// The URL that answered (differs from the request's after a redirect).
    pub url: Url,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A non-2xx response as an error (with `Retry-After`, if any).
    pub fn error_for_status(&self) -> Result<(), IntegrationError> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        Err(IntegrationError::Status {
            status: self.status,
            retry_after: self.header("retry-after").and_then(super::parse_retry_after),
            body: self.body_text(),
        })
    }
}

/// A cheap-to-clone pooled client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

/// `skua/<version>`, sent as `User-Agent` unless the agent gave one.
pub const USER_AGENT: &str = concat!("skua/", env!("CARGO_PKG_VERSION"));

impl HttpClient {
    /// Must be called inside a tokio runtime (the pool spawns tasks there).
    /// `extra_ca`: a PEM file of CA certificates trusted besides the Mozilla
    /// roots.
    pub fn new(
        connect_timeout: Duration,
        extra_ca: Option<&Path>,
    ) -> Result<Self, IntegrationError> {
        let tls = tls_config(extra_ca)?;
        Ok(Self::with_tls(tls, connect_timeout))
    }

    /// A client that trusts exactly the server certificate whose SHA-256 is
    /// `fingerprint` (what Elasticsearch 8 prints for its self-signed
    /// certificate), whatever signed it; the handshake's signature is still
    /// checked against that certificate's key.
    pub fn pinned(
        connect_timeout: Duration,
        fingerprint: [u8; 32],
    ) -> Result<Self, IntegrationError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(PinnedCert { fingerprint, provider: provider.clone() });
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| IntegrationError::Unavailable(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self::with_tls(tls, connect_timeout))
    }

    fn with_tls(tls: rustls::ClientConfig, connect_timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(https);
        HttpClient { client }
    }

    /// Sends `req`, follows redirects per the policy, reads the body up to
    /// its cap; all within `opts.timeout`.
    pub async fn send(
        &self,
        req: &HttpRequest,
        opts: SendOptions,
    ) -> Result<HttpResponse, IntegrationError> {
        match tokio::time::timeout(opts.timeout, self.send_inner(req, opts)).await {
            Ok(r) => r,
            Err(_) => Err(IntegrationError::Timeout(opts.timeout)),
        }
    }

    /// Sends `req` and reads the answer with `answer`: one attempt of an
    /// API whose 2xx body carries the result (chatgpt, elastic).
    pub async fn send_then<T>(
        &self,
        req: &HttpRequest,
        opts: SendOptions,
        answer: impl FnOnce(&HttpResponse) -> Result<T, IntegrationError>,
    ) -> Result<T, IntegrationError> {
        answer(&self.send(req, opts).await?)
    }

    /// Sends `req` (no redirects) and returns the response with its body
    /// unread, for streams (server-sent events) read as they come. Only
    /// the response head is bounded by `head_timeout`.
    pub async fn open(
        &self,
        req: &HttpRequest,
        head_timeout: Duration,
    ) -> Result<hyper::Response<hyper::body::Incoming>, IntegrationError> {
        check_scheme(&req.url)?;
        let mut builder = Request::builder().method(req.method.clone()).uri(req.url.as_str());
        if let Some(h) = builder.headers_mut() {
            *h = req.headers.clone();
            h.entry(hyper::header::USER_AGENT).or_insert(HeaderValue::from_static(USER_AGENT));
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| IntegrationError::Invalid(format!("{}: {e}", req.url)))?;
        match tokio::time::timeout(head_timeout, self.client.request(request)).await {
            Ok(r) => r.map_err(|e| classify(&req.url, &e)),
            Err(_) => Err(IntegrationError::Timeout(head_timeout)),
        }
    }

    async fn send_inner(
        &self,
        req: &HttpRequest,
        opts: SendOptions,
    ) -> Result<HttpResponse, IntegrationError> {
        let mut method = req.method.clone();
        let mut url = req.url.clone();
        let mut headers = req.headers.clone();
        let mut body = req.body.clone();
        let mut redirects = 0u32;
        loop {
            check_scheme(&url)?;
            let mut builder = Request::builder().method(method.clone()).uri(url.as_str());
            if let Some(h) = builder.headers_mut() {
                *h = headers.clone();
                h.entry(hyper::header::USER_AGENT).or_insert(HeaderValue::from_static(USER_AGENT));
            }
            let request = builder
                .body(Full::new(body.clone()))
                .map_err(|e| IntegrationError::Invalid(format!("{url}: {e}")))?;
            let resp = self.client.request(request).await.map_err(|e| classify(&url, &e))?;
            let status = resp.status();
            if is_redirect(status) && redirects < opts.max_redirects {
                if let Some(next) = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                {
                    redirects += 1;
                    let (m, keep_body) = redirected_method(status, &method);
                    if !keep_body {
                        body = Bytes::new();
                        headers.remove(hyper::header::CONTENT_TYPE);
                        headers.remove(hyper::header::CONTENT_LENGTH);
                    }
                    method = m;
                    if origin(&next) != origin(&url) {
                        for h in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                            headers.remove(h);
                        }
                    }
                    url = next;
                    continue;
                }
            }
            let resp_headers = resp.headers().clone();
            let (body, truncated) = read_capped(resp.into_body(), opts.max_body_bytes).await?;
            return Ok(HttpResponse {
                status: status.as_u16(),
                headers: resp_headers,
                body,
                truncated,
                url,
            });
        }
    }
}

/// The TLS setup of every skua HTTP client: rustls with ring, the Mozilla
/// roots of `webpki-roots` and the CAs of `extra_ca` (a PEM file).
pub fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, IntegrationError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca {
        let bad =
            |e: String| IntegrationError::Unavailable(format!("CA file {}: {e}", path.display()));
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for cert in certs {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no certificate in it".into()));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IntegrationError::Unavailable(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Accepts the one certificate whose SHA-256 is `fingerprint`.
#[derive(Debug)]
struct PinnedCert {
    fingerprint: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let got = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if got.as_ref() == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn check_scheme(url: &Url) -> Result<(), IntegrationError> {
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "http" | "https" => Err(IntegrationError::Invalid(format!("{url}: no host"))),
        s => Err(IntegrationError::Invalid(format!("{url}: scheme {s:?} is not http or https"))),
    }
}

/// Parses an agent-given URL: http or https with a host.
pub fn parse_url(s: &str) -> Result<Url, IntegrationError> {
    let url =
        Url::parse(s.trim()).map_err(|e| IntegrationError::Invalid(format!("URL {s:?}: {e}")))?;
    check_scheme(&url)?;
    Ok(url)
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The method (and whether the body is kept) after a redirect: 303 makes
/// everything but HEAD a GET; 301/302 make a POST a GET (what every client
/// does, RFC 9110 §15.4.2–3); 307/308 keep both.
pub fn redirected_method(status: StatusCode, method: &Method) -> (Method, bool) {
    match status.as_u16() {
        303 if *method != Method::HEAD => (Method::GET, false),
        301 | 302 if *method == Method::POST => (Method::GET, false),
        _ => (method.clone(), true),
    }
}

fn origin(u: &Url) -> (String, Option<String>, Option<u16>) {
    (u.scheme().to_string(), u.host_str().map(str::to_ascii_lowercase), u.port_or_known_default())
}

async fn read_capped(
    mut body: hyper::body::Incoming,
    cap: usize,
) -> Result<(Bytes, bool), IntegrationError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| IntegrationError::Connect(format!("reading the response: {e}")))?;
        if let Ok(data) = frame.into_data() {
            let room = cap.saturating_sub(out.len());
            if data.len() > room {
                out.extend_from_slice(&data[..room]);
                return Ok((out.into(), true));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok((out.into(), false))
}

/// hyper-util reports DNS failures as connect errors whose message starts
/// with "dns error"; rustls' verification failures read "invalid peer
/// certificate"; everything else below HTTP is a connection failure.
fn classify(url: &Url, e: &hyper_util::client::legacy::Error) -> IntegrationError {
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_connect() && chain.contains("dns error") {
        return IntegrationError::Dns {
            host: url.host_str().unwrap_or("").to_string(),
            detail: chain,
        };
    }
    // rustls' verification and handshake failures (as io errors).
    if chain.contains("invalid peer certificate")
        || chain.contains("peer is incompatible")
        || chain.contains("received fatal alert")
    {
        return IntegrationError::Tls(format!("{}: {chain}", redact(url)));
    }
    IntegrationError::Connect(format!("{}: {chain}", redact(url)))
}

/// A URL without its user info, query or fragment (which may hold secrets):
/// what error messages show.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A JSON API's error answer (status not 2xx) as an error: retryable
/// statuses (408, 429, 5xx) as [`IntegrationError::Status`]; others as the
/// service's own `error.<code>` (the first of `code_keys` present) and
/// `error.<message_key>`, not retried.
pub fn json_api_error(
    resp: &HttpResponse,
    service: &'static str,
    code_keys: &[&str],
    message_key: &str,
) -> IntegrationError {
    if super::retryable_status(resp.status) {
        if let Err(e) = resp.error_for_status() {
            return e;
        }
    }
    let v: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
    let err = v.as_ref().map(|v| &v["error"]);
    let code = err
        .and_then(|e| code_keys.iter().find_map(|k| e[*k].as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {}", resp.status));
    let message = err
        .and_then(|e| e[message_key].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| resp.body_text().chars().take(200).collect());
    IntegrationError::Service { service, code, message, retryable: false, retry_after: None }
}

/// An answer without what the API promises in it.
pub fn invalid_response(service: &'static str, message: impl Into<String>) -> IntegrationError {
    IntegrationError::Service {
        service,
        code: "invalid_response".into(),
        message: message.into(),
        retryable: false,
        retry_after: None,
    }
}

/// Builds a header map from an agent's `{name: value}` object.
pub fn headers_from<'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<HeaderMap, IntegrationError> {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| IntegrationError::Invalid(format!("header name {k:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| IntegrationError::Invalid(format!("value of header {k:?}")))?;
        h.append(name, value);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_method_rules() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(redirected_method(s(303), &Method::PUT), (Method::GET, false));
        assert_eq!(redirected_method(s(303), &Method::HEAD), (Method::HEAD, true));
        assert_eq!(redirected_method(s(302), &Method::POST), (Method::GET, false));
        assert_eq!(redirected_method(s(301), &Method::PUT), (Method::PUT, true));
        assert_eq!(redirected_method(s(307), &Method::POST), (Method::POST, true));
        assert_eq!(redirected_method(s(308), &Method::DELETE), (Method::DELETE, true));
    }

    #[test]
    fn urls_checked_and_redacted() {
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("https://example.com/hook").is_ok());
        let u = Url::parse("https://user:pw@example.com/a?token=s#f").unwrap();
        assert_eq!(redact(&u), "https://example.com/a");
    }
}
