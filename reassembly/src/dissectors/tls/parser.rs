//! Pure TLS parsing over byte slices: record headers, handshake message
//! framing, the facts of a ClientHello and a ServerHello (read with
//! `tls-parser`), their fingerprints (JA3, JA3S, JA4), names of versions,
//! ciphers and groups, and the leaf certificate (read with `x509-parser`).
//! Nothing is decrypted: after ChangeCipherSpec (TLS ≤ 1.2) or the
//! ServerHello (TLS 1.3) a direction's records are only counted.

use md5::{Digest, Md5};
use sha2::Sha256;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

use crate::dissectors::Confidence;

pub const RECORD_HEADER: usize = 5;
/// The largest record RFC 8446 allows (2^14 + 256 for TLS 1.3 ciphertext,
/// + 2048 for TLS 1.2's): anything longer is not TLS.
pub const MAX_RECORD: usize = (1 << 14) + 2048;

pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
    pub const HEARTBEAT: u8 = 24;
}

pub mod hs {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
}

/// The `random` of a ServerHello that is a HelloRetryRequest (RFC 8446 4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// `(content type, version, length)` of the record `b` starts with.
pub fn record_header(b: &[u8]) -> Option<(u8, u16, usize)> {
    let h = b.get(..RECORD_HEADER)?;
    Some((h[0], u16::from_be_bytes([h[1], h[2]]), usize::from(u16::from_be_bytes([h[3], h[4]]))))
}

/// Whether a record header is plausible TLS (SSL 3.0 to TLS 1.3 framing).
pub fn record_plausible(ty: u8, version: u16, len: usize) -> bool {
    (content::CHANGE_CIPHER_SPEC..=content::HEARTBEAT).contains(&ty)
        && (0x0300..=0x0304).contains(&version)
        && len <= MAX_RECORD
}

/// GREASE values (RFC 8701): `0x?a?a` with both bytes equal.
pub fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// A version as people write it: `TLS 1.2`, `TLS 1.3 draft-22`, `SSL 3.0`.
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        0x7f00..=0x7fff => format!("TLS 1.3 draft-{}", v & 0xff),
        0x0200 => "SSL 2.0".into(),
        _ => format!("0x{v:04x}"),
    }
}

/// The IANA name of a cipher suite (`TLS_AES_128_GCM_SHA256`), or its code point.
pub fn cipher_name(id: u16) -> String {
    match tls_parser::TlsCipherSuite::from_id(id) {
        Some(c) => c.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

/// The IANA name of a supported group (`x25519`, `secp256r1`).
pub fn group_name(id: u16) -> String {
    match id {
        23 => "secp256r1".into(),
        24 => "secp384r1".into(),
        25 => "secp521r1".into(),
        29 => "x25519".into(),
        30 => "x448".into(),
        256 => "ffdhe2048".into(),
        257 => "ffdhe3072".into(),
        258 => "ffdhe4096".into(),
        259 => "ffdhe6144".into(),
        260 => "ffdhe8192".into(),
        0x11ec => "X25519MLKEM768".into(),
        0x6399 => "X25519Kyber768Draft00".into(),
        _ => format!("0x{id:04x}"),
    }
}

/// The name of an alert description (RFC 8446 6).
pub fn alert_name(d: u8) -> String {
    match d {
        0 => "close_notify".into(),
        10 => "unexpected_message".into(),
        20 => "bad_record_mac".into(),
        21 => "decryption_failed".into(),
        22 => "record_overflow".into(),
        40 => "handshake_failure".into(),
        42 => "bad_certificate".into(),
        43 => "unsupported_certificate".into(),
        44 => "certificate_revoked".into(),
        45 => "certificate_expired".into(),
        46 => "certificate_unknown".into(),
        47 => "illegal_parameter".into(),
        48 => "unknown_ca".into(),
        49 => "access_denied".into(),
        50 => "decode_error".into(),
        51 => "decrypt_error".into(),
        70 => "protocol_version".into(),
        71 => "insufficient_security".into(),
        80 => "internal_error".into(),
        86 => "inappropriate_fallback".into(),
        90 => "user_canceled".into(),
        100 => "no_renegotiation".into(),
        109 => "missing_extension".into(),
        110 => "unsupported_extension".into(),
        112 => "unrecognized_name".into(),
        113 => "bad_certificate_status_response".into(),
        115 => "unknown_psk_identity".into(),
        116 => "certificate_required".into(),
        120 => "no_application_protocol".into(),
        _ => format!("alert_{d}"),
    }
}

/// Extension types in the order sent, from a raw extension block.
pub fn extension_types(ext: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(h) = ext.get(at..at + 4) {
        out.push(u16::from_be_bytes([h[0], h[1]]));
        at += 4 + usize::from(u16::from_be_bytes([h[2], h[3]]));
    }
    out
}

/// What a ClientHello offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    pub version: u16,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub sni: Option<Vec<u8>>,
    pub alpn: Vec<Vec<u8>>,
    pub versions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub session_id: Vec<u8>,
    pub session_ticket: bool,
    pub psk: bool,
}

/// What a ServerHello chose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHello {
    pub legacy_version: u16,
    /// `supported_versions` if sent, else the legacy version.
    pub version: u16,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    pub alpn: Option<Vec<u8>>,
    pub group: Option<u16>,
    pub psk: bool,
    pub session_id: Vec<u8>,
    pub hello_retry: bool,
}

