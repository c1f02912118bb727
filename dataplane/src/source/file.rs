//! pcap and pcapng files: read as fast as possible or at recorded pace,
//! played once, N times or forever.
//!
//! The format is told by the file's magic number, not its name. A record
//! cut short at the end of the file is counted (`truncated_capture`) and
//! ends the file as a capture tool would; a record that cannot be parsed
//! mid-file is counted (`corrupt_record`) and ends it too, since nothing
//! after it can be trusted to be aligned.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapBlock, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::{Frame, PacketSource, Poll, SourceError, SourceStats};
use crate::wire::LinkType;

/// The read buffer; a record must fit in it (pcap's snaplen limit is 256 KiB).
const READ_BUFFER: usize = 1 << 20;

/// Records delivered per poll.
const BURST: usize = 64;

/// The longest a paced source sleeps in one poll, so a stop request is
/// seen quickly even when the next packet is minutes away.
const MAX_PACE_SLEEP: Duration = Duration::from_millis(20);

/// How a replay is timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the cores take it.
    Fast,
    /// At the recorded inter-packet times, multiplied by `1 / speed`.
    Recorded { speed: f64 },
}

/// Where the bytes come from: a path, reopened for each loop, or a buffer
/// (the bundled demo capture).
#[derive(Clone)]
pub enum Input {
    Path(PathBuf),
    Bytes { name: String, bytes: Arc<[u8]> },
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Where the records come from.
enum Reader {
    /// The whole capture is in memory (a mapped file or a buffer): records
    /// are parsed where they lie and handed out without a copy.
    Slice {
        bytes: Whole,
        off: usize,
        format: Format,
    },
    /// A pipe or other stream: pcap-parser's buffered readers, which copy
    /// the bytes into their buffer first.
    Legacy {
        r: LegacyPcapReader<Box<dyn Read + Send>>,
        link: LinkType,
        nanos: bool,
    },
    Ng {
        r: PcapNGReader<Box<dyn Read + Send>>,
        ifaces: Vec<Iface>,
    },
}

/// A whole capture in memory.
enum Whole {
    Map(memmap2::Mmap),
    Shared(Arc<[u8]>),
}

impl AsRef<[u8]> for Whole {
    fn as_ref(&self) -> &[u8] {
        match self {
            Whole::Map(m) => m,
            Whole::Shared(b) => b,
        }
    }
}

/// The format of an in-memory capture and what its records need.
enum Format {
    Legacy {
        link: LinkType,
        nanos: bool,
        big_endian: bool,
    },
    /// The byte order is the current section's (a section header block
    /// sets it); `ifaces` are the section's interfaces.
    Ng {
        big_endian: bool,
        ifaces: Vec<Iface>,
    },
}

#[derive(Clone, Copy)]
struct Iface {
    link: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    offset_s: i64,
}

/// Counts kept by a file source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    pub records: u64,
    pub truncated_capture: u64,
    pub corrupt_record: u64,
    pub unknown_interface: u64,
}

/// The replay's clock: pacing and the loop offset.
struct Play {
    pace: Pace,
    /// Added to every timestamp so a looped capture's clock keeps moving forward.
    loop_offset_ns: u64,
    /// Pace reference: the first timestamp played.
    first_ts: Option<u64>,
    /// Last timestamp delivered (loop offset included).
    last_ts: u64,
    pace_start: Option<Instant>,
}

pub struct FileSource {
    input: Input,
    reader: Option<Reader>,
    play: Play,
    /// Plays left after the current one; `None` loops forever.
    loops_left: Option<u64>,
    /// First and last raw timestamps of the current play, for the loop offset.
    raw_first: Option<u64>,
    raw_last: u64,
    /// The bytes of an in-memory capture whose play ended, played again by
    /// the next loop without opening and mapping the file anew.
    replay: Option<Whole>,
    stats: FileStats,
}

