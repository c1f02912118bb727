//! Unit tests of the KFL engine: language detection, errors and their
//! positions, limits, defaults, and evaluation on items the real
//! dissectors made from hand-written conversations.

use super::*;
use crate::testutil::{run, Conv};
use crate::ReassemblyConfig;

fn items(req: &[u8], resp: &[u8], port: u16) -> Vec<Item> {
    let mut c = Conv::new(40_000, port, 1000, 5000);
    let mut pkts = c.handshake();
    pkts.push(c.client(req));
    pkts.push(c.server(resp));
    pkts.push(c.fin(true));
    pkts.push(c.fin(false));
    run(&ReassemblyConfig::default(), &pkts).0
}

fn http_item() -> Item {
    let mut it = items(
        b"GET /api/v1/users?id=42&q=a%20b HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: curl/8\r\nCookie: session=abc; theme=dark\r\n\r\n",
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nServer: nginx\r\nSet-Cookie: token=t1; Path=/\r\n\r\nerror",
        8080,
    );
    assert_eq!(it.len(), 1);
    let mut item = it.remove(0);
    item.src.name = "web-1".into();
    item.src.namespace = "shop".into();
    item.dst.name = "api-7".into();
    item.dst.namespace = "backend".into();
    item
}

fn redis_item() -> Item {
    items(b"*3\r\n$3\r\nSET\r\n$12\r\nsession:1234\r\n$1\r\nx\r\n", b"+OK\r\n", 6379).remove(0)
}

fn node() -> NodeInfo {
    NodeInfo { ip: "192.0.2.1".into(), name: "node-a".into() }
}

fn m(q: &str, item: &Item) -> bool {
    Filter::compile(q).unwrap_or_else(|e| panic!("{q}: {e}")).matches(item, &node())
}

fn err(q: &str) -> KflError {
    Filter::compile(q).expect_err(q)
}

#[test]
fn kfl2_reads_http_variables() {
    let i = http_item();
    for (q, want) in [
        ("http && status_code >= 500", true),
        ("http && status_code >= 500 && status_code < 504", true),
        ("dns", false),
        ("tcp && !udp", true),
        ("method == \"GET\"", true),
        ("path == \"/api/v1/users\"", true),
        ("url == \"/api/v1/users?id=42&q=a%20b\"", true),
        ("query_string[\"q\"] == \"a b\"", true),
        ("\"id\" in query_string", true),
        ("http_version == \"HTTP/1.1\"", true),
        ("request.headers[\"host\"] == \"shop.example\"", true),
        ("request.headers[\"HOST\"] == \"shop.example\"", true),
        ("\"user-agent\" in request.headers", true),
        ("\"x-missing\" in request.headers", false),
        ("request.headers[\"x-missing\"] == \"\"", false),
        ("map_get(request.headers, \"x-missing\", \"none\") == \"none\"", true),
        ("map_get(request.headers, \"Host\", \"\") == \"shop.example\"", true),
        ("response.headers[\"server\"].startsWith(\"ngi\")", true),
        ("request.cookies[\"theme\"] == \"dark\"", true),
        ("response.cookies[\"token\"] == \"t1\"", true),
        ("size(request.headers) == 3", true),
        ("request.headers.exists(k, k == \"cookie\")", true),
        ("response_body_size == 5", true),
        ("path.matches(\"^/api/v[0-9]+/\")", true),
        ("matches(path, \"users$\")", true),
        ("path.contains(\"v1\") && path.endsWith(\"users\")", true),
        ("path.lowerAscii().startsWith(\"/api\")", true),
        ("src.ip == \"10.0.0.1\" && dst.port == 8080", true),
        ("src.port > 1024", true),
        ("src.pod.name == \"web-1\" && dst.service.name == \"api-7\"", true),
        ("\"shop\" in namespaces && \"backend\" in namespaces", true),
        ("\"api-7\" in pods", true),
        ("src.namespace == \"shop\"", true),
        ("node_name == \"node-a\" && node[\"ip\"] == \"192.0.2.1\"", true),
        ("elapsed_time >= 1 && elapsed_time < 1000000", true),
        ("timestamp > timestamp(\"2023-01-01T00:00:00Z\")", true),
        ("timestamp < now()", true),
        ("now() - timestamp > duration(\"1h\")", true),
        ("grpc_status == -1 && grpc_method == \"\"", true),
        ("redis_key == \"\" && kafka_api_key == 0 && dns_questions == []", true),
        ("size(dns_questions) == 0", true),
        ("status_code in [500, 502, 503]", true),
        ("status_code == 503 ? true : false", true),
        ("protocol == \"HTTP\"", true),
        ("gql", false),
    ] {
        assert_eq!(m(q, &i), want, "{q}");
    }
}

