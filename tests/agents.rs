//! Agents end to end through the `skua` binary: the seed's complete example
//! verbatim under `skua test-agent`, with per-minute totals computed here
//! from the capture independently; and `skua run --scripts` with broken
//! agents next to a good one — capture and the good agent lose nothing.

use std::collections::BTreeMap;

use serde_json::Value;
use skua_suite::*;

/// The seed's complete example: `examples/packets-per-minute.js` is its
/// text, unchanged.
const SEED_EXAMPLE: &str = include_str!("../examples/packets-per-minute.js");

/// (timestamp ns, wire length) of every record, read with pcap-parser.
fn records(bytes: &[u8]) -> Vec<(u64, u32)> {
    use pcap_parser::traits::PcapReaderIterator;
    let mut reader = pcap_parser::LegacyPcapReader::new(1 << 16, bytes).unwrap();
    let mut out = Vec::new();
    loop {
        match reader.next() {
            Ok((n, pcap_parser::PcapBlockOwned::Legacy(b))) => {
                out.push((
                    u64::from(b.ts_sec) * 1_000_000_000 + u64::from(b.ts_usec) * 1_000,
                    b.origlen,
                ));
                reader.consume(n);
            }
            Ok((n, _)) => reader.consume(n),
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => reader.refill().unwrap(),
            Err(e) => panic!("{e:?}"),
        }
    }
    out
}

