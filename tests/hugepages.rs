//! `skua hugepages` as an operator meets it: `plan` for the default config
//! and a 4-core 10 GbE config, a worker started without enough hugepages
//! (a fake sysfs tree) failing at once with the fixing command, and — as
//! root with DPDK — `reserve` + `mount`, then a DPDK run that takes its
//! memory from that mount.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dataplane::synth::{self, PcapWriter};
use dataplane::wire::LinkType;
use serde_json::Value;
use skua_suite::*;

const TEN_GBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/10gbe-4core.yaml");

/// A fake sysfs/procfs tree: one NUMA node with CPUs 0-127 and a 2 MiB
/// pool of `nr` pages, `free` of them free.
fn fake_root(dir: &Path, nr: u64, free: u64) -> PathBuf {
    let root = dir.join("root");
    let node = root.join("sys/devices/system/node/node0");
    let pool = node.join("hugepages/hugepages-2048kB");
    std::fs::create_dir_all(&pool).unwrap();
    std::fs::write(node.join("cpulist"), "0-127\n").unwrap();
    std::fs::write(pool.join("nr_hugepages"), format!("{nr}\n")).unwrap();
    std::fs::write(pool.join("free_hugepages"), format!("{free}\n")).unwrap();
    std::fs::write(pool.join("surplus_hugepages"), "0\n").unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/mounts"),
        "nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    )
    .unwrap();
    root
}

fn ok_stdout(args: &[&str]) -> String {
    let out = skua(args);
    assert!(out.status.success(), "skua {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok_stdout(args)).unwrap()
}

/// A pcap of `n` UDP frames.
fn write_pcap(path: &Path, n: u16) {
    let mut w =
        PcapWriter::new(std::fs::File::create(path).unwrap(), LinkType::Ethernet, false).unwrap();
    for i in 0..n {
        let f = synth::udp4([10, 0, 0, 1], [10, 0, 0, 2], 40_000 + i, 53, &[0u8; 40]);
        w.write(u64::from(i) * 1_000, &f, f.len() as u32).unwrap();
    }
}

#[test]
fn plan_prints_pages_per_node_for_the_default_and_a_10gbe_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_root(dir.path(), 512, 512);
    let root_set = format!("hugepages.root={}", root.display());
    for (name, args) in
        [("default config", vec![]), ("4-core 10 GbE config", vec!["--config", TEN_GBE])]
    {
        let mut a = vec!["hugepages", "plan", "--set", &root_set];
        a.extend(&args);
        let text = ok_stdout(&a);
        println!("== skua hugepages plan, {name}:\n{text}");
        assert!(text.contains("node 0: ") && text.contains("× 2 MiB pages or"), "{text}");
        // On the host too (the machine's own sysfs).
        let mut h = vec!["hugepages", "plan"];
        h.extend(&args);
        assert!(ok_stdout(&h).contains("node 0: "));
    }
    // On the fake node (one node, everything on it) the numbers are fixed.
    let def = json(&["hugepages", "plan", "--json", "--set", &root_set]);
    let ten = json(&["hugepages", "plan", "--json", "--set", &root_set, "--config", TEN_GBE]);
    let node = |v: &Value| v["nodes"][0].clone();
    assert_eq!(
        (node(&def)["pages_2m"].as_u64(), node(&def)["pages_1g"].as_u64()),
        (Some(29), Some(1)),
        "{def}"
    );
    assert_eq!(
        (node(&ten)["pages_2m"].as_u64(), node(&ten)["pages_1g"].as_u64()),
        (Some(85), Some(1)),
        "{ten}"
    );
    assert_eq!(ten["ports"][0]["name"], "0000:3b:02.0");
    assert_eq!(ten["ports"][0]["rx_queues"], 4);
    assert_eq!(node(&ten)["cores"], 4);
    // --no-huge needs none.
    let nohuge = json(&[
        "hugepages",
        "plan",
        "--json",
        "--set",
        &root_set,
        "--dpdk",
        "--no-pci --no-huge --vdev net_null0",
    ]);
    assert_eq!(nohuge["hugepages"], false);
}

