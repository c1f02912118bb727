//! Zero-copy views of the L2–L4 headers skua reads.
//!
//! Each header is a `Packet<T: AsRef<[u8]>>` over a borrowed buffer. Offsets
//! are named in a private `field` module; `new_checked` validates the length
//! once, and after that no accessor can panic. Protocol numbers are total
//! enums with an `Unknown(raw)` variant. Checksums are never validated:
//! captures taken with offloading carry bad ones on most packets.

pub mod ethernet;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod link;
pub mod mpls;
pub mod tcp;
pub mod udp;
pub mod vlan;

pub use ethernet::EtherType;
pub use ip::IpProtocol;
pub use link::LinkType;

/// A byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;

/// Why a header could not be viewed. Small and `Copy`: it is returned on
/// the per-packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header does.
    #[error("buffer shorter than the header")]
    Truncated,
    /// A length or version field contradicts the header's own rules.
    #[error("malformed header")]
    Malformed,
}

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
