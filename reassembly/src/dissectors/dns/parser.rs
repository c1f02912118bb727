//! Pure DNS message decoding (RFC 1035, 3596, 2782).
//!
//! Never panics and never loops: every read is bounds-checked, a name
//! follows at most [`MAX_POINTERS`] compression pointers and each pointer
//! must point strictly before the label it replaces (RFC 1035 compression
//! only refers backwards), so a pointer loop ends as `DnsPointerLoop`. A
//! message cut short keeps the records decoded before the cut.

use super::{DnsMessage, DnsQuestion, DnsRecord, RData};
use crate::dissectors::{Confidence, ErrorKind};

pub const HEADER_LEN: usize = 12;
/// Compression pointers followed per name.
pub const MAX_POINTERS: usize = 64;
/// Longest name in wire form (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Records decoded per section; the rest are skipped (a bound on work).
pub const MAX_RECORDS: usize = 256;

fn u16_at(m: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]))
}

fn u32_at(m: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(m.get(i..i + 4)?.try_into().ok()?))
}

/// Reads a (possibly compressed) name at `pos`; returns the position after
/// it in the message.
pub fn read_name(m: &[u8], pos: usize, out: &mut Vec<u8>) -> Result<usize, ErrorKind> {
    out.clear();
    let mut i = pos;
    let mut after = None;
    let mut jumps = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *m.get(i).ok_or(ErrorKind::DnsTruncated)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(after.unwrap_or(i + 1));
                }
                let label =
                    m.get(i + 1..i + 1 + usize::from(len)).ok_or(ErrorKind::DnsTruncated)?;
                wire_len += usize::from(len) + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(ErrorKind::DnsMalformed);
                }
                if !out.is_empty() {
                    out.push(b'.');
                }
                out.extend_from_slice(label);
                i += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(u16_at(m, i).ok_or(ErrorKind::DnsTruncated)? & 0x3fff);
                jumps += 1;
                if target >= i || jumps > MAX_POINTERS {
                    return Err(ErrorKind::DnsPointerLoop);
                }
                after.get_or_insert(i + 2);
                i = target;
            }
            _ => return Err(ErrorKind::DnsMalformed),
        }
    }
}

fn read_rdata(m: &[u8], rtype: u16, start: usize, len: usize) -> Result<RData, ErrorKind> {
    let rd = m.get(start..start + len).ok_or(ErrorKind::DnsTruncated)?;
    let mut name = Vec::new();
    let name_at = |p: usize, out: &mut Vec<u8>| -> Result<usize, ErrorKind> {
        let end = read_name(m, p, out)?;
        Ok(end)
    };
    Ok(match rtype {
        1 => RData::A(rd.try_into().map_err(|_| ErrorKind::DnsMalformed)?),
        28 => RData::Aaaa(rd.try_into().map_err(|_| ErrorKind::DnsMalformed)?),
        2 | 5 | 12 => {
            name_at(start, &mut name)?;
            match rtype {
                2 => RData::Ns(name),
                5 => RData::Cname(name),
                _ => RData::Ptr(name),
            }
        }
        15 => {
            let preference = u16_at(rd, 0).ok_or(ErrorKind::DnsMalformed)?;
            name_at(start + 2, &mut name)?;
            RData::Mx { preference, exchange: name }
        }
        16 => {
            let mut strings = Vec::new();
            let mut i = 0;
            while let Some(&l) = rd.get(i) {
                let s = rd.get(i + 1..i + 1 + usize::from(l)).ok_or(ErrorKind::DnsMalformed)?;
                strings.push(s.to_vec());
                i += 1 + usize::from(l);
            }
            RData::Txt(strings)
        }
        33 => {
            let (p, w, port) = (u16_at(rd, 0), u16_at(rd, 2), u16_at(rd, 4));
            let (Some(priority), Some(weight), Some(port)) = (p, w, port) else {
                return Err(ErrorKind::DnsMalformed);
            };
            name_at(start + 6, &mut name)?;
            RData::Srv { priority, weight, port, target: name }
        }
        6 => {
            let mut rname = Vec::new();
            let after = name_at(start, &mut name)?;
            let after = name_at(after, &mut rname)?;
            let n = |k: usize| u32_at(m, after + 4 * k).ok_or(ErrorKind::DnsMalformed);
            RData::Soa {
                mname: name,
                rname,
                serial: n(0)?,
                refresh: n(1)?,
                retry: n(2)?,
                expire: n(3)?,
                minimum: n(4)?,
            }
        }
        _ => RData::Other(rd.to_vec()),
    })
}

