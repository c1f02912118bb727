//! Pure MySQL client/server protocol parsing over byte slices: packet
//! headers, length-encoded values, the handshake (greeting, login, SSL
//! request), OK/ERR/EOF packets, query attributes and the binary values
//! they carry, and the probe. Every reader takes a possibly cut payload
//! (a large packet is parsed from its prefix) and returns what it could
//! read, never panicking on short input. Written by hand: the MySQL crates
//! (`mysql_common`) parse whole, well-formed packets of a connection whose
//! state they drive; a monitor needs prefixes of packets it only watches.

use crate::dissectors::Confidence;

/// Bytes of a packet header: a 3-byte little-endian payload length and a
/// sequence id.
pub const HEADER: usize = 4;
/// A payload of this length continues in the next packet.
pub const MAX_PAYLOAD: usize = 0xff_ffff;
/// Bytes of a compressed-protocol header: compressed length (3), sequence
/// id, uncompressed length (3).
pub const COMPRESSED_HEADER: usize = 7;

/// Capability flags (`CLIENT_*`); MariaDB's extended ones are the upper 32
/// bits of the 64-bit value kept here.
pub mod cap {
    pub const CONNECT_WITH_DB: u64 = 1 << 3;
    pub const COMPRESS: u64 = 1 << 5;
    pub const PROTOCOL_41: u64 = 1 << 9;
    pub const SSL: u64 = 1 << 11;
    pub const TRANSACTIONS: u64 = 1 << 13;
    pub const SECURE_CONNECTION: u64 = 1 << 15;
    pub const PLUGIN_AUTH: u64 = 1 << 19;
    pub const CONNECT_ATTRS: u64 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u64 = 1 << 21;
    pub const SESSION_TRACK: u64 = 1 << 23;
    pub const DEPRECATE_EOF: u64 = 1 << 24;
    pub const OPTIONAL_RESULTSET_METADATA: u64 = 1 << 25;
    pub const ZSTD_COMPRESSION: u64 = 1 << 26;
    pub const QUERY_ATTRIBUTES: u64 = 1 << 27;
    /// MariaDB: a binary result set may leave out column definitions the
    /// client cached (a `metadata follows` byte after the column count).
    pub const MARIADB_CACHE_METADATA: u64 = 1 << 36;
}

/// Server status flags of OK and EOF packets.
pub mod status {
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const SESSION_STATE_CHANGED: u16 = 0x4000;
}

/// Command bytes a client sends with sequence id 0.
pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_INFO: u8 = 0x0a;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const BINLOG_DUMP: u8 = 0x12;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const BINLOG_DUMP_GTID: u8 = 0x1e;
}

/// Zeek's names of the command bytes (its `mysql.log` `cmd`), `None` for a
/// byte no server knows.
pub fn command_name(c: u8) -> Option<&'static str> {
    const NAMES: [&str; 0x21] = [
        "sleep",
        "quit",
        "init_db",
        "query",
        "field_list",
        "create_db",
        "drop_db",
        "refresh",
        "shutdown",
        "statistics",
        "process_info",
        "connect",
        "process_kill",
        "debug",
        "ping",
        "time",
        "delayed_insert",
        "change_user",
        "binlog_dump",
        "table_dump",
        "connect_out",
        "register_slave",
        "stmt_prepare",
        "stmt_execute",
        "stmt_send_long_data",
        "stmt_close",
        "stmt_reset",
        "set_option",
        "stmt_fetch",
        "daemon",
        "binlog_dump_gtid",
        "reset_connection",
        "clone",
    ];
    NAMES.get(usize::from(c)).copied()
}

/// `(payload length, sequence id)` of the packet `b` starts with.
pub fn header(b: &[u8]) -> Option<(usize, u8)> {
    let h = b.get(..HEADER)?;
    Some((usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16, h[3]))
}

pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    let x = b.get(at..at + 2)?;
    Some(u16::from_le_bytes([x[0], x[1]]))
}

pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    let x = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// A cursor over a payload; every read is checked and `None` past the end.
#[derive(Debug, Clone, Copy)]
pub struct Rd<'a> {
    b: &'a [u8],
    pub at: usize,
}

impl<'a> Rd<'a> {
    pub fn new(b: &'a [u8], at: usize) -> Self {
        Rd { b, at }
    }

