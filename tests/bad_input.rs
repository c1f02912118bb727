//! Bad input is counted by reason and never stops or crashes skua;
//! unreadable files get a clear message and a non-zero exit.

use dataplane::synth::{self, PcapNgWriter, PcapWriter};
use dataplane::wire::LinkType;
use skua_suite::*;

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

/// One frame of each malformation, between good frames.
fn hostile_frames() -> Vec<(Vec<u8>, u32)> {
    let good = synth::tcp4(A, B, 1000, 80, 1, 0, 0x02, b"");
    let mut lie = synth::ipv4(A, B, 17, &synth::udp(1, 2, b"abc"));
    lie[2..4].copy_from_slice(&1400u16.to_be_bytes());
    let jumbo = synth::tcp4(A, B, 1001, 80, 1, 0, 0x18, &vec![0x42; 9000 - 54]);
    let mut bad_tcp = synth::tcp(1, 2, 0, 0, 2, b"");
    bad_tcp[12] = 0x20;
    let frames = vec![
        (good.clone(), good.len() as u32),
        (Vec::new(), 0),                                               // empty_frame
        (synth::ethernet(0x0800, &lie), 0),                            // ip_length_exceeds_frame
        (jumbo.clone(), jumbo.len() as u32),                           // fine: 9000 bytes
        (synth::ethernet(0x88b5, &[0u8; 46]), 0),                      // unknown_ethertype
        (vec![0xff; 10], 0),                                           // truncated_l2
        (synth::ethernet(0x0800, &[0x45, 0, 0, 20]), 0),               // truncated_ip
        (synth::ethernet(0x0800, &[0x42; 40]), 0),                     // bad_ip_header
        (synth::ethernet(0x0800, &synth::ipv4(A, B, 6, &bad_tcp)), 0), // bad_tcp_header
        (synth::ethernet(0x0800, &synth::ipv4(A, B, 17, &[0, 53, 0])), 0), // truncated_l4
        (synth::ethernet(0x86dd, &synth::ipv6([1; 16], [2; 16], 0, &[6])), 0), // bad_ipv6_extensions
        (good.clone(), good.len() as u32),
    ];
    frames
        .into_iter()
        .map(|(d, l)| {
            let l = if l == 0 { d.len() as u32 } else { l };
            (d, l)
        })
        .collect()
}

const REASONS: [&str; 9] = [
    "empty_frame",
    "ip_length_exceeds_frame",
    "unknown_ethertype",
    "truncated_l2",
    "truncated_ip",
    "bad_ip_header",
    "bad_tcp_header",
    "truncated_l4",
    "bad_ipv6_extensions",
];

