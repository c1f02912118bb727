//! `pcap.snapshot(seconds?)` → the path of a pcapng file holding the
//! packets of the last `seconds` (default `integrations.pcap.default_seconds`,
//! at most `max_seconds`).
//!
//! The packets come from a [`PacketRing`]: the dataplane keeps the recent
//! packets of each core in a ring and implements this trait over all of
//! them (merged in time order). Until one is attached with
//! `ExecutorHandle::attach_packet_ring`, `pcap.snapshot` rejects with an
//! error saying so. Files are written by the blocking pool, as
//! `<dir>/<agent>-<UTC time>-<n>.pcapng`, with nanosecond timestamps.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataplane::synth::PcapNgWriter;
use dataplane::wire::link::LinkType;

use super::IntegrationError;

/// One packet as the ring kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPacket {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (≥ `data.len()` when the ring kept a prefix).
    pub wire_len: u32,
    pub data: Vec<u8>,
}

/// The recent packets of a capture, as the dataplane hands them over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSnapshot {
    pub link: LinkType,
    /// Oldest first.
    pub packets: Vec<RingPacket>,
}

/// What the dataplane implements for `pcap.snapshot`: the packets of the
/// last `window`, over all cores, oldest first. Called from a control-plane
/// blocking thread, never from a capture core; the implementation must not
/// stall capture to serve it (copy out of per-core rings the cores publish).
pub trait PacketRing: Send + Sync {
    fn recent(&self, window: Duration) -> Result<RingSnapshot, String>;
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC, proleptic Gregorian).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // "YYYY-MM-DDTHH:MM:SSZ" without its separators.
    let iso = reassembly::item::rfc3339(secs.saturating_mul(1_000_000_000));
    iso.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// Writes a snapshot (blocking: call from a blocking thread).
pub fn write_snapshot(
    ring: &dyn PacketRing,
    window: Duration,
    dir: &Path,
    agent: &str,
) -> Result<PathBuf, IntegrationError> {
    let snap = ring
        .recent(window)
        .map_err(|e| IntegrationError::Unavailable(format!("pcap.snapshot: {e}")))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| IntegrationError::Io(format!("creating {}: {e}", dir.display())))?;
    let name = agent
        .strip_suffix(".js")
        .unwrap_or(agent)
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_");
    let path = dir.join(format!(
        "{name}-{}-{}.pcapng",
        utc_stamp(SystemTime::now()),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let io = |e: std::io::Error| IntegrationError::Io(format!("writing {}: {e}", path.display()));
    let file = std::fs::File::create(&path).map_err(io)?;
    let mut w = PcapNgWriter::new(BufWriter::new(file), snap.link, true).map_err(io)?;
    for p in &snap.packets {
        w.write(p.ts_ns, &p.data, p.wire_len.max(p.data.len() as u32)).map_err(io)?;
    }
    let mut inner = w.into_inner();
    std::io::Write::flush(&mut inner).map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<RingPacket>);
    impl PacketRing for Fixed {
        fn recent(&self, _window: Duration) -> Result<RingSnapshot, String> {
            Ok(RingSnapshot { link: LinkType::Ethernet, packets: self.0.clone() })
        }
    }

    #[test]
    fn stamp_is_utc_calendar() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000)), "20231114T221320Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229T000000Z");
    }

    #[test]
    fn writes_a_readable_pcapng() {
        let d = tempfile::tempdir().unwrap();
        let frame = dataplane::synth::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, b"hello");
        let ring = Fixed(vec![RingPacket {
            ts_ns: 1_700_000_000_123_456_789,
            wire_len: frame.len() as u32,
            data: frame.clone(),
        }]);
        let p = write_snapshot(&ring, Duration::from_secs(5), d.path(), "a.js").unwrap();
        assert!(p.file_name().unwrap().to_string_lossy().starts_with("a-"));
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..4], &0x0a0d_0d0au32.to_le_bytes());
        assert!(bytes.windows(frame.len()).any(|w| w == frame.as_slice()));
    }
}
