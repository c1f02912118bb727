//! Pure HTTP/2 framing (RFC 9113 §4) over byte slices: the connection
//! preface, the 9-byte frame header, per-type length and flag rules used to
//! recognise frames mid-connection, and gRPC's length-prefixed messages.

use crate::dissectors::Confidence;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// Largest frame payload a probe or resync believes in. SETTINGS may allow
/// up to 2^24-1; real peers rarely go past 1 MiB.
pub const PLAUSIBLE_FRAME: u32 = 1 << 20;

pub mod frame_type {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
}

pub fn frame_header(b: &[u8]) -> Option<FrameHeader> {
    let h = b.get(..HEADER_LEN)?;
    Some(FrameHeader {
        len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
        ty: h[3],
        flags: h[4],
        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
    })
}

/// Whether a frame header follows the rules of its type (defined flags
/// only, the right stream and length): used to recognise HTTP/2 without a
/// preface and to find frame boundaries again after lost data.
pub fn plausible(h: &FrameHeader) -> bool {
    use frame_type::*;
    if h.len > PLAUSIBLE_FRAME {
        return false;
    }
    let (allowed, on_stream, len_ok) = match h.ty {
        DATA => (0x09, true, true),
        HEADERS => (0x2d, true, h.len > 0),
        PRIORITY => (0x00, true, h.len == 5),
        RST_STREAM => (0x00, true, h.len == 4),
        SETTINGS => (0x01, false, h.len.is_multiple_of(6) && (h.flags & 1 == 0 || h.len == 0)),
        PUSH_PROMISE => (0x0c, true, h.len >= 4),
        PING => (0x01, false, h.len == 8),
        GOAWAY => (0x00, false, h.len >= 8),
        WINDOW_UPDATE => (0x00, h.stream != 0, h.len == 4),
        CONTINUATION => (0x04, true, true),
        _ => return false,
    };
    h.flags & !allowed == 0 && (h.stream != 0) == on_stream && len_ok
}

/// Content-based detection: the preface (or its beginning), else whole
/// plausible frames back to back (a connection picked up mid-way).
pub fn probe(b: &[u8]) -> Confidence {
    if b.len() >= 4 {
        let n = b.len().min(PREFACE.len());
        if b.get(..n) == PREFACE.get(..n) {
            return if n >= 16 { Confidence::High } else { Confidence::Medium };
        }
    }
    let mut pos = 0;
    let mut frames = 0;
    let mut headers = false;
    while let Some(h) = b.get(pos..).and_then(frame_header) {
        if !plausible(&h) {
            return Confidence::None;
        }
        frames += 1;
        headers |= h.ty == frame_type::HEADERS;
        pos += HEADER_LEN + h.len as usize;
        if pos >= b.len() {
            break;
        }
    }
    match (frames, pos == b.len()) {
        (0, _) => Confidence::None,
        // One frame exactly filling the segment: a HEADERS frame is a
        // start; anything else is too little to go on.
        (1, true) if headers => Confidence::Medium,
        (1, _) => Confidence::Low,
        (_, _) if pos >= b.len() || b.len() - pos < HEADER_LEN => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// Reason phrase of a status code (HTTP/2 sends none; `statusText` shows
/// the standard one).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Name of an RST_STREAM / GOAWAY error code.
pub fn error_code_name(code: u32) -> &'static str {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("UNKNOWN")
}

/// Counts gRPC length-prefixed messages (1-byte compressed flag, 4-byte
/// length) in a DATA stream that arrives in arbitrary pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcFramer {
    /// Prefix bytes of the next message read so far.
    prefix: [u8; 5],
    have: usize,
    /// Bytes left of the current message.
    remaining: u64,
    pub messages: u64,
    pub compressed: u64,
    /// Message bytes (prefixes excluded).
    pub bytes: u64,
}

