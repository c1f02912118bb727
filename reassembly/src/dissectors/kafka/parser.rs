//! Pure Kafka wire-protocol parsing over byte slices: the size-prefixed
//! framing, request and response headers (v0–v2, flexible versions with
//! compact strings and tagged fields), the topics and partitions of
//! Produce and Fetch, and top-level error codes.
//!
//! Own code rather than the `kafka-protocol` crate: that crate decodes a
//! whole message into owned structures (so a 50 MB Fetch response would
//! have to be buffered whole), fails on a cut message instead of returning
//! what it read, returns `anyhow` errors, and is 3.5 MB of generated code
//! for the few fields an item keeps. Here every reader works on a possibly
//! cut prefix and stops where the bytes end, keeping what it read.

use crate::dissectors::Confidence;

/// Longest message believed (1 GiB; brokers default to 100 MB requests).
pub const MAX_MESSAGE: u32 = 1 << 30;
/// Highest API key and version a probe or resync accepts as plausible.
pub const MAX_API_KEY: i16 = 100;
pub const MAX_API_VERSION: i16 = 30;

pub const PRODUCE: i16 = 0;
pub const FETCH: i16 = 1;
pub const API_VERSIONS: i16 = 18;

/// Name of an API key and the first version using flexible (KIP-482)
/// encoding (`i16::MAX`: never).
pub fn api(key: i16) -> (&'static str, i16) {
    const NEVER: i16 = i16::MAX;
    match key {
        0 => ("Produce", 9),
        1 => ("Fetch", 12),
        2 => ("ListOffsets", 6),
        3 => ("Metadata", 9),
        4 => ("LeaderAndIsr", 4),
        5 => ("StopReplica", 2),
        6 => ("UpdateMetadata", 6),
        7 => ("ControlledShutdown", 3),
        8 => ("OffsetCommit", 8),
        9 => ("OffsetFetch", 6),
        10 => ("FindCoordinator", 3),
        11 => ("JoinGroup", 6),
        12 => ("Heartbeat", 4),
        13 => ("LeaveGroup", 4),
        14 => ("SyncGroup", 4),
        15 => ("DescribeGroups", 5),
        16 => ("ListGroups", 3),
        17 => ("SaslHandshake", NEVER),
        18 => ("ApiVersions", 3),
        19 => ("CreateTopics", 5),
        20 => ("DeleteTopics", 4),
        21 => ("DeleteRecords", 2),
        22 => ("InitProducerId", 2),
        23 => ("OffsetForLeaderEpoch", 4),
        24 => ("AddPartitionsToTxn", 3),
        25 => ("AddOffsetsToTxn", 3),
        26 => ("EndTxn", 3),
        27 => ("WriteTxnMarkers", 1),
        28 => ("TxnOffsetCommit", 3),
        29 => ("DescribeAcls", 2),
        30 => ("CreateAcls", 2),
        31 => ("DeleteAcls", 2),
        32 => ("DescribeConfigs", 4),
        33 => ("AlterConfigs", 2),
        34 => ("AlterReplicaLogDirs", 2),
        35 => ("DescribeLogDirs", 2),
        36 => ("SaslAuthenticate", 2),
        37 => ("CreatePartitions", 2),
        38 => ("CreateDelegationToken", 2),
        39 => ("RenewDelegationToken", 2),
        40 => ("ExpireDelegationToken", 2),
        41 => ("DescribeDelegationToken", 2),
        42 => ("DeleteGroups", 2),
        43 => ("ElectLeaders", 2),
        44 => ("IncrementalAlterConfigs", 1),
        45 => ("AlterPartitionReassignments", 0),
        46 => ("ListPartitionReassignments", 0),
        47 => ("OffsetDelete", NEVER),
        48 => ("DescribeClientQuotas", 1),
        49 => ("AlterClientQuotas", 1),
        50 => ("DescribeUserScramCredentials", 0),
        51 => ("AlterUserScramCredentials", 0),
        52 => ("Vote", 0),
        53 => ("BeginQuorumEpoch", 0),
        54 => ("EndQuorumEpoch", 0),
        55 => ("DescribeQuorum", 0),
        56 => ("AlterPartition", 0),
        57 => ("UpdateFeatures", 0),
        58 => ("Envelope", 0),
        59 => ("FetchSnapshot", 0),
        60 => ("DescribeCluster", 0),
        61 => ("DescribeProducers", 0),
        62 => ("BrokerRegistration", 0),
        63 => ("BrokerHeartbeat", 0),
        64 => ("UnregisterBroker", 0),
        65 => ("DescribeTransactions", 0),
        66 => ("ListTransactions", 0),
        67 => ("AllocateProducerIds", 0),
        68 => ("ConsumerGroupHeartbeat", 0),
        69 => ("ConsumerGroupDescribe", 0),
        70 => ("ControllerRegistration", 0),
        71 => ("GetTelemetrySubscriptions", 0),
        72 => ("PushTelemetry", 0),
        73 => ("AssignReplicasToDirs", 0),
        74 => ("ListClientMetricsResources", 0),
        75 => ("DescribeTopicPartitions", 0),
        // Unknown keys: assume the flexible encoding of every new API.
        _ => ("Unknown", 0),
    }
}