/// The extensions of a hello, each parsed on its own (one that does not
/// parse is skipped, not the ones after it: `tls-parser`'s list parser
/// stops at the first).
fn ext_list(ext: Option<&[u8]>, server: bool) -> Vec<TlsExtension<'_>> {
    let ext = ext.unwrap_or_default();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(h) = ext.get(at..at + 4) {
        let end = at + 4 + usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(block) = ext.get(at..end) else { break };
        let parsed = if server {
            tls_parser::parse_tls_server_hello_extension(block)
        } else {
            tls_parser::parse_tls_client_hello_extension(block)
        };
        if let Ok((_, e)) = parsed {
            out.push(e);
        }
        at = end;
    }
    out
}

/// A ClientHello message (its 4-byte header included).
pub fn client_hello(msg: &[u8], keep: usize) -> Option<ClientHello> {
    let (_, m) = tls_parser::parse_tls_message_handshake(msg).ok()?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = m else { return None };
    let mut c = ClientHello {
        version: ch.version.0,
        ciphers: ch.ciphers.iter().map(|x| x.0).collect(),
        extensions: ch.ext.map(extension_types).unwrap_or_default(),
        session_id: ch.session_id.unwrap_or_default().to_vec(),
        ..ClientHello::default()
    };
    for e in ext_list(ch.ext, false) {
        match e {
            TlsExtension::SNI(names) => {
                c.sni = names
                    .first()
                    .map(|(_, n)| n.get(..keep.min(n.len())).unwrap_or_default().to_vec());
            }
            TlsExtension::ALPN(p) => {
                c.alpn = p
                    .iter()
                    .take(16)
                    .map(|x| x.get(..keep.min(x.len())).unwrap_or_default().to_vec())
                    .collect();
            }
            TlsExtension::SupportedVersions(v) => c.versions = v.iter().map(|x| x.0).collect(),
            TlsExtension::EllipticCurves(g) => c.groups = g.iter().map(|x| x.0).collect(),
            TlsExtension::EcPointFormats(f) => c.point_formats = f.to_vec(),
            TlsExtension::SignatureAlgorithms(s) => c.signature_algorithms = s.clone(),
            TlsExtension::SessionTicket(t) => c.session_ticket = !t.is_empty(),
            TlsExtension::PreSharedKey(_) => c.psk = true,
            _ => {}
        }
    }
    Some(c)
}

