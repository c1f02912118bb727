//! Pure PostgreSQL protocol 3.0 parsing over byte slices: message framing
//! (the untyped startup-phase messages and the typed ones), startup
//! parameters, error and notice fields, command tags. Every reader takes a
//! possibly cut payload (a large message is parsed from its prefix) and
//! returns what it could read, never panicking on short input.

use crate::dissectors::Confidence;

/// Protocol codes of untyped startup-phase messages.
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// Major version 3 in the high 16 bits (3.0 = 196608).
pub const PROTOCOL_3: u32 = 3 << 16;
/// Longest message a parser believes in (1 GiB, the server's own bound for
/// most messages); anything longer is malformed.
pub const MAX_MESSAGE: u32 = 1 << 30;
/// Longest startup-phase message the server accepts (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP: u32 = 10_000;

/// Frontend message types after startup.
pub const FRONTEND_TYPES: &[u8] = b"QPBEDCHSFXpdcf";
/// Backend message types.
pub const BACKEND_TYPES: &[u8] = b"RSKZTDCEN123nsItGHWdcAvV";

pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let x = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    let x = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([x[0], x[1]]))
}

/// A NUL-terminated string at `at`, and the index after its NUL.
pub fn cstr(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let n = rest.iter().position(|c| *c == 0)?;
    Some((rest.get(..n)?, at + n + 1))
}

/// A NUL-terminated string, or what there is of it in a cut payload.
pub fn cstr_lossy(b: &[u8], at: usize) -> &[u8] {
    let rest = b.get(at..).unwrap_or_default();
    let n = rest.iter().position(|c| *c == 0).unwrap_or(rest.len());
    rest.get(..n).unwrap_or_default()
}

/// `(length, code)` of an untyped startup-phase message: SSLRequest,
/// GSSENCRequest, CancelRequest or StartupMessage 3.x.
pub fn startup_header(b: &[u8]) -> Option<(u32, u32)> {
    let len = be32(b, 0)?;
    let code = be32(b, 4)?;
    let ok = match code {
        SSL_REQUEST | GSSENC_REQUEST => len == 8,
        CANCEL_REQUEST => len == 16,
        c if c >> 16 == 3 => (8..=MAX_STARTUP).contains(&len),
        _ => false,
    };
    ok.then_some((len, code))
}

/// Startup parameters (`user`, `database`, `application_name` ...).
pub fn startup_params(payload: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((k, next)) = cstr(payload, at) {
        if k.is_empty() {
            break;
        }
        let Some((v, after)) = cstr(payload, next) else { break };
        out.push((k.to_vec(), v.to_vec()));
        at = after;
    }
    out
}

/// Fields of an ErrorResponse or NoticeResponse, by their one-byte codes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgError {
    /// `S` (localized) and `V` (never localized, 9.6+).
    pub severity: Vec<u8>,
    /// `C`: the SQLSTATE.
    pub code: Vec<u8>,
    pub message: Vec<u8>,
    pub detail: Vec<u8>,
    pub hint: Vec<u8>,
    /// `P`: position in the query, as sent.
    pub position: Vec<u8>,
    pub routine: Vec<u8>,
}

pub fn error_fields(payload: &[u8], keep: usize) -> PgError {
    let mut e = PgError::default();
    let mut at = 0;
    let cut = |v: &[u8]| v.get(..keep.min(v.len())).unwrap_or_default().to_vec();
    while let Some(&code) = payload.get(at) {
        if code == 0 {
            break;
        }
        let v = cstr_lossy(payload, at + 1);
        match code {
            b'V' => e.severity = cut(v),
            b'S' if e.severity.is_empty() => e.severity = cut(v),
            b'C' => e.code = cut(v),
            b'M' => e.message = cut(v),
            b'D' => e.detail = cut(v),
            b'H' => e.hint = cut(v),
            b'P' => e.position = cut(v),
            b'R' => e.routine = cut(v),
            _ => {}
        }
        at += 1 + v.len() + 1;
    }
    e
}

/// The row count a command tag ends with (`INSERT 0 5`, `UPDATE 3`,
/// `SELECT 8`, `COPY 2` ...); `None` for tags without one (`BEGIN`).
pub fn tag_rows(tag: &[u8]) -> Option<u64> {
    let last = tag.rsplit(|c| *c == b' ').next()?;
    if last.is_empty() || !last.iter().all(u8::is_ascii_digit) || last.len() == tag.len() {
        return None;
    }
    std::str::from_utf8(last).ok()?.parse().ok()
}

