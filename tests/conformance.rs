//! Conformance: `skua dissect` finds the transactions Zeek, Suricata and
//! DeepFlow found in their own test captures (`../shared/corpus`): every
//! `.http.jsonl` (HTTP/1.x, HTTP/2, gRPC), `.dns.jsonl`, `.redis.jsonl`,
//! `.postgresql.jsonl`, `.kafka.jsonl`, `.mysql.jsonl`, `.mongodb.jsonl`,
//! `.tls.jsonl` and `.websocket.jsonl`.
//!
//! Rows are compared as multisets: each expected row must be matched by a
//! distinct item on the fields the row asserts, one matcher per protocol
//! (HTTP: method, host, percent-decoded URI, status, body sizes, HTTP/2
//! stream id and version, gRPC status; DNS: query, type, rcode, the
//! addresses answered; Redis: command, key, value, success, reply;
//! PostgreSQL: user, database, application, frontend message and text,
//! backend outcome, rows, and the facts a Suricata row's `_raw` filter
//! checks; Kafka: correlation id, API key and version, client id, topic,
//! partition, sizes, error code; MySQL: command and its argument, success,
//! affected rows, error text, schema; MongoDB: opcodes, command,
//! collection, database, outcome and error; TLS: SNI, versions (spellings
//! normalised), cipher, curve, ALPN, resumption, alerts, certificate
//! fields, JA3 and JA4; WebSocket: the upgrade's host, URI, user agent,
//! subprotocols and extensions, a frame's opcode and mask; every
//! protocol: the connection's
//! addresses and ports). Suricata rows carry `_count`: exactly that many
//! items must match. A capture whose rows do not all match must carry a
//! one-line reason in `KNOWN`, and a capture listed there must still miss
//! something (so the list cannot go stale). Captures in `OPEN` are
//! differences not yet explained either way: they may not lose a matched row
//! (the floor), and they are the work left in the reassembly issue.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use skua_suite::*;

/// Captures where skua and the peer disagree, and why skua is right, with
/// the exact number of rows that differ (more is a regression).
const KNOWN: &[(&str, usize, &str)] = &[
    (
        "s_http2-h2c-upgrade.pcap",
        2,
        "Suricata logs the connection's stream-0 SETTINGS frames as http events; skua's items are request/response streams, and SETTINGS are connection state, not transactions",
    ),
    (
        "s_http2-prior-knowledge.pcap",
        3,
        "Suricata logs stream-0 frames (SETTINGS both ways, GOAWAY NO_ERROR) as http events; skua's items are request/response streams, and those frames are connection state, not transactions",
    ),
    (
        "z_http_methods.pcap",
        8,
        "8 versionless requests (`GET /HTTP/1.1` + headers): Zeek reads the answers as HTTP/0.9 (status 0, body = whole response); the server sent `HTTP/1.0 4xx` heads, which skua reports",
    ),
    (
        "z_http_no_crlf.pcap",
        5,
        "request bodies: skua counts the Content-Length bytes on the wire (6084 …); Zeek adds 2 for a CRLF its MIME reader supplies after the last line",
    ),
    (
        "z_http_on-port-22.pcap",
        1,
        "close-delimited body: 12630 bytes on the wire (12649 sent − 19 of head); Zeek adds 2 for a CRLF the last line does not have",
    ),
];

/// Differences not yet explained, with the rows matched today as a floor.
const OPEN: &[(&str, usize, &str)] = &[(
    "z_ldap_starttls.pcap",
    0,
    "TLS after an LDAP StartTLS on port 389: the flow is LDAP until its extended response, and the LDAP dissector (issue 31's second half) is what will hand it to TLS, as MySQL's SSL request does",
)];