/// Decodes a message. `Err` only when not even the header is there; other
/// problems return what was decoded and the anomaly.
pub fn parse_message(m: &[u8]) -> Result<(DnsMessage, Option<ErrorKind>), ErrorKind> {
    if m.len() < HEADER_LEN {
        return Err(ErrorKind::DnsTruncated);
    }
    let h = |i| u16_at(m, i).unwrap_or(0);
    let mut msg = DnsMessage { id: h(0), flags: h(2), ..DnsMessage::default() };
    let counts = [h(4), h(6), h(8), h(10)];
    let mut pos = HEADER_LEN;
    let mut name = Vec::new();
    for _ in 0..counts[0] {
        let after = match read_name(m, pos, &mut name) {
            Ok(a) => a,
            Err(e) => return Ok((msg, Some(e))),
        };
        let (Some(qtype), Some(qclass)) = (u16_at(m, after), u16_at(m, after + 2)) else {
            return Ok((msg, Some(ErrorKind::DnsTruncated)));
        };
        if msg.questions.len() < MAX_RECORDS {
            msg.questions.push(DnsQuestion { name: name.clone(), qtype, qclass });
        }
        pos = after + 4;
    }
    for (section, &count) in counts.iter().enumerate().skip(1) {
        for _ in 0..count {
            let after = match read_name(m, pos, &mut name) {
                Ok(a) => a,
                Err(e) => return Ok((msg, Some(e))),
            };
            let fixed = (
                u16_at(m, after),
                u16_at(m, after + 2),
                u32_at(m, after + 4),
                u16_at(m, after + 8),
            );
            let (Some(rtype), Some(class), Some(ttl), Some(rdlen)) = fixed else {
                return Ok((msg, Some(ErrorKind::DnsTruncated)));
            };
            let start = after + 10;
            let data = match read_rdata(m, rtype, start, usize::from(rdlen)) {
                Ok(d) => d,
                Err(e) => return Ok((msg, Some(e))),
            };
            pos = start + usize::from(rdlen);
            let list = match section {
                1 => &mut msg.answers,
                2 => &mut msg.authorities,
                _ => &mut msg.additionals,
            };
            if list.len() < MAX_RECORDS {
                list.push(DnsRecord { name: name.clone(), rtype, class, ttl, data });
            }
        }
    }
    Ok((msg, None))
}