/// The mechanism of a SASLInitialResponse (a `p` message shaped as a
/// mechanism name, then the length of the rest), told apart from a
/// password by its shape rather than by the server's request before it,
/// whose order relative to the client's message a capture may not keep.
pub fn sasl_initial(payload: &[u8]) -> Option<&[u8]> {
    let (name, next) = cstr(payload, 0)?;
    let len = be32(payload, next)?;
    let rest = payload.len().checked_sub(next + 4)?;
    let known = name.starts_with(b"SCRAM-") || name == b"OAUTHBEARER";
    (known && (len as usize == rest || len == u32::MAX)).then_some(name)
}

/// Name of an authentication request code (`AuthenticationXxx`).
pub fn auth_name(code: u32) -> &'static str {
    match code {
        0 => "Ok",
        2 => "KerberosV5",
        3 => "CleartextPassword",
        5 => "MD5Password",
        7 => "GSS",
        8 => "GSSContinue",
        9 => "SSPI",
        10 => "SASL",
        11 => "SASLContinue",
        12 => "SASLFinal",
        _ => "Unknown",
    }
}

/// Whether `b` starts a typed message of `types` with a sane length.
pub fn typed_plausible(b: &[u8], types: &[u8]) -> bool {
    let ty_ok = b.first().is_some_and(|t| types.contains(t));
    ty_ok && be32(b, 1).is_none_or(|len| (4..MAX_MESSAGE).contains(&len))
}

/// Content-based detection: a startup-phase message, or (mid-stream) a
/// simple query or Parse whose length matches a NUL-terminated text.
pub fn probe(b: &[u8], to_server: bool) -> Confidence {
    if !to_server {
        return Confidence::None;
    }
    if startup_header(b).is_some() {
        return Confidence::High;
    }
    match (b.first(), be32(b, 1)) {
        (Some(b'Q'), Some(len)) if (5..MAX_MESSAGE).contains(&len) => {
            let text = b.get(5..(len as usize + 1).min(b.len())).unwrap_or_default();
            let printable = text
                .iter()
                .take_while(|c| **c != 0)
                .all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace() || *c >= 0x80);
            let ends = b.get(len as usize) == Some(&0);
            if printable && ends && text.len() > 1 {
                Confidence::Medium
            } else {
                Confidence::None
            }
        }
        _ => Confidence::None,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A typed message: type byte, length, payload.
    pub fn msg(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(&(payload.len() as u32 + 4).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// A StartupMessage 3.0 with these parameters.
    pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = PROTOCOL_3.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
        v.extend_from_slice(&body);
        v
    }

    #[test]
    fn startup_phase_messages() {
        let s = startup(&[("user", "ju"), ("database", "db")]);
        assert_eq!(startup_header(&s), Some((s.len() as u32, PROTOCOL_3)));
        assert_eq!(
            startup_params(&s[8..]),
            vec![(b"user".to_vec(), b"ju".to_vec()), (b"database".to_vec(), b"db".to_vec())]
        );
        assert_eq!(startup_header(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), Some((8, SSL_REQUEST)));
        assert_eq!(startup_header(&[0, 0, 0, 9, 4, 0xd2, 0x16, 0x2f]), None);
        assert_eq!(startup_header(b"Q\0\0\0\x09"), None);
        assert_eq!(probe(&s, true), Confidence::High);
        assert_eq!(probe(&msg(b'Q', b"SELECT 1\0"), true), Confidence::Medium);
        assert_eq!(probe(&msg(b'Q', b"\x01\x02\0"), true), Confidence::None);
        assert_eq!(probe(b"GET / HTTP/1.1", true), Confidence::None);
    }

    #[test]
    fn error_fields_tags_and_strings() {
        let e = error_fields(
            b"SERROR\0VERROR\0C22012\0Mdivision by zero\0Fint.c\0L824\0Rint4div\0\0",
            64,
        );
        assert_eq!(
            (e.severity.as_slice(), e.code.as_slice(), e.message.as_slice(), e.routine.as_slice()),
            (&b"ERROR"[..], &b"22012"[..], &b"division by zero"[..], &b"int4div"[..])
        );
        // Cut mid-field: what is there is kept.
        let e = error_fields(b"SFATAL\0C28P01\0Mpassw", 64);
        assert_eq!((e.code.as_slice(), e.message.as_slice()), (&b"28P01"[..], &b"passw"[..]));
        assert_eq!(tag_rows(b"INSERT 0 5"), Some(5));
        assert_eq!(tag_rows(b"SELECT 8"), Some(8));
        assert_eq!(tag_rows(b"BEGIN"), None);
        assert_eq!(tag_rows(b"123"), None);
        assert_eq!(cstr(b"ab\0cd", 0), Some((&b"ab"[..], 3)));
        assert_eq!(cstr(b"ab", 0), None);
        assert_eq!(cstr_lossy(b"ab", 0), b"ab");
        assert!(typed_plausible(b"Z\0\0\0\x05I", BACKEND_TYPES));
        assert!(!typed_plausible(b"Z\xff\0\0\x05I", BACKEND_TYPES));
    }
}
