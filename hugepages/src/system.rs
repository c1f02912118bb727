//! The machine's hugepage state as sysfs and procfs show it, and the two
//! actions that change it: reserving pages (writing `nr_hugepages`) and
//! mounting hugetlbfs.
//!
//! Every path is `root` joined with the kernel's path, so a test points
//! `root` at a fake tree. Per-node pools come from
//! `sys/devices/system/node/nodeN/hugepages/hugepages-<kB>kB/`; a machine
//! without that directory (no NUMA in the kernel) has one pool set in
//! `sys/kernel/mm/hugepages/`, reported as node 0.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{HugepagesError, MountError, ReserveError};
use crate::PageSize;

const NODE_DIR: &str = "sys/devices/system/node";
const GLOBAL_DIR: &str = "sys/kernel/mm/hugepages";
const MOUNTS: &str = "proc/mounts";
const MEMINFO: &str = "proc/meminfo";
const PCI_DEVICES: &str = "sys/bus/pci/devices";
const PCI_DRIVERS: &str = "sys/bus/pci/drivers";
/// Kernel drivers that hand a PCI device to DPDK.
const DPDK_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// One hugepage pool: pages of one size on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub size_kib: u64,
    /// `nr_hugepages`: pages reserved (persistent pool).
    pub total: u64,
    /// `free_hugepages`: reserved and not in use.
    pub free: u64,
    /// `surplus_hugepages`: allocated beyond `total` through overcommit.
    pub surplus: u64,
}

impl Pool {
    pub fn page_size(&self) -> Option<PageSize> {
        PageSize::from_kib(self.size_kib)
    }

    pub fn free_bytes(&self) -> u64 {
        self.free.saturating_mul(self.size_kib.saturating_mul(1024))
    }
}

/// The pools of one NUMA node (node 0 on a machine without NUMA sysfs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePools {
    pub node: u32,
    /// CPUs of the node (`cpulist`); empty when unknown.
    pub cpus: Vec<usize>,
    /// Pools by size, smallest first.
    pub pools: Vec<Pool>,
}

impl NodePools {
    pub fn pool(&self, size: PageSize) -> Option<&Pool> {
        self.pools.iter().find(|p| p.size_kib == size.kib())
    }

    pub fn free_bytes(&self) -> u64 {
        self.pools.iter().map(Pool::free_bytes).sum()
    }
}

/// A hugetlbfs mount from `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub path: PathBuf,
    /// Its page size (`pagesize=`, else the default hugepage size).
    pub page_size_kib: Option<u64>,
    pub options: String,
}

/// Everything `skua hugepages status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Whether the pools are per NUMA node (false: one global set as node 0).
    pub numa: bool,
    /// `Hugepagesize` from `/proc/meminfo`.
    pub default_size_kib: Option<u64>,
    pub nodes: Vec<NodePools>,
    pub mounts: Vec<Mount>,
}

/// What a reservation left in one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reserved {
    /// `None`: the global pool of a machine without NUMA sysfs.
    pub node: Option<u32>,
    pub size: PageSize,
    pub total: u64,
    pub free: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MountOutcome {
    Mounted,
    AlreadyMounted,
}

/// The machine, seen under `root`.
#[derive(Debug, Clone)]
pub struct System {
    root: PathBuf,
}

