//! Sizing: the hugepage memory a configuration needs on each NUMA node.
//!
//! skua creates one mbuf pool per port (`rte_pktmbuf_pool_create` on the
//! port's node, `dpdk.mbufs` mbufs with `dpdk.mbuf_cache` per lcore) and
//! gives each port `rx_queues` RX queues of `dpdk.rx_descriptors` and one TX
//! queue of `dpdk.tx_descriptors`. Per node the plan counts, in bytes:
//!
//! ```text
//! mempools = Σ ports on the node: mbufs × obj + caches
//!     obj    = 64 (mempool object header, one cache line)
//!            + align8(128 (struct rte_mbuf) + mbuf_data_room (headroom included)),
//!              rounded up to whole 64-byte lines, then to an odd number of
//!              lines (DPDK spreads objects over x86's 4 memory channels)
//!              — 2,368 B for the default 2,176 B data room
//!     caches = 128 (RTE_MAX_LCORE) × 8,256 B (struct rte_mempool_cache) when
//!              mbuf_cache > 0: 1.0 MiB per pool
//! rings    = Σ ports: 8 × pow2(mbufs + 1) + 384          (the pool's rte_ring)
//!                   + 64 × (rx_queues × rx_descriptors + tx_descriptors)
//!                     (hardware descriptors + the PMD's software ring)
//! dpdk     = 16 MiB on the main lcore's node (EAL memzones, ethdev data,
//!            malloc-heap slack) + 2 MiB per port on the port's node (PMD
//!            private data); measured: a net_pcap run of the default config
//!            takes 20 × 2 MiB pages, of which the mempool is 38.1 MiB
//! hugepages = max(mempools + rings + dpdk, --socket-mem / -m of the EAL args)
//! pages     = ceil(hugepages / page size), for 2 MiB and for 1 GiB pages
//! ```
//!
//! A PCI port's node is its sysfs `numa_node` (-1 → 0, as skua places its
//! pool); a virtual device's is node 0. A PCI port gets one RX queue per
//! dataplane core (skua spreads with RSS when the NIC has it), a virtual
//! device one. The flow tables (`reassembly.max_flows` × bytes per flow,
//! plus the per-core out-of-order and fragment limits) live on the ordinary
//! heap, not in hugepages: the plan reports them per node as `heap`, the
//! memory the node must keep outside its hugepage pools.

use std::path::PathBuf;

use serde::Serialize;

use crate::system::{is_pci_address, parse_cpu_list, System};
use crate::PageSize;

/// The mempool's per-object header (`struct rte_mempool_objhdr`, padded to a cache line).
pub const OBJ_HEADER: u64 = 64;
/// `struct rte_mbuf`: two cache lines.
pub const MBUF_STRUCT: u64 = 128;
/// Per-lcore caches a mempool with a cache carries: `RTE_MAX_LCORE` (128 in
/// Debian's DPDK 22.11) × `sizeof(struct rte_mempool_cache)` (8,256 B).
pub const MEMPOOL_CACHES: u64 = 128 * 8_256;
/// One slot of the mempool's ring (a pointer).
pub const RING_SLOT: u64 = 8;
/// `struct rte_ring` itself.
pub const RING_HEADER: u64 = 384;
/// Per RX/TX descriptor: the hardware descriptor (16–32 B) and the PMD's
/// software ring entries.
pub const DESCRIPTOR: u64 = 64;
/// EAL's own allocations on the main lcore's node.
pub const DPDK_BASE: u64 = 16 << 20;
/// A PMD's private data per port, on the port's node.
pub const PORT_OVERHEAD: u64 = 2 << 20;
/// DPDK's largest per-lcore mempool cache.
pub const MEMPOOL_CACHE_MAX: u32 = 512;

/// What the plan needs to know of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInput {
    /// `dpdk.eal_args`: names the ports (`-a`, `--vdev`) and says whether
    /// hugepages are used at all (`--no-huge`).
    pub eal_args: String,
    /// Dataplane cores (`dataplane.cores`).
    pub cores: usize,
    /// The CPUs the process may run on; core k runs on the k-th.
    pub cpus: Vec<usize>,
    pub mbufs: u32,
    pub mbuf_cache: u32,
    pub mbuf_data_room: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub burst: usize,
    /// Heap bytes a dataplane core holds for flows at most (flow table,
    /// out-of-order and fragment limits).
    pub heap_per_core: u64,
}