fn check(s: &serde_json::Value, frames: &[(Vec<u8>, u32)], what: &str) {
    let bytes: u64 = frames.iter().map(|(d, _)| d.len() as u64).sum();
    assert_eq!(totals(s), (frames.len() as u64, bytes), "{what}");
    for r in REASONS {
        assert_eq!(drop_count(s, r), 1, "{what}: {r}");
    }
    let dropped: u64 =
        s["total"]["drops"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(
        dropped,
        REASONS.len() as u64,
        "{what}: nothing else dropped (the jumbo frame passes)"
    );
}

#[test]
fn malformed_frames_are_counted_per_reason() {
    let dir = tempfile::tempdir().unwrap();
    let frames = hostile_frames();
    for (name, ng) in [("hostile.pcap", false), ("hostile.pcapng", true)] {
        let path = dir.path().join(name);
        let f = std::fs::File::create(&path).unwrap();
        if ng {
            let mut w = PcapNgWriter::new(f, LinkType::Ethernet, false).unwrap();
            for (i, (d, l)) in frames.iter().enumerate() {
                w.write(1_000 + i as u64 * 1000, d, *l).unwrap();
            }
        } else {
            let mut w = PcapWriter::new(f, LinkType::Ethernet, false).unwrap();
            for (i, (d, l)) in frames.iter().enumerate() {
                w.write(1_000 + i as u64 * 1000, d, *l).unwrap();
            }
        }
        for cores in ["1", "2"] {
            let s = run_json(&["--pcap", path.to_str().unwrap(), "--cores", cores]);
            check(&s, &frames, &format!("{name}, {cores} core(s)"));
        }
        assert_eq!(capinfos(&path).0, frames.len() as u64);
    }
}

#[test]
fn truncated_capture_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, false).unwrap();
    let f = synth::udp4(A, B, 1, 2, &[7u8; 100]);
    for i in 0..10u64 {
        w.write(i * 1000, &f, f.len() as u32).unwrap();
    }
    let mut bytes = w.into_inner();
    bytes.truncate(bytes.len() - 50); // the last record loses its tail
    std::fs::write(&path, &bytes).unwrap();
    let s = run_json(&["--pcap", path.to_str().unwrap()]);
    assert_eq!(totals(&s), (9, 9 * f.len() as u64));
    assert_eq!(drop_count(&s, "truncated_capture"), 1);
    assert_eq!(capinfos(&path).0, 9, "capinfos agrees on the whole records");
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = skua(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "no summary on failure");
    let err = String::from_utf8_lossy(&out.stderr);
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unreadable_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a capture file\n").unwrap();
    let text = text.to_str().unwrap();
    fails_with(&["run", "--pcap", text], &[text, "not a capture file"]);
    fails_with(&["run", "--pcap", "/nonexistent/x.pcap"], &["/nonexistent/x.pcap", "No such file"]);
    let d = dir.path().to_str().unwrap();
    fails_with(&["run", "--pcap", d], &[d]);
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    fails_with(&["run", "--pcap", empty.to_str().unwrap()], &["empty file"]);
    let short = dir.path().join("short.pcap");
    std::fs::write(&short, [0xd4, 0xc3]).unwrap();
    fails_with(&["run", "--pcap", short.to_str().unwrap()], &["too short"]);
    // A pcap header cut in the middle.
    let half = dir.path().join("half.pcap");
    std::fs::write(&half, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0]).unwrap();
    fails_with(&["run", "--pcap", half.to_str().unwrap()], &[half.to_str().unwrap()]);
}

#[test]
fn garbage_after_a_valid_header_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.pcap");
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, false).unwrap();
    let f = synth::udp4(A, B, 1, 2, b"ok");
    w.write(0, &f, f.len() as u32).unwrap();
    let mut bytes = w.into_inner();
    // A record header claiming a 2 GiB frame.
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0x80]);
    bytes.extend_from_slice(&[0xee; 64]);
    std::fs::write(&path, &bytes).unwrap();
    let out = skua(&["run", "--summary", "json", "--pcap", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(totals(&s).0, 1);
    let bad = drop_count(&s, "corrupt_record") + drop_count(&s, "truncated_capture");
    assert_eq!(bad, 1);
}

#[test]
fn dpdk_counts_malformed_frames_too() {
    if !dpdk_usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile-dpdk.pcap");
    // net_pcap skips zero-length records; the rest must be counted as in a file.
    let frames: Vec<_> = hostile_frames().into_iter().filter(|(d, _)| !d.is_empty()).collect();
    let mut w =
        PcapWriter::new(std::fs::File::create(&path).unwrap(), LinkType::Ethernet, false).unwrap();
    for (i, (d, l)) in frames.iter().enumerate() {
        w.write(i as u64 * 1000, d, *l).unwrap();
    }
    drop(w);
    let eal = format!("--no-pci --no-huge --vdev net_pcap0,rx_pcap={}", path.display());
    let s = run_json(&["--dpdk", &eal, "--set", "dataplane.idle_timeout_ms=300"]);
    let bytes: u64 = frames.iter().map(|(d, _)| d.len() as u64).sum();
    assert_eq!(totals(&s), (frames.len() as u64, bytes));
    for r in REASONS.iter().filter(|r| **r != "empty_frame") {
        assert_eq!(drop_count(&s, r), 1, "{r}");
    }
}
