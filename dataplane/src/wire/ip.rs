//! IP protocol numbers.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Icmpv6,
    Gre,
    Sctp,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(raw: u8) -> Self {
        match raw {
            1 => Self::Icmp,
            6 => Self::Tcp,
            17 => Self::Udp,
            58 => Self::Icmpv6,
            47 => Self::Gre,
            132 => Self::Sctp,
            other => Self::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Gre => 47,
            IpProtocol::Sctp => 132,
            IpProtocol::Unknown(raw) => raw,
        }
    }
}

impl IpProtocol {
    /// The lower-case name agents see in `info.protocol`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Icmp => "icmp",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmpv6 => "icmpv6",
            Self::Gre => "gre",
            Self::Sctp => "sctp",
            Self::Unknown(_) => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_number() {
        for raw in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(raw)), raw);
        }
    }
}