/// A port DPDK will start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPort {
    /// PCI address or virtual device name.
    pub name: String,
    pub node: u32,
    pub rx_queues: u32,
}

/// One node's share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    pub node: u32,
    pub ports: Vec<String>,
    /// Dataplane cores running on the node.
    pub cores: usize,
    pub mempool_bytes: u64,
    pub ring_bytes: u64,
    pub dpdk_bytes: u64,
    /// `--socket-mem` / `-m` asked of EAL for this node.
    pub eal_floor_bytes: u64,
    /// Hugepage memory the node needs.
    pub hugepage_bytes: u64,
    pub pages_2m: u64,
    pub pages_1g: u64,
    /// Flow memory on the ordinary heap (not hugepages).
    pub heap_bytes: u64,
}

impl NodePlan {
    pub fn pages(&self, size: PageSize) -> u64 {
        self.hugepage_bytes.div_ceil(size.bytes())
    }
}

/// The plan for a configuration on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// False with `--no-huge`: DPDK then takes ordinary memory and needs no
    /// pages.
    pub hugepages: bool,
    /// EAL's `--in-memory` (skua's default): hugepages without a hugetlbfs
    /// mount.
    pub in_memory: bool,
    /// `--huge-dir`, when given.
    pub huge_dir: Option<PathBuf>,
    pub ports: Vec<PlannedPort>,
    pub nodes: Vec<NodePlan>,
    /// Assumptions made and warnings, for people.
    pub notes: Vec<String>,
}

impl Plan {
    pub fn hugepage_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.hugepage_bytes).sum()
    }

    /// Why the EAL arguments need a hugetlbfs mount, if they do.
    pub fn mount_needed(&self) -> Option<String> {
        if !self.hugepages {
            return None;
        }
        match (&self.huge_dir, self.in_memory) {
            (Some(d), _) => Some(format!("--huge-dir {}", d.display())),
            (None, false) => Some("no --in-memory".into()),
            (None, true) => None,
        }
    }
}

/// Bytes of one mempool object for `data_room`.
pub fn obj_bytes(data_room: u16) -> u64 {
    let elt = (MBUF_STRUCT + u64::from(data_room)).next_multiple_of(8);
    let mut lines = (OBJ_HEADER + elt).div_ceil(64);
    if lines & 1 == 0 {
        lines += 1;
    }
    lines * 64
}

/// The pool's objects and caches.
pub fn mempool_bytes(mbufs: u32, cache: u32, data_room: u16) -> u64 {
    u64::from(mbufs) * obj_bytes(data_room) + if cache > 0 { MEMPOOL_CACHES } else { 0 }
}

/// The pool's ring and the port's descriptor rings.
pub fn ring_bytes(mbufs: u32, rx_queues: u32, rx_descriptors: u16, tx_descriptors: u16) -> u64 {
    let slots = u64::from(mbufs).saturating_add(1).next_power_of_two();
    RING_SLOT * slots
        + RING_HEADER
        + DESCRIPTOR
            * (u64::from(rx_queues) * u64::from(rx_descriptors) + u64::from(tx_descriptors))
}

/// What the EAL arguments say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EalView {
    pub pci: Vec<String>,
    pub blocked: Vec<String>,
    pub vdevs: Vec<String>,
    pub no_pci: bool,
    pub no_huge: bool,
    pub in_memory: bool,
    pub huge_dir: Option<PathBuf>,
    /// `--socket-mem`, MiB per node.
    pub socket_mem: Vec<u64>,
    /// `-m`, MiB.
    pub total_mem: Option<u64>,
    /// `-l`'s CPUs.
    pub lcores: Option<Vec<usize>>,
}

