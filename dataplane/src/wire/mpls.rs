//! MPLS label stack entries (RFC 3032), 4 bytes each.

use super::{be32, WireError};

pub const ENTRY_LEN: usize = 4;

/// One label stack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub label: u32,
    pub traffic_class: u8,
    pub bottom_of_stack: bool,
    pub ttl: u8,
}

impl Entry {
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        if buf.len() < ENTRY_LEN {
            return Err(WireError::Truncated);
        }
        let raw = be32(buf, 0);
        Ok(Self {
            label: raw >> 12,
            traffic_class: ((raw >> 9) & 0x7) as u8,
            bottom_of_stack: raw & 0x100 != 0,
            ttl: raw as u8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entry() {
        // label 16, tc 0, bos, ttl 64
        let e = Entry::parse(&[0x00, 0x01, 0x01, 0x40]).unwrap();
        assert_eq!(e, Entry { label: 16, traffic_class: 0, bottom_of_stack: true, ttl: 64 });
        let e = Entry::parse(&[0xff, 0xff, 0xfe, 0x01]).unwrap();
        assert_eq!(e.label, 0xfffff);
        assert!(!e.bottom_of_stack);
        assert_eq!(Entry::parse(&[0, 0, 1]), Err(WireError::Truncated));
    }
}
