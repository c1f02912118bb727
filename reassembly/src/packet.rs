//! The per-packet input the dataplane hands to the reassembler.
//!
//! Plain data with a borrowed payload: the dataplane parses L2–L4 headers and
//! fills a [`Packet`] per packet; nothing here depends on the dataplane crate.
//! Invariant: when [`Packet::fragment`] is `Some`, `payload` is the IP payload
//! of that fragment (the L4 header included in the first fragment) and the
//! port, flag and sequence fields are ignored, because only the reassembled
//! datagram can say what they are. Otherwise `payload` is the L4 payload.

/// TCP flag bits as they appear in byte 13 of the TCP header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// IP protocol numbers the reassembler acts on; others are counted and ignored.
pub mod ip_proto {
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// Fragment header fields of an IPv4 or IPv6 fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification (16 bits, widened) or IPv6 fragment identification.
    pub ident: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
}

/// One captured packet, as the dataplane parsed it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch. All reassembler time
    /// derives from these (virtual time): no wall clock is read.
    pub ts_ns: u64,
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub src_ip: [u8; 16],
    /// Destination address; IPv4 in the first 4 bytes, the rest zero.
    pub dst_ip: [u8; 16],
    /// Outermost VLAN id, 0 when untagged.
    pub vlan: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags (see [`tcp_flags`]); 0 for UDP.
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// L4 payload, or the IP payload of a fragment (see the module doc).
    pub payload: &'a [u8],
    pub fragment: Option<Fragment>,
    /// Length of the packet on the wire.
    pub wire_len: u32,
}

impl<'a> Packet<'a> {
    /// A TCP packet with IPv4 addresses; a convenience for tests and tools.
    #[allow(clippy::too_many_arguments)] // one per header field, in wire order
    pub fn tcp_v4(
        ts_ns: u64,
        src: [u8; 4],
        src_port: u16,
        dst: [u8; 4],
        dst_port: u16,
        tcp_flags: u8,
        seq: u32,
        ack: u32,
        payload: &'a [u8],
    ) -> Self {
        Packet {
            ts_ns,
            ip_version: 4,
            src_ip: v4(src),
            dst_ip: v4(dst),
            vlan: 0,
            protocol: ip_proto::TCP,
            src_port,
            dst_port,
            tcp_flags,
            seq,
            ack,
            payload,
            fragment: None,
            wire_len: 54 + payload.len() as u32,
        }
    }

    /// A UDP packet with IPv4 addresses; a convenience for tests and tools.
    pub fn udp_v4(
        ts_ns: u64,
        src: [u8; 4],
        src_port: u16,
        dst: [u8; 4],
        dst_port: u16,
        payload: &'a [u8],
    ) -> Self {
        Packet {
            ts_ns,
            ip_version: 4,
            src_ip: v4(src),
            dst_ip: v4(dst),
            vlan: 0,
            protocol: ip_proto::UDP,
            src_port,
            dst_port,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            payload,
            fragment: None,
            wire_len: 42 + payload.len() as u32,
        }
    }

    pub fn has_flag(&self, flag: u8) -> bool {
        self.tcp_flags & flag != 0
    }
}

/// Widens an IPv4 address into the 16-byte field layout of [`Packet`].
pub fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a);
    out
}

/// L4 header fields recovered from a reassembled datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct L4Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub header_len: usize,
}

/// Wire offsets of the L4 headers, smoltcp style: every access goes through
/// `get`, so a short datagram is an error, never a panic.
mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const TCP_SEQ: Range<usize> = 4..8;
    pub const TCP_ACK: Range<usize> = 8..12;
    pub const TCP_DATA_OFF: usize = 12;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_MIN_LEN: usize = 20;
    pub const UDP_LEN: usize = 8;
}

fn be16(b: &[u8], r: core::ops::Range<usize>) -> Option<u16> {
    let s = b.get(r)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn be32(b: &[u8], r: core::ops::Range<usize>) -> Option<u32> {
    let s: [u8; 4] = b.get(r)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

/// Parses the TCP or UDP header at the start of a reassembled datagram.
pub(crate) fn parse_l4(protocol: u8, d: &[u8]) -> Option<L4Repr> {
    match protocol {
        ip_proto::TCP => {
            if d.len() < field::TCP_MIN_LEN {
                return None;
            }
            let header_len = usize::from(*d.get(field::TCP_DATA_OFF)? >> 4) * 4;
            if header_len < field::TCP_MIN_LEN || header_len > d.len() {
                return None;
            }
            Some(L4Repr {
                src_port: be16(d, field::SRC_PORT)?,
                dst_port: be16(d, field::DST_PORT)?,
                seq: be32(d, field::TCP_SEQ)?,
                ack: be32(d, field::TCP_ACK)?,
                flags: *d.get(field::TCP_FLAGS)?,
                header_len,
            })
        }
        ip_proto::UDP => {
            if d.len() < field::UDP_LEN {
                return None;
            }
            Some(L4Repr {
                src_port: be16(d, field::SRC_PORT)?,
                dst_port: be16(d, field::DST_PORT)?,
                seq: 0,
                ack: 0,
                flags: 0,
                header_len: field::UDP_LEN,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_header() {
        let mut h = [0u8; 24];
        h[0..2].copy_from_slice(&80u16.to_be_bytes());
        h[2..4].copy_from_slice(&1234u16.to_be_bytes());
        h[4..8].copy_from_slice(&7u32.to_be_bytes());
        h[8..12].copy_from_slice(&9u32.to_be_bytes());
        h[12] = 6 << 4;
        h[13] = tcp_flags::ACK | tcp_flags::PSH;
        let r = parse_l4(ip_proto::TCP, &h).expect("valid header");
        assert_eq!((r.src_port, r.dst_port, r.seq, r.ack, r.header_len), (80, 1234, 7, 9, 24));
    }

    #[test]
    fn short_or_bad_headers_are_none() {
        assert_eq!(parse_l4(ip_proto::TCP, &[0u8; 19]), None);
        let mut h = [0u8; 20];
        h[12] = 15 << 4; // data offset past the end
        assert_eq!(parse_l4(ip_proto::TCP, &h), None);
        h[12] = 4 << 4; // data offset below the minimum
        assert_eq!(parse_l4(ip_proto::TCP, &h), None);
        assert_eq!(parse_l4(ip_proto::UDP, &[0u8; 7]), None);
        assert_eq!(parse_l4(1, &[0u8; 40]), None);
        assert!(parse_l4(ip_proto::UDP, &[0u8; 8]).is_some());
    }
}
