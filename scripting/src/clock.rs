//! The clock hook calls are timed and budgeted with.
//!
//! Every hook call reads the clock once (its end is the next call's start),
//! so the read is on the per-item path: on x86_64 with an invariant TSC it
//! is the TSC itself (about 10 ns on the VM of BENCHMARKS.md, against 25 ns
//! for `clock_gettime`), elsewhere `std::time::Instant`.
//!
//! Ticks become nanoseconds through a scale measured once per process
//! against the monotonic clock over [`CALIBRATION`]. A hook's latency and
//! its budget need a few parts in ten thousand, which that gives: each end
//! of the measurement is a monotonic read bracketed by two TSC reads, kept
//! only when the bracket is tight, so a preemption between the reads cannot
//! skew it. A longer, adaptive calibration (the one of the `quanta` crate,
//! used here before) spun for 5 to 40 ms per process on that VM, half the
//! CPU of a short `skua run`.

use std::ops::Add;
use std::sync::OnceLock;
use std::time::Duration;

/// How long the TSC is compared with the monotonic clock, once per process.
pub const CALIBRATION: Duration = Duration::from_micros(250);

/// A reading of the hook clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

impl Instant {
    #[inline]
    pub fn now() -> Self {
        Self(source().read())
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    #[inline]
    pub fn duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(source().to_nanos(self.0.saturating_sub(earlier.0)))
    }

    pub fn elapsed(self) -> Duration {
        Instant::now().duration_since(self)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    #[inline]
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(source().to_ticks(d)))
    }
}

/// Where readings come from, and their scale: nanoseconds per tick as a
/// 32.32 fixed-point number, and its inverse.
struct Source {
    tsc: bool,
    ns_per_tick: u64,
    ticks_per_ns: u64,
    epoch: std::time::Instant,
}

impl Source {
    #[inline]
    fn read(&self) -> u64 {
        if self.tsc {
            tsc::read()
        } else {
            u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }

    #[inline]
    fn to_nanos(&self, ticks: u64) -> u64 {
        scale(ticks, self.ns_per_tick)
    }

    #[inline]
    fn to_ticks(&self, d: Duration) -> u64 {
        scale(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), self.ticks_per_ns)
    }
}

#[inline]
fn scale(v: u64, fixed: u64) -> u64 {
    u64::try_from((u128::from(v) * u128::from(fixed)) >> 32).unwrap_or(u64::MAX)
}

fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let epoch = std::time::Instant::now();
        let one = 1u64 << 32;
        match tsc::calibrate(CALIBRATION) {
            Some(ns_per_tick) if ns_per_tick > 0.0 => Source {
                tsc: true,
                ns_per_tick: (ns_per_tick * one as f64) as u64,
                ticks_per_ns: (one as f64 / ns_per_tick) as u64,
                epoch,
            },
            _ => Source { tsc: false, ns_per_tick: one, ticks_per_ns: one, epoch },
        }
    })
}

/// Nanoseconds per tick of the clock in use (1 without a TSC).
pub fn ns_per_tick() -> f64 {
    source().ns_per_tick as f64 / (1u64 << 32) as f64
}

/// Whether hook calls are timed from the TSC.
pub fn uses_tsc() -> bool {
    source().tsc
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod tsc {
    use std::time::{Duration, Instant};

    #[inline]
    pub fn read() -> u64 {
        // SAFETY: RDTSC reads a counter and touches no memory; every x86_64
        // processor has it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Whether the TSC ticks at one rate in every power state and on every
    /// core (CPUID 8000_0007h, EDX bit 8), so it can time a hook call.
    fn invariant() -> bool {
        // The extended leaf is read only when the highest one says it exists.
        let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
        max >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
    }

    /// A monotonic reading with the TSC at that moment: the midpoint of
    /// the two TSC reads around it, from the tightest of a few tries.
    fn pair(epoch: Instant) -> (f64, f64) {
        let mut best = (u64::MAX, 0.0, 0.0);
        for _ in 0..5 {
            let a = read();
            let m = epoch.elapsed().as_nanos() as f64;
            let b = read();
            let width = b.wrapping_sub(a);
            if width < best.0 {
                best = (width, m, a as f64 + width as f64 / 2.0);
            }
        }
        (best.1, best.2)
    }

    /// Nanoseconds per TSC tick measured over `span`, or `None` when the
    /// TSC is not invariant or did not move.
    pub fn calibrate(span: Duration) -> Option<f64> {
        if !invariant() {
            return None;
        }
        let epoch = Instant::now();
        let (m0, t0) = pair(epoch);
        while epoch.elapsed() < span {
            std::hint::spin_loop();
        }
        let (m1, t1) = pair(epoch);
        (t1 > t0 && m1 > m0).then(|| (m1 - m0) / (t1 - t0))
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    use std::time::Duration;

    pub fn read() -> u64 {
        0
    }

    pub fn calibrate(_: Duration) -> Option<f64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_measures_as_its_length_within_a_few_percent() {
        // Each reading of ours is bracketed by two of std's, so a thread
        // preempted between reads widens the bounds instead of failing.
        let s0 = std::time::Instant::now();
        let t0 = Instant::now();
        let s1 = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let s2 = std::time::Instant::now();
        let t1 = Instant::now();
        let s3 = std::time::Instant::now();
        let ours = t1.duration_since(t0).as_nanos() as f64;
        let (least, most) =
            (s2.duration_since(s1).as_nanos() as f64, s3.duration_since(s0).as_nanos() as f64);
        assert!(
            ours >= least * 0.98 && ours <= most * 1.02,
            "hook clock {ours} ns, std between {least} and {most} ns (tsc: {})",
            uses_tsc()
        );
    }

    #[test]
    fn a_deadline_is_its_budget_ahead_and_conversions_round_trip() {
        let t0 = Instant::now();
        let d = t0 + Duration::from_millis(5);
        assert!(d > t0);
        let back = d.duration_since(t0).as_nanos() as i128;
        assert!((back - 5_000_000).abs() < 5_000, "5 ms came back as {back} ns");
        assert_eq!(t0.duration_since(d), Duration::ZERO);
        let ns = ns_per_tick();
        assert!(ns > 0.01 && ns < 100.0, "{ns} ns per tick");
    }
}
