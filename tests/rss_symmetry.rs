//! Both directions of a flow meet the same core: the symmetric Toeplitz
//! hash on random tuples, and every TCP connection of the corpus spread
//! over two cores.

use std::collections::{HashMap, HashSet};

use dataplane::hash::{core_for, Toeplitz};
use dataplane::source::file::FileSource;
use dataplane::source::{PacketSource, Poll};
use dataplane::synth::Rng;
use dataplane::wire::IpProtocol;
use skua_suite::*;

#[test]
fn random_tuples_hash_the_same_both_ways() {
    let t = Toeplitz::default();
    let mut rng = Rng::new(42);
    for _ in 0..100_000 {
        let (a, b) = (rng.next_u64(), rng.next_u64());
        let (sp, dp) = (rng.next_u64() as u16, rng.next_u64() as u16);
        let mut fwd = Vec::new();
        let mut rev = Vec::new();
        if a & 1 == 0 {
            fwd.extend_from_slice(&(a as u32).to_be_bytes());
            fwd.extend_from_slice(&(b as u32).to_be_bytes());
            rev.extend_from_slice(&(b as u32).to_be_bytes());
            rev.extend_from_slice(&(a as u32).to_be_bytes());
        } else {
            let (x, y) =
                ((a as u128) << 64 | b as u128, (b as u128) << 64 | rng.next_u64() as u128);
            fwd.extend_from_slice(&x.to_be_bytes());
            fwd.extend_from_slice(&y.to_be_bytes());
            rev.extend_from_slice(&y.to_be_bytes());
            rev.extend_from_slice(&x.to_be_bytes());
        }
        fwd.extend_from_slice(&sp.to_be_bytes());
        fwd.extend_from_slice(&dp.to_be_bytes());
        rev.extend_from_slice(&dp.to_be_bytes());
        rev.extend_from_slice(&sp.to_be_bytes());
        assert_eq!(t.hash(&fwd), t.hash(&rev));
    }
}

/// A connection as both directions see it: protocol, then the lower and the
/// higher endpoint (address, port).
type Connection = (u8, [u8; 16], u16, [u8; 16], u16);

#[test]
fn every_corpus_connection_lands_on_one_core() {
    let t = Toeplitz::default();
    let mut connections = 0;
    let Some(pcaps) = corpus_pcaps() else { return };
    for p in pcaps {
        let mut src = FileSource::path(&p).unwrap();
        let mut cores_of: HashMap<Connection, HashSet<usize>> = HashMap::new();
        loop {
            let polled = src
                .poll(&mut |f| {
                    let Ok(m) = dataplane::parse(f.link, f.data, f.wire_len) else { return };
                    if m.protocol != IpProtocol::Tcp || m.fragment.is_some() {
                        return;
                    }
                    let a = (m.src_ip, m.src_port);
                    let b = (m.dst_ip, m.dst_port);
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    let core = core_for(t.packet(&m), 2);
                    cores_of
                        .entry((m.ip_version, lo.0, lo.1, hi.0, hi.1))
                        .or_default()
                        .insert(core);
                })
                .unwrap();
            if polled == Poll::End {
                break;
            }
        }
        for (k, cores) in &cores_of {
            assert_eq!(
                cores.len(),
                1,
                "{}: connection {k:?} split over cores {cores:?}",
                p.display()
            );
        }
        connections += cores_of.len();
    }
    assert!(connections > 50, "only {connections} connections checked");
}

/// End to end: a flow split over two cores would be counted on both, so the
/// flows counted on two cores must equal the flows counted on one.
#[test]
fn two_cores_count_the_same_flows_as_one() {
    let Some(pcaps) = corpus_pcaps() else { return };
    assert!(pcaps.len() > 10, "only {} captures", pcaps.len());
    for p in pcaps {
        let path = p.to_str().unwrap();
        let one = run_json(&["--pcap", path])["total"]["flows"].as_u64().unwrap();
        let s = run_json(&["--pcap", path, "--cores", "2"]);
        let two = s["total"]["flows"].as_u64().unwrap();
        assert_eq!(one, two, "{path}");
    }
}