impl System {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The running host (`/`).
    pub fn host() -> Self {
        Self::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether sysfs has per-node directories.
    pub fn numa(&self) -> bool {
        node_dirs(&self.path(NODE_DIR)).is_ok_and(|v| !v.is_empty())
    }

    /// Every node's pools; node 0 with the global pools when there is no
    /// NUMA directory.
    pub fn nodes(&self) -> Result<Vec<NodePools>, HugepagesError> {
        let node_root = self.path(NODE_DIR);
        let nodes = node_dirs(&node_root).unwrap_or_default();
        if !nodes.is_empty() {
            let mut out = Vec::with_capacity(nodes.len());
            for (node, dir) in nodes {
                let cpus = match std::fs::read_to_string(dir.join("cpulist")) {
                    Ok(s) => parse_cpu_list(&s).unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                out.push(NodePools { node, cpus, pools: read_pools(&dir.join("hugepages"))? });
            }
            return Ok(out);
        }
        let global = self.path(GLOBAL_DIR);
        if !global.is_dir() {
            return Err(HugepagesError::NoSupport { numa: node_root, global });
        }
        let cpus = std::fs::read_to_string(self.path("sys/devices/system/cpu/online"))
            .ok()
            .and_then(|s| parse_cpu_list(&s))
            .unwrap_or_default();
        Ok(vec![NodePools { node: 0, cpus, pools: read_pools(&global)? }])
    }

    /// hugetlbfs mounts, in `/proc/mounts` order.
    pub fn mounts(&self) -> Result<Vec<Mount>, HugepagesError> {
        let path = self.path(MOUNTS);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(HugepagesError::Read { path, source }),
        };
        let default = self.default_size_kib();
        Ok(parse_mounts(&text, default))
    }

    /// `Hugepagesize` from `/proc/meminfo`, in KiB.
    pub fn default_size_kib(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.path(MEMINFO)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("Hugepagesize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn status(&self) -> Result<Status, HugepagesError> {
        Ok(Status {
            numa: self.numa(),
            default_size_kib: self.default_size_kib(),
            nodes: self.nodes()?,
            mounts: self.mounts()?,
        })
    }

    /// The NUMA node a PCI device sits on (`numa_node`, -1 when the
    /// platform does not say); `None` when the device is not there.
    pub fn pci_numa_node(&self, addr: &str) -> Option<i64> {
        let text =
            std::fs::read_to_string(self.path(PCI_DEVICES).join(addr).join("numa_node")).ok()?;
        text.trim().parse().ok()
    }

    /// PCI devices bound to a driver DPDK can use (what EAL probes when no
    /// `-a` names a device), sorted.
    pub fn dpdk_bound_devices(&self) -> Vec<String> {
        let mut out = Vec::new();
        for drv in DPDK_DRIVERS {
            let Ok(entries) = std::fs::read_dir(self.path(PCI_DRIVERS).join(drv)) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if is_pci_address(&name) {
                    out.push(name);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Sets the pool of `size` to `pages` pages on `node`, or on every node
    /// when `node` is `None` (the global pool without NUMA sysfs). Reads the
    /// pool back: the kernel grants fewer pages when it cannot find free
    /// contiguous memory, which is an error naming the fix.
    pub fn reserve(
        &self,
        node: Option<u32>,
        size: PageSize,
        pages: u64,
    ) -> Result<Vec<Reserved>, ReserveError> {
        let ids: Vec<u32> = node_dirs(&self.path(NODE_DIR))
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let numa = !ids.is_empty();
        if !numa && !self.path(GLOBAL_DIR).is_dir() {
            return Err(HugepagesError::NoSupport {
                numa: self.path(NODE_DIR),
                global: self.path(GLOBAL_DIR),
            }
            .into());
        }
        let targets: Vec<(Option<u32>, PathBuf)> = if numa {
            let chosen: Vec<u32> = match node {
                Some(n) if ids.contains(&n) => vec![n],
                Some(n) => return Err(ReserveError::NoSuchNode { node: n, nodes: ids }),
                None => ids.clone(),
            };
            chosen
                .into_iter()
                .map(|n| {
                    (
                        Some(n),
                        self.path(NODE_DIR)
                            .join(format!("node{n}/hugepages"))
                            .join(size.dir_name()),
                    )
                })
                .collect()
        } else {
            if let Some(n) = node.filter(|&n| n != 0) {
                return Err(ReserveError::NoSuchNode { node: n, nodes: vec![0] });
            }
            vec![(None, self.path(GLOBAL_DIR).join(size.dir_name()))]
        };
        let mut out = Vec::with_capacity(targets.len());
        for (n, dir) in targets {
            let where_ = where_name(n);
            if !dir.is_dir() {
                let hint = match size {
                    PageSize::G1 => "1 GiB pages need a CPU with pdpe1gb and the kernel argument hugepagesz=1G; use --size 2M otherwise".into(),
                    PageSize::M2 => "the kernel has no 2 MiB hugepages (CONFIG_HUGETLBFS)".into(),
                };
                return Err(ReserveError::SizeUnsupported { where_, size, path: dir, hint });
            }
            let nr = dir.join("nr_hugepages");
            let written = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&nr)
                .and_then(|mut f| f.write_all(format!("{pages}\n").as_bytes()));
            if let Err(source) = written {
                return Err(if permission_denied(&source) {
                    ReserveError::NotPermitted {
                        path: nr,
                        command: reserve_command(n, size, pages),
                        source,
                    }
                } else {
                    ReserveError::Write { path: nr, source }
                });
            }
            let total = read_u64(&nr)?;
            let free = read_u64(&dir.join("free_hugepages"))?;
            if total < pages {
                return Err(ReserveError::NotEnoughMemory {
                    where_,
                    size,
                    requested: pages,
                    got: total,
                    hint: not_enough_hint(n, size, pages),
                });
            }
            out.push(Reserved { node: n, size, total, free });
        }
        Ok(out)
    }

    /// Mounts hugetlbfs with `size` pages on `path` (created if missing).
    /// A hugetlbfs of that size already there is fine.
    pub fn mount(&self, path: &Path, size: PageSize) -> Result<MountOutcome, MountError> {
        if let Some(m) = self.mount_at(path)? {
            return if m.page_size_kib == Some(size.kib()) {
                Ok(MountOutcome::AlreadyMounted)
            } else {
                Err(MountError::OtherSize {
                    path: path.to_path_buf(),
                    mounted: m.page_size_kib.map_or("unknown-size".into(), kib_name),
                    wanted: size,
                })
            };
        }
        std::fs::create_dir_all(path)
            .map_err(|source| MountError::CreateDir { path: path.to_path_buf(), source })?;
        let data = format!("pagesize={}", size.short());
        nix::mount::mount(
            Some("nodev"),
            path,
            Some("hugetlbfs"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|source| match source {
            nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => MountError::NotPermitted {
                path: path.to_path_buf(),
                command: format!(
                    "skua hugepages mount --path {} --size {}",
                    path.display(),
                    size.short()
                ),
                source,
            },
            nix::errno::Errno::ENODEV => MountError::NoHugetlbfs { path: path.to_path_buf() },
            nix::errno::Errno::EINVAL => MountError::SizeRefused { path: path.to_path_buf(), size },
            source => MountError::Sys { op: "mounting", path: path.to_path_buf(), source },
        })?;
        Ok(MountOutcome::Mounted)
    }

    /// Unmounts the hugetlbfs on `path` (its files, and so their pages, go).
    pub fn unmount(&self, path: &Path) -> Result<(), MountError> {
        nix::mount::umount(path).map_err(|source| match source {
            nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => MountError::NotPermitted {
                path: path.to_path_buf(),
                command: format!("umount {}", path.display()),
                source,
            },
            source => MountError::Sys { op: "unmounting", path: path.to_path_buf(), source },
        })
    }

    /// The hugetlbfs mounted on `path`, if any.
    pub fn mount_at(&self, path: &Path) -> Result<Option<Mount>, HugepagesError> {
        let canonical = std::fs::canonicalize(path).ok();
        Ok(self
            .mounts()?
            .into_iter()
            .rev()
            .find(|m| m.path == path || Some(&m.path) == canonical.as_ref()))
    }
}

fn where_name(node: Option<u32>) -> String {
    match node {
        Some(n) => format!("NUMA node {n}"),
        None => "this machine".into(),
    }
}

/// The `skua hugepages reserve` command for one pool.
pub fn reserve_command(node: Option<u32>, size: PageSize, pages: u64) -> String {
    match node {
        Some(n) => {
            format!("skua hugepages reserve --node {n} --size {} --pages {pages}", size.short())
        }
        None => format!("skua hugepages reserve --size {} --pages {pages}", size.short()),
    }
}

/// The same through sysfs on the host.
pub fn sysfs_command(node: Option<u32>, size: PageSize, pages: u64) -> String {
    match node {
        Some(n) => {
            format!("echo {pages} > /{NODE_DIR}/node{n}/hugepages/{}/nr_hugepages", size.dir_name())
        }
        None => format!("echo {pages} > /{GLOBAL_DIR}/{}/nr_hugepages", size.dir_name()),
    }
}

fn not_enough_hint(node: Option<u32>, size: PageSize, pages: u64) -> String {
    match size {
        PageSize::G1 => format!(
            "1 GiB pages are best reserved at boot, before memory fragments: kernel arguments \
             `default_hugepagesz=1G hugepagesz=1G hugepages={pages}` (deploy/RUNBOOK.md), or use --size 2M"
        ),
        PageSize::M2 => format!(
            "free the page cache and compact memory, then retry: `sync; echo 3 > /proc/sys/vm/drop_caches; \
             echo 1 > /proc/sys/vm/compact_memory; {}`, or reserve at boot with the kernel argument hugepages={pages}",
            reserve_command(node, size, pages)
        ),
    }
}

/// EACCES, EPERM, or EROFS (a read-only /sys in a container).
fn permission_denied(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::PermissionDenied
        || matches!(e.raw_os_error(), Some(code) if code == nix::libc::EPERM || code == nix::libc::EROFS)
}

/// `nodeN` directories under `dir`, by node number.
fn node_dirs(dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name();
        let Some(n) =
            name.to_str().and_then(|s| s.strip_prefix("node")).and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if e.path().is_dir() {
            out.push((n, e.path()));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// The `hugepages-<kB>kB` pools under `dir`; none when `dir` is missing.
fn read_pools(dir: &Path) -> Result<Vec<Pool>, HugepagesError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(HugepagesError::Read { path: dir.to_path_buf(), source }),
    };
    let mut pools = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(kib) = name
            .to_str()
            .and_then(|s| s.strip_prefix("hugepages-"))
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let p = e.path();
        let surplus = match read_u64(&p.join("surplus_hugepages")) {
            Ok(v) => v,
            Err(HugepagesError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        pools.push(Pool {
            size_kib: kib,
            total: read_u64(&p.join("nr_hugepages"))?,
            free: read_u64(&p.join("free_hugepages"))?,
            surplus,
        });
    }
    pools.sort_by_key(|p| p.size_kib);
    Ok(pools)
}

fn read_u64(path: &Path) -> Result<u64, HugepagesError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| HugepagesError::Read { path: path.to_path_buf(), source })?;
    text.trim().parse().map_err(|_| HugepagesError::Parse {
        path: path.to_path_buf(),
        content: text.trim().chars().take(40).collect(),
    })
}

/// `0-3,8,10-11` → `[0, 1, 2, 3, 8, 10, 11]`; `None` on anything else.
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 65_536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// hugetlbfs lines of a `/proc/mounts` text.
fn parse_mounts(text: &str, default_kib: Option<u64>) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[2] != "hugetlbfs" {
                return None;
            }
            let size = f[3]
                .split(',')
                .find_map(|o| o.strip_prefix("pagesize="))
                .and_then(parse_size_kib)
                .or(default_kib);
            Some(Mount {
                path: PathBuf::from(unescape_mount(f[1])),
                page_size_kib: size,
                options: f[3].to_string(),
            })
        })
        .collect()
}

/// `2M` → 2048, `1G` → 1048576, `1024M` → 1048576, `64K` → 64 (KiB).
fn parse_size_kib(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    match unit.to_ascii_uppercase().as_str() {
        "K" | "KB" => Some(n),
        "M" | "MB" => n.checked_mul(1024),
        "G" | "GB" => n.checked_mul(1024 * 1024),
        "" => Some(n / 1024),
        _ => None,
    }
}

/// `/proc/mounts` escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn kib_name(kib: u64) -> String {
    match PageSize::from_kib(kib) {
        Some(p) => p.to_string(),
        None => format!("{kib} KiB"),
    }
}

