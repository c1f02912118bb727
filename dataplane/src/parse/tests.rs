use super::*;
use crate::synth::{self, ethernet, ipv4, ipv6, tcp, udp};

const A: [u8; 4] = [192, 0, 2, 1];
const B: [u8; 4] = [198, 51, 100, 7];

fn eth(frame: &[u8]) -> Result<PacketMeta, DropReason> {
    parse(LinkType::Ethernet, frame, frame.len() as u32)
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = synth::tcp4(A, B, 40000, 80, 7, 9, 0x18, b"GET / HTTP/1.1\r\n\r\n");
    let m = eth(&f).unwrap();
    assert_eq!(m.ip_version, 4);
    assert_eq!(m.src_addr().to_string(), "192.0.2.1");
    assert_eq!(m.dst_addr().to_string(), "198.51.100.7");
    assert_eq!((m.protocol, m.src_port, m.dst_port), (IpProtocol::Tcp, 40000, 80));
    assert_eq!((m.seq, m.ack, m.tcp_flags), (7, 9, 0x18));
    assert_eq!((m.l3_offset, m.l4_offset), (14, 34));
    assert_eq!(m.payload(&f), b"GET / HTTP/1.1\r\n\r\n");
    assert!(!m.snap_truncated && m.fragment.is_none());
}

#[test]
fn vlan_and_qinq() {
    let inner = synth::udp4(A, B, 5353, 53, b"q");
    let one = synth::tag(&inner, 0x8100, 100);
    let m = eth(&one).unwrap();
    assert_eq!((m.vlan, m.vlan_tags, m.l3_offset), (100, 1, 18));
    let two = synth::tag(&one, 0x88a8, 7);
    let m = eth(&two).unwrap();
    assert_eq!((m.vlan, m.vlan_tags, m.l3_offset), (7, 2, 22));
    assert_eq!(m.payload(&two), b"q");
}

#[test]
fn mpls_stack() {
    let ip = ipv4(A, B, 17, &udp(1, 2, b"x"));
    let mut payload = vec![0x00, 0x01, 0x00, 0x40]; // label 16, not bottom
    payload.extend_from_slice(&[0x00, 0x02, 0x01, 0x40]); // label 32, bottom
    payload.extend_from_slice(&ip);
    let f = ethernet(0x8847, &payload);
    let m = eth(&f).unwrap();
    assert_eq!((m.mpls_labels, m.ip_version, m.l3_offset), (2, 4, 22));
    // A stack that never ends.
    let endless = ethernet(0x8847, &[0u8; 4 * (MAX_TAGS + 1)]);
    assert_eq!(eth(&endless), Err(DropReason::TooManyTags));
}

#[test]
fn loopback_and_raw_link_types() {
    let ip = ipv4(A, B, 6, &tcp(1, 2, 0, 0, 2, b""));
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    assert_eq!(parse(LinkType::Null, &null, null.len() as u32).unwrap().l3_offset, 4);
    let v6 = ipv6([1; 16], [2; 16], 17, &udp(1, 2, b""));
    let mut null6 = 30u32.to_le_bytes().to_vec();
    null6.extend_from_slice(&v6);
    assert_eq!(parse(LinkType::Null, &null6, null6.len() as u32).unwrap().ip_version, 6);
    assert_eq!(parse(LinkType::RawIp, &ip, ip.len() as u32).unwrap().l4_offset, 20);
    assert_eq!(parse(LinkType::RawIp, &v6, v6.len() as u32).unwrap().ip_version, 6);
    assert_eq!(parse(LinkType::RawIp, &[0x15, 0, 0], 3), Err(DropReason::BadIpHeader));
    assert_eq!(
        parse(LinkType::Unknown(147), &ip, ip.len() as u32),
        Err(DropReason::UnknownLinkType)
    );
    let mut other = 7u32.to_le_bytes().to_vec();
    other.extend_from_slice(&ip);
    assert_eq!(
        parse(LinkType::Null, &other, other.len() as u32),
        Err(DropReason::UnknownEthertype)
    );
}

#[test]
fn ipv4_options_are_skipped() {
    let mut ip = ipv4(A, B, 17, &udp(7, 9, b"opt"));
    // Rebuild with IHL 6 and a 4-byte router-alert option.
    ip[0] = 0x46;
    let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.splice(20..20, [0x94, 0x04, 0, 0]);
    let f = ethernet(0x0800, &ip);
    let m = eth(&f).unwrap();
    assert_eq!(m.l4_offset, 14 + 24);
    assert_eq!(m.payload(&f), b"opt");
}

