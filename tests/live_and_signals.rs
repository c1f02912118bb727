//! Live capture through AF_PACKET, and stopping cleanly on a signal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skua_suite::*;

#[test]
fn sigint_and_sigterm_stop_with_a_summary() {
    for sig in ["-INT", "-TERM"] {
        let child = Command::new(skua_bin())
            .args(["run", "--loop", "0", "--summary", "json", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let start = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "stopped promptly");
        assert!(
            out.status.success(),
            "{sig}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // The demo agents' console lines come first; the summary is the last line.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["stopped"], true);
        assert!(v["total"]["packets"].as_u64().unwrap() > 0);
    }
}

/// Needs root (CAP_NET_RAW), as CI has.
#[test]
fn af_packet_counts_loopback_traffic() {
    let probe = dataplane::source::afpacket::AfPacketSource::open("lo", Default::default());
    if let Err(e) = probe {
        skip::missing(&format!("an AF_PACKET socket on lo, as root ({e})"));
        return;
    }
    drop(probe);
    let child = Command::new(skua_bin())
        .args(["run", "--iface", "lo", "--duration", "2", "--summary", "json", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        tx.send_to(&[0x5a; 100], rx.local_addr().unwrap()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let udp: u64 = v["cores"].as_array().unwrap().iter().map(|c| c["udp"].as_u64().unwrap()).sum();
    assert!(udp >= 200, "captured {udp} UDP datagrams of 200 sent: {v}");
    assert!(v["sources"][0].as_str().unwrap().starts_with("af_packet:lo"));
}
