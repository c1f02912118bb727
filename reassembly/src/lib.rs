//! Flows, TCP reassembly and protocol dissection into items.
//!
//! Owns the canonical flow key and the per-core flow table with its timers
//! (`flow`); in-order TCP delivery with out-of-order buffering, explicit gaps
//! and named memory limits (`tcp`, `seq`); IPv4/IPv6 fragment reassembly
//! (`frag`); one folder per dissector under `dissectors/` behind a single
//! streaming contract (HTTP/1.x, HTTP/2 and gRPC, DNS, Redis, Kafka,
//! PostgreSQL, AMQP 0-9-1, MySQL, MongoDB, TLS handshakes, WebSocket), each detected by
//! content on any port, registered in one list (`dissectors::registry`); and the
//! `Item` type agents receive (`item`) with the IP → pod snapshot that
//! names its endpoints (`podmap`); KFL, the filter language compiled once
//! and evaluated on items (`kfl`). `conversations` generates traffic
//! of each TCP protocol for tests and benches; `fuzzing` holds the fuzz
//! targets' entry points. The
//! dataplane calls one entry point, [`Reassembler`]. Pure Rust: it takes
//! byte slices, never mbufs, and builds without DPDK; all time comes from
//! packet timestamps.

#![forbid(unsafe_code)]

pub mod config;
#[doc(hidden)]
pub mod conversations;
pub mod counters;
pub mod dissectors;
pub mod flow;
pub mod frag;
#[doc(hidden)]
pub mod fuzzing;
pub mod item;
pub mod kfl;
pub mod packet;
pub mod podmap;
pub mod reassembler;
pub mod seq;
pub mod tcp;

pub use config::{AppProtocol, ReassemblyConfig};
pub use counters::ReassemblyCounters;
pub use item::{Item, NodeInfo};
pub use packet::{Fragment, Packet};
pub use podmap::{PodIndex, PodMap, PodRef};
pub use reassembler::Reassembler;

#[cfg(test)]
pub(crate) mod testutil;
