//! `pcap.path(data.stream)`, `pcap.snapshot(streams, dir)` and
//! `pcap.nameResolutionHistory()` as Kubeshark's agents call them, on
//! generated captures (`skua gen`, 1 and 2 cores) and the conformance
//! corpus. Every file skua writes is read back by Wireshark's own tools
//! (`editcap`, which converts it, `capinfos`, which counts it); its packets
//! must equal, byte for byte, timestamp for timestamp and in order, the
//! packets tshark assigns to the same TCP or UDP conversation
//! (`tcp.stream` / `udp.stream`) in the source capture. tshark is the
//! reference, not skua's own flow key extraction: it is what a user opens
//! the file with.
//!
//! How an agent sees a whole stream: a capture is followed, after a pause
//! of capture time (100 s: shorter than `dataplane.retention_seconds`, or
//! the marker's packets would age the others out), by a marker request
//! (`GET /__pcap_done`); the replay is paced (`pcap.pace=recorded`, 100
//! times faster) so that every core has taken every earlier packet when
//! the marker's item reaches the agent, which then asks for the files of
//! every stream it saw. An agent that asks at each item
//! (the corpus run) gets the stream as retained so far: a prefix of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dataplane::synth::{http_conversation, PcapWriter};
use dataplane::wire::LinkType;

use crate::Run;

/// One frame: capture time in ns and its bytes.
type Frame = (u64, Vec<u8>);

fn tool(name: &str) -> Option<PathBuf> {
    let ok = Command::new(name).arg("-v").output().is_ok_and(|o| o.status.success());
    ok.then(|| PathBuf::from(name))
}

/// The frames of any capture tshark reads, through `editcap -F nsecpcap`
/// (so the file is parsed by Wireshark's reader, not by skua's).
fn frames(path: &Path) -> (LinkType, Vec<Frame>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pcap");
    let st = Command::new("editcap").args(["-F", "nsecpcap"]).arg(path).arg(&out).output().unwrap();
    assert!(
        st.status.success(),
        "editcap {}: {}",
        path.display(),
        String::from_utf8_lossy(&st.stderr)
    );
    let b = std::fs::read(&out).unwrap();
    assert_eq!(&b[..4], &0xa1b2_3c4du32.to_le_bytes(), "nanosecond pcap");
    let link = LinkType::from_pcap(u32::from_le_bytes(b[20..24].try_into().unwrap()));
    let mut at = 24;
    let mut v = Vec::new();
    while at + 16 <= b.len() {
        let u = |i: usize| u32::from_le_bytes(b[at + i..at + i + 4].try_into().unwrap());
        let ts = u64::from(u(0)) * 1_000_000_000 + u64::from(u(4));
        let caplen = u(8) as usize;
        v.push((ts, b[at + 16..at + 16 + caplen].to_vec()));
        at += 16 + caplen;
    }
    (link, v)
}