impl GrpcFramer {
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(b.len() as u64);
                self.remaining -= n;
                self.bytes += n;
                b = b.get(n as usize..).unwrap_or_default();
                continue;
            }
            let take = (5 - self.have).min(b.len());
            if let (Some(dst), Some(src)) =
                (self.prefix.get_mut(self.have..self.have + take), b.get(..take))
            {
                dst.copy_from_slice(src);
            }
            self.have += take;
            b = b.get(take..).unwrap_or_default();
            if self.have == 5 {
                self.have = 0;
                self.messages += 1;
                self.compressed += u64::from(self.prefix[0] & 1);
                self.remaining = u64::from(u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]));
            }
        }
    }

    /// Lost bytes: the framing cannot be followed any more.
    pub fn lose(&mut self) {
        self.have = 0;
        self.remaining = u64::MAX;
    }

    /// Whether the stream ended between messages.
    pub fn aligned(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }
}

/// Name of a gRPC status code.
pub fn grpc_status_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("UNKNOWN")
}

/// `/package.Service/Method` → (`package.Service`, `Method`).
pub fn grpc_service_method(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let p = path.strip_prefix(b"/")?;
    let slash = p.iter().rposition(|c| *c == b'/')?;
    let (svc, m) = (p.get(..slash)?, p.get(slash + 1..)?);
    (!svc.is_empty() && !m.is_empty()).then_some((svc, m))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A frame: header then payload.
    pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn frame_headers_and_rules() {
        let f = frame(
            frame_type::HEADERS,
            flags::END_HEADERS | flags::END_STREAM,
            0x8000_0003,
            b"\x82",
        );
        assert_eq!(frame_header(&f), Some(FrameHeader { len: 1, ty: 1, flags: 5, stream: 3 }));
        assert!(plausible(&frame_header(&f).unwrap()));
        assert!(!plausible(&frame_header(&frame(frame_type::SETTINGS, 0, 1, &[])).unwrap()));
        assert!(!plausible(&frame_header(&frame(frame_type::PING, 0, 0, &[0; 4])).unwrap()));
        assert!(!plausible(&frame_header(&frame(frame_type::DATA, 0x40, 1, &[])).unwrap()));
        assert!(!plausible(&frame_header(&frame(12, 0, 1, &[])).unwrap()));
    }

    #[test]
    fn probes() {
        assert_eq!(probe(PREFACE), Confidence::High);
        assert_eq!(probe(b"PRI * HTTP/2.0\r\n\r\nSM"), Confidence::High);
        assert_eq!(probe(b"PRI *"), Confidence::Medium);
        let two =
            [frame(frame_type::SETTINGS, 1, 0, &[]), frame(frame_type::HEADERS, 4, 1, b"\x82\x86")]
                .concat();
        assert_eq!(probe(&two), Confidence::Medium);
        assert_eq!(probe(&two[..12]), Confidence::Low);
        assert_eq!(probe(&frame(frame_type::HEADERS, 4, 1, b"\x82\x86")), Confidence::Medium);
        assert_eq!(probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Confidence::None);
        assert_eq!(probe(b"*1\r\n$4\r\nPING\r\n"), Confidence::None);
    }

    #[test]
    fn grpc_framing_across_pieces() {
        let mut f = GrpcFramer::default();
        let msgs =
            [&[0u8, 0, 0, 0, 3, 1, 2, 3][..], &[1, 0, 0, 0, 0], &[0, 0, 0, 0, 2, 9, 9]].concat();
        for b in msgs.chunks(2) {
            f.feed(b);
        }
        assert_eq!((f.messages, f.compressed, f.bytes, f.aligned()), (3, 1, 5, true));
        f.feed(&[0, 0]);
        assert!(!f.aligned());
        assert_eq!(
            grpc_service_method(b"/hipstershop.CartService/GetCart"),
            Some((&b"hipstershop.CartService"[..], &b"GetCart"[..]))
        );
        assert_eq!(grpc_service_method(b"/nomethod"), None);
        assert_eq!(
            (grpc_status_name(0), grpc_status_name(14), grpc_status_name(99)),
            ("OK", "UNAVAILABLE", "UNKNOWN")
        );
    }
}
