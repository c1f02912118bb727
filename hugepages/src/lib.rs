//! Hugepages for the DPDK backend.
//!
//! Owns: the per-NUMA-node 2 MiB and 1 GiB pools as sysfs shows them
//! ([`System::status`]), reservation as root ([`System::reserve`]), hugetlbfs
//! mounting ([`System::mount`]), sizing — the hugepages a configuration
//! needs per node for its mempools, rings and DPDK's own allocations
//! ([`plan()`]) — and the start-up [`preflight()`] that fails with the exact
//! command that fixes the node.
//!
//! Invariants: every path is read under a configurable root ([`System::new`])
//! so tests run against a fake sysfs tree; nothing here panics on what it
//! reads; every failure is a typed error that says what is missing and,
//! where a command fixes it, which one. The crate knows nothing of skua's
//! other crates: the caller turns its configuration into a [`PlanInput`].

#![forbid(unsafe_code)]

mod error;
pub mod plan;
pub mod preflight;
pub mod system;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::{HugepagesError, MountError, PreflightError, ReserveError, Shortfall};
pub use plan::{plan, NodePlan, Plan, PlanInput, PlannedPort};
pub use preflight::preflight;
pub use system::{Mount, MountOutcome, NodePools, Pool, Reserved, Status, System};

/// The two hugepage sizes DPDK uses on x86-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PageSize {
    /// 2 MiB: reservable at run time on any node.
    M2,
    /// 1 GiB: fewer TLB misses; usually reserved at boot (contiguous memory).
    G1,
}

impl PageSize {
    pub const ALL: [PageSize; 2] = [PageSize::M2, PageSize::G1];

    pub const fn kib(self) -> u64 {
        match self {
            PageSize::M2 => 2048,
            PageSize::G1 => 1024 * 1024,
        }
    }

    pub const fn bytes(self) -> u64 {
        self.kib() * 1024
    }

    /// The sysfs pool directory name, `hugepages-2048kB`.
    pub fn dir_name(self) -> String {
        format!("hugepages-{}kB", self.kib())
    }

    /// As `--size` and `pagesize=` take it: `2M`, `1G`.
    pub const fn short(self) -> &'static str {
        match self {
            PageSize::M2 => "2M",
            PageSize::G1 => "1G",
        }
    }

    pub fn from_kib(kib: u64) -> Option<PageSize> {
        PageSize::ALL.into_iter().find(|s| s.kib() == kib)
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageSize::M2 => "2 MiB",
            PageSize::G1 => "1 GiB",
        })
    }
}

/// A page size that is neither 2 MiB nor 1 GiB.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hugepage size {0:?}: expected 2M or 1G")]
pub struct UnknownPageSize(pub String);

impl FromStr for PageSize {
    type Err = UnknownPageSize;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "2m" | "2mb" | "2mib" | "2048k" | "2048kb" => Ok(PageSize::M2),
            "1g" | "1gb" | "1gib" | "1024m" | "1048576k" | "1048576kb" => Ok(PageSize::G1),
            _ => Err(UnknownPageSize(t.to_string())),
        }
    }
}

impl TryFrom<String> for PageSize {
    type Error = UnknownPageSize;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PageSize> for String {
    fn from(p: PageSize) -> String {
        p.short().to_string()
    }
}

/// The `hugepages` section of skua's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HugepagesConfig {
    /// Before DPDK starts (`skua run --dpdk`, the worker), check that every
    /// NUMA node has the free hugepages `skua hugepages plan` computes and
    /// exit at once, naming the shortfall and the command that fixes it.
    /// Skipped when `dpdk.eal_args` holds `--no-huge`.
    pub preflight: bool,
    /// Page size `reserve`, `mount` and the preflight's fixing command use:
    /// `2M` or `1G`.
    pub page_size: PageSize,
    /// Where `skua hugepages mount` mounts hugetlbfs.
    pub mount_path: PathBuf,
    /// Directory under which `sys/` and `proc/` are read and written: `/`
    /// on a host; elsewhere for a container that mounts the host's sysfs
    /// under another path, or a test's fake tree.
    pub root: PathBuf,
}

impl Default for HugepagesConfig {
    fn default() -> Self {
        Self {
            preflight: true,
            page_size: PageSize::M2,
            mount_path: PathBuf::from("/dev/hugepages"),
            root: PathBuf::from("/"),
        }
    }
}

/// `40_000_000` → `"38.1 MiB"`: sizes for people.
pub fn human_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if b < 1024 {
        format!("{b} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / (K * K))
    } else {
        format!("{:.2} GiB", f / (K * K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_parse_and_print() {
        for (s, p) in [
            ("2M", PageSize::M2),
            ("2MiB", PageSize::M2),
            ("2048kB", PageSize::M2),
            ("1G", PageSize::G1),
            ("1gib", PageSize::G1),
        ] {
            assert_eq!(s.parse::<PageSize>(), Ok(p), "{s}");
        }
        assert!("4K".parse::<PageSize>().is_err());
        assert_eq!(PageSize::G1.dir_name(), "hugepages-1048576kB");
        assert_eq!(PageSize::M2.to_string(), "2 MiB");
        assert_eq!(PageSize::from_kib(2048), Some(PageSize::M2));
        assert_eq!(PageSize::from_kib(64), None);
    }

    #[test]
    fn config_defaults_and_serde() {
        let c: HugepagesConfig = serde_json::from_str(r#"{"page_size": "1G"}"#).unwrap();
        assert_eq!(c.page_size, PageSize::G1);
        assert!(c.preflight);
        assert!(serde_json::from_str::<HugepagesConfig>(r#"{"page_size": "3M"}"#).is_err());
        assert!(serde_json::from_str::<HugepagesConfig>(r#"{"pagesize": "2M"}"#).is_err());
        assert_eq!(serde_json::to_value(HugepagesConfig::default()).unwrap()["page_size"], "2M");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_bytes(40_000_000), "38.1 MiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
    }
}
