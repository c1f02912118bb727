//! Per-core counters of the reassembler. Plain integers bumped on the hot
//! path, read by the dataplane and published periodically; nothing here
//! touches a metrics registry.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::config::AppProtocol;
use crate::dissectors::ErrorKind;

#[derive(Debug, Default, Clone, Serialize)]
pub struct ReassemblyCounters {
    pub packets: u64,
    /// Packets that were neither TCP nor UDP, or had no usable L4 header.
    pub packets_ignored: u64,
    /// TCP packets that could not start a flow (a lone ACK or RST).
    pub packets_without_flow: u64,
    pub flows_created: u64,
    /// Flows pushed out of a full table.
    pub flows_evicted: u64,
    /// Flows finished by a timeout.
    pub flows_expired: u64,
    /// Flows finished by FIN/RST (counted when forgotten).
    pub flows_closed: u64,
    /// Times a new flow found the table full.
    pub flow_table_full: u64,
    pub tcp: TcpCounters,
    pub fragments: u64,
    pub fragment_datagrams_reassembled: u64,
    pub fragment_datagram_limit_hits: u64,
    pub fragment_bytes_limit_hits: u64,
    pub fragment_timeouts: u64,
    pub fragments_malformed: u64,
    /// Flows whose payload matched no enabled dissector.
    pub flows_undetected: u64,
    /// Items emitted, per protocol (`items_<name>` when serialized).
    #[serde(flatten)]
    pub items: ItemCounts,
    pub dissection_errors: DissectionErrors,
}

/// TCP reassembly counters (a separate struct so the reassembly code can
/// hold them while a dissector holds [`DissectionErrors`]).
#[derive(Debug, Default, Clone, Serialize)]
pub struct TcpCounters {
    /// Payload bytes already delivered or buffered and seen again
    /// (retransmissions, overlaps); dropped under first-data-wins.
    pub retransmitted_bytes: u64,
    pub ooo_segments: u64,
    pub ooo_flow_limit_hits: u64,
    pub ooo_core_limit_hits: u64,
    /// Holes delivered to dissectors as gaps, and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
}

/// Items emitted, one counter per protocol (indexed by `AppProtocol`).
#[derive(Debug, Default, Clone)]
pub struct ItemCounts(pub [u64; AppProtocol::COUNT]);

impl ItemCounts {
    #[inline]
    pub fn bump(&mut self, p: AppProtocol) {
        if let Some(c) = self.0.get_mut(p as usize) {
            *c += 1;
        }
    }

    pub fn get(&self, p: AppProtocol) -> u64 {
        self.0.get(p as usize).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for ItemCounts {
    /// `items_<protocol>` keys (flattened into the counters' map).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(AppProtocol::COUNT))?;
        for p in AppProtocol::ALL {
            m.serialize_entry(&format!("items_{}", p.name()), &self.get(p))?;
        }
        m.end()
    }
}

/// Dissection errors and anomalies, one counter per [`ErrorKind`].
#[derive(Debug, Clone)]
pub struct DissectionErrors(pub [u64; ErrorKind::COUNT]);

impl Default for DissectionErrors {
    fn default() -> Self {
        DissectionErrors([0; ErrorKind::COUNT])
    }
}

impl DissectionErrors {
    pub fn bump(&mut self, kind: ErrorKind) {
        if let Some(c) = self.0.get_mut(kind.index()) {
            *c += 1;
        }
    }

    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0.get(kind.index()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for DissectionErrors {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(ErrorKind::COUNT))?;
        for kind in ErrorKind::all() {
            m.serialize_entry(kind.name(), &self.get(kind))?;
        }
        m.end()
    }
}