#[test]
fn ipv6_extension_headers() {
    let mut ext = vec![6, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop → TCP
    ext.extend_from_slice(&tcp(443, 50000, 1, 1, 0x10, b"tls"));
    let f = ethernet(0x86dd, &ipv6([0xfe; 16], [0xfd; 16], 0, &ext));
    let m = eth(&f).unwrap();
    assert_eq!((m.protocol, m.src_port, m.dst_port), (IpProtocol::Tcp, 443, 50000));
    assert_eq!(m.l4_offset, 14 + 40 + 8);
    assert_eq!(m.payload(&f), b"tls");
    let bad = ethernet(0x86dd, &ipv6([0xfe; 16], [0xfd; 16], 0, &[6]));
    assert_eq!(eth(&bad), Err(DropReason::BadIpv6Extensions));
}

#[test]
fn fragments_are_marked() {
    let mut first = ipv4(A, B, 17, &udp(1000, 53, &[0u8; 32]));
    first[6] = 0x20; // MF, offset 0
    let m = eth(&ethernet(0x0800, &first)).unwrap();
    assert_eq!(m.fragment, Some(Fragment { ident: 0, offset: 0, more: true }));
    assert!(m.has_ports());
    let mut later = ipv4(A, B, 17, &[0u8; 16]);
    later[6] = 0x00;
    later[7] = 0x05; // offset 40, last
    let f = ethernet(0x0800, &later);
    let m = eth(&f).unwrap();
    assert_eq!(m.fragment, Some(Fragment { ident: 0, offset: 40, more: false }));
    assert!(!m.has_ports());
    assert_eq!(m.payload_len, 16);
    let mut ext = vec![17, 0, 0, 0x08 | 1, 0, 0, 0, 9]; // fragment header: offset 8, M
    ext.extend_from_slice(&[0; 8]);
    let m = eth(&ethernet(0x86dd, &ipv6([1; 16], [2; 16], 44, &ext))).unwrap();
    assert_eq!(m.fragment, Some(Fragment { ident: 9, offset: 8, more: true }));
}

#[test]
fn icmp_type_and_code() {
    let f = ethernet(0x0800, &ipv4(A, B, 1, &[8, 0, 0, 0, 0, 1, 0, 1]));
    let m = eth(&f).unwrap();
    assert_eq!((m.protocol, m.src_port, m.dst_port), (IpProtocol::Icmp, 8, 0));
    let f = ethernet(0x86dd, &ipv6([1; 16], [2; 16], 58, &[135, 0, 0, 0]));
    assert_eq!(eth(&f).unwrap().protocol, IpProtocol::Icmpv6);
}

#[test]
fn bad_input_has_a_reason() {
    assert_eq!(eth(&[]), Err(DropReason::EmptyFrame));
    assert_eq!(eth(&[0; 13]), Err(DropReason::TruncatedL2));
    assert_eq!(eth(&ethernet(0x0806, &[0; 28])), Err(DropReason::NonIp));
    assert_eq!(eth(&ethernet(0x1234, &[0; 28])), Err(DropReason::UnknownEthertype));
    assert_eq!(eth(&ethernet(0x0800, &[0x45, 0, 0])), Err(DropReason::TruncatedIp));
    assert_eq!(eth(&ethernet(0x0800, &[0x35; 20])), Err(DropReason::BadIpHeader));
    // An IP total length larger than the frame, in a frame captured whole.
    let mut lie = ipv4(A, B, 17, &udp(1, 2, b"abc"));
    lie[2..4].copy_from_slice(&1500u16.to_be_bytes());
    assert_eq!(eth(&ethernet(0x0800, &lie)), Err(DropReason::IpLengthExceedsFrame));
    // The same bytes from a snapped capture are only truncated.
    let f = ethernet(0x0800, &lie);
    let m = parse(LinkType::Ethernet, &f, 1514).unwrap();
    assert!(m.snap_truncated);
    // TCP header cut short, and a data offset below 5.
    let t = ipv4(A, B, 6, &tcp(1, 2, 0, 0, 2, b"")[..12]);
    assert_eq!(eth(&ethernet(0x0800, &t)), Err(DropReason::TruncatedL4));
    let mut seg = tcp(1, 2, 0, 0, 2, b"");
    seg[12] = 0x30;
    assert_eq!(eth(&ethernet(0x0800, &ipv4(A, B, 6, &seg))), Err(DropReason::BadTcpHeader));
}

#[test]
fn jumbo_frame_parses_whole() {
    let payload = vec![0xab; 9000 - 14 - 20 - 20];
    let f = synth::tcp4(A, B, 1, 2, 0, 0, 0x18, &payload);
    assert_eq!(f.len(), 9000);
    let m = eth(&f).unwrap();
    assert_eq!(m.payload_len as usize, payload.len());
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = synth::tcp4(A, B, 1, 2, 0, 0, 0x10, b"");
    f.resize(60, 0);
    assert_eq!(eth(&f).unwrap().payload_len, 0);
}

proptest::proptest! {
    /// The fast path and the general decoder agree on every frame the fast
    /// path accepts, including mutated and cut ones.
    #[test]
    fn fast_path_agrees_with_general(pos in 0usize..80, val in proptest::num::u8::ANY, cut in 0usize..60, udp_frame in proptest::bool::ANY, snap in proptest::bool::ANY) {
        let mut f = if udp_frame {
            synth::udp4(A, B, 5353, 53, b"abcdefgh-query")
        } else {
            synth::tcp4(A, B, 40000, 80, 7, 9, 0x18, b"GET / HTTP/1.1\r\n\r\n")
        };
        let wire = if snap { f.len() as u32 + 10 } else { f.len() as u32 - cut.min(f.len()) as u32 };
        let p = pos % f.len();
        f[p] = val;
        f.truncate(f.len() - cut.min(f.len()));
        if let Some(fast) = super::fast_ipv4(&f, wire) {
            proptest::prop_assert_eq!(Ok(fast), super::parse_general(LinkType::Ethernet, &f, wire));
        }
    }

    /// No input makes the decoder panic, whatever the link type.
    #[test]
    fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), link in 0u32..300, wire in 0u32..400) {
        let _ = parse(LinkType::from_pcap(link), &bytes, wire);
        let _ = parse(LinkType::Ethernet, &bytes, wire);
    }

    /// Mutating any byte of a valid frame never panics either.
    #[test]
    fn mutations_never_panic(pos in 0usize..80, val in proptest::num::u8::ANY, cut in 0usize..80) {
        let mut f = synth::tcp4(A, B, 40000, 80, 7, 9, 0x18, b"GET / HTTP/1.1\r\n\r\n");
        let p = pos % f.len();
        f[p] = val;
        f.truncate(f.len() - cut.min(f.len()));
        let _ = eth(&f);
    }
}