/// A ServerHello message (its 4-byte header included).
pub fn server_hello(msg: &[u8], keep: usize) -> Option<ServerHello> {
    let (_, m) = tls_parser::parse_tls_message_handshake(msg).ok()?;
    let TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) = m else { return None };
    let mut s = ServerHello {
        legacy_version: sh.version.0,
        version: sh.version.0,
        cipher: sh.cipher.0,
        extensions: sh.ext.map(extension_types).unwrap_or_default(),
        session_id: sh.session_id.unwrap_or_default().to_vec(),
        hello_retry: sh.random == HRR_RANDOM,
        ..ServerHello::default()
    };
    for e in ext_list(sh.ext, true) {
        match e {
            TlsExtension::SupportedVersions(v) => {
                if let Some(x) = v.first() {
                    s.version = x.0;
                }
            }
            TlsExtension::ALPN(p) => {
                s.alpn = p.first().map(|x| x.get(..keep.min(x.len())).unwrap_or_default().to_vec());
            }
            // Draft TLS 1.3 servers (before draft 23) sent key_share as 40.
            TlsExtension::KeyShare(k)
            | TlsExtension::KeyShareOld(k)
            | TlsExtension::Unknown(tls_parser::TlsExtensionType(40), k) => {
                // A server's key share: its group first (a HelloRetryRequest
                // sends the group alone).
                s.group = k.get(..2).map(|g| u16::from_be_bytes([g[0], g[1]]));
            }
            TlsExtension::PreSharedKey(_) => s.psk = true,
            _ => {}
        }
    }
    Some(s)
}

/// The named curve of an ECDHE ServerKeyExchange (`curve_type` 3).
pub fn key_exchange_group(msg: &[u8]) -> Option<u16> {
    let p = msg.get(4..)?;
    (p.first() == Some(&3)).then(|| p.get(1..3).map(|g| u16::from_be_bytes([g[0], g[1]])))?
}

fn dashed<T: ToString>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join("-")
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// JA3: `version,ciphers,extensions,groups,point formats` (decimal,
/// GREASE left out) and its MD5.
pub fn ja3(c: &ClientHello) -> (String, String) {
    let s = format!(
        "{},{},{},{},{}",
        c.version,
        dashed(c.ciphers.iter().filter(|x| !grease(**x))),
        dashed(c.extensions.iter().filter(|x| !grease(**x))),
        dashed(c.groups.iter().filter(|x| !grease(**x))),
        dashed(&c.point_formats),
    );
    let h = md5_hex(&s);
    (s, h)
}

/// JA3S: `version,cipher,extensions` of the ServerHello and its MD5.
pub fn ja3s(s: &ServerHello) -> (String, String) {
    let j = format!("{},{},{}", s.legacy_version, s.cipher, dashed(&s.extensions));
    let h = md5_hex(&j);
    (j, h)
}

fn sha256_12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = Sha256::digest(s.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// JA4 (FoxIO's TLS client fingerprint, for TCP): `t` + version + SNI
/// flag + cipher and extension counts + ALPN's first and last character,
/// then the truncated SHA-256 of the sorted ciphers, and of the sorted
/// extensions (less SNI and ALPN) with the signature algorithms in order.
pub fn ja4(c: &ClientHello) -> String {
    let version = c.versions.iter().copied().filter(|v| !grease(*v)).max().unwrap_or(c.version);
    let v = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0200 => "s2",
        0x7f00..=0x7fff => "13",
        _ => "00",
    };
    let sni = if c.sni.is_some() { 'd' } else { 'i' };
    let ciphers: Vec<u16> = c.ciphers.iter().copied().filter(|x| !grease(*x)).collect();
    let exts: Vec<u16> = c.extensions.iter().copied().filter(|x| !grease(*x)).collect();
    let alpn = match c.alpn.first().filter(|a| !a.is_empty()) {
        None => "00".to_string(),
        Some(a) => {
            let (f, l) = (a[0], a[a.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", char::from(f), char::from(l))
            } else {
                // Not alphanumeric: the first and last hex digits of the value.
                let hex: String = a.iter().map(|b| format!("{b:02x}")).collect();
                format!("{}{}", &hex[..1], &hex[hex.len() - 1..])
            }
        }
    };
    let mut sorted_ciphers: Vec<String> = ciphers.iter().map(|x| format!("{x:04x}")).collect();
    sorted_ciphers.sort();
    let mut sorted_exts: Vec<String> = exts
        .iter()
        .filter(|x| **x != 0x0000 && **x != 0x0010)
        .map(|x| format!("{x:04x}"))
        .collect();
    sorted_exts.sort();
    let sigs: Vec<String> = c
        .signature_algorithms
        .iter()
        .filter(|x| !grease(**x))
        .map(|x| format!("{x:04x}"))
        .collect();
    let ext_part = if sorted_exts.is_empty() {
        String::new()
    } else if sigs.is_empty() {
        sorted_exts.join(",")
    } else {
        format!("{}_{}", sorted_exts.join(","), sigs.join(","))
    };
    format!(
        "t{v}{sni}{:02}{:02}{alpn}_{}_{}",
        ciphers.len().min(99),
        exts.len().min(99),
        sha256_12(&sorted_ciphers.join(",")),
        sha256_12(&ext_part),
    )
}

/// The facts of a certificate an item keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub san: Vec<String>,
    /// SHA-1 of the DER, lower-case hex pairs joined by colons.
    pub fingerprint: String,
}

