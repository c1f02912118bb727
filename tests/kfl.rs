//! KFL against real traffic: KFL2 and KFL1 queries evaluated on the items
//! skua dissects from `../shared/corpus` captures, each with the set of
//! items it must match, written by hand from the captures' transactions
//! (the peers' `expected/*.jsonl` rows: methods, URIs, statuses, queries,
//! commands) — never from the engine's own output.
//!
//! Every item is named by a label made from its Rust fields by this test
//! (`get GET /download/CHANGES.bro-aux.txt 200`), and a case lists the
//! labels of the items it matches; all other items of the loaded captures
//! must not match. `KFL_DUMP=1` prints the labels (to write a new case).

use std::path::Path;

use dataplane::dissect::Dissector;
use dataplane::source::file::{FileSource, Input, Pace};
use dataplane::source::{PacketSource, Poll};
use dataplane::{parse, CoreCounters, Frame, PacketHandler};
use reassembly::item::Message;
use reassembly::kfl::{Filter, Language};
use reassembly::{Item, NodeInfo, ReassemblyConfig};
use skua_suite::*;

/// The captures, each with its short name and the number of items skua
/// finds in it (the transactions of its expected rows, see each case).
const CAPTURES: &[(&str, &str, usize)] = &[
    ("get", "z_http_get.pcap", 1),
    ("pipe", "z_http_pipelined-requests.pcap", 5),
    ("gzip", "z_http_x-gzip.pcap", 1),
    ("cont", "z_http_100-continue.pcap", 1),
    ("grpc", "d_grpc_h2c.pcap", 1),
    ("h2", "s_http2-prior-knowledge.pcap", 6),
    ("dns53", "z_dns53.pcap", 1),
    ("txt", "z_dns-txt-multiple.pcap", 1),
    ("aaaa", "z_dns-zero-RRs.pcap", 1),
    ("tkey", "z_dns-tcp-tkey.pcap", 1),
    ("rping", "z_redis_pipelining.pcap", 3),
    ("pubsub", "z_redis_pubsub.pcap", 10),
    ("produce", "d_kafka_produce-v2.pcap", 1),
    ("apiv", "d_kafka_api-versions-v3.pcap", 1),
    ("fetch", "d_kafka_fetch-v12.pcap", 1),
    ("pg", "z_pg_create-insert-select.pcap", 9),
    ("pgfail", "z_pg_login-fail.pcap", 1),
];

/// An item as this test names it: capture, then the gist of its request
/// and response, from the Rust values (not through KFL).
fn label(cap: &str, i: &Item) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let gist = match (&i.exchange.request, &i.exchange.response) {
        (Some(Message::Http(q)), r) => {
            let status = match r {
                Some(Message::Http(r)) => r.status.to_string(),
                _ => "-".into(),
            };
            format!("{} {} {status}", s(q.method()), s(q.target()))
        }
        (Some(Message::Http2(_) | Message::Grpc(_)), r) => {
            let q = match &i.exchange.request {
                Some(Message::Grpc(g)) => Some(&g.http),
                Some(Message::Http2(h)) => Some(h),
                _ => None,
            };
            let status = match r {
                Some(Message::Http2(r)) => r.status.to_string(),
                Some(Message::Grpc(g)) => g.http.status.to_string(),
                _ => "-".into(),
            };
            let field = |n: &str| s(q.and_then(|q| q.header(n)).unwrap_or_default());
            format!("{} {} {status}", field(":method"), field(":path"))
        }
        (Some(Message::Dns(_)), _) | (None, Some(Message::Dns(_))) => {
            let q = i.dns_request().or(i.dns_response());
            let name = q.and_then(|q| q.questions.first()).map(|q| s(&q.name)).unwrap_or_default();
            let rcode = i.dns_response().map_or("-".to_string(), |r| r.rcode().to_string());
            format!("{name} {rcode}")
        }
        (Some(Message::Redis(reassembly::dissectors::redis::RedisMessage::Command(c))), _) => {
            let args: Vec<String> = c.args.iter().map(|a| s(a)).collect();
            format!("{} {}", c.name, args.join(" ")).trim_end().to_string()
        }
        (Some(Message::Kafka(reassembly::dissectors::kafka::KafkaMessage::Request(r))), _) => {
            format!(
                "{} {}",
                reassembly::dissectors::kafka::parser::api(r.api_key).0,
                r.correlation_id
            )
        }
        (Some(Message::Postgresql(p)), _) => match p.as_ref() {
            reassembly::dissectors::postgresql::PgMessage::Request(r) => {
                format!("{} {}", r.kind.name(), r.query.as_deref().map(s).unwrap_or_default())
                    .trim_end()
                    .to_string()
            }
            _ => "pg-response".into(),
        },
        (None, Some(_)) => "response-only".into(),
        _ => "other".into(),
    };
    format!("{cap} {gist}")
}