/// `0000:3b:02.0` (domain:bus:device.function).
pub fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11].iter().all(|&i| b[i].is_ascii_hexdigit())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `(size kB, nr, free, surplus)` of one pool.
    pub(crate) type FakePool = (u64, u64, u64, u64);

    /// A fake sysfs/procfs tree: `nodes` are `(node, cpulist, pools)`.
    pub(crate) fn fake(root: &Path, nodes: &[(u32, &str, &[FakePool])], mounts: &str) {
        for (n, cpus, pools) in nodes {
            let dir = root.join(NODE_DIR).join(format!("node{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cpulist"), format!("{cpus}\n")).unwrap();
            for (kib, nr, free, surplus) in pools.iter() {
                pool_files(
                    &dir.join("hugepages").join(format!("hugepages-{kib}kB")),
                    *nr,
                    *free,
                    *surplus,
                );
            }
        }
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::write(root.join(MOUNTS), mounts).unwrap();
        std::fs::write(root.join(MEMINFO), "MemTotal: 1 kB\nHugepagesize:       2048 kB\n")
            .unwrap();
    }

    pub(crate) fn pool_files(dir: &Path, nr: u64, free: u64, surplus: u64) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("nr_hugepages"), format!("{nr}\n")).unwrap();
        std::fs::write(dir.join("free_hugepages"), format!("{free}\n")).unwrap();
        std::fs::write(dir.join("surplus_hugepages"), format!("{surplus}\n")).unwrap();
    }

    const MOUNTS_TEXT: &str = "proc /proc proc rw 0 0\n\
        nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
        none /mnt/huge\\0401G hugetlbfs rw,relatime,pagesize=1024M 0 0\n\
        none /mnt/plain hugetlbfs rw,relatime 0 0\n";

    #[test]
    fn two_nodes_with_both_sizes() {
        let d = tempfile::tempdir().unwrap();
        fake(
            d.path(),
            &[
                (0, "0-3,8", &[(2048, 512, 500, 0), (1048576, 2, 1, 0)]),
                (1, "4-7", &[(2048, 0, 0, 3)]),
            ],
            MOUNTS_TEXT,
        );
        let s = System::new(d.path()).status().unwrap();
        assert!(s.numa);
        assert_eq!(s.default_size_kib, Some(2048));
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.nodes[0].cpus, vec![0, 1, 2, 3, 8]);
        assert_eq!(
            s.nodes[0].pool(PageSize::M2),
            Some(&Pool { size_kib: 2048, total: 512, free: 500, surplus: 0 })
        );
        assert_eq!(s.nodes[0].pool(PageSize::G1).unwrap().free, 1);
        assert_eq!(s.nodes[0].free_bytes(), 500 * (2 << 20) + (1 << 30));
        assert_eq!(s.nodes[1].pool(PageSize::M2).unwrap().surplus, 3);
        assert_eq!(s.nodes[1].pool(PageSize::G1), None);
        assert_eq!(s.mounts.len(), 3);
        assert_eq!(s.mounts[0].path, Path::new("/dev/hugepages"));
        assert_eq!(s.mounts[0].page_size_kib, Some(2048));
        assert_eq!(s.mounts[1].path, Path::new("/mnt/huge 1G"));
        assert_eq!(s.mounts[1].page_size_kib, Some(1 << 20));
        assert_eq!(s.mounts[2].page_size_kib, Some(2048), "no pagesize= means the default size");
    }

    #[test]
    fn without_numa_the_global_pools_are_node_0() {
        let d = tempfile::tempdir().unwrap();
        pool_files(&d.path().join(GLOBAL_DIR).join("hugepages-2048kB"), 64, 60, 0);
        std::fs::create_dir_all(d.path().join("sys/devices/system/cpu")).unwrap();
        std::fs::write(d.path().join("sys/devices/system/cpu/online"), "0-1\n").unwrap();
        let sys = System::new(d.path());
        assert!(!sys.numa());
        let nodes = sys.nodes().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!((nodes[0].node, nodes[0].cpus.clone()), (0, vec![0, 1]));
        assert_eq!(nodes[0].pools[0].free, 60);
        assert!(sys.mounts().unwrap().is_empty(), "no proc/mounts in the tree: no mounts");
        let r = sys.reserve(None, PageSize::M2, 128).unwrap();
        assert_eq!(r, vec![Reserved { node: None, size: PageSize::M2, total: 128, free: 60 }]);
        assert_eq!(
            std::fs::read_to_string(
                d.path().join(GLOBAL_DIR).join("hugepages-2048kB/nr_hugepages")
            )
            .unwrap(),
            "128\n"
        );
        assert!(matches!(
            sys.reserve(Some(1), PageSize::M2, 1),
            Err(ReserveError::NoSuchNode { node: 1, .. })
        ));
    }

    #[test]
    fn no_hugepage_support_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = System::new(d.path()).nodes().unwrap_err().to_string();
        assert!(e.contains("no hugepage support") && e.contains("sys/kernel/mm/hugepages"), "{e}");
    }

    #[test]
    fn reserve_writes_each_node_and_names_what_is_missing() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0-1", &[(2048, 512, 512, 0)]), (1, "2-3", &[(2048, 0, 0, 0)])], "");
        let sys = System::new(d.path());
        let r = sys.reserve(Some(1), PageSize::M2, 64).unwrap();
        assert_eq!(r[0].node, Some(1));
        assert_eq!(sys.nodes().unwrap()[1].pool(PageSize::M2).unwrap().total, 64);
        assert_eq!(
            sys.nodes().unwrap()[0].pool(PageSize::M2).unwrap().total,
            512,
            "node 0 untouched"
        );
        // Every node when none is named; a shorter number leaves no stale digits.
        let r = sys.reserve(None, PageSize::M2, 8).unwrap();
        assert_eq!(r.iter().map(|r| r.total).collect::<Vec<_>>(), vec![8, 8]);
        let e = sys.reserve(Some(7), PageSize::M2, 1).unwrap_err();
        assert!(
            matches!(&e, ReserveError::NoSuchNode { node: 7, nodes } if nodes == &vec![0, 1]),
            "{e}"
        );
        let e = sys.reserve(Some(0), PageSize::G1, 4).unwrap_err().to_string();
        assert!(e.contains("no 1 GiB hugepage pool") && e.contains("hugepagesz=1G"), "{e}");
        // A pool file that is not writable as a file: a write error with the path.
        let nr = d.path().join(NODE_DIR).join("node1/hugepages/hugepages-2048kB/nr_hugepages");
        std::fs::remove_file(&nr).unwrap();
        std::fs::create_dir(&nr).unwrap();
        let e = sys.reserve(Some(1), PageSize::M2, 4).unwrap_err();
        assert!(matches!(e, ReserveError::Write { .. }), "{e}");
    }

    #[test]
    fn permission_errors_carry_the_command() {
        for code in [nix::libc::EACCES, nix::libc::EPERM, nix::libc::EROFS] {
            assert!(permission_denied(&std::io::Error::from_raw_os_error(code)));
        }
        assert!(!permission_denied(&std::io::Error::from_raw_os_error(nix::libc::EINVAL)));
        let e = ReserveError::NotPermitted {
            path: "/sys/x".into(),
            command: reserve_command(Some(0), PageSize::M2, 64),
            source: std::io::Error::from_raw_os_error(nix::libc::EACCES),
        };
        let t = e.to_string();
        assert!(
            t.contains("needs root")
                && t.ends_with("run: sudo skua hugepages reserve --node 0 --size 2M --pages 64"),
            "{t}"
        );
        let e = ReserveError::NotEnoughMemory {
            where_: where_name(Some(1)),
            size: PageSize::G1,
            requested: 16,
            got: 3,
            hint: not_enough_hint(Some(1), PageSize::G1, 16),
        };
        let t = e.to_string();
        assert!(
            t.starts_with("NUMA node 1: asked the kernel for 16 × 1 GiB pages and got 3"),
            "{t}"
        );
        assert!(t.contains("hugepages=16"), "{t}");
        assert!(not_enough_hint(None, PageSize::M2, 8)
            .contains("compact_memory; skua hugepages reserve --size 2M --pages 8"));
        assert_eq!(
            sysfs_command(Some(1), PageSize::G1, 2),
            "echo 2 > /sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages"
        );
    }

    #[test]
    fn mount_of_a_mounted_path_is_a_no_op_or_a_size_clash() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0", &[(2048, 1, 1, 0)])], MOUNTS_TEXT);
        let sys = System::new(d.path());
        assert_eq!(
            sys.mount(Path::new("/dev/hugepages"), PageSize::M2).unwrap(),
            MountOutcome::AlreadyMounted
        );
        let e = sys.mount(Path::new("/dev/hugepages"), PageSize::G1).unwrap_err().to_string();
        assert!(e.contains("already has a hugetlbfs mount with 2 MiB pages"), "{e}");
    }

    #[test]
    fn pci_devices_and_bound_drivers() {
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join(PCI_DEVICES).join("0000:3b:02.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("numa_node"), "1\n").unwrap();
        let vfio = d.path().join(PCI_DRIVERS).join("vfio-pci");
        std::fs::create_dir_all(vfio.join("0000:3b:02.0")).unwrap();
        std::fs::create_dir_all(vfio.join("module")).unwrap();
        std::fs::write(vfio.join("bind"), "").unwrap();
        let sys = System::new(d.path());
        assert_eq!(sys.pci_numa_node("0000:3b:02.0"), Some(1));
        assert_eq!(sys.pci_numa_node("0000:00:01.0"), None);
        assert_eq!(sys.dpdk_bound_devices(), vec!["0000:3b:02.0".to_string()]);
    }

    #[test]
    fn parsers_take_odd_input_without_panicking() {
        assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_size_kib("2M"), Some(2048));
        assert_eq!(parse_size_kib("1G"), Some(1 << 20));
        assert_eq!(parse_size_kib("1024M"), Some(1 << 20));
        assert_eq!(parse_size_kib("64K"), Some(64));
        assert_eq!(parse_size_kib("M"), None);
        assert_eq!(parse_size_kib("99999999999999999999G"), None);
        assert_eq!(unescape_mount("/a\\040b\\"), "/a b\\");
        assert_eq!(unescape_mount("\\04"), "\\04");
        assert!(parse_mounts("garbage\n\nnodev\n", None).is_empty());
        assert!(is_pci_address("0000:3b:02.0"));
        assert!(!is_pci_address("3b:02.0"));
        assert!(!is_pci_address("module"));
    }

    #[test]
    fn unreadable_numbers_are_parse_errors() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), &[(0, "0", &[(2048, 1, 1, 0)])], "");
        std::fs::write(
            d.path().join(NODE_DIR).join("node0/hugepages/hugepages-2048kB/free_hugepages"),
            "lots\n",
        )
        .unwrap();
        let e = System::new(d.path()).nodes().unwrap_err().to_string();
        assert!(e.contains("free_hugepages: expected a number, found \"lots\""), "{e}");
    }
}