    pub fn left(&self) -> usize {
        self.b.len().saturating_sub(self.at)
    }

    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(v)
    }

    pub fn int(&mut self, n: usize) -> Option<u64> {
        let v = self.bytes(n)?;
        Some(v.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    }

    /// A length-encoded integer; `Some(None)` for the NULL marker `0xfb`.
    pub fn lenenc(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0xfb => Some(None),
            0xfc => self.int(2).map(Some),
            0xfd => self.int(3).map(Some),
            0xfe => self.int(8).map(Some),
            // 0xff starts an ERR packet, never an integer.
            0xff => None,
            x => Some(Some(u64::from(x))),
        }
    }

    /// A length-encoded string (`None` for NULL or a cut one).
    pub fn lenenc_str(&mut self) -> Option<&'a [u8]> {
        let n = self.lenenc()??;
        self.bytes(usize::try_from(n).ok()?)
    }

    /// A NUL-terminated string.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..)?;
        let n = rest.iter().position(|c| *c == 0)?;
        self.at += n + 1;
        rest.get(..n)
    }

    /// The rest of the payload.
    pub fn rest(&mut self) -> &'a [u8] {
        let v = self.b.get(self.at..).unwrap_or_default();
        self.at = self.b.len();
        v
    }
}

/// The server's first packet (HandshakeV10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Greeting {
    pub server_version: Vec<u8>,
    pub connection_id: u32,
    pub capabilities: u64,
    pub auth_plugin: Option<Vec<u8>>,
}

/// A protocol-10 greeting (`None` if `p` is not one).
pub fn greeting(p: &[u8]) -> Option<Greeting> {
    let mut r = Rd::new(p, 0);
    if r.u8()? != 10 {
        return None;
    }
    let server_version = r.cstr()?.to_vec();
    let connection_id = r.int(4)? as u32;
    r.bytes(8)?; // auth-plugin-data part 1
    r.u8()?; // filler
    let mut caps = r.int(2)?;
    let mut auth_plugin = None;
    if r.left() >= 16 {
        r.u8()?; // character set
        r.bytes(2)?; // status flags
        caps |= r.int(2)? << 16;
        let data_len = usize::from(r.u8()?);
        r.bytes(6)?;
        // MariaDB puts its extended capabilities in the last four reserved
        // bytes, and says so by clearing CLIENT_MYSQL (bit 0).
        let ext = r.int(4)?;
        if caps & 1 == 0 {
            caps |= ext << 32;
        }
        if caps & cap::SECURE_CONNECTION != 0 {
            r.bytes(data_len.saturating_sub(8).max(13))?;
        }
        if caps & cap::PLUGIN_AUTH != 0 {
            let rest = r.rest();
            let end = rest.iter().position(|c| *c == 0).unwrap_or(rest.len());
            auth_plugin = Some(rest.get(..end).unwrap_or_default().to_vec());
        }
    }
    Some(Greeting { server_version, connection_id, capabilities: caps, auth_plugin })
}

/// A client's HandshakeResponse (or the SSLRequest that precedes TLS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Login {
    pub capabilities: u64,
    pub user: Option<Vec<u8>>,
    pub database: Option<Vec<u8>>,
    pub auth_plugin: Option<Vec<u8>>,
    pub attributes: Vec<(Vec<u8>, Vec<u8>)>,
    /// An SSLRequest: TLS starts after it.
    pub ssl_request: bool,
}

/// Connection attributes kept per login: a client sends about ten
/// (`_client_name`, `_pid` …); this is a protocol bound, not a tunable.
pub const MAX_ATTRIBUTES: usize = 64;

/// The client's login packet; `server_caps` (0 when the greeting was not
/// seen) only decides between the 4.1 and 3.20 layouts when the client's
/// own flags cannot.
pub fn login(p: &[u8], keep: usize) -> Option<Login> {
    let cut = |v: &[u8]| v.get(..keep.min(v.len())).unwrap_or_default().to_vec();
    let mut r = Rd::new(p, 0);
    let low = r.int(2)?;
    if low & cap::PROTOCOL_41 == 0 {
        // HandshakeResponse320: 2 bytes of flags, 3 of max packet size.
        r.bytes(3)?;
        let user = r.cstr().map(cut);
        return Some(Login { capabilities: low, user, ..Login::default() });
    }
    let caps = low | r.int(2)? << 16;
    r.bytes(4)?; // max packet size
    r.u8()?; // character set
    let filler = r.bytes(23)?;
    // MariaDB's extended client capabilities sit in the filler's last 4.
    let ext =
        filler.get(19..23).map_or(0, |x| u64::from(u32::from_le_bytes([x[0], x[1], x[2], x[3]])));
    let caps = if caps & 1 == 0 { caps | ext << 32 } else { caps };
    if r.left() == 0 {
        return Some(Login {
            capabilities: caps,
            ssl_request: caps & cap::SSL != 0,
            ..Login::default()
        });
    }
    let mut l = Login { capabilities: caps, ..Login::default() };
    l.user = r.cstr().map(cut);
    let auth = if caps & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_str()
    } else if caps & cap::SECURE_CONNECTION != 0 {
        r.u8().and_then(|n| r.bytes(usize::from(n)))
    } else {
        r.cstr()
    };
    auth?;
    if caps & cap::CONNECT_WITH_DB != 0 {
        l.database = r.cstr().map(cut);
    }
    if caps & cap::PLUGIN_AUTH != 0 {
        l.auth_plugin = r.cstr().map(cut);
    }
    if caps & cap::CONNECT_ATTRS != 0 {
        l.attributes = attributes(&mut r, keep);
    }
    Some(l)
}