/// Reads the EAL arguments the way skua passes them (whitespace-separated).
pub fn eal_view(eal: &str) -> EalView {
    let args: Vec<&str> = eal.split_whitespace().collect();
    let mut v = EalView::default();
    let mut stateful = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        // `--opt=value`, `--opt value`, `-ovalue`, `-o value`.
        let mut value = |long: &[&str], short: Option<&str>| -> Option<String> {
            for l in long {
                if a == *l {
                    i += 1;
                    return args.get(i).map(|s| s.to_string());
                }
                if let Some(rest) = a.strip_prefix(l).and_then(|r| r.strip_prefix('=')) {
                    return Some(rest.to_string());
                }
            }
            if let Some(s) = short {
                if a == s {
                    i += 1;
                    return args.get(i).map(|s| s.to_string());
                }
                if let Some(rest) = a.strip_prefix(s) {
                    if !rest.is_empty() && !a.starts_with("--") {
                        return Some(rest.to_string());
                    }
                }
            }
            None
        };
        if let Some(d) =
            value(&["--allow", "--pci-whitelist"], Some("-a")).or_else(|| value(&[], Some("-w")))
        {
            v.pci.push(pci_address(&d));
        } else if let Some(d) = value(&["--block", "--pci-blacklist"], Some("-b")) {
            v.blocked.push(pci_address(&d));
        } else if let Some(d) = value(&["--vdev"], None) {
            v.vdevs.push(d.split(',').next().unwrap_or_default().to_string());
        } else if let Some(d) = value(&["--huge-dir"], None) {
            v.huge_dir = Some(PathBuf::from(d));
        } else if let Some(d) = value(&["--socket-mem"], None) {
            v.socket_mem = d.split(',').map(|x| x.trim().parse().unwrap_or(0)).collect();
        } else if let Some(d) = value(&[], Some("-m")) {
            v.total_mem = d.trim().parse().ok();
        } else if let Some(d) = value(&[], Some("-l")) {
            v.lcores = parse_cpu_list(&d).filter(|l| !l.is_empty());
        } else {
            match a {
                "--no-pci" => v.no_pci = true,
                "--no-huge" => v.no_huge = true,
                "--in-memory" => v.in_memory = true,
                _ => {}
            }
            if ["--file-prefix", "--proc-type", "--no-shconf"]
                .iter()
                .any(|o| a == *o || a.starts_with(&format!("{o}=")))
            {
                stateful = true;
            }
        }
        i += 1;
    }
    // skua adds --in-memory unless one of these is given (dataplane::dpdk::eal_args).
    if !stateful {
        v.in_memory = true;
    }
    v
}

/// `3b:02.0,arg=1` → `0000:3b:02.0`.
fn pci_address(dev: &str) -> String {
    let a = dev.split(',').next().unwrap_or_default().trim().to_ascii_lowercase();
    if a.len() == 7 && is_pci_address(&format!("0000:{a}")) {
        format!("0000:{a}")
    } else {
        a
    }
}

