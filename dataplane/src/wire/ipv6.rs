//! IPv6 headers (RFC 8200) and the extension-header chain.

use super::{be16, be32, Field, IpProtocol, WireError};

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

pub const HEADER_LEN: usize = 40;

/// Extension headers walked before the upper layer. A chain longer than
/// this is treated as malformed: real traffic carries two or three, and an
/// attacker's long chain must not cost unbounded work per packet.
pub const MAX_EXTENSION_HEADERS: usize = 8;

#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        Ok(Self { buffer })
    }

    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }

    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::PAYLOAD_LEN.start))
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        a
    }

    pub fn dst_addr(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        a
    }

    /// Whether the payload length exceeds the bytes after the header.
    /// A zero payload length with a Hop-by-Hop header is a jumbogram
    /// (RFC 2675) and is measured by the buffer instead.
    pub fn length_exceeds(&self) -> bool {
        self.payload_len() > self.buffer.as_ref().len() - HEADER_LEN
    }

    /// Bytes after the fixed header, clipped to the payload length.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let len = self.payload_len();
        let end = if len == 0 { b.len() } else { (HEADER_LEN + len).min(b.len()) };
        &b[HEADER_LEN..end]
    }
}

/// What the extension-header walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header within the IPv6 payload.
    pub offset: usize,
    pub fragment: Option<Fragment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub ident: u32,
    /// Offset in bytes.
    pub offset: u16,
    pub more: bool,
}

/// Walks the extension headers of `payload` starting from `next_header`.
///
/// Hop-by-Hop, Routing, Destination Options, Mobility, HIP and Shim6 use
/// the generic `(next, len in 8-octet units beyond the first)` layout, AH
/// counts 4-octet units, the Fragment header is fixed at 8. ESP and "No
/// Next Header" end the walk: what follows is opaque.
pub fn walk_extensions(mut next_header: u8, payload: &[u8]) -> Result<UpperLayer, WireError> {
    let mut offset = 0usize;
    let mut fragment = None;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        match next_header {
            0 | 43 | 60 | 135 | 139 | 140 => {
                let h = payload.get(offset..offset + 2).ok_or(WireError::Truncated)?;
                next_header = h[0];
                offset += (usize::from(h[1]) + 1) * 8;
            }
            51 => {
                let h = payload.get(offset..offset + 2).ok_or(WireError::Truncated)?;
                next_header = h[0];
                offset += (usize::from(h[1]) + 2) * 4;
            }
            44 => {
                let h = payload.get(offset..offset + 8).ok_or(WireError::Truncated)?;
                next_header = h[0];
                let off_flags = be16(h, 2);
                fragment = Some(Fragment {
                    ident: be32(h, 4),
                    offset: off_flags & 0xfff8,
                    more: off_flags & 1 != 0,
                });
                offset += 8;
            }
            _ => {
                if offset > payload.len() {
                    return Err(WireError::Truncated);
                }
                return Ok(UpperLayer {
                    protocol: IpProtocol::from(next_header),
                    offset,
                    fragment,
                });
            }
        }
    }
    Err(WireError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload_len: u16) -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 1];
        b.extend_from_slice(&payload_len.to_be_bytes());
        b.push(next);
        b.push(64);
        b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        b
    }

    #[test]
    fn fixed_header() {
        let mut b = header(17, 8);
        b.extend_from_slice(&[0; 8]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.flow_label(), 1);
        assert_eq!(p.src_addr()[15], 1);
        assert_eq!(p.dst_addr()[15], 2);
        assert_eq!(p.payload().len(), 8);
        assert!(!p.length_exceeds());
        assert!(Packet::new_checked(&b[..39]).is_err());
    }

    #[test]
    fn walks_hop_by_hop_then_fragment_then_tcp() {
        let mut ext = vec![44, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop, 8 bytes, next = fragment
        ext.extend_from_slice(&[6, 0, 0x00, 0x11, 0xca, 0xfe, 0xba, 0xbe]); // offset 16, M=1
        ext.extend_from_slice(&[0; 20]);
        let up = walk_extensions(0, &ext).unwrap();
        assert_eq!(up.protocol, IpProtocol::Tcp);
        assert_eq!(up.offset, 16);
        assert_eq!(up.fragment, Some(Fragment { ident: 0xcafebabe, offset: 16, more: true }));
    }

    #[test]
    fn truncated_and_endless_chains() {
        assert_eq!(walk_extensions(0, &[6]), Err(WireError::Truncated));
        assert_eq!(walk_extensions(0, &[60, 4, 0, 0]), Err(WireError::Truncated));
        let looped = [0u8; 8 * 16]; // hop-by-hop pointing at hop-by-hop
        assert_eq!(walk_extensions(0, &looped), Err(WireError::Malformed));
    }

    #[test]
    fn authentication_header_counts_four_octet_units() {
        let mut ext = vec![17, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[0; 8]);
        let up = walk_extensions(51, &ext).unwrap();
        assert_eq!(up.protocol, IpProtocol::Udp);
        assert_eq!(up.offset, 24);
    }
}