#[test]
fn a_worker_without_enough_hugepages_exits_at_once_naming_the_fix() {
    if !dpdk_usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 4 pages of 2 MiB, 1 free: far short of the ~56 MiB the default needs.
    let root = fake_root(dir.path(), 4, 1);
    let pcap = dir.path().join("x.pcap");
    write_pcap(&pcap, 10);
    let eal = format!("--no-pci --vdev net_pcap0,rx_pcap={}", pcap.display());
    let root_set = format!("hugepages.root={}", root.display());
    let start = Instant::now();
    let out = skua(&["run", "--quiet", "--dpdk", &eal, "--set", &root_set]);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(err.contains("NUMA node 0 needs 56.2 MiB of hugepages and has 2.0 MiB free"), "{err}");
    assert!(err.contains("short by 28 × 2 MiB pages"), "{err}");
    // The pool holds 4 pages; 28 more make 32.
    assert!(err.contains("fix: skua hugepages reserve --node 0 --size 2M --pages 32"), "{err}");
    assert!(
        err.contains(
            "echo 32 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
        ),
        "{err}"
    );
    assert!(!err.contains("EAL"), "EAL never started: {err}");

    // --no-huge skips the check and runs.
    let eal = format!("--no-pci --no-huge --vdev net_pcap0,rx_pcap={}", pcap.display());
    let s =
        run_json(&["--dpdk", &eal, "--set", &root_set, "--set", "dataplane.idle_timeout_ms=300"]);
    assert_eq!(totals(&s).0, 10);
}

#[test]
fn reserve_and_mount_as_root_then_a_dpdk_run_uses_the_mount() {
    if !dpdk_usable() {
        return;
    }
    if !skip::root_or_skip() {
        return;
    }
    let status = json(&["hugepages", "status", "--json"]);
    let numa = status["numa"].as_bool().unwrap();
    let pool = status["nodes"][0]["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["size_kib"] == 2048)
        .cloned();
    let pool = require!(pool, "a 2 MiB hugepage pool");
    let (total, free) = (pool["total"].as_u64().unwrap(), pool["free"].as_u64().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("huge.pcap");
    write_pcap(&pcap, 500);
    let huge = dir.path().join("huge");
    let prefix = format!("skua-hp-test-{}", std::process::id());
    let eal = format!(
        "--no-pci --vdev net_pcap0,rx_pcap={} --huge-dir {} --file-prefix {prefix}",
        pcap.display(),
        huge.display()
    );
    let plan = json(&["hugepages", "plan", "--json", "--dpdk", &eal]);
    let need = plan["nodes"][0]["pages_2m"].as_u64().unwrap();

    // reserve: the pool grows to hold the plan's pages free, never shrinks.
    let want = total.max(total - free + need + 8);
    let node_args: Vec<String> = if numa { vec!["--node".into(), "0".into()] } else { vec![] };
    let mut reserve = vec!["hugepages", "reserve", "--size", "2M", "--pages"];
    let want_s = want.to_string();
    reserve.push(&want_s);
    reserve.extend(node_args.iter().map(String::as_str));
    let out = ok_stdout(&reserve);
    println!("{out}");
    assert!(out.contains(&format!("2 MiB pool now {want} pages")), "{out}");
    // Without --pages: what the plan needs, already there: no change.
    let out = ok_stdout(&[
        "hugepages",
        "reserve",
        "--size",
        "2M",
        "--set",
        &format!("dpdk.eal_args={eal}"),
    ]);
    assert!(out.contains(&format!("2 MiB pool now {want} pages")), "{out}");

    // mount: a fresh hugetlbfs with 2 MiB pages.
    let huge_s = huge.display().to_string();
    let out = ok_stdout(&["hugepages", "mount", "--path", &huge_s, "--size", "2M"]);
    assert!(out.contains("mounted hugetlbfs (2 MiB pages)"), "{out}");
    let mounted = json(&["hugepages", "status", "--json"]);
    assert!(mounted["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["path"] == huge_s.as_str() && m["page_size_kib"] == 2048));
    assert!(ok_stdout(&["hugepages", "mount", "--path", &huge_s]).contains("already has hugetlbfs"));

    // A DPDK run whose memory comes from that mount (--huge-dir, not --in-memory).
    let out = skua(&[
        "run",
        "--summary",
        "json",
        "--quiet",
        "--dpdk",
        &eal,
        "--set",
        "dataplane.idle_timeout_ms=300",
    ]);
    let backing: Vec<String> = std::fs::read_dir(&huge)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    // Clean up before asserting: the mount's files hold pages until it goes.
    let umount = std::process::Command::new("umount").arg(&huge).status();
    let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&prefix));
    if want != total {
        let total_s = total.to_string();
        let mut back = vec!["hugepages", "reserve", "--size", "2M", "--pages", &total_s];
        back.extend(node_args.iter().map(String::as_str));
        ok_stdout(&back);
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(totals(&s).0, 500);
    assert!(
        backing.iter().any(|f| f.starts_with(&prefix) && f.contains("map_")),
        "no hugepage files in the mount: {backing:?}"
    );
    println!(
        "DPDK ran from {huge_s}: {} hugepage file(s), e.g. {:?}",
        backing.len(),
        backing.first()
    );
    assert!(umount.is_ok_and(|s| s.success()), "umount {huge_s}");
}
