//! Symmetric Toeplitz hashing: the same function a NIC's RSS computes.
//!
//! With the key `0x6d5a` repeated, the Toeplitz hash of
//! `(src ip, dst ip, src port, dst port)` equals that of the swapped tuple,
//! because the key repeats every 16 bits and each swapped field moves by a
//! multiple of 16 bits. Ports configured with this key send both
//! directions of a flow to one queue; the software dispatcher uses the
//! very same function for sources without RSS, so a flow meets the same
//! core either way.

use crate::parse::PacketMeta;

/// The symmetric key, long enough for any NIC (40 bytes for most, 52 for
/// Intel i40e/ice); a port is given the prefix its `hash_key_size` asks for.
pub const SYMMETRIC_RSS_KEY: [u8; 52] = {
    let mut k = [0u8; 52];
    let mut i = 0;
    while i < 52 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Longest hash input: IPv6 addresses and ports.
const MAX_INPUT: usize = 36;

/// A Toeplitz hasher with one lookup table per input byte position, so a
/// 12-byte IPv4 tuple costs 12 loads and XORs.
pub struct Toeplitz {
    table: Box<[[u32; 256]; MAX_INPUT]>,
}

impl Toeplitz {
    /// `key` must be at least 40 bytes (input + 4).
    pub fn new(key: &[u8]) -> Self {
        assert!(key.len() >= MAX_INPUT + 4, "Toeplitz key shorter than 40 bytes");
        let window = |bit: usize| -> u32 {
            // The 32 key bits starting at bit `bit` (MSB first).
            let byte = bit / 8;
            let shift = bit % 8;
            let w = u64::from_be_bytes([
                key[byte],
                key[byte + 1],
                key[byte + 2],
                key[byte + 3],
                *key.get(byte + 4).unwrap_or(&0),
                0,
                0,
                0,
            ]);
            ((w << shift) >> 32) as u32
        };
        let mut table = Box::new([[0u32; 256]; MAX_INPUT]);
        for (pos, row) in table.iter_mut().enumerate() {
            for (v, slot) in row.iter_mut().enumerate() {
                let mut h = 0u32;
                for b in 0..8 {
                    if v & (0x80 >> b) != 0 {
                        h ^= window(pos * 8 + b);
                    }
                }
                *slot = h;
            }
        }
        Self { table }
    }

    /// The hash of `input` (at most 36 bytes; longer input is cut there).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        let mut h = 0;
        for (row, &b) in self.table.iter().zip(input) {
            h ^= row[usize::from(b)];
        }
        h
    }

    /// The RSS hash of a decoded packet, with the fields a NIC uses: the
    /// 4-tuple for TCP and UDP, the address pair for other IP packets and
    /// for fragments (whose later pieces carry no ports), 0 for non-IP.
    #[inline]
    pub fn packet(&self, m: &PacketMeta) -> u32 {
        let mut buf = [0u8; MAX_INPUT];
        let alen = match m.ip_version {
            4 => 4,
            6 => 16,
            _ => return 0,
        };
        buf[..alen].copy_from_slice(&m.src_ip[..alen]);
        buf[alen..2 * alen].copy_from_slice(&m.dst_ip[..alen]);
        let mut len = 2 * alen;
        if m.fragment.is_none() && m.has_ports() {
            buf[len..len + 2].copy_from_slice(&m.src_port.to_be_bytes());
            buf[len + 2..len + 4].copy_from_slice(&m.dst_port.to_be_bytes());
            len += 4;
        }
        self.hash(&buf[..len])
    }
}

impl Default for Toeplitz {
    fn default() -> Self {
        Self::new(&SYMMETRIC_RSS_KEY)
    }
}

/// Which of `n` cores a hash maps to. NICs index a redirection table with
/// the low bits; skua's tables are filled round-robin, which this matches.
#[inline]
pub fn core_for(hash: u32, n: usize) -> usize {
    (hash as usize) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Microsoft RSS verification suite's key and vectors (the values
    /// every NIC vendor's datasheet reproduces), to show this is Toeplitz.
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn tuple(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut v = src.to_vec();
        v.extend_from_slice(&dst);
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
        v
    }

    #[test]
    fn matches_the_reference_vectors() {
        let t = Toeplitz::new(&MS_KEY);
        // 66.9.149.187:2794 -> 161.142.100.80:1766
        assert_eq!(t.hash(&tuple([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766)), 0x51ccc178);
        assert_eq!(t.hash(&tuple([66, 9, 149, 187], [161, 142, 100, 80], 0, 0)[..8]), 0x323e8fc2);
        // 199.92.111.2:14230 -> 65.69.140.83:4739
        assert_eq!(t.hash(&tuple([199, 92, 111, 2], [65, 69, 140, 83], 14230, 4739)), 0xc626b0ea);
    }

    #[test]
    fn symmetric_key_is_symmetric() {
        let t = Toeplitz::default();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..10_000 {
            let (a, b) = (next(), next());
            let src = (a as u32).to_be_bytes();
            let dst = (b as u32).to_be_bytes();
            let (sp, dp) = ((a >> 32) as u16, (b >> 32) as u16);
            assert_eq!(t.hash(&tuple(src, dst, sp, dp)), t.hash(&tuple(dst, src, dp, sp)));
            let mut v6a = [0u8; 36];
            let mut v6b = [0u8; 36];
            for i in 0..16 {
                v6a[i] = next() as u8;
                v6a[16 + i] = next() as u8;
            }
            v6a[32..34].copy_from_slice(&sp.to_be_bytes());
            v6a[34..].copy_from_slice(&dp.to_be_bytes());
            v6b[..16].copy_from_slice(&v6a[16..32]);
            v6b[16..32].copy_from_slice(&v6a[..16]);
            v6b[32..34].copy_from_slice(&dp.to_be_bytes());
            v6b[34..].copy_from_slice(&sp.to_be_bytes());
            assert_eq!(t.hash(&v6a), t.hash(&v6b));
        }
    }

    #[test]
    fn spreads_over_cores() {
        let t = Toeplitz::default();
        let mut per_core = [0usize; 4];
        for port in 0..4000u16 {
            let h = t.hash(&tuple([10, 0, 0, 1], [10, 0, 0, 2], 40000 + port, 80));
            per_core[core_for(h, 4)] += 1;
        }
        assert!(per_core.iter().all(|&n| n > 600), "{per_core:?}");
    }
}
