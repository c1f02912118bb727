//! `ReassemblyConfig`: every limit of flow tracking, reassembly and
//! dissection, one named field each with its default. The doc comments of the
//! fields are the user documentation of the `reassembly` config section.

use serde::{Deserialize, Serialize};

/// Application protocols the dissectors know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppProtocol {
    Http,
    Dns,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", default)]
pub struct ReassemblyConfig {
    /// Flows (TCP connections and UDP conversations) tracked per dataplane
    /// core. The table is allocated up front at this size. When it is full a
    /// new flow evicts an old one (half-open first, then closed, then UDP,
    /// then established, least recently active first within each class) and
    /// `flow_table_full` and `flows_evicted` count it.
    pub max_flows: u32,
    /// A TCP flow that has seen a SYN but no data and no completed handshake
    /// is dropped after this long without packets (milliseconds).
    pub half_open_timeout_ms: u64,
    /// An established TCP flow is finished after this long without packets
    /// (milliseconds); its pending requests become items with a timeout error.
    pub idle_timeout_ms: u64,
    /// A TCP flow stays this long after both FINs or a RST, to absorb
    /// retransmissions before it is forgotten (milliseconds).
    pub closed_timeout_ms: u64,
    /// A UDP conversation is finished after this long without packets
    /// (milliseconds); unanswered DNS queries then become timeout items.
    pub udp_timeout_ms: u64,
    /// Out-of-order TCP bytes buffered per flow and direction.
    /// Past it the flow skips to its buffered data and reports the hole as a
    /// gap; `ooo_flow_limit_hits` counts it.
    pub max_ooo_bytes_per_flow: u32,
    /// Out-of-order TCP bytes buffered per core over all flows. Past it the
    /// flow that needs more gives up its own holes as gaps;
    /// `ooo_core_limit_hits` counts it.
    pub max_ooo_bytes_per_core: u64,
    /// Bytes a dissector may hold per direction while a message is incomplete
    /// (an HTTP header block, a DNS-over-TCP message). Past it the direction
    /// stops being dissected and a `buffer_limit` error is counted.
    pub max_message_buffer_bytes: u32,
    /// Payload segments probed for a known protocol before a flow is left
    /// undissected.
    pub max_probe_segments: u8,
    /// Body bytes kept per HTTP message for `postData.text`/`content.text`.
    /// Sizes are always counted in full.
    pub max_body_bytes: u32,
    /// Decompressed bytes counted per gzip/deflate HTTP body; decoding stops
    /// there and `content.size` is the bound (a zip-bomb guard).
    pub max_decompressed_bytes: u64,
    /// Header lines per HTTP message; more is a `too_many_headers` anomaly.
    pub max_http_headers: u16,
    /// Requests waiting for their responses per HTTP flow (pipelining depth).
    /// Past it the oldest is emitted unanswered.
    pub max_pending_requests: u16,
    /// DNS queries waiting for their responses per flow.
    pub max_pending_dns_queries: u16,
    /// IP datagrams being reassembled from fragments at once, per core.
    pub max_fragment_datagrams: u32,
    /// Fragment bytes buffered per core.
    pub max_fragment_bytes: u64,
    /// A datagram whose fragments do not all arrive within this long is
    /// dropped (milliseconds).
    pub fragment_timeout_ms: u64,
    /// Protocols dissected; flows of others are tracked but not dissected.
    pub protocols: Vec<AppProtocol>,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_flows: 65_536,
            half_open_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            closed_timeout_ms: 5_000,
            udp_timeout_ms: 30_000,
            max_ooo_bytes_per_flow: 256 * 1024,
            max_ooo_bytes_per_core: 64 * 1024 * 1024,
            max_message_buffer_bytes: 64 * 1024,
            max_probe_segments: 8,
            max_body_bytes: 16 * 1024,
            max_decompressed_bytes: 16 * 1024 * 1024,
            max_http_headers: 128,
            max_pending_requests: 64,
            max_pending_dns_queries: 64,
            max_fragment_datagrams: 1024,
            max_fragment_bytes: 4 * 1024 * 1024,
            fragment_timeout_ms: 30_000,
            protocols: vec![AppProtocol::Http, AppProtocol::Dns],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields_and_unknown_fields_fail() {
        let c: ReassemblyConfig = serde_json::from_str(r#"{"max_flows": 10}"#).expect("valid");
        assert_eq!(c.max_flows, 10);
        assert_eq!(c.idle_timeout_ms, ReassemblyConfig::default().idle_timeout_ms);
        assert!(serde_json::from_str::<ReassemblyConfig>(r#"{"max_flowz": 10}"#).is_err());
        let c: ReassemblyConfig = serde_json::from_str(r#"{"protocols": ["dns"]}"#).expect("valid");
        assert_eq!(c.protocols, vec![AppProtocol::Dns]);
    }
}
