//! `skua run` counts every packet and byte of a capture exactly as
//! capinfos does — on the whole corpus and on generated pcap and pcapng
//! files (µs and ns), through the file source (1 and 2 cores) and through
//! DPDK's net_pcap.

use std::path::Path;

use dataplane::synth::{self, PcapNgWriter, PcapWriter};
use dataplane::wire::LinkType;
use skua_suite::*;

#[test]
fn corpus_counts_match_capinfos() {
    let Some(pcaps) = corpus_pcaps() else { return };
    let mut rows = Vec::new();
    for p in &pcaps {
        let expected = capinfos(p);
        let path = p.to_str().unwrap();
        let one = totals(&run_json(&["--pcap", path]));
        let two = totals(&run_json(&["--pcap", path, "--cores", "2"]));
        rows.push(format!(
            "{:<44} capinfos {:>6} pkts {:>8} B | skua {:>6} {:>8} | 2 cores {:>6} {:>8}",
            p.file_name().unwrap().to_string_lossy(),
            expected.0,
            expected.1,
            one.0,
            one.1,
            two.0,
            two.1
        ));
        assert_eq!(one, expected, "{}", p.display());
        assert_eq!(two, expected, "{} with 2 cores", p.display());
    }
    eprintln!("{}", rows.join("\n"));
}

/// A mix of everything the decoder meets: TCP and UDP over IPv4 and IPv6,
/// tagged frames, fragments, ICMP, ARP, a jumbo frame, snapped frames.
fn mixed_packets() -> Vec<synth::Packet> {
    let mut pkts = Vec::new();
    let t0 = 1_700_000_000_123_456_789u64;
    let mut t = t0;
    for i in 0..40u16 {
        let req = format!("GET /item/{i} HTTP/1.1\r\nHost: shop\r\n\r\n");
        let body = "x".repeat(usize::from(i) * 97);
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        t = synth::http_conversation(
            &mut pkts,
            t,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            41000 + i,
            req.as_bytes(),
            resp.as_bytes(),
            333_333,
        );
        synth::dns_exchange(
            &mut pkts,
            t,
            synth::DnsLookup {
                client: [10, 0, 0, 1],
                server: [10, 0, 0, 53],
                port: 53000 + i,
                id: i,
                name: "shop.example",
                answer: [10, 0, 0, 2],
            },
        );
        t += 1_234_567;
    }
    let mut push = |data: Vec<u8>| {
        t += 1_001;
        pkts.push(synth::Packet { ts_ns: t, data });
    };
    let v6 = synth::ethernet(
        0x86dd,
        &synth::ipv6([0x20; 16], [0x21; 16], 6, &synth::tcp(443, 50000, 1, 1, 0x10, b"data")),
    );
    push(v6.clone());
    push(synth::tag(&v6, 0x8100, 42));
    push(synth::tag(&synth::tag(&v6, 0x8100, 42), 0x88a8, 7));
    let mut frag = synth::ipv4([10, 0, 0, 9], [10, 0, 0, 10], 17, &[0u8; 64]);
    frag[6] = 0x20;
    push(synth::ethernet(0x0800, &frag));
    push(synth::ethernet(
        0x0800,
        &synth::ipv4([10, 0, 0, 9], [10, 0, 0, 10], 1, &[8, 0, 0, 0, 0, 1, 0, 1]),
    ));
    push(synth::ethernet(0x0806, &[0u8; 28]));
    push(synth::tcp4([10, 0, 0, 7], [10, 0, 0, 8], 1, 2, 0, 0, 0x18, &vec![0x5a; 9000 - 54]));
    pkts.sort_by_key(|p| p.ts_ns);
    pkts
}

fn write_all(path: &Path, pcapng: bool, nanos: bool, pkts: &[synth::Packet]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    // Every 17th frame is stored snapped to 96 bytes, as a capture with a
    // snap length would.
    let stored = |i: usize, p: &synth::Packet| -> (Vec<u8>, u32) {
        let len = p.data.len() as u32;
        if i.is_multiple_of(17) && p.data.len() > 96 {
            (p.data[..96].to_vec(), len)
        } else {
            (p.data.clone(), len)
        }
    };
    if pcapng {
        let mut w = PcapNgWriter::new(file, LinkType::Ethernet, nanos).unwrap();
        for (i, p) in pkts.iter().enumerate() {
            let (d, l) = stored(i, p);
            w.write(p.ts_ns, &d, l).unwrap();
        }
    } else {
        let mut w = PcapWriter::new(file, LinkType::Ethernet, nanos).unwrap();
        for (i, p) in pkts.iter().enumerate() {
            let (d, l) = stored(i, p);
            w.write(p.ts_ns, &d, l).unwrap();
        }
    }
}