/// Every item of one capture, dissected in this process by one core's
/// reassembly stage, in capture order.
fn dissect(path: &Path) -> Vec<Item> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(1 << 16);
    let mut d = Dissector::new(&ReassemblyConfig::default(), 0, tx);
    let mut counters = CoreCounters::default();
    let mut src = FileSource::open(Input::Path(path.to_path_buf()), Pace::Fast, 1)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    loop {
        let p = src
            .poll(&mut |f: Frame<'_>| {
                if let Ok(meta) = parse(f.link, f.data, f.wire_len) {
                    d.packet(&f, &meta, &mut counters);
                }
            })
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if p == Poll::End {
            break;
        }
    }
    d.finish(&mut counters);
    drop(d);
    let mut items: Vec<Item> = rx.into_iter().collect();
    items.sort_by_key(|i| (i.ts_ns(), i.stream, i.index));
    items
}

/// The labelled items of every capture (`None` without the corpus).
fn corpus_items() -> Option<Vec<(String, Item)>> {
    let dir = corpus_dir()?;
    let mut out = Vec::new();
    for (cap, file, n) in CAPTURES {
        let items = dissect(&dir.join("pcaps").join(file));
        if std::env::var_os("KFL_DUMP").is_some() {
            for i in &items {
                eprintln!("{}", label(cap, i));
            }
            continue;
        }
        assert_eq!(items.len(), *n, "{file}: items");
        out.extend(items.into_iter().map(|i| (label(cap, &i), i)));
    }
    Some(out)
}

fn node() -> NodeInfo {
    NodeInfo { ip: "192.0.2.7".into(), name: "node-7".into() }
}

