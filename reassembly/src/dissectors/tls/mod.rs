//! TLS handshake metadata (no decryption): SSL 3.0 to TLS 1.3.
//!
//! `parser.rs` reads records, handshake messages (with `tls-parser`) and
//! certificates (with `x509-parser`) and computes the JA3, JA3S and JA4
//! fingerprints; `tls.rs` holds a flow's session: handshake messages
//! reassembled across records, the end of the handshake, and the records
//! counted after it. This file has the Rust values and their JSON.
//!
//! A connection gives two items:
//! - the **handshake** item, emitted as soon as the handshake is over
//!   (both ChangeCipherSpecs for TLS ≤ 1.2, the client's first encrypted
//!   record after the ServerHello for TLS 1.3, a fatal alert, or the end of
//!   the connection), so a connection that lasts hours is seen when it
//!   starts; its `elapsedTime` is ClientHello → ServerHello;
//! - the **connection** item, emitted when the connection ends, with the
//!   records and bytes each way after the handshake (only then are they
//!   known; an item once emitted never changes), the SNI and JA4 again so
//!   that a filter on either sees the volume without a join.
//!
//! Fields of the handshake item:
//! - `request: {type: "handshake", version, versions[], sni, alpn[],
//!   ciphers[], extensions[], groups[], ja3, ja3Hash, ja4, sessionTicket,
//!   psk, helloRetry}` — `version` the ClientHello's legacy version,
//!   `versions` its `supported_versions` (names such as `"TLS 1.3"`),
//!   `ciphers` the offered suites by IANA name (GREASE left out of the
//!   fingerprints only), `extensions` the extension code points in order,
//!   `groups` the supported groups by name; `ja3` the JA3 string and
//!   `ja3Hash` its MD5, `ja4` the JA4 fingerprint; `helloRetry` true when
//!   the client sent a second ClientHello after a HelloRetryRequest (the
//!   fingerprints are the first ClientHello's).
//! - `response: {type: "handshake", version, cipher, cipherId, curve, alpn,
//!   resumed, established, helloRetryRequest, alert, certificate,
//!   chainLength, ja3s, ja3sHash}` — `version` the negotiated version
//!   (`supported_versions` for TLS 1.3), `cipher` its IANA name and
//!   `cipherId` its code point (`"0x1302"`), `curve` the key-exchange group
//!   (ServerKeyExchange or `key_share`); `resumed` an abbreviated (session
//!   id or ticket) or PSK handshake; `established` whether it completed;
//!   `alert` `{level, description, from}` the last plaintext alert;
//!   `certificate` the leaf's `{subject, issuer, serial, notBefore,
//!   notAfter, san[], fingerprint}` (TLS ≤ 1.2; TLS 1.3 encrypts it, so
//!   `null`) and `chainLength` the certificates sent.
//!
//! Fields of the connection item: `request: {type: "connection", sni, ja4,
//! records, bytes}` (client to server after the handshake), `response:
//! {type: "connection", version, cipher, records, bytes, alerts}` (server
//! to client; `alerts` encrypted alert records, a close_notify among them).
//! `requestSize`/`responseSize` are the handshake's bytes on the handshake
//! item and the bytes after it on the connection item.

pub mod parser;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod tls;

pub use tls::TlsSession;

use serde_json::{json, Value};