pub fn flexible(key: i16, version: i16) -> bool {
    version >= api(key).1
}

/// Name of a Kafka error code.
pub fn error_name(code: i16) -> &'static str {
    const NAMES: &[&str] = &[
        "NONE",
        "OFFSET_OUT_OF_RANGE",
        "CORRUPT_MESSAGE",
        "UNKNOWN_TOPIC_OR_PARTITION",
        "INVALID_FETCH_SIZE",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_OR_FOLLOWER",
        "REQUEST_TIMED_OUT",
        "BROKER_NOT_AVAILABLE",
        "REPLICA_NOT_AVAILABLE",
        "MESSAGE_TOO_LARGE",
        "STALE_CONTROLLER_EPOCH",
        "OFFSET_METADATA_TOO_LARGE",
        "NETWORK_EXCEPTION",
        "COORDINATOR_LOAD_IN_PROGRESS",
        "COORDINATOR_NOT_AVAILABLE",
        "NOT_COORDINATOR",
        "INVALID_TOPIC_EXCEPTION",
        "RECORD_LIST_TOO_LARGE",
        "NOT_ENOUGH_REPLICAS",
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "INVALID_REQUIRED_ACKS",
        "ILLEGAL_GENERATION",
        "INCONSISTENT_GROUP_PROTOCOL",
        "INVALID_GROUP_ID",
        "UNKNOWN_MEMBER_ID",
        "INVALID_SESSION_TIMEOUT",
        "REBALANCE_IN_PROGRESS",
        "INVALID_COMMIT_OFFSET_SIZE",
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "INVALID_TIMESTAMP",
        "UNSUPPORTED_SASL_MECHANISM",
        "ILLEGAL_SASL_STATE",
        "UNSUPPORTED_VERSION",
        "TOPIC_ALREADY_EXISTS",
        "INVALID_PARTITIONS",
        "INVALID_REPLICATION_FACTOR",
        "INVALID_REPLICA_ASSIGNMENT",
        "INVALID_CONFIG",
        "NOT_CONTROLLER",
        "INVALID_REQUEST",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        "POLICY_VIOLATION",
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        "DUPLICATE_SEQUENCE_NUMBER",
        "INVALID_PRODUCER_EPOCH",
        "INVALID_TXN_STATE",
        "INVALID_PRODUCER_ID_MAPPING",
        "INVALID_TRANSACTION_TIMEOUT",
        "CONCURRENT_TRANSACTIONS",
        "TRANSACTION_COORDINATOR_FENCED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "SECURITY_DISABLED",
        "OPERATION_NOT_ATTEMPTED",
        "KAFKA_STORAGE_ERROR",
        "LOG_DIR_NOT_FOUND",
        "SASL_AUTHENTICATION_FAILED",
        "UNKNOWN_PRODUCER_ID",
        "REASSIGNMENT_IN_PROGRESS",
        "DELEGATION_TOKEN_AUTH_DISABLED",
        "DELEGATION_TOKEN_NOT_FOUND",
        "DELEGATION_TOKEN_OWNER_MISMATCH",
        "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        "DELEGATION_TOKEN_EXPIRED",
        "INVALID_PRINCIPAL_TYPE",
        "NON_EMPTY_GROUP",
        "GROUP_ID_NOT_FOUND",
        "FETCH_SESSION_ID_NOT_FOUND",
        "INVALID_FETCH_SESSION_EPOCH",
        "LISTENER_NOT_FOUND",
        "TOPIC_DELETION_DISABLED",
        "FENCED_LEADER_EPOCH",
        "UNKNOWN_LEADER_EPOCH",
        "UNSUPPORTED_COMPRESSION_TYPE",
        "STALE_BROKER_EPOCH",
        "OFFSET_NOT_AVAILABLE",
        "MEMBER_ID_REQUIRED",
        "PREFERRED_LEADER_NOT_AVAILABLE",
        "GROUP_MAX_SIZE_REACHED",
        "FENCED_INSTANCE_ID",
    ];
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        c if c >= 0 => NAMES.get(c as usize).copied().unwrap_or("UNKNOWN"),
        _ => "UNKNOWN",
    }
}

