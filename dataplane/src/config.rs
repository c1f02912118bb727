//! The dataplane's configuration: the `dataplane`, `pcap`, `dpdk` and
//! `afpacket` sections of skua's config file. Doc comments here are the
//! user documentation (`docs/config.md` is generated from the same text).

use serde::{Deserialize, Serialize};

/// Dataplane cores and the queues between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    /// Dataplane cores (poll threads). Each owns the flows hashed to it.
    pub cores: usize,
    /// Pin each dataplane thread to one CPU of the process' affinity
    /// (the pod's cpuset), core k on the k-th allowed CPU.
    pub pin_cores: bool,
    /// Frames per batch handed from the software dispatcher to a core.
    pub batch_frames: usize,
    /// Batches in flight per core between dispatcher and core (the ring
    /// size). With a live source a full ring drops the batch
    /// (`ring_full`); a replay waits instead.
    pub ring_batches: usize,
    /// Stop after this many milliseconds without a packet, once packets
    /// have been seen (0 = never). How a DPDK `net_pcap` replay ends.
    pub idle_timeout_ms: u64,
    /// Stop after this many seconds (0 = run until the source ends or a
    /// signal).
    pub duration_s: f64,
    /// Let the kernel back the process' heap with transparent huge pages
    /// (`alloc::transparent_huge_pages` says why they are off by default).
    pub transparent_huge_pages: bool,
    /// Bytes of recent packets each dataplane core keeps for `pcap.path`,
    /// `pcap.snapshot` and the dashboard's pcap download (a ring per core,
    /// allocated at start; each packet costs its captured bytes rounded up
    /// to 8 plus 32). The oldest packets are evicted to make room
    /// (`skua_retention_evicted_packets_total{reason="bytes"}`). 0 turns
    /// retention off, and the capture path then does no work for it.
    pub retention_bytes: u64,
    /// Packets older than this many seconds of capture time (behind the
    /// core's newest packet) are evicted
    /// (`skua_retention_evicted_packets_total{reason="age"}`); 0 = no time
    /// budget, only bytes.
    pub retention_seconds: u32,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            cores: 1,
            pin_cores: true,
            batch_frames: 256,
            ring_batches: 64,
            idle_timeout_ms: 0,
            duration_s: 0.0,
            transparent_huge_pages: false,
            retention_bytes: DEFAULT_RETENTION_BYTES,
            retention_seconds: 300,
        }
    }
}

/// `dataplane.retention_bytes` by default: 32 MiB per core.
pub const DEFAULT_RETENTION_BYTES: u64 = 32 << 20;

impl DataplaneConfig {
    /// The retention budgets (fragments are tied to their datagram within
    /// `fragment_timeout_ms`, the reassembler's).
    pub fn retention(&self, fragment_timeout_ms: u64) -> crate::retention::RetentionConfig {
        crate::retention::RetentionConfig {
            bytes_per_core: self.retention_bytes,
            max_age_ns: u64::from(self.retention_seconds) * 1_000_000_000,
            fragment_window_ns: fragment_timeout_ms.saturating_mul(1_000_000),
        }
    }
}

/// Capture-file replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PcapConfig {
    /// `fast` (as fast as the cores take it) or `recorded` (the capture's
    /// own inter-packet times, scaled by `speed`).
    pub pace: PaceMode,
    /// Replay speed factor for `pace: recorded` (2.0 = twice as fast).
    pub speed: f64,
    /// Times the capture is played (0 = forever, until a signal).
    pub loops: u64,
}

impl Default for PcapConfig {
    fn default() -> Self {
        Self { pace: PaceMode::Fast, speed: 1.0, loops: 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaceMode {
    Fast,
    Recorded,
}

/// The DPDK backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// EAL arguments, e.g. `-a 0000:3b:02.0` or
    /// `--no-pci --vdev net_pcap0,rx_pcap=/x.pcap`. skua adds `-l` from
    /// the process' CPU affinity and `--in-memory` unless given.
    pub eal_args: String,
    /// RX descriptors per queue.
    pub rx_descriptors: u16,
    /// TX descriptors (one queue per port, unused by capture).
    pub tx_descriptors: u16,
    /// Mbufs in each port's pool. Must cover every queue's descriptors plus
    /// one burst per core and the per-core caches.
    pub mbufs: u32,
    /// Per-lcore mbuf cache size.
    pub mbuf_cache: u32,
    /// Data room per mbuf (bytes, headroom included); frames larger than
    /// this arrive as segment chains.
    pub mbuf_data_room: u16,
    /// Frames per `rte_eth_rx_burst`.
    pub burst: usize,
    /// Put ports in promiscuous mode.
    pub promiscuous: bool,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        Self {
            eal_args: String::new(),
            rx_descriptors: 1024,
            tx_descriptors: 512,
            mbufs: 16_383,
            mbuf_cache: 256,
            mbuf_data_room: 2048 + 128,
            burst: 32,
            promiscuous: true,
        }
    }
}

/// Live capture through an AF_PACKET TPACKET_V3 ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfPacketConfig {
    /// Bytes per ring block (a multiple of the page size).
    pub block_size: u32,
    /// Blocks in the ring; the kernel drops (`kernel_drops`) when all are full.
    pub block_count: u32,
    /// Milliseconds before the kernel hands over a partly filled block.
    pub block_timeout_ms: u32,
    /// Put the interface in promiscuous mode.
    pub promiscuous: bool,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        Self { block_size: 1 << 20, block_count: 64, block_timeout_ms: 10, promiscuous: true }
    }
}

impl From<&AfPacketConfig> for crate::source::afpacket::RingConfig {
    fn from(c: &AfPacketConfig) -> Self {
        Self {
            block_size: c.block_size,
            block_count: c.block_count,
            block_timeout_ms: c.block_timeout_ms,
            promiscuous: c.promiscuous,
        }
    }
}

/// A configuration value out of its range, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Invalid {
    pub key: &'static str,
    pub reason: String,
}

fn check(ok: bool, key: &'static str, reason: &str) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid { key, reason: reason.to_string() })
    }
}

impl DataplaneConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        check((1..=128).contains(&self.cores), "dataplane.cores", "must be between 1 and 128")?;
        check(self.batch_frames >= 1, "dataplane.batch_frames", "must be at least 1")?;
        check(self.ring_batches >= 1, "dataplane.ring_batches", "must be at least 1")?;
        check(
            self.retention_bytes == 0 || self.retention_bytes >= 4096,
            "dataplane.retention_bytes",
            "must be 0 (off) or at least 4096",
        )?;
        check(
            self.duration_s >= 0.0 && self.duration_s.is_finite(),
            "dataplane.duration_s",
            "must be a non-negative number",
        )
    }
}

impl PcapConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        check(self.speed > 0.0 && self.speed.is_finite(), "pcap.speed", "must be a positive number")
    }
}

impl DpdkConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        check(self.rx_descriptors >= 32, "dpdk.rx_descriptors", "must be at least 32")?;
        check(self.mbufs >= 512, "dpdk.mbufs", "must be at least 512")?;
        check((1..=256).contains(&self.burst), "dpdk.burst", "must be between 1 and 256")?;
        check(self.mbuf_data_room >= 256 + 128, "dpdk.mbuf_data_room", "must be at least 384")
    }
}

impl AfPacketConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        check(
            self.block_size >= 4096 && self.block_size.is_multiple_of(4096),
            "afpacket.block_size",
            "must be a multiple of 4096",
        )?;
        check(self.block_count >= 2, "afpacket.block_count", "must be at least 2")
    }
}
