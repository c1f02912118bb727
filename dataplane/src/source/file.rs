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
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

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

    fn open(&self) -> io::Result<Box<dyn BufRead + Send>> {
        match self {
            Input::Path(p) => Ok(Box::new(io::BufReader::with_capacity(1 << 16, File::open(p)?))),
            Input::Bytes { bytes, .. } => Ok(Box::new(io::Cursor::new(ByteSlice(bytes.clone())))),
        }
    }
}

struct ByteSlice(Arc<[u8]>);

impl AsRef<[u8]> for ByteSlice {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

enum Reader {
    Legacy { r: LegacyPcapReader<Box<dyn Read + Send>>, link: LinkType, nanos: bool },
    Ng { r: PcapNGReader<Box<dyn Read + Send>>, ifaces: Vec<Iface> },
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

pub struct FileSource {
    input: Input,
    reader: Option<Reader>,
    pace: Pace,
    /// Plays left after the current one; `None` loops forever.
    loops_left: Option<u64>,
    /// Added to every timestamp so a looped capture's clock keeps moving forward.
    loop_offset_ns: u64,
    /// Pace reference: the first timestamp played.
    first_ts: Option<u64>,
    /// Last timestamp delivered (loop offset included).
    last_ts: u64,
    /// First and last raw timestamps of the current play, for the loop offset.
    raw_first: Option<u64>,
    raw_last: u64,
    pace_start: Option<Instant>,
    stats: FileStats,
}

impl FileSource {
    /// Opens `input` and reads its header. `loops` is how many times the
    /// capture is played (0 = forever).
    pub fn open(input: Input, pace: Pace, loops: u64) -> Result<Self, SourceError> {
        let reader = open_reader(&input)?;
        Ok(Self {
            input,
            reader: Some(reader),
            pace,
            loops_left: if loops == 0 { None } else { Some(loops - 1) },
            loop_offset_ns: 0,
            first_ts: None,
            last_ts: 0,
            raw_first: None,
            raw_last: 0,
            pace_start: None,
            stats: FileStats::default(),
        })
    }

    pub fn path(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        Self::open(Input::Path(path.as_ref().to_path_buf()), Pace::Fast, 1)
    }

    pub fn file_stats(&self) -> FileStats {
        self.stats
    }