/// A cursor over a possibly cut message; every read is `None` past the end.
pub struct Rd<'a> {
    pub b: &'a [u8],
    pub pos: usize,
    pub flex: bool,
}

impl<'a> Rd<'a> {
    pub fn new(b: &'a [u8], pos: usize, flex: bool) -> Self {
        Rd { b, pos, flex }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    pub fn i8(&mut self) -> Option<i8> {
        self.take(1).map(|x| x[0] as i8)
    }

    pub fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|x| i16::from_be_bytes([x[0], x[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// An array length (`i32`, or compact `uvarint - 1`); `None` for null.
    pub fn array_len(&mut self) -> Option<Option<u64>> {
        if self.flex {
            Some(self.uvarint()?.checked_sub(1))
        } else {
            let n = self.i32()?;
            Some((n >= 0).then_some(n as u64))
        }
    }

    /// A (nullable) string, compact when flexible.
    pub fn string(&mut self) -> Option<Option<&'a [u8]>> {
        let len = if self.flex {
            self.uvarint()?.checked_sub(1)
        } else {
            let n = self.i16()?;
            (n >= 0).then_some(n as u64)
        };
        match len {
            Some(n) => Some(Some(self.take(usize::try_from(n).ok()?)?)),
            None => Some(None),
        }
    }

    /// Skips (nullable) bytes or records, compact when flexible.
    pub fn skip_bytes(&mut self) -> Option<()> {
        let len = if self.flex {
            self.uvarint()?.checked_sub(1)
        } else {
            let n = self.i32()?;
            (n >= 0).then_some(n as u64)
        };
        match len {
            Some(n) => self.skip(usize::try_from(n).ok()?),
            None => Some(()),
        }
    }

    /// Skips tagged fields (flexible versions only).
    pub fn tags(&mut self) -> Option<()> {
        if !self.flex {
            return Some(());
        }
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(usize::try_from(size).ok()?)?;
        }
        Some(())
    }

    /// A topic id (UUID) as 32 hex digits.
    pub fn uuid(&mut self) -> Option<Vec<u8>> {
        let b = self.take(16)?;
        Some(b.iter().flat_map(|x| format!("{x:02x}").into_bytes()).collect())
    }
}

/// A request header: what every request starts with after its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<Vec<u8>>,
    /// Offset of the body within the message (size prefix included).
    pub body: usize,
}

/// Parses a request header from a message that starts with its size.
pub fn request_header(m: &[u8], keep: usize) -> Option<RequestHeader> {
    let mut r = Rd::new(m, 4, false);
    let api_key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    // The header's client id stays a nullable non-compact string even in
    // flexible versions (request header v2).
    let client_id = r.string()?.map(|c| c.get(..keep.min(c.len())).unwrap_or_default().to_vec());
    if flexible(api_key, api_version) {
        r.flex = true;
        r.tags()?;
    }
    Some(RequestHeader { api_key, api_version, correlation_id, client_id, body: r.pos })
}

/// Whether `m` (starting with its size) looks like a request header.
pub fn request_plausible(m: &[u8]) -> bool {
    let mut r = Rd::new(m, 0, false);
    let (Some(size), Some(key), Some(version), Some(_), Some(cid)) =
        (r.i32(), r.i16(), r.i16(), r.i32(), r.i16())
    else {
        return false;
    };
    (10..MAX_MESSAGE as i32).contains(&size)
        && (0..=MAX_API_KEY).contains(&key)
        && api(key).0 != "Unknown"
        && (0..=MAX_API_VERSION).contains(&version)
        && (-1..=1024).contains(&cid)
        && i32::from(cid) + 10 <= size
}

/// Content-based detection: a request header whose client id is text.
pub fn probe(b: &[u8]) -> Confidence {
    if !request_plausible(b) {
        return Confidence::None;
    }
    let cid =
        i16::from_be_bytes([b.get(12).copied().unwrap_or(0), b.get(13).copied().unwrap_or(0)]);
    let id = b.get(14..(14 + cid.max(0) as usize).min(b.len()));
    let texty = id.is_some_and(|s| s.iter().all(|c| c.is_ascii_graphic()));
    let size = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    match (texty, size + 4 == b.len()) {
        (true, true) => Confidence::High,
        (true, false) | (false, true) => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// A topic and the partitions named with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topic {
    /// Name, or a topic id as hex in versions that use ids.
    pub name: Vec<u8>,
    pub partitions: Vec<Partition>,
    pub partition_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: i32,
    /// Responses only.
    pub error_code: Option<i16>,
}

/// Topic lists read so far; `complete` when the list ended inside the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topics {
    pub topics: Vec<Topic>,
    pub count: u64,
    pub complete: bool,
}

/// Reads an array of topics, each with an array of partitions, calling
/// `partition` to read one partition's fields after its index.
fn topics(
    r: &mut Rd<'_>,
    id_from: Option<i16>,
    version: i16,
    max: usize,
    keep: usize,
    mut partition: impl FnMut(&mut Rd<'_>) -> Option<Option<i16>>,
    out: &mut Topics,
) -> Option<()> {
    let n = r.array_len()?.unwrap_or(0);
    out.count = n;
    for _ in 0..n {
        let name = if id_from.is_some_and(|v| version >= v) {
            r.uuid()?
        } else {
            r.string()?.unwrap_or_default().to_vec()
        };
        let mut t = Topic {
            name: name.get(..keep.min(name.len())).unwrap_or_default().to_vec(),
            ..Topic::default()
        };
        let pn = r.array_len()?.unwrap_or(0);
        t.partition_count = pn;
        let keep_topic = out.topics.len() < max;
        let mut res = Some(());
        for _ in 0..pn {
            let Some(index) = r.i32() else {
                res = None;
                break;
            };
            // The index is kept even when the rest of the partition is cut.
            let kept = keep_topic && t.partitions.len() < max;
            if kept {
                t.partitions.push(Partition { index, error_code: None });
            }
            let Some(error_code) = partition(r) else {
                res = None;
                break;
            };
            if let Some(p) = t.partitions.last_mut().filter(|_| kept) {
                p.error_code = error_code;
            }
            if r.tags().is_none() {
                res = None;
                break;
            }
        }
        if keep_topic {
            out.topics.push(t);
        }
        res?;
        r.tags()?;
    }
    out.complete = true;
    Some(())
}

/// Produce and Fetch request bodies: `(acks, topics)`.
pub fn request_topics(
    m: &[u8],
    h: &RequestHeader,
    max: usize,
    keep: usize,
) -> (Option<i16>, Topics) {
    let mut r = Rd::new(m, h.body, flexible(h.api_key, h.api_version));
    let v = h.api_version;
    let mut out = Topics::default();
    let mut acks = None;
    let _ = (|| -> Option<()> {
        match h.api_key {
            PRODUCE => {
                if v >= 3 {
                    r.string()?; // transactional_id
                }
                acks = Some(r.i16()?);
                r.i32()?; // timeout_ms
                topics(&mut r, Some(13), v, max, keep, |r| r.skip_bytes().map(|_| None), &mut out)
            }
            FETCH => {
                if v <= 14 {
                    r.i32()?; // replica_id
                }
                r.skip(8)?; // max_wait_ms, min_bytes
                if v >= 3 {
                    r.i32()?; // max_bytes
                }
                if v >= 4 {
                    r.i8()?; // isolation_level
                }
                if v >= 7 {
                    r.skip(8)?; // session_id, session_epoch
                }
                let per_partition = 8
                    + 4
                    + if v >= 9 { 4 } else { 0 }
                    + if v >= 12 { 4 } else { 0 }
                    + if v >= 5 { 8 } else { 0 };
                topics(
                    &mut r,
                    Some(13),
                    v,
                    max,
                    keep,
                    |r| r.skip(per_partition).map(|_| None),
                    &mut out,
                )
            }
            _ => Some(()),
        }
    })();
    (acks, out)
}

/// A response's fields an item keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseBody {
    pub error_code: Option<i16>,
    pub throttle_ms: Option<i32>,
    pub topics: Topics,
}

/// Offset of a response body (after correlation id and, in flexible
/// versions but ApiVersions, the header's tagged fields).
pub fn response_body_offset(m: &[u8], key: i16, version: i16) -> Option<usize> {
    let mut r = Rd::new(m, 8, true);
    // ApiVersions responses keep header v0 so that any client can read
    // them, whatever version it asked for.
    if flexible(key, version) && key != API_VERSIONS {
        r.tags()?;
    }
    Some(r.pos)
}

/// Parses what an item keeps of a response body.
pub fn response_body(m: &[u8], key: i16, version: i16, max: usize, keep: usize) -> ResponseBody {
    let mut out = ResponseBody::default();
    let Some(at) = response_body_offset(m, key, version) else { return out };
    let v = version;
    let mut r = Rd::new(m, at, flexible(key, version));
    let _ = (|| -> Option<()> {
        match key {
            PRODUCE => {
                let per = |r: &mut Rd<'_>| -> Option<Option<i16>> {
                    let e = r.i16()?;
                    r.skip(8)?; // base_offset
                    if v >= 2 {
                        r.skip(8)?; // log_append_time_ms
                    }
                    if v >= 5 {
                        r.skip(8)?; // log_start_offset
                    }
                    if v >= 8 {
                        let n = r.array_len()?.unwrap_or(0);
                        for _ in 0..n {
                            r.i32()?;
                            r.string()?;
                            r.tags()?;
                        }
                        r.string()?; // error_message
                    }
                    Some(Some(e))
                };
                topics(&mut r, Some(13), v, max, keep, per, &mut out.topics)?;
                if v >= 1 {
                    out.throttle_ms = r.i32();
                }
            }
            FETCH => {
                if v >= 1 {
                    out.throttle_ms = Some(r.i32()?);
                }
                if v >= 7 {
                    out.error_code = Some(r.i16()?);
                    r.i32()?; // session_id
                }
                let per = |r: &mut Rd<'_>| -> Option<Option<i16>> {
                    let e = r.i16()?;
                    r.skip(8)?; // high_watermark
                    if v >= 4 {
                        r.skip(8)?; // last_stable_offset
                    }
                    if v >= 5 {
                        r.skip(8)?; // log_start_offset
                    }
                    if v >= 4 {
                        let n = r.array_len()?.unwrap_or(0);
                        for _ in 0..n {
                            r.skip(16)?;
                            r.tags()?;
                        }
                    }
                    if v >= 11 {
                        r.i32()?; // preferred_read_replica
                    }
                    r.skip_bytes()?; // records
                    Some(Some(e))
                };
                topics(&mut r, Some(13), v, max, keep, per, &mut out.topics)?;
            }
            // The error code comes first.
            18 | 17 | 36 => out.error_code = Some(r.i16()?),
            // Throttle time first (from v1 for these), then the error code.
            10 | 12 | 13 | 14 | 16 if v == 0 => out.error_code = Some(r.i16()?),
            11 if v < 2 => out.error_code = Some(r.i16()?),
            10 if v >= 4 => {}
            10..=14 | 16 | 22 | 25 | 26 => {
                out.throttle_ms = Some(r.i32()?);
                out.error_code = Some(r.i16()?);
            }
            _ => {}
        }
        Some(())
    })();
    if out.error_code.is_none() {
        // Produce and Fetch: the first partition error that is not NONE,
        // else NONE when any partition answered.
        let mut parts =
            out.topics.topics.iter().flat_map(|t| t.partitions.iter().filter_map(|p| p.error_code));
        let first = parts.clone().next();
        out.error_code = parts.find(|e| *e != 0).or(first);
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A message: size prefix then `body`.
    pub fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// A request header v1 (or v2 when flexible) followed by `body`.
    pub fn request(key: i16, version: i16, corr: i32, client: &str, body: &[u8]) -> Vec<u8> {
        let mut v = key.to_be_bytes().to_vec();
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&corr.to_be_bytes());
        v.extend_from_slice(&(client.len() as i16).to_be_bytes());
        v.extend_from_slice(client.as_bytes());
        if flexible(key, version) {
            v.push(0);
        }
        v.extend_from_slice(body);
        framed(&v)
    }

    /// Produce v2: one topic, partitions each with `records` bytes.
    pub fn produce_v2(
        corr: i32,
        topic: &str,
        partitions: &[i32],
        records: usize,
        acks: i16,
    ) -> Vec<u8> {
        let mut b = acks.to_be_bytes().to_vec();
        b.extend_from_slice(&1500i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        b.extend_from_slice(topic.as_bytes());
        b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for p in partitions {
            b.extend_from_slice(&p.to_be_bytes());
            b.extend_from_slice(&(records as i32).to_be_bytes());
            b.extend(std::iter::repeat_n(0xab, records));
        }
        request(PRODUCE, 2, corr, "producer", &b)
    }

    /// Produce v2 response for `produce_v2`.
    pub fn produce_v2_response(corr: i32, topic: &str, partitions: &[(i32, i16)]) -> Vec<u8> {
        let mut b = corr.to_be_bytes().to_vec();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        b.extend_from_slice(topic.as_bytes());
        b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for (p, e) in partitions {
            b.extend_from_slice(&p.to_be_bytes());
            b.extend_from_slice(&e.to_be_bytes());
            b.extend_from_slice(&[0; 16]);
        }
        b.extend_from_slice(&0i32.to_be_bytes());
        framed(&b)
    }

    #[test]
    fn headers_and_flexible_versions() {
        let m = request(18, 3, 2, "adminclient-1", b"\x12apache-kafka-java\x063.0.0\0");
        let h = request_header(&m, 64).unwrap();
        assert_eq!(
            (h.api_key, h.api_version, h.correlation_id, h.client_id.as_deref()),
            (18, 3, 2, Some(&b"adminclient-1"[..]))
        );
        assert_eq!(h.body, 4 + 8 + 2 + 13 + 1);
        assert!(flexible(1, 12) && !flexible(1, 11) && !flexible(17, 1));
        assert_eq!(probe(&m), Confidence::High);
        assert_eq!(probe(&m[..20]), Confidence::Medium);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Confidence::None);
        assert_eq!(api(1).0, "Fetch");
        assert_eq!(
            (error_name(0), error_name(-1), error_name(3), error_name(999)),
            ("NONE", "UNKNOWN_SERVER_ERROR", "UNKNOWN_TOPIC_OR_PARTITION", "UNKNOWN")
        );
    }

    #[test]
    fn varints_compact_strings_and_tags() {
        let mut r =
            Rd::new(&[0x96, 0x01, 0x04, b'a', b'b', b'c', 0x01, 0x00, 0x00, 0x02, 0x01], 0, true);
        assert_eq!(r.uvarint(), Some(150));
        assert_eq!(r.string(), Some(Some(&b"abc"[..])));
        assert_eq!(r.string(), Some(Some(&b""[..])));
        assert_eq!(r.string(), Some(None));
        assert_eq!(r.tags(), Some(()));
        assert_eq!(r.array_len(), Some(Some(1)));
        assert_eq!(r.uvarint(), Some(1));
        assert_eq!(r.i8(), None);
        let mut r = Rd::new(&[0xff; 12], 0, true);
        assert_eq!(r.uvarint(), None, "over-long varint");
    }

    #[test]
    fn produce_topics_and_partition_errors() {
        let m = produce_v2(1, "topic2", &[0, 3], 61, 1);
        let h = request_header(&m, 64).unwrap();
        let (acks, t) = request_topics(&m, &h, 8, 64);
        assert_eq!(acks, Some(1));
        assert!(t.complete);
        assert_eq!(t.topics[0].name, b"topic2");
        assert_eq!(t.topics[0].partitions.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 3]);
        // A cut message keeps what it could read.
        let (_, t) = request_topics(&m[..60], &h, 8, 64);
        assert!(!t.complete);
        assert_eq!(t.topics.len(), 1);
        assert_eq!(t.topics[0].partitions.len(), 1);
        let resp = produce_v2_response(1, "topic2", &[(0, 0), (3, 6)]);
        let body = response_body(&resp, PRODUCE, 2, 8, 64);
        assert_eq!(body.error_code, Some(6));
        assert_eq!(body.throttle_ms, Some(0));
    }

    #[test]
    fn fetch_v12_request_and_response() {
        // From a real consumer (flexible v12, one topic, one partition).
        let body = [
            &[
                0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0xf4, 0, 0, 0, 1, 3, 0x20, 0, 0, 0, 0x2f, 0x26,
                0x71, 0xc5, 0, 0, 0x34, 0x20,
            ][..],
            &[2, 9],
            b"zqy-test",
            &[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x24, 0xff, 0xff, 0xff, 0xff],
            &[0xff; 8],
            &[0, 0x10, 0, 0, 0, 0, 1, 1, 0],
        ]
        .concat();
        let m = request(FETCH, 12, 15603, "consumer-console-consumer-8919-1", &body);
        let h = request_header(&m, 64).unwrap();
        let (_, t) = request_topics(&m, &h, 8, 64);
        assert!(t.complete, "{t:?}");
        assert_eq!(
            (t.topics[0].name.as_slice(), t.topics[0].partitions[0].index),
            (&b"zqy-test"[..], 0)
        );
        let resp = framed(&[0, 0, 0x3c, 0xf3, 0, 0, 0, 0, 0, 0, 0, 0x2f, 0x26, 0x71, 0xc5, 1, 0]);
        let body = response_body(&resp, FETCH, 12, 8, 64);
        assert_eq!((body.error_code, body.throttle_ms, body.topics.count), (Some(0), Some(0), 0));
    }
}
