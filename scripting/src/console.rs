//! The console sink: lines agents print with `console.*`, tagged with agent,
//! node and runtime, on one bounded channel shared by all runtimes that the
//! caller (CLI, dashboard stream, log) drains. A full channel drops the line
//! and counts it: printing never blocks a script core.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Identifies one runtime (a script core, an inline capture core, the hub).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RuntimeId(pub u32);

impl fmt::Display for RuntimeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rt{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleLevel {
    /// `console.log`.
    Log,
    /// `console.error`, and faults the runtime reports (exceptions,
    /// interrupts, quarantine).
    Error,
    /// `console.clear()`: the dashboard clears its console view.
    Clear,
}

impl ConsoleLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleLevel::Log => "log",
            ConsoleLevel::Error => "error",
            ConsoleLevel::Clear => "clear",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleLine {
    pub agent: Arc<str>,
    pub node: Arc<str>,
    pub runtime: RuntimeId,
    pub level: ConsoleLevel,
    pub text: String,
    pub ts: SystemTime,
}

impl fmt::Display for ConsoleLine {
    /// `[node rt0 agent] text`, `error` lines marked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.level {
            ConsoleLevel::Log => "",
            ConsoleLevel::Error => " error:",
            ConsoleLevel::Clear => " (console cleared)",
        };
        write!(f, "[{} {} {}]{} {}", self.node, self.runtime, self.agent, mark, self.text)
    }
}

/// The sending side, cloned into every runtime.
#[derive(Debug, Clone)]
pub struct ConsoleSink {
    tx: Sender<ConsoleLine>,
    dropped: Arc<AtomicU64>,
}

impl ConsoleSink {
    /// A sink holding at most `capacity` undrained lines, and its receiver.
    pub fn new(capacity: usize) -> (ConsoleSink, Receiver<ConsoleLine>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        (ConsoleSink { tx, dropped: Arc::new(AtomicU64::new(0)) }, rx)
    }

    /// Queues a line; `false` (and counted) when the queue is full or
    /// nobody drains it any more.
    pub fn send(&self, line: ConsoleLine) -> bool {
        match self.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
