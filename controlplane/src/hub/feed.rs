//! A feed: a ring of recent values (items, or console lines) bounded by
//! count *and* bytes, and the live-stream clients that get each new one.
//!
//! Invariants:
//! - every value is serialised once, when it comes in; queries and
//!   streams hand out that JSON (shared `Bytes`), never a new copy;
//! - the ring's [`Entry::cost`] sum (the JSON plus an estimate of the
//!   parsed value's heap) stays at or under `max_bytes` and its length at
//!   or under `max_count`: the oldest entries go first, and a value whose
//!   cost alone passes `max_bytes` is refused (so one huge value cannot
//!   empty the ring);
//! - a client's queue is bounded by count and by bytes ([`StreamStats`]);
//!   a full queue drops (counted by the caller), never blocks the
//!   publisher. The bytes bound is what keeps evicted entries from living
//!   on in slow clients' queues beyond the ring's budget.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::filter::Filter;

/// One event on its way to a live stream: the SSE `event:` name, the
/// `id:` (the entry's sequence number) and the JSON (`data:`).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub event: std::borrow::Cow<'static, str>,
    pub id: Option<u64>,
    pub json: Bytes,
}

/// What a live stream's client has waiting and when it last took an
/// event: shared by the publisher (adds), the response body (takes) and
/// the stall watchdog (reads).
#[derive(Debug, Default)]
pub(crate) struct StreamStats {
    /// Bytes of JSON queued for the client and not yet taken.
    pub queued_bytes: AtomicUsize,
    /// Milliseconds since the hub started when the client last took an
    /// event (or the stream opened).
    pub last_taken_ms: AtomicU64,
}

/// A bounded sender to one live stream: count (the channel) and bytes
/// (`queued_bytes` under `max_bytes`).
#[derive(Debug, Clone)]
pub(crate) struct StreamTx {
    pub tx: mpsc::Sender<Frame>,
    pub stats: Arc<StreamStats>,
    pub max_bytes: usize,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFail {
    /// The client's queue is full (count or bytes): this frame is dropped.
    Full,
    /// The client went away.
    Closed,
}

impl StreamTx {
    pub fn try_send(&self, f: Frame) -> Result<(), SendFail> {
        let n = f.json.len();
        if self.stats.queued_bytes.load(Ordering::Relaxed) + n > self.max_bytes {
            return if self.tx.is_closed() { Err(SendFail::Closed) } else { Err(SendFail::Full) };
        }
        match self.tx.try_send(f) {
            Ok(()) => {
                self.stats.queued_bytes.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(SendFail::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendFail::Closed),
        }
    }

    /// Waits for room (count), then queues: for the worker link, whose
    /// events must not be dropped (a link that stays behind is resynced or
    /// evicted instead).
    pub async fn send(&self, f: Frame) -> Result<(), SendFail> {
        let n = f.json.len();
        self.stats.queued_bytes.fetch_add(n, Ordering::Relaxed);
        self.tx.send(f).await.map_err(|_| {
            self.stats.queued_bytes.fetch_sub(n, Ordering::Relaxed);
            SendFail::Closed
        })
    }
}

/// One value of the ring.
#[derive(Debug)]
pub(crate) struct Entry {
    pub seq: u64,
    pub value: Value,
    pub json: Bytes,
    /// Bytes charged to the ring for it.
    pub cost: usize,
}

/// Heap bytes a parsed JSON value holds, estimated from serde_json's
/// layout (a `Value` is 32 bytes; a map entry is a B-tree slot with its
/// key). Erring high is the safe side: the ring is a memory bound.
pub(crate) fn value_heap_bytes(v: &Value) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity(),
        Value::Array(a) => a.capacity() * VALUE + a.iter().map(value_heap_bytes).sum::<usize>(),
        // Key String (24) + value + B-tree node share and edges (~40).
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| 24 + VALUE + 40 + k.capacity() + value_heap_bytes(v))
            .sum::<usize>(),
    }
}

/// What one publish did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// Entries pushed out of the ring to make room.
    pub evicted: u64,
    /// Clients that missed it because their queue was full.
    pub dropped: u64,
    /// The value alone was over `max_bytes`: not kept, not sent.
    pub oversize: bool,
}

/// A live-stream client of a feed.
struct Client {
    tx: StreamTx,
    filter: Option<Filter>,
}

pub(crate) struct Feed {
    event: &'static str,
    ring: VecDeque<Arc<Entry>>,
    max_count: usize,
    max_bytes: usize,
    bytes: usize,
    next_seq: u64,
    clients: Vec<Client>,
}

impl Feed {
    pub fn new(event: &'static str, max_count: usize, max_bytes: usize) -> Self {
        Feed {
            event,
            ring: VecDeque::with_capacity(max_count.min(65_536)),
            max_count,
            max_bytes,
            bytes: 0,
            next_seq: 0,
            clients: Vec::new(),
        }
    }