/// The plan for `input` on the machine `sys` shows.
pub fn plan(input: &PlanInput, sys: &System) -> Plan {
    let eal = eal_view(&input.eal_args);
    let mut notes = Vec::new();
    let nodes = match sys.nodes() {
        Ok(n) => n,
        Err(e) => {
            notes.push(format!("{e}: everything placed on node 0"));
            Vec::new()
        }
    };
    let node_of_cpu =
        |cpu: usize| nodes.iter().find(|n| n.cpus.contains(&cpu)).map_or(0, |n| n.node);
    let cores = input.cores.max(1);

    // Ports, in the order EAL probes them: PCI first, then virtual devices.
    let mut ports = Vec::new();
    if !eal.no_pci {
        let mut pci = eal.pci.clone();
        if pci.is_empty() {
            pci =
                sys.dpdk_bound_devices().into_iter().filter(|d| !eal.blocked.contains(d)).collect();
            if pci.is_empty() && eal.vdevs.is_empty() {
                notes.push("no port named in dpdk.eal_args (-a, --vdev) and none bound to vfio-pci here: planned for one PCI port on node 0".into());
                pci.push("(any PCI port)".into());
            }
        }
        for addr in pci {
            let node = match sys.pci_numa_node(&addr) {
                Some(n) => u32::try_from(n).unwrap_or(0),
                None => {
                    if is_pci_address(&addr) {
                        notes.push(format!("{addr} is not in sysfs here: planned on node 0"));
                    }
                    0
                }
            };
            ports.push(PlannedPort { name: addr, node, rx_queues: cores as u32 });
        }
    }
    for vdev in &eal.vdevs {
        ports.push(PlannedPort { name: vdev.clone(), node: 0, rx_queues: 1 });
    }
    if ports.is_empty() {
        notes.push("no ports: DPDK will find none to capture from".into());
    }

    let main_cpu = eal
        .lcores
        .as_ref()
        .and_then(|l| l.first().copied())
        .or_else(|| input.cpus.iter().min().copied())
        .unwrap_or(0);
    let main_node = node_of_cpu(main_cpu);
    let mut plans: Vec<NodePlan> = Vec::new();
    fn entry(plans: &mut Vec<NodePlan>, node: u32) -> &mut NodePlan {
        let i = match plans.iter().position(|p| p.node == node) {
            Some(i) => i,
            None => {
                plans.push(NodePlan {
                    node,
                    ports: Vec::new(),
                    cores: 0,
                    mempool_bytes: 0,
                    ring_bytes: 0,
                    dpdk_bytes: 0,
                    eal_floor_bytes: 0,
                    hugepage_bytes: 0,
                    pages_2m: 0,
                    pages_1g: 0,
                    heap_bytes: 0,
                });
                plans.len() - 1
            }
        };
        &mut plans[i]
    }
    entry(&mut plans, main_node).dpdk_bytes += DPDK_BASE;
    for p in &ports {
        let e = entry(&mut plans, p.node);
        e.ports.push(p.name.clone());
        e.mempool_bytes += mempool_bytes(input.mbufs, input.mbuf_cache, input.mbuf_data_room);
        e.ring_bytes +=
            ring_bytes(input.mbufs, p.rx_queues, input.rx_descriptors, input.tx_descriptors);
        e.dpdk_bytes += PORT_OVERHEAD;
    }
    for k in 0..cores {
        let node =
            if input.cpus.is_empty() { 0 } else { node_of_cpu(input.cpus[k % input.cpus.len()]) };
        let e = entry(&mut plans, node);
        e.cores += 1;
        e.heap_bytes += input.heap_per_core;
    }
    for (node, mib) in eal.socket_mem.iter().enumerate() {
        if *mib > 0 {
            entry(&mut plans, node as u32).eal_floor_bytes = mib << 20;
        }
    }
    if let Some(mib) = eal.total_mem {
        let e = entry(&mut plans, main_node);
        e.eal_floor_bytes = e.eal_floor_bytes.max(mib << 20);
    }
    for p in &mut plans {
        p.hugepage_bytes = (p.mempool_bytes + p.ring_bytes + p.dpdk_bytes).max(p.eal_floor_bytes);
        p.pages_2m = p.pages(PageSize::M2);
        p.pages_1g = p.pages(PageSize::G1);
    }
    plans.sort_by_key(|p| p.node);

    // The pool must hold what the queues and the lcore caches can keep at once.
    for p in &ports {
        let held = u64::from(p.rx_queues) * u64::from(input.rx_descriptors)
            + cores as u64 * (input.burst as u64 + u64::from(input.mbuf_cache) * 3 / 2);
        if u64::from(input.mbufs) < held {
            notes.push(format!(
                "dpdk.mbufs {} is below the {held} mbufs {} can hold at once ({} RX queue(s) × {} descriptors + {cores} core(s) × (burst + 1.5 × cache)): expect rx_nombuf drops",
                input.mbufs, p.name, p.rx_queues, input.rx_descriptors
            ));
        }
    }
    if input.mbuf_cache > MEMPOOL_CACHE_MAX {
        notes.push(format!("dpdk.mbuf_cache {} is above DPDK's limit of {MEMPOOL_CACHE_MAX}: the pool will not be created", input.mbuf_cache));
    }
    if eal.no_huge {
        notes.push("--no-huge: DPDK takes ordinary memory (skua adds -m 512 unless given); no hugepages needed".into());
    }
    Plan {
        hugepages: !eal.no_huge,
        in_memory: eal.in_memory,
        huge_dir: eal.huge_dir,
        ports,
        nodes: plans,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::tests::fake;

    fn input(eal: &str, cores: usize) -> PlanInput {
        PlanInput {
            eal_args: eal.into(),
            cores,
            cpus: vec![0, 1, 2, 3],
            mbufs: 16_383,
            mbuf_cache: 256,
            mbuf_data_room: 2176,
            rx_descriptors: 1024,
            tx_descriptors: 512,
            burst: 32,
            heap_per_core: 10 << 20,
        }
    }

    #[test]
    fn object_sizes_follow_dpdk() {
        assert_eq!(obj_bytes(2176), 2368, "37 lines: odd already");
        // 64 + 128 + 2048 = 2240 = 35 lines → odd.
        assert_eq!(obj_bytes(2048), 2240);
        // 64 + 128 + 2112 = 2304 = 36 lines → 37.
        assert_eq!(obj_bytes(2112), 37 * 64);
        assert_eq!(obj_bytes(2177), 39 * 64, "2369 B → 38 lines → 39");
        assert_eq!(ring_bytes(16_383, 1, 1024, 512), 8 * 16_384 + 384 + 64 * 1536);
        assert_eq!(mempool_bytes(1000, 0, 2176), 2_368_000);
    }

    #[test]
    fn default_config_on_one_node_matches_the_measured_pages() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[(2048, 512, 512, 0)])], "");
        let p =
            plan(&input("--no-pci --vdev net_pcap0,rx_pcap=/x.pcap", 1), &System::new(d.path()));
        assert!(p.hugepages && p.in_memory && p.mount_needed().is_none());
        assert_eq!(p.ports, vec![PlannedPort { name: "net_pcap0".into(), node: 0, rx_queues: 1 }]);
        assert_eq!(p.nodes.len(), 1);
        let n = &p.nodes[0];
        assert_eq!(n.mempool_bytes, 16_383 * 2368 + MEMPOOL_CACHES);
        assert_eq!(n.dpdk_bytes, DPDK_BASE + PORT_OVERHEAD);
        // A net_pcap run took 20 pages here; the plan leaves room for a NIC PMD.
        assert_eq!(n.pages_2m, 29);
        assert_eq!(n.pages_1g, 1);
        assert_eq!(n.heap_bytes, 10 << 20);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn ports_and_cores_land_on_their_nodes() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-1", &[(2048, 0, 0, 0)]), (1, "2-3", &[(2048, 0, 0, 0)])], "");
        for (addr, node) in [("0000:3b:00.0", "1"), ("0000:af:00.0", "-1")] {
            let dev = d.path().join("sys/bus/pci/devices").join(addr);
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::write(dev.join("numa_node"), format!("{node}\n")).unwrap();
        }
        let mut i = input("-a 3b:00.0 --allow=0000:af:00.0,rxq=1 -a 0000:01:00.0", 4);
        i.cpus = vec![2, 3, 0, 1];
        let p = plan(&i, &System::new(d.path()));
        let nodes: Vec<(String, u32, u32)> =
            p.ports.iter().map(|p| (p.name.clone(), p.node, p.rx_queues)).collect();
        assert_eq!(
            nodes,
            vec![
                ("0000:3b:00.0".into(), 1, 4),
                ("0000:af:00.0".into(), 0, 4),
                ("0000:01:00.0".into(), 0, 4)
            ]
        );
        assert!(
            p.notes.iter().any(|n| n.contains("0000:01:00.0 is not in sysfs")),
            "{:?}",
            p.notes
        );
        assert_eq!(p.nodes.len(), 2);
        let (n0, n1) = (&p.nodes[0], &p.nodes[1]);
        assert_eq!((n0.ports.len(), n1.ports.len()), (2, 1));
        assert_eq!((n0.cores, n1.cores), (2, 2));
        // The main lcore is the lowest CPU (0, node 0): EAL's base is there.
        assert_eq!(n0.dpdk_bytes, DPDK_BASE + 2 * PORT_OVERHEAD);
        assert_eq!(n1.dpdk_bytes, PORT_OVERHEAD);
        assert_eq!(n1.ring_bytes, ring_bytes(16_383, 4, 1024, 512));
    }

    #[test]
    fn bound_devices_are_the_ports_when_none_is_named() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[])], "");
        let p = plan(&input("", 2), &System::new(d.path()));
        assert_eq!(p.ports[0].name, "(any PCI port)");
        assert!(p.notes[0].contains("no port named"), "{:?}", p.notes);
        std::fs::create_dir_all(d.path().join("sys/bus/pci/drivers/vfio-pci/0000:3b:02.0"))
            .unwrap();
        std::fs::create_dir_all(d.path().join("sys/bus/pci/drivers/vfio-pci/0000:3b:02.1"))
            .unwrap();
        let p = plan(&input("-b 0000:3b:02.1", 2), &System::new(d.path()));
        assert_eq!(
            p.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            vec!["0000:3b:02.0"]
        );
    }

    #[test]
    fn eal_arguments_change_what_is_needed() {
        let v = eal_view("--no-pci --no-huge -m 512 --vdev=net_null0 -l 2-3 --file-prefix x --huge-dir /mnt/h --socket-mem 1024,0");
        assert!(v.no_pci && v.no_huge && !v.in_memory);
        assert_eq!(v.vdevs, vec!["net_null0"]);
        assert_eq!(v.total_mem, Some(512));
        assert_eq!(v.lcores, Some(vec![2, 3]));
        assert_eq!(v.huge_dir, Some(PathBuf::from("/mnt/h")));
        assert_eq!(v.socket_mem, vec![1024, 0]);
        assert!(eal_view("").in_memory, "skua adds --in-memory");
        assert!(eal_view("--in-memory --file-prefix=a").in_memory);
        assert!(!eal_view("--proc-type=primary").in_memory);
        assert_eq!(eal_view("-a0000:3b:00.0 -w 3b:00.1").pci, vec!["0000:3b:00.0", "0000:3b:00.1"]);
        // A trailing option without its value is ignored, not a panic.
        assert_eq!(eal_view("--vdev").vdevs, Vec::<String>::new());

        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[])], "");
        let sys = System::new(d.path());
        let p = plan(&input("--no-pci --vdev net_null0 --no-huge", 1), &sys);
        assert!(!p.hugepages && p.mount_needed().is_none());
        let p = plan(&input("--no-pci --vdev net_null0 --socket-mem 512", 1), &sys);
        assert_eq!(p.nodes[0].hugepage_bytes, 512 << 20, "--socket-mem is a floor");
        assert_eq!(p.nodes[0].pages_2m, 256);
        let p = plan(&input("--no-pci --vdev net_null0 --file-prefix t", 1), &sys);
        assert_eq!(p.mount_needed().as_deref(), Some("no --in-memory"));
        let p = plan(&input("--no-pci", 1), &sys);
        assert!(p.ports.is_empty() && p.notes.iter().any(|n| n.contains("no ports")));
    }

    #[test]
    fn an_undersized_pool_or_cache_is_noted() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[])], "");
        let mut i = input("-a 0000:3b:00.0", 4);
        i.mbufs = 2047;
        i.mbuf_cache = 600;
        let p = plan(&i, &System::new(d.path()));
        assert!(p.notes.iter().any(|n| n.contains("dpdk.mbufs 2047 is below")), "{:?}", p.notes);
        assert!(p.notes.iter().any(|n| n.contains("above DPDK's limit")), "{:?}", p.notes);
    }

    #[test]
    fn without_sysfs_everything_is_on_node_0() {
        let d = tempfile::tempdir().unwrap();
        let p = plan(&input("--no-pci --vdev net_null0", 2), &System::new(d.path()));
        assert_eq!(p.nodes.len(), 1);
        assert_eq!(p.nodes[0].cores, 2);
        assert!(p.notes[0].contains("no hugepage support"), "{:?}", p.notes);
    }
}
