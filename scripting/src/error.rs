//! Typed errors of the scripting crate. Load errors carry what a user needs
//! to fix the agent (its name, line and column); pool errors say whether the
//! runtime thread is gone (no retry helps) or only slow (a retry may help).

use std::fmt;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("scripting.{key} must be greater than 0")]
    Zero { key: &'static str },
    #[error("scripting.scriptCpus lists {cpus} CPUs for {cores} script cores")]
    TooFewCpus { cores: u16, cpus: usize },
    #[error("scripting.env: {name:?} is not a valid variable name (letters, digits, _)")]
    EnvName { name: String },
    #[error("scripting.{key}: {why}")]
    Range { key: &'static str, why: String },
}

/// Where in an agent's own file something happened (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A syntax construct beyond ES5, found by [`crate::es5::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Es5Finding {
    pub at: Position,
    /// What was found, e.g. "arrow function".
    pub what: &'static str,
}

impl fmt::Display for Es5Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (beyond ES5)", self.at, self.what)
    }
}

/// Why an agent was not loaded. The agents already running keep running.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    #[error("agent {agent:?}: invalid name (letters, digits, '.', '_', '-'; at most 128 bytes)")]
    InvalidName { agent: String },
    #[error("{agent}.js:{at}: {message}")]
    Compile { agent: String, at: Position, message: String },
    /// The agent's top-level code threw (or ran past `jobBudgetMs`).
    #[error("{agent}.js:{at}: top-level code failed: {message}")]
    TopLevel { agent: String, at: Position, message: String },
    #[error("{agent}.js: syntax beyond ES5 and scripting.es5Strict is on: {}", first(.findings))]
    NotEs5 { agent: String, findings: Vec<Es5Finding> },
    /// The engine itself failed (out of memory while compiling, ...).
    #[error("{agent}.js: engine error: {message}")]
    Engine { agent: String, message: String },
}

fn first(f: &[Es5Finding]) -> String {
    match f {
        [] => String::new(),
        [one] => one.to_string(),
        [one, rest @ ..] => format!("{one} and {} more", rest.len()),
    }
}

impl LoadError {
    pub fn agent(&self) -> &str {
        match self {
            LoadError::InvalidName { agent }
            | LoadError::Compile { agent, .. }
            | LoadError::TopLevel { agent, .. }
            | LoadError::NotEs5 { agent, .. }
            | LoadError::Engine { agent, .. } => agent,
        }
    }

    /// Line and column in the agent's file, when the error has one.
    pub fn position(&self) -> Option<Position> {
        match self {
            LoadError::Compile { at, .. } | LoadError::TopLevel { at, .. } => Some(*at),
            LoadError::NotEs5 { findings, .. } => findings.first().map(|f| f.at),
            _ => None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ScriptError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// QuickJS could not create a runtime or context (out of memory).
    #[error("cannot create a JavaScript runtime: {0}")]
    Engine(String),
    #[error("cannot start script core {core}")]
    Spawn {
        core: usize,
        #[source]
        source: std::io::Error,
    },
    /// A script core thread has exited (it panicked or was shut down); no
    /// retry helps.
    #[error("script core {core} is gone")]
    CoreGone { core: usize },
    /// A script core did not answer in time (it is busy); a retry may help.
    #[error("script core {core} did not answer within {waited_ms} ms")]
    CoreTimeout { core: usize, waited_ms: u64 },
}
