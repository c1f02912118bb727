//! Issue 30, fault 8 (console part): an agent printing without limit. One
//! hub agent wrote 1 M lines, 34 MB to stderr in 10 s.
//!
//! Sent: an agent printing 1,000 lines per item over the bundled capture
//! (7,789 packets), beside a quiet agent printing one line per minute of
//! capture time. Bound: `scripting.consoleLinesPerSecond` per agent (a
//! burst of one second's worth, then that rate), plus one line per report
//! saying how many were suppressed; the quiet agent's lines all come
//! through. Counter: the agent's `consoleLinesSuppressed` in the summary
//! (`skua_agent_console_lines_suppressed_total`).

use skua_suite::*;

#[test]
fn a_console_flood_is_cut_to_the_per_agent_rate_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flood.js"),
        "function onItemCaptured(d) { for (var i = 0; i < 1000; i++) console.log('flood', i, d.request.path); }",
    )
    .unwrap();
    std::fs::write(dir.path().join("quiet.js"), "console.log('quiet agent loaded');").unwrap();
    let t0 = std::time::Instant::now();
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
        "scripting.consoleLinesPerSecond=100",
    ]);
    let secs = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["total"]["items"].as_u64().unwrap();
    assert!(items > 100, "{items} items");
    let flood = stderr.lines().filter(|l| l.contains(" flood] flood ")).count() as u64;
    // A burst of 100 and then 100 a second, for as long as the run took.
    let bound = 100 + (100.0 * secs).ceil() as u64;
    assert!(flood <= bound, "{flood} flood lines in {secs:.1} s (bound {bound})");
    assert!(flood >= 100, "the first second's worth comes through: {flood}");
    assert!(stderr.contains("quiet agent loaded"), "another agent's line is not suppressed");
    let suppressed: u64 = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["agent"] == "flood")
        .map(|r| r["consoleLinesSuppressed"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(suppressed + flood, items * 1_000, "every line printed or counted");
    assert!(
        stderr.contains("console line(s) suppressed over")
            && stderr.contains("scripting.consoleLinesPerSecond (100)"),
        "the suppressed lines are reported"
    );
    assert!(stderr.len() < 2 << 20, "stderr is {} bytes", stderr.len());
}