/// Key/value connection attributes (a length-encoded block of pairs).
fn attributes(r: &mut Rd<'_>, keep: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cut = |v: &[u8]| v.get(..keep.min(v.len())).unwrap_or_default().to_vec();
    let Some(Some(total)) = r.lenenc() else { return Vec::new() };
    let block = r.bytes((total as usize).min(r.left())).unwrap_or_default();
    let mut b = Rd::new(block, 0);
    let mut out = Vec::new();
    while b.left() > 0 && out.len() < MAX_ATTRIBUTES {
        let (Some(k), Some(v)) = (b.lenenc_str(), b.lenenc_str()) else { break };
        out.push((cut(k), cut(v)));
    }
    out
}

/// A COM_CHANGE_USER payload (after the command byte): user, auth data,
/// database, then (4.1) character set, plugin and attributes.
pub fn change_user(p: &[u8], caps: u64, keep: usize) -> Login {
    let cut = |v: &[u8]| v.get(..keep.min(v.len())).unwrap_or_default().to_vec();
    let mut r = Rd::new(p, 0);
    let mut l = Login { capabilities: caps, ..Login::default() };
    l.user = r.cstr().map(cut);
    let auth = if caps & cap::SECURE_CONNECTION != 0 {
        r.u8().and_then(|n| r.bytes(usize::from(n)))
    } else {
        r.cstr()
    };
    if auth.is_none() {
        return l;
    }
    l.database = r.cstr().map(cut).filter(|d| !d.is_empty());
    if r.left() >= 2 {
        r.bytes(2);
        if caps & cap::PLUGIN_AUTH != 0 {
            l.auth_plugin = r.cstr().map(cut);
        }
        if caps & cap::CONNECT_ATTRS != 0 {
            l.attributes = attributes(&mut r, keep);
        }
    }
    l
}

/// An OK packet's fields (also the OK that ends rows under DEPRECATE_EOF).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ok {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Vec<u8>,
}

/// An OK packet (first byte `0x00` or `0xfe`), read with the
/// connection's capabilities.
pub fn ok(p: &[u8], caps: u64, keep: usize) -> Option<Ok> {
    let mut r = Rd::new(p, 1);
    let mut o = Ok { affected_rows: r.lenenc()??, last_insert_id: r.lenenc()??, ..Ok::default() };
    if caps & cap::PROTOCOL_41 != 0 || caps == 0 {
        o.status = r.int(2).unwrap_or(0) as u16;
        o.warnings = r.int(2).unwrap_or(0) as u16;
    } else if caps & cap::TRANSACTIONS != 0 {
        o.status = r.int(2).unwrap_or(0) as u16;
    }
    let info = if caps & cap::SESSION_TRACK != 0 { r.lenenc_str() } else { Some(r.rest()) };
    o.info =
        info.map(|v| v.get(..keep.min(v.len())).unwrap_or_default().to_vec()).unwrap_or_default();
    Some(o)
}

/// An EOF packet's `(warnings, status)` (4.1; zeros before it).
pub fn eof(p: &[u8]) -> (u16, u16) {
    (le16(p, 1).unwrap_or(0), le16(p, 3).unwrap_or(0))
}

/// An ERR packet's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Err {
    pub code: u16,
    pub sql_state: Vec<u8>,
    pub message: Vec<u8>,
}

