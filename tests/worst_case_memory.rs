//! Issue 30, worst-case memory: `skua hugepages plan` states the most
//! memory a configuration lets the process use outside hugepages
//! (`controlplane/src/memory.rs`, `docs/config.md` "Worst-case memory").
//!
//! Sent: a hostile capture through `skua run` — 2,000 TCP flows, each
//! opening with an HTTP request head that never ends (24 KiB of header
//! lines, past `reassembly.max_message_buffer_bytes`), beside ordinary
//! API exchanges — to four agents that each fill their runtime's heap at
//! load and keep every item's path. Bound: the process' peak resident
//! memory (VmHWM) stays under the plan's `memory.total_bytes` for the same
//! configuration. What moves: the hostile run's peak is well above a run
//! of the ordinary exchanges alone (the attack did fill memory), the
//! unfinished heads are counted at the buffer limit.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use dataplane::synth::traffic::{SizeMix, Traffic, TrafficSpec};
use dataplane::synth::{tcp4, Packet, PcapWriter};
use serde_json::Value;
use skua_suite::*;

const FLOWS: u16 = 2_000;
const HEAD_BYTES: usize = 24 << 10;

/// The configuration both the plan and the run use: small enough that
/// the hostile capture fills every per-flow part.
const SETS: &[&str] = &[
    "dataplane.cores=1",
    "reassembly.max_flows=2048",
    "reassembly.max_message_buffer_bytes=16384",
    // Few requests awaiting answers per flow: with the default 64 the
    // plan's per-flow line is 64 items and the bound gigabytes.
    "reassembly.max_pending_requests=2",
    "scripting.scriptCores=0",
    "scripting.memoryLimitMb=16",
    "hub.listen=",
    "integrations.metrics_listen=",
];

/// Each flow: the handshake, then a head of `HEAD_BYTES` that never ends.
fn hostile(out: &mut Vec<Packet>, t0: u64) {
    let server = [10, 9, 0, 1];
    let mut head = b"GET /never-ending HTTP/1.1\r\nHost: victim.example\r\n".to_vec();
    while head.len() < HEAD_BYTES {
        head.extend_from_slice(b"X-Filler: ");
        head.extend_from_slice(&[b'a'; 100]);
        head.extend_from_slice(b"\r\n");
    }
    let mut t = t0;
    for f in 0..FLOWS {
        let client = [10, 8, (f >> 8) as u8, f as u8];
        let sp = 20_000 + f;
        let (mut c, s) = (1_000u32, 900_000u32);
        let mut push = |t: u64, d: Vec<u8>| out.push(Packet { ts_ns: t, data: d });
        push(t, tcp4(client, server, sp, 80, c, 0, 0x02, b""));
        push(t + 1_000, tcp4(server, client, 80, sp, s, c + 1, 0x12, b""));
        c += 1;
        push(t + 2_000, tcp4(client, server, sp, 80, c, s + 1, 0x10, b""));
        for chunk in head.chunks(1_448) {
            t += 3_000;
            push(t, tcp4(client, server, sp, 80, c, s + 1, 0x18, chunk));
            c += chunk.len() as u32;
        }
        t += 5_000;
    }
}

fn write_captures(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let spec = TrafficSpec { exchanges: 5_000, mix: SizeMix::Api, ..TrafficSpec::default() };
    let (mut packets, _) = Traffic::collect_all(spec);
    let benign = dir.join("benign.pcap");
    let hostile_path = dir.join("hostile.pcap");
    let write = |path: &Path, packets: &[Packet]| {
        let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut w = PcapWriter::new(f, dataplane::wire::LinkType::Ethernet, true).unwrap();
        for p in packets {
            w.write(p.ts_ns, &p.data, p.data.len() as u32).unwrap();
        }
        w.into_inner().flush().unwrap();
    };
    write(&benign, &packets);
    let t0 = packets.first().map_or(0, |p| p.ts_ns);
    let mut attack = Vec::new();
    hostile(&mut attack, t0);
    packets.extend(attack);
    packets.sort_by_key(|p| p.ts_ns);
    write(&hostile_path, &packets);
    (benign, hostile_path)
}

/// Agents that fill their heap at load and keep a string per item.
fn agents(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("agents");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..4 {
        std::fs::write(
            d.join(format!("hog{i}.js")),
            r#"
            var keep = [];
            try { while (true) keep.push(new Array(512).join("h") + keep.length); } catch (e) {}
            function onItemCaptured(data) { keep.push(String(data.request.path) + keep.length); }"#,
        )
        .unwrap();
    }
    d
}

fn plan_total() -> u64 {
    let mut args = vec!["hugepages", "plan", "--json"];
    for s in SETS {
        args.extend(["--set", s]);
    }
    let out = skua(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["memory"]["total_bytes"].as_u64().expect("memory.total_bytes")
}

fn run(pcap: &Path, agents: &Path) -> (Value, u64) {
    let mut cmd = Command::new(skua_bin());
    cmd.args(["run", "--pcap", pcap.to_str().unwrap(), "--scripts", agents.to_str().unwrap()])
        .args(["--summary", "json", "--quiet"]);
    for s in SETS {
        cmd.args(["--set", s]);
    }
    let (out, peak) = run_peak_rss(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), peak)
}

#[test]
fn a_hostile_capture_stays_under_the_planned_worst_case() {
    let dir = tempfile::tempdir().unwrap();
    let (benign, hostile) = write_captures(dir.path());
    let agents = agents(dir.path());
    let total = plan_total();
    let (_, benign_peak) = run(&benign, &agents);
    let (v, peak) = run(&hostile, &agents);
    eprintln!("peak RSS: benign {benign_peak} B, hostile {peak} B; plan {total} B");
    assert!(total < 1 << 30, "a bound the test can mean: {total} B");
    assert!(v["total"]["items"].as_u64().unwrap() >= 5_000, "{}", v["total"]);
    assert!(
        peak > benign_peak + (16 << 20),
        "the attack filled memory: {peak} B against {benign_peak} B without it"
    );
    assert!(peak < total, "peak RSS {peak} B over the planned worst case {total} B");
}
