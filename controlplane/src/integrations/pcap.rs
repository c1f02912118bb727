//! `pcap.path(stream)`, `pcap.snapshot(streams?, dir?)` and
//! `pcap.snapshot(seconds)`: pcap files written from the packets the
//! dataplane cores retain (`dataplane::retention`).
//!
//! Owns: the selection of retained packets for a call, the file format, and
//! the *store*, the pcap folder (`integrations.pcap.dir`, by default
//! `<scripting.dataDir>/pcap`) bounded by `integrations.pcap.max_store_bytes`.
//!
//! Files are **pcapng**, not classic pcap: one file may hold packets of
//! several link types (cores fed by different sources), timestamps keep
//! their nanoseconds, and the section header names what the file holds
//! (the streams, or the window). tshark, Wireshark, tcpdump (libpcap ≥ 1.1)
//! and scapy read it.
//!
//! Names: `pcap.path(s)` writes `stream-<s>.pcapng` (the same name for
//! every agent and every call: a later call replaces the file with the
//! stream's packets as retained then; the replacement is a rename, so a
//! reader that has the old file open keeps reading it whole);
//! `pcap.snapshot` writes `[<dir>/]<agent>-<UTC time>-<n>.pcapng`. `dir` is
//! a folder inside the pcap folder (checked as `file.*` paths are: no `..`,
//! not absolute, no symbolic link on the way).
//!
//! The store keeps what it wrote in one list, oldest first; a file that
//! takes it over its byte budget evicts the oldest files (counted). Files
//! there before this process started are not counted and never deleted.
//!
//! Everything here runs on the control plane's blocking threads, never on a
//! capture core: reading a core's ring copies out of it without stopping
//! the core (`dataplane::retention` says how).

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataplane::retention::{Miss, RetainedPacket, Retention};
use dataplane::synth::PcapNgWriter;

use super::IntegrationError;

/// Which retained packets a file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These streams (both directions, their fragments), in capture order.
    Streams(Vec<u64>),
    /// Every retained packet of every core.
    All,
    /// The packets of the last window of capture time, every core.
    Last(Duration),
}

impl Selection {
    /// What the file's section comment says it holds.
    fn describe(&self) -> String {
        match self {
            Selection::Streams(s) if s.len() == 1 => format!("skua stream {}", s[0]),
            Selection::Streams(s) => format!(
                "skua streams {}",
                s.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
            ),
            Selection::All => "skua: every retained packet".into(),
            Selection::Last(d) => format!("skua: the last {} s of capture", d.as_secs()),
        }
    }
}

/// The retained packets `sel` names, merged in capture order. A stream with
/// no retained packet is an error saying why (and counted by `ret`).
pub fn select(ret: &Retention, sel: &Selection) -> Result<Vec<RetainedPacket>, Miss> {
    match sel {
        Selection::Streams(s) => ret.streams(s),
        Selection::All if !ret.config().is_on() => Err(Miss::Off),
        Selection::All => Ok(ret.all()),
        Selection::Last(d) => Ok(ret.last(d.as_nanos().min(u128::from(u64::MAX)) as u64)),
    }
}

/// Writes `packets` as one pcapng section (nanosecond timestamps, one
/// interface per link type) whose comment is `comment`.
pub fn write_pcapng<W: Write>(
    out: W,
    packets: &[RetainedPacket],
    comment: &str,
) -> std::io::Result<W> {
    let mut w = PcapNgWriter::with_comment(out, true, Some(comment))?;
    for p in packets {
        let iface = w.interface_for(p.link)?;
        w.write_on(iface, p.ts_ns, &p.data, p.wire_len.max(p.data.len() as u32))?;
    }
    Ok(w.into_inner())
}

