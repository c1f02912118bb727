//! One pass over a frame's L2–L4 headers into a small, `Copy` summary.
//!
//! This is the only decoder on the per-packet path. It never allocates,
//! never panics (every header goes through its `new_checked`), and answers
//! a [`DropReason`] for anything it cannot decode. Checksums are not looked
//! at. IP fragments are marked, not reassembled.

use crate::counters::DropReason;
use crate::wire::{
    ethernet, ipv4, ipv6, link, mpls, tcp, udp, vlan, EtherType, IpProtocol, LinkType, WireError,
};

/// VLAN tags plus MPLS labels accepted in front of the IP header.
pub const MAX_TAGS: usize = 8;

/// An IPv4 address occupies the first 4 bytes; the rest are zero.
pub type Addr = [u8; 16];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub ident: u32,
    /// Offset of this fragment's data in the original datagram, in bytes.
    pub offset: u16,
    pub more: bool,
}

/// The decoded L2–L4 facts of one frame. Offsets index the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Outermost VLAN id (0 when untagged).
    pub vlan: u16,
    pub vlan_tags: u8,
    pub mpls_labels: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub src_ip: Addr,
    pub dst_ip: Addr,
    pub protocol: IpProtocol,
    /// TCP/UDP ports; ICMP type and code for ICMP; 0 otherwise.
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub l3_offset: u16,
    pub l4_offset: u16,
    /// Application payload (after the TCP/UDP header), clipped to the IP
    /// length and to the captured bytes.
    pub payload_offset: u32,
    pub payload_len: u32,
    pub fragment: Option<Fragment>,
    /// The capture cut this frame short (captured < wire length).
    pub snap_truncated: bool,
}

impl PacketMeta {
    /// Whether the L4 ports are known (TCP/UDP, not a non-first fragment).
    pub fn has_ports(&self) -> bool {
        matches!(self.protocol, IpProtocol::Tcp | IpProtocol::Udp)
            && self.fragment.is_none_or(|f| f.offset == 0)
    }

    pub fn src_addr(&self) -> std::net::IpAddr {
        to_ip(self.ip_version, &self.src_ip)
    }

    pub fn dst_addr(&self) -> std::net::IpAddr {
        to_ip(self.ip_version, &self.dst_ip)
    }

    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let start = self.payload_offset as usize;
        frame.get(start..start + self.payload_len as usize).unwrap_or(&[])
    }
}

fn to_ip(version: u8, a: &Addr) -> std::net::IpAddr {
    if version == 6 {
        std::net::IpAddr::from(*a)
    } else {
        std::net::IpAddr::from([a[0], a[1], a[2], a[3]])
    }
}

const EMPTY: PacketMeta = PacketMeta {
    vlan: 0,
    vlan_tags: 0,
    mpls_labels: 0,
    ip_version: 0,
    src_ip: [0; 16],
    dst_ip: [0; 16],
    protocol: IpProtocol::Unknown(0),
    src_port: 0,
    dst_port: 0,
    tcp_flags: 0,
    seq: 0,
    ack: 0,
    window: 0,
    l3_offset: 0,
    l4_offset: 0,
    payload_offset: 0,
    payload_len: 0,
    fragment: None,
    snap_truncated: false,
};

enum L3 {
    V4,
    V6,
    /// Decide by the first nibble (raw IP, MPLS payload).
    Sniff,
}

/// Decodes `frame` (the captured bytes) whose original length was `wire_len`.
#[inline]
pub fn parse(link: LinkType, frame: &[u8], wire_len: u32) -> Result<PacketMeta, DropReason> {
    if link == LinkType::Ethernet {
        if let Some(m) = fast_ipv4(frame, wire_len) {
            return Ok(m);
        }
    }
    parse_general(link, frame, wire_len)
}