#[test]
fn kfl2_reads_redis_variables() {
    let i = redis_item();
    assert!(m("redis && redis_type == \"SET\" && redis_key.startsWith(\"session:\")", &i));
    assert!(m("redis_command == \"SET session:1234 x\"", &i));
    assert!(m("!http && method == \"\" && status_code == 0", &i));
    assert!(m(
        "redis_request_size > 0 && redis_total_size == redis_request_size + redis_response_size",
        &i
    ));
}

#[test]
fn kfl1_reads_the_json_shape() {
    let i = http_item();
    for (q, want) in [
        ("http", true),
        ("http and response.status == 503", true),
        ("http and response.status == r\"5.*\"", true),
        ("response.status != r\"2..\"", true),
        ("request.method == \"GET\" and request.path != \"/example\"", true),
        ("request.headers[\"Host\"] == \"shop.example\"", true),
        ("request.headers[\"Host\"] == r\"shop\\..*\"", true),
        ("request.headers[\"Authorization\"] == r\"Token.*\"", false),
        ("src.ip != \"192.168.49.2\"", true),
        ("src.port == 40000", true),
        ("dst.port == \"8080\"", true),
        ("request.path.startsWith(\"/api\")", true),
        ("request.path.endsWith(\"users\") and request.path.contains(\"v1\")", true),
        ("response.status >= 500 and response.status < 600", true),
        ("request.queryString.q == \"a b\"", true),
        ("request.pathSegments[1] == \"v1\"", true),
        ("request.pathSegments[-1] == \"users\"", true),
        ("protocol.name == \"http\" and protocol.version == \"1.1\"", true),
        ("dns or redis", false),
        ("!dns", true),
        ("request.headers", true),
        ("request.nothing == 1", false),
        ("!request.nothing", false),
        ("response.content.size == 5 and response.content.text == \"error\"", true),
        ("timestamp > datetime(\"1/2/2006, 3:04:05 PM\")", true),
        ("timestamp < now()", true),
        ("timestamp > days(-100000) and limit(100)", true),
        ("elapsedTime >= 0", true),
        ("passed == false and failed == false", true),
        ("src.name == \"web-1\" and dst.namespace == \"backend\"", true),
        ("http and (response.status == 200 or response.status == 503)", true),
        ("tcp and data.payload.startsWith(\"GET\")", false),
    ] {
        let f = Filter::compile(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        // A macro alone (`http`, `!dns`) is KFL2 too, with the same meaning.
        let both = compile_kfl2(q).is_ok_and(|c| !c.kfl1_regex);
        assert_eq!(f.language(), if both { Language::Kfl2 } else { Language::Kfl1 }, "{q}");
        assert_eq!(f.matches(&i, &node()), want, "{q}");
    }
}

#[test]
fn kfl1_and_or_go_left_to_right() {
    let i = http_item();
    // (true or false) and false → false; with precedence it would be true.
    assert!(!m("http or dns and dns", &i));
    assert!(m("dns and dns or http", &i));
}

#[test]
fn language_is_told_by_syntax() {
    for (q, lang) in [
        ("http", Language::Kfl2),
        ("http && dns", Language::Kfl2),
        ("http and dns", Language::Kfl1),
        ("response.status == 500", Language::Kfl1),
        ("status_code == 500", Language::Kfl2),
        ("request.headers[\"a\"] == \"b\"", Language::Kfl2),
        ("request.headers[\"a\"] == r\"b.*\"", Language::Kfl1),
        ("request.method == \"GET\"", Language::Kfl1),
    ] {
        assert_eq!(Filter::compile(q).unwrap().language(), lang, "{q}");
    }
}

#[test]
fn errors_name_their_position() {
    let e = err("status_code == \"x\"");
    assert_eq!(e.kind, KflErrorKind::Invalid);
    assert!(e.message.contains("cannot compare int with string"), "{e}");
    assert_eq!((e.line, e.column), (1, 13), "{e}");

    let e = err("http && stauts_code == 500");
    assert!(e.message.contains("unknown variable stauts_code"), "{e}");
    assert_eq!((e.offset, e.column), (8, 9), "{e}");

    let e = err("http &&\n  method.size() > \"3\"");
    assert_eq!(e.line, 2, "{e}");

    let e = err("http && (");
    assert_eq!(e.kind, KflErrorKind::Syntax);
    assert!(e.offset >= 8, "{e}");

    let e = err("http and (dns or");
    assert_eq!(e.kind, KflErrorKind::Syntax);
    assert_eq!(e.offset, 16, "{e}");

    let e = err("status_code.startsWith(\"5\")");
    assert!(e.message.contains("needs a string, not int"), "{e}");

    let e = err("method && http");
    assert!(e.message.contains("&& needs booleans, not string"), "{e}");

    let e = err("status_code");
    assert!(e.message.contains("boolean expression"), "{e}");

    let e = err("src && http");
    assert!(e.message.contains("src is not a variable"), "{e}");

    let e = err("path.matches(\"(unclosed\")");
    assert!(e.message.contains("invalid regex"), "{e}");
    assert_eq!(e.offset, 13, "{e}");

    let e = err("path.matches(method)");
    assert!(e.message.contains("string literal"), "{e}");

    let e = err("http htt ??? a : p");
    assert_eq!(e.kind, KflErrorKind::Syntax, "{e}");

    let e = err("request.path.* == \"v1\"");
    assert!(e.to_string().contains("1:"), "{e}");
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    assert_eq!(err("").kind, KflErrorKind::Empty);
    assert_eq!(err(" \n\t").kind, KflErrorKind::Empty);
    let huge = format!("http && ({})", vec!["status_code == 1"; 400].join(" || "));
    assert!(huge.len() > MAX_QUERY_BYTES);
    let e = err(&huge);
    assert_eq!((e.kind, e.offset), (KflErrorKind::TooLong, MAX_QUERY_BYTES));
    let deep = format!("{}http{}", "(".repeat(60), ")".repeat(60));
    assert!(deep.len() < MAX_QUERY_BYTES);
    assert_ne!(err(&deep).kind, KflErrorKind::Empty);
    let deep1 = format!("{}http{}", "!".repeat(200), "");
    err(&deep1);
    let nested = "[1].all(a, [1].all(b, [1].all(c, c == 1)))";
    assert!(err(nested).message.contains("nest at most"));
    let e = Filter::compile_bytes(b"http && method == \"\xff\"").unwrap_err();
    assert_eq!((e.kind, e.offset), (KflErrorKind::NotUtf8, 19));
    // A regex whose automaton would be huge.
    let e = err("path.matches(\"(\\\\w{500}){500}\")");
    assert!(e.message.contains("too large") || e.message.contains("invalid regex"), "{e}");
}

#[test]
fn evaluation_errors_are_no_match_and_counted() {
    let i = http_item();
    let f = Filter::compile("request.headers[\"x-missing\"] != \"y\"").unwrap();
    assert!(!f.matches(&i, &node()));
    assert_eq!(f.eval_errors(), 1);
    // `||` absorbs an error when its other side is true, as CEL says.
    assert!(m("request.headers[\"x-missing\"] == \"y\" || http", &i));
}

#[test]
fn a_filter_is_shared_across_threads() {
    let f = Filter::compile("http && status_code >= 500").unwrap();
    let i = http_item();
    let g = f.clone();
    let t = std::thread::spawn(move || g.matches(&i, &node()));
    assert!(t.join().unwrap());
    assert_eq!(f.query(), "http && status_code >= 500");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn compile_never_panics(q in ".{0,200}") {
            let _ = Filter::compile(&q);
        }

        #[test]
        fn compile_never_panics_on_kfl_like_text(
            parts in proptest::collection::vec(prop_oneof![
                Just("http"), Just("&&"), Just("||"), Just("and"), Just("or"), Just("!"),
                Just("("), Just(")"), Just("status_code"), Just("=="), Just(">="), Just("\"x\""),
                Just("r\"a.*\""), Just("500"), Just("request.headers[\"h\"]"), Just("."),
                Just("matches("), Just("exists(x,"), Just("["), Just("]"), Just(","),
                Just("src.ip"), Just("response.status"), Just("-"), Just("in"), Just("?"), Just(":"),
            ], 0..40),
        ) {
            let q = parts.join(" ");
            if let Ok(f) = Filter::compile(&q) {
                let _ = f.matches(&http_item(), &node());
            }
        }
    }
}