/// Runs every case: the labels a query matches, sorted, must be the ones
/// listed (a label listed twice is two items).
fn run(cases: &[(&str, &[&str])], language: Language) {
    let Some(items) = corpus_items() else {
        skip::missing("the corpus (SKUA_CORPUS)");
        return;
    };
    assert!(!items.is_empty());
    let node = node();
    let mut failures = Vec::new();
    for (query, want) in cases {
        let f = match Filter::compile(query) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{query}: {e}"));
                continue;
            }
        };
        if f.language() != language {
            failures.push(format!("{query}: compiled as {:?}", f.language()));
        }
        let mut got: Vec<&str> =
            items.iter().filter(|(_, i)| f.matches(i, &node)).map(|(l, _)| l.as_str()).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = want.to_vec();
        want.sort_unstable();
        if got != want {
            failures.push(format!("{query}\n   want {want:?}\n   got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn dump() {
    if std::env::var_os("KFL_DUMP").is_some() {
        let _ = corpus_items();
    }
}

// The items, by label (see each capture's expected rows).
const GET: &str = "get GET /download/CHANGES.bro-aux.txt 200";
const P1: &str = "pipe GET /style/enhanced.css 200";
const P2: &str = "pipe GET /script/urchin.js 200";
const P3: &str = "pipe GET /images/template/screen/bullet_utility.png 200";
const P4: &str = "pipe GET /images/template/screen/key-point-top.png 200";
const P5: &str = "pipe GET /projects/calendar/images/header-sunbird.png 200";
const GZ: &str = "gzip GET / 200";
const CT: &str = "cont POST / 200";
const GR: &str = "grpc POST /hipstershop.CartService/GetCart 200";
const H2: &str = "h2 GET /doc/manual/html/index.html 200";
// The page's resources, fetched on the same connection (Suricata's rows
// check the page only).
const H2CSS: &str = "h2 GET /doc/manual/html/_static/css/theme.css 200";
const H2JS: [&str; 4] = [
    "h2 GET /doc/manual/html/_static/js/theme.js 200",
    "h2 GET /doc/manual/html/_static/doctools.js 200",
    "h2 GET /doc/manual/html/_static/underscore.js 200",
    "h2 GET /doc/manual/html/_static/jquery.js 200",
];
const D53: &str = "dns53 us.v27.distributed.net 0";
const TXT: &str = "txt flkr._domainkey.flickr.com 0";
const AAAA: &str = "aaaa psu.edu 0";
const TKEY: &str = "tkey 1068-ms-7.309-2c6e448.7a9463b8-b109-11ed-26a3-080027f220e5 0";
const RP: &str = "rping PING";
const PUB1: &str = "pubsub PUBLISH Foo Hi there :)";
const PUB2: &str = "pubsub PUBLISH FeeFooFiiFum Hello! :)";
const PUSH: &str = "pubsub response-only";
const SET: &str = "pubsub SET sanity_check you_are_sane";
const GETK: &str = "pubsub GET sanity_check";
const PR: &str = "produce Produce 1";
const AV: &str = "apiv ApiVersions 2";
const FE: &str = "fetch Fetch 15603";
const PG0: &str = "pg startup";
const PG1: &str = "pg query DROP TABLE IF EXISTS t;";
const PG2: &str = "pg query CREATE TABLE IF NOT EXISTS t (i int, s varchar, t time);";
const PG3: &str = "pg query INSERT INTO t VALUES (42, 'forty-two', now());";
const PG4: &str = "pg query INSERT INTO t VALUES (86, 'eighty-six', now());";
const PG5: &str = "pg query SELECT * from t;";
const PG6: &str = "pg query DELETE FROM t;";
const PG7: &str = "pg query DROP TABLE t;";
const PG8: &str = "pg terminate";
const PGF: &str = "pgfail startup";

const HTTP1: &[&str] = &[GET, P1, P2, P3, P4, P5, GZ, CT];
const H2S: &[&str] = &[H2, H2CSS, H2JS[0], H2JS[1], H2JS[2], H2JS[3]];
const HTTP: &[&str] =
    &[GET, P1, P2, P3, P4, P5, GZ, CT, GR, H2, H2CSS, H2JS[0], H2JS[1], H2JS[2], H2JS[3]];
const DNS: &[&str] = &[D53, TXT, AAAA, TKEY];
const UDP: &[&str] = &[D53, TXT, AAAA];
const KAFKA: &[&str] = &[PR, AV, FE];
const PG: &[&str] = &[PG0, PG1, PG2, PG3, PG4, PG5, PG6, PG7, PG8, PGF];

/// The Redis items of the pub/sub capture (Zeek's rows: two PUBLISH, SET,
/// SUBSCRIBE, PSUBSCRIBE, RESET, GET) and the messages pushed to the
/// subscriber, which are items of their own without a request.
const PUBSUB: &[&str] =
    &[PUB1, PUB2, SET, "pubsub SUBSCRIBE Foo", "pubsub PSUBSCRIBE F*", "pubsub RESET", GETK];
/// Two subscribers get "Hi there :)" (SUBSCRIBE Foo and PSUBSCRIBE F*
/// both match Foo: PUBLISH replied 2), one gets "Hello! :)" (F*).
const PUSHES: &[&str] = &[PUSH, PUSH, PUSH];

fn all_of(groups: &[&[&'static str]]) -> Vec<&'static str> {
    groups.concat()
}

fn everything() -> Vec<&'static str> {
    all_of(&[HTTP, DNS, &[RP, RP, RP], PUBSUB, PUSHES, KAFKA, PG])
}

fn except(drop: &[&str]) -> Vec<&'static str> {
    let mut v = everything();
    for d in drop {
        if let Some(k) = v.iter().position(|x| x == d) {
            v.remove(k);
        }
    }
    v
}

fn redis() -> Vec<&'static str> {
    all_of(&[&[RP, RP, RP], PUBSUB, PUSHES])
}

#[test]
fn kfl2_on_corpus_items() {
    let not_http = except(HTTP);
    let not_udp = except(UDP);
    let not_grpc = except(&[GR]);
    let all = everything();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("http", HTTP.to_vec()),
        ("dns", DNS.to_vec()),
        ("redis", redis()),
        ("kafka", KAFKA.to_vec()),
        ("postgresql", PG.to_vec()),
        ("grpc", vec![GR]),
        ("udp", UDP.to_vec()),
        ("tcp && dns", vec![TKEY]),
        ("tcp", not_udp.clone()),
        ("!tcp", UDP.to_vec()),
        ("amqp || gql", vec![]),
        ("!http && !dns && !redis && !kafka && !postgresql", vec![]),
        ("method == \"GET\"", all_of(&[&[GET, P1, P2, P3, P4, P5, GZ], H2S])),
        ("method == \"POST\"", vec![CT, GR]),
        ("http && status_code == 200", HTTP.to_vec()),
        ("status_code >= 500", vec![]),
        ("status_code == 0", not_http.clone()),
        ("dns && status_code == 0", DNS.to_vec()),
        ("status_code / 100 == 2", HTTP.to_vec()),
        ("string(status_code) == \"200\"", HTTP.to_vec()),
        ("[1, 2, 3].all(x, x < status_code)", HTTP.to_vec()),
        ("path == \"/\"", vec![GZ, CT]),
        ("path.startsWith(\"/images/\")", vec![P3, P4]),
        ("path.endsWith(\".png\")", vec![P3, P4, P5]),
        ("path.matches(\"\\\\.(css|js)$\")", all_of(&[&[P1, P2, H2CSS], &H2JS])),
        ("url.contains(\"sunbird\")", vec![P5]),
        ("size(path) > 20", all_of(&[&[GET, P3, P4, P5, GR], H2S])),
        ("http && (path.contains(\"images\") || method == \"POST\")", vec![P3, P4, P5, CT, GR]),
        ("request.headers[\"host\"] == \"www.mozilla.org\"", vec![P1, P2, P3, P4, P5]),
        ("request.headers[\"Host\"] == \"bro.org\"", vec![GET]),
        ("\"host\" in request.headers && path == \"/\"", vec![GZ, CT]),
        ("request.headers[\"host\"].endsWith(\".edu\")", vec![CT]),
        ("map_get(request.headers, \"host\", \"\") == \"localhost\"", vec![GZ]),
        ("request.headers[\"host\"] == \"cartservice:7070\"", vec![GR]),
        ("request.headers.exists(k, k == \"expect\")", vec![CT]),
        ("response.headers[\"content-encoding\"] == \"x-gzip\"", vec![GZ]),
        ("size(query_string) == 0 && http", HTTP.to_vec()),
        ("http_version == \"HTTP/2\"", all_of(&[&[GR], H2S])),
        ("http_version == \"HTTP/1.1\"", HTTP1.to_vec()),
        (
            "request_headers_size > 0 && method == \"GET\" && http_version == \"HTTP/1.1\"",
            vec![GET, P1, P2, P3, P4, P5, GZ],
        ),
        ("response_body_size == 4705", vec![GET]),
        // Bytes on the wire: urchin.js (21421 decoded, Zeek's figure) came
        // gzip-encoded in 6716 (tshark); the 100-continue page is chunked,
        // not encoded.
        ("http_version == \"HTTP/1.1\" && response_body_size > 20000", vec![P5, CT]),
        ("request_body_size == 2001", vec![CT]),
        ("request_body_size > 0", vec![CT, GR]),
        ("grpc_method == \"GetCart\"", vec![GR]),
        ("grpc_service == \"hipstershop.CartService\"", vec![GR]),
        ("grpc && grpc_status == 0", vec![GR]),
        ("grpc_status == -1", not_grpc),
        ("protocol == \"HTTP/2\"", H2S.to_vec()),
        ("protocol in [\"gRPC\", \"KAFKA\"]", vec![GR, PR, AV, FE]),
        ("protocol == \"PGSQL\"", PG.to_vec()),
        ("src.ip == \"141.142.228.5\"", vec![GET]),
        ("dst.port == 80 && http_version == \"HTTP/1.1\"", HTTP1.to_vec()),
        ("src.port == 1673", vec![P1, P2, P3, P4, P5]),
        ("dst.port == 53", DNS.to_vec()),
        ("src.port == 53", vec![D53]),
        // Both the Redis and the HTTP/2 capture are on IPv6 loopback.
        ("dst.ip == \"::1\"", all_of(&[&[RP, RP, RP], H2S])),
        ("dst.port == 6379", redis()),
        ("dst.port == 5432", PG.to_vec()),
        ("src.port + dst.port > 0", all.clone()),
        ("dns_questions.exists(q, q.endsWith(\".edu\"))", vec![AAAA]),
        ("\"us.v27.distributed.net\" in dns_questions", vec![D53]),
        ("\"206.109.64.186\" in dns_answers", vec![D53]),
        ("dns && size(dns_answers) == 0", vec![AAAA, TKEY]),
        ("size(dns_answers) >= 8", vec![D53]),
        ("\"AAAA\" in dns_question_types", vec![AAAA]),
        ("\"TKEY\" in dns_question_types", vec![TKEY]),
        ("dns_answers.exists(a, a.contains(\"_domainkey\"))", vec![TXT]),
        // The dns53 capture holds only the response (Zeek's "flip" test).
        ("dns_request && dns_response", vec![TXT, AAAA, TKEY]),
        ("dns_response && !dns_request", vec![D53]),
        ("dns_total_size > 0 && !dns", vec![]),
        // The TKEY query carries a 3247-byte GSS token; its answer is 483
        // bytes (tshark).
        ("dns_request_length > 0 && dns_response_length > dns_request_length", vec![TXT, AAAA]),
        ("dns_request_length > 3000", vec![TKEY]),
        ("redis_type == \"PING\"", vec![RP, RP, RP]),
        ("redis_type == \"SET\" && redis_key == \"sanity_check\"", vec![SET]),
        ("redis_key == \"sanity_check\"", vec![SET, GETK]),
        ("redis_command.startsWith(\"PUBLISH\")", vec![PUB1, PUB2]),
        ("redis && redis_type == \"\"", PUSHES.to_vec()),
        ("redis_request_size > 0 && !redis", vec![]),
        ("kafka_api_key_name == \"PRODUCE\"", vec![PR]),
        ("kafka_api_key == 1", vec![FE]),
        ("kafka_api_key_name == \"API_VERSIONS\"", vec![AV]),
        ("kafka_client_id.startsWith(\"consumer-\")", vec![FE]),
        ("kafka_request_summary.contains(\"topic2\")", vec![PR]),
        ("kafka_request_summary == \"zqy-test\"", vec![FE]),
        ("kafka && kafka_request && kafka_response", KAFKA.to_vec()),
        ("postgresql_query.startsWith(\"INSERT\")", vec![PG3, PG4]),
        ("postgresql_command == \"SELECT\"", vec![PG5]),
        ("postgresql_command == \"DROP\"", vec![PG1, PG7]),
        ("postgresql_query.matches(\"(?i)^drop table\")", vec![PG1, PG7]),
        ("postgresql_user == \"postgres\" && postgresql_database == \"postgres\"", PG.to_vec()),
        ("postgresql && !postgresql_success", vec![PG8, PGF]),
        ("postgresql_error_code == \"28P01\"", vec![PGF]),
        ("postgresql_error_message.contains(\"password\")", vec![PGF]),
        ("elapsed_time > 0 && kafka", KAFKA.to_vec()),
        ("now() - timestamp > duration(\"24h\")", all.clone()),
        ("timestamp.getFullYear() >= 2000", all.clone()),
        ("namespaces == [] && pods == [] && src.pod.name == \"\"", all.clone()),
        ("node_name == \"node-7\" && worker == node[\"name\"]", all.clone()),
    ];
    let cases: Vec<(&str, &[&str])> = cases.iter().map(|(q, w)| (*q, w.as_slice())).collect();
    assert!(cases.len() >= 80, "{} KFL2 cases", cases.len());
    run(&cases, Language::Kfl2);
}

#[test]
fn kfl1_on_corpus_items() {
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("http and request.method == \"GET\"", all_of(&[&[GET, P1, P2, P3, P4, P5, GZ], H2S])),
        ("dns or kafka", all_of(&[DNS, KAFKA])),
        ("http and response.status == 200", HTTP.to_vec()),
        ("response.status == r\"2..\"", HTTP.to_vec()),
        ("request.path == r\"\\.png$\"", vec![P3, P4, P5]),
        ("request.headers[\"Host\"] == r\"mozilla\"", vec![P1, P2, P3, P4, P5]),
        ("http and request.headers[\"Host\"] != r\"mozilla\"", all_of(&[&[GET, GZ, CT, GR], H2S])),
        ("request.headers[\"Expect\"] == r\"100-continue\"", vec![CT]),
        ("src.ip == \"141.142.228.5\" and http", vec![GET]),
        ("dst.port == 80 and protocol.version == \"1.1\"", HTTP1.to_vec()),
        ("src.port == \"1673\" and request.method == \"GET\"", vec![P1, P2, P3, P4, P5]),
        ("request.path.startsWith(\"/images\") and http", vec![P3, P4]),
        ("request.path.endsWith(\".js\") or request.path.endsWith(\".css\")", all_of(&[&[P1, P2, H2CSS], &H2JS])),
        ("request.url.contains(\"calendar\")", vec![P5]),
        ("request.pathSegments[0] == \"images\"", vec![P3, P4]),
        ("http and (request.method == \"POST\" or response.status == 404)", vec![CT, GR]),
        ("protocol.name == \"dns\" and request.questions[0].name == \"psu.edu\"", vec![AAAA]),
        ("request.questions[0].type == \"AAAA\"", vec![AAAA]),
        ("response.answers[0].ip == \"206.109.64.186\"", vec![D53]),
        // The TKEY response answers with a TKEY record (which Zeek does not
        // log; tshark counts 1 answer).
        ("request.questions and response.answers", vec![TXT, TKEY]),
        ("protocol.name == \"redis\" and request.command == \"PING\"", vec![RP, RP, RP]),
        ("request.command == \"SET\" and request.key == \"sanity_check\"", vec![SET]),
        ("request.apiKey == \"Produce\"", vec![PR]),
        ("request.clientId == \"adminclient-1\"", vec![AV]),
        ("response.errorCode == 0 and kafka", KAFKA.to_vec()),
        ("request.type == \"startup\" and response.success == false", vec![PGF]),
        ("request.type == \"query\" and response.rows == 2", vec![PG5]),
        ("request.type == \"terminate\"", vec![PG8]),
        ("response.commandTag == r\"^INSERT\"", vec![PG3, PG4]),
        ("request.user == \"postgres\" and request.type == \"startup\"", vec![PG0, PGF]),
        ("elapsedTime >= 0 and kafka", KAFKA.to_vec()),
        ("requestSize > 0 and responseSize > 0 and kafka", KAFKA.to_vec()),
        ("!http and !dns and !redis and !kafka and !postgresql", vec![]),
        ("response.grpc.status == 0", vec![GR]),
        ("request.grpc.method == \"GetCart\" and request.grpc.service == \"hipstershop.CartService\"", vec![GR]),
        ("timestamp > datetime(\"1/1/2000, 12:00:00 AM\") and dns", DNS.to_vec()),
    ];
    let cases: Vec<(&str, &[&str])> = cases.iter().map(|(q, w)| (*q, w.as_slice())).collect();
    assert!(cases.len() >= 30, "{} KFL1 cases", cases.len());
    run(&cases, Language::Kfl1);
}

