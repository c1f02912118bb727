//! Real peers, captured by skua itself on loopback (AF_PACKET on `lo`, as
//! root), compared with what the clients did: a private MariaDB server
//! (`mariadb-install-db` + `mariadbd` in a temp dir, on a free port) driven
//! by the `mariadb` client (a login with a schema, queries, an error, a
//! wrong password) and by libmariadb's prepared-statement API through
//! Python's ctypes (COM_STMT_PREPARE/EXECUTE/CLOSE); and `openssl
//! s_server`/`s_client` for TLS 1.2 and 1.3 with SNI and ALPN, whose
//! ClientHello's JA4 is checked against values computed by hand from the
//! spec (see `tls_1_2_and_1_3_handshakes_with_sni_alpn_and_ja4`); and
//! Python's `websockets` (Debian's python3-websockets) as a WebSocket
//! server and client with permessage-deflate, a fragmented message, a
//! ping and a close.
//!
//! The items reach the test the way they reach agents: an agent prints
//! each MySQL and TLS item's JSON on the console.
//!
//! No MongoDB server installs on Debian 12: the corpus capture and the
//! generated conversations (encoded with the `bson` crate) cover MongoDB.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skua_suite::*;

const AGENT: &str = r#"
function onItemCaptured(data) {
  var p = data.protocol.name;
  if (p === "mysql" || p === "tls" || p === "ws") console.log("SKUA-ITEM " + JSON.stringify(data));
}
"#;

/// A program on PATH or in the sbin directories (mariadbd is in /usr/sbin).
fn find(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file());
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn lo_capture() -> bool {
    match dataplane::source::afpacket::AfPacketSource::open("lo", Default::default()) {
        Ok(_) => true,
        Err(e) => {
            skip::missing(&format!("an AF_PACKET socket on lo, as root ({e})"));
            false
        }
    }
}

/// Kills a child when dropped (a test that fails leaves no server behind).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Runs skua on `lo` for `secs` with the printing agent, runs `clients`
/// once skua is up, and returns the items of connections to `port`.
fn capture(secs: u32, port: u16, clients: impl FnOnce()) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("print.js"), AGENT).unwrap();
    let child = Command::new(skua_bin())
        .args([
            "run",
            "--iface",
            "lo",
            "--duration",
            &secs.to_string(),
            "--quiet",
            "--summary",
            "json",
        ])
        .arg("--scripts")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // skua's capture is up well within this (the AF_PACKET test waits as long).
    std::thread::sleep(Duration::from_millis(1500));
    clients();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "skua run failed: {err}");
    let port = port.to_string();
    err.lines()
        .filter_map(|l| l.split_once("SKUA-ITEM ").map(|(_, j)| j))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter(|v| v["dst"]["port"] == port.as_str())
        .collect()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// libmariadb through ctypes: COM_INIT_DB refused and accepted, COM_PING,
/// then a prepared statement: prepare, execute twice, close (the `mariadb`
/// client has no prepared-statement mode).
const PREPARED_PY: &str = r#"
import ctypes, sys
lib = ctypes.CDLL("libmariadb.so.3")
lib.mysql_init.restype = ctypes.c_void_p
lib.mysql_init.argtypes = [ctypes.c_void_p]
lib.mysql_real_connect.restype = ctypes.c_void_p
lib.mysql_real_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
    ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p, ctypes.c_ulong]
lib.mysql_error.restype = ctypes.c_char_p
lib.mysql_error.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_init.restype = ctypes.c_void_p
lib.mysql_stmt_init.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_prepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong]
lib.mysql_stmt_execute.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_store_result.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_num_rows.restype = ctypes.c_ulonglong
lib.mysql_stmt_num_rows.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_close.argtypes = [ctypes.c_void_p]
lib.mysql_close.argtypes = [ctypes.c_void_p]
port = int(sys.argv[1])
c = lib.mysql_init(None)
if not lib.mysql_real_connect(c, b"127.0.0.1", b"app", b"secret", b"shop", port, None, 0):
    sys.exit("connect: %s" % lib.mysql_error(c))
