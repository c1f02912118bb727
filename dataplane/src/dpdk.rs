//! The safe face of DPDK: EAL, mempools, ports, RX queues and mbufs.
//!
//! Every raw call of `dpdk-sys` that skua makes is wrapped once here and
//! returns a `Result`. Ownership follows DPDK's rules:
//! - [`Eal`] is process-wide and initialised at most once; every other
//!   handle keeps it alive through an `Arc`.
//! - A [`Port`] holds its [`Mempool`], so the pool outlives the queues that
//!   fill it; dropping the last handle stops and closes the port.
//! - An [`RxQueue`] is polled by exactly one thread (DPDK's rule for queues),
//!   which is why it is `Send` but not `Sync`.
//! - An [`Mbuf`] owns exactly one reference: it is not `Clone`, and its
//!   `Drop` frees it. Received bursts are freed in bulk instead, from an
//!   array reused across bursts.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use crate::hash::SYMMETRIC_RSS_KEY;

/// Frames taken per `rte_eth_rx_burst` call, at most.
pub const MAX_BURST: usize = 256;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DpdkError {
    #[error("EAL initialisation failed: {0}")]
    EalInit(String),
    #[error("EAL is already initialised in this process")]
    EalTwice,
    #[error("no DPDK port is available (give --vdev or allow a PCI device)")]
    NoPorts,
    #[error("port {port}: {what}: {reason}")]
    Port { port: u16, what: &'static str, reason: String },
    #[error("mempool {name}: {reason}")]
    Mempool { name: String, reason: String },
    #[error("thread registration as an lcore failed: {0}")]
    ThreadRegister(String),
    #[error("argument contains a NUL byte: {0:?}")]
    BadArgument(String),
}

fn errno_text(code: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string for any input.
    let s = unsafe { CStr::from_ptr(sys::rte_strerror(code.abs())) };
    format!("{} ({})", s.to_string_lossy(), code.abs())
}

fn last_errno() -> String {
    // SAFETY: reads the calling thread's rte_errno.
    errno_text(unsafe { sys::skua_rte_errno() })
}

static EAL_DONE: Mutex<bool> = Mutex::new(false);

/// The initialised Environment Abstraction Layer. `rte_eal_cleanup` runs
/// when the last handle is dropped.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (without a program name). Fails if
    /// called twice in one process: DPDK cannot re-initialise.
    pub fn init(args: &[String]) -> Result<Arc<Eal>, DpdkError> {
        let mut done = EAL_DONE.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return Err(DpdkError::EalTwice);
        }
        let mut owned = vec![CString::new("skua").expect("static name")];
        for a in args {
            owned.push(CString::new(a.as_str()).map_err(|_| DpdkError::BadArgument(a.clone()))?);
        }
        // rte_eal_init may permute argv; it gets its own pointer array, and
        // the strings stay alive in `owned` for the whole process (EAL keeps
        // pointers into them), hence the leak.
        let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        // SAFETY: argv holds `owned.len()` valid NUL-terminated strings that
        // live for the rest of the process, followed by a null pointer.
        let rc = unsafe { sys::rte_eal_init(owned.len() as c_int, argv.as_mut_ptr()) };
        std::mem::forget(argv);
        if rc < 0 {
            return Err(DpdkError::EalInit(last_errno()));
        }
        *done = true;
        Ok(Arc::new(Eal { _private: () }))
    }

    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised (this value exists).
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// Ids of the available ports, in order.
    pub fn ports(&self) -> Vec<u16> {
        let mut out = Vec::new();
        // SAFETY: EAL is initialised; rte_eth_find_next walks the port table.
        let mut p = unsafe { sys::rte_eth_find_next(0) } as u32;
        while p < sys::RTE_MAX_ETHPORTS {
            out.push(p as u16);
            // SAFETY: as above.
            p = unsafe { sys::rte_eth_find_next((p + 1) as u16) } as u32;
        }
        out
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is initialised.
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// Registers the calling thread as an lcore so mempool caches work
    /// from it. Call once per dataplane thread.
    pub fn register_thread(&self) -> Result<(), DpdkError> {
        // SAFETY: EAL is initialised; the call only touches this thread's state.
        if unsafe { sys::rte_thread_register() } != 0 {
            return Err(DpdkError::ThreadRegister(last_errno()));
        }
        Ok(())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone, so no port, pool or queue remains.
        unsafe {
            sys::rte_eal_cleanup();
        }
    }
}

/// The TSC, for cycle accounting.
pub fn rdtsc() -> u64 {
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe { sys::skua_rte_rdtsc() }
}

/// A packet mbuf pool.
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    _eal: Arc<Eal>,
}

