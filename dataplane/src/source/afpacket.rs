//! Live capture from a Linux interface through an AF_PACKET TPACKET_V3 ring,
//! for machines without DPDK or NICs DPDK does not drive.
//!
//! The kernel fills blocks of a ring shared with this process; a block
//! whose status has `TP_STATUS_USER` belongs to us until we hand it back
//! with `TP_STATUS_KERNEL`. Frames are read in place and the block is
//! returned as soon as its frames have been delivered, so nothing is
//! copied. Drops the kernel counts (ring full) are read with
//! `PACKET_STATISTICS` and reported as `kernel_drops`.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

use super::{Frame, PacketSource, Poll, SourceError, SourceStats};
use crate::wire::LinkType;

/// Ring geometry: `block_size` × `block_count` bytes mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block; a multiple of the page size, at least one frame.
    pub block_size: u32,
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a partly filled block,
    /// bounding latency on a quiet link.
    pub block_timeout_ms: u32,
    /// Put the interface in promiscuous mode while capturing.
    pub promiscuous: bool,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self { block_size: 1 << 20, block_count: 64, block_timeout_ms: 10, promiscuous: true }
    }
}

pub struct AfPacketSource {
    iface: String,
    fd: OwnedFd,
    ring: NonNull<u8>,
    ring_len: usize,
    block_size: usize,
    block_count: usize,
    next_block: usize,
    link: LinkType,
    loopback: bool,
    kernel_packets: u64,
    kernel_drops: u64,
}

// SAFETY: the ring mapping is owned by this value alone (mapped in `open`,
// unmapped in `drop`) and is only touched through `&mut self`, i.e. by the
// one thread that polls the source at a time; moving it to that thread is
// sound.
unsafe impl Send for AfPacketSource {}

fn os_err(iface: &str, what: &str) -> SourceError {
    SourceError::Interface {
        iface: iface.to_string(),
        reason: format!("{what}: {}", std::io::Error::last_os_error()),
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> i32 {
    // SAFETY: `value` points to a live `T` for the duration of the call and
    // the length passed is its exact size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

impl AfPacketSource {
    pub fn open(iface: &str, cfg: RingConfig) -> Result<Self, SourceError> {
        let name = CString::new(iface).map_err(|_| SourceError::Interface {
            iface: iface.to_string(),
            reason: "interface name contains a NUL byte".into(),
        })?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(os_err(iface, "no such interface"));
        }
        let arphrd = std::fs::read_to_string(format!("/sys/class/net/{iface}/type"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1);
        let link = match arphrd {
            // ARPHRD_NONE (tun) and raw IP devices carry no link header.
            65534 | 519 | 530 => LinkType::RawIp,
            _ => LinkType::Ethernet,
        };

        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        if raw < 0 {
            return Err(os_err(iface, "AF_PACKET socket (needs root or CAP_NET_RAW)"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        if setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version) != 0 {
            return Err(os_err(iface, "PACKET_VERSION TPACKET_V3"));
        }
        let frame_size = 2048u32;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: cfg.block_size / frame_size * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req) != 0 {
            return Err(os_err(iface, "PACKET_RX_RING"));
        }
        let ring_len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(os_err(iface, "mmap of the packet ring"));
        }
        let ring =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| os_err(iface, "mmap returned null"))?;
        let mut source = Self {
            iface: iface.to_string(),
            fd,
            ring,
            ring_len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            next_block: 0,
            link,
            loopback: arphrd == 772,
            kernel_packets: 0,
            kernel_drops: 0,
        };

        // SAFETY: an all-zero sockaddr_ll is a valid value of the type.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a properly initialised sockaddr_ll and the length
        // passed is its size.
        let rc = unsafe {
            libc::bind(
                source.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err(iface, "bind"));
        }
        if cfg.promiscuous {
            // SAFETY: an all-zero packet_mreq is a valid value of the type.
            let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mreq.mr_ifindex = ifindex as i32;
            mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
            // Best effort: some virtual interfaces refuse promiscuous mode.
            let _ = setsockopt(&source.fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq);
        }
        source.read_kernel_stats();
        Ok(source)
    }

    fn read_kernel_stats(&mut self) {
        // SAFETY: an all-zero tpacket_stats_v3 is a valid value of the type.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes and `len` holds the
        // buffer's size, as getsockopt(2) requires.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            // The kernel resets its counters on every read.
            self.kernel_packets += u64::from(st.tp_packets);
            self.kernel_drops += u64::from(st.tp_drops);
        }
    }

    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY: `i < block_count`, so the offset stays inside the mapping.
        unsafe { self.ring.as_ptr().add(i * self.block_size) }
    }

    fn wait_readable(&self) {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd; a timeout bounds the wait so the
        // caller sees stop requests.
        unsafe {
            libc::poll(&mut pfd, 1, 10);
        }
    }
}

