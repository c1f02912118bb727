//! The start-up check: before EAL starts, every NUMA node the plan puts
//! memory on must have that much free hugepage memory (all page sizes
//! together), and a hugetlbfs mount must exist when the EAL arguments need
//! one. A node that falls short fails the start at once with the command
//! that fixes it, rather than EAL failing later with "Cannot allocate
//! memory" or a mempool coming up short.

use crate::error::{HugepagesError, PreflightError, Shortfall};
use crate::plan::Plan;
use crate::system::{reserve_command, sysfs_command, NodePools, System};
use crate::{HugepagesConfig, PageSize};

/// Checks `plan` against the machine `sys` shows. `cfg` gives the page size
/// the fixing command reserves and the mount path it suggests.
pub fn preflight(plan: &Plan, sys: &System, cfg: &HugepagesConfig) -> Result<(), PreflightError> {
    if !plan.hugepages {
        return Ok(());
    }
    let nodes = sys.nodes().map_err(|e| match e {
        e @ HugepagesError::NoSupport { .. } => PreflightError::NoSupport(e),
        e => PreflightError::Read(e),
    })?;
    let numa = sys.numa();
    let mut short = Vec::new();
    for need in plan.nodes.iter().filter(|n| n.hugepage_bytes > 0) {
        let Some(have) = nodes.iter().find(|n| n.node == need.node) else {
            return Err(PreflightError::NoSuchNode {
                node: need.node,
                nodes: nodes.iter().map(|n| n.node).collect(),
            });
        };
        let free = have.free_bytes();
        if free >= need.hugepage_bytes {
            continue;
        }
        // Fix with the configured size when the node has that pool.
        let size = if have.pool(cfg.page_size).is_some() {
            cfg.page_size
        } else {
            PageSize::ALL.into_iter().find(|s| have.pool(*s).is_some()).unwrap_or(PageSize::M2)
        };
        let total = have.pool(size).map_or(0, |p| p.total);
        let pages_short = (need.hugepage_bytes - free).div_ceil(size.bytes());
        let node = numa.then_some(need.node);
        short.push(Shortfall {
            node,
            needed: need.hugepage_bytes,
            free,
            pools: describe_pools(have),
            size,
            pages_short,
            command: reserve_command(node, size, total + pages_short),
            sysfs_command: sysfs_command(node, size, total + pages_short),
        });
    }
    if !short.is_empty() {
        return Err(PreflightError::Shortfall(short));
    }
    if let Some(why) = plan.mount_needed() {
        let mounts = sys.mounts().map_err(PreflightError::Read)?;
        let usable = |kib: Option<u64>| {
            kib.is_some_and(|k| {
                nodes.iter().any(|n| n.pools.iter().any(|p| p.size_kib == k && p.free > 0))
            })
        };
        let ok = match &plan.huge_dir {
            Some(dir) => mounts.iter().any(|m| &m.path == dir && usable(m.page_size_kib)),
            None => mounts.iter().any(|m| usable(m.page_size_kib)),
        };
        if !ok {
            let path = plan.huge_dir.clone().unwrap_or_else(|| cfg.mount_path.clone());
            return Err(PreflightError::NotMounted {
                huge_dir: plan.huge_dir.clone(),
                why,
                command: format!(
                    "skua hugepages mount --path {} --size {}",
                    path.display(),
                    cfg.page_size.short()
                ),
                path,
                size: cfg.page_size,
            });
        }
    }
    Ok(())
}