// SAFETY: DPDK mempools are safe to use from several threads at once (their
// get/put paths are lock-free multi-producer/multi-consumer by default).
unsafe impl Send for Mempool {}
// SAFETY: as above: shared use from several lcores is the designed case.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `rte_pktmbuf_pool_create(name, n, cache, 0, data_room, socket)`.
    pub fn new(
        eal: &Arc<Eal>,
        name: &str,
        mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Arc<Self>, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.into()))?;
        // SAFETY: the name is a valid C string; EAL is initialised.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), mbufs, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::Mempool { name: name.into(), reason: last_errno() })?;
        Ok(Arc::new(Self { raw, _eal: eal.clone() }))
    }

    pub fn available(&self) -> u32 {
        // SAFETY: `raw` is a live pool.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    pub fn in_use(&self) -> u32 {
        // SAFETY: `raw` is a live pool.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Allocates one mbuf.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: `raw` is a live pool.
        let m = unsafe { sys::skua_rte_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: a fresh mbuf with reference count 1, owned by nobody else.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: ports holding this pool are gone (they keep an Arc to it).
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}

/// One owned reference to a packet mbuf.
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an mbuf reference may move between threads; DPDK's refcounting
// and mempool put path are thread-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// # Safety
    /// `raw` must be a valid mbuf whose one reference the caller owns and
    /// gives to the returned value.
    pub unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Self {
        Self { raw }
    }

    /// Gives up ownership without freeing (e.g. after a successful TX).
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    /// The first segment's data.
    pub fn data(&self) -> &[u8] {
        segment(self.raw.as_ptr())
    }

    pub fn pkt_len(&self) -> u32 {
        // SAFETY: `raw` is a live mbuf.
        unsafe { sys::skua_rte_pktmbuf_pkt_len(self.raw.as_ptr()) }
    }

    /// Appends `bytes` to the last segment; `false` if there is no room.
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        let Ok(len) = u16::try_from(bytes.len()) else { return false };
        // SAFETY: `raw` is a live mbuf we own exclusively.
        let dst = unsafe { sys::skua_rte_pktmbuf_append(self.raw.as_ptr(), len) };
        if dst.is_null() {
            return false;
        }
        // SAFETY: rte_pktmbuf_append returned `len` writable bytes at `dst`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len()) };
        true
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference, released here once.
        unsafe { sys::skua_rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

fn segment<'a>(m: *const sys::rte_mbuf) -> &'a [u8] {
    // SAFETY: `m` is a live mbuf; mtod/data_len describe its segment's
    // initialised bytes, valid while the mbuf is (callers tie the lifetime).
    unsafe {
        let ptr = sys::skua_rte_pktmbuf_mtod(m).cast::<u8>();
        std::slice::from_raw_parts(ptr, usize::from(sys::skua_rte_pktmbuf_data_len(m)))
    }
}

/// How a port is set up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub mbufs: u32,
    pub mbuf_cache: u32,
    pub mbuf_data_room: u16,
    pub promiscuous: bool,
}

/// What a port can do, from `rte_eth_dev_info_get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub name: String,
    pub driver: String,
    pub max_rx_queues: u16,
    pub rss_offloads: u64,
    pub hash_key_size: u8,
    pub reta_size: u16,
    pub socket: i32,
}

impl PortInfo {
    /// Whether the device can spread flows over queues itself.
    pub fn has_rss(&self) -> bool {
        self.rss_offloads != 0 && self.max_rx_queues > 1
    }
}

/// Device counters below skua, from `rte_eth_stats_get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub ipackets: u64,
    pub ibytes: u64,
    /// Dropped by the NIC because no RX descriptor was free.
    pub imissed: u64,
    pub ierrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// A configured and started port.
pub struct Port {
    id: u16,
    info: PortInfo,
    rx_queues: u16,
    rss: bool,
    _pool: Arc<Mempool>,
    _eal: Arc<Eal>,
}

// SAFETY: the port id is a plain index; ethdev's control calls used here
// (stats, stop, close) may be made from any thread while no other control
// call runs, which the owner's `&self`/drop discipline ensures.
unsafe impl Send for Port {}
// SAFETY: only `stats` is callable through `&Port`; rte_eth_stats_get reads
// counters and is safe alongside RX on other threads.
unsafe impl Sync for Port {}

fn port_err(port: u16, what: &'static str, rc: c_int) -> DpdkError {
    DpdkError::Port { port, what, reason: errno_text(rc) }
}