#[test]
fn the_seed_example_prints_correct_per_minute_totals() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("demo.pcap");
    let bytes = dataplane::synth::demo_capture();
    std::fs::write(&pcap, &bytes).unwrap();
    let agent = dir.path().join("seed.js");
    std::fs::write(&agent, SEED_EXAMPLE).unwrap();

    // Expected: the job fires at every minute boundary of capture time and
    // prints what arrived since the previous firing.
    let mut windows: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let recs = records(&bytes);
    let last_minute = recs.last().unwrap().0 / 60_000_000_000;
    for (ts, len) in &recs {
        let boundary = ts / 60_000_000_000 + 1;
        if boundary <= last_minute {
            let w = windows.entry(boundary).or_default();
            w.0 += 1;
            w.1 += u64::from(*len);
        }
    }
    assert!(windows.len() >= 2, "the demo capture spans minutes");

    let out = skua(&["test-agent", agent.to_str().unwrap(), "--pcap", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.split("Captured packet count per minute: ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let kbs: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("Total KB captured per minute: ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let want_counts: Vec<u64> = windows.values().map(|w| w.0).collect();
    let want_kb: Vec<f64> = windows.values().map(|w| w.1 as f64 / 1000.0).collect();
    assert_eq!(counts, want_counts, "{stdout}");
    assert_eq!(kbs.len(), want_kb.len());
    for (got, want) in kbs.iter().zip(&want_kb) {
        assert!((got - want).abs() < 1e-6, "{got} KB vs {want} KB");
    }
}

#[test]
fn broken_agents_do_not_stall_capture_or_the_good_agent() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, src: &str| std::fs::write(dir.path().join(name), src).unwrap();
    w("good.js", "var n = 0; function onItemCaptured(data) { n++; }");
    w("runaway.js", "function onItemCaptured(data) { while (true) {} }");
    w("thrower.js", "function onItemCaptured(data) { null.boom(); }");
    w("broken.js", "var a = 1;\nfunction onItemCaptured(data) {\n  if (data { }\n}\n");
    let out = skua(&[
        "run",
        "--loop",
        "1",
        "--scripts",
        dir.path().to_str().unwrap(),
        "--summary",
        "json",
        "--quiet",
        "--set",
        "hub.listen=",
        "--set",
        "integrations.metrics_listen=",
        "--set",
        "scripting.hookBudgetMs=50",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("agent broken rejected") && stderr.contains("3:"),
        "the syntax error names its line: {stderr}"
    );
    // stdout is the summary alone; console lines are on stderr.
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (packets, _) = totals(&v);
    assert_eq!(packets, 7789, "capture lost nothing");
    let items = v["total"]["items"].as_u64().unwrap();
    let hook = |agent: &str| -> Value {
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["agent"] == agent && s["hook"] == "onItemCaptured")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(hook("good")["calls"].as_u64(), Some(items), "the good agent saw every item");
    let runaway = hook("runaway");
    assert!(runaway["interrupts"].as_u64().unwrap() >= 1, "{runaway}");
    // Quarantined after `quarantineAfter` (10) consecutive faults.
    assert!(runaway["calls"].as_u64().unwrap() <= 10, "{runaway}");
    let thrower = hook("thrower");
    assert_eq!(thrower["errors"].as_u64(), Some(10), "{thrower}");
    assert!(
        stderr.lines().any(|l| l.starts_with('[') && l.contains(" thrower] error:")),
        "the exception was logged with the agent: {stderr}"
    );
}

#[test]
fn every_bundled_example_runs_clean_on_the_demo_capture() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut args = vec!["test-agent".to_string(), examples.to_str().unwrap().to_string()];
    for kv in [
        "KINESIS_STREAM=har",
        "SLACK_WEBHOOK_URL=http://127.0.0.1:9/slack",
        "WEBHOOK_URL=http://127.0.0.1:9/hook",
        "INFLUXDB_URL=http://127.0.0.1:9",
        "INFLUXDB_TOKEN=t",
        "INFLUXDB_ORGANIZATION=o",
        "INFLUXDB_BUCKET=b",
    ] {
        args.extend(["--set".to_string(), format!("scripting.env.{kv}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = skua(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a bundled example faulted or was quarantined: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No row of the table reports an error, an interrupt or a heap-limit hit.
    let table = stdout.split("agent                    rt").nth(1).unwrap();
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cols[4..7], ["0", "0", "0"], "{row}");
    }
    // hub.action from a job reached onHubAction; helpers were called.
    assert!(
        table.lines().any(|r| r.starts_with("top-dns-names") && r.contains("onHubAction")),
        "{table}"
    );
    for call in [
        "[effect har-to-kinesis] vendor.kinesis.put(",
        "[effect influxdb-status-counts] vendor.influxdb(",
        "[effect slack-on-5xx] vendor.slack(",
        "[effect webhook-health-check] vendor.webhook(",
    ] {
        assert!(stdout.contains(call), "{call} is shown");
    }
}

/// The seed's example under `skua run --pace recorded`: the job fires on
/// the wall clock, once per runtime at the minute boundary, and the totals
/// the runtimes print add up to what was replayed before that boundary.
///
/// The capture is built for this run: UDP frames at 40 per second from now
/// until 3 s past the next minute boundary, with no frame within 1 s of the
/// boundary, so the process's start-up latency cannot move a frame across it.
#[test]
fn the_seed_job_fires_on_the_wall_clock_at_recorded_pace() {
    use dataplane::synth::{udp4, PcapWriter};
    use dataplane::wire::LinkType;
    use std::time::{SystemTime, UNIX_EPOCH};

    skua_bin(); // built (if it must be) before the clock starts
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.js"), SEED_EXAMPLE).unwrap();
    let pcap = dir.path().join("paced.pcap");

    let now_ns = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    const S: u64 = 1_000_000_000;
    // The next boundary must leave a few seconds to write the capture and
    // start; too close, wait until it has passed (then the one after is
    // the only boundary inside the replay).
    let next = |t: u64| (t / (60 * S) + 1) * 60 * S;
    if next(now_ns()) - now_ns() < 4 * S {
        std::thread::sleep(std::time::Duration::from_nanos(next(now_ns()) - now_ns() + S / 2));
    }
    let start = now_ns();
    let boundary = next(start);
    // Frames are offsets from the replay's first frame; the replay starts
    // about when the process does (estimated at `start` + 0.3 s of
    // start-up; the ±1 s gap around the boundary absorbs the error).
    let origin = start + 300_000_000;
    let end = boundary + 3 * S;
    let mut w =
        PcapWriter::new(std::fs::File::create(&pcap).unwrap(), LinkType::Ethernet, true).unwrap();
    let (mut before, mut before_bytes, mut total) = (0u64, 0u64, 0u64);
    let mut t = origin;
    let mut i = 0u32;
    while t < end {
        if t.abs_diff(boundary) > S {
            // Many flows, so both dataplane cores (and runtimes) see packets.
            let payload = vec![0x5a; 20 + (i % 7) as usize * 100];
            let frame =
                udp4([10, 0, 0, 1], [10, 0, 0, 2], 40_000 + (i % 64) as u16, 9_000, &payload);
            w.write(t, &frame, frame.len() as u32).unwrap();
            if t < boundary {
                before += 1;
                before_bytes += frame.len() as u64;
            }
            total += 1;
            i += 1;
        }
        t += S / 40;
    }
    drop(w);
    assert!(before > 0 && total > before);

    let late = now_ns().saturating_sub(origin);
    assert!(
        late < 700_000_000,
        "start-up {late} ns after the planned origin: the test's timing assumption broke"
    );
    let out = skua(&[
        "run",
        "--pcap",
        pcap.to_str().unwrap(),
        "--pace",
        "recorded",
        "--cores",
        "2",
        "--scripts",
        dir.path().to_str().unwrap(),
        "--quiet",
        "--summary",
        "json",
        "--set",
        "integrations.metrics_listen=",
    ]);
    let console = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{console}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(totals(&v).0, total, "the replay lost nothing");

    // One firing: one count line and one KB line from each runtime.
    let lines = |needle: &str| -> Vec<(String, f64)> {
        console
            .lines()
            .filter_map(|l| {
                let (tag, value) = l.split_once(needle)?;
                Some((
                    tag.split_whitespace().nth(1).unwrap_or("").to_string(),
                    value.trim().parse().unwrap(),
                ))
            })
            .collect()
    };
    let counts = lines("Captured packet count per minute: ");
    let kbs = lines("Total KB captured per minute: ");
    let mut runtimes: Vec<&str> = counts.iter().map(|(rt, _)| rt.as_str()).collect();
    runtimes.sort();
    assert_eq!(runtimes, ["rt0", "rt1"], "once per runtime at the one boundary:\n{console}");
    assert_eq!(kbs.len(), 2, "{console}");
    let count: f64 = counts.iter().map(|(_, n)| n).sum();
    let kb: f64 = kbs.iter().map(|(_, n)| n).sum();
    assert_eq!(count as u64, before, "packets before the boundary:\n{console}");
    assert!(
        (kb - before_bytes as f64 / 1000.0).abs() < 1e-6,
        "{kb} KB vs {} KB",
        before_bytes as f64 / 1000.0
    );
}

/// Editing the agent folder while `skua run` captures: the changed agent is
/// reloaded into every runtime, the other agent keeps its state (its count
/// goes on rising across the reload), a broken save is rejected with its
/// line and the running version kept, and capture never pauses.
#[test]
fn edited_agents_reload_while_capture_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, src: &str| std::fs::write(dir.path().join(name), src).unwrap();
    w("keep.js", "var n = 0;\nfunction onItemCaptured(d) { n++; }\njobs.schedule('report', '* * * * * *', function () { console.log('keep', n); });\n");
    w("edit.js", "jobs.schedule('say', '* * * * * *', function () { console.log('edit v1'); });\n");
    let child = std::process::Command::new(skua_bin())
        .args([
            "run",
            "--loop",
            "0",
            "--duration",
            "6",
            "--cores",
            "2",
            "--scripts",
            dir.path().to_str().unwrap(),
        ])
        .args([
            "--summary",
            "json",
            "--quiet",
            "--set",
            "integrations.metrics_listen=",
            "--set",
            "scripting.watchMs=200",
        ])
        // With the run's hub (and dashboard): edits go through its store.
        .args(["--set", "hub.listen=127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2200));
    w("edit.js", "jobs.schedule('say', '* * * * * *', function () { console.log('edit v2'); });\n");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    w(
        "edit.js",
        "jobs.schedule('say', '* * * * * *', function () {\n  console.log('edit v3';\n});\n",
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    assert!(stderr.contains("agent edit (re)loaded"), "{stderr}");
    assert!(
        stderr.contains("agent edit rejected") && stderr.contains("2:"),
        "the broken save names its line: {stderr}"
    );
    // (The run's hub-side runtime prints too, on its own clock: left out.)
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with('['))
        .filter(|l| !l.starts_with("[hub "))
        .filter_map(|l| l.split("edit ").nth(1))
        .collect();
    let first_v2 =
        said.iter().position(|s| *s == "v2").unwrap_or_else(|| panic!("v2 never ran:\n{stderr}"));
    assert!(
        said[..first_v2].iter().all(|s| *s == "v1") && said[first_v2..].iter().all(|s| *s == "v2"),
        "{said:?}"
    );
    assert!(said.iter().all(|s| *s != "v3;"), "the broken version never ran");

    // Per runtime, `keep` counted on through the reload: never reset.
    for rt in ["rt0", "rt1"] {
        let counts: Vec<u64> = stderr
            .lines()
            .filter(|l| l.contains(&format!(" {rt} keep]")))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        assert!(counts.len() >= 4, "{rt}: {counts:?}\n{stderr}");
        assert!(
            counts.windows(2).all(|p| p[0] <= p[1]) && counts.last() > counts.first(),
            "{rt}: {counts:?}"
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dropped: u64 =
        v["total"]["drops"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert_eq!(dropped, 0, "{v}");
}