/// `2 MiB pool: 12 of 512 free; 1 GiB pool: none`.
fn describe_pools(n: &NodePools) -> String {
    PageSize::ALL
        .iter()
        .map(|s| match n.pool(*s) {
            Some(p) => format!("{s} pool: {} of {} free", p.free, p.total),
            None => format!("{s} pool: none"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, PlanInput};
    use crate::system::tests::fake;

    fn input(eal: &str) -> PlanInput {
        PlanInput {
            eal_args: eal.into(),
            cores: 2,
            cpus: vec![0, 2],
            mbufs: 16_383,
            mbuf_cache: 256,
            mbuf_data_room: 2176,
            rx_descriptors: 1024,
            tx_descriptors: 512,
            burst: 32,
            heap_per_core: 0,
        }
    }

    fn pci(root: &std::path::Path, addr: &str, node: u32) {
        let dev = root.join("sys/bus/pci/devices").join(addr);
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("numa_node"), format!("{node}\n")).unwrap();
    }

    #[test]
    fn enough_pages_pass() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-1", &[(2048, 512, 100, 0)])], "");
        let sys = System::new(d.path());
        let p = plan(&input("--no-pci --vdev net_null0"), &sys);
        preflight(&p, &sys, &HugepagesConfig::default()).unwrap();
    }

    #[test]
    fn a_short_node_names_the_shortfall_and_the_command() {
        let d = tempfile::tempdir().unwrap();
        // Node 0 has plenty; node 1, where the NIC is, has 10 pages of 2 MiB,
        // 4 of them in use.
        fake(
            d.path(),
            &[
                (0, "0-1", &[(2048, 512, 512, 0), (1048576, 0, 0, 0)]),
                (1, "2-3", &[(2048, 10, 6, 0), (1048576, 0, 0, 0)]),
            ],
            "",
        );
        pci(d.path(), "0000:3b:00.0", 1);
        let sys = System::new(d.path());
        let p = plan(&input("-a 0000:3b:00.0"), &sys);
        let need = p.nodes.iter().find(|n| n.node == 1).unwrap().hugepage_bytes;
        let e = preflight(&p, &sys, &HugepagesConfig::default()).unwrap_err();
        let PreflightError::Shortfall(s) = &e else { panic!("{e}") };
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].node, Some(1));
        let short = (need - 6 * (2 << 20)).div_ceil(2 << 20);
        assert_eq!(s[0].pages_short, short);
        // The pool keeps its 10 pages and grows by the shortfall.
        assert_eq!(
            s[0].command,
            format!("skua hugepages reserve --node 1 --size 2M --pages {}", 10 + short)
        );
        let text = e.to_string();
        assert!(
            text.contains("NUMA node 1 needs ") && text.contains("has 12.0 MiB free"),
            "{text}"
        );
        assert!(text.contains("2 MiB pool: 6 of 10 free; 1 GiB pool: 0 of 0 free"), "{text}");
        assert!(
            text.contains("/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"),
            "{text}"
        );
        println!("{text}");

        // With 1 GiB pages configured, the fix is one 1 GiB page.
        let cfg = HugepagesConfig { page_size: PageSize::G1, ..HugepagesConfig::default() };
        let PreflightError::Shortfall(s) = preflight(&p, &sys, &cfg).unwrap_err() else { panic!() };
        assert_eq!(s[0].command, "skua hugepages reserve --node 1 --size 1G --pages 1");
    }

    #[test]
    fn free_pages_of_both_sizes_count() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[(2048, 0, 0, 0), (1048576, 1, 1, 0)])], "");
        let sys = System::new(d.path());
        preflight(
            &plan(&input("--no-pci --vdev net_null0"), &sys),
            &sys,
            &HugepagesConfig::default(),
        )
        .unwrap();
    }

    #[test]
    fn no_huge_skips_and_missing_support_says_so() {
        let d = tempfile::tempdir().unwrap();
        let sys = System::new(d.path());
        let p = plan(&input("--no-pci --vdev net_null0 --no-huge"), &sys);
        preflight(&p, &sys, &HugepagesConfig::default()).unwrap();
        let p = plan(&input("--no-pci --vdev net_null0"), &sys);
        let e = preflight(&p, &sys, &HugepagesConfig::default()).unwrap_err().to_string();
        assert!(e.contains("no hugepage support") && e.contains("hugepages=512"), "{e}");
    }

    #[test]
    fn a_node_the_machine_lacks_is_named() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[(2048, 512, 512, 0)])], "");
        pci(d.path(), "0000:3b:00.0", 3);
        let sys = System::new(d.path());
        let e =
            preflight(&plan(&input("-a 0000:3b:00.0"), &sys), &sys, &HugepagesConfig::default())
                .unwrap_err();
        assert!(matches!(e, PreflightError::NoSuchNode { node: 3, .. }), "{e}");
    }

    #[test]
    fn without_in_memory_a_mount_is_needed() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-3", &[(2048, 512, 512, 0), (1048576, 0, 0, 0)])], "");
        let sys = System::new(d.path());
        let cfg = HugepagesConfig::default();
        let p = plan(&input("--no-pci --vdev net_null0 --file-prefix t"), &sys);
        let e = preflight(&p, &sys, &cfg).unwrap_err().to_string();
        assert!(e.contains("fix: skua hugepages mount --path /dev/hugepages --size 2M"), "{e}");
        // A mount of a size with no free pages does not count.
        std::fs::write(d.path().join("proc/mounts"), "none /mnt/g hugetlbfs rw,pagesize=1G 0 0\n")
            .unwrap();
        assert!(preflight(&p, &sys, &cfg).is_err());
        std::fs::write(
            d.path().join("proc/mounts"),
            "nodev /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n",
        )
        .unwrap();
        preflight(&p, &sys, &cfg).unwrap();
        // --huge-dir wants that very mount.
        let p = plan(&input("--no-pci --vdev net_null0 --huge-dir /mnt/h"), &sys);
        let e = preflight(&p, &sys, &cfg).unwrap_err().to_string();
        assert!(e.contains("no hugetlbfs mount at /mnt/h") && e.contains("--path /mnt/h"), "{e}");
    }
}
