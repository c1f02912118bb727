//! IPv4/IPv6 fragment reassembly.
//!
//! Owns the datagrams in flight on one core. Invariants: at most
//! `max_fragment_datagrams` datagrams and `max_fragment_bytes` buffered
//! bytes; a datagram never exceeds 65,535 bytes; received ranges are kept
//! merged. Overlaps follow first-data-wins, like TCP. Datagrams in flight
//! are few (fragmentation is rare on the paths skua watches), so they live
//! in a small vector searched linearly.

use crate::counters::ReassemblyCounters;
use crate::packet::Packet;

const MAX_DATAGRAM: u32 = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragKey {
    ip_version: u8,
    protocol: u8,
    src: [u8; 16],
    dst: [u8; 16],
    ident: u32,
    vlan: u16,
}

struct Datagram {
    key: FragKey,
    first_ns: u64,
    data: Vec<u8>,
    /// Merged, sorted received byte ranges.
    have: Vec<(u32, u32)>,
    total: Option<u32>,
}

impl Datagram {
    fn complete(&self) -> bool {
        matches!((self.total, self.have.as_slice()), (Some(t), [(0, e)]) if *e == t)
    }
}

pub struct FragmentTable {
    inflight: Vec<Datagram>,
    bytes: u64,
    max_datagrams: u32,
    max_bytes: u64,
    timeout_ns: u64,
    spare: Vec<Vec<u8>>,
}

impl FragmentTable {
    pub fn new(max_datagrams: u32, max_bytes: u64, timeout_ns: u64) -> Self {
        FragmentTable {
            inflight: Vec::new(),
            bytes: 0,
            max_datagrams,
            max_bytes,
            timeout_ns,
            spare: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.inflight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Takes a fragment; returns the whole IP payload once complete.
    pub fn add(&mut self, p: &Packet<'_>, c: &mut ReassemblyCounters) -> Option<Vec<u8>> {
        let f = p.fragment?;
        c.fragments += 1;
        let start = u32::from(f.offset);
        let end = start + p.payload.len() as u32;
        if end > MAX_DATAGRAM || (f.more && p.payload.is_empty()) {
            c.fragments_malformed += 1;
            return None;
        }
        let key = FragKey {
            ip_version: p.ip_version,
            protocol: p.protocol,
            src: p.src_ip,
            dst: p.dst_ip,
            ident: f.ident,
            vlan: p.vlan,
        };
        self.expire(p.ts_ns, c);
        let pos = match self.inflight.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                if self.inflight.len() >= self.max_datagrams as usize {
                    c.fragment_datagram_limit_hits += 1;
                    return None;
                }
                let data = self.spare.pop().unwrap_or_default();
                self.inflight.push(Datagram {
                    key,
                    first_ns: p.ts_ns,
                    data,
                    have: Vec::new(),
                    total: None,
                });
                self.inflight.len() - 1
            }
        };
        let d = self.inflight.get_mut(pos)?;
        if !f.more {
            if d.total.is_some_and(|t| t != end) || d.have.last().is_some_and(|r| r.1 > end) {
                c.fragments_malformed += 1;
                let d = self.inflight.swap_remove(pos);
                self.release(d);
                return None;
            }
            d.total = Some(end);
        } else if d.total.is_some_and(|t| end > t) {
            c.fragments_malformed += 1;
            return None;
        }
        // Copy only the bytes no earlier fragment supplied (first data wins).
        let mut new_bytes = 0u64;
        let mut cursor = start;
        let mut pieces = [(0u32, 0u32); 8];
        let mut n = 0;
        for &(a, b) in &d.have {
            if b <= cursor {
                continue;
            }
            if a >= end {
                break;
            }
            if a > cursor && n < pieces.len() {
                pieces[n] = (cursor, a);
                n += 1;
            }
            cursor = cursor.max(b);
        }
        if cursor < end && n < pieces.len() {
            pieces[n] = (cursor, end);
            n += 1;
        }
        for &(a, b) in pieces.iter().take(n) {
            new_bytes += u64::from(b - a);
        }
        if self.bytes + new_bytes > self.max_bytes {
            c.fragment_bytes_limit_hits += 1;
            return None;
        }
        if d.data.len() < end as usize {
            d.data.resize(end as usize, 0);
        }
        for &(a, b) in pieces.iter().take(n) {
            let src = p.payload.get((a - start) as usize..(b - start) as usize);
            let dst = d.data.get_mut(a as usize..b as usize);
            if let (Some(src), Some(dst)) = (src, dst) {
                dst.copy_from_slice(src);
            }
            insert_range(&mut d.have, (a, b));
        }
        self.bytes += new_bytes;
        if d.complete() {
            let mut d = self.inflight.swap_remove(pos);
            self.bytes = self.bytes.saturating_sub(u64::from(d.total.unwrap_or(0)));
            c.fragment_datagrams_reassembled += 1;
            let total = d.total.unwrap_or(0) as usize;
            d.data.truncate(total);
            return Some(d.data);
        }
        None
    }

