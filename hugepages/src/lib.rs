//! Hugepages for the DPDK backend.
//!
//! Will own: per-NUMA-node 2 MiB and 1 GiB pool inspection from sysfs,
//! reservation (as root) with errors naming what is missing, hugetlbfs
//! mounting, and `plan`: the pages a configuration needs for its mempools,
//! rings and flow tables, which the worker's start-up preflight checks.

#![forbid(unsafe_code)]