/// Content-based detection: a sane header and a question section that
/// decodes. `tcp` messages carry the 2-byte length prefix.
pub fn probe(b: &[u8], tcp: bool) -> Confidence {
    let m = if tcp {
        let Some(len) = u16_at(b, 0) else { return Confidence::None };
        match b.get(2..) {
            Some(rest) if usize::from(len) >= HEADER_LEN => {
                rest.get(..usize::from(len)).unwrap_or(rest)
            }
            _ => return Confidence::None,
        }
    } else {
        b
    };
    if m.len() < HEADER_LEN {
        return Confidence::None;
    }
    let flags = u16_at(m, 2).unwrap_or(0);
    let opcode = (flags >> 11) & 0xf;
    let qd = u16_at(m, 4).unwrap_or(0);
    let an = u16_at(m, 6).unwrap_or(0);
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5) || qd == 0 || qd > 4 || an > 512 || flags & 0x0040 != 0
    {
        return Confidence::None;
    }
    let mut name = Vec::new();
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        match read_name(m, pos, &mut name) {
            Ok(after) if u16_at(m, after + 2).is_some() => pos = after + 4,
            _ => return Confidence::None,
        }
    }
    Confidence::Medium
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a name in wire form.
    pub fn wire_name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&0x0100u16.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&wire_name(name));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    /// A response to `query` with the given (type, rdata) answers, each
    /// owned by a pointer to the question name.
    pub fn response(id: u16, name: &str, qtype: u16, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = query(id, name, qtype);
        m[2..4].copy_from_slice(&0x8180u16.to_be_bytes());
        m[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (t, rd) in answers {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&1u16.to_be_bytes());
            m.extend_from_slice(&300u32.to_be_bytes());
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
        }
        m
    }

    #[test]
    fn decodes_every_common_record_type() {
        let mut soa = wire_name("ns1.example.com");
        soa.extend(wire_name("admin.example.com"));
        for v in [1u32, 2, 3, 4, 5] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        let mut mx = 10u16.to_be_bytes().to_vec();
        mx.extend(wire_name("mail.example.com"));
        let mut srv = vec![0, 1, 0, 2, 0x1f, 0x90];
        srv.extend(wire_name("svc.example.com"));
        let answers = vec![
            (1, vec![93, 184, 216, 34]),
            (28, vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            (5, wire_name("alias.example.com")),
            (2, wire_name("ns.example.com")),
            (12, vec![0xc0, 12]),
            (15, mx),
            (16, b"\x05hello\x05world".to_vec()),
            (33, srv),
            (6, soa),
            (99, vec![1, 2, 3]),
        ];
        let m = response(7, "example.com", 1, &answers);
        let (msg, err) = parse_message(&m).expect("header");
        assert_eq!(err, None);
        assert!(msg.is_response());
        assert_eq!(msg.questions[0].name, b"example.com");
        assert_eq!(msg.answers.len(), 10);
        assert_eq!(msg.answers[0].data, RData::A([93, 184, 216, 34]));
        assert_eq!(msg.answers[2].data, RData::Cname(b"alias.example.com".to_vec()));
        assert_eq!(msg.answers[4].data, RData::Ptr(b"example.com".to_vec()));
        assert_eq!(
            msg.answers[5].data,
            RData::Mx { preference: 10, exchange: b"mail.example.com".to_vec() }
        );
        assert_eq!(msg.answers[6].data, RData::Txt(vec![b"hello".to_vec(), b"world".to_vec()]));
        assert_eq!(
            msg.answers[7].data,
            RData::Srv { priority: 1, weight: 2, port: 8080, target: b"svc.example.com".to_vec() }
        );
        assert!(matches!(&msg.answers[8].data, RData::Soa { serial: 1, minimum: 5, .. }));
        assert_eq!(msg.answers[9].data, RData::Other(vec![1, 2, 3]));
        let json = super::super::response_json(&msg);
        assert_eq!(json["answers"][0]["ip"], "93.184.216.34");
        assert_eq!(json["answers"][1]["ip"], "2001:db8::1");
        assert_eq!(json["answers"][6]["txts"][1], "world");
        assert_eq!(json["code"], "NoError");
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_flagged() {
        let mut m = query(1, "a.b", 1);
        // Question name replaced by a pointer to itself.
        m.truncate(12);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let (msg, err) = parse_message(&m).expect("header");
        assert_eq!(err, Some(ErrorKind::DnsPointerLoop));
        assert!(msg.questions.is_empty());
        let mut m = query(1, "a.b", 1);
        m.truncate(12);
        m.extend_from_slice(&[1, b'x', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m).expect("header").1, Some(ErrorKind::DnsPointerLoop));
    }

    #[test]
    fn truncated_messages_keep_what_was_decoded() {
        let m = response(3, "example.com", 1, &[(1, vec![1, 2, 3, 4]), (1, vec![5, 6, 7, 8])]);
        let cut = &m[..m.len() - 3];
        let (msg, err) = parse_message(cut).expect("header");
        assert_eq!(err, Some(ErrorKind::DnsTruncated));
        assert_eq!(msg.answers.len(), 1);
        assert_eq!(parse_message(&m[..5]), Err(ErrorKind::DnsTruncated));
    }

    #[test]
    fn bad_label_and_overlong_names() {
        let mut m = query(1, "a", 1);
        m[12] = 0x80; // reserved label type
        assert_eq!(parse_message(&m).expect("header").1, Some(ErrorKind::DnsMalformed));
        let long = ["abcdefghijklmnopqrstuvwxyz0123456789"; 8].join(".");
        let m = query(1, &long, 1);
        assert_eq!(parse_message(&m).expect("header").1, Some(ErrorKind::DnsMalformed));
    }

    #[test]
    fn probes() {
        let q = query(9, "example.com", 1);
        assert_eq!(probe(&q, false), Confidence::Medium);
        let mut t = (q.len() as u16).to_be_bytes().to_vec();
        t.extend_from_slice(&q);
        assert_eq!(probe(&t, true), Confidence::Medium);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n\r\n", false), Confidence::None);
        assert_eq!(probe(&[0u8; 12], false), Confidence::None);
    }
}
