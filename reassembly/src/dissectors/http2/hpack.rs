//! HPACK (RFC 7541) decoding for a passive observer: the static table,
//! Huffman decoding and a dynamic table that knows what it does not know.
//!
//! Own code rather than a crate (`loona-hpack`, `hpack`): those decoders
//! stop a header block at the first index they cannot resolve, so the
//! entries later in that block are never inserted and every later index is
//! off by some amount: an observer that picked a connection up mid-way
//! would report wrong headers. They also assert (panic) on a size update
//! above an allowed maximum, pull in `tracing`, and (`loona-hpack`) build a
//! Huffman hash map for every string. Here the dynamic table holds, newest
//! first, the entries seen being inserted, each either known or of unknown
//! content (inserted with a name that referred to unknown state), and a
//! flag saying whether older entries exist that were never seen. An index
//! that lands on unknown content makes that one field unknown: it is left
//! out and counted, never guessed, and decoding goes on so that the block's
//! own insertions keep the table aligned. A size update to 0 empties the
//! peer's table too, so after it everything is known again.
//!
//! Invariant: every entry this table holds at index `i` is the entry the
//! peer's decoder holds at `i`, or is marked unknown; the table may hold
//! entries the peer already evicted (our sizes of unknown entries are lower
//! bounds), which the peer never refers to.

use std::collections::VecDeque;
use std::sync::OnceLock;

use crate::dissectors::ErrorKind;

/// RFC 7541 Appendix A.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// RFC 7541 Appendix B: (code, bit length) of symbols 0..=256 (256 = EOS).
const HUFFMAN: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

/// The Huffman code is canonical: the codes of one length are consecutive
/// and in symbol order, so decoding needs, per length, the first code and
/// where its symbols start.
struct Canonical {
    /// Per bit length 0..=30: (first code, number of codes, index into `symbols`).
    lens: [(u32, u32, usize); 31],
    symbols: Vec<u16>,
}

fn canonical() -> &'static Canonical {
    static C: OnceLock<Canonical> = OnceLock::new();
    C.get_or_init(|| {
        let mut order: Vec<u16> = (0..257u16).collect();
        order.sort_by_key(|s| {
            let (code, len) = HUFFMAN.get(usize::from(*s)).copied().unwrap_or((0, 0));
            (len, code)
        });
        let mut lens = [(0u32, 0u32, 0usize); 31];
        for (i, s) in order.iter().enumerate() {
            let (code, len) = HUFFMAN.get(usize::from(*s)).copied().unwrap_or((0, 0));
            if let Some(l) = lens.get_mut(usize::from(len)) {
                if l.1 == 0 {
                    *l = (code, 0, i);
                }
                l.1 += 1;
            }
        }
        Canonical { lens, symbols: order }
    })
}