impl FileSource {
    /// Opens `input` and reads its header. `loops` is how many times the
    /// capture is played (0 = forever).
    ///
    /// A regular file is mapped into memory and its records are parsed in
    /// place (no read copy; the kernel's read-ahead still streams it).
    /// A capture file must not be truncated while skua reads it: reading a
    /// mapped page past the new end kills the process (SIGBUS). Pipes and
    /// other streams are read through a buffer.
    pub fn open(input: Input, pace: Pace, loops: u64) -> Result<Self, SourceError> {
        let reader = open_reader(&input)?;
        Ok(Self {
            input,
            reader: Some(reader),
            play: Play { pace, loop_offset_ns: 0, first_ts: None, last_ts: 0, pace_start: None },
            loops_left: if loops == 0 { None } else { Some(loops - 1) },
            raw_first: None,
            raw_last: 0,
            replay: None,
            stats: FileStats::default(),
        })
    }

    pub fn path(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        Self::open(Input::Path(path.as_ref().to_path_buf()), Pace::Fast, 1)
    }

    pub fn file_stats(&self) -> FileStats {
        self.stats
    }

    /// Whether records are parsed in place (the capture is in memory).
    pub fn in_place(&self) -> bool {
        matches!(self.reader, Some(Reader::Slice { .. }))
    }

    /// Moves to the next play of the capture, or reports the end.
    fn next_loop(&mut self) -> Result<bool, SourceError> {
        match &mut self.loops_left {
            Some(0) => return Ok(false),
            Some(n) => *n -= 1,
            None => {}
        }
        if let Some(first) = self.raw_first.take() {
            self.play.loop_offset_ns += self.raw_last.saturating_sub(first) + 1_000_000;
        }
        self.reader = Some(match self.replay.take() {
            Some(bytes) => open_slice(bytes)
                .map_err(|reason| SourceError::File { path: self.input.name(), reason })?,
            None => open_reader(&self.input)?,
        });
        Ok(true)
    }

    /// Ends the current play; an in-memory capture keeps its bytes for the
    /// next one.
    fn end_play(&mut self) {
        if let Some(Reader::Slice { bytes, .. }) = self.reader.take() {
            self.replay = Some(bytes);
        }
    }
}

fn open_reader(input: &Input) -> Result<Reader, SourceError> {
    let err = |reason: String| SourceError::File { path: input.name(), reason };
    match input {
        Input::Bytes { bytes, .. } => open_slice(Whole::Shared(bytes.clone())).map_err(err),
        Input::Path(p) => {
            let file = File::open(p).map_err(|e| err(e.to_string()))?;
            // The same open file either way: a FIFO opened twice would
            // need its writer twice.
            match map_file(&file).map_err(|e| err(e.to_string()))? {
                Some(map) => open_slice(Whole::Map(map)).map_err(err),
                None => {
                    open_stream(Box::new(io::BufReader::with_capacity(1 << 16, file))).map_err(err)
                }
            }
        }
    }
}

/// Maps `file` if it is a regular, non-empty file; `None` for anything
/// else (a pipe, a character device), which is then streamed.
fn map_file(file: &File) -> io::Result<Option<memmap2::Mmap>> {
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    // SAFETY: a read-only private mapping of a regular file. Its bytes are
    // only read as `&[u8]` and every length in them is checked by the
    // parsers; what remains is the file being truncated under skua, which
    // `FileSource::open` documents.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::MmapOptions::new().map(file) };
    match map {
        Ok(m) => {
            // Read-ahead, and pages behind the reader may be dropped.
            let _ = m.advise(memmap2::Advice::Sequential);
            Ok(Some(m))
        }
        // Some file systems cannot map; read those.
        Err(_) => Ok(None),
    }
}

/// The magic number of a capture and what it says about the format.
fn check_magic(head: &[u8]) -> Result<u32, String> {
    if head.is_empty() {
        return Err("empty file, not a capture".into());
    }
    if head.len() < 4 {
        return Err(format!("{} bytes long, too short to be a capture", head.len()));
    }
    let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    match magic {
        NG_MAGIC | 0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Ok(magic),
        m => Err(format!(
            "not a capture file: unknown magic number {:02x} {:02x} {:02x} {:02x} (expected pcap or pcapng)",
            m as u8,
            (m >> 8) as u8,
            (m >> 16) as u8,
            (m >> 24) as u8
        )),
    }
}

const NG_MAGIC: u32 = 0x0a0d_0d0a;