/// The common case in one straight pass: untagged Ethernet, IPv4 without
/// options or fragmentation, a whole TCP or UDP header. Anything else (and
/// every malformed frame) returns `None` and takes the general path, which
/// gives the same answer for these frames; a property test holds the two
/// to that.
#[inline(always)]
fn fast_ipv4(frame: &[u8], wire_len: u32) -> Option<PacketMeta> {
    let h: &[u8; 34] = frame.get(..34)?.try_into().ok()?;
    if h[12] != 0x08 || h[13] != 0x00 || h[14] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let ip_avail = frame.len() - 14;
    let snap_truncated = (frame.len() as u64) < u64::from(wire_len);
    if total < 20 || (total > ip_avail && !snap_truncated) || (h[20] & 0x3f) | h[21] != 0 {
        return None;
    }
    let l4 = frame.get(34..14 + total.min(ip_avail))?;
    let mut m = EMPTY;
    m.snap_truncated = snap_truncated;
    m.ip_version = 4;
    m.src_ip[..4].copy_from_slice(&h[26..30]);
    m.dst_ip[..4].copy_from_slice(&h[30..34]);
    m.l3_offset = 14;
    m.l4_offset = 34;
    match h[23] {
        6 => {
            let t: &[u8; 20] = l4.get(..20)?.try_into().ok()?;
            let hl = usize::from(t[12] >> 4) * 4;
            if hl < 20 || l4.len() < hl {
                return None;
            }
            m.protocol = IpProtocol::Tcp;
            m.src_port = u16::from_be_bytes([t[0], t[1]]);
            m.dst_port = u16::from_be_bytes([t[2], t[3]]);
            m.seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
            m.ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
            m.tcp_flags = t[13] & 0x3f;
            m.window = u16::from_be_bytes([t[14], t[15]]);
            m.payload_offset = (34 + hl) as u32;
            m.payload_len = (l4.len() - hl) as u32;
        }
        17 => {
            let u: &[u8; 8] = l4.get(..8)?.try_into().ok()?;
            m.protocol = IpProtocol::Udp;
            m.src_port = u16::from_be_bytes([u[0], u[1]]);
            m.dst_port = u16::from_be_bytes([u[2], u[3]]);
            let ulen = usize::from(u16::from_be_bytes([u[4], u[5]]));
            let end = if (8..=l4.len()).contains(&ulen) { ulen } else { l4.len() };
            m.payload_offset = 42;
            m.payload_len = (end - 8) as u32;
        }
        _ => return None,
    }
    Some(m)
}

fn parse_general(link: LinkType, frame: &[u8], wire_len: u32) -> Result<PacketMeta, DropReason> {
    if frame.is_empty() {
        return Err(DropReason::EmptyFrame);
    }
    let mut m = EMPTY;
    m.snap_truncated = (frame.len() as u64) < u64::from(wire_len);

    let (mut off, l3) = match link {
        LinkType::Ethernet => {
            let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::TruncatedL2)?;
            l2_chain(&mut m, frame, ethernet::HEADER_LEN, eth.ethertype())?
        }
        LinkType::Unknown(_) => return Err(DropReason::UnknownLinkType),
        _ => match link::split(link, frame) {
            Ok((len, link::Next::Ip)) => (len, L3::Sniff),
            Ok((len, link::Next::Ipv4)) => (len, L3::V4),
            Ok((len, link::Next::Ipv6)) => (len, L3::V6),
            Ok((len, link::Next::EtherType(et))) => l2_chain(&mut m, frame, len, et)?,
            Ok((_, link::Next::OtherFamily(_))) => return Err(DropReason::UnknownEthertype),
            Err(_) => return Err(DropReason::TruncatedL2),
        },
    };

    let l3buf = frame.get(off..).unwrap_or(&[]);
    let l3 = match l3 {
        L3::Sniff => match l3buf.first().map(|b| b >> 4) {
            Some(4) => L3::V4,
            Some(6) => L3::V6,
            Some(_) => return Err(DropReason::BadIpHeader),
            None => return Err(DropReason::TruncatedIp),
        },
        other => other,
    };
    m.l3_offset = off as u16;

    // (upper-layer bytes, upper-layer offset in the frame)
    let (l4buf, l4off) = match l3 {
        L3::V4 => {
            let ip = ipv4::Packet::new_checked(l3buf).map_err(ip_error)?;
            if ip.length_check() == ipv4::LengthCheck::Exceeds && !m.snap_truncated {
                return Err(DropReason::IpLengthExceedsFrame);
            }
            m.ip_version = 4;
            m.src_ip[..4].copy_from_slice(&ip.src_addr());
            m.dst_ip[..4].copy_from_slice(&ip.dst_addr());
            m.protocol = ip.protocol();
            if ip.is_fragment() {
                m.fragment = Some(Fragment {
                    ident: u32::from(ip.ident()),
                    offset: ip.frag_offset(),
                    more: ip.more_frags(),
                });
            }
            let end = ip.total_len().min(l3buf.len());
            let payload = &l3buf[ip.header_len()..end];
            off += ip.header_len();
            (payload, off)
        }
        L3::V6 => {
            let ip = ipv6::Packet::new_checked(l3buf).map_err(ip_error)?;
            if ip.length_exceeds() && !m.snap_truncated {
                return Err(DropReason::IpLengthExceedsFrame);
            }
            m.ip_version = 6;
            m.src_ip = ip.src_addr();
            m.dst_ip = ip.dst_addr();
            let end = match ip.payload_len() {
                0 => l3buf.len(),
                n => (ipv6::HEADER_LEN + n).min(l3buf.len()),
            };
            let payload = &l3buf[ipv6::HEADER_LEN..end];
            let up = ipv6::walk_extensions(ip.next_header(), payload).map_err(|e| match e {
                WireError::Truncated if m.snap_truncated => DropReason::TruncatedIp,
                _ => DropReason::BadIpv6Extensions,
            })?;
            m.protocol = up.protocol;
            m.fragment =
                up.fragment.map(|f| Fragment { ident: f.ident, offset: f.offset, more: f.more });
            off += ipv6::HEADER_LEN + up.offset;
            (&payload[up.offset.min(payload.len())..], off)
        }
        L3::Sniff => return Err(DropReason::BadIpHeader),
    };
    m.l4_offset = l4off as u16;

    if m.fragment.is_some_and(|f| f.offset != 0) {
        // Only the first fragment carries the L4 header.
        m.payload_offset = l4off as u32;
        m.payload_len = l4buf.len() as u32;
        return Ok(m);
    }

    let header_len = match m.protocol {
        IpProtocol::Tcp => {
            let t = tcp::Packet::new_checked(l4buf).map_err(|e| match e {
                WireError::Truncated => DropReason::TruncatedL4,
                WireError::Malformed => DropReason::BadTcpHeader,
            })?;
            m.src_port = t.src_port();
            m.dst_port = t.dst_port();
            m.seq = t.seq_number();
            m.ack = t.ack_number();
            m.tcp_flags = t.flags();
            m.window = t.window_len();
            t.header_len()
        }
        IpProtocol::Udp => {
            let u = udp::Packet::new_checked(l4buf).map_err(|_| DropReason::TruncatedL4)?;
            m.src_port = u.src_port();
            m.dst_port = u.dst_port();
            let payload = u.payload();
            m.payload_offset = (l4off + udp::HEADER_LEN) as u32;
            m.payload_len = payload.len() as u32;
            return Ok(m);
        }
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            let (t, c) = udp::icmp_type_code(l4buf).map_err(|_| DropReason::TruncatedL4)?;
            m.src_port = u16::from(t);
            m.dst_port = u16::from(c);
            0
        }
        _ => 0,
    };
    m.payload_offset = (l4off + header_len) as u32;
    m.payload_len = (l4buf.len() - header_len.min(l4buf.len())) as u32;
    Ok(m)
}

