//! Capture link types (the pcap `LINKTYPE_*` registry) and their headers.

use super::{be16, EtherType, WireError};

/// The link layer a frame starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// IEEE 802.3 Ethernet (`LINKTYPE_ETHERNET`, 1).
    Ethernet,
    /// BSD loopback: a 4-byte address family in the capturing host's byte
    /// order (`LINKTYPE_NULL`, 0).
    Null,
    /// OpenBSD loopback: the same family in network byte order
    /// (`LINKTYPE_LOOP`, 108).
    Loop,
    /// Raw IP, version taken from the first nibble (`LINKTYPE_RAW`, 101,
    /// and the historic DLT values 12 and 14).
    RawIp,
    /// Raw IPv4 only (`LINKTYPE_IPV4`, 228).
    Ipv4,
    /// Raw IPv6 only (`LINKTYPE_IPV6`, 229).
    Ipv6,
    /// Linux "cooked" capture v1, 16-byte header (`LINKTYPE_LINUX_SLL`, 113).
    LinuxSll,
    /// Linux "cooked" capture v2, 20-byte header (`LINKTYPE_LINUX_SLL2`, 276).
    LinuxSll2,
    /// Anything else; frames of it are counted and skipped.
    Unknown(u32),
}

impl LinkType {
    pub fn from_pcap(raw: u32) -> Self {
        match raw {
            1 => Self::Ethernet,
            0 => Self::Null,
            108 => Self::Loop,
            101 | 12 | 14 => Self::RawIp,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            other => Self::Unknown(other),
        }
    }

    pub fn to_pcap(self) -> u32 {
        match self {
            Self::Ethernet => 1,
            Self::Null => 0,
            Self::Loop => 108,
            Self::RawIp => 101,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::Unknown(raw) => raw,
        }
    }
}

/// What follows a link header that is not Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Dispatch on an Ethertype (SLL, SLL2).
    EtherType(EtherType),
    /// IPv4 or IPv6, decided by the first nibble.
    Ip,
    Ipv4,
    Ipv6,
    /// A loopback address family that is not IP.
    OtherFamily(u32),
}

/// BSD `AF_INET` is 2 everywhere; `AF_INET6` differs per OS (24 NetBSD and
/// OpenBSD, 28 FreeBSD, 30 Darwin, 10 Linux).
fn family(af: u32) -> Next {
    match af {
        2 => Next::Ipv4,
        10 | 24 | 28 | 30 => Next::Ipv6,
        other => Next::OtherFamily(other),
    }
}

/// Splits a non-Ethernet link header: `(header length, what follows)`.
///
/// For `LINKTYPE_NULL` the family is in the capturing host's byte order;
/// a value above 0xffff can only be the other order, so both are accepted.
pub fn split(link: LinkType, frame: &[u8]) -> Result<(usize, Next), WireError> {
    match link {
        LinkType::RawIp => Ok((0, Next::Ip)),
        LinkType::Ipv4 => Ok((0, Next::Ipv4)),
        LinkType::Ipv6 => Ok((0, Next::Ipv6)),
        LinkType::Null | LinkType::Loop => {
            let b: [u8; 4] = frame
                .get(..4)
                .ok_or(WireError::Truncated)?
                .try_into()
                .map_err(|_| WireError::Truncated)?;
            let af = if link == LinkType::Loop {
                u32::from_be_bytes(b)
            } else {
                let le = u32::from_le_bytes(b);
                if le > 0xffff {
                    u32::from_be_bytes(b)
                } else {
                    le
                }
            };
            Ok((4, family(af)))
        }
        LinkType::LinuxSll => {
            if frame.len() < 16 {
                return Err(WireError::Truncated);
            }
            Ok((16, Next::EtherType(EtherType::from(be16(frame, 14)))))
        }
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(WireError::Truncated);
            }
            Ok((20, Next::EtherType(EtherType::from(be16(frame, 0)))))
        }
        LinkType::Ethernet | LinkType::Unknown(_) => Err(WireError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_family_in_either_byte_order() {
        assert_eq!(split(LinkType::Null, &[2, 0, 0, 0, 0x45]).unwrap(), (4, Next::Ipv4));
        assert_eq!(split(LinkType::Null, &[0, 0, 0, 2]).unwrap(), (4, Next::Ipv4));
        assert_eq!(split(LinkType::Null, &[30, 0, 0, 0]).unwrap(), (4, Next::Ipv6));
        assert_eq!(split(LinkType::Loop, &[0, 0, 0, 24]).unwrap(), (4, Next::Ipv6));
        assert_eq!(split(LinkType::Null, &[7, 0, 0, 0]).unwrap(), (4, Next::OtherFamily(7)));
        assert_eq!(split(LinkType::Null, &[2, 0]), Err(WireError::Truncated));
    }

    #[test]
    fn cooked_headers() {
        let mut sll = [0u8; 16];
        sll[14] = 0x86;
        sll[15] = 0xdd;
        assert_eq!(
            split(LinkType::LinuxSll, &sll).unwrap(),
            (16, Next::EtherType(EtherType::Ipv6))
        );
        let mut sll2 = [0u8; 20];
        sll2[0] = 0x08;
        assert_eq!(
            split(LinkType::LinuxSll2, &sll2).unwrap(),
            (20, Next::EtherType(EtherType::Ipv4))
        );
        assert_eq!(split(LinkType::LinuxSll2, &sll2[..19]), Err(WireError::Truncated));
    }

    #[test]
    fn pcap_numbers_round_trip() {
        for raw in [0u32, 1, 101, 108, 113, 228, 229, 276, 9999] {
            assert_eq!(LinkType::from_pcap(raw).to_pcap(), raw);
        }
        assert_eq!(LinkType::from_pcap(12), LinkType::RawIp);
    }
}
