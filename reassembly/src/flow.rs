//! Flow identity and the per-core flow table.
//!
//! A [`FlowKey`] is direction-independent: the two endpoints are stored in a
//! canonical order (`lo` < `hi` by address, then port), so both directions of
//! a connection find the same flow; which side is the client is flow state,
//! not key. The [`FlowTable`] owns a slab allocated once at `max_flows`
//! slots, an index of slab ids (keys are compared in the slab, so the index
//! is 4 bytes a bucket) whose capacity is reserved up front so it never
//! grows, and one intrusive list per [`TimerClass`].
//!
//! Timers: every class has one fixed timeout and a flow is moved to the tail
//! of its class list on every packet, so each list is ordered by deadline and
//! its head is the next flow to expire. That is a timer wheel whose slots are
//! exact, at O(1) per packet with no allocation; a hashed wheel would only
//! add slot granularity. The same lists give the eviction order.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::HashTable;

use crate::packet::Packet;

/// Which endpoint of a [`FlowKey`] a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Lo = 0,
    Hi = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }

    pub fn idx(self) -> usize {
        self as usize
    }
}

/// 5-tuple + VLAN in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    pub lo_ip: [u8; 16],
    pub hi_ip: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub vlan: u16,
    pub protocol: u8,
    pub ip_version: u8,
}

/// Three wide writes instead of the derived nine (each address would be a
/// length prefix and a byte slice): the key is hashed on every packet.
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.lo_ip));
        h.write_u128(u128::from_ne_bytes(self.hi_ip));
        h.write_u64(
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.vlan) << 32
                | u64::from(self.protocol) << 48
                | u64::from(self.ip_version) << 56,
        );
    }
}

impl FlowKey {
    /// The key of a packet's flow and the side the packet was sent from.
    pub fn from_packet(p: &Packet<'_>) -> (FlowKey, Side) {
        let src = (p.src_ip, p.src_port);
        let dst = (p.dst_ip, p.dst_port);
        let (lo, hi, side) = if src <= dst { (src, dst, Side::Lo) } else { (dst, src, Side::Hi) };
        let key = FlowKey {
            lo_ip: lo.0,
            hi_ip: hi.0,
            lo_port: lo.1,
            hi_port: hi.1,
            vlan: p.vlan,
            protocol: p.protocol,
            ip_version: p.ip_version,
        };
        (key, side)
    }

    pub fn ip(&self, side: Side) -> [u8; 16] {
        match side {
            Side::Lo => self.lo_ip,
            Side::Hi => self.hi_ip,
        }
    }

    pub fn port(&self, side: Side) -> u16 {
        match side {
            Side::Lo => self.lo_port,
            Side::Hi => self.hi_port,
        }
    }
}

/// Timeout class of a flow; each has its own list and timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerClass {
    HalfOpen = 0,
    Closed = 1,
    Udp = 2,
    Established = 3,
}

impl TimerClass {
    pub const COUNT: usize = 4;
    /// Eviction preference: the cheapest flows to lose come first.
    pub const EVICTION_ORDER: [TimerClass; 4] =
        [TimerClass::HalfOpen, TimerClass::Closed, TimerClass::Udp, TimerClass::Established];
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

struct Slot<T> {
    key: FlowKey,
    last_ns: u64,
    prev: u32,
    next: u32,
    class: TimerClass,
    value: Option<T>,
}

/// Slab of flows + index + timer lists. `T` is the flow state.
pub struct FlowTable<T> {
    slots: Vec<Slot<T>>,
    /// Slab ids; an id's key is `slots[id].key`.
    index: HashTable<u32>,
    /// foldhash rather than std's SipHash: a third of the cost per lookup
    /// on a 37-byte key, still seeded per process so that remote hosts
    /// cannot aim their addresses at one bucket chain.
    hasher: foldhash::fast::RandomState,
    free: Vec<u32>,
    lists: [List; TimerClass::COUNT],
    capacity: u32,
}

impl<T> FlowTable<T> {
    pub fn new(capacity: u32) -> Self {
        let capacity = capacity.max(1);
        // Twice the capacity: hashbrown rehashes in place (rather than
        // growing) while fewer than half of its buckets are in use, so with
        // removals and inserts the index never reallocates.
        let index = HashTable::with_capacity(capacity as usize * 2);
        FlowTable {
            slots: Vec::with_capacity(capacity as usize),
            index,
            hasher: foldhash::fast::RandomState::default(),
            free: Vec::with_capacity(capacity as usize),
            lists: [List { head: NIL, tail: NIL }; TimerClass::COUNT],
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.index.len() >= self.capacity as usize
    }

    pub fn lookup(&self, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(key), |id| {
                slots.get(*id as usize).is_some_and(|s| s.key == *key)
            })
            .copied()
    }