/// The pcapng bytes of `streams`' retained packets: what the hub's "download
/// pcap" of an item serves (issue 32). Local in `skua run`; a remote worker
/// will answer the hub's request over its link with the same bytes.
pub fn stream_pcapng(ret: &Retention, streams: &[u64]) -> Result<Vec<u8>, Miss> {
    let sel = Selection::Streams(streams.to_vec());
    let packets = select(ret, &sel)?;
    // Writing to a Vec cannot fail.
    Ok(write_pcapng(Vec::new(), &packets, &sel.describe()).unwrap_or_default())
}

/// The store's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Files written (`pcap.path` and `pcap.snapshot`).
    pub files_written: u64,
    pub bytes_written: u64,
    /// Files deleted to stay within `max_store_bytes`.
    pub evicted_files: u64,
    pub evicted_bytes: u64,
    /// Bytes of the files the store holds now.
    pub bytes: u64,
    /// Files refused because one alone was over the budget.
    pub too_large: u64,
}

/// The pcap folder, bounded in bytes.
#[derive(Debug)]
pub struct PcapStore {
    dir: PathBuf,
    max_bytes: u64,
    files: Mutex<Files>,
    seq: AtomicU64,
    files_written: AtomicU64,
    bytes_written: AtomicU64,
    evicted_files: AtomicU64,
    evicted_bytes: AtomicU64,
    too_large: AtomicU64,
}

#[derive(Debug, Default)]
struct Files {
    /// Written files, oldest first, with their sizes.
    list: VecDeque<(PathBuf, u64)>,
    bytes: u64,
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC, proleptic Gregorian).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // "YYYY-MM-DDTHH:MM:SSZ" without its separators.
    let iso = reassembly::item::rfc3339(secs.saturating_mul(1_000_000_000));
    iso.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// The executor prefixes the helper's name.
fn miss_error(m: Miss) -> IntegrationError {
    IntegrationError::Unavailable(m.to_string())
}

impl PcapStore {
    pub fn new(dir: PathBuf, max_bytes: u64) -> PcapStore {
        PcapStore {
            dir,
            max_bytes,
            files: Mutex::default(),
            seq: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            evicted_files: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
        }
    }