/// Expected-row protocols compared, and the `--protocol` list that
/// dissects them (the peers' "http" covers HTTP/2 and gRPC).
const PROTOCOLS: &[(&str, &str)] = &[
    ("http", "http,http2,grpc"),
    ("dns", "dns"),
    ("redis", "redis"),
    ("postgresql", "postgresql"),
    ("kafka", "kafka"),
    ("mysql", "mysql"),
    ("mongodb", "mongodb"),
    ("tls", "tls"),
    ("websocket", "http,websocket"),
];

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16);
    while i < b.len() {
        if b[i] == b'%' {
            if i + 5 < b.len() && (b[i + 1] == b'u' || b[i + 1] == b'U') {
                let d: Option<Vec<u32>> =
                    b[i + 2..(i + 6).min(b.len())].iter().map(|&c| hex(c)).collect();
                if let Some(d) = d.filter(|d| d.len() == 4) {
                    let cp = d.iter().fold(0, |a, x| a * 16 + x);
                    if let Some(ch) = char::from_u32(cp) {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        i += 6;
                        continue;
                    }
                }
            }
            if let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c)))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header(req: &Value, name: &str) -> Option<String> {
    req["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str().map(str::to_string))
}

fn rcode_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_uppercase()),
        Value::Number(n) => Some(
            match n.as_u64()? {
                0 => "NOERROR",
                1 => "FORMERR",
                2 => "SERVFAIL",
                3 => "NXDOMAIN",
                4 => "NOTIMP",
                5 => "REFUSED",
                _ => return Some(n.to_string()),
            }
            .to_string(),
        ),
        _ => None,
    }
}