lib.mysql_select_db.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.mysql_ping.argtypes = [ctypes.c_void_p]
assert lib.mysql_select_db(c, b"mysql") != 0, "the grant does not cover mysql"
assert lib.mysql_select_db(c, b"shop") == 0, lib.mysql_error(c)
assert lib.mysql_ping(c) == 0
s = lib.mysql_stmt_init(c)
q = b"SELECT name FROM pets ORDER BY id"
assert lib.mysql_stmt_prepare(s, q, len(q)) == 0, lib.mysql_error(c)
for _ in range(2):
    assert lib.mysql_stmt_execute(s) == 0, lib.mysql_error(c)
    assert lib.mysql_stmt_store_result(s) == 0
    print("rows", lib.mysql_stmt_num_rows(s))
lib.mysql_stmt_close(s)
lib.mysql_close(c)
"#;

#[test]
fn mariadb_sessions_are_items_that_say_what_the_client_did() {
    let (Some(install), Some(server), Some(client), Some(python)) =
        (find("mariadb-install-db"), find("mariadbd"), find("mariadb"), find("python3"))
    else {
        skip::missing("mariadb-server, mariadb-client and python3 (Debian packages)");
        return;
    };
    if !lo_capture() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sock = dir.path().join("sock");
    run_ok(
        Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"]),
    );
    let port = free_port();
    let _server = Reaped(
        Command::new(&server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args(["--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(30)), "mariadbd did not listen on {port}");
    // Set up over the socket (not captured): a user with a password, a schema.
    run_ok(Command::new(&client).arg(format!("--socket={}", sock.display())).args([
        "-uroot",
        "-e",
        "CREATE DATABASE shop; CREATE TABLE shop.pets (id INT PRIMARY KEY, name TEXT); \
         CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'secret'; \
         GRANT ALL ON shop.* TO 'app'@'127.0.0.1';",
    ]));
    let tcp = |user_pass: &[&str], sql: &str| {
        Command::new(&client)
            .args(["--protocol=TCP", "-h", "127.0.0.1", "--skip-ssl", "--force"])
            .arg(format!("-P{port}"))
            .args(user_pass)
            .args(["shop", "-e", sql])
            .output()
            .unwrap()
    };
    let mut prepared = String::new();
    let items = capture(8, port, || {
        let out = tcp(
            &["-uapp", "-psecret"],
            "INSERT INTO pets VALUES (1, 'Goofy'), (2, 'Garfield'); SELECT name FROM pets ORDER BY id; \
             SELECT * FROM nowhere",
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Garfield"));
        let out = tcp(&["-uapp", "-pwrong"], "SELECT 1");
        assert!(!out.status.success(), "a wrong password was accepted");
        prepared = run_ok(Command::new(&python).arg("-c").arg(PREPARED_PY).arg(port.to_string()));
        std::thread::sleep(Duration::from_millis(500));
    });
    assert_eq!(prepared.matches("rows 2").count(), 2, "{prepared}");
    let cmds: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let q = &i["request"];
            (
                q["command"].as_str().unwrap_or("-").to_string(),
                q["query"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let find_item = |cmd: &str, query: &str| {
        items
            .iter()
            .find(|i| {
                i["request"]["command"] == cmd
                    && i["request"]["query"].as_str().unwrap_or("").contains(query)
            })
            .unwrap_or_else(|| panic!("no {cmd} {query:?} item among {cmds:?}"))
    };
    // Every item is MySQL, named so, and carries no pairing error.
    assert!(items.len() >= 10, "{cmds:?}");
    for i in &items {
        assert_eq!(i["protocol"]["name"], "mysql", "{i}");
        assert!(i["error"].is_null() || i["request"]["command"] == "quit", "{i}");
    }
    let logins: Vec<&Value> = items.iter().filter(|i| i["request"]["command"] == "login").collect();
    assert_eq!(logins.len(), 3, "{cmds:?}");
    let ok = logins.iter().filter(|i| i["response"]["success"] == true).count();
    assert_eq!(ok, 2, "two logins succeed, the wrong password fails: {logins:?}");
    let bad = logins.iter().find(|i| i["response"]["success"] == false).unwrap();
    assert_eq!(bad["response"]["error"]["code"], 1045);
    assert!(bad["response"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Access denied for user 'app'"));
    for l in &logins {
        assert_eq!(l["request"]["user"], "app");
        assert_eq!(l["request"]["database"], "shop");
        assert!(l["response"]["serverVersion"].as_str().unwrap().contains("MariaDB"), "{l}");
    }
    let insert = find_item("query", "INSERT INTO pets");
    assert_eq!(
        (insert["response"]["affectedRows"].as_u64(), insert["request"]["user"].as_str()),
        (Some(2), Some("app"))
    );
    let select = find_item("query", "SELECT name FROM pets");
    assert_eq!(
        (select["response"]["rows"].as_u64(), select["response"]["fields"][0].as_str()),
        (Some(2), Some("name"))
    );
    let missing = find_item("query", "nowhere");
    assert_eq!(
        (missing["response"]["success"].as_bool(), missing["response"]["error"]["code"].as_u64()),
        (Some(false), Some(1146))
    );
    // COM_INIT_DB: `mysql` is refused (the grant does not cover it), `shop` is not.
    let init: Vec<(&str, bool)> = items
        .iter()
        .filter(|i| i["request"]["command"] == "init_db")
        .map(|i| {
            (i["request"]["database"].as_str().unwrap_or(""), i["response"]["success"] == true)
        })
        .collect();
    assert_eq!(init, vec![("mysql", false), ("shop", true)], "{cmds:?}");
    assert!(items.iter().any(|i| i["request"]["command"] == "ping"), "{cmds:?}");
    let prep = find_item("stmt_prepare", "SELECT name FROM pets ORDER BY id");
    let id = prep["response"]["statementId"].as_u64().expect("statement id");
    let execs: Vec<&Value> =
        items.iter().filter(|i| i["request"]["command"] == "stmt_execute").collect();
    assert_eq!(execs.len(), 2, "{cmds:?}");
    for e in &execs {
        assert_eq!(e["request"]["statementId"].as_u64(), Some(id));
        assert_eq!(e["request"]["query"], "SELECT name FROM pets ORDER BY id");
        assert_eq!(e["response"]["rows"], 2);
    }
    let close = find_item("stmt_close", "SELECT name FROM pets");
    assert!(
        close["response"].is_null() || close["response"].as_object().is_some_and(|o| o.is_empty())
    );
    assert!(items.iter().filter(|i| i["request"]["command"] == "quit").count() >= 2);
}

/// JA4 of Debian 12's `openssl s_client -servername api.skua.test -alpn
/// h2,http/1.1` (OpenSSL 3.0), computed by hand from the ClientHellos as
/// tshark lists them, following FoxIO's JA4 spec:
/// - `-tls1_3`: ciphers 1302 1303 1301 00ff (4), extensions 0 11 10 35 16
///   22 23 13 43 45 51 (11), supported_versions 0304, SNI present, ALPN
///   `h2` → `t13d0411h2`; sha256("00ff,1301,1302,1303")[..12] =
///   `16476d049b0b`; sha256("000a,000b,000d,0016,0017,0023,002b,002d,0033_"
///   + the 14 signature algorithms in order)[..12] = `78f1d400d464`.
/// - `-tls1_2`: 28 ciphers, 8 extensions, no supported_versions (so the
///   legacy 0303) → `t12d2808h2`, `d943125447b4`, `e7e480e5a997`.
const JA4_TLS13: &str = "t13d0411h2_16476d049b0b_78f1d400d464";
const JA4_TLS12: &str = "t12d2808h2_d943125447b4_e7e480e5a997";

#[test]
fn tls_1_2_and_1_3_handshakes_with_sni_alpn_and_ja4() {
    let Some(openssl) = find("openssl") else {
        skip::missing("openssl (Debian package)");
        return;
    };
    if !lo_capture() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    run_ok(
        Command::new(&openssl)
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"])
            .args([
                "-subj",
                "/O=Skua Peers/CN=api.skua.test",
                "-addext",
                "subjectAltName=DNS:api.skua.test",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let port = free_port();
    let _server = Reaped(
        Command::new(&openssl)
            .args(["s_server", "-www", "-alpn", "h2"])
            .arg("-accept")
            .arg(port.to_string())
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let mut said = Vec::new();
    let items = capture(6, port, || {
        for v in ["-tls1_2", "-tls1_3"] {
            let mut c = Command::new(&openssl)
                .args([
                    "s_client",
                    "-servername",
                    "api.skua.test",
                    "-alpn",
                    "h2,http/1.1",
                    "-ign_eof",
                    v,
                ])
                .arg("-connect")
                .arg(format!("127.0.0.1:{port}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let out = c.wait_with_output().unwrap();
            said.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        std::thread::sleep(Duration::from_millis(500));
    });
    // What the client says it negotiated.
    assert!(
        said[0].contains("Protocol  : TLSv1.2") && said[1].contains("Protocol  : TLSv1.3"),
        "{said:?}"
    );
    assert!(said.iter().all(|s| s.contains("ALPN protocol: h2")));
    let handshakes: Vec<&Value> =
        items.iter().filter(|i| i["request"]["type"] == "handshake").collect();
    let connections: Vec<&Value> =
        items.iter().filter(|i| i["request"]["type"] == "connection").collect();
    assert_eq!((handshakes.len(), connections.len()), (2, 2), "{items:#?}");
    for (h, (version, ja4)) in
        handshakes.iter().zip([("TLS 1.2", JA4_TLS12), ("TLS 1.3", JA4_TLS13)])
    {
        let (q, r) = (&h["request"], &h["response"]);
        assert_eq!(h["protocol"]["name"], "tls");
        assert_eq!(
            (q["sni"].as_str(), q["alpn"][0].as_str(), q["ja4"].as_str()),
            (Some("api.skua.test"), Some("h2"), Some(ja4))
        );
        // TLS 1.3 sends the server's ALPN choice encrypted.
        let alpn = if version == "TLS 1.3" { None } else { Some("h2") };
        assert_eq!(
            (r["version"].as_str(), r["alpn"].as_str(), r["established"].as_bool()),
            (Some(version), alpn, Some(true))
        );
        let cipher = r["cipher"].as_str().unwrap();
        let openssl_said = if version == "TLS 1.2" { &said[0] } else { &said[1] };
        // OpenSSL names TLS 1.3 suites as IANA does; 1.2 ones its own way.
        if version == "TLS 1.3" {
            assert!(openssl_said.contains(&format!("Cipher is {cipher}")), "{cipher}");
            assert!(r["certificate"].is_null(), "TLS 1.3 certificates are encrypted");
        } else {
            assert!(cipher.starts_with("TLS_ECDHE_RSA_WITH_AES_256_GCM"), "{cipher}");
            let c = &r["certificate"];
            assert_eq!(
                (c["subject"].as_str(), c["san"][0].as_str()),
                (Some("O=Skua Peers, CN=api.skua.test"), Some("api.skua.test"))
            );
        }
        assert!(h["error"].is_null(), "{h}");
    }
    // After the handshake: the request and the page each way.
    for c in &connections {
        assert!(
            c["request"]["bytes"].as_u64().unwrap() > 0
                && c["response"]["bytes"].as_u64().unwrap() > 100,
            "{c}"
        );
        assert_eq!(c["request"]["sni"], "api.skua.test");
    }
}

/// A `websockets` echo server and a client in one process: a text and a
/// binary message, a text message sent as four fragments, a ping, and a
/// close with a reason. permessage-deflate is on (the library's default).
const WEBSOCKET_PY: &str = r#"
import asyncio, sys, websockets
port = int(sys.argv[1])
async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", port, subprotocols=["chat"]):
        print("ready", flush=True)
        await asyncio.sleep(2.0)
        async with websockets.connect("ws://127.0.0.1:%d/room/7" % port, subprotocols=["chat", "v2"]) as ws:
            await ws.send("hello skua")
            assert await ws.recv() == "hello skua"
            await ws.send(bytes(range(256)))
            assert await ws.recv() == bytes(range(256))
            await ws.send(iter(["part%d-" % i + "x" * 300 for i in range(4)]))
            assert len(await ws.recv()) == 4 * 306
            pong = await ws.ping(b"are you there")
            await pong
            print("extensions", ws.response_headers.get("Sec-WebSocket-Extensions"), flush=True)
            await ws.close(code=1000, reason="done")
asyncio.run(main())
"#;

#[test]
fn websocket_messages_of_a_real_peer_after_the_upgrade() {
    let python = Path::new("/usr/bin/python3");
    let has = python.is_file()
        && Command::new(python)
            .args(["-c", "import websockets"])
            .status()
            .is_ok_and(|s| s.success());
    if !has {
        skip::missing("python3-websockets (Debian package)");
        return;
    }
    if !lo_capture() {
        return;
    }
    let port = free_port();
    let mut said = String::new();
    let items = capture(7, port, || {
        said = run_ok(Command::new(python).args(["-c", WEBSOCKET_PY, &port.to_string()]));
        std::thread::sleep(Duration::from_millis(500));
    });
    assert!(said.contains("extensions permessage-deflate"), "{said}");
    // A missing side is `{}` in an item's JSON.
    let msg = |i: &Value| {
        if i["request"].as_object().is_none_or(|o| o.is_empty()) {
            i["response"].clone()
        } else {
            i["request"].clone()
        }
    };
    let opcodes: Vec<(String, String)> = items
        .iter()
        .map(|i| (i["request"]["opcode"].to_string(), i["response"]["opcode"].to_string()))
        .collect();
    // Three messages each way, a ping/pong and a close/close.
    assert_eq!(items.len(), 8, "{opcodes:?}\n{items:#?}");
    for i in &items {
        assert_eq!(i["protocol"]["name"], "ws");
        assert!(i["error"].is_null(), "{i}");
        let h = &msg(i)["handshake"];
        assert_eq!(h["path"], "/room/7");
        assert_eq!(h["subprotocol"], "chat");
        assert_eq!(h["clientProtocols"], serde_json::json!(["chat", "v2"]));
        assert_eq!(h["acceptValid"], true);
        assert!(h["serverExtensions"].as_str().unwrap().starts_with("permessage-deflate"));
    }
    let texts: Vec<&Value> = items.iter().filter(|i| msg(i)["opcode"] == "text").collect();
    assert_eq!(texts.len(), 4);
    // The client's messages are masked, the server's not; both inflated.
    let hello: Vec<&&Value> = texts.iter().filter(|i| msg(i)["payload"] == "hello skua").collect();
    assert_eq!(hello.len(), 2);
    let none = |v: &Value| v.as_object().is_none_or(|o| o.is_empty());
    assert!(hello.iter().any(|i| i["request"]["masked"] == true && none(&i["response"])));
    assert!(hello.iter().any(|i| i["response"]["masked"] == false && none(&i["request"])));
    assert!(hello.iter().all(|i| msg(i)["compressed"] == true));
    // Four fragments and the empty final frame `websockets` sends when the
    // iterator ends (it cannot know the last fragment before that).
    let frag = texts.iter().find(|i| msg(i)["frames"] == 5).expect("the fragmented message");
    let m = msg(frag);
    assert_eq!((m["payloadSize"].as_u64(), m["fromClient"].as_bool()), (Some(4 * 306), Some(true)));
    assert!(m["payload"].as_str().unwrap().starts_with("part0-xx"));
    let bin: Vec<&Value> = items.iter().filter(|i| msg(i)["opcode"] == "binary").collect();
    assert_eq!(bin.len(), 2);
    let all = reassembly::item::base64(&(0..=255u8).collect::<Vec<_>>());
    assert!(bin.iter().all(|i| msg(i)["payload"] == all.as_str()), "{bin:#?}");
    let ping = items.iter().find(|i| i["request"]["opcode"] == "ping").expect("ping");
    assert_eq!(
        (ping["response"]["opcode"].as_str(), ping["request"]["payload"].as_str()),
        (Some("pong"), Some("are you there"))
    );
    let close = items.iter().find(|i| i["request"]["opcode"] == "close").expect("close");
    assert_eq!(
        (close["request"]["closeCode"].as_u64(), close["request"]["closeReason"].as_str()),
        (Some(1000), Some("done"))
    );
    assert_eq!(close["response"]["opcode"], "close");
}