/// Names kept from a certificate's subjectAltName: a protocol-side bound
/// (a CDN certificate lists a few hundred), not a tunable.
pub const MAX_SAN: usize = 64;

/// A DER certificate's facts (`None` if it does not parse).
pub fn certificate(der: &[u8], keep: usize) -> Option<Certificate> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cut = |s: String| if s.len() > keep { s.chars().take(keep).collect() } else { s };
    let serial = cert.raw_serial().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in ext.value.general_names.iter().take(MAX_SAN) {
            match n {
                GeneralName::DNSName(d) => san.push(cut(d.to_string())),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => san.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(ip);
                        san.push(std::net::Ipv6Addr::from(a).to_string());
                    }
                    _ => {}
                },
                GeneralName::RFC822Name(e) => san.push(cut(e.to_string())),
                GeneralName::URI(u) => san.push(cut(u.to_string())),
                _ => {}
            }
        }
    }
    let fingerprint =
        sha1::Sha1::digest(der).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    Some(Certificate {
        subject: cut(cert.subject().to_string()),
        issuer: cut(cert.issuer().to_string()),
        serial,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        san,
        fingerprint,
    })
}

/// The DER certificates of a Certificate message (TLS ≤ 1.2 layout), as
/// far as the bytes go: a chain cut by the buffer still yields its leaf.
pub fn certificate_chain(msg: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    let Some(total) =
        msg.get(4..7).map(|x| usize::from(x[0]) << 16 | usize::from(x[1]) << 8 | usize::from(x[2]))
    else {
        return (out, 0);
    };
    let end = (7 + total).min(msg.len());
    let mut at = 7;
    while let Some(h) = msg.get(at..at + 3) {
        if at >= end {
            break;
        }
        let n = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        count += 1;
        if let Some(der) = msg.get(at + 3..at + 3 + n) {
            out.push(der);
        }
        at += 3 + n;
    }
    (out, count)
}

/// Content-based detection: a handshake record holding the start of a
/// ClientHello (from the client) or a ServerHello (from the server), whose
/// lengths agree.
pub fn probe(b: &[u8], to_server: bool) -> Confidence {
    let Some((ty, version, len)) = record_header(b) else { return Confidence::None };
    if ty != content::HANDSHAKE
        || !(0x0300..=0x0304).contains(&version)
        || !(4..=MAX_RECORD).contains(&len)
    {
        return Confidence::None;
    }
    let Some(h) = b.get(RECORD_HEADER..RECORD_HEADER + 6) else { return Confidence::None };
    let want = if to_server { hs::CLIENT_HELLO } else { hs::SERVER_HELLO };
    let msg_len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
    let hello_version = u16::from_be_bytes([h[4], h[5]]);
    // A hello may span records, but never starts with less than its header.
    if h[0] == want && msg_len >= 38 && (0x0300..=0x0304).contains(&hello_version) {
        Confidence::High
    } else {
        Confidence::None
    }
}
