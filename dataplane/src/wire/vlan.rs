//! IEEE 802.1Q / 802.1ad tags: the 4 bytes after a tag Ethertype.

use super::{be16, EtherType, Field, WireError};

mod field {
    use super::Field;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
}

pub const HEADER_LEN: usize = 4;

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

    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TCI.start) & 0x0fff
    }

    /// Priority code point (3 bits).
    pub fn pcp(&self) -> u8 {
        (self.buffer.as_ref()[field::TCI.start] >> 5) & 0x7
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tag() {
        let p = Packet::new_checked(&[0xa0, 0x64, 0x86, 0xdd][..]).unwrap();
        assert_eq!(p.vid(), 100);
        assert_eq!(p.pcp(), 5);
        assert_eq!(p.ethertype(), EtherType::Ipv6);
        assert!(Packet::new_checked(&[0, 1, 8][..]).is_err());
    }
}