fn open_slice(bytes: Whole) -> Result<Reader, String> {
    let data = bytes.as_ref();
    let format = match check_magic(data)? {
        NG_MAGIC => Format::Ng { big_endian: false, ifaces: Vec::new() },
        _ => match pcap_parser::parse_pcap_header(data) {
            Ok((_, h)) => Format::Legacy {
                link: LinkType::from_pcap(h.network.0 as u32),
                nanos: h.is_nanosecond_precision(),
                big_endian: h.is_bigendian(),
            },
            Err(e) => return Err(format!("bad pcap header: {e:?}")),
        },
    };
    let off = if matches!(format, Format::Legacy { .. }) { 24 } else { 0 };
    Ok(Reader::Slice { bytes, off, format })
}

fn open_stream(mut r: Box<dyn BufRead + Send>) -> Result<Reader, String> {
    // Peek at the magic number without consuming it.
    let head = loop {
        match r.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    };
    let magic = check_magic(head)?;
    let chained: Box<dyn Read + Send> = Box::new(r);
    let pcap_err = |e: PcapError<&[u8]>| format!("not a readable capture: {e:?}");
    if magic == NG_MAGIC {
        let r = PcapNGReader::new(READ_BUFFER, chained).map_err(pcap_err)?;
        return Ok(Reader::Ng { r, ifaces: Vec::new() });
    }
    let mut r = LegacyPcapReader::new(READ_BUFFER, chained).map_err(pcap_err)?;
    // The first block is always the file header.
    match r.next() {
        Ok((n, PcapBlockOwned::LegacyHeader(h))) => {
            let link = LinkType::from_pcap(h.network.0 as u32);
            let nanos = h.is_nanosecond_precision();
            r.consume(n);
            Ok(Reader::Legacy { r, link, nanos })
        }
        Ok(_) => Err("pcap header missing".into()),
        Err(e) => Err(format!("bad pcap header: {e:?}")),
    }
}

enum Step {
    /// A frame was delivered, stamped with this time.
    Frame(u64),
    Skip,
    Wait(Duration),
    Refill,
    End,
    Truncated,
    Corrupt,
}

impl Step {
    /// What a reader error means for the replay.
    fn from_error(e: PcapError<&[u8]>) -> Self {
        match e {
            PcapError::Eof => Step::End,
            PcapError::Incomplete(_) => Step::Refill,
            PcapError::UnexpectedEof => Step::Truncated,
            _ => Step::Corrupt,
        }
    }

    /// What a parse error of an in-memory capture means: a record cut
    /// short can only be the end of the file.
    fn from_slice_error(e: &pcap_parser::nom::Err<PcapError<&[u8]>>) -> Self {
        match e {
            pcap_parser::nom::Err::Incomplete(_) => Step::Truncated,
            _ => Step::Corrupt,
        }
    }

    /// Whether the record was used (not held back for its time).
    fn consumed(&self) -> bool {
        matches!(self, Step::Frame(_) | Step::Skip)
    }
}

impl Play {
    /// The timestamp to deliver a record at, or the wait before it is due.
    fn due(&mut self, raw_ns: u64) -> Result<u64, Duration> {
        let ts = raw_ns + self.loop_offset_ns;
        match pace_wait(&self.pace, &mut self.first_ts, &mut self.pace_start, ts) {
            Some(d) => Err(d),
            None => Ok(ts),
        }
    }

