//! The AF_PACKET source on a real socket: loopback traffic captured once.
//! Needs root (CAP_NET_RAW), as CI has.

use dataplane::source::afpacket::{AfPacketSource, RingConfig};
use dataplane::source::{Frame, PacketSource};
use dataplane::wire::LinkType;
use skua_suite::skip;

#[test]
fn captures_loopback_traffic() {
    let cfg =
        RingConfig { block_size: 1 << 16, block_count: 8, block_timeout_ms: 5, promiscuous: false };
    let mut src = match AfPacketSource::open("lo", cfg) {
        Ok(s) => s,
        Err(e) => return skip::missing(&format!("an AF_PACKET socket on lo, as root ({e})")),
    };
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let marker = b"skua-afpacket-test-marker";
    for _ in 0..5 {
        tx.send_to(marker, ("127.0.0.1", port)).unwrap();
    }
    let mut seen = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen < 5 && std::time::Instant::now() < deadline {
        src.poll(&mut |f: Frame<'_>| {
            if f.data.windows(marker.len()).any(|w| w == marker) {
                assert_eq!(f.link, LinkType::Ethernet);
                assert_eq!(f.wire_len as usize, f.data.len());
                seen += 1;
            }
        })
        .unwrap();
    }
    assert_eq!(seen, 5, "each loopback datagram captured exactly once");
}