    /// Drops datagrams older than the timeout.
    pub fn expire(&mut self, now_ns: u64, c: &mut ReassemblyCounters) {
        let mut i = 0;
        while i < self.inflight.len() {
            if self
                .inflight
                .get(i)
                .is_some_and(|d| now_ns.saturating_sub(d.first_ns) >= self.timeout_ns)
            {
                let d = self.inflight.swap_remove(i);
                c.fragment_timeouts += 1;
                self.release(d);
            } else {
                i += 1;
            }
        }
    }

    /// Drops everything (end of capture).
    pub fn clear(&mut self, c: &mut ReassemblyCounters) {
        c.fragment_timeouts += self.inflight.len() as u64;
        while let Some(d) = self.inflight.pop() {
            self.release(d);
        }
    }

    /// Returns a datagram buffer for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 16 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn release(&mut self, d: Datagram) {
        let held: u64 = d.have.iter().map(|(a, b)| u64::from(b - a)).sum();
        self.bytes = self.bytes.saturating_sub(held);
        self.recycle(d.data);
    }
}

fn insert_range(have: &mut Vec<(u32, u32)>, r: (u32, u32)) {
    let pos = have.iter().position(|x| x.0 > r.0).unwrap_or(have.len());
    have.insert(pos, r);
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(have.len());
    for &(a, b) in have.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *have = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{ip_proto, Fragment};

    fn frag(ident: u32, offset: u16, more: bool, payload: &[u8], ts: u64) -> Packet<'_> {
        let mut p = Packet::udp_v4(ts, [1, 1, 1, 1], 0, [2, 2, 2, 2], 0, payload);
        p.protocol = ip_proto::UDP;
        p.fragment = Some(Fragment { ident, offset, more });
        p
    }

    #[test]
    fn reassembles_out_of_order_with_overlap() {
        let mut t = FragmentTable::new(4, 1 << 20, 1_000);
        let mut c = ReassemblyCounters::default();
        assert!(t.add(&frag(1, 8, true, b"IJKLMNOP", 0), &mut c).is_none());
        assert!(t.add(&frag(1, 16, false, b"qr", 0), &mut c).is_none());
        assert!(t.add(&frag(1, 12, true, b"xxxx", 0), &mut c).is_none(), "duplicate range");
        let d = t.add(&frag(1, 0, true, b"abcdefgh", 0), &mut c).expect("complete");
        assert_eq!(d, b"abcdefghIJKLMNOPqr");
        assert_eq!(c.fragment_datagrams_reassembled, 1);
        assert!(t.is_empty());
        assert_eq!(t.bytes, 0);
    }

    #[test]
    fn limits_and_timeouts_are_counted() {
        let mut t = FragmentTable::new(1, 10, 1_000);
        let mut c = ReassemblyCounters::default();
        t.add(&frag(1, 0, true, b"abcdefgh", 0), &mut c);
        t.add(&frag(2, 0, true, b"abcdefgh", 0), &mut c);
        assert_eq!(c.fragment_datagram_limit_hits, 1);
        t.add(&frag(1, 8, true, b"abcdefgh", 0), &mut c);
        assert_eq!(c.fragment_bytes_limit_hits, 1);
        t.expire(2_000, &mut c);
        assert_eq!(c.fragment_timeouts, 1);
        assert!(t.is_empty());
        assert_eq!(t.bytes, 0);
    }

    #[test]
    fn malformed_fragments_are_counted() {
        let mut t = FragmentTable::new(4, 1 << 20, 1_000);
        let mut c = ReassemblyCounters::default();
        t.add(&frag(1, 65_530, true, b"0123456789", 0), &mut c);
        t.add(&frag(2, 0, true, b"", 0), &mut c);
        t.add(&frag(3, 16, false, b"ab", 0), &mut c);
        t.add(&frag(3, 32, true, b"ab", 0), &mut c);
        assert_eq!(c.fragments_malformed, 3);
    }
}