impl PacketSource for AfPacketSource {
    fn describe(&self) -> String {
        format!("af_packet:{}", self.iface)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn poll(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<Poll, SourceError> {
        let block = self.block(self.next_block);
        let desc = block.cast::<libc::tpacket_block_desc>();
        // SAFETY: `desc` points at the block descriptor at the start of a
        // mapped block; the status is written by the kernel, hence the
        // volatile read.
        let status = unsafe { std::ptr::addr_of!((*desc).hdr.bh1.block_status).read_volatile() };
        if status & libc::TP_STATUS_USER == 0 {
            self.wait_readable();
            return Ok(Poll::Idle);
        }
        // Everything the kernel wrote before setting the status is visible
        // after this fence.
        fence(Ordering::Acquire);
        // SAFETY: the block is ours (TP_STATUS_USER) until released below.
        let (num_pkts, first) = unsafe {
            let bh = std::ptr::addr_of!((*desc).hdr.bh1).read();
            (bh.num_pkts as usize, bh.offset_to_first_pkt as usize)
        };
        let hdr_len = std::mem::size_of::<libc::tpacket3_hdr>();
        // The sockaddr_ll follows the header, 16-byte aligned (TPACKET_ALIGN).
        let sll_off = (hdr_len + 15) & !15;
        let mut offset = first;
        let mut delivered = 0;
        for _ in 0..num_pkts {
            if offset + hdr_len > self.block_size {
                break;
            }
            // SAFETY: `offset + hdr_len` is inside this block (checked above).
            let h = unsafe { block.add(offset).cast::<libc::tpacket3_hdr>().read_unaligned() };
            let start = offset + h.tp_mac as usize;
            let end = start + h.tp_snaplen as usize;
            if end > self.block_size {
                break;
            }
            let outgoing = if self.loopback
                && offset + sll_off + std::mem::size_of::<libc::sockaddr_ll>() <= self.block_size
            {
                // SAFETY: bounds checked just above.
                let sll = unsafe {
                    block.add(offset + sll_off).cast::<libc::sockaddr_ll>().read_unaligned()
                };
                sll.sll_pkttype == libc::PACKET_OUTGOING
            } else {
                false
            };
            // A loopback packet is seen leaving and arriving; keep one copy,
            // as libpcap does.
            if !outgoing {
                // SAFETY: `start..end` lies inside the block, which stays
                // ours until the status is written back below.
                let data = unsafe { std::slice::from_raw_parts(block.add(start), end - start) };
                out(Frame {
                    data,
                    wire_len: h.tp_len,
                    ts_ns: u64::from(h.tp_sec) * 1_000_000_000 + u64::from(h.tp_nsec),
                    link: self.link,
                });
                delivered += 1;
            }
            if h.tp_next_offset == 0 {
                break;
            }
            offset += h.tp_next_offset as usize;
        }
        fence(Ordering::Release);
        // SAFETY: hands the block back to the kernel; no reference into it
        // outlives the loop above.
        unsafe {
            std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status)
                .write_volatile(libc::TP_STATUS_KERNEL);
        }
        self.next_block = (self.next_block + 1) % self.block_count;
        Ok(if delivered > 0 { Poll::Frames(delivered) } else { Poll::Idle })
    }

    fn stats(&self) -> SourceStats {
        SourceStats { drops: vec![("kernel_drops", self.kernel_drops)] }
    }
}

impl AfPacketSource {
    /// Refreshes the kernel's counters; called by the engine when the
    /// source stops.
    pub fn refresh_stats(&mut self) {
        self.read_kernel_stats();
    }

    pub fn kernel_packets(&self) -> u64 {
        self.kernel_packets
    }
}

impl Drop for AfPacketSource {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `open`; no frame
        // borrowed from it can outlive `poll`.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), self.ring_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let err = AfPacketSource::open("skua-no-such-if0", RingConfig::default()).err().unwrap();
        let msg = err.to_string();
        assert!(msg.starts_with("skua-no-such-if0: no such interface"), "{msg}");
    }
}
