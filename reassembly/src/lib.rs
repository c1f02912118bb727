//! Flows, TCP reassembly and protocol dissection into items.
//!
//! Will own (see `docs/architecture.md`): the canonical flow key and the
//! per-core flow table with its timer wheel; in-order TCP delivery with
//! out-of-order buffering, explicit gaps and named memory limits; IPv4/IPv6
//! fragment reassembly; one folder per dissector under `dissectors/` behind a
//! single streaming contract; and the `Item` type agents receive. Pure Rust:
//! it takes byte slices, never mbufs, and builds without DPDK.

#![forbid(unsafe_code)]
