//! Captures built packet by packet (`dataplane::synth`) for what a case
//! needs: HTTP exchanges with chosen statuses, requests that never get a
//! response, DNS answers with authority and additional records, spread over
//! as many seconds of capture time as a case asks.

use std::path::{Path, PathBuf};

use dataplane::synth::{http_conversation, tcp4, udp4, Packet, PcapWriter};
use dataplane::wire::LinkType;

/// 2023-11-14T22:13:20Z: the capture's first packet.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;

const CLIENT: [u8; 4] = [10, 1, 0, 7];
const SERVER: [u8; 4] = [10, 1, 0, 80];

pub struct Capture {
    packets: Vec<Packet>,
    t: u64,
    port: u16,
}

impl Capture {
    pub fn new() -> Capture {
        Capture { packets: Vec::new(), t: T0_NS, port: 40_000 }
    }

    /// Capture time moves on by `ms`.
    pub fn wait_ms(&mut self, ms: u64) -> &mut Capture {
        self.t += ms * 1_000_000;
        self
    }

    /// `GET path` answered with `status` (a JSON body), 2 ms round trip.
    pub fn get(&mut self, path: &str, status: u16) -> &mut Capture {
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: compat\r\n\r\n");
        let body = format!("{{\"status\":{status}}}");
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.port += 1;
        self.t = http_conversation(
            &mut self.packets,
            self.t,
            CLIENT,
            SERVER,
            self.port,
            req.as_bytes(),
            resp.as_bytes(),
            2_000_000,
        ) + 1_000_000;
        self
    }

    /// `GET path` whose connection closes without a response.
    pub fn unanswered(&mut self, path: &str) -> &mut Capture {
        let req = format!("GET {path} HTTP/1.1\r\nHost: shop.example\r\n\r\n");
        self.port += 1;
        let (sp, dp) = (self.port, 80);
        let (c, s) = (1_000u32, 9_000u32);
        let mut t = self.t;
        let mut push = |t: u64, data: Vec<u8>| self.packets.push(Packet { ts_ns: t, data });
        push(t, tcp4(CLIENT, SERVER, sp, dp, c, 0, 0x02, b""));
        t += 500_000;
        push(t, tcp4(SERVER, CLIENT, dp, sp, s, c + 1, 0x12, b""));
        t += 500_000;
        push(t, tcp4(CLIENT, SERVER, sp, dp, c + 1, s + 1, 0x10, b""));
        t += 100_000;
        push(t, tcp4(CLIENT, SERVER, sp, dp, c + 1, s + 1, 0x18, req.as_bytes()));
        let c2 = c + 1 + req.len() as u32;
        t += 1_000_000;
        push(t, tcp4(SERVER, CLIENT, dp, sp, s + 1, c2, 0x11, b""));
        t += 500_000;
        push(t, tcp4(CLIENT, SERVER, sp, dp, c2, s + 2, 0x11, b""));
        t += 500_000;
        push(t, tcp4(SERVER, CLIENT, dp, sp, s + 2, c2 + 1, 0x10, b""));
        self.t = t + 1_000_000;
        self
    }

    /// An A query for `name` answered with one A record, one NS record in
    /// the authority section and that server's A record as additional.
    pub fn dns_with_authority(&mut self, name: &str) -> &mut Capture {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut r = q.clone();
        r[2..4].copy_from_slice(&[0x81, 0x80]);
        r[6..12].copy_from_slice(&[0, 1, 0, 1, 0, 1]);
        // Answer: name → 10.9.0.1.
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 10, 9, 0, 1]);
        // Authority: name NS ns1.<name>.
        let ns = [3, b'n', b's', b'1', 0xc0, 0x0c];
        r.extend_from_slice(&[0xc0, 0x0c, 0, 2, 0, 1, 0, 0, 0x0e, 0x10, 0, ns.len() as u8]);
        r.extend_from_slice(&ns);
        // Additional: ns1.<name> A 10.9.0.53 (a pointer to the NS rdata).
        let ns_at = (r.len() - ns.len()) as u8;
        r.extend_from_slice(&[0xc0, ns_at, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 10, 9, 0, 53]);
        self.port += 1;
        self.packets
            .push(Packet { ts_ns: self.t, data: udp4(CLIENT, [10, 1, 0, 53], self.port, 53, &q) });
        self.packets.push(Packet {
            ts_ns: self.t + 700_000,
            data: udp4([10, 1, 0, 53], CLIENT, 53, self.port, &r),
        });
        self.t += 2_000_000;
        self
    }

    /// Writes the capture (packets in time order) into `dir`.
    pub fn write(&mut self, dir: &Path, name: &str) -> PathBuf {
        self.packets.sort_by_key(|p| p.ts_ns);
        let path = dir.join(name);
        let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut w = PcapWriter::new(f, LinkType::Ethernet, true).unwrap();
        for p in &self.packets {
            w.write(p.ts_ns, &p.data, p.data.len() as u32).unwrap();
        }
        drop(w.into_inner());
        path
    }
}
