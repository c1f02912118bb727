//! skua's capture path.
//!
//! Owns: packet sources (DPDK ports, pcap/pcapng files, AF_PACKET rings)
//! behind one trait; the DPDK wrapper (EAL, ports with symmetric RSS,
//! mempools, mbufs); L2–L4 wire parsing; the symmetric Toeplitz hash shared
//! by NIC RSS and the software dispatcher; one pinned loop per dataplane
//! core; per-core counters with named drop reasons; per-core packet
//! retention for `pcap.path` (`retention`).
//!
//! Rules of this crate: the per-packet path does not allocate, lock, log
//! or make syscalls (DPDK and file sources poll in bursts into reused
//! buffers); nothing in it panics on input; `unsafe` lives only in `dpdk`,
//! `source::afpacket` and `alloc` (the process allocator).

pub mod alloc;
pub mod config;
pub mod counters;
pub mod dissect;
#[cfg(dpdk)]
pub mod dpdk;
pub mod engine;
pub mod hash;
pub mod parse;
pub mod retention;
pub mod source;
pub mod synth;
pub mod wire;

pub use counters::{CoreCounters, DropReason};
pub use engine::{EngineConfig, PacketHandler, RunReport, Sources};
pub use parse::{parse, PacketMeta};
pub use source::{Frame, PacketSource, Poll};

/// Whether this build has the DPDK backend.
pub const DPDK_AVAILABLE: bool = dpdk_sys::AVAILABLE;