crate::protocol_errors! { Tls;
    /// A record header no TLS version writes, or a handshake message that
    /// does not parse.
    Malformed => "tls_malformed",
    /// A handshake message longer than `max_message_buffer_bytes` (a
    /// certificate chain of hundreds of KiB): read from its prefix, the
    /// rest skipped.
    Oversized => "tls_oversized_handshake",
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsAlert {
    pub level: u8,
    pub description: u8,
    pub from_server: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsRequest {
    /// The connection item (else the handshake item).
    pub connection: bool,
    pub hello: Option<parser::ClientHello>,
    pub ja3: Option<(String, String)>,
    pub ja4: Option<String>,
    pub hello_retry: bool,
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsResponse {
    pub connection: bool,
    pub hello: Option<parser::ServerHello>,
    pub curve: Option<u16>,
    pub resumed: bool,
    pub established: bool,
    pub alert: Option<TlsAlert>,
    pub certificate: Option<parser::Certificate>,
    pub chain_length: u32,
    pub records: u64,
    pub bytes: u64,
    pub alerts: u64,
}

// Built once per item and moved with it in a box (see `Message`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TlsMessage {
    Request(TlsRequest),
    Response(TlsResponse),
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn request_json(r: &TlsRequest) -> Value {
    let h = r.hello.as_ref();
    let sni = h.and_then(|h| h.sni.as_deref()).map(s);
    let ja4 = r.ja4.clone();
    if r.connection {
        return json!({"type": "connection", "sni": sni, "ja4": ja4, "records": r.records, "bytes": r.bytes});
    }
    json!({
        "type": "handshake",
        "version": h.map(|h| parser::version_name(h.version)),
        "versions": h.map_or(Vec::new(), |h| h.versions.iter().filter(|v| !parser::grease(**v)).map(|v| parser::version_name(*v)).collect()),
        "sni": sni,
        "alpn": h.map_or(Vec::new(), |h| h.alpn.iter().map(|a| s(a)).collect()),
        "ciphers": h.map_or(Vec::new(), |h| h.ciphers.iter().filter(|c| !parser::grease(**c)).map(|c| parser::cipher_name(*c)).collect()),
        "extensions": h.map_or(Vec::new(), |h| h.extensions.clone()),
        "groups": h.map_or(Vec::new(), |h| h.groups.iter().filter(|g| !parser::grease(**g)).map(|g| parser::group_name(*g)).collect()),
        "ja3": r.ja3.as_ref().map(|j| j.0.clone()),
        "ja3Hash": r.ja3.as_ref().map(|j| j.1.clone()),
        "ja4": ja4,
        "sessionTicket": h.is_some_and(|h| h.session_ticket),
        "psk": h.is_some_and(|h| h.psk),
        "helloRetry": r.hello_retry,
    })
}

pub fn response_json(r: &TlsResponse) -> Value {
    let h = r.hello.as_ref();
    let version = h.map(|h| parser::version_name(h.version));
    let cipher = h.map(|h| parser::cipher_name(h.cipher));
    if r.connection {
        return json!({"type": "connection", "version": version, "cipher": cipher, "records": r.records, "bytes": r.bytes, "alerts": r.alerts});
    }
    let cert = r.certificate.as_ref().map(|c| {
        json!({
            "subject": c.subject, "issuer": c.issuer, "serial": c.serial,
            "notBefore": crate::item::rfc3339(ns(c.not_before)),
            "notAfter": crate::item::rfc3339(ns(c.not_after)),
            "san": c.san, "fingerprint": c.fingerprint,
        })
    });
    let ja3s = h.map(parser::ja3s);
    json!({
        "type": "handshake",
        "version": version,
        "cipher": cipher,
        "cipherId": h.map(|h| format!("0x{:04x}", h.cipher)),
        "curve": r.curve.map(parser::group_name),
        "alpn": h.and_then(|h| h.alpn.as_deref()).map(s),
        "resumed": r.resumed,
        "established": r.established,
        "helloRetryRequest": h.is_some_and(|h| h.hello_retry),
        "alert": r.alert.as_ref().map(|a| json!({
            "level": if a.level == 2 { "fatal" } else { "warning" },
            "description": parser::alert_name(a.description),
            "from": if a.from_server { "server" } else { "client" },
        })),
        "certificate": cert,
        "chainLength": r.chain_length,
        "ja3s": ja3s.as_ref().map(|j| j.0.clone()),
        "ja3sHash": ja3s.map(|j| j.1),
    })
}

/// Seconds since the epoch as nanoseconds (certificate times before 1970
/// or past 2554 are clamped).
fn ns(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0).saturating_mul(1_000_000_000)
}

pub fn message_json(m: &TlsMessage) -> Value {
    match m {
        TlsMessage::Request(r) => request_json(r),
        TlsMessage::Response(r) => response_json(r),
    }
}

/// TLS in the protocol registry.
pub struct Tls;

impl super::Protocol for Tls {
    const ITEM_NAME: &'static str = "tls";
    const ABBR: &'static str = "TLS";
    const VERSION: &'static str = "1.2";
    const LONG_NAME: &'static str = "Transport Layer Security";
    const ERRORS: &'static [&'static str] = Error::NAMES;
    // Boxed: larger than the HTTP session every flow's slot is sized for.
    type Session = Box<TlsSession>;
    type Message = Box<TlsMessage>;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        parser::probe(bytes, dir == super::Direction::ToServer)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Tls(Box::new(TlsSession::new()))
    }

    /// The negotiated version (`1.3`), else the ClientHello's.
    fn version(item: &crate::item::Item) -> std::borrow::Cow<'static, str> {
        let ex = &item.exchange;
        let negotiated = match &ex.response {
            Some(super::Message::Tls(m)) => match &**m {
                TlsMessage::Response(r) => r.hello.as_ref().map(|h| h.version),
                TlsMessage::Request(_) => None,
            },
            _ => None,
        };
        let offered = match &ex.request {
            Some(super::Message::Tls(m)) => match &**m {
                TlsMessage::Request(r) => r.hello.as_ref().map(|h| h.version),
                TlsMessage::Response(_) => None,
            },
            _ => None,
        };
        let v = match negotiated.or(offered) {
            Some(0x0300) => "3.0",
            Some(0x0301) => "1.0",
            Some(0x0302) => "1.1",
            Some(0x0304) | Some(0x7f00..=0x7fff) => "1.3",
            _ => Self::VERSION,
        };
        std::borrow::Cow::Borrowed(v)
    }
}

impl super::ProtocolMessage for TlsMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