/// An ERR packet (first byte `0xff`). The SQL state marker `#` is read
/// when present: a greeting refused before capabilities are known has none.
pub fn err(p: &[u8], keep: usize) -> Option<Err> {
    let code = le16(p, 1)?;
    let mut r = Rd::new(p, 3);
    let mut e = Err { code, ..Err::default() };
    if p.get(3) == Some(&b'#') {
        r.u8();
        e.sql_state = r.bytes(5).unwrap_or_default().to_vec();
    }
    let m = r.rest();
    e.message = m.get(..keep.min(m.len())).unwrap_or_default().to_vec();
    Some(e)
}

/// Whether a server packet ends a row list: an EOF packet, or under
/// DEPRECATE_EOF the OK packet with header `0xfe` (a row can start with
/// `0xfe` only as the prefix of a string of 2^24 bytes or more, so its
/// packet is full-sized).
pub fn ends_rows(p: &[u8], deprecate_eof: bool) -> bool {
    p.first() == Some(&0xfe) && if deprecate_eof { p.len() < MAX_PAYLOAD } else { p.len() < 9 }
}

/// Binary-protocol field types (`MYSQL_TYPE_*`) by the bytes their values take.
fn binary_value_len(ty: u8, r: &mut Rd<'_>) -> Option<usize> {
    Some(match ty {
        0x06 => 0,                                         // NULL
        0x01 => 1,                                         // TINY
        0x02 | 0x0d => 2,                                  // SHORT, YEAR
        0x03 | 0x09 | 0x04 => 4,                           // LONG, INT24, FLOAT
        0x05 | 0x08 => 8,                                  // DOUBLE, LONGLONG
        0x07 | 0x0a | 0x0b | 0x0c => usize::from(r.u8()?), // TIMESTAMP, DATE, TIME, DATETIME
        _ => {
            // Strings, decimals, blobs, JSON, BIT, ENUM, SET, GEOMETRY.
            let n = r.lenenc()??;
            usize::try_from(n).ok()?
        }
    })
}

/// A binary-protocol value as text (numbers decoded, strings as sent,
/// temporal values as their raw bytes in hex).
fn binary_value_text(ty: u8, unsigned: bool, v: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| v.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x));
    let signed = |v: &[u8], bits: u32| {
        let x = int(v);
        let shift = 64 - bits;
        ((x << shift) as i64) >> shift
    };
    match ty {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 | 0x0d => {
            let bits = (v.len() * 8) as u32;
            if unsigned || bits == 0 {
                int(v).to_string().into_bytes()
            } else {
                signed(v, bits).to_string().into_bytes()
            }
        }
        0x04 if v.len() == 4 => {
            f32::from_le_bytes([v[0], v[1], v[2], v[3]]).to_string().into_bytes()
        }
        0x05 if v.len() == 8 => {
            f64::from_le_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])
                .to_string()
                .into_bytes()
        }
        0x07 | 0x0a | 0x0b | 0x0c => {
            v.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes()
        }
        _ => v.to_vec(),
    }
}

/// `(name, value)` pairs: connection and query attributes.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Query attributes kept per query: a protocol-side bound (clients send a
/// handful: trace ids, tags), not a tunable.
pub const MAX_QUERY_ATTRIBUTES: usize = 32;

/// A COM_QUERY payload (after the command byte): its attributes when the
/// connection sends them (`attrs`; `None`: not known, decided from the
/// bytes), then the query text.
pub fn query(p: &[u8], attrs: Option<bool>, keep: usize) -> (Pairs, &[u8]) {
    // Without the handshake: SQL text starts with a printable byte or
    // whitespace; attributes start with a small count and a set count of 1.
    let has = attrs.unwrap_or_else(|| p.first().is_some_and(|&c| c < 0x09) && p.get(1) == Some(&1));
    if !has {
        return (Vec::new(), p);
    }
    match query_attributes(p, keep) {
        Some((a, at)) => (a, p.get(at..).unwrap_or_default()),
        None => (Vec::new(), p),
    }
}