    /// Moves to the next play of the capture, or reports the end.
    fn next_loop(&mut self) -> Result<bool, SourceError> {
        match &mut self.loops_left {
            Some(0) => return Ok(false),
            Some(n) => *n -= 1,
            None => {}
        }
        if let Some(first) = self.raw_first.take() {
            self.loop_offset_ns += self.raw_last.saturating_sub(first) + 1_000_000;
        }
        self.reader = Some(open_reader(&self.input)?);
        Ok(true)
    }
}

fn open_reader(input: &Input) -> Result<Reader, SourceError> {
    let err = |reason: String| SourceError::File { path: input.name(), reason };
    let mut r = input.open().map_err(|e| err(e.to_string()))?;
    // Peek at the magic number without consuming it.
    let head = loop {
        match r.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e.to_string())),
        }
    };
    if head.is_empty() {
        return Err(err("empty file, not a capture".into()));
    }
    if head.len() < 4 {
        return Err(err(format!("{} bytes long, too short to be a capture", head.len())));
    }
    let magic = [head[0], head[1], head[2], head[3]];
    let chained: Box<dyn Read + Send> = Box::new(r);
    let pcap_err = |e: PcapError<&[u8]>| err(format!("not a readable capture: {e:?}"));
    match u32::from_le_bytes(magic) {
        0x0a0d_0d0a => {
            let r = PcapNGReader::new(READ_BUFFER, chained).map_err(pcap_err)?;
            Ok(Reader::Ng { r, ifaces: Vec::new() })
        }
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
            let mut r = LegacyPcapReader::new(READ_BUFFER, chained).map_err(pcap_err)?;
            // The first block is always the file header.
            match r.next() {
                Ok((n, PcapBlockOwned::LegacyHeader(h))) => {
                    let link = LinkType::from_pcap(h.network.0 as u32);
                    let nanos = h.is_nanosecond_precision();
                    r.consume(n);
                    Ok(Reader::Legacy { r, link, nanos })
                }
                Ok(_) => Err(err("pcap header missing".into())),
                Err(e) => Err(err(format!("bad pcap header: {e:?}"))),
            }
        }
        m => Err(err(format!(
            "not a capture file: unknown magic number {:02x} {:02x} {:02x} {:02x} (expected pcap or pcapng)",
            m as u8,
            (m >> 8) as u8,
            (m >> 16) as u8,
            (m >> 24) as u8
        ))),
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
            // Read one block, hand a packet to `out`, then consume it. The
            // block borrows the reader, hence the step value carried out.
            let step = match reader {
                Reader::Legacy { r, link, nanos } => match r.next() {
                    Ok((n, PcapBlockOwned::Legacy(b))) => {
                        let frac = u64::from(b.ts_usec) * if *nanos { 1 } else { 1000 };
                        let ts = u64::from(b.ts_sec) * 1_000_000_000 + frac + self.loop_offset_ns;
                        let wait = pace_wait(&self.pace, &mut self.first_ts, &mut self.pace_start, ts);
                        if let Some(d) = wait {
                            Step::Wait(d)
                        } else {
                            let caplen = (b.caplen as usize).min(b.data.len());
                            out(Frame { data: &b.data[..caplen], wire_len: b.origlen, ts_ns: ts, link: *link });
                            r.consume(n);
                            Step::Frame(ts)
                        }
                    }
                    Ok((n, _)) => {
                        r.consume(n);
                        Step::Skip
                    }
                    Err(e) => Step::from_error(e),
                },
                Reader::Ng { r, ifaces } => match r.next() {
                    Ok((n, PcapBlockOwned::NG(block))) => match block {
                        Block::SectionHeader(_) => {
                            ifaces.clear();
                            r.consume(n);
                            Step::Skip
                        }
                        Block::InterfaceDescription(idb) => {
                            ifaces.push(Iface {
                                link: LinkType::from_pcap(u32::from(idb.linktype.0 as u16)),
                                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                                offset_s: idb.ts_offset(),
                            });
                            r.consume(n);
                            Step::Skip
                        }
                        Block::EnhancedPacket(epb) => match ifaces.get(epb.if_id as usize).copied() {
                            Some(iface) => {
                                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let ns = (u128::from(raw) * 1_000_000_000 / u128::from(iface.resolution.max(1))) as u64;
                                let ts = (ns as i128 + i128::from(iface.offset_s) * 1_000_000_000).max(0) as u64
                                    + self.loop_offset_ns;
                                let wait = pace_wait(&self.pace, &mut self.first_ts, &mut self.pace_start, ts);
                                if let Some(d) = wait {
                                    Step::Wait(d)
                                } else {
                                    let caplen = (epb.caplen as usize).min(epb.data.len());
                                    out(Frame {
                                        data: &epb.data[..caplen],
                                        wire_len: epb.origlen,
                                        ts_ns: ts,
                                        link: iface.link,
                                    });
                                    r.consume(n);
                                    Step::Frame(ts)
                                }
                            }
                            None => {
                                self.stats.unknown_interface += 1;
                                r.consume(n);
                                Step::Skip
                            }
                        },
                        Block::SimplePacket(spb) => match ifaces.first().copied() {
                            // No timestamp in a simple packet block: it
                            // takes the previous packet's time.
                            Some(iface) => {
                                let caplen = (spb.origlen as usize).min(spb.data.len());
                                out(Frame {
                                    data: &spb.data[..caplen],
                                    wire_len: spb.origlen,
                                    ts_ns: self.last_ts,
                                    link: iface.link,
                                });
                                r.consume(n);
                                Step::Frame(self.last_ts)
                            }
                            None => {
                                self.stats.unknown_interface += 1;
                                r.consume(n);
                                Step::Skip
                            }
                        },
                        _ => {
                            r.consume(n);
                            Step::Skip
                        }
                    },
                    Ok((n, _)) => {
                        r.consume(n);
                        Step::Skip
                    }
                    Err(e) => Step::from_error(e),
                },
            };
            match step {
                Step::Frame(ts) => {
                    self.last_ts = ts;
                    self.raw_first.get_or_insert(ts - self.loop_offset_ns);
                    self.raw_last = ts - self.loop_offset_ns;
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
                    };
                    if let Err(e) = refilled {
                        return Err(SourceError::File {
                            path: self.input.name(),
                            reason: format!("read failed: {e:?}"),
                        });
                    }
                }
                Step::End => self.reader = None,
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

fn pace_wait(pace: &Pace, first_ts: &mut Option<u64>, start: &mut Option<Instant>, ts: u64) -> Option<Duration> {
    let Pace::Recorded { speed } = *pace else { return None };
    let first = *first_ts.get_or_insert(ts);
    let start = *start.get_or_insert_with(Instant::now);
    let due = Duration::from_nanos((ts.saturating_sub(first) as f64 / speed.max(1e-6)) as u64);
    due.checked_sub(start.elapsed()).filter(|d| !d.is_zero())
}
