//! Retries: exponential back-off with jitter, for retryable errors only.
//!
//! Attempt n (n = 1 for the first retry) waits a random time between half
//! and all of `min(initial · 2^(n-1), max)`; a server's `Retry-After`
//! replaces that wait when it is longer, up to `max_retry_after_ms` (longer
//! than that fails the delivery rather than hold a queue slot). Every retry
//! is counted on the integration's counters.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::RetryConfig;
use super::counters::IntegrationCounters;
use super::IntegrationError;

/// A failed delivery after its last attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub error: IntegrationError,
    pub attempts: u32,
}

impl Failed {
    /// The message the agent's Promise rejects with.
    pub fn message(&self) -> String {
        if self.attempts > 1 {
            format!("{} (after {} attempts)", self.error, self.attempts)
        } else {
            self.error.to_string()
        }
    }
}

/// The wait before retry number `retry` (1-based), without a server hint.
pub fn backoff(cfg: &RetryConfig, retry: u32) -> Duration {
    let shift = retry.saturating_sub(1).min(32);
    let base = cfg.initial_backoff_ms.saturating_mul(1u64 << shift).min(cfg.max_backoff_ms);
    let half = base / 2;
    Duration::from_millis(half + jitter(base - half + 1))
}

/// What to do after a failed attempt: `Some(wait)` to retry, `None` to give up.
pub fn next_wait(cfg: &RetryConfig, err: &IntegrationError, retries_done: u32) -> Option<Duration> {
    if !err.retryable() || retries_done >= cfg.max_retries {
        return None;
    }
    let wait = backoff(cfg, retries_done + 1);
    match err.retry_after() {
        Some(ra) if ra > Duration::from_millis(cfg.max_retry_after_ms) => None,
        Some(ra) => Some(ra.max(wait.min(ra + Duration::from_millis(cfg.initial_backoff_ms)))),
        None => Some(wait),
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the retries run out.
pub async fn with_retries<T, F, Fut>(
    cfg: &RetryConfig,
    counters: &IntegrationCounters,
    mut attempt: F,
) -> Result<T, Failed>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, IntegrationError>>,
{
    let mut retries = 0u32;
    loop {
        match attempt(retries).await {
            Ok(v) => return Ok(v),
            Err(error) => match next_wait(cfg, &error, retries) {
                Some(wait) => {
                    counters.retried();
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                None => return Err(Failed { error, attempts: retries + 1 }),
            },
        }
    }
}

/// A random number in `0..n` (n ≥ 1): xorshift seeded once per process from
/// the std hasher's random keys; jitter needs no better.
fn jitter(n: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.load(Ordering::Relaxed);
    if s == 0 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x5EED);
        s = h.finish() | 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    STATE.store(s, Ordering::Relaxed);
    if n <= 1 {
        0
    } else {
        s % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RetryConfig {
        RetryConfig {
            max_retries: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            max_retry_after_ms: 5000,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let c = cfg();
        for _ in 0..200 {
            let b1 = backoff(&c, 1).as_millis() as u64;
            assert!((50..=100).contains(&b1), "{b1}");
            let b3 = backoff(&c, 3).as_millis() as u64;
            assert!((200..=400).contains(&b3), "{b3}");
            let b9 = backoff(&c, 9).as_millis() as u64;
            assert!((500..=1000).contains(&b9), "{b9}");
        }
    }

    #[test]
    fn only_retryable_errors_retry() {
        let c = cfg();
        assert!(next_wait(&c, &IntegrationError::Invalid("x".into()), 0).is_none());
        assert!(next_wait(
            &c,
            &IntegrationError::Status { status: 404, retry_after: None, body: String::new() },
            0
        )
        .is_none());
        assert!(next_wait(
            &c,
            &IntegrationError::Status { status: 503, retry_after: None, body: String::new() },
            0
        )
        .is_some());
        assert!(next_wait(&c, &IntegrationError::Connect("refused".into()), 2).is_some());
        assert!(next_wait(&c, &IntegrationError::Connect("refused".into()), 3).is_none());
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let c = cfg();
        let e = |s| IntegrationError::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(s)),
            body: String::new(),
        };
        let w = next_wait(&c, &e(2), 0).unwrap();
        assert!(w >= Duration::from_secs(2) && w <= Duration::from_millis(2100), "{w:?}");
        assert!(next_wait(&c, &e(60), 0).is_none());
    }
}
