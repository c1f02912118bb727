//! UDP headers (RFC 768) and the 4-byte ICMP/ICMPv6 type/code prefix.

use super::{be16, Field, WireError};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
}

pub const HEADER_LEN: usize = 8;

#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    pub fn len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::LENGTH.start))
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }

    /// The payload, clipped to the UDP length when that is plausible
    /// (≥ 8); a zero length (IPv6 jumbograms) or a lying one falls back to
    /// what the IP layer delivered.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let len = self.len();
        let end = if len >= HEADER_LEN && len <= b.len() { len } else { b.len() };
        &b[HEADER_LEN..end]
    }
}

/// ICMP and ICMPv6 share a `type, code` prefix; that is all the dataplane reads.
pub fn icmp_type_code(buf: &[u8]) -> Result<(u8, u8), WireError> {
    match buf {
        [t, c, ..] => Ok((*t, *c)),
        _ => Err(WireError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_clips() {
        let b = [0x00, 0x35, 0xc0, 0x00, 0x00, 0x0a, 0, 0, b'a', b'b', 0, 0];
        let u = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(u.src_port(), 53);
        assert_eq!(u.dst_port(), 49152);
        assert_eq!(u.payload(), b"ab");
        let mut lying = b;
        lying[5] = 200;
        assert_eq!(Packet::new_checked(&lying[..]).unwrap().payload().len(), 4);
        assert!(Packet::new_checked(&b[..7]).is_err());
    }

    #[test]
    fn icmp_prefix() {
        assert_eq!(icmp_type_code(&[8, 0, 1, 2]).unwrap(), (8, 0));
        assert!(icmp_type_code(&[8]).is_err());
    }
}