/// `capinfos`' packet count of a file.
fn capinfos_count(path: &Path) -> usize {
    let o = Command::new("capinfos").args(["-T", "-r", "-c"]).arg(path).output().unwrap();
    assert!(
        o.status.success(),
        "capinfos {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    text.trim().rsplit('\t').next().unwrap().trim().parse().unwrap()
}

/// The source's frames with tshark's conversation of each (`t<n>` for
/// `tcp.stream`, `u<n>` for `udp.stream`, empty for neither) and whether
/// it is an IP fragment (tshark gives a datagram's conversation to the
/// fragment that completes it only; skua's file holds all of them).
struct Source {
    frames: Vec<Frame>,
    convo: Vec<String>,
    fragment: Vec<bool>,
    /// Frame index by (time, bytes).
    at: HashMap<Frame, usize>,
}

impl Source {
    fn read(path: &Path) -> Source {
        let (_, frames) = frames(path);
        let o = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(path)
            .args(["-T", "fields", "-E", "separator=,", "-E", "occurrence=f"])
            .args([
                "-e",
                "tcp.stream",
                "-e",
                "udp.stream",
                "-e",
                "ip.flags.mf",
                "-e",
                "ip.frag_offset",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
        let (mut convo, mut fragment) = (Vec::new(), Vec::new());
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let f: Vec<&str> = l.split(',').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            convo.push(match (get(0), get(1)) {
                (t, _) if !t.is_empty() => format!("t{t}"),
                (_, u) if !u.is_empty() => format!("u{u}"),
                _ => String::new(),
            });
            let mf = matches!(get(2), "1" | "True" | "true");
            fragment.push(mf || !matches!(get(3), "" | "0"));
        }
        assert_eq!(convo.len(), frames.len(), "{}", path.display());
        let at = frames.iter().cloned().enumerate().map(|(i, f)| (f, i)).collect();
        Source { frames, convo, fragment, at }
    }

    /// tshark's conversation of a file skua wrote, the conversation's
    /// frames from the file's first one on (with the fragments of its
    /// datagrams the file holds), and how many of its frames came before
    /// the file's first (packets skua saw before it tracked the flow: ACKs
    /// of a connection the capture joined midway).
    fn conversation_of(&self, file: &[Frame]) -> (String, Vec<Frame>, usize) {
        let idx: Vec<usize> = file
            .iter()
            .map(|f| *self.at.get(f).expect("every packet of the file is in the source"))
            .collect();
        let c = idx
            .iter()
            .map(|&i| &self.convo[i])
            .find(|c| !c.is_empty())
            .cloned()
            .expect("the file holds a TCP/UDP packet");
        let first = idx[0];
        let before = self.convo[..first].iter().filter(|k| **k == c).count();
        let want = (first..self.frames.len())
            .filter(|&i| self.convo[i] == c || (self.fragment[i] && idx.contains(&i)))
            .map(|i| self.frames[i].clone())
            .collect();
        (c, want, before)
    }
}

/// Reads a file skua wrote and checks it: Wireshark reads it, counts agree.
fn written(path: &Path) -> Vec<Frame> {
    let (_, f) = frames(path);
    assert_eq!(capinfos_count(path), f.len(), "{}", path.display());
    assert!(!f.is_empty(), "{} is empty", path.display());
    f
}

/// Appends the marker (a pause of `gap_s` capture seconds, then `GET
/// /__pcap_done`) to `src`, writing `dst` (classic pcap, nanoseconds).
fn with_marker(src: &Path, dst: &Path, gap_s: u64) {
    let (link, mut f) = frames(src);
    assert_eq!(link, LinkType::Ethernet, "a marker is built for Ethernet captures");
    let t = f.last().map_or(0, |p| p.0) + gap_s * 1_000_000_000;
    let mut marker = Vec::new();
    http_conversation(
        &mut marker,
        t,
        [10, 250, 0, 1],
        [10, 250, 0, 2],
        61_000,
        b"GET /__pcap_done HTTP/1.1\r\nHost: marker\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        1_000_000,
    );
    f.extend(marker.into_iter().map(|p| (p.ts_ns, p.data)));
    let out = std::io::BufWriter::new(std::fs::File::create(dst).unwrap());
    let mut w = PcapWriter::new(out, link, true).unwrap();
    for (ts, d) in &f {
        w.write(*ts, d, d.len() as u32).unwrap();
    }
    drop(w.into_inner());
}

/// The agent: remembers every stream; at the marker asks for each stream's
/// file and for one snapshot of the first three, in a folder of its own.
const WHOLE_STREAMS: &str = r#"
var order = [], seen = {};
function onItemCaptured(data) {
  if (data.request.path === "/__pcap_done") {
    for (var i = 0; i < order.length; i++)
      console.log("file " + order[i] + " " + pcap.path(order[i]));
    console.log("snap " + order.slice(0, 3).join(",") + " " + pcap.snapshot(order.slice(0, 3), "merged"));
    return;
  }
  if (!seen[data.stream]) { seen[data.stream] = true; order.push(data.stream); }
}
"#;

/// `(stream, path)` of each `file` line.
type Files = Vec<(String, PathBuf)>;
/// The `snap` line's streams and path.
type Snapshot = Option<(Vec<String>, PathBuf)>;

fn files_of(console: &[String]) -> (Files, Snapshot) {
    let mut files = Vec::new();
    let mut snap = None;
    for l in console {
        let parts: Vec<&str> = l.split(' ').collect();
        match parts.as_slice() {
            ["file", s, p] => files.push((s.to_string(), PathBuf::from(p))),
            ["snap", s, p] => {
                snap = Some((s.split(',').map(String::from).collect(), PathBuf::from(p)))
            }
            _ => {}
        }
    }
    (files, snap)
}

/// `live`: through `skua test-agent --live` (one thread, the capture's
/// clock) instead of `skua run`.
fn run_whole_streams(cores: u32, live: bool) {
    if tool("tshark").is_none() || tool("editcap").is_none() || tool("capinfos").is_none() {
        skua_suite::skip::missing("tshark, editcap and capinfos (Debian package tshark)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("gen.pcap");
    let st = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["gen", "--seed", "7", "--exchanges", "40", "--flows", "6", "--mix", "api"])
        .args(["--dns-per-mille", "200", "--output"])
        .arg(&gen)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let src = dir.path().join("src.pcap");
    with_marker(&gen, &src, 100);
    // With two cores one script core sees the items of both (an inline
    // runtime per core would know only its own core's streams).
    let mut run = Run::new("pcaps", WHOLE_STREAMS)
        .set(&format!("dataplane.cores={cores}"))
        .set(&format!("scripting.scriptCores={}", u32::from(cores > 1)))
        .set("pcap.pace=recorded")
        .set("pcap.speed=100")
        .set("scripting.hookBudgetMs=10000")
        .pcap(&src);
    if live {
        run = run.on_capture_clock();
    }
    let out = run.run();
    out.clean();
    let source = Source::read(&src);
    let (files, snap) = files_of(&out.console());
    assert!(files.len() >= 6, "streams: {files:?}\n{}", out.stdout);
    let mut convos = HashMap::new();
    for (stream, path) in &files {
        assert_eq!(path.file_name().unwrap().to_string_lossy(), format!("stream-{stream}.pcapng"));
        let got = written(path);
        let (c, want, before) = source.conversation_of(&got);
        assert_eq!(before, 0, "stream {stream} ({c}) misses the conversation's first packets");
        assert!(
            got == want,
            "stream {stream} ({c}): {} packets written, {} in the source",
            got.len(),
            want.len()
        );
        // One skua stream, one conversation, and the other way round.
        assert!(convos.insert(c.clone(), stream.clone()).is_none(), "{c} twice");
    }
    // The snapshot: the union of its streams, in capture order.
    let (streams, path) = snap.expect("a snapshot");
    assert!(path.parent().unwrap().ends_with("pcap/merged"), "{}", path.display());
    let got = written(&path);
    let mut want: Vec<Frame> = Vec::new();
    for s in &streams {
        let f = &files.iter().find(|(x, _)| x == s).unwrap().1;
        want.extend(written(f));
    }
    want.sort_by_key(|f| source.at[f]);
    assert!(got == want, "snapshot: {} packets, the union has {}", got.len(), want.len());
}

#[test]
fn pcap_path_holds_each_stream_of_a_generated_capture() {
    run_whole_streams(1, false);
}

#[test]
fn pcap_path_holds_each_stream_with_two_cores() {
    run_whole_streams(2, false);
}

#[test]
fn pcap_path_holds_each_stream_in_test_agent_live() {
    run_whole_streams(1, true);
}

/// An agent calling `pcap.path(data.stream)` at every item of every corpus
/// capture: each file is that item's conversation so far, byte for byte,
/// from the packet that started skua's flow (a capture joining a
/// connection midway has ACKs before it that open no flow).
#[test]
fn pcap_path_of_every_corpus_item_is_its_conversation_so_far() {
    if tool("tshark").is_none() || tool("editcap").is_none() || tool("capinfos").is_none() {
        skua_suite::skip::missing("tshark, editcap and capinfos (Debian package tshark)");
        return;
    }
    let pcaps = skua_suite::require!(skua_suite::corpus_pcaps(), "the conformance corpus");
    let agent = r#"
function onItemCaptured(data) {
  var p = pcap.path(data.stream);
  console.log("file " + data.stream + " " + p);
}
"#;
    let (mut checked, mut captures) = (0, 0);
    for src in &pcaps {
        let out = Run::new("each", agent).set("scripting.hookBudgetMs=10000").pcap(src).run();
        out.clean();
        let (files, _) = files_of(&out.console());
        if files.is_empty() {
            continue;
        }
        captures += 1;
        let source = Source::read(src);
        // The last file written for a stream is the one on disk.
        let mut last: HashMap<String, PathBuf> = HashMap::new();
        for (s, p) in files {
            last.insert(s, p);
        }
        for (stream, path) in &last {
            let got = written(path);
            let (c, want, _) = source.conversation_of(&got);
            assert!(
                got.len() <= want.len() && got[..] == want[..got.len()],
                "{}: stream {stream} ({c}): {} packets are not the conversation's first ({} in all)",
                src.display(),
                got.len(),
                want.len()
            );
            checked += 1;
        }
    }
    assert!(captures > 10 && checked > 50, "{captures} captures, {checked} streams checked");
}

/// A tiny byte budget: the first streams are evicted, the agent gets a
/// catchable Error naming the budget; unknown streams, wrong types and
/// folders leaving the pcap folder are catchable errors too.
#[test]
fn pcap_helpers_reject_what_they_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("gen.pcap");
    let st = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["gen", "--seed", "3", "--exchanges", "60", "--flows", "4", "--mix", "api"])
        .arg("--output")
        .arg(&gen)
        .output()
        .unwrap();
    assert!(st.status.success());
    let src = dir.path().join("src.pcap");
    with_marker(&gen, &src, 100);
    let agent = r#"
var first = null;
function attempt(what, f) {
  try { console.log("ok " + what + " " + f()); }
  catch (e) { console.log("error " + what + ": " + (e instanceof Error) + " " + e.message); }
}
function onItemCaptured(data) {
  if (first === null) first = data.stream;
  if (data.request.path !== "/__pcap_done") return;
  attempt("evicted", function () { return pcap.path(first); });
  attempt("unknown", function () { return pcap.path("281474976710655"); });
  attempt("letters", function () { return pcap.path("abc"); });
  attempt("object", function () { return pcap.path({}); });
  attempt("missing", function () { return pcap.path(); });
  attempt("empty", function () { return pcap.snapshot([]); });
  attempt("escape", function () { return pcap.snapshot([data.stream], "../out"); });
  attempt("absolute", function () { return pcap.snapshot([data.stream], "/tmp"); });
  attempt("badseconds", function () { return pcap.snapshot(-1); });
  attempt("names", function () { return JSON.stringify(pcap.nameResolutionHistory()); });
  attempt("current", function () { return pcap.path(data.stream).indexOf("stream-"); });
  attempt("seconds", function () { return pcap.snapshot(5); });
  attempt("all", function () { return pcap.snapshot(); });
}
"#;
    let out = Run::new("bad", agent)
        .set("dataplane.retention_bytes=8192")
        .set("pcap.pace=recorded")
        .set("pcap.speed=100")
        .set("scripting.hookBudgetMs=10000")
        .pcap(&src)
        .run();
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let lines = out.console();
    let line = |what: &str| {
        lines
            .iter()
            .find(|l| {
                l.starts_with(&format!("ok {what} ")) || l.starts_with(&format!("error {what}:"))
            })
            .unwrap_or_else(|| panic!("no {what} line: {lines:#?}"))
            .clone()
    };
    let evicted = line("evicted");
    assert!(evicted.starts_with("error evicted: true"), "{evicted}");
    assert!(evicted.contains("dataplane.retention_bytes"), "{evicted}");
    assert!(line("unknown").contains("never seen"), "{}", line("unknown"));
    for what in ["letters", "object", "missing"] {
        let l = line(what);
        assert!(l.starts_with(&format!("error {what}: true")) && l.contains("stream"), "{l}");
    }
    assert!(line("empty").starts_with("error empty: true"), "{}", line("empty"));
    assert!(line("escape").contains("'..' is not allowed"), "{}", line("escape"));
    assert!(line("absolute").contains("absolute paths are not allowed"), "{}", line("absolute"));
    assert!(line("badseconds").starts_with("error badseconds: true"), "{}", line("badseconds"));
    assert_eq!(line("names"), "ok names {}");
    let current = line("current");
    let at: i64 = current.trim_start_matches("ok current ").parse().unwrap_or(-1);
    assert!(at >= 0, "{current}");
    // The exit summary counts what the budget evicted and the miss.
    let summary = out.stdout.lines().find(|l| l.starts_with("retention: ")).unwrap_or_default();
    let n = |after: &str| -> u64 {
        let rest =
            &summary[summary.find(after).unwrap_or_else(|| panic!("{summary}")) + after.len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    assert!(n("evicted ") > 0 && n("; ") >= 2, "{summary}");
    // Nothing was written outside the pcap folder.
    assert!(!dir.path().join("out").exists());
    // `pcap.snapshot(seconds)` and `pcap.snapshot()`: what the 8 KiB ring
    // still holds, every packet one of the source's, in its order.
    if tool("tshark").is_none() || tool("editcap").is_none() || tool("capinfos").is_none() {
        skua_suite::skip::missing("tshark, editcap and capinfos (Debian package tshark)");
        return;
    }
    let source = Source::read(&src);
    for what in ["seconds", "all"] {
        let l = line(what);
        let path = l.strip_prefix(&format!("ok {what} ")).unwrap_or_else(|| panic!("{l}"));
        let got = written(Path::new(path));
        let at: Vec<usize> = got.iter().map(|f| source.at[f]).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{what}: out of order");
        // The ring's newest packets are the marker conversation's.
        let marker = &source.convo[source.frames.len() - 1];
        assert_eq!(&source.convo[*at.last().unwrap()], marker, "{what}");
    }
}

/// `pcap.nameResolutionHistory()` in a cluster (the loopback fake API
/// server, named by a kubeconfig): the map published after the pod list
/// names the pod by its IP, Kubeshark's way.
#[test]
fn name_resolution_history_names_the_pods_of_the_cluster() {
    use controlplane::kube::fake_api::FakeApi;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (api, url) = rt.block_on(FakeApi::start()).unwrap();
    api.add_pod(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-7f", "namespace": "shop", "uid": "u1", "resourceVersion": "1"},
        "spec": {"nodeName": "node-9", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": "10.1.0.7", "podIPs": [{"ip": "10.1.0.7"}]}
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
        ),
    )
    .unwrap();
    // The pod list comes in while the capture waits 1.5 s.
    let pcap = crate::capture::Capture::new()
        .get("/first", 200)
        .wait_ms(1500)
        .get("/__pcap_done", 200)
        .write(dir.path(), "k.pcap");
    let agent = r#"
function onItemCaptured(data) {
  if (data.request.path === "/__pcap_done")
    console.log("names " + JSON.stringify(pcap.nameResolutionHistory()));
}
"#;
    let out = Run::new("names", agent)
        .var("KUBECONFIG", kubeconfig.to_str().unwrap())
        .set("kubernetes.enabled=true")
        .set("kubernetes.scope=cluster")
        .set("kubernetes.services=false")
        .set("pcap.pace=recorded")
        .pcap(&pcap)
        .run();
    out.clean();
    let line = out.console().into_iter().find_map(|l| l.strip_prefix("names ").map(String::from));
    let names: serde_json::Value = serde_json::from_str(&line.expect("a names line")).unwrap();
    let maps = names.as_object().unwrap();
    assert!(!maps.is_empty(), "{names}");
    for (at, map) in maps {
        assert!(at.parse::<u64>().unwrap() > 1_700_000_000, "{at}");
        assert_eq!(
            map["10.1.0.7"],
            serde_json::json!({"FullAddress": "checkout-7f.shop", "Namespace": "shop"}),
            "{names}"
        );
    }
}