    /// The pcap folder, absolute when `scripting.dataDir` is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            files_written: self.files_written.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            evicted_files: self.evicted_files.load(Ordering::Relaxed),
            evicted_bytes: self.evicted_bytes.load(Ordering::Relaxed),
            bytes: self.files.lock().map(|f| f.bytes).unwrap_or(0),
            too_large: self.too_large.load(Ordering::Relaxed),
        }
    }

    /// `pcap.path(stream)` (blocking: call from a blocking thread).
    pub fn path(&self, ret: &Retention, stream: u64) -> Result<PathBuf, IntegrationError> {
        let sel = Selection::Streams(vec![stream]);
        let packets = select(ret, &sel).map_err(miss_error)?;
        self.write(None, &format!("stream-{stream}.pcapng"), &packets, &sel.describe())
    }

    /// `pcap.snapshot` (blocking: call from a blocking thread).
    pub fn snapshot(
        &self,
        ret: &Retention,
        sel: &Selection,
        dir: Option<&Path>,
        agent: &str,
    ) -> Result<PathBuf, IntegrationError> {
        let packets = select(ret, sel).map_err(miss_error)?;
        let name = agent
            .strip_suffix(".js")
            .unwrap_or(agent)
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_");
        let file = format!(
            "{name}-{}-{}.pcapng",
            utc_stamp(SystemTime::now()),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        self.write(dir, &file, &packets, &sel.describe())
    }

    /// Writes `name` in the folder (or its subfolder `sub`) atomically and
    /// accounts for it.
    fn write(
        &self,
        sub: Option<&Path>,
        name: &str,
        packets: &[RetainedPacket],
        comment: &str,
    ) -> Result<PathBuf, IntegrationError> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            IntegrationError::Io(format!("{what} {}: {e}", p.display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", &self.dir, e))?;
        let folder = match sub {
            Some(s) => super::file::resolve(&self.dir, s)?,
            None => self.dir.clone(),
        };
        std::fs::create_dir_all(&folder).map_err(|e| io("creating", &folder, e))?;
        let path = folder.join(name);
        let tmp = folder.join(format!(".{name}.{}.tmp", self.seq.fetch_add(1, Ordering::Relaxed)));
        let written = std::fs::File::create(&tmp)
            .and_then(|f| write_pcapng(BufWriter::new(f), packets, comment))
            .and_then(|mut w| {
                w.flush()?;
                w.into_inner().map_err(|e| e.into_error())?.metadata()
            })
            .map(|m| m.len());
        let size = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(io("writing", &path, e));
            }
        };
        if size > self.max_bytes {
            let _ = std::fs::remove_file(&tmp);
            self.too_large.fetch_add(1, Ordering::Relaxed);
            return Err(IntegrationError::Invalid(format!(
                "{} would be {size} bytes, over integrations.pcap.max_store_bytes ({})",
                path.display(),
                self.max_bytes
            )));
        }
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("writing", &path, e)
        })?;
        if let Some(i) = files.list.iter().position(|(p, _)| *p == path) {
            if let Some((_, old)) = files.list.remove(i) {
                files.bytes -= old;
            }
        }
        files.list.push_back((path.clone(), size));
        files.bytes += size;
        while files.bytes > self.max_bytes {
            let Some((old, n)) = files.list.pop_front() else { break };
            files.bytes -= n;
            // Gone already (an agent deleted it): nothing to count.
            if std::fs::remove_file(&old).is_ok() {
                self.evicted_files.fetch_add(1, Ordering::Relaxed);
                self.evicted_bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
        drop(files);
        self.files_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(size, Ordering::Relaxed);
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::retention::RetentionConfig;
    use dataplane::wire::link::LinkType;

    #[test]
    fn stamp_is_utc_calendar() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000)), "20231114T221320Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229T000000Z");
    }

    fn retention() -> std::sync::Arc<Retention> {
        let r = Retention::new(
            RetentionConfig {
                bytes_per_core: 1 << 16,
                max_age_ns: 0,
                fragment_window_ns: 1_000_000_000,
            },
            1,
        );
        let mut w = r.writer(0).unwrap();
        for i in 0..6u16 {
            let frame =
                dataplane::synth::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i % 2, 53, b"hi");
            w.push(
                1_700_000_000_000_000_000 + u64::from(i),
                1 + u64::from(i % 2),
                0,
                LinkType::Ethernet,
                &frame,
                frame.len() as u32,
            );
        }
        r
    }

    #[test]
    fn the_store_replaces_a_stream_file_and_evicts_the_oldest() {
        let d = tempfile::tempdir().unwrap();
        let r = retention();
        let one = {
            let s = PcapStore::new(d.path().join("p"), 1 << 20);
            let p = s.path(&r, 1).unwrap();
            assert_eq!(p.file_name().unwrap(), "stream-1.pcapng");
            s.path(&r, 1).unwrap();
            let st = s.stats();
            assert_eq!((st.files_written, st.evicted_files), (2, 0));
            assert_eq!(st.bytes, std::fs::metadata(&p).unwrap().len());
            st.bytes
        };
        // Room for two files: the third evicts the first.
        let s = PcapStore::new(d.path().join("q"), one * 2 + one / 2);
        let a = s.path(&r, 1).unwrap();
        s.path(&r, 2).unwrap();
        s.snapshot(&r, &Selection::Streams(vec![1]), Some(Path::new("sub")), "a.js").unwrap();
        assert!(!a.exists());
        assert_eq!(s.stats().evicted_files, 1);
        // A file alone over the budget is refused.
        let tiny = PcapStore::new(d.path().join("t"), 10);
        assert!(matches!(tiny.path(&r, 1), Err(IntegrationError::Invalid(_))));
        assert_eq!(tiny.stats().too_large, 1);
        // Streams never seen, and a dir leaving the folder.
        let e = s.path(&r, 99).unwrap_err().to_string();
        assert!(e.contains("never seen"), "{e}");
        assert!(s.snapshot(&r, &Selection::All, Some(Path::new("../x")), "a").is_err());
    }
}