    /// Entries held now and their bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.ring.len(), self.bytes)
    }

    /// Live-stream clients still connected.
    pub fn live_clients(&self) -> usize {
        self.clients.iter().filter(|c| !c.tx.tx.is_closed()).count()
    }

    fn frame(&self, e: &Entry) -> Frame {
        Frame { event: self.event.into(), id: Some(e.seq), json: e.json.clone() }
    }

    /// Appends `value` (evicting the oldest as needed) and offers it to
    /// every client whose filter it matches.
    pub fn publish(&mut self, value: Value) -> Published {
        let mut out = Published::default();
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let cost = json.len() + value_heap_bytes(&value) + std::mem::size_of::<Entry>() + 16;
        if cost > self.max_bytes {
            out.oversize = true;
            return out;
        }
        let entry = Arc::new(Entry { seq: self.next_seq, value, json, cost });
        self.next_seq += 1;
        let frame = self.frame(&entry);
        self.clients.retain(|c| {
            if c.filter.as_ref().is_some_and(|f| !f.matches(&entry.value)) {
                return !c.tx.tx.is_closed();
            }
            match c.tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(SendFail::Full) => {
                    out.dropped += 1;
                    true
                }
                Err(SendFail::Closed) => false,
            }
        });
        while self.ring.len() >= self.max_count || self.bytes + cost > self.max_bytes {
            let Some(old) = self.ring.pop_front() else { break };
            self.bytes -= old.cost;
            out.evicted += 1;
        }
        self.bytes += cost;
        self.ring.push_back(entry);
        out
    }

    /// The last `limit` entries matching `filter`, oldest first.
    pub fn recent(&self, filter: Option<&Filter>, limit: usize) -> Vec<Arc<Entry>> {
        let mut out: Vec<Arc<Entry>> = self
            .ring
            .iter()
            .rev()
            .filter(|e| filter.is_none_or(|f| f.matches(&e.value)))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// The newest entry whose `id` is `id` (a string, or a number written
    /// as one).
    pub fn find_id(&self, id: &str) -> Option<Arc<Entry>> {
        self.ring
            .iter()
            .rev()
            .find(|e| match &e.value["id"] {
                Value::String(s) => s == id,
                Value::Number(n) => n.to_string() == id,
                _ => false,
            })
            .cloned()
    }

    /// Registers a client; it first gets the last `backlog` matching
    /// entries (under the same lock, so nothing falls between). Returns
    /// how many of those did not fit its queue.
    pub fn attach(&mut self, tx: StreamTx, filter: Option<Filter>, backlog: usize) -> u64 {
        let mut dropped = 0;
        for e in self.recent(filter.as_ref(), backlog) {
            if tx.try_send(self.frame(&e)).is_err() {
                dropped += 1;
            }
        }
        self.clients.push(Client { tx, filter });
        dropped
    }

    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(queue: usize, max_bytes: usize) -> (StreamTx, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(queue);
        (StreamTx { tx, stats: Arc::default(), max_bytes }, rx)
    }

    #[test]
    fn evicts_by_count_and_counts_a_full_client_queue() {
        let mut f = Feed::new("item", 3, 1 << 20);
        let (slow, mut slow_rx) = client(2, 1 << 20);
        f.attach(slow, None, 0);
        let (filtered, mut filtered_rx) = client(8, 1 << 20);
        f.attach(filtered, Some(Filter::parse("status>=500").unwrap()), 0);
        let (mut evicted, mut dropped) = (0, 0);
        for i in 0..5 {
            let p =
                f.publish(json!({"id": i, "response": {"status": if i == 4 { 500 } else { 200 }}}));
            evicted += p.evicted;
            dropped += p.dropped;
        }
        assert_eq!((evicted, dropped), (2, 3), "ring of 3; the slow client took 2 of 5");
        let ids: Vec<i64> =
            f.recent(None, 10).iter().map(|e| e.value["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [2, 3, 4]);
        let first = slow_rx.try_recv().unwrap();
        assert_eq!((first.event.as_ref(), first.id), ("item", Some(0)));
        assert!(String::from_utf8_lossy(&filtered_rx.try_recv().unwrap().json).contains("\"id\":4"));
        assert!(filtered_rx.try_recv().is_err());
        drop(slow_rx);
        f.publish(json!({"id": 5}));
        assert_eq!(f.clients(), 1, "a closed client is forgotten");
    }

    #[test]
    fn bounded_by_bytes_oldest_first_and_oversize_refused() {
        let mut f = Feed::new("item", 1_000_000, 1 << 20);
        let big = "x".repeat(100_000);
        let mut evicted = 0;
        for i in 0..100 {
            let p = f.publish(json!({"id": i.to_string(), "body": big}));
            assert!(!p.oversize);
            evicted += p.evicted;
            assert!(f.held().1 <= 1 << 20, "over the budget after {i}: {:?}", f.held());
        }
        let (n, bytes) = f.held();
        assert!((4..=10).contains(&n) && bytes > 500_000, "{n} entries, {bytes} bytes");
        assert_eq!(evicted as usize + n, 100);
        assert_eq!(f.recent(None, 1)[0].value["id"], "99", "the newest stays");
        assert!(f.find_id("0").is_none() && f.find_id("99").is_some());
        let p = f.publish(json!({"id": "huge", "body": "y".repeat(2 << 20)}));
        assert!(p.oversize);
        assert_eq!(f.held().0, n, "an oversize value evicts nothing");
    }

    #[test]
    fn a_client_queue_is_bounded_in_bytes() {
        let mut f = Feed::new("item", 1000, 64 << 20);
        let (c, mut rx) = client(1000, 250_000);
        let stats = c.stats.clone();
        f.attach(c, None, 0);
        let body = "z".repeat(100_000);
        let dropped: u64 = (0..5).map(|i| f.publish(json!({"id": i, "b": body})).dropped).sum();
        assert_eq!(dropped, 3, "two 100 kB frames fit 250 kB");
        assert!(stats.queued_bytes.load(Ordering::Relaxed) <= 250_000);
        assert_eq!(rx.try_recv().unwrap().id, Some(0));
    }

    #[test]
    fn heap_estimate_covers_what_is_allocated() {
        let v = json!({"a": "x".repeat(1000), "b": [1, 2, 3], "c": {"d": null}});
        let est = value_heap_bytes(&v);
        assert!((1000 + 3 * 32..5000).contains(&est), "{est}");
    }
}
