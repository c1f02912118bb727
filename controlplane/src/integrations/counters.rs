//! Per-integration counters: relaxed atomics bumped once per request (never
//! per byte or per loop turn), read as [`IntegrationSnapshot`]s by
//! `/metrics` and the exit report.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::Integration;

/// Upper bounds (seconds) of the delivery-latency histogram buckets; the
/// last bucket is +Inf.
pub const LATENCY_BUCKETS_S: [f64; 12] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

#[derive(Debug)]
pub struct IntegrationCounters {
    integration: Integration,
    capacity: usize,
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    abandoned: AtomicU64,
    queued: AtomicI64,
    in_flight: AtomicI64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len() + 1],
    latency_sum_us: AtomicU64,
}

/// What one integration counted so far.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationSnapshot {
    pub integration: Integration,
    /// Deliveries that succeeded (the Promise resolved).
    pub sent: u64,
    /// Deliveries that failed after their last attempt (the Promise
    /// rejected), abandoned ones included.
    pub failed: u64,
    /// Retry attempts.
    pub retried: u64,
    /// Requests refused at once: the queue was full, or the control plane
    /// was shutting down.
    pub rejected: u64,
    /// Deliveries still unfinished when the drain timeout ran out.
    pub abandoned: u64,
    /// Requests waiting in the queue now.
    pub queued: u64,
    /// The queue's capacity.
    pub capacity: usize,
    /// Requests being delivered now.
    pub in_flight: u64,
    /// Cumulative counts per [`LATENCY_BUCKETS_S`] bound, then +Inf.
    pub latency_buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
    /// Sum of delivery latencies (queue wait excluded, retries included).
    pub latency_sum: Duration,
}

impl IntegrationSnapshot {
    pub fn latency_count(&self) -> u64 {
        self.latency_buckets[LATENCY_BUCKETS_S.len()]
    }
}

impl IntegrationCounters {
    pub fn new(integration: Integration, capacity: usize) -> Self {
        IntegrationCounters {
            integration,
            capacity,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_us: AtomicU64::new(0),
        }
    }

    pub fn integration(&self) -> Integration {
        self.integration
    }

    /// The queue's capacity (0 for integrations answered inline).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn retried(&self) {
        self.retried.fetch_add(1, Relaxed);
    }

    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    pub(crate) fn enqueued(&self) {
        self.queued.fetch_add(1, Relaxed);
    }

    /// A queued request starts being delivered.
    pub(crate) fn started(&self) {
        self.queued.fetch_sub(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// A request was dequeued but never started (shut down).
    pub(crate) fn dequeued_unstarted(&self) {
        self.queued.fetch_sub(1, Relaxed);
    }

    /// A delivery ended; `elapsed` from its start.
    pub(crate) fn finished(&self, ok: bool, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.record(ok, elapsed);
    }

    /// A request handled inline (no queue): counts it and its latency.
    pub(crate) fn record(&self, ok: bool, elapsed: Duration) {
        if ok {
            self.sent.fetch_add(1, Relaxed);
        } else {
            self.failed.fetch_add(1, Relaxed);
        }
        let s = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS_S.iter().position(|b| s <= *b).unwrap_or(LATENCY_BUCKETS_S.len());
        self.latency_buckets[i].fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// At the drain timeout: what is still queued or in flight is
    /// abandoned (counted as failed too); returns how many.
    pub(crate) fn abandon_unfinished(&self) -> u64 {
        let n =
            (self.queued.swap(0, Relaxed).max(0) + self.in_flight.swap(0, Relaxed).max(0)) as u64;
        self.abandoned.fetch_add(n, Relaxed);
        self.failed.fetch_add(n, Relaxed);
        n
    }

    pub fn snapshot(&self) -> IntegrationSnapshot {
        let mut buckets = [0u64; LATENCY_BUCKETS_S.len() + 1];
        let mut acc = 0;
        for (out, b) in buckets.iter_mut().zip(self.latency_buckets.iter()) {
            acc += b.load(Relaxed);
            *out = acc;
        }
        IntegrationSnapshot {
            integration: self.integration,
            sent: self.sent.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            queued: self.queued.load(Relaxed).max(0) as u64,
            capacity: self.capacity,
            in_flight: self.in_flight.load(Relaxed).max(0) as u64,
            latency_buckets: buckets,
            latency_sum: Duration::from_micros(self.latency_sum_us.load(Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let c = IntegrationCounters::new(Integration::Webhook, 8);
        c.enqueued();
        c.started();
        c.finished(true, Duration::from_millis(3));
        c.record(false, Duration::from_secs(100));
        let s = c.snapshot();
        assert_eq!((s.sent, s.failed, s.queued, s.in_flight), (1, 1, 0, 0));
        assert_eq!(s.latency_buckets[0], 0);
        assert_eq!(s.latency_buckets[1], 1);
        assert_eq!(s.latency_buckets[LATENCY_BUCKETS_S.len() - 1], 1);
        assert_eq!(s.latency_count(), 2);
    }
}
