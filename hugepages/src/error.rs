//! The crate's typed errors. Each says what is missing and, where one
//! command fixes it, which command.

use std::path::PathBuf;

use crate::{human_bytes, PageSize};

/// Reading the hugepage state failed.
#[derive(Debug, thiserror::Error)]
pub enum HugepagesError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: expected a number, found {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error(
        "no hugepage support: neither {numa} nor {global} exists (a kernel without CONFIG_HUGETLBFS, \
         or /sys not mounted)"
    )]
    NoSupport { numa: PathBuf, global: PathBuf },
}

/// Reserving hugepages failed.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error(transparent)]
    Read(#[from] HugepagesError),
    #[error(
        "writing {path}: {source}: reserving hugepages needs root on the host (CAP_SYS_ADMIN; /sys is \
         read-only inside an unprivileged container); run: sudo {command}"
    )]
    NotPermitted {
        path: PathBuf,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NUMA node {node} does not exist here (nodes: {nodes:?})")]
    NoSuchNode { node: u32, nodes: Vec<u32> },
    #[error("{where_}: no {size} hugepage pool ({path} is missing): {hint}")]
    SizeUnsupported { where_: String, size: PageSize, path: PathBuf, hint: String },
    #[error(
        "{where_}: asked the kernel for {requested} × {size} pages and got {got}: not enough free \
         contiguous memory there; {hint}"
    )]
    NotEnoughMemory { where_: String, size: PageSize, requested: u64, got: u64, hint: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Mounting hugetlbfs failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Read(#[from] HugepagesError),
    #[error("mounting hugetlbfs on {path}: {source}: mounting needs root (CAP_SYS_ADMIN); run: sudo {command}")]
    NotPermitted {
        path: PathBuf,
        command: String,
        #[source]
        source: nix::Error,
    },
    #[error("{path} already has a hugetlbfs mount with {mounted} pages, not {wanted}: use another --path")]
    OtherSize { path: PathBuf, mounted: String, wanted: PageSize },
    #[error("mounting hugetlbfs on {path}: the kernel has no hugetlbfs (CONFIG_HUGETLBFS)")]
    NoHugetlbfs { path: PathBuf },
    #[error(
        "mounting hugetlbfs on {path} with pagesize={size}: the kernel refused the size (no {size} pool: \
         for 1 GiB pages the CPU needs pdpe1gb and the kernel hugepagesz=1G)",
        size = size.short()
    )]
    SizeRefused { path: PathBuf, size: PageSize },
    #[error("creating {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} hugetlbfs on {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// One NUMA node without the free hugepages a configuration needs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The node; `None` on a machine without NUMA information in sysfs.
    pub node: Option<u32>,
    /// Hugepage bytes the plan needs on the node.
    pub needed: u64,
    /// Free hugepage bytes on the node, all sizes together.
    pub free: u64,
    /// What the node's pools hold, for the message (`2 MiB pool: 0 of 0 free`).
    pub pools: String,
    /// The page size the fix reserves.
    pub size: PageSize,
    /// Pages of `size` missing.
    pub pages_short: u64,
    /// The command that fixes the node (`skua hugepages reserve ...`).
    pub command: String,
    /// The same fix through sysfs, for a node without skua on it.
    pub sysfs_command: String,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = match self.node {
            Some(n) => format!("NUMA node {n}"),
            None => "this machine".into(),
        };
        write!(
            f,
            "{node} needs {} of hugepages and has {} free ({}): short by {} × {} pages\n    fix: {}\n    (as root; or: {})",
            human_bytes(self.needed),
            human_bytes(self.free),
            self.pools,
            self.pages_short,
            self.size,
            self.command,
            self.sysfs_command
        )
    }
}

/// Why DPDK would not start with hugepages.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "hugepages preflight: not enough free hugepages for this configuration (see `skua hugepages plan`):\n{}\n\
         (`--no-huge` in dpdk.eal_args runs without hugepages, slower; hugepages.preflight=false skips this check)",
        list(.0)
    )]
    Shortfall(Vec<Shortfall>),
    #[error(
        "hugepages preflight: the configuration puts memory on NUMA node {node}, which this machine does not \
         have (nodes: {nodes:?}); check the device's numa_node and the CPU list"
    )]
    NoSuchNode { node: u32, nodes: Vec<u32> },
    #[error(
        "hugepages preflight: no hugetlbfs mount{at} with free pages, and the EAL arguments ({why}) need one\n    \
         fix: {command}\n    (as root; or: mkdir -p {path} && mount -t hugetlbfs -o pagesize={size} nodev {path})",
        at = .huge_dir.as_ref().map(|d| format!(" at {}", d.display())).unwrap_or_default(),
        path = .path.display(),
        size = .size.short()
    )]
    NotMounted {
        huge_dir: Option<PathBuf>,
        why: String,
        command: String,
        path: PathBuf,
        size: PageSize,
    },
    #[error(
        "hugepages preflight: {0}\n    fix: reserve hugepages at boot (kernel arguments \
         `default_hugepagesz=2M hugepagesz=2M hugepages=512`, see deploy/RUNBOOK.md), or run with `--no-huge`"
    )]
    NoSupport(#[source] HugepagesError),
    #[error("hugepages preflight: {0}")]
    Read(#[source] HugepagesError),
}

fn list(s: &[Shortfall]) -> String {
    s.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n")
}
