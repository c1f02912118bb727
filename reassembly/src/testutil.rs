//! Test helpers: a TCP conversation generator producing owned packets with
//! consistent sequence and acknowledgement numbers.

use crate::packet::{tcp_flags, Packet};
use crate::{Item, Reassembler, ReassemblyConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPkt {
    pub ts: u64,
    pub from_client: bool,
    pub src: [u8; 4],
    pub sport: u16,
    pub dst: [u8; 4],
    pub dport: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub payload: Vec<u8>,
}

impl OwnedPkt {
    pub fn packet(&self) -> Packet<'_> {
        Packet::tcp_v4(
            self.ts,
            self.src,
            self.sport,
            self.dst,
            self.dport,
            self.flags,
            self.seq,
            self.ack,
            &self.payload,
        )
    }
}

pub struct Conv {
    pub c: [u8; 4],
    pub cp: u16,
    pub s: [u8; 4],
    pub sp: u16,
    pub cseq: u32,
    pub sseq: u32,
    pub ts: u64,
}

impl Conv {
    pub fn new(cp: u16, sp: u16, isn_c: u32, isn_s: u32) -> Conv {
        Conv {
            c: [10, 0, 0, 1],
            cp,
            s: [10, 0, 0, 2],
            sp,
            cseq: isn_c,
            sseq: isn_s,
            ts: 1_700_000_000_000_000_000,
        }
    }

    fn pkt(&mut self, from_client: bool, flags: u8, payload: &[u8]) -> OwnedPkt {
        self.ts += 1_000_000;
        let (src, sport, dst, dport, seq, ack) = if from_client {
            (self.c, self.cp, self.s, self.sp, self.cseq, self.sseq)
        } else {
            (self.s, self.sp, self.c, self.cp, self.sseq, self.cseq)
        };
        let p = OwnedPkt {
            ts: self.ts,
            from_client,
            src,
            sport,
            dst,
            dport,
            flags,
            seq,
            ack,
            payload: payload.to_vec(),
        };
        let adv = payload.len() as u32 + u32::from(flags & (tcp_flags::SYN | tcp_flags::FIN) != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(adv);
        } else {
            self.sseq = self.sseq.wrapping_add(adv);
        }
        p
    }

    /// The handshake, then one ACK segment per `(from_client, offset in
    /// its direction's stream, data)`, 1 µs apart, in the order given
    /// (which may be any order: sequence numbers follow the offsets).
    pub fn handshake_then<'a>(
        &mut self,
        segs: impl IntoIterator<Item = (bool, usize, &'a [u8])>,
    ) -> Vec<OwnedPkt> {
        let (isn_c, isn_s) = (self.cseq, self.sseq);
        let mut pkts = self.handshake();
        let mut ts = pkts.last().map_or(0, |p| p.ts);
        for (client, off, data) in segs {
            ts += 1_000;
            let (src, sport, dst, dport, seq, ack) = if client {
                (
                    self.c,
                    self.cp,
                    self.s,
                    self.sp,
                    isn_c.wrapping_add(1).wrapping_add(off as u32),
                    isn_s.wrapping_add(1),
                )
            } else {
                (
                    self.s,
                    self.sp,
                    self.c,
                    self.cp,
                    isn_s.wrapping_add(1).wrapping_add(off as u32),
                    isn_c.wrapping_add(1),
                )
            };
            pkts.push(OwnedPkt {
                ts,
                from_client: client,
                src,
                sport,
                dst,
                dport,
                flags: tcp_flags::ACK,
                seq,
                ack,
                payload: data.to_vec(),
            });
        }
        pkts
    }

    pub fn handshake(&mut self) -> Vec<OwnedPkt> {
        vec![
            self.pkt(true, tcp_flags::SYN, b""),
            self.pkt(false, tcp_flags::SYN | tcp_flags::ACK, b""),
            self.pkt(true, tcp_flags::ACK, b""),
        ]
    }

    pub fn syn_with_data(&mut self, data: &[u8]) -> OwnedPkt {
        self.pkt(true, tcp_flags::SYN, data)
    }

    pub fn client(&mut self, data: &[u8]) -> OwnedPkt {
        self.pkt(true, tcp_flags::ACK | tcp_flags::PSH, data)
    }

    pub fn server(&mut self, data: &[u8]) -> OwnedPkt {
        self.pkt(false, tcp_flags::ACK | tcp_flags::PSH, data)
    }

    pub fn fin(&mut self, from_client: bool) -> OwnedPkt {
        self.pkt(from_client, tcp_flags::FIN | tcp_flags::ACK, b"")
    }

    pub fn rst(&mut self, from_client: bool) -> OwnedPkt {
        self.pkt(from_client, tcp_flags::RST, b"")
    }
}

/// Runs packets through a fresh reassembler and finishes it.
pub fn run(cfg: &ReassemblyConfig, pkts: &[OwnedPkt]) -> (Vec<Item>, Reassembler) {
    let mut r = Reassembler::new(cfg, 0);
    let mut items = Vec::new();
    for p in pkts {
        r.packet(&p.packet(), &mut |i| items.push(i));
    }
    r.finish(&mut |i| items.push(i));
    (items, r)
}