    /// A legacy pcap record.
    fn legacy(
        &mut self,
        b: &LegacyPcapBlock<'_>,
        link: LinkType,
        nanos: bool,
        out: &mut dyn FnMut(Frame<'_>),
    ) -> Step {
        let frac = u64::from(b.ts_usec) * if nanos { 1 } else { 1000 };
        match self.due(u64::from(b.ts_sec) * 1_000_000_000 + frac) {
            Err(d) => Step::Wait(d),
            Ok(ts) => {
                let caplen = (b.caplen as usize).min(b.data.len());
                out(Frame { data: &b.data[..caplen], wire_len: b.origlen, ts_ns: ts, link });
                Step::Frame(ts)
            }
        }
    }

    /// A pcapng block: interfaces are remembered, packets delivered.
    fn ng(
        &mut self,
        block: &Block<'_>,
        ifaces: &mut Vec<Iface>,
        stats: &mut FileStats,
        out: &mut dyn FnMut(Frame<'_>),
    ) -> Step {
        match block {
            Block::SectionHeader(_) => {
                ifaces.clear();
                Step::Skip
            }
            Block::InterfaceDescription(idb) => {
                ifaces.push(Iface {
                    link: LinkType::from_pcap(u32::from(idb.linktype.0 as u16)),
                    resolution: idb.ts_resolution().unwrap_or(1_000_000),
                    offset_s: idb.ts_offset(),
                });
                Step::Skip
            }
            Block::EnhancedPacket(epb) => match ifaces.get(epb.if_id as usize).copied() {
                Some(iface) => {
                    let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let ns = (u128::from(raw) * 1_000_000_000 / u128::from(iface.resolution.max(1)))
                        as u64;
                    let raw_ns =
                        (ns as i128 + i128::from(iface.offset_s) * 1_000_000_000).max(0) as u64;
                    match self.due(raw_ns) {
                        Err(d) => Step::Wait(d),
                        Ok(ts) => {
                            let caplen = (epb.caplen as usize).min(epb.data.len());
                            out(Frame {
                                data: &epb.data[..caplen],
                                wire_len: epb.origlen,
                                ts_ns: ts,
                                link: iface.link,
                            });
                            Step::Frame(ts)
                        }
                    }
                }
                None => {
                    stats.unknown_interface += 1;
                    Step::Skip
                }
            },
            // No timestamp in a simple packet block: it takes the previous
            // packet's time.
            Block::SimplePacket(spb) => match ifaces.first().copied() {
                Some(iface) => {
                    let caplen = (spb.origlen as usize).min(spb.data.len());
                    out(Frame {
                        data: &spb.data[..caplen],
                        wire_len: spb.origlen,
                        ts_ns: self.last_ts,
                        link: iface.link,
                    });
                    Step::Frame(self.last_ts)
                }
                None => {
                    stats.unknown_interface += 1;
                    Step::Skip
                }
            },
            _ => Step::Skip,
        }
    }
}

impl PacketSource for FileSource {
    fn describe(&self) -> String {
        format!("pcap:{}", self.input.name())
    }

    fn is_live(&self) -> bool {
        false
    }

    fn poll(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<Poll, SourceError> {
        let mut delivered = 0;
        while delivered < BURST {
            let Some(reader) = self.reader.as_mut() else {
                if self.next_loop()? {
                    continue;
                }
                return Ok(if delivered > 0 { Poll::Frames(delivered) } else { Poll::End });
            };
            let (play, stats) = (&mut self.play, &mut self.stats);
            // Read one block, hand a packet to `out`, then consume it (unless
            // it is held back for its time). The block borrows the reader,
            // hence the step value carried out.
            let step = match reader {
                Reader::Slice { bytes, off, format } => {
                    let rest = bytes.as_ref().get(*off..).unwrap_or_default();
                    if rest.is_empty() {
                        Step::End
                    } else {
                        let (step, left) = match format {
                            Format::Legacy { link, nanos, big_endian } => {
                                let parsed = if *big_endian {
                                    pcap_parser::pcap::parse_pcap_frame_be(rest)
                                } else {
                                    pcap_parser::pcap::parse_pcap_frame(rest)
                                };
                                match parsed {
                                    Ok((left, b)) => {
                                        (play.legacy(&b, *link, *nanos, out), left.len())
                                    }
                                    Err(e) => (Step::from_slice_error(&e), 0),
                                }
                            }
                            Format::Ng { big_endian, ifaces } => {
                                let parsed = if *big_endian {
                                    pcap_parser::pcapng::parse_block_be(rest)
                                } else {
                                    pcap_parser::pcapng::parse_block_le(rest)
                                };
                                match parsed {
                                    Ok((left, block)) => {
                                        if let Block::SectionHeader(shb) = &block {
                                            *big_endian = shb.big_endian();
                                        }
                                        (play.ng(&block, ifaces, stats, out), left.len())
                                    }
                                    Err(e) => (Step::from_slice_error(&e), 0),
                                }
                            }
                        };
                        if step.consumed() {
                            *off += rest.len() - left;
                        }
                        step
                    }
                }
                Reader::Legacy { r, link, nanos } => match r.next() {
                    Ok((n, PcapBlockOwned::Legacy(b))) => {
                        let step = play.legacy(&b, *link, *nanos, out);
                        if step.consumed() {
                            r.consume(n);
                        }
                        step
                    }
                    Ok((n, _)) => {
                        r.consume(n);
                        Step::Skip
                    }
                    Err(e) => Step::from_error(e),
                },
                Reader::Ng { r, ifaces } => match r.next() {
                    Ok((n, PcapBlockOwned::NG(block))) => {
                        let step = play.ng(&block, ifaces, stats, out);
                        if step.consumed() {
                            r.consume(n);
                        }
                        step
                    }
                    Ok((n, _)) => {
                        r.consume(n);
                        Step::Skip
                    }
                    Err(e) => Step::from_error(e),
                },
            };
            match step {
                Step::Frame(ts) => {
                    self.play.last_ts = ts;
                    self.raw_first.get_or_insert(ts - self.play.loop_offset_ns);
                    self.raw_last = ts - self.play.loop_offset_ns;
                    self.stats.records += 1;
                    delivered += 1;
                }
                Step::Skip => {}
                Step::Wait(d) => {
                    if delivered > 0 {
                        return Ok(Poll::Frames(delivered));
                    }
                    std::thread::sleep(d.min(MAX_PACE_SLEEP));
                    return Ok(Poll::Idle);
                }
                Step::Refill => {
                    let refilled = match reader {
                        Reader::Legacy { r, .. } => r.refill(),
                        Reader::Ng { r, .. } => r.refill(),
                        Reader::Slice { .. } => Ok(()),
                    };
                    if let Err(e) = refilled {
                        return Err(SourceError::File {
                            path: self.input.name(),
                            reason: format!("read failed: {e:?}"),
                        });
                    }
                }
                Step::End => self.end_play(),
                Step::Truncated => {
                    self.stats.truncated_capture += 1;
                    self.reader = None;
                    self.loops_left = Some(0);
                }
                Step::Corrupt => {
                    self.stats.corrupt_record += 1;
                    self.reader = None;
                    self.loops_left = Some(0);
                }
            }
        }
        Ok(Poll::Frames(delivered))
    }

    fn stats(&self) -> SourceStats {
        SourceStats {
            drops: vec![
                ("truncated_capture", self.stats.truncated_capture),
                ("corrupt_record", self.stats.corrupt_record),
                ("unknown_interface", self.stats.unknown_interface),
            ],
        }
    }
}

fn pace_wait(
    pace: &Pace,
    first_ts: &mut Option<u64>,
    start: &mut Option<Instant>,
    ts: u64,
) -> Option<Duration> {
    let Pace::Recorded { speed } = *pace else { return None };
    let first = *first_ts.get_or_insert(ts);
    let start = *start.get_or_insert_with(Instant::now);
    let due = Duration::from_nanos((ts.saturating_sub(first) as f64 / speed.max(1e-6)) as u64);
    due.checked_sub(start.elapsed()).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{PcapNgWriter, PcapWriter};

    /// (timestamp, bytes, wire length) of every frame a source delivers,
    /// and its counts.
    fn drain(mut src: FileSource) -> (Vec<(u64, Vec<u8>, u32)>, FileStats) {
        let mut got = Vec::new();
        loop {
            match src.poll(&mut |f| got.push((f.ts_ns, f.data.to_vec(), f.wire_len))).expect("poll")
            {
                Poll::End => break,
                _ => continue,
            }
        }
        (got, src.file_stats())
    }

    fn frames() -> Vec<(u64, Vec<u8>, u32)> {
        (0..300u64)
            .map(|i| {
                let len = (i * 37 % 1500) as usize;
                let data: Vec<u8> = (0..len).map(|b| (b as u64 ^ i) as u8).collect();
                let wire = len as u32 + (i % 3) as u32;
                (1_700_000_000_000_000_000 + i * 1_234_567_000, data, wire)
            })
            .collect()
    }

    fn legacy(nanos: bool, big_endian: bool) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, nanos).unwrap();
        for (ts, d, wire) in frames() {
            w.write(ts, &d, wire).unwrap();
        }
        let mut b = w.into_inner();
        if big_endian {
            // Swap every 32-bit field of the header and the records; the
            // two 16-bit version fields swap with each other too, so fix
            // them after.
            let swap = |b: &mut [u8]| b.reverse();
            for f in [0, 8, 12, 16, 20] {
                swap(&mut b[f..f + 4]);
            }
            b[4..8].copy_from_slice(&[0, 2, 0, 4]);
            let mut off = 24;
            while off < b.len() {
                let caplen = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
                for f in 0..4 {
                    swap(&mut b[off + 4 * f..off + 4 * f + 4]);
                }
                off += 16 + caplen;
            }
        }
        b
    }

    fn ng() -> Vec<u8> {
        let mut w = PcapNgWriter::new(Vec::new(), LinkType::Ethernet, true).unwrap();
        for (ts, d, wire) in frames() {
            w.write(ts, &d, wire).unwrap();
        }
        w.into_inner()
    }

    fn expected(nanos: bool) -> Vec<(u64, Vec<u8>, u32)> {
        frames()
            .into_iter()
            .map(|(ts, d, w)| (if nanos { ts } else { ts / 1000 * 1000 }, d, w))
            .collect()
    }

    /// Writes `bytes` into a FIFO from a thread and opens the FIFO: the
    /// source has to stream it.
    fn through_fifo(dir: &Path, bytes: Vec<u8>) -> (FileSource, std::thread::JoinHandle<()>) {
        let fifo = dir.join("fifo");
        let made =
            std::process::Command::new("mkfifo").arg(&fifo).status().expect("running mkfifo");
        assert!(made.success(), "mkfifo failed");
        let path = fifo.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).expect("open fifo");
            let _ = f.write_all(&bytes);
        });
        let src = FileSource::path(&fifo).expect("open fifo source");
        (src, writer)
    }

    #[test]
    fn mapped_buffered_and_streamed_captures_give_the_same_frames() {
        for (name, bytes, nanos) in [
            ("pcap", legacy(false, false), false),
            ("pcap-ns", legacy(true, false), true),
            ("pcap-be", legacy(false, true), false),
            ("pcapng", ng(), true),
        ] {
            let want = expected(nanos);
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("c");
            std::fs::write(&file, &bytes).unwrap();

            let mapped = FileSource::path(&file).unwrap();
            assert!(mapped.in_place(), "{name}: a regular file is mapped");
            let (got, stats) = drain(mapped);
            assert_eq!(got, want, "{name}: mapped");
            assert_eq!(stats, FileStats { records: 300, ..FileStats::default() }, "{name}");

            let buffered = FileSource::open(
                Input::Bytes { name: name.into(), bytes: bytes.clone().into() },
                Pace::Fast,
                1,
            )
            .unwrap();
            assert!(buffered.in_place());
            assert_eq!(drain(buffered).0, want, "{name}: in a buffer");

            let (streamed, writer) = through_fifo(dir.path(), bytes);
            assert!(!streamed.in_place(), "{name}: a FIFO is streamed");
            assert_eq!(drain(streamed).0, want, "{name}: streamed");
            writer.join().unwrap();
        }
    }

    #[test]
    fn a_cut_or_corrupt_mapped_capture_keeps_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c");
        let whole = legacy(false, false);
        let want = expected(false);
        // Cut in the middle of the 11th record's bytes.
        let cut = 24 + want[..10].iter().map(|f| 16 + f.1.len()).sum::<usize>() + 20;
        std::fs::write(&file, &whole[..cut]).unwrap();
        let (got, stats) = drain(FileSource::path(&file).unwrap());
        assert_eq!(got, want[..10]);
        assert_eq!((stats.records, stats.truncated_capture, stats.corrupt_record), (10, 1, 0));

        // A pcapng block whose trailing length disagrees with its head.
        let mut bad = ng();
        let first_epb = 28 + 32;
        let at = first_epb + 4;
        bad[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        std::fs::write(&file, &bad).unwrap();
        let (got, stats) = drain(FileSource::path(&file).unwrap());
        assert!(got.is_empty());
        assert_eq!(stats.truncated_capture + stats.corrupt_record, 1, "{stats:?}");
    }

    #[test]
    fn a_looped_mapped_capture_moves_its_clock_forward() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c");
        std::fs::write(&file, legacy(true, false)).unwrap();
        let (got, stats) = drain(FileSource::open(Input::Path(file), Pace::Fast, 3).unwrap());
        assert_eq!(stats.records, 900);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "timestamps keep rising across loops");
        assert_eq!(got[300].1, got[0].1);
    }
}
