//! `PacketInfo`: what `onPacketCaptured(info)` sees of one packet. A small
//! `Copy` value the capture core fills from its L2–L4 parse; it travels on
//! the packet rings and becomes a lazy JS object only in the runtime.

use std::net::{IpAddr, Ipv4Addr};

/// Transport (or network) protocol of a packet, as `info.protocol` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacketProtocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    Gre,
    Esp,
    /// Another IP protocol number.
    Ip(u8),
    Arp,
    /// Not IP nor ARP (the ethertype is not kept).
    #[default]
    Other,
}

impl PacketProtocol {
    /// From the IP protocol number (IPv4 `protocol`, IPv6 next header).
    pub fn from_ip_proto(p: u8) -> Self {
        match p {
            6 => PacketProtocol::Tcp,
            17 => PacketProtocol::Udp,
            1 => PacketProtocol::Icmp,
            58 => PacketProtocol::Icmpv6,
            132 => PacketProtocol::Sctp,
            47 => PacketProtocol::Gre,
            50 => PacketProtocol::Esp,
            n => PacketProtocol::Ip(n),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PacketProtocol::Tcp => "tcp",
            PacketProtocol::Udp => "udp",
            PacketProtocol::Icmp => "icmp",
            PacketProtocol::Icmpv6 => "icmpv6",
            PacketProtocol::Sctp => "sctp",
            PacketProtocol::Gre => "gre",
            PacketProtocol::Esp => "esp",
            PacketProtocol::Ip(_) => "ip",
            PacketProtocol::Arp => "arp",
            PacketProtocol::Other => "other",
        }
    }
}

/// One captured packet, as `AGENTS_API.md` describes `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Capture time, ns since the epoch (`info.timestamp` is in ms).
    pub ts_ns: u64,
    /// Bytes captured (`captureLength`).
    pub capture_length: u32,
    /// Bytes on the wire (`length`).
    pub length: u32,
    /// Captured shorter than on the wire.
    pub truncated: bool,
    /// An IP fragment.
    pub fragmented: bool,
    /// `0.0.0.0` for a packet that is not IP.
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// 0 when the protocol has no ports.
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: PacketProtocol,
    /// Outer VLAN id; `info.vlan` is `null` without a tag.
    pub vlan: Option<u16>,
    /// Capture core that saw the packet.
    pub core: u16,
}

impl Default for PacketInfo {
    fn default() -> Self {
        PacketInfo {
            ts_ns: 0,
            capture_length: 0,
            length: 0,
            truncated: false,
            fragmented: false,
            src_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            protocol: PacketProtocol::Other,
            vlan: None,
            core: 0,
        }
    }
}

impl PacketInfo {
    /// `info.timestamp`: milliseconds since the epoch, whole like the
    /// item's `timestamp`.
    pub fn timestamp_ms(&self) -> u64 {
        self.ts_ns / 1_000_000
    }

    /// The `info` object as JSON (for transcripts and tests; the runtime
    /// builds the JS object lazily instead).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "timestamp": self.timestamp_ms(),
            "captureLength": self.capture_length,
            "length": self.length,
            "truncated": self.truncated,
            "fragmented": self.fragmented,
            "srcIp": self.src_ip.to_string(),
            "dstIp": self.dst_ip.to_string(),
            "srcPort": self.src_port,
            "dstPort": self.dst_port,
            "protocol": self.protocol.as_str(),
            "vlan": self.vlan,
            "core": self.core,
        })
    }
}