/// A JSON value as the text a peer logs (`2` and `"2"` alike).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `SCRAM-SHA-256` and Suricata's `scram_SHA256` alike.
fn squash(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// PostgreSQL facts of a Suricata row's `_raw` filter (its checks), on
/// skua's item. Keys that name Suricata internals (`tx_id`, `pcap_cnt`,
/// `data_size`), secrets skua never keeps (`secret_key`, `sasl_response`,
/// `sasl_param`) or ParameterStatus under Suricata's own renaming are not
/// compared.
fn pg_raw_matches(raw: &Value, req: &Value, resp: &Value) -> bool {
    let Some(raw) = raw.as_object() else { return true };
    let auth =
        |step: &str| resp["authentication"].as_array().is_some_and(|a| a.iter().any(|x| x == step));
    raw.iter().all(|(k, want)| match k.as_str() {
        "pgsql.request.message" => match want.as_str() {
            Some("SSL Request") => req["type"] == "ssl_request",
            Some("termination_message") => req["type"] == "terminate",
            _ => true,
        },
        "pgsql.response.ssl_accepted" => resp["sslAccepted"] == *want,
        "pgsql.request.protocol_version" => req["protocolVersion"] == *want,
        "pgsql.request.startup_parameters.user" => req["user"] == *want,
        k if k.starts_with("pgsql.request.startup_parameters.optional_parameters") => {
            let name = k.rsplit('.').next().unwrap_or("");
            req["parameters"][name] == *want
        }
        "pgsql.request.sasl_authentication_mechanism" => {
            req["saslMechanism"].as_str().map(squash) == want.as_str().map(squash)
        }
        "pgsql.response.message" => match want.as_str() {
            Some("authentication_sasl") => auth("SASL"),
            Some("authentication_sasl_continue") => auth("SASLContinue"),
            Some("authentication_ok") => resp["authenticated"] == true,
            Some(m) => resp["error"]["message"] == m,
            None => true,
        },
        "pgsql.response.authentication_sasl_final" => auth("SASLFinal"),
        "pgsql.response.process_id" => resp["backendPid"] == *want,
        "pgsql.request.simple_query" => req["query"] == *want,
        "pgsql.response.command_completed" => resp["commandTag"] == *want,
        "pgsql.response.code" => resp["error"]["code"] == *want,
        "pgsql.response.routine" => resp["error"]["routine"] == *want,
        "pgsql.response.severity_localizable" | "pgsql.response.severity_non_localizable" => {
            resp["error"]["severity"] == *want
        }
        "pgsql.response.data_rows" => resp["rows"] == *want,
        "pgsql.response.field_count" => resp["fields"] == *want,
        _ => true,
    })
}

/// Zeek's `backend_arg`: authentication steps, then `Key=Value` fields of
/// an error or notice (`Code=28P01`).
fn pg_backend_arg_matches(want: &str, resp: &Value) -> bool {
    let steps: Vec<&str> = want.split(',').take_while(|t| !t.contains('=')).collect();
    let auth: Vec<&str> = resp["authentication"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if !steps.is_empty() && steps != auth {
        return false;
    }
    match want.split(',').find_map(|t| t.strip_prefix("Code=")) {
        Some(code) => resp["error"]["code"] == code || resp["notices"][0]["code"] == code,
        None => true,
    }
}

/// Addresses compared as addresses: Suricata writes IPv6 uncompressed
/// (`2600:1f13:00f8:…`), skua as Rust does (`2600:1f13:f8:…`).
fn same_ip(got: &Value, want: &Value) -> bool {
    let ip = |v: &Value| v.as_str().and_then(|s| s.parse::<std::net::IpAddr>().ok());
    match (ip(got), ip(want)) {
        (Some(a), Some(b)) => a == b,
        _ => got == want,
    }
}

/// A TLS version as the peers write it (`TLSv12`, `TLS 1.2`, `TLSv1`,
/// `TLS 1.3 draft-22`) in skua's spelling.
fn tls_version(v: &str) -> String {
    let v = v.trim();
    match v {
        "TLSv10" | "TLSv1" | "TLS 1.0" => "TLS 1.0".into(),
        "TLSv11" | "TLS 1.1" => "TLS 1.1".into(),
        "TLSv12" | "TLS 1.2" => "TLS 1.2".into(),
        "TLSv13" | "TLS 1.3" => "TLS 1.3".into(),
        "SSLv3" | "SSL 3.0" => "SSL 3.0".into(),
        _ => v.replace("TLSv13-draft", "TLS 1.3 draft-"),
    }
}

/// A distinguished name as a set of `key=value` parts: Zeek writes
/// `CN=x,O=y` (RFC 2253 order), Suricata and skua `O=y, CN=x`.
fn dn_parts(dn: &str) -> Vec<String> {
    let mut v: Vec<String> =
        dn.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
    v.sort();
    v
}

/// MySQL: Zeek's `arg` is the command's argument, whichever field skua
/// keeps it in.
fn mysql_arg(req: &Value, want: &str) -> bool {
    let field = match req["command"].as_str() {
        Some("login" | "change_user") => "user",
        Some("query" | "stmt_prepare") => "query",
        Some("init_db") => "database",
        Some("field_list") => "table",
        _ => return want.is_empty(),
    };
    req[field].as_str() == Some(want)
}

/// Whether `item` agrees with every comparable field `row` asserts.
fn matches(proto: &str, row: &Value, item: &Value) -> bool {
    let fields: Vec<&str> = row["_fields"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
        .unwrap_or_default();
    let req = &item["request"];
    let resp = &item["response"];
    if proto == "postgresql" && !pg_raw_matches(&row["_raw"], req, resp) {
        return false;
    }
    // A DNS response echoes its question: it names what was resolved even
    // when the query was not captured.
    // A missing side is `{}`; a WebSocket item is a client's message
    // (request) or a server's (response).
    let req_missing = req.as_object().is_none_or(|o| o.is_empty());
    let ws = if req_missing { resp } else { req };
    let question =
        if req.get("questions").is_none() { &resp["questions"][0] } else { &req["questions"][0] };
    for f in fields {
        let want = &row[f];
        if want.is_null() {
            continue;
        }
        let ok = match (proto, f) {
            ("http", "method") => req["method"].as_str() == want.as_str(),
            ("http", "host") => header(req, "host").as_deref() == want.as_str(),
            ("http", "uri") => {
                req["url"].as_str().map(percent_decode).as_deref()
                    == want.as_str().map(percent_decode).as_deref()
            }
            ("http", "status_code") => resp["status"].as_u64() == want.as_u64(),
            // No request captured: no request body either (the peers write 0).
            ("http", "request_body_len") => {
                // (A side that was not captured is `{}`.)
                let none = req.as_object().is_none_or(serde_json::Map::is_empty);
                req["bodySize"].as_u64().or(none.then_some(0)) == want.as_u64()
            }
            ("http", "response_body_len") => resp["content"]["size"].as_u64() == want.as_u64(),
            ("dns", "query") => {
                question["name"].as_str().map(str::to_lowercase)
                    == want.as_str().map(str::to_lowercase)
            }
            ("dns", "qtype_name") => question["type"].as_str() == want.as_str(),
            ("dns", "rcode_name") => rcode_name(&resp["code"]).as_deref() == want.as_str(),
            (_, "orig_h") => same_ip(&item["src"]["ip"], want),
            (_, "resp_h") => same_ip(&item["dst"]["ip"], want),
            (_, "orig_p") => text(&item["src"]["port"]) == text(want),
            (_, "resp_p") => text(&item["dst"]["port"]) == text(want),
            (_, "proto") if proto != "dns" => {
                item["protocol"]["layer4"].as_str()
                    == want.as_str().map(str::to_lowercase).as_deref()
            }
            // HTTP/2 and gRPC.
            // HTTP/2 rows only: HTTP/1.x versions were never compared (Zeek
            // logs the request's, HTTP/0.9 answers included, as the
            // reassembly issue's table explains).
            ("http", "version") if want == "2" => item["protocol"]["version"] == "2",
            ("http", "h2_stream_id") => req["streamId"] == *want || resp["streamId"] == *want,
            ("http", "user_agent") => header(req, "user-agent").as_deref() == want.as_str(),
            // Suricata's `http.length`: the response body as sent.
            ("http", "suricata_length") => resp["bodySize"] == *want,
            ("http", "df_proto") => match want.as_str() {
                Some("Grpc") => item["protocol"]["name"] == "grpc",
                Some("Http2") => {
                    item["protocol"]["name"] == "http" && item["protocol"]["version"] == "2"
                }
                _ => true,
            },
            ("http", "req_content_length") => req["bodySize"] == *want,
            ("http", "resp_content_length") => resp["bodySize"] == *want,
            ("http", "grpc_status_code") => resp["grpc"]["status"] == *want,
            // Redis.
            ("redis", "cmd_name") => {
                req["command"].as_str().map(str::to_uppercase)
                    == want.as_str().map(str::to_uppercase)
            }
            ("redis", "cmd_key") => req["key"] == *want,
            ("redis", "cmd_value") => req["args"][1] == *want,
            ("redis", "success") => resp["type"].as_str().map(|t| t != "error") == want.as_bool(),
            ("redis", "reply_value") => text(&resp["value"]) == text(want),
            // PostgreSQL (Zeek's columns; Suricata's `_raw` above).
            ("postgresql", "user") => req["user"] == *want,
            ("postgresql", "database") => req["database"] == *want,
            ("postgresql", "application_name") => req["applicationName"] == *want,
            ("postgresql", "frontend") => match want.as_str() {
                Some("startup") => req["type"] == "startup",
                Some("simple_query") => req["type"] == "query",
                Some("terminate") => req["type"] == "terminate",
                _ => true,
            },
            ("postgresql", "frontend_arg") => req["query"] == *want,
            ("postgresql", "command_completed") => resp["commandTag"] == *want,
            ("postgresql", "backend") => {
                let b = want.as_str().unwrap_or("");
                (!b.contains("auth_ok") || resp["authenticated"] == true)
                    && (!b.contains("error") || !resp["error"].is_null())
            }
            ("postgresql", "backend_arg") => {
                pg_backend_arg_matches(want.as_str().unwrap_or(""), resp)
            }
            ("postgresql", "success") => resp["success"] == *want,
            ("postgresql", "rows") => resp["rows"] == *want,
            // Suricata numbers a connection's transactions; skua folds the
            // SASL round trips into the startup item, which covers them.
            ("postgresql", "pg_tx_id") => {
                let id = want.as_u64().unwrap_or(0);
                item["_pg_tx"][0].as_u64().unwrap_or(0) <= id
                    && id <= item["_pg_tx"][1].as_u64().unwrap_or(0)
            }
            // Kafka (DeepFlow's names).
            ("kafka", "correlation_id") => req["correlationId"] == *want,
            ("kafka", "api_key") => req["apiKey"] == *want,
            ("kafka", "api_version") => req["apiVersion"] == *want,
            ("kafka", "client_id") => req["clientId"] == *want,
            ("kafka", "topic_name") => req["topics"][0]["name"] == *want,
            // DeepFlow writes 0 for an API without partitions.
            ("kafka", "partition") => {
                let first = &req["topics"][0]["partitions"][0];
                if first.is_null() {
                    want.as_u64() == Some(0)
                } else {
                    *first == *want
                }
            }
            ("kafka", "req_msg_size") => req["length"] == *want,
            ("kafka", "resp_msg_size") => resp["length"] == *want,
            ("kafka", "status_code") => resp["errorCode"] == *want,
            ("kafka", "status") => match want.as_str() {
                Some("Ok") => resp["errorCode"] == 0,
                _ => resp["errorCode"].as_i64().is_some_and(|c| c != 0),
            },
            // MySQL (Zeek's and DeepFlow's names).
            ("mysql", "cmd") => req["command"] == *want,
            ("mysql", "arg") => mysql_arg(req, want.as_str().unwrap_or("")),
            ("mysql", "success") => resp["success"] == *want,
            // Zeek's `rows` is the OK packet's affected rows (0 after a result set).
            ("mysql", "rows") => {
                resp["affectedRows"].as_u64().unwrap_or(0) == want.as_u64().unwrap_or(0)
            }
            ("mysql", "error_msg") => resp["error"]["message"] == *want,
            ("mysql", "database") => req["database"] == *want,
            // MongoDB (DeepFlow's names).
            ("mongodb", "opcode") => req["opCode"] == *want,
            ("mongodb", "command") => req["command"] == *want,
            ("mongodb", "request_id") => req["requestId"] == *want,
            ("mongodb", "collection") => req["collection"] == *want,
            ("mongodb", "database") => req["database"] == *want,
            ("mongodb", "success") => resp["success"] == *want,
            ("mongodb", "error_code") => resp["code"] == *want,
            ("mongodb", "error_msg") => resp["errmsg"] == *want,
            ("mongodb", "resp_opcode") => resp["opCode"] == *want,
            // TLS (Zeek's and Suricata's names).
            ("tls", "server_name") => req["sni"] == *want,
            ("tls", "version") => {
                resp["version"].as_str().map(tls_version) == want.as_str().map(tls_version)
            }
            ("tls", "cipher") => resp["cipher"] == *want,
            ("tls", "cipher_id") => resp["cipherId"] == *want,
            ("tls", "curve") => resp["curve"] == *want,
            ("tls", "resumed") => resp["resumed"] == *want,
            ("tls", "established") => resp["established"] == *want,
            ("tls", "last_alert") => resp["alert"]["description"] == *want,
            ("tls", "alpn") => resp["alpn"] == *want,
            ("tls", "subject") => {
                resp["certificate"]["subject"].as_str().map(dn_parts) == want.as_str().map(dn_parts)
            }
            ("tls", "issuer") => {
                resp["certificate"]["issuer"].as_str().map(dn_parts) == want.as_str().map(dn_parts)
            }
            ("tls", "serial") => resp["certificate"]["serial"] == *want,
            ("tls", "cert_fingerprint") => resp["certificate"]["fingerprint"] == *want,
            ("tls", "not_before") => {
                resp["certificate"]["notBefore"].as_str().map(|t| t.trim_end_matches('Z'))
                    == want.as_str()
            }
            ("tls", "not_after") => {
                resp["certificate"]["notAfter"].as_str().map(|t| t.trim_end_matches('Z'))
                    == want.as_str()
            }
            ("tls", "ja3") => req["ja3Hash"] == *want,
            ("tls", "ja3_string") => req["ja3"] == *want,
            ("tls", "ja4") => req["ja4"] == *want,
            // Zeek's rows are per upgrade: every message item carries it.
            ("websocket", "host") => ws["handshake"]["host"] == *want,
            ("websocket", "uri") => {
                ws["handshake"]["path"].as_str().map(percent_decode).as_deref()
                    == want.as_str().map(percent_decode).as_deref()
            }
            ("websocket", "user_agent") => ws["handshake"]["userAgent"] == *want,
            ("websocket", "subprotocol") => ws["handshake"]["subprotocol"] == *want,
            ("websocket", "client_protocols") => ws["handshake"]["clientProtocols"] == *want,
            ("websocket", "client_extensions") => ws["handshake"]["clientExtensions"] == *want,
            ("websocket", "server_extensions") => ws["handshake"]["serverExtensions"] == *want,
            // Suricata's rows are frames; skua's messages of one frame are
            // the same thing.
            ("websocket", "opcode") => ws["opcode"] == *want,
            ("websocket", "mask") => ws["mask"] == *want,
            ("dns", "answers") => {
                let mut exp: Vec<String> = want
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str())
                            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let mut got: Vec<String> = resp["answers"]
                    .as_array()
                    .map(|a| {
                        a.iter().filter_map(|x| x["ip"].as_str()).map(str::to_string).collect()
                    })
                    .unwrap_or_default();
                exp.sort();
                got.sort();
                exp == got
            }
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

struct Row {
    capture: String,
    proto: String,
    expected: usize,
    found: usize,
    matched: usize,
    note: String,
}

/// Suricata's PostgreSQL transaction numbers each item covers: one per
/// frontend message that starts a transaction (a startup-phase message,
/// each password/SASL message, each query or batch), counted per stream.
fn number_pg_transactions(items: &mut [Value]) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| {
        (
            items[i]["stream"].as_str().unwrap_or("").to_string(),
            items[i]["index"].as_u64().unwrap_or(0),
        )
    });
    let mut next: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for i in order {
        let stream = items[i]["stream"].as_str().unwrap_or("").to_string();
        let req = &items[i]["request"];
        let extra = if req["type"] == "startup" {
            req["messages"].as_str().map_or(0, |m| m.matches('p').count() as u64)
        } else {
            0
        };
        let lo = *next.get(&stream).unwrap_or(&1);
        next.insert(stream, lo + 1 + extra);
        items[i]["_pg_tx"] = serde_json::json!([lo, lo + extra]);
    }
}

fn check(pcap: &Path, proto: &str, rows: &[Value]) -> Row {
    let name = pcap.file_name().unwrap().to_string_lossy().to_string();
    let enable = PROTOCOLS.iter().find(|(p, _)| *p == proto).map_or(proto, |(_, e)| *e);
    let out = skua(&["dissect", pcap.to_str().unwrap(), "--jsonl", "--protocol", enable]);
    assert!(out.status.success(), "dissect {name}: {}", String::from_utf8_lossy(&out.stderr));
    let mut items: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if proto == "postgresql" {
        number_pg_transactions(&mut items);
    }
    if proto == "websocket" {
        // The upgrade's HTTP item is a row of the http tables.
        items.retain(|i| i["protocol"]["name"] == "ws");
    }
    if proto == "tls" {
        // The peers log handshakes; skua's connection items (the bytes
        // after a handshake) are not rows of theirs.
        items.retain(|i| i["request"]["type"] != "connection");
    }
    let mut used = vec![false; items.len()];
    let expected = rows.len();
    let mut matched = 0;
    for row in rows {
        if let Some(count) = row["_count"].as_u64() {
            // A partial expectation: exactly `count` items match the filter.
            if items.iter().filter(|i| matches(proto, row, i)).count() as u64 == count {
                matched += 1;
            }
            continue;
        }
        if let Some(k) = (0..items.len()).find(|&k| !used[k] && matches(proto, row, &items[k])) {
            used[k] = true;
            matched += 1;
        }
    }
    Row {
        capture: name,
        proto: proto.to_string(),
        expected,
        found: items.len(),
        matched,
        note: String::new(),
    }
}

/// The skip rule on the corpus: pointed at a corpus that is not there, the
/// conformance test fails under CI naming it, and elsewhere passes with one
/// skip line.
#[test]
fn without_the_corpus_conformance_fails_under_ci_and_skips_elsewhere() {
    let gone = [("SKUA_CORPUS", "/nonexistent/corpus")];
    let out = skip::rerun("every_protocol_matches_the_peers", &gone, true);
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "passed without the corpus under CI:\n{said}");
    assert!(said.contains("missing under CI: the conformance corpus"), "{said}");

    let out = skip::rerun("every_protocol_matches_the_peers", &gone, false);
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("SKIPPED: every_protocol_matches_the_peers").count(), 1, "{said}");
}

#[test]
fn every_protocol_matches_the_peers() {
    let Some(dir) = corpus_dir() else { return };
    let known: BTreeMap<&str, (usize, &str)> =
        KNOWN.iter().map(|(k, n, why)| (*k, (*n, *why))).collect();
    let open: BTreeMap<&str, (usize, &str)> =
        OPEN.iter().map(|(k, n, why)| (*k, (*n, *why))).collect();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("expected"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    for exp in files {
        let fname = exp.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = fname.strip_suffix(".jsonl") else { continue };
        let Some((pcap, proto)) = stem.rsplit_once('.') else { continue };
        if !PROTOCOLS.iter().any(|(p, _)| *p == proto) {
            continue;
        }
        let rows: Vec<Value> = std::fs::read_to_string(&exp)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut row = check(&dir.join("pcaps").join(pcap), proto, &rows);
        let all = row.matched == row.expected;
        match (all, known.get(pcap), open.get(pcap)) {
            (true, None, None) => {}
            (true, _, _) => {
                failures.push(format!("{pcap}: matches now; remove it from KNOWN/OPEN"))
            }
            (false, Some((misses, why)), _) => {
                row.note = (*why).to_string();
                if row.expected - row.matched != *misses {
                    failures.push(format!(
                        "{pcap} ({proto}): {} rows differ, {misses} explained",
                        row.expected - row.matched
                    ));
                }
            }
            (false, None, Some((floor, why))) => {
                row.note = format!("open: {why}");
                if row.matched < *floor {
                    failures.push(format!(
                        "{pcap} ({proto}): {} rows matched, fewer than the {floor} matched before",
                        row.matched
                    ));
                }
            }
            (false, None, None) => failures.push(format!(
                "{pcap} ({proto}): {} of {} rows matched",
                row.matched, row.expected
            )),
        }
        table.push(row);
    }
    assert!(table.len() > 40, "only {} expected tables compared", table.len());
    println!(
        "{:<42} {:<10} {:>8} {:>6} {:>8}  note",
        "capture", "proto", "expected", "found", "matched"
    );
    for r in &table {
        println!(
            "{:<42} {:<10} {:>8} {:>6} {:>8}  {}",
            r.capture, r.proto, r.expected, r.found, r.matched, r.note
        );
    }
    assert!(failures.is_empty(), "conformance failures:\n{}", failures.join("\n"));
}
