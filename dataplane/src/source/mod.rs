//! Packet sources behind one trait.
//!
//! A source hands out frames in bursts. It either feeds one dataplane core
//! (a DPDK RX queue filled by the NIC's symmetric RSS), or it is a single
//! stream (a capture file, an AF_PACKET ring, a DPDK port without RSS) that
//! the software dispatcher spreads over the cores with the same symmetric
//! hash.

use crate::wire::LinkType;

pub mod afpacket;
#[cfg(dpdk)]
pub mod dpdk;
pub mod file;

/// One captured frame, borrowed from the source until the callback returns.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The captured bytes.
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()` when snapped).
    pub wire_len: u32,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub link: LinkType,
}

/// What one `poll` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// This many frames were delivered.
    Frames(usize),
    /// Nothing right now; poll again.
    Idle,
    /// The source is exhausted (end of file, all loops played).
    End,
}

/// Drops and events a source counted below skua (in the NIC, the kernel
/// ring or the file), reported by name beside the dataplane's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub drops: Vec<(&'static str, u64)>,
}

/// A device's own receive counters, read live (for `/metrics`) rather than
/// once at exit: per port, and per RX queue of each port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSample {
    pub ports: Vec<PortSample>,
    pub queues: Vec<QueueSample>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSample {
    /// The device's name (`0000:3b:02.0`, `net_pcap0`).
    pub port: String,
    pub packets: u64,
    pub bytes: u64,
    /// Dropped by the device because no RX descriptor was free: the queue
    /// was not polled fast enough.
    pub missed: u64,
    pub errors: u64,
    /// Receive buffer (mbuf) allocation failures.
    pub no_buffer: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSample {
    pub port: String,
    pub queue: u16,
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// Reads a source's device counters from any thread while the source is
/// polled on its core; taken before the source moves to that core.
pub type DeviceProbe = std::sync::Arc<dyn Fn(&mut DeviceSample) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{iface}: {reason}")]
    Interface { iface: String, reason: String },
    #[error("DPDK: {0}")]
    Dpdk(String),
}

/// Opens the DPDK backend: EAL from `cfg`, every available port started,
/// sources for `cores` dataplane cores. In a build without DPDK this is an
/// error that says so.
pub fn open_dpdk(
    cfg: &crate::config::DpdkConfig,
    cores: usize,
    cpus: &[usize],
) -> Result<crate::engine::Sources, SourceError> {
    #[cfg(dpdk)]
    {
        dpdk::open(cfg, cores, cpus)
    }
    #[cfg(not(dpdk))]
    {
        let _ = (cfg, cores, cpus);
        Err(SourceError::Dpdk(NO_DPDK.into()))
    }
}

#[cfg_attr(dpdk, allow(dead_code))]
const NO_DPDK: &str = "this skua was built without the DPDK backend (libdpdk-dev 22.11 was not found at build time); \
     use --pcap or --iface";

/// The sending side of a DPDK loopback vdev (`net_ring`), for offering a
/// known load to the dataplane (see [`open_dpdk_loopback`]).
pub struct LoopbackSender {
    #[cfg(dpdk)]
    inner: dpdk::Loopback,
}

impl LoopbackSender {
    /// Registers the calling (generator) thread with DPDK; call once on it.
    pub fn on_thread_start(&mut self) -> Result<(), SourceError> {
        #[cfg(dpdk)]
        return self.inner.on_thread_start();
        #[cfg(not(dpdk))]
        Err(SourceError::Dpdk(NO_DPDK.into()))
    }

    /// Offers one burst of frames; returns how many the port took (the rest
    /// are dropped by the sender: the loopback ring was full).
    pub fn offer(&mut self, frames: &[&[u8]]) -> usize {
        #[cfg(dpdk)]
        return self.inner.offer(frames);
        #[cfg(not(dpdk))]
        {
            let _ = frames;
            0
        }
    }
}

/// Opens one DPDK loopback vdev (`cfg.eal_args` such as
/// `--no-pci --vdev net_ring0`): the stream the dataplane reads and the
/// sender that feeds it. In a build without DPDK this is an error.
pub fn open_dpdk_loopback(
    cfg: &crate::config::DpdkConfig,
    cpus: &[usize],
) -> Result<(crate::engine::Sources, LoopbackSender), SourceError> {
    #[cfg(dpdk)]
    {
        dpdk::open_loopback(cfg, cpus).map(|(s, inner)| (s, LoopbackSender { inner }))
    }
    #[cfg(not(dpdk))]
    {
        let _ = (cfg, cpus);
        Err(SourceError::Dpdk(NO_DPDK.into()))
    }
}

pub trait PacketSource: Send {
    /// A short description for logs and the summary (`pcap:FILE`, ...).
    fn describe(&self) -> String;

    /// Whether frames arrive on their own clock (a NIC, a kernel ring). A
    /// live source is never waited for: when a core's ring is full its
    /// frames are dropped and counted. A replay waits instead, so a file
    /// loses nothing.
    fn is_live(&self) -> bool;

    /// Called once on the thread that will poll, before the first poll
    /// (DPDK registers the thread as an lcore here).
    fn on_thread_start(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    /// Delivers the next burst of frames to `out`.
    fn poll(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<Poll, SourceError>;

    fn stats(&self) -> SourceStats {
        SourceStats::default()
    }

    /// A reader of the device's live counters, for sources backed by one
    /// (DPDK ports). Of the sources sharing a device, only one returns it,
    /// so a port is not counted once per core.
    fn device_probe(&self) -> Option<DeviceProbe> {
        None
    }
}