pub fn port_info(port: u16) -> Result<PortInfo, DpdkError> {
    // SAFETY: an all-zero rte_eth_dev_info is a valid value to be filled.
    let mut info: sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for writes; the port id is checked by DPDK.
    let rc = unsafe { sys::rte_eth_dev_info_get(port, &mut info) };
    if rc != 0 {
        return Err(port_err(port, "dev_info_get", rc));
    }
    let mut name = [0 as c_char; 64];
    // SAFETY: `name` has room for RTE_ETH_NAME_MAX_LEN (64) bytes.
    unsafe { sys::rte_eth_dev_get_name_by_port(port, name.as_mut_ptr()) };
    // SAFETY: DPDK wrote a NUL-terminated name (or left zeros).
    let name = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: driver_name is a static NUL-terminated string owned by the PMD.
        unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
    };
    // SAFETY: plain query of a valid port id.
    let socket = unsafe { sys::rte_eth_dev_socket_id(port) };
    Ok(PortInfo {
        name,
        driver,
        max_rx_queues: info.max_rx_queues,
        rss_offloads: info.flow_type_rss_offloads,
        hash_key_size: info.hash_key_size,
        reta_size: info.reta_size,
        socket,
    })
}

impl Port {
    /// Configures `port` with `cfg.rx_queues` RX queues (symmetric RSS when
    /// there are several and the device has RSS), one TX queue, and a
    /// mempool sized by `cfg`, then starts it.
    pub fn start(eal: &Arc<Eal>, port: u16, cfg: &PortConfig) -> Result<Arc<Port>, DpdkError> {
        let info = port_info(port)?;
        let rx_queues = cfg.rx_queues.clamp(1, info.max_rx_queues.max(1));
        let rss = rx_queues > 1 && info.rss_offloads != 0;
        let socket = info.socket.max(0);
        let pool = Mempool::new(
            eal,
            &format!("skua_rx_p{port}"),
            cfg.mbufs,
            cfg.mbuf_cache,
            cfg.mbuf_data_room,
            socket,
        )?;

        // SAFETY: an all-zero rte_eth_conf is DPDK's documented default.
        let mut conf: sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        let key_len = match info.hash_key_size {
            0 => 40,
            n => n.min(SYMMETRIC_RSS_KEY.len() as u8),
        };
        if rss {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            // DPDK copies the key during configure; the static outlives it.
            conf.rx_adv_conf.rss_conf.rss_key = SYMMETRIC_RSS_KEY.as_ptr() as *mut u8;
            conf.rx_adv_conf.rss_conf.rss_key_len = key_len;
            // SAFETY: returns a constant.
            conf.rx_adv_conf.rss_conf.rss_hf =
                unsafe { sys::skua_rte_eth_rss_ip_tcp_udp() } & info.rss_offloads;
        }
        // SAFETY: `conf` is initialised; DPDK validates the port id.
        let rc = unsafe { sys::rte_eth_dev_configure(port, rx_queues, 1, &conf) };
        if rc != 0 {
            return Err(port_err(port, "configure", rc));
        }
        for q in 0..rx_queues {
            // SAFETY: port configured with `rx_queues` queues; a null rxconf
            // takes the device defaults; the pool is live.
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port,
                    q,
                    cfg.rx_descriptors,
                    socket as u32,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(port_err(port, "rx_queue_setup", rc));
            }
        }
        // SAFETY: as above, for the one TX queue.
        let rc = unsafe {
            sys::rte_eth_tx_queue_setup(
                port,
                0,
                cfg.tx_descriptors,
                socket as u32,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(port_err(port, "tx_queue_setup", rc));
        }
        // SAFETY: the port is configured.
        let rc = unsafe { sys::rte_eth_dev_start(port) };
        if rc != 0 {
            return Err(port_err(port, "start", rc));
        }
        if rss && info.reta_size > 0 {
            spread_reta(port, info.reta_size, rx_queues);
        }
        if cfg.promiscuous {
            // Best effort: vdevs such as net_pcap refuse and need not.
            // SAFETY: the port is started.
            unsafe { sys::rte_eth_promiscuous_enable(port) };
        }
        Ok(Arc::new(Port { id: port, info, rx_queues, rss, _pool: pool, _eal: eal.clone() }))
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn info(&self) -> &PortInfo {
        &self.info
    }

    pub fn rx_queues(&self) -> u16 {
        self.rx_queues
    }

    /// Whether the device spreads flows over the queues with symmetric RSS.
    pub fn rss(&self) -> bool {
        self.rss
    }

    pub fn stats(&self) -> DeviceStats {
        self.raw_stats().map_or_else(DeviceStats::default, |st| DeviceStats {
            ipackets: st.ipackets,
            ibytes: st.ibytes,
            imissed: st.imissed,
            ierrors: st.ierrors,
            rx_nombuf: st.rx_nombuf,
        })
    }

    fn raw_stats(&self) -> Option<sys::rte_eth_stats> {
        // SAFETY: an all-zero rte_eth_stats is a valid value to be filled.
        let mut st: sys::rte_eth_stats = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is valid for writes; the port is started.
        (unsafe { sys::rte_eth_stats_get(self.id, &mut st) } == 0).then_some(st)
    }

    /// Appends the port's counters and those of each of its RX queues
    /// (ethdev keeps per-queue counters for the first 16 queues only).
    pub fn sample(&self, out: &mut crate::source::DeviceSample) {
        let Some(st) = self.raw_stats() else { return };
        let port = self.info.name.clone();
        for q in 0..usize::from(self.rx_queues).min(st.q_ipackets.len()) {
            out.queues.push(crate::source::QueueSample {
                port: port.clone(),
                queue: q as u16,
                packets: st.q_ipackets[q],
                bytes: st.q_ibytes[q],
                errors: st.q_errors[q],
            });
        }
        out.ports.push(crate::source::PortSample {
            port,
            packets: st.ipackets,
            bytes: st.ibytes,
            missed: st.imissed,
            errors: st.ierrors,
            no_buffer: st.rx_nombuf,
        });
    }

    /// An RX queue handle; poll it from one thread only.
    pub fn rx_queue(self: &Arc<Self>, queue: u16) -> RxQueue {
        RxQueue {
            port: self.clone(),
            queue,
            burst: Box::new([std::ptr::null_mut(); MAX_BURST]),
            linear: Vec::new(),
        }
    }
}

impl Port {
    /// The TX queue handle (queue 0, the one [`Port::start`] sets up); send
    /// from one thread only. Capture never transmits: this feeds loopback
    /// vdevs such as `net_ring`, whose TX ring is its RX ring, to offer a
    /// controlled load to the dataplane.
    pub fn tx_queue(self: &Arc<Self>) -> TxQueue {
        TxQueue { port: self.clone(), burst: Box::new([std::ptr::null_mut(); MAX_BURST]) }
    }
}

/// A port's TX queue, with its reused burst array.
pub struct TxQueue {
    port: Arc<Port>,
    burst: Box<[*mut sys::rte_mbuf; MAX_BURST]>,
}

// SAFETY: the burst array only holds mbuf pointers during one `send`; like
// an RxQueue, a TxQueue has one user thread and may move to it.
unsafe impl Send for TxQueue {}

impl TxQueue {
    /// Transmits up to [`MAX_BURST`] mbufs from the front of `mbufs`
    /// and removes the ones the device took; the rest stay in `mbufs`
    /// (the caller retries or drops them). Returns the number sent.
    pub fn send(&mut self, mbufs: &mut Vec<Mbuf>) -> usize {
        let n = mbufs.len().min(MAX_BURST);
        for (slot, m) in self.burst.iter_mut().zip(mbufs.iter()) {
            *slot = m.raw.as_ptr();
        }
        // SAFETY: `burst` holds `n` live mbufs owned by `mbufs`; the device
        // takes ownership of the first `sent` of them.
        let sent = unsafe {
            sys::skua_rte_eth_tx_burst(self.port.id, 0, self.burst.as_mut_ptr(), n as u16)
        };
        let sent = usize::from(sent).min(n);
        for m in mbufs.drain(..sent) {
            // The device owns these now: forget without freeing.
            let _ = m.into_raw();
        }
        sent
    }
}

/// Fills the redirection table round-robin so queue = hash mod queues, the
/// same mapping the software dispatcher uses.
fn spread_reta(port: u16, reta_size: u16, queues: u16) {
    let group = sys::RTE_ETH_RETA_GROUP_SIZE as usize;
    let groups = (usize::from(reta_size)).div_ceil(group);
    // SAFETY: an all-zero entry array is a valid value to be filled.
    let mut reta: Vec<sys::rte_eth_rss_reta_entry64> =
        (0..groups).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (g, entry) in reta.iter_mut().enumerate() {
        entry.mask = u64::MAX;
        for (i, slot) in entry.reta.iter_mut().enumerate() {
            *slot = ((g * group + i) % usize::from(queues)) as u16;
        }
    }
    // SAFETY: `reta` holds reta_size / 64 entries as the call requires.
    unsafe { sys::rte_eth_dev_rss_reta_update(port, reta.as_mut_ptr(), reta_size) };
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: no RxQueue remains (each holds an Arc to this port).
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// One RX queue of a port, with its reused burst array.
pub struct RxQueue {
    port: Arc<Port>,
    queue: u16,
    burst: Box<[*mut sys::rte_mbuf; MAX_BURST]>,
    /// Scratch for frames spanning several segments (jumbo frames).
    linear: Vec<u8>,
}

// SAFETY: the burst array only holds mbuf pointers between an rx_burst and
// the bulk free in the same `poll` call; moving the queue to its polling
// thread is what DPDK expects. It is not Sync: a queue has one poller.
unsafe impl Send for RxQueue {}

impl RxQueue {
    pub fn port(&self) -> &Arc<Port> {
        &self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` frames, hands each to `f` as
    /// `(bytes, wire length)`, then frees the burst in bulk. Returns the
    /// number received.
    pub fn poll(&mut self, max: usize, mut f: impl FnMut(&[u8], u32)) -> usize {
        let max = max.min(MAX_BURST) as u16;
        // SAFETY: `burst` has room for MAX_BURST pointers ≥ max.
        let n = unsafe {
            sys::skua_rte_eth_rx_burst(self.port.id, self.queue, self.burst.as_mut_ptr(), max)
        };
        for &m in &self.burst[..usize::from(n)] {
            // SAFETY: rx_burst returned `n` valid mbufs we now own.
            let (segs, pkt_len) =
                unsafe { (sys::skua_rte_pktmbuf_nb_segs(m), sys::skua_rte_pktmbuf_pkt_len(m)) };
            if segs <= 1 {
                f(segment(m), pkt_len);
            } else {
                self.linear.clear();
                let mut seg = m as *const sys::rte_mbuf;
                while !seg.is_null() {
                    self.linear.extend_from_slice(segment(seg));
                    // SAFETY: `seg` is a live segment of the chain.
                    seg = unsafe { sys::skua_rte_pktmbuf_next(seg) };
                }
                f(&self.linear, pkt_len);
            }
        }
        if n > 0 {
            // SAFETY: frees exactly the `n` mbufs received above; no slice
            // into them outlives `f`.
            unsafe { sys::rte_pktmbuf_free_bulk(self.burst.as_mut_ptr(), u32::from(n)) };
        }
        usize::from(n)
    }
}

/// Builds the EAL argument list from the user's string: the core list
/// comes from the process' CPU affinity (the pod's cpuset) unless the
/// user gave one, and the in-memory mode is used unless a file prefix is
/// named, so several skua processes can share a machine.
pub fn eal_args(user: &str, affinity: &[usize]) -> Vec<String> {
    let mut args: Vec<String> = user.split_whitespace().map(str::to_string).collect();
    fn has(args: &[String], names: &[&str]) -> bool {
        args.iter().any(|a| names.iter().any(|n| a == n || a.starts_with(&format!("{n}="))))
    }
    if !has(&args, &["-l", "-c", "--lcores"]) && !affinity.is_empty() {
        args.push("-l".into());
        args.push(cpu_list(affinity));
    }
    let no_huge = args.iter().any(|a| a == "--no-huge");
    if !has(&args, &["--in-memory", "--file-prefix", "--proc-type", "--no-shconf"]) {
        // --no-huge implies legacy memory, which --in-memory refuses; no
        // shared config files does the same job there.
        args.push(if no_huge { "--no-shconf" } else { "--in-memory" }.into());
    }
    if !has(&args, &["--telemetry", "--no-telemetry"]) {
        args.push("--no-telemetry".into());
    }
    if !has(&args, &["--log-level"]) {
        args.push("--log-level=lib.*:warning".into());
    }
    if no_huge && !has(&args, &["-m", "--socket-mem"]) {
        args.push("-m".into());
        args.push("512".into());
    }
    args
}

/// `[0, 1, 2, 5]` → `"0-2,5"`.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[7, 6, 1]), "1,6-7");
    }

    #[test]
    fn eal_args_take_cores_from_affinity_unless_given() {
        let a = eal_args("--no-pci --vdev net_pcap0,rx_pcap=/x.pcap", &[0, 1]);
        assert!(a.windows(2).any(|w| w[0] == "-l" && w[1] == "0-1"), "{a:?}");
        assert!(a.contains(&"--in-memory".to_string()));
        let b = eal_args("-l 3 --file-prefix skua1", &[0, 1]);
        assert_eq!(b.iter().filter(|x| *x == "-l").count(), 1);
        assert!(!b.contains(&"--in-memory".to_string()));
        let c = eal_args("--no-huge", &[0]);
        assert!(c.windows(2).any(|w| w[0] == "-m"));
        assert!(c.contains(&"--no-shconf".to_string()) && !c.contains(&"--in-memory".to_string()));
    }
}