/// `skua dissect --filter`: only matching items, in both output formats;
/// a bad query exits 2 with the error and its position.
#[test]
fn dissect_filters_items_in_every_format() {
    let Some(dir) = corpus_dir() else {
        skip::missing("the corpus (SKUA_CORPUS)");
        return;
    };
    let pcap = dir.join("pcaps/z_http_pipelined-requests.pcap");
    let pcap = pcap.to_str().expect("a UTF-8 path");
    let q = "http && path.endsWith(\".png\")";
    let out = skua(&["dissect", pcap, "--jsonl", "--filter", q]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON item"))
        .collect();
    let paths: Vec<&str> = lines.iter().filter_map(|v| v["request"]["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "/images/template/screen/bullet_utility.png",
            "/images/template/screen/key-point-top.png",
            "/projects/calendar/images/header-sunbird.png"
        ]
    );
    let text = skua(&["dissect", pcap, "-f", "http and request.path == r\"\\.(css|js)$\""]);
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("/style/enhanced.css") && text.contains("/script/urchin.js"), "{text}");
    let none = skua(&["dissect", pcap, "--filter", "dns"]);
    assert!(none.status.success() && none.stdout.is_empty());

    let bad = skua(&["dissect", pcap, "--filter", "http && status_code == \"500\""]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("1:21") && err.contains("cannot compare int with string"), "{err}");
    assert!(err.contains(&format!("\n  {}^", " ".repeat(20))), "a caret under `==`: {err}");
}
