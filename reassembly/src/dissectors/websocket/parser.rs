//! WebSocket frames (RFC 6455 §5.2): pure readers of byte slices.
//!
//! Written by hand rather than with `tungstenite` or `websocket-codec`:
//! those are endpoints (they own the socket, insist on whole frames in
//! memory and answer protocol errors by closing), while a passive reader
//! must take a frame's header, then stream its payload past a bounded
//! buffer, and keep going after an anomaly. The header is 2–14 bytes.

use super::Error;
use crate::dissectors::Confidence;

pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The name of an opcode in items (`text`, `binary`, `close`, `ping`,
/// `pong`, `continuation`; a reserved one as `reserved_<n>`).
pub fn opcode_name(op: u8) -> &'static str {
    const RESERVED: [&str; 16] = [
        "continuation",
        "text",
        "binary",
        "reserved_3",
        "reserved_4",
        "reserved_5",
        "reserved_6",
        "reserved_7",
        "close",
        "ping",
        "pong",
        "reserved_11",
        "reserved_12",
        "reserved_13",
        "reserved_14",
        "reserved_15",
    ];
    RESERVED.get(usize::from(op & 0xf)).copied().unwrap_or("reserved")
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 4: a compressed message
    /// under permessage-deflate).
    pub rsv: u8,
    pub opcode: u8,
    /// The masking key (client frames carry one), big-endian as sent.
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    /// Bytes of the header (2 to 14).
    pub head_len: usize,
}

impl FrameHead {
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }

    /// The masking key as the number Suricata logs.
    pub fn mask_u32(&self) -> Option<u32> {
        self.mask.map(u32::from_be_bytes)
    }
}

/// Reads a frame header from `b`: `Ok(None)` when more bytes are needed,
/// an error when the header breaks §5.2 (a reserved opcode, a 64-bit
/// length with its top bit set, a control frame that is fragmented or
/// longer than 125 bytes).
pub fn frame_head(b: &[u8]) -> Result<Option<FrameHead>, Error> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else { return Ok(None) };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x7;
    let opcode = b0 & 0x0f;
    if matches!(opcode, 0x3..=0x7 | 0xB..=0xF) {
        return Err(Error::Opcode);
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => match b.get(2..4) {
            Some(l) => (u64::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => match b.get(2..10).and_then(|l| <[u8; 8]>::try_from(l).ok()) {
            Some(l) => {
                let n = u64::from_be_bytes(l);
                if n >> 63 != 0 {
                    return Err(Error::Length);
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let Some(k) = b.get(at..at + 4).and_then(|k| <[u8; 4]>::try_from(k).ok()) else {
            return Ok(None);
        };
        at += 4;
        Some(k)
    } else {
        None
    };
    let head = FrameHead { fin, rsv, opcode, mask, len, head_len: at };
    if head.is_control() && (!fin || len > 125) {
        return Err(Error::Control);
    }
    Ok(Some(head))
}

/// Unmasks `data` in place; `offset` is the position of `data[0]` in the
/// frame's payload (the key repeats every four bytes).
pub fn unmask(data: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, c) in data.iter_mut().enumerate() {
        *c ^= key[((offset + i as u64) % 4) as usize];
    }
}

/// A close frame's payload: (status code, reason). A one-byte payload is
/// malformed; codes 0–999, 1004–1006, 1015 and 1016–2999 are not to be
/// sent (§7.4.1, the IANA registry) and are reported as `Error::CloseCode`.
pub fn close_payload(p: &[u8]) -> Result<(Option<u16>, &[u8]), Error> {
    match p {
        [] => Ok((None, &[])),
        [_] => Err(Error::Close),
        [a, b, rest @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if valid {
                Ok((Some(code), rest))
            } else {
                Err(Error::CloseCode)
            }
        }
    }
}

/// The name of a close code (RFC 6455 §7.4.1 and the IANA registry).
pub fn close_code_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "normal_closure",
        1001 => "going_away",
        1002 => "protocol_error",
        1003 => "unsupported_data",
        1005 => "no_status_received",
        1006 => "abnormal_closure",
        1007 => "invalid_payload",
        1008 => "policy_violation",
        1009 => "message_too_big",
        1010 => "mandatory_extension",
        1011 => "internal_error",
        1012 => "service_restart",
        1013 => "try_again_later",
        1014 => "bad_gateway",
        1015 => "tls_handshake",
        3000..=3999 => "registered",
        4000..=4999 => "private",
        _ => return None,
    })
}