fn write_whole(path: &Path, pkts: &[synth::Packet]) {
    let mut w = PcapWriter::new(
        std::io::BufWriter::new(std::fs::File::create(path).unwrap()),
        LinkType::Ethernet,
        false,
    )
    .unwrap();
    for p in pkts {
        w.write(p.ts_ns, &p.data, p.data.len() as u32).unwrap();
    }
}

#[test]
fn generated_pcap_and_pcapng_match_capinfos() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = mixed_packets();
    for (name, ng, nanos) in [
        ("us.pcap", false, false),
        ("ns.pcap", false, true),
        ("us.pcapng", true, false),
        ("ns.pcapng", true, true),
    ] {
        let path = dir.path().join(name);
        write_all(&path, ng, nanos, &pkts);
        let expected = capinfos(&path);
        assert_eq!(expected.0, pkts.len() as u64, "{name}: capinfos read every record");
        let s = run_json(&["--pcap", path.to_str().unwrap(), "--cores", "2"]);
        assert_eq!(totals(&s), expected, "{name}");
        assert_eq!(drop_count(&s, "non_ip"), 1, "{name}: the ARP frame");
        let sum = |k: &str| {
            s["cores"].as_array().unwrap().iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>()
        };
        assert_eq!(sum("vlan_tagged"), 2, "{name}");
        assert_eq!(sum("fragments"), 1, "{name}");
        assert!(sum("snap_truncated") > 0, "{name}");
        assert_eq!(sum("ipv6"), 3, "{name}");
    }
}

#[test]
fn loop_plays_the_capture_n_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.pcap");
    write_all(&path, false, false, &mixed_packets());
    let (p, b) = capinfos(&path);
    let s = run_json(&["--pcap", path.to_str().unwrap(), "--loop", "3"]);
    assert_eq!(totals(&s), (3 * p, 3 * b));
}

#[test]
fn recorded_pace_takes_the_capture_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paced.pcap");
    let mut w =
        PcapWriter::new(std::fs::File::create(&path).unwrap(), LinkType::Ethernet, false).unwrap();
    let f = synth::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"tick");
    for i in 0..5u64 {
        w.write(1_000_000_000_000 + i * 100_000_000, &f, f.len() as u32).unwrap();
    }
    drop(w);
    let start = std::time::Instant::now();
    let s = run_json(&["--pcap", path.to_str().unwrap(), "--pace", "recorded"]);
    let took = start.elapsed();
    assert_eq!(totals(&s).0, 5);
    assert!(
        took >= std::time::Duration::from_millis(400),
        "400 ms of capture replayed in {took:?}"
    );
}

#[test]
fn dpdk_net_pcap_counts_match_capinfos() {
    if !dpdk_usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // net_pcap hands up captured bytes only (the original length is not
    // carried in an mbuf), so this capture has no snapped frames.
    let generated = dir.path().join("mixed.pcap");
    write_whole(&generated, &mixed_packets());
    let Some(corpus) = corpus_pcaps() else { return };
    let mut inputs: Vec<std::path::PathBuf> = corpus
        .into_iter()
        // net_pcap reads classic pcap and hands frames up as Ethernet.
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .filter(|p| {
            let b = std::fs::read(p).unwrap();
            b.len() > 24 && u32::from_le_bytes([b[20], b[21], b[22], b[23]]) == 1
        })
        .take(6)
        .collect();
    assert_eq!(inputs.len(), 6, "six Ethernet pcaps of the corpus");
    inputs.push(generated);
    for p in &inputs {
        let eal = format!("--no-pci --no-huge --vdev net_pcap0,rx_pcap={}", p.display());
        for cores in ["1", "2"] {
            let s = run_json(&[
                "--dpdk",
                &eal,
                "--cores",
                cores,
                "--set",
                "dataplane.idle_timeout_ms=300",
            ]);
            assert_eq!(totals(&s), capinfos(p), "{} via net_pcap, {cores} core(s)", p.display());
            assert!(s["sources"][0].as_str().unwrap().starts_with("dpdk:net_pcap0"));
        }
    }
}

#[test]
fn dpdk_with_hugepages() {
    if !dpdk_usable() {
        return;
    }
    if !hugepages_ready(256) {
        skip::missing("256 free 2 MiB hugepages and a hugetlbfs mount (.ci/run reserves them)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.pcap");
    write_whole(&path, &mixed_packets());
    let eal = format!("--no-pci --vdev net_pcap0,rx_pcap={}", path.display());
    let s = run_json(&[
        "--dpdk",
        &eal,
        "--set",
        "dataplane.idle_timeout_ms=300",
        "--set",
        "dpdk.mbufs=4095",
    ]);
    assert_eq!(totals(&s), capinfos(&path));
}
