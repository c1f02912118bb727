//! The DPDK loopback sender (`net_ring`): every frame the port accepts
//! reaches the dataplane, byte for byte, and is counted once. One EAL per
//! process, so this file holds one test.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataplane::engine::{self, EngineConfig};
use dataplane::{CoreCounters, Frame, PacketHandler, PacketMeta};
use skua_suite::dpdk_usable;

struct Collect(Arc<Mutex<Vec<Vec<u8>>>>);

impl PacketHandler for Collect {
    fn packet(&mut self, f: &Frame<'_>, _m: &PacketMeta, _c: &mut CoreCounters) {
        self.0.lock().unwrap().push(f.data.to_vec());
    }
}

#[test]
fn net_ring_loopback_delivers_what_it_accepts() {
    if !dpdk_usable() {
        return;
    }
    let cfg = dataplane::config::DpdkConfig {
        eal_args: "--no-pci --no-huge --vdev net_ring0".into(),
        mbufs: 4095,
        ..Default::default()
    };
    let (sources, mut sender) =
        dataplane::source::open_dpdk_loopback(&cfg, &engine::affinity()).expect("net_ring opens");
    let frames: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            dataplane::synth::tcp4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                1000 + i as u16,
                80,
                i,
                0,
                0x02,
                &i.to_be_bytes(),
            )
        })
        .collect();
    let got = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let ecfg = EngineConfig {
        cores: 1,
        idle_timeout: Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let g = got.clone();
    let running =
        engine::start(sources, &ecfg, move |_| Collect(g.clone()), stop).expect("engine starts");
    sender.on_thread_start().expect("sender thread registers");
    let mut accepted = Vec::new();
    for chunk in frames.chunks(50) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let n = sender.offer(&refs);
        accepted.extend(chunk[..n].iter().cloned());
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = running.wait().expect("engine runs");
    assert!(!accepted.is_empty(), "the ring accepted nothing");
    assert_eq!(report.total().0, accepted.len() as u64);
    assert_eq!(*got.lock().unwrap(), accepted);
}