    /// Inserts a flow; the caller makes room first (see [`Self::victim`]).
    /// Returns the value back when the table is full.
    pub fn insert(
        &mut self,
        key: FlowKey,
        value: T,
        class: TimerClass,
        now_ns: u64,
    ) -> Result<u32, T> {
        if self.is_full() {
            return Err(value);
        }
        let slot = Slot { key, last_ns: now_ns, prev: NIL, next: NIL, class, value: Some(value) };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    *s = slot;
                }
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hasher.hash_one(key), id, |i| {
            slots.get(*i as usize).map_or(0, |s| hasher.hash_one(s.key))
        });
        self.link_tail(id, class);
        Ok(id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slots.get_mut(id as usize).and_then(|s| s.value.as_mut())
    }

    pub fn get(&self, id: u32) -> Option<&T> {
        self.slots.get(id as usize).and_then(|s| s.value.as_ref())
    }

    pub fn key(&self, id: u32) -> Option<&FlowKey> {
        self.slots.get(id as usize).filter(|s| s.value.is_some()).map(|s| &s.key)
    }

    /// Records activity: moves the flow to the tail of `class`'s list.
    pub fn touch(&mut self, id: u32, class: TimerClass, now_ns: u64) {
        let Some(s) = self.slots.get(id as usize) else { return };
        if s.value.is_none() {
            return;
        }
        self.unlink(id);
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.last_ns = s.last_ns.max(now_ns);
        }
        self.link_tail(id, class);
    }

    pub fn remove(&mut self, id: u32) -> Option<(FlowKey, T)> {
        let value = self.slots.get_mut(id as usize)?.value.take()?;
        self.unlink(id);
        let key = self.slots.get(id as usize)?.key;
        if let Ok(entry) = self.index.find_entry(self.hasher.hash_one(key), |i| *i == id) {
            entry.remove();
        }
        self.free.push(id);
        Some((key, value))
    }

    /// The head of `class` if it has been idle for at least `timeout_ns`.
    pub fn expired(&self, class: TimerClass, now_ns: u64, timeout_ns: u64) -> Option<u32> {
        let head = self.lists.get(class as usize)?.head;
        let s = self.slots.get(head as usize)?;
        (now_ns.saturating_sub(s.last_ns) >= timeout_ns).then_some(head)
    }

    /// The flow to evict when full: the least recently active flow of the
    /// first non-empty class in [`TimerClass::EVICTION_ORDER`].
    pub fn victim(&self) -> Option<u32> {
        TimerClass::EVICTION_ORDER.iter().map(|c| self.lists[*c as usize].head).find(|h| *h != NIL)
    }

    /// Every live flow id (for `finish`).
    pub fn ids(&self) -> Vec<u32> {
        let mut v = Vec::with_capacity(self.len());
        for c in 0..TimerClass::COUNT {
            let mut cur = self.lists[c].head;
            while cur != NIL {
                v.push(cur);
                cur = self.slots.get(cur as usize).map_or(NIL, |s| s.next);
            }
        }
        v
    }

    fn link_tail(&mut self, id: u32, class: TimerClass) {
        let list = &mut self.lists[class as usize];
        let old_tail = list.tail;
        if old_tail == NIL {
            list.head = id;
        }
        list.tail = id;
        if let Some(t) = self.slots.get_mut(old_tail as usize) {
            t.next = id;
        }
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.prev = old_tail;
            s.next = NIL;
            s.class = class;
        }
    }

    fn unlink(&mut self, id: u32) {
        let Some(s) = self.slots.get(id as usize) else { return };
        let (prev, next, class) = (s.prev, s.next, s.class);
        let list = &mut self.lists[class as usize];
        if list.head == id {
            list.head = next;
        }
        if list.tail == id {
            list.tail = prev;
        }
        if let Some(p) = self.slots.get_mut(prev as usize) {
            p.next = next;
        }
        if let Some(n) = self.slots.get_mut(next as usize) {
            n.prev = prev;
        }
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.prev = NIL;
            s.next = NIL;
        }
    }

    /// Bytes the table itself holds per flow slot (slab + index share).
    pub fn bytes_per_flow() -> usize {
        core::mem::size_of::<Slot<T>>()
            + 2 * (core::mem::size_of::<u32>() + 1)
            + core::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{tcp_flags, Packet};

    fn key(port: u16) -> FlowKey {
        let p =
            Packet::tcp_v4(0, [10, 0, 0, 1], port, [10, 0, 0, 2], 80, tcp_flags::SYN, 0, 0, &[]);
        FlowKey::from_packet(&p).0
    }

    #[test]
    fn key_is_direction_independent() {
        let a = Packet::tcp_v4(0, [10, 0, 0, 1], 5000, [10, 0, 0, 2], 80, 0, 0, 0, &[]);
        let b = Packet::tcp_v4(0, [10, 0, 0, 2], 80, [10, 0, 0, 1], 5000, 0, 0, 0, &[]);
        let (ka, sa) = FlowKey::from_packet(&a);
        let (kb, sb) = FlowKey::from_packet(&b);
        assert_eq!(ka, kb);
        assert_ne!(sa, sb);
        assert_eq!(ka.port(sa), 5000);
        assert_eq!(kb.port(sb), 80);
        let mut c = a;
        c.vlan = 7;
        assert_ne!(FlowKey::from_packet(&c).0, ka);
    }

    #[test]
    fn insert_lookup_remove_and_reuse() {
        let mut t: FlowTable<u32> = FlowTable::new(2);
        let a = t.insert(key(1), 1, TimerClass::HalfOpen, 0).expect("room");
        let b = t.insert(key(2), 2, TimerClass::Established, 0).expect("room");
        assert!(t.is_full());
        assert_eq!(t.insert(key(3), 3, TimerClass::HalfOpen, 0), Err(3));
        assert_eq!(t.lookup(&key(2)), Some(b));
        assert_eq!(t.remove(a).map(|(_, v)| v), Some(1));
        assert_eq!(t.lookup(&key(1)), None);
        let c = t.insert(key(3), 3, TimerClass::HalfOpen, 0).expect("room");
        assert_eq!(c, a, "slot reused");
        assert_eq!(t.get(c), Some(&3));
    }

    #[test]
    fn victim_prefers_half_open_then_lru() {
        let mut t: FlowTable<u32> = FlowTable::new(8);
        let e1 = t.insert(key(1), 1, TimerClass::Established, 0).expect("room");
        let e2 = t.insert(key(2), 2, TimerClass::Established, 1).expect("room");
        let h = t.insert(key(3), 3, TimerClass::HalfOpen, 2).expect("room");
        assert_eq!(t.victim(), Some(h));
        t.remove(h);
        assert_eq!(t.victim(), Some(e1));
        t.touch(e1, TimerClass::Established, 5);
        assert_eq!(t.victim(), Some(e2));
    }

    #[test]
    fn expiry_follows_list_order() {
        let mut t: FlowTable<u32> = FlowTable::new(8);
        let a = t.insert(key(1), 1, TimerClass::Udp, 100).expect("room");
        let b = t.insert(key(2), 2, TimerClass::Udp, 200).expect("room");
        assert_eq!(t.expired(TimerClass::Udp, 150, 100), None);
        assert_eq!(t.expired(TimerClass::Udp, 200, 100), Some(a));
        t.touch(a, TimerClass::Udp, 250);
        assert_eq!(t.expired(TimerClass::Udp, 300, 100), Some(b));
        assert_eq!(t.ids().len(), 2);
    }
}
