//! `ReassemblyConfig`: every limit of flow tracking, reassembly and
//! dissection, one named field each with its default. The doc comments of the
//! fields are the user documentation of the `reassembly` config section.

use serde::{Deserialize, Serialize};

/// Application protocols the dissectors know, one per line of the
/// protocol registry (`dissectors/mod.rs`).
pub use crate::dissectors::AppProtocol;

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
    /// Requests waiting for their responses per flow: HTTP/1.x pipelining
    /// depth, Redis and PostgreSQL pipelines, Kafka in-flight requests,
    /// AMQP synchronous methods. Past it the oldest is emitted unanswered
    /// with a `too_many_transactions` error.
    pub max_pending_requests: u16,
    /// DNS queries waiting for their responses per flow.
    pub max_pending_dns_queries: u16,
    /// Bytes kept of a value that is not an HTTP body: a Redis argument or
    /// reply string, a PostgreSQL query text, an AMQP message body, a Kafka
    /// client id or topic name. Sizes are always counted in full.
    pub max_field_bytes: u32,
    /// Values kept per Redis command or reply (arguments, and elements of
    /// arrays, sets and maps at any depth); the rest are parsed and counted
    /// (`argCount`, `count`) but not kept.
    pub max_redis_values: u16,
    /// Nesting depth of RESP aggregates (arrays, maps, sets, pushes,
    /// attributes); deeper is a `redis_malformed` anomaly and the direction
    /// stops being dissected (the RESP grammar itself has no bound).
    pub max_resp_depth: u8,
    /// Topics, and partitions per topic, kept per Kafka Produce or Fetch
    /// item; more are counted (`topicCount`) but not listed.
    pub max_kafka_topics: u16,
    /// Named prepared statements remembered per PostgreSQL connection, so
    /// that a later Bind/Execute of one shows its query text. Past it the
    /// oldest is forgotten.
    pub max_pg_statements: u16,
    /// HTTP/2 streams open at once per connection. Past it the oldest is
    /// emitted with a `too_many_streams` error.
    pub max_http2_streams: u16,
    /// HPACK dynamic-table bytes kept per direction of an HTTP/2 connection
    /// (a peer may announce up to 4 GiB). An entry evicted early because of
    /// this is unknown to later header blocks: a header that refers to it is
    /// left out and the item carries an `hpack_unknown` error, never a
    /// guessed value.
    pub max_hpack_table_bytes: u32,
    /// AMQP channels with content (header and body frames) in assembly per
    /// connection; content on further channels is emitted at once with a
    /// `too_many_transactions` error.
    pub max_amqp_channels: u16,
    /// Prepared statements remembered per MySQL connection, so that a
    /// later COM_STMT_EXECUTE shows its query text. Past it the oldest is
    /// forgotten.
    pub max_mysql_statements: u16,
    /// Nesting depth of a BSON document shown in a MongoDB item; a deeper
    /// document (a BSON bomb) is cut there and counted as a
    /// `mongodb_bson_depth` anomaly.
    pub max_bson_depth: u8,
    /// Elements (at any depth) shown per MongoDB command or reply
    /// document; the rest are left out.
    pub max_bson_elements: u32,
    /// Frames joined into one WebSocket message; a message of more (a
    /// fragment flood) is emitted there with a `websocket_fragment_flood`
    /// anomaly and the rest follows as a `continuation` message.
    pub max_websocket_fragments: u32,
    /// IP datagrams being reassembled from fragments at once, per core.
    pub max_fragment_datagrams: u32,
    /// Fragment bytes buffered per core.
    pub max_fragment_bytes: u64,
    /// A datagram whose fragments do not all arrive within this long is
    /// dropped (milliseconds).
    pub fragment_timeout_ms: u64,
    /// Protocols dissected, each detected by content on any port; flows of
    /// others are tracked but not dissected. `http2` covers prior
    /// knowledge, h2c upgrades (which also need `http`) and connections
    /// picked up mid-way; `grpc` turns HTTP/2 streams with an
    /// `application/grpc` content-type into gRPC items (it needs `http2`).
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
            max_field_bytes: 4096,
            max_redis_values: 64,
            max_resp_depth: 16,
            max_kafka_topics: 64,
            max_pg_statements: 256,
            max_http2_streams: 256,
            max_hpack_table_bytes: 64 * 1024,
            max_amqp_channels: 256,
            max_mysql_statements: 256,
            max_bson_depth: 16,
            max_bson_elements: 256,
            max_websocket_fragments: 1024,
            max_fragment_datagrams: 1024,
            max_fragment_bytes: 4 * 1024 * 1024,
            fragment_timeout_ms: 30_000,
            protocols: AppProtocol::ALL.to_vec(),
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
        let c: ReassemblyConfig = serde_json::from_str(
            r#"{"protocols": ["http2", "grpc", "redis", "kafka", "postgresql", "amqp"]}"#,
        )
        .expect("valid");
        assert_eq!(c.protocols.len(), 6);
        for p in AppProtocol::ALL {
            assert_eq!(
                serde_json::to_value(p).expect("serializes"),
                serde_json::Value::from(p.name())
            );
            assert!(
                ReassemblyConfig::default().protocols.contains(&p),
                "{} enabled by default",
                p.name()
            );
        }
    }
}
