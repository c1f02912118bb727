//! skua's own log and the agents' console, two streams on stderr.
//!
//! Every log line of the binary and the libraries is a `tracing` event;
//! this module installs the one subscriber that writes them: text (for a
//! terminal) or JSON, one object a line (for a cluster's log pipeline),
//! filtered by `SKUA_LOG` (or `RUST_LOG`) in `tracing-subscriber`'s
//! `EnvFilter` syntax, `info` when neither is set.
//!
//! Records at `info`, `warning` and `error` also go, as JSON text, to the
//! `onLogCall(level, msg)` hook of the runtimes registered with
//! [`forward_logs_to`] whose agents define it ([`LogCallLayer`]): each
//! runtime's queue is bounded (`scripting.logQueue`, drops counted), and a
//! record logged on a thread while it runs `onLogCall` is not forwarded,
//! so a hook never feeds itself. (A helper the hook calls that fails is
//! logged by the executor at most once per 10 s per integration.)
//!
//! The agents' console (`console.log` from a hook) is not skua's log: its
//! lines are written by [`console_line`] as they are, or as JSON objects
//! with `"stream": "console"` when the log is JSON, so a log pipeline
//! parses every line of stderr and still tells the two apart. Neither ever
//! goes to stdout, which carries only what a command was asked to print
//! (`--summary json`, `skua dissect`'s items).

use std::io::{IsTerminal, Write};
use std::sync::{OnceLock, RwLock};

use clap::ValueEnum;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// How skua's log lines (and the console lines beside them) are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-07T21:00:00.123Z  INFO message key=value`.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `fields.message`, ...
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The filter when neither `SKUA_LOG` nor `RUST_LOG` is set.
const DEFAULT_FILTER: &str = "info";

/// Installs the subscriber for the process. A filter that does not parse
/// is reported once and `info` is used. Calling it again does nothing.
pub fn init(format: LogFormat) {
    if FORMAT.set(format).is_err() {
        return;
    }
    let (spec, var) = match (std::env::var("SKUA_LOG"), std::env::var("RUST_LOG")) {
        (Ok(s), _) => (s, "SKUA_LOG"),
        (_, Ok(s)) => (s, "RUST_LOG"),
        _ => (DEFAULT_FILTER.to_string(), ""),
    };
    let (filter, bad) = match EnvFilter::builder().parse(&spec) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(format!("{var}={spec:?}: {e}"))),
    };
    let layer = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    // A second subscriber (a test harness's) may already be there.
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .with(LogCallLayer.with_filter(LevelFilter::INFO))
        .try_init();
    if let Some(bad) = bad {
        tracing::warn!("log filter not understood, using {DEFAULT_FILTER}: {bad}");
    }
}

/// Runtimes whose `onLogCall` agents get skua's log records.
static LOG_TAPS: RwLock<Vec<scripting::Mailbox>> = RwLock::new(Vec::new());

thread_local! {
    static FORWARDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Offers skua's `info`/`warning`/`error` records to `mailbox`'s runtime
/// from now on (taken only while one of its agents defines `onLogCall`).
pub fn forward_logs_to(mailbox: scripting::Mailbox) {
    if let Ok(mut taps) = LOG_TAPS.write() {
        taps.push(mailbox);
    }
}

/// The `tracing` layer behind `onLogCall` (see the module doc).
pub struct LogCallLayer;

impl<S: tracing::Subscriber> Layer<S> for LogCallLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => return,
        };
        if scripting::in_log_hook() || FORWARDING.with(|f| f.get()) {
            return;
        }
        let Ok(taps) = LOG_TAPS.read() else { return };
        if !taps.iter().any(scripting::Mailbox::wants_logs) {
            return;
        }
        FORWARDING.with(|f| f.set(true));
        let msg = log_record_json(level, event).to_string();
        // A runtime that is gone stopped wanting records when it went.
        for tap in taps.iter() {
            tap.log(scripting::LogRecord { level, msg: msg.clone() });
        }
        FORWARDING.with(|f| f.set(false));
    }
}

/// A record as `onLogCall`'s `msg`: `{time, level, message, ...fields}`
/// (zerolog's shape, which Kubeshark's agents parse).
fn log_record_json(level: &str, event: &tracing::Event<'_>) -> serde_json::Value {
    struct Fields(serde_json::Map<String, serde_json::Value>);
    impl tracing::field::Visit for Fields {
        fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
            self.0.insert(f.name().to_string(), v.into());
        }
        fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
            self.0.insert(f.name().to_string(), v.into());
        }
        fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
            self.0.insert(f.name().to_string(), v.into());
        }
        fn record_bool(&mut self, f: &tracing::field::Field, v: bool) {
            self.0.insert(f.name().to_string(), v.into());
        }
        fn record_f64(&mut self, f: &tracing::field::Field, v: f64) {
            self.0.insert(f.name().to_string(), v.into());
        }
        fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
            self.0.insert(f.name().to_string(), format!("{v:?}").into());
        }
    }
    let mut fields = Fields(serde_json::Map::new());
    event.record(&mut fields);
    let mut out = serde_json::Map::new();
    out.insert(
        "time".into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into(),
    );
    out.insert("level".into(), level.into());
    out.insert("message".into(), fields.0.remove("message").unwrap_or_default());
    out.insert("target".into(), event.metadata().target().into());
    out.extend(fields.0);
    serde_json::Value::Object(out)
}

/// The format [`init`] installed (text before it ran).
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Writes one agent console line, in the log's format.
pub fn console_line(out: &mut impl Write, line: &scripting::ConsoleLine) -> std::io::Result<()> {
    console_line_as(format(), out, line)
}

fn console_line_as(
    format: LogFormat,
    out: &mut impl Write,
    line: &scripting::ConsoleLine,
) -> std::io::Result<()> {
    match format {
        LogFormat::Text => writeln!(out, "{line}"),
        LogFormat::Json => {
            let ts = chrono::DateTime::<chrono::Utc>::from(line.ts)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let v = serde_json::json!({
                "timestamp": ts,
                "stream": "console",
                "level": line.level.as_str(),
                "node": &*line.node,
                "runtime": line.runtime.to_string(),
                "agent": &*line.agent,
                "text": line.text,
            });
            writeln!(out, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scripting::{ConsoleLevel, ConsoleLine, RuntimeId};

    fn line() -> ConsoleLine {
        ConsoleLine {
            agent: "count".into(),
            node: "n1".into(),
            runtime: RuntimeId(2),
            level: ConsoleLevel::Log,
            text: "hello \"there\"".into(),
            ts: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn console_lines_are_plain_in_text_and_tagged_objects_in_json() {
        let mut out = Vec::new();
        console_line_as(LogFormat::Text, &mut out, &line()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "[n1 rt2 count] hello \"there\"\n");
        let mut out = Vec::new();
        console_line_as(LogFormat::Json, &mut out, &line()).unwrap();
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream"], "console");
        assert_eq!(v["agent"], "count");
        assert_eq!(v["level"], "log");
        assert_eq!(v["text"], "hello \"there\"");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000000Z");
    }
}