fn ip_error(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::TruncatedIp,
        WireError::Malformed => DropReason::BadIpHeader,
    }
}

/// Walks VLAN tags and MPLS labels from `et` at `off` to the IP header.
fn l2_chain(
    m: &mut PacketMeta,
    frame: &[u8],
    mut off: usize,
    mut et: EtherType,
) -> Result<(usize, L3), DropReason> {
    for _ in 0..=MAX_TAGS {
        match et {
            EtherType::Ipv4 => return Ok((off, L3::V4)),
            EtherType::Ipv6 => return Ok((off, L3::V6)),
            EtherType::Vlan | EtherType::QinQ => {
                let tag = vlan::Packet::new_checked(frame.get(off..).unwrap_or(&[]))
                    .map_err(|_| DropReason::TruncatedL2)?;
                if m.vlan_tags == 0 {
                    m.vlan = tag.vid();
                }
                m.vlan_tags += 1;
                et = tag.ethertype();
                off += vlan::HEADER_LEN;
            }
            EtherType::MplsUnicast | EtherType::MplsMulticast => {
                for _ in 0..MAX_TAGS {
                    let e = mpls::Entry::parse(frame.get(off..).unwrap_or(&[]))
                        .map_err(|_| DropReason::TruncatedL2)?;
                    m.mpls_labels += 1;
                    off += mpls::ENTRY_LEN;
                    if e.bottom_of_stack {
                        // No next-protocol field: the payload's first nibble tells.
                        return Ok((off, L3::Sniff));
                    }
                }
                return Err(DropReason::TooManyTags);
            }
            EtherType::Arp | EtherType::Lldp => return Err(DropReason::NonIp),
            EtherType::Unknown(_) => return Err(DropReason::UnknownEthertype),
        }
    }
    Err(DropReason::TooManyTags)
}

#[cfg(test)]
mod tests;