/// Content-based detection of a WebSocket connection picked up after its
/// handshake: one whole frame that ends exactly where the bytes do (a
/// message per segment is how endpoints write), a data or close opcode,
/// no reserved bits but RSV1, masked from the client and unmasked from the
/// server (§5.1), and a text frame's payload valid UTF-8. Anything short of
/// that is `None`: a frame header is two bytes, so a looser probe would
/// claim other protocols' flows.
pub fn probe(b: &[u8], from_client: bool) -> Confidence {
    let Ok(Some(h)) = frame_head(b) else { return Confidence::None };
    let exact = (b.len() - h.head_len) as u64 == h.len;
    let first = matches!(h.opcode, opcode::TEXT | opcode::BINARY | opcode::CLOSE);
    if !exact || !first || h.rsv & 0x3 != 0 || h.mask.is_some() != from_client || h.len == 0 {
        return Confidence::None;
    }
    if h.opcode == opcode::TEXT && h.rsv == 0 {
        let mut p = b.get(h.head_len..).unwrap_or_default().to_vec();
        if let Some(k) = h.mask {
            unmask(&mut p, k, 0);
        }
        if std::str::from_utf8(&p).is_err() {
            return Confidence::None;
        }
    }
    Confidence::Medium
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_length_form() {
        let h = frame_head(b"\x81\x05hello").unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.len, h.head_len, h.mask), (true, 1, 5, 2, None));
        let h = frame_head(b"\x82\xfe\x01\x00abcd").unwrap().unwrap();
        assert_eq!((h.len, h.head_len, h.mask_u32()), (256, 8, Some(0x6162_6364)));
        let h = frame_head(b"\x02\x7f\0\0\0\0\0\x01\0\0").unwrap().unwrap();
        assert_eq!((h.fin, h.len, h.head_len), (false, 65536, 10));
        // Cut anywhere in the header: more bytes are needed.
        for cut in 0..10 {
            assert_eq!(frame_head(&b"\x02\x7f\0\0\0\0\0\x01\0\0"[..cut]), Ok(None));
        }
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert_eq!(frame_head(b"\x83\x00"), Err(Error::Opcode));
        assert_eq!(frame_head(b"\x8f\x00"), Err(Error::Opcode));
        assert_eq!(frame_head(b"\x82\x7f\x80\0\0\0\0\0\0\0"), Err(Error::Length));
        // A fragmented ping, a 126-byte close.
        assert_eq!(frame_head(b"\x09\x00"), Err(Error::Control));
        assert_eq!(frame_head(b"\x88\x7e\x00\x7e"), Err(Error::Control));
    }

    #[test]
    fn unmasking_follows_the_offset() {
        let key = [1, 2, 3, 4];
        let mut whole = *b"abcdefg";
        unmask(&mut whole, key, 0);
        let mut parts = *b"abcdefg";
        let (a, b) = parts.split_at_mut(3);
        unmask(a, key, 0);
        unmask(b, key, 3);
        assert_eq!(whole, parts);
        unmask(&mut whole, key, 0);
        assert_eq!(&whole, b"abcdefg");
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_payload(b""), Ok((None, &b""[..])));
        assert_eq!(close_payload(b"\x03\xe8bye"), Ok((Some(1000), &b"bye"[..])));
        assert_eq!(close_payload(b"\x03"), Err(Error::Close));
        assert_eq!(close_payload(b"\x03\xed"), Err(Error::CloseCode)); // 1005
        assert_eq!(close_payload(b"\x00\x01"), Err(Error::CloseCode));
        assert_eq!(close_code_name(1001), Some("going_away"));
    }

    #[test]
    fn probe_wants_one_whole_frame_masked_from_the_client() {
        let mut f = b"\x81\x85abcd".to_vec();
        let mut p = b"hello".to_vec();
        unmask(&mut p, *b"abcd", 0);
        f.extend(&p);
        assert_eq!(probe(&f, true), Confidence::Medium);
        assert_eq!(probe(&f, false), Confidence::None);
        assert_eq!(probe(b"\x81\x05hello", false), Confidence::Medium);
        assert_eq!(probe(b"\x81\x05hell", false), Confidence::None);
        assert_eq!(probe(b"\x81\x02\xff\xfe", false), Confidence::None);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n", true), Confidence::None);
        assert_eq!(probe(b"\x16\x03\x01\x00\x05hello", true), Confidence::None);
    }
}