/// Decodes a Huffman-coded string (RFC 7541 §5.2).
pub fn huffman_decode(data: &[u8], out: &mut Vec<u8>) -> Result<(), ErrorKind> {
    let c = canonical();
    let (mut code, mut len) = (0u32, 0usize);
    for byte in data {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            let Some(&(first, count, base)) = c.lens.get(len) else {
                return Err(ErrorKind::HpackDecode);
            };
            if count > 0 && code >= first && code - first < count {
                match c.symbols.get(base + (code - first) as usize) {
                    Some(256) | None => return Err(ErrorKind::HpackDecode),
                    Some(&s) => out.push(s as u8),
                }
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len >= 8 || code != (1u32 << len) - 1 {
        return Err(ErrorKind::HpackDecode);
    }
    Ok(())
}

/// An integer with an `n`-bit prefix (RFC 7541 §5.1): (value, bytes used).
pub fn integer(b: &[u8], n: u32) -> Result<(usize, usize), ErrorKind> {
    let first = *b.first().ok_or(ErrorKind::HpackDecode)?;
    let max = (1usize << n) - 1;
    let mut v = usize::from(first) & max;
    if v < max {
        return Ok((v, 1));
    }
    let mut shift = 0u32;
    for (i, byte) in b.iter().enumerate().skip(1) {
        // Four continuation bytes reach 2^28: beyond any sane length.
        if shift > 21 {
            return Err(ErrorKind::HpackDecode);
        }
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(ErrorKind::HpackDecode)
}

/// A string literal (RFC 7541 §5.2): appended to `out`; returns bytes used.
fn string(b: &[u8], out: &mut Vec<u8>) -> Result<usize, ErrorKind> {
    let huff = b.first().is_some_and(|x| x & 0x80 != 0);
    let (len, used) = integer(b, 7)?;
    let raw = b
        .get(used..used.checked_add(len).ok_or(ErrorKind::HpackDecode)?)
        .ok_or(ErrorKind::HpackDecode)?;
    if huff {
        huffman_decode(raw, out)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok(used + len)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Known {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    /// Inserted with a name that referred to unknown state; `size` is a
    /// lower bound of the peer's size for it.
    Unknown {
        size: usize,
    },
}

impl Entry {
    fn size(&self) -> usize {
        match self {
            Entry::Known { name, value } => 32 + name.len() + value.len(),
            Entry::Unknown { size } => *size,
        }
    }
}

/// A field's name and value as a table holds them.
type NameValue<'a> = (&'a [u8], &'a [u8]);

/// One decoded header block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Fields in order, as kept (see `decode`).
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Fields that referred to state never seen, left out.
    pub unknown: u32,
    /// Fields decoded but not kept (past the field or byte bound).
    pub dropped: u32,
}

/// The decoder of one direction of a connection.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first: `entries[0]` is index 62.
    entries: VecDeque<Entry>,
    /// The peer's table size by RFC 7541's accounting (exact for known
    /// entries, a lower bound for unknown ones).
    size: usize,
    /// Bytes of the known entries (their RFC sizes), bounded by `cap`.
    known: usize,
    /// The table size the peer's encoder uses (its last size update).
    max_size: usize,
    /// Whether `max_size` is known (seen from the start, or updated since).
    max_known: bool,
    /// Known-entry bytes kept at most (`max_hpack_table_bytes`); past it
    /// the oldest known entries keep their place but forget their content.
    cap: usize,
    /// Older entries exist in the peer's table that this one does not have.
    tail_unknown: bool,
}

impl Decoder {
    /// A decoder for a connection seen from its start (`known`), or picked
    /// up mid-way (its table holds entries never seen).
    pub fn new(cap: usize, known: bool) -> Decoder {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            known: 0,
            max_size: 4096,
            max_known: known,
            cap,
            tail_unknown: !known,
        }
    }

    /// Forgets the table after a block that could not be decoded or was
    /// lost: how many entries it inserted is unknown.
    pub fn lose(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.known = 0;
        self.tail_unknown = true;
    }

    /// Whether every entry of the peer's table is known here.
    pub fn complete(&self) -> bool {
        !self.tail_unknown && self.entries.iter().all(|e| matches!(e, Entry::Known { .. }))
    }

    fn pop_oldest(&mut self) {
        if let Some(e) = self.entries.pop_back() {
            self.size -= e.size();
            if matches!(e, Entry::Known { .. }) {
                self.known -= e.size();
            }
        }
    }

    /// Evicts as the peer does to get under `limit`.
    fn evict_to(&mut self, limit: usize) {
        while self.size > limit && !self.entries.is_empty() {
            self.pop_oldest();
        }
        if self.size > limit {
            self.size = 0;
        }
    }

    fn insert(&mut self, e: Entry) {
        let s = e.size();
        if s > self.max_size {
            // An entry larger than the table empties it (RFC 7541 §4.4),
            // on the peer's side as well: nothing unknown remains.
            self.entries.clear();
            self.size = 0;
            self.known = 0;
            if self.max_known {
                self.tail_unknown = false;
            }
            return;
        }
        self.evict_to(self.max_size - s);
        if matches!(e, Entry::Known { .. }) {
            self.known += s;
        }
        self.size += s;
        self.entries.push_front(e);
        // Memory bound: the oldest known entries forget their content but
        // keep their place, so later indexes stay aligned.
        let mut i = self.entries.len();
        while self.known > self.cap && i > 0 {
            i -= 1;
            if let Some(old) = self.entries.get_mut(i) {
                if matches!(old, Entry::Known { .. }) {
                    let size = old.size();
                    *old = Entry::Unknown { size };
                    self.known -= size;
                }
            }
        }
        // And on their number (each costs a slot even when unknown).
        while self.entries.len() > self.cap / 32 + 1 {
            self.pop_oldest();
            self.tail_unknown = true;
        }
    }

    /// Name and value at `index` (1-based over static then dynamic):
    /// `Ok(None)` when the entry is unknown.
    fn get(&self, index: usize) -> Result<Option<NameValue<'_>>, ErrorKind> {
        if index == 0 {
            return Err(ErrorKind::HpackDecode);
        }
        if let Some((n, v)) = STATIC_TABLE.get(index - 1) {
            return Ok(Some((n.as_bytes(), v.as_bytes())));
        }
        match self.entries.get(index - 62) {
            Some(Entry::Known { name, value }) => Ok(Some((name, value))),
            Some(Entry::Unknown { .. }) => Ok(None),
            None if self.tail_unknown => Ok(None),
            None => Err(ErrorKind::HpackDecode),
        }
    }

    /// Decodes one header block, keeping at most `max_fields` fields and
    /// `max_bytes` of names and values (the rest is decoded, for the
    /// table's sake, and counted in `dropped`). On error the table is lost.
    pub fn decode(
        &mut self,
        b: &[u8],
        max_fields: usize,
        max_bytes: usize,
    ) -> Result<Block, ErrorKind> {
        let r = self.decode_inner(b, max_fields, max_bytes);
        if r.is_err() {
            self.lose();
        }
        r
    }

    fn decode_inner(
        &mut self,
        b: &[u8],
        max_fields: usize,
        max_bytes: usize,
    ) -> Result<Block, ErrorKind> {
        let mut block = Block::default();
        let mut kept_bytes = 0usize;
        let mut pos = 0usize;
        let mut keep = |block: &mut Block, name: &[u8], value: &[u8]| {
            if block.fields.len() < max_fields && kept_bytes + name.len() + value.len() <= max_bytes
            {
                kept_bytes += name.len() + value.len();
                block.fields.push((name.to_vec(), value.to_vec()));
            } else {
                block.dropped += 1;
            }
        };
        while let Some(&first) = b.get(pos) {
            let rest = b.get(pos..).unwrap_or_default();
            if first & 0x80 != 0 {
                let (index, used) = integer(rest, 7)?;
                pos += used;
                match self.get(index)? {
                    Some((n, v)) => {
                        let (n, v) = (n.to_vec(), v.to_vec());
                        keep(&mut block, &n, &v);
                    }
                    None => block.unknown += 1,
                }
                continue;
            }
            if first & 0xe0 == 0x20 {
                let (size, used) = integer(rest, 5)?;
                pos += used;
                self.max_size = size;
                self.max_known = true;
                if size == 0 {
                    // The peer's table is empty now: nothing is unknown.
                    self.entries.clear();
                    self.size = 0;
                    self.tail_unknown = false;
                }
                self.evict_to(size);
                continue;
            }
            let (indexing, prefix) = if first & 0xc0 == 0x40 { (true, 6) } else { (false, 4) };
            let (index, used) = integer(rest, prefix)?;
            pos += used;
            let mut name = Vec::new();
            let name_known = if index == 0 {
                pos += string(b.get(pos..).unwrap_or_default(), &mut name)?;
                true
            } else {
                match self.get(index)? {
                    Some((n, _)) => {
                        name.extend_from_slice(n);
                        true
                    }
                    None => false,
                }
            };
            let mut value = Vec::new();
            pos += string(b.get(pos..).unwrap_or_default(), &mut value)?;
            if name_known {
                keep(&mut block, &name, &value);
            } else {
                block.unknown += 1;
            }
            if indexing {
                let e = if name_known {
                    Entry::Known { name, value }
                } else {
                    Entry::Unknown { size: 32 + value.len() }
                };
                self.insert(e);
            }
        }
        Ok(block)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn fields(b: &Block) -> Vec<(String, String)> {
        b.fields
            .iter()
            .map(|(n, v)| {
                (String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned())
            })
            .collect()
    }

    /// A literal field with incremental indexing and a new name (no Huffman).
    pub fn literal(name: &str, value: &str) -> Vec<u8> {
        let mut v = vec![0x40, name.len() as u8];
        v.extend_from_slice(name.as_bytes());
        v.push(value.len() as u8);
        v.extend_from_slice(value.as_bytes());
        v
    }

    #[test]
    fn integers_and_huffman() {
        assert_eq!(integer(&[10], 5), Ok((10, 1)));
        assert_eq!(integer(&[31, 154, 10], 5), Ok((1337, 3)));
        assert_eq!(integer(&[31, 154], 5), Err(ErrorKind::HpackDecode));
        assert_eq!(integer(&[31, 0xff, 0xff, 0xff, 0xff, 0x0f], 5), Err(ErrorKind::HpackDecode));
        let mut out = Vec::new();
        huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        out.clear();
        huffman_decode(&hex("a8eb 1064 9cbf"), &mut out).unwrap();
        assert_eq!(out, b"no-cache");
        // Padding of 8 bits, or padding that is not all ones, is an error.
        assert!(huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff ff"), &mut Vec::new()).is_err());
        assert!(huffman_decode(&[0x00], &mut Vec::new()).is_err());
        // Every symbol round-trips through its code.
        for (sym, (code, len)) in HUFFMAN.iter().enumerate().take(256) {
            let bits = (u64::from(*code) << (64 - len)) | ((1u64 << (64 - len)) - 1);
            let nbytes = usize::from(*len).div_ceil(8);
            let bytes: Vec<u8> = (0..nbytes).map(|i| (bits >> (56 - 8 * i)) as u8).collect();
            let mut out = Vec::new();
            huffman_decode(&bytes, &mut out).unwrap();
            assert_eq!(out, vec![sym as u8]);
        }
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(4096, true);
        let b = d.decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 64, 1 << 16).unwrap();
        assert_eq!(fields(&b)[3], (":authority".into(), "www.example.com".into()));
        let b = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"), 64, 1 << 16).unwrap();
        assert_eq!(
            fields(&b)[3..],
            [
                (":authority".to_string(), "www.example.com".to_string()),
                ("cache-control".into(), "no-cache".into())
            ]
        );
        let b = d
            .decode(
                &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
                64,
                1 << 16,
            )
            .unwrap();
        assert_eq!(
            fields(&b)[2..],
            [
                (":path".to_string(), "/index.html".to_string()),
                (":authority".into(), "www.example.com".into()),
                ("custom-key".into(), "custom-value".into()),
            ]
        );
        assert_eq!(d.size, 164);
        assert!(d.complete());
    }

    #[test]
    fn rfc7541_c5_responses_with_eviction() {
        let mut d = Decoder::new(4096, true);
        // The encoder uses a 256-byte table.
        d.decode(&hex("3fe1 01"), 64, 1 << 16).unwrap();
        let r1 = hex("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
        d.decode(&r1, 64, 1 << 16).unwrap();
        assert_eq!(d.size, 222);
        let b = d.decode(&hex("4803 3330 37c1 c0bf"), 64, 1 << 16).unwrap();
        assert_eq!(fields(&b)[0], (":status".into(), "307".into()));
        assert_eq!(fields(&b)[3].0, "location");
        assert_eq!(d.size, 222);
        assert!(d.complete());
    }

    #[test]
    fn mid_stream_never_guesses() {
        let mut d = Decoder::new(4096, false);
        // Indexed 62 and a literal whose name is dynamic 63: both unknown;
        // the literal is still inserted (unknown content) so that the next
        // new entry lands at the right index.
        let mut blk = vec![0x82, 0xbe, 0x7f, 0x00, 0x01, b'x'];
        blk.extend(literal("a", "1"));
        let b = d.decode(&blk, 64, 1 << 16).unwrap();
        assert_eq!(
            (fields(&b), b.unknown),
            (vec![(":method".into(), "GET".into()), ("a".into(), "1".into())], 2)
        );
        // 62 = a:1 (known), 63 = the unknown-name entry, 64 = never seen.
        let b = d.decode(&[0xbe, 0xbf, 0xc0], 64, 1 << 16).unwrap();
        assert_eq!((fields(&b), b.unknown), (vec![("a".into(), "1".into())], 2));
        assert!(!d.complete());
        // A size update to 0 empties both tables: all known again.
        d.decode(&[0x20, 0x3f, 0xe1, 0x1f], 64, 1 << 16).unwrap();
        assert!(d.complete());
        assert_eq!(d.decode(&[0xbe], 64, 1 << 16), Err(ErrorKind::HpackDecode));
    }

    #[test]
    fn cap_and_bounds() {
        // A 100-byte cap under a 4096 table: evicted entries become unknown.
        let mut d = Decoder::new(100, true);
        let mut blk = literal("k1", "v1");
        blk.extend(literal("k2", "v2"));
        blk.extend(literal("k3", "v3"));
        d.decode(&blk, 64, 1 << 16).unwrap();
        let b = d.decode(&[0xbe, 0xc0], 64, 1 << 16).unwrap();
        assert_eq!((fields(&b), b.unknown), (vec![("k3".into(), "v3".into())], 1));
        // Bounds on kept fields; decoding (and insertion) goes on.
        let mut d = Decoder::new(4096, true);
        let b = d.decode(&blk, 2, 1 << 16).unwrap();
        assert_eq!((b.fields.len(), b.dropped), (2, 1));
        let b = d.decode(&[0xbe], 64, 1 << 16).unwrap();
        assert_eq!(fields(&b), vec![("k3".into(), "v3".into())]);
        for bad in [
            &[0x80][..],
            &[0x40, 0x05, b'a'],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x41, 0x81, 0x00],
        ] {
            assert!(Decoder::new(4096, true).decode(bad, 64, 1 << 16).is_err(), "{bad:?}");
        }
    }
}
