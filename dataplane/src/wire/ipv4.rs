//! IPv4 headers (RFC 791), options included.

use super::{be16, Field, IpProtocol, WireError};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

pub const MIN_HEADER_LEN: usize = 20;

/// A view of an IPv4 header whose version, header length and total length
/// have been checked against each other and against the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// How an IPv4 header's total length relates to the bytes captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthCheck {
    /// Total length fits in the buffer (trailing link padding is allowed).
    Fits,
    /// Total length exceeds the buffer.
    Exceeds,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks version 4, IHL ≥ 5, the header inside the buffer and
    /// total length ≥ IHL. The total length may exceed the buffer (a
    /// snaplen-truncated capture); [`Packet::length_check`] tells.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let ihl = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if b[field::VER_IHL] >> 4 != 4 || ihl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if b.len() < ihl {
            return Err(WireError::Truncated);
        }
        if usize::from(be16(b, field::TOTAL_LEN.start)) < ihl {
            return Err(WireError::Malformed);
        }
        Ok(Self { buffer })
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::TOTAL_LEN.start))
    }

    pub fn length_check(&self) -> LengthCheck {
        if self.total_len() <= self.buffer.as_ref().len() {
            LengthCheck::Fits
        } else {
            LengthCheck::Exceeds
        }
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x4000 != 0
    }

    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x1fff) << 3
    }

    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x3fff != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    pub fn src_addr(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[12], b[13], b[14], b[15]]
    }

    pub fn dst_addr(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[16], b[17], b[18], b[19]]
    }

    /// The options between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload, clipped to the total length and to the buffer.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = self.total_len().min(b.len());
        &b[self.header_len()..end]
    }
}

#[allow(dead_code)]
const _: (Field, Field) = (field::SRC_ADDR, field::DST_ADDR);

#[cfg(test)]
mod tests {
    use super::*;

    // 24-byte header with one 4-byte option (router alert), 4 bytes payload.
    const WITH_OPTIONS: [u8; 28] = [
        0x46, 0x00, 0x00, 28, 0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x94,
        0x04, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn parses_options_and_payload() {
        let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 0, 0, 2]);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.length_check(), LengthCheck::Fits);
    }

    #[test]
    fn trailing_padding_is_clipped() {
        let mut padded = WITH_OPTIONS.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn lying_total_length_is_detected() {
        let mut b = WITH_OPTIONS;
        b[3] = 200;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.length_check(), LengthCheck::Exceeds);
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn rejects_bad_headers() {
        let mut b = WITH_OPTIONS;
        b[0] = 0x44; // IHL 4
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::Malformed);
        b[0] = 0x65; // version 6
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::Malformed);
        b[0] = 0x4f; // IHL 60 > buffer
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::Truncated);
        let mut b = WITH_OPTIONS;
        b[3] = 10; // total < header
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::Malformed);
        assert_eq!(Packet::new_checked(&WITH_OPTIONS[..19]).unwrap_err(), WireError::Truncated);
    }

    #[test]
    fn fragment_fields() {
        let mut b = WITH_OPTIONS;
        b[6] = 0x20; // MF
        b[7] = 0x03; // offset 3*8
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_fragment());
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 24);
        assert_eq!(p.ident(), 0x1234);
    }
}
