//! Per-core counters and the reasons a packet is dropped.
//!
//! A dataplane core owns a plain [`CoreCounters`] and bumps it without
//! atomics; every burst it copies the values into its [`SharedCounters`]
//! slot with relaxed stores, which is all the progress line, `/metrics` and
//! the exit summary read while the core runs. Its reassembly counters (a
//! larger struct, owned by the dissector) are copied in at most every
//! [`REASSEMBLY_PUBLISH_EVERY`], behind a lock the core only ever tries.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// How often a core copies its reassembly counters out for `/metrics`.
pub const REASSEMBLY_PUBLISH_EVERY: Duration = Duration::from_millis(100);

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal ),+ $(,)?) => {
        /// Why a packet was not processed further. Every drop is counted under
        /// exactly one reason; the names are the keys of `drops` in the summary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$doc])* $variant ),+ }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant),+];
            pub const COUNT: usize = Self::ALL.len();

            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name),+ }
            }
        }
    };
}

reasons! {
    /// A frame of zero captured bytes.
    EmptyFrame => "empty_frame",
    /// Shorter than its link-layer header.
    TruncatedL2 => "truncated_l2",
    /// A capture link type skua does not decode.
    UnknownLinkType => "unknown_link_type",
    /// An Ethertype (or loopback address family) that is not one skua decodes.
    UnknownEthertype => "unknown_ethertype",
    /// A known non-IP protocol (ARP, LLDP): nothing above L2 to track.
    NonIp => "non_ip",
    /// More VLAN tags or MPLS labels than `MAX_TAGS`, or a label stack
    /// without bottom-of-stack.
    TooManyTags => "too_many_tags",
    /// The IP header does not fit in the captured bytes.
    TruncatedIp => "truncated_ip",
    /// Wrong version, header length below minimum, total length below the header.
    BadIpHeader => "bad_ip_header",
    /// The IP length claims more bytes than the frame holds, in a frame that
    /// was captured whole: the header lies.
    IpLengthExceedsFrame => "ip_length_exceeds_frame",
    /// An IPv6 extension-header chain that is truncated or too long.
    BadIpv6Extensions => "bad_ipv6_extensions",
    /// The TCP/UDP/ICMP header does not fit in the captured bytes.
    TruncatedL4 => "truncated_l4",
    /// TCP data offset below 5 words.
    BadTcpHeader => "bad_tcp_header",
    /// The software dispatcher found the core's ring full (live sources only).
    RingFull => "ring_full",
}

/// What one dataplane core (or the dispatcher) counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreCounters {
    /// Frames received, malformed ones included.
    pub packets: u64,
    /// Bytes of those frames on the wire (their original length, as
    /// capinfos counts them).
    pub bytes: u64,
    /// Bytes actually captured (less than `bytes` when a snap length cut
    /// frames short).
    pub captured_bytes: u64,
    pub drops: [u64; DropReason::COUNT],
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other_l4: u64,
    /// IP fragments (marked; reassembled by the reassembly stage).
    pub fragments: u64,
    /// Frames cut short by the capture's snap length.
    pub snap_truncated: u64,
    /// Frames that carried at least one VLAN tag.
    pub vlan_tagged: u64,
    /// Flows first seen on this core.
    pub flows: u64,
    /// New flows not tracked because the flow table was at its limit.
    pub flow_table_full: u64,
    /// Items (request/response pairs) completed by this core's reassembly.
    pub items: u64,
}

impl CoreCounters {
    /// A frame received: its wire length (never less than what was
    /// captured) and its captured length.
    #[inline]
    pub fn count_frame(&mut self, wire_len: u32, captured: usize) {
        self.packets += 1;
        self.bytes += u64::from(wire_len).max(captured as u64);
        self.captured_bytes += captured as u64;
    }

    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub fn add(&mut self, other: &CoreCounters) {
        for (x, y) in self.drops.iter_mut().zip(other.drops.iter()) {
            *x += *y;
        }
        for (i, v) in other.fields().into_iter().enumerate() {
            *self.field_mut(i) += v;
        }
    }

    const FIELDS: usize = 15;

    fn fields(&self) -> [u64; Self::FIELDS] {
        [
            self.packets,
            self.bytes,
            self.captured_bytes,
            self.ipv4,
            self.ipv6,
            self.tcp,
            self.udp,
            self.icmp,
            self.other_l4,
            self.fragments,
            self.snap_truncated,
            self.vlan_tagged,
            self.flows,
            self.flow_table_full,
            self.items,
        ]
    }

    fn field_mut(&mut self, i: usize) -> &mut u64 {
        match i {
            0 => &mut self.packets,
            1 => &mut self.bytes,
            2 => &mut self.captured_bytes,
            3 => &mut self.ipv4,
            4 => &mut self.ipv6,
            5 => &mut self.tcp,
            6 => &mut self.udp,
            7 => &mut self.icmp,
            8 => &mut self.other_l4,
            9 => &mut self.fragments,
            10 => &mut self.snap_truncated,
            11 => &mut self.vlan_tagged,
            12 => &mut self.flows,
            13 => &mut self.flow_table_full,
            _ => &mut self.items,
        }
    }
}

/// A core's published counters, readable from any thread.
#[derive(Debug, Default)]
pub struct SharedCounters {
    fields: [AtomicU64; CoreCounters::FIELDS],
    drops: [AtomicU64; DropReason::COUNT],
    reassembly: Mutex<Option<reassembly::ReassemblyCounters>>,
}

impl SharedCounters {
    pub fn publish(&self, c: &CoreCounters) {
        for (slot, v) in self.fields.iter().zip(c.fields()) {
            slot.store(v, Relaxed);
        }
        for (slot, v) in self.drops.iter().zip(c.drops.iter()) {
            slot.store(*v, Relaxed);
        }
    }

    /// The core's side: never waits (a reader holding the lock only delays
    /// this copy to the next one).
    pub fn publish_reassembly(&self, r: reassembly::ReassemblyCounters) {
        if let Ok(mut slot) = self.reassembly.try_lock() {
            *slot = Some(r);
        }
    }

    /// The core's reassembly counters as last published; `None` for a core
    /// without reassembly (or before its first copy).
    pub fn reassembly(&self) -> Option<reassembly::ReassemblyCounters> {
        self.reassembly.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot(&self) -> CoreCounters {
        let mut c = CoreCounters::default();
        for (i, slot) in self.fields.iter().enumerate() {
            *c.field_mut(i) = slot.load(Relaxed);
        }
        for (d, slot) in c.drops.iter_mut().zip(self.drops.iter()) {
            *d = slot.load(Relaxed);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn add_and_publish_round_trip() {
        let mut a = CoreCounters { packets: 3, bytes: 100, flows: 2, ..Default::default() };
        a.drop(DropReason::NonIp);
        let mut b = a.clone();
        b.add(&a);
        assert_eq!(b.packets, 6);
        assert_eq!(b.flows, 4);
        assert_eq!(b.drops[DropReason::NonIp as usize], 2);
        let shared = SharedCounters::default();
        shared.publish(&b);
        assert_eq!(shared.snapshot(), b);
    }
}
