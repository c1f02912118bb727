//! TCP sequence numbers: a wrapping newtype (smoltcp's `TcpSeqNumber`).
//!
//! Comparisons are modulo 2^32 (RFC 1982 serial arithmetic): `a < b` when
//! `b - a` is in (0, 2^31). That ordering is not transitive over the whole
//! ring, which is why it only ever compares numbers within one window.

use core::cmp::Ordering;
use core::ops::Add;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance `self - other`, modulo 2^32.
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_across_wrap() {
        let a = SeqNumber(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
    }

    #[test]
    fn equal_and_half_ring() {
        let a = SeqNumber(5);
        assert_eq!(a.partial_cmp(&a), Some(core::cmp::Ordering::Equal));
        assert_eq!((a + 0x7fff_ffff).diff(a), i32::MAX);
    }
}
