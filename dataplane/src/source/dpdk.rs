//! DPDK ports as packet sources: a PCI device or any vdev (`net_pcap`,
//! `net_af_packet`, `net_ring`, `net_null`, `net_memif`).
//!
//! With symmetric RSS each dataplane core polls queue `k` of every port
//! ([`DpdkSource::per_core`]); a port without RSS has one queue, read as a
//! single stream and spread over cores by the software dispatcher.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{DeviceProbe, Frame, PacketSource, Poll, SourceError, SourceStats};
use crate::dpdk::{DeviceStats, Eal, Port, RxQueue};
use crate::wire::LinkType;

pub struct DpdkSource {
    eal: Arc<Eal>,
    queues: Vec<RxQueue>,
    burst: usize,
    next: usize,
    /// Whether this source reports device-level counters (one source per
    /// port does, so they are not counted once per core).
    reports_device: bool,
}

impl DpdkSource {
    /// One source reading queue `queue` of every port.
    pub fn new(
        eal: Arc<Eal>,
        ports: &[Arc<Port>],
        queue: u16,
        burst: usize,
        reports_device: bool,
    ) -> Self {
        let queues =
            ports.iter().filter(|p| queue < p.rx_queues()).map(|p| p.rx_queue(queue)).collect();
        Self { eal, queues, burst, next: 0, reports_device }
    }

