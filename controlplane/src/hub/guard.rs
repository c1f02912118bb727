//! Where a request may come from: the `Host` and `Origin` checks that keep
//! a web page in a browser on the hub's host (or anywhere) from using the
//! hub through that browser.
//!
//! - **DNS rebinding**: a page on `evil.example` whose name is made to
//!   resolve to 127.0.0.1 reaches a loopback hub with `Host: evil.example`.
//!   With `hub.auth: none` (where the network position is the only
//!   credential) the `Host` must be a loopback name or address, or one of
//!   `hub.allowed_hosts`; with tokens a non-empty `hub.allowed_hosts` is
//!   enforced the same way.
//! - **Cross-site requests**: a browser names the page that made a request
//!   in `Origin` (every POST, PUT, DELETE and every `fetch`). A request
//!   whose `Origin` is neither the hub's own (same host and port as `Host`)
//!   nor one of `hub.allowed_origins` is refused, in every auth mode;
//!   `Origin: null` (sandboxed frames, `file:`) too. Requests without
//!   `Origin` (curl, workers, `skua scripts`, same-origin GETs) pass.
//! - **"Simple" POSTs**: a cross-site form or `fetch` without preflight can
//!   only send `text/plain`, form or multipart bodies. JSON bodies must say
//!   `application/json` (415 otherwise, every mode), and with `auth: none`
//!   every state-changing request must, body or not: a browser sends that
//!   header cross-site only after a CORS preflight the hub never grants.
//!
//! Origins are parsed with `url` (the WHATWG parser browsers use); the
//! comparison itself is the few lines below.

use hyper::header::{HeaderMap, CONTENT_TYPE, HOST, ORIGIN};
use hyper::Method;

use super::config::{AuthMode, HubConfig};

/// Why a request was refused before authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("Host {0:?} is not allowed here (hub.allowed_hosts)")]
    Host(String),
    #[error("cross-origin request from {0:?} refused (hub.allowed_origins)")]
    Origin(String),
    #[error("with hub.auth none, state-changing requests need Content-Type: application/json")]
    ContentType,
}

impl Refused {
    /// The `reason` label of `skua_hub_requests_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::Host(_) => "host",
            Refused::Origin(_) => "origin",
            Refused::ContentType => "content_type",
        }
    }
}

/// `(scheme, host, port)` of an origin such as `https://a.example:8443`
/// (the port defaulted from the scheme); `None` for anything else,
/// including a path, credentials or the opaque origin `null`.
pub fn parse_origin(s: &str) -> Option<(String, String, u16)> {
    let u = url::Url::parse(s).ok()?;
    let plain = u.path() == "/" && u.query().is_none() && u.fragment().is_none();
    if !plain || !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    Some((u.scheme().to_string(), host, u.port_or_known_default()?))
}

/// `Host: name[:port]` split; IPv6 literals lose their brackets.
fn split_host(h: &str) -> (String, Option<u16>) {
    let h = h.trim();
    if let Some(rest) = h.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (ip.to_ascii_lowercase(), after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name.to_ascii_lowercase(), port.parse().ok()),
        _ => (h.to_ascii_lowercase(), None),
    }
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback(),
            std::net::IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        })
}

/// Whether the content type is JSON (`application/json`, or a `+json`
/// type), parameters aside.
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The checks above for one request.
pub fn check(cfg: &HubConfig, method: &Method, headers: &HeaderMap) -> Result<(), Refused> {
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let enforce_host = cfg.auth == AuthMode::None || !cfg.allowed_hosts.is_empty();
    if let (true, Some(h)) = (enforce_host, host) {
        let (name, _) = split_host(h);
        let listed = cfg.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(&name));
        if !is_loopback_name(&name) && !listed {
            return Err(Refused::Host(h.chars().take(200).collect()));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let text = String::from_utf8_lossy(origin.as_bytes()).chars().take(200).collect::<String>();
        let refuse = || Refused::Origin(text.clone());
        let (scheme, oh, op) = parse_origin(&text).ok_or_else(refuse)?;
        let same = host.map(split_host).is_some_and(|(name, port)| {
            let default = if scheme == "https" { 443 } else { 80 };
            name == oh && port.unwrap_or(default) == op
        });
        let listed = cfg
            .allowed_origins
            .iter()
            .filter_map(|a| parse_origin(a))
            .any(|a| a == (scheme.clone(), oh.clone(), op));
        if !same && !listed {
            return Err(refuse());
        }
    }
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if cfg.auth == AuthMode::None && changes && !is_json(headers) {
        return Err(Refused::ContentType);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn rebinding_and_cross_site_refused() {
        let none = HubConfig { auth: AuthMode::None, ..Default::default() };
        let tokens = HubConfig::default();
        let get = Method::GET;
        for ok in ["127.0.0.1:8899", "localhost:8899", "[::1]:8899", "LOCALHOST", "127.1.2.3"] {
            assert_eq!(check(&none, &get, &h(&[("host", ok)])), Ok(()), "{ok}");
        }
        let evil = h(&[("host", "evil.example:8899")]);
        assert!(matches!(check(&none, &get, &evil), Err(Refused::Host(_))));
        assert_eq!(check(&tokens, &get, &evil), Ok(()), "tokens: any Host unless listed");
        let listed = HubConfig { allowed_hosts: vec!["hub.example".into()], ..Default::default() };
        assert_eq!(check(&listed, &get, &h(&[("host", "HUB.example:80")])), Ok(()));
        assert!(check(&listed, &get, &evil).is_err());

        let same = h(&[
            ("host", "127.0.0.1:8899"),
            ("origin", "http://127.0.0.1:8899"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(check(&none, &Method::POST, &same), Ok(()));
        // (The scheme is not compared: behind a TLS proxy the hub cannot
        // know it, and nobody else serves on the hub's host and port.)
        for o in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:9999",
            "http://127.0.0.1:8899/x",
            "http://user@127.0.0.1:8899",
        ] {
            let cross = h(&[
                ("host", "127.0.0.1:8899"),
                ("origin", o),
                ("content-type", "application/json"),
            ]);
            assert!(
                matches!(check(&tokens, &Method::POST, &cross), Err(Refused::Origin(_))),
                "{o}"
            );
        }
        let proxied = h(&[("host", "hub.example"), ("origin", "https://hub.example")]);
        assert_eq!(check(&tokens, &get, &proxied), Ok(()), "TLS proxy: default ports");
        let dash = HubConfig {
            allowed_origins: vec!["https://dash.example".into()],
            ..Default::default()
        };
        assert_eq!(
            check(&dash, &get, &h(&[("host", "hub:8899"), ("origin", "https://dash.example:443")])),
            Ok(())
        );

        let plain = h(&[("host", "127.0.0.1:8899"), ("content-type", "text/plain")]);
        assert_eq!(check(&none, &Method::POST, &plain), Err(Refused::ContentType));
        assert_eq!(check(&tokens, &Method::POST, &plain), Ok(()), "tokens: checked per JSON body");
        assert!(is_json(&h(&[("content-type", "application/merge-patch+json; charset=utf-8")])));
        assert!(!is_json(&h(&[("content-type", "text/plain; application/json")])));
    }
}