/// Query attributes: `(name, value)` pairs and where the query starts.
fn query_attributes(p: &[u8], keep: usize) -> Option<(Pairs, usize)> {
    let cut = |v: &[u8]| v.get(..keep.min(v.len())).unwrap_or_default().to_vec();
    let mut r = Rd::new(p, 0);
    let count = usize::try_from(r.lenenc()??).ok()?;
    let _sets = r.lenenc()??;
    if count == 0 {
        return Some((Vec::new(), r.at));
    }
    // More parameters than bytes left cannot be: a lie, not a query.
    if count > r.left() {
        return None;
    }
    let nulls = r.bytes(count.div_ceil(8))?;
    if r.u8()? != 1 {
        // No types sent (a reused binding): the values cannot be walked.
        return None;
    }
    let mut types = Vec::with_capacity(count.min(MAX_QUERY_ATTRIBUTES));
    let mut names = Vec::new();
    for _ in 0..count {
        let ty = r.u8()?;
        let flags = r.u8()?;
        let name = r.lenenc_str()?;
        if types.len() < MAX_QUERY_ATTRIBUTES {
            types.push((ty, flags & 0x80 != 0));
            names.push(cut(name));
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for i in 0..count {
        let null = nulls.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
        if null {
            if let Some(n) = names.get(i) {
                out.push((n.clone(), b"NULL".to_vec()));
            }
            continue;
        }
        let (ty, unsigned) = types.get(i).copied().unwrap_or((0xfe, false));
        let len = binary_value_len(ty, &mut r)?;
        let v = r.bytes(len)?;
        if let Some(n) = names.get(i) {
            out.push((n.clone(), cut(&binary_value_text(ty, unsigned, v))));
        }
    }
    Some((out, r.at))
}

/// Content-based detection of MySQL from the first packet of a direction:
/// a protocol-10 greeting (or an ERR refusing the connection) from the
/// server; from the client, a command with sequence id 0 whose length is
/// exactly what the segment holds.
pub fn probe(b: &[u8], to_server: bool) -> Confidence {
    let Some((len, seq)) = header(b) else { return Confidence::None };
    let p = b.get(HEADER..).unwrap_or_default();
    if len == 0 || len > MAX_PAYLOAD {
        return Confidence::None;
    }
    if !to_server {
        if seq != 0 {
            return Confidence::None;
        }
        return match p.first() {
            // The version string (printable, NUL-terminated) is enough:
            // a greeting cut into small segments is found from its start.
            Some(10) => {
                let Some(end) = p.iter().position(|c| *c == 0) else { return Confidence::None };
                let version = p.get(1..end).unwrap_or_default();
                if (30..=1024).contains(&len)
                    && !version.is_empty()
                    && version.iter().all(|c| (0x20..0x7f).contains(c))
                {
                    Confidence::High
                } else {
                    Confidence::None
                }
            }
            // ERR 1040 "Too many connections", 1129/1130 "Host … blocked/not allowed".
            Some(0xff) if p.len() == len && len > 3 => match le16(p, 1) {
                Some(1040 | 1129 | 1130 | 1152 | 1158..=1161) => Confidence::Medium,
                _ => Confidence::None,
            },
            _ => Confidence::None,
        };
    }
    if seq != 0 || p.len() != len {
        return Confidence::None;
    }
    let text = |t: &[u8]| {
        !t.is_empty() && t.iter().all(|&c| c >= 0x20 || c == b'\n' || c == b'\r' || c == b'\t')
    };
    match p.first().copied() {
        Some(com::QUERY) => {
            let (_, q) = query(p.get(1..).unwrap_or_default(), None, 64);
            let head: Vec<u8> = q.iter().take(8).map(u8::to_ascii_uppercase).collect();
            const VERBS: [&[u8]; 10] = [
                b"SELECT", b"INSERT", b"UPDATE", b"DELETE", b"SET ", b"SHOW", b"BEGIN", b"COMMIT",
                b"CALL", b"USE ",
            ];
            if text(q) && VERBS.iter().any(|v| head.starts_with(v)) {
                Confidence::Medium
            } else {
                Confidence::Low
            }
        }
        Some(com::PING | com::STATISTICS | com::QUIT) if len == 1 => Confidence::Low,
        Some(com::INIT_DB | com::STMT_PREPARE) if text(p.get(1..).unwrap_or_default()) => {
            Confidence::Low
        }
        _ => Confidence::None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A packet: header then payload.
    pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        v.extend_from_slice(payload);
        v
    }

    /// A MySQL 8-like greeting with `caps` (lower and upper halves).
    pub fn greeting_payload(version: &str, id: u32, caps: u32, plugin: &str) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(version.as_bytes());
        p.push(0);
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(0x21);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }

    /// A HandshakeResponse41.
    pub fn login_payload(
        caps: u32,
        user: &str,
        db: Option<&str>,
        attrs: &[(&str, &str)],
    ) -> Vec<u8> {
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(0x21);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(20);
        p.extend_from_slice(&[7; 20]);
        if let Some(d) = db {
            p.extend_from_slice(d.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(b"mysql_native_password\0");
        let mut a = Vec::new();
        for (k, v) in attrs {
            a.push(k.len() as u8);
            a.extend_from_slice(k.as_bytes());
            a.push(v.len() as u8);
            a.extend_from_slice(v.as_bytes());
        }
        p.push(a.len() as u8);
        p.extend_from_slice(&a);
        p
    }

    pub const CAPS: u32 = (cap::PROTOCOL_41
        | cap::SECURE_CONNECTION
        | cap::PLUGIN_AUTH
        | cap::CONNECT_ATTRS
        | cap::TRANSACTIONS) as u32;

    #[test]
    fn reads_greeting_login_and_lenenc() {
        let g = greeting(&greeting_payload("8.0.36", 7, CAPS, "caching_sha2_password")).unwrap();
        assert_eq!(g.server_version, b"8.0.36");
        assert_eq!(g.connection_id, 7);
        assert_eq!(g.auth_plugin.as_deref(), Some(&b"caching_sha2_password"[..]));
        let l = login(
            &login_payload(
                CAPS | cap::CONNECT_WITH_DB as u32,
                "ju",
                Some("shop"),
                &[("_client_name", "libmysql")],
            ),
            64,
        )
        .unwrap();
        assert_eq!(
            (l.user.as_deref(), l.database.as_deref()),
            (Some(&b"ju"[..]), Some(&b"shop"[..]))
        );
        assert_eq!(l.attributes, vec![(b"_client_name".to_vec(), b"libmysql".to_vec())]);
        assert_eq!(l.auth_plugin.as_deref(), Some(&b"mysql_native_password"[..]));
        let mut r = Rd::new(&[0xfc, 0x10, 0x27, 0xfb, 0xfe, 1, 0, 0], 0);
        assert_eq!(r.lenenc(), Some(Some(10_000)));
        assert_eq!(r.lenenc(), Some(None));
        // An 8-byte integer cut short.
        assert_eq!(r.lenenc(), None);
    }

    #[test]
    fn reads_ok_err_and_query_attributes() {
        let o = ok(&[0, 3, 0xfc, 0x01, 0x01, 2, 0, 1, 0], cap::PROTOCOL_41, 64).unwrap();
        assert_eq!((o.affected_rows, o.last_insert_id, o.status, o.warnings), (3, 257, 2, 1));
        let e = err(b"\xff\x15\x04#28000Access denied", 64).unwrap();
        assert_eq!(
            (e.code, &e.sql_state[..], &e.message[..]),
            (1045, &b"28000"[..], &b"Access denied"[..])
        );
        let e = err(b"\xffj\x04Host 'x' is not allowed", 64).unwrap();
        assert_eq!((e.code, e.sql_state.is_empty()), (1130, true));
        // One attribute `trace` = "ab" (VAR_STRING), then the query.
        let p = b"\x01\x01\x00\x01\xfd\x00\x05trace\x02abselect now()";
        let (a, q) = query(p, Some(true), 64);
        assert_eq!(a, vec![(b"trace".to_vec(), b"ab".to_vec())]);
        assert_eq!(q, b"select now()");
        // Not told: decided from the bytes, both ways.
        assert_eq!(query(p, None, 64).1, b"select now()");
        assert_eq!(query(b"select 1", None, 64).1, b"select 1");
        // No attributes announced by count 0.
        assert_eq!(query(b"\x00\x01select 2", Some(true), 64).1, b"select 2");
        // A count that lies: the text is taken as it is.
        assert_eq!(query(b"\xfc\xff\xff\x01x", Some(true), 64).0, vec![]);
    }

    #[test]
    fn probes_greetings_and_commands() {
        let g = packet(0, &greeting_payload("5.7.1-log", 1, CAPS, "mysql_native_password"));
        assert_eq!(probe(&g, false), Confidence::High);
        assert_eq!(probe(&g, true), Confidence::None);
        assert_eq!(probe(&packet(0, b"\x03SELECT 1"), true), Confidence::Medium);
        assert_eq!(probe(&packet(0, b"\x03hello"), true), Confidence::Low);
        assert_eq!(probe(&packet(1, b"\x03SELECT 1"), true), Confidence::None);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n\r\n", true), Confidence::None);
        assert_eq!(
            probe(&packet(0, b"\xff\x10\x04Too many connections"), false),
            Confidence::Medium
        );
        assert_eq!(probe(&[], true), Confidence::None);
    }
}