    pub fn device_stats(&self) -> DeviceStats {
        let mut total = DeviceStats::default();
        for q in &self.queues {
            let s = q.port().stats();
            total.ipackets += s.ipackets;
            total.ibytes += s.ibytes;
            total.imissed += s.imissed;
            total.ierrors += s.ierrors;
            total.rx_nombuf += s.rx_nombuf;
        }
        total
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl PacketSource for DpdkSource {
    fn describe(&self) -> String {
        let ports: Vec<String> =
            self.queues.iter().map(|q| format!("{}#{}", q.port().info().name, q.queue())).collect();
        format!("dpdk:{}", ports.join(","))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn on_thread_start(&mut self) -> Result<(), SourceError> {
        self.eal.register_thread().map_err(|e| SourceError::Dpdk(e.to_string()))
    }

    fn poll(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<Poll, SourceError> {
        if self.queues.is_empty() {
            return Ok(Poll::End);
        }
        let mut total = 0;
        // Every port once per poll, starting where the last poll stopped,
        // so a busy port cannot starve the others.
        for _ in 0..self.queues.len() {
            let i = self.next;
            self.next = (i + 1) % self.queues.len();
            let q = &mut self.queues[i];
            // One clock read per burst: mbufs carry no timestamp unless the
            // NIC offloads it, and per-packet clock reads cost more than the
            // precision is worth at this stage.
            let ts = now_ns();
            total += q.poll(self.burst, |data, wire_len| {
                out(Frame { data, wire_len, ts_ns: ts, link: LinkType::Ethernet });
            });
        }
        Ok(if total > 0 { Poll::Frames(total) } else { Poll::Idle })
    }

    fn stats(&self) -> SourceStats {
        if !self.reports_device {
            return SourceStats::default();
        }
        let s = self.device_stats();
        SourceStats {
            drops: vec![
                ("rx_missed", s.imissed),
                ("rx_errors", s.ierrors),
                ("rx_nombuf", s.rx_nombuf),
            ],
        }
    }

    fn device_probe(&self) -> Option<DeviceProbe> {
        if !self.reports_device {
            return None;
        }
        let ports: Vec<Arc<Port>> = self.queues.iter().map(|q| q.port().clone()).collect();
        Some(Arc::new(move |out| ports.iter().for_each(|p| p.sample(out))))
    }
}

/// Initialises EAL from `cfg`, starts every available port and returns the
/// sources for `cores` dataplane cores: one per core when every port
/// spreads flows with symmetric RSS, else one stream for the dispatcher.
pub fn open(
    cfg: &crate::config::DpdkConfig,
    cores: usize,
    cpus: &[usize],
) -> Result<crate::engine::Sources, SourceError> {
    use crate::dpdk::{eal_args, port_info, PortConfig};
    let err = |e: crate::dpdk::DpdkError| SourceError::Dpdk(e.to_string());
    let eal = Eal::init(&eal_args(&cfg.eal_args, cpus)).map_err(err)?;
    let ids = eal.ports();
    if ids.is_empty() {
        return Err(err(crate::dpdk::DpdkError::NoPorts));
    }
    let infos = ids.iter().map(|&p| port_info(p)).collect::<Result<Vec<_>, _>>().map_err(err)?;
    let rss =
        cores > 1 && infos.iter().all(|i| i.has_rss() && usize::from(i.max_rx_queues) >= cores);
    let port_cfg = PortConfig {
        rx_queues: if rss { cores as u16 } else { 1 },
        rx_descriptors: cfg.rx_descriptors,
        tx_descriptors: cfg.tx_descriptors,
        mbufs: cfg.mbufs,
        mbuf_cache: cfg.mbuf_cache,
        mbuf_data_room: cfg.mbuf_data_room,
        promiscuous: cfg.promiscuous,
    };
    let ports = ids
        .iter()
        .map(|&p| Port::start(&eal, p, &port_cfg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(if rss {
        crate::engine::Sources::PerCore(
            (0..cores)
                .map(|q| {
                    Box::new(DpdkSource::new(eal.clone(), &ports, q as u16, cfg.burst, q == 0))
                        as Box<dyn PacketSource>
                })
                .collect(),
        )
    } else {
        crate::engine::Sources::Single(Box::new(DpdkSource::new(eal, &ports, 0, cfg.burst, true)))
    })
}

/// The sending side of a loopback port (`net_ring`: its TX ring is its RX
/// ring): a generator thread offers frames at a rate it chooses, and the
/// dataplane receives them as from a NIC. Benchmarks use it for a known
/// offered load; capture itself never transmits.
pub struct Loopback {
    eal: Arc<Eal>,
    tx: crate::dpdk::TxQueue,
    pool: Arc<crate::dpdk::Mempool>,
    pending: Vec<crate::dpdk::Mbuf>,
}

impl Loopback {
    /// Registers the calling (generator) thread with EAL; call once on it.
    pub fn on_thread_start(&mut self) -> Result<(), SourceError> {
        self.eal.register_thread().map_err(|e| SourceError::Dpdk(e.to_string()))
    }

    /// Offers one burst of frames (at most [`crate::dpdk::MAX_BURST`]):
    /// copies each into an mbuf and transmits. Returns how many the port
    /// took; the rest (no mbuf, or its ring full) are dropped here.
    pub fn offer(&mut self, frames: &[&[u8]]) -> usize {
        for f in frames.iter().take(crate::dpdk::MAX_BURST) {
            let Some(mut m) = self.pool.alloc() else { break };
            if m.append(f) {
                self.pending.push(m);
            }
        }
        let sent = self.tx.send(&mut self.pending);
        self.pending.clear();
        sent
    }
}

/// Initialises EAL from `cfg` (whose `eal_args` name one loopback vdev,
/// e.g. `--no-pci --vdev net_ring0`), starts its port and returns the
/// single stream the dataplane reads and the [`Loopback`] that feeds it.
pub fn open_loopback(
    cfg: &crate::config::DpdkConfig,
    cpus: &[usize],
) -> Result<(crate::engine::Sources, Loopback), SourceError> {
    use crate::dpdk::{eal_args, Mempool, PortConfig};
    let err = |e: crate::dpdk::DpdkError| SourceError::Dpdk(e.to_string());
    let eal = Eal::init(&eal_args(&cfg.eal_args, cpus)).map_err(err)?;
    let Some(&id) = eal.ports().first() else {
        return Err(err(crate::dpdk::DpdkError::NoPorts));
    };
    let port_cfg = PortConfig {
        rx_queues: 1,
        rx_descriptors: cfg.rx_descriptors,
        tx_descriptors: cfg.tx_descriptors,
        mbufs: cfg.mbufs,
        mbuf_cache: cfg.mbuf_cache,
        mbuf_data_room: cfg.mbuf_data_room,
        promiscuous: false,
    };
    let port = Port::start(&eal, id, &port_cfg).map_err(err)?;
    let pool = Mempool::new(
        &eal,
        "skua_loopback_tx",
        cfg.mbufs,
        cfg.mbuf_cache,
        cfg.mbuf_data_room,
        port.info().socket.max(0),
    )
    .map_err(err)?;
    let loopback = Loopback {
        eal: eal.clone(),
        tx: port.tx_queue(),
        pool,
        pending: Vec::with_capacity(crate::dpdk::MAX_BURST),
    };
    let source = DpdkSource::new(eal, &[port], 0, cfg.burst, true);
    Ok((crate::engine::Sources::Single(Box::new(source)), loopback))
}
