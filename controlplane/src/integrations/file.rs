//! `file.write/append/read/delete/mkdir(path, ...)`, run on the control
//! plane's blocking pool (never on a script or capture core), inside the
//! agent's own directory `<scripting.dataDir>/<agent>/`.
//!
//! Paths arrive checked by `scripting::effects::confine` (relative, no
//! `..`). This module adds what only the file system can tell: no
//! component of the path below the agent's directory may be a symbolic
//! link (a link could lead out of it), and the agent's name must be one
//! plain path component. `write` and `append` create missing parent
//! folders; `read` returns the content as a string (invalid UTF-8 replaced)
//! and refuses files over `integrations.file.max_read_bytes`; `delete`
//! removes a file or an empty folder.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::IntegrationError;

/// One `file.*` call, its path relative to the agent's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Write { path: PathBuf, content: String },
    Append { path: PathBuf, content: String },
    Read { path: PathBuf },
    Delete { path: PathBuf },
    Mkdir { path: PathBuf },
}

impl FileOp {
    fn path(&self) -> &Path {
        match self {
            FileOp::Write { path, .. }
            | FileOp::Append { path, .. }
            | FileOp::Read { path }
            | FileOp::Delete { path }
            | FileOp::Mkdir { path } => path,
        }
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> IntegrationError {
    IntegrationError::Io(format!("{what} {}: {e}", path.display()))
}

/// The agent's directory under `data_dir` (the same as
/// `scripting::AgentRuntime::agent_dir`).
pub fn agent_dir(data_dir: &Path, agent: &str) -> Result<PathBuf, IntegrationError> {
    let mut comps = Path::new(agent).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(_)), None) => Ok(data_dir.join(agent)),
        _ => {
            Err(IntegrationError::Invalid(format!("agent name {agent:?} cannot name a directory")))
        }
    }
}

/// `root.join(rel)` after checking `rel` is plain and crosses no symlink
/// (also `pcap.snapshot`'s `dir`).
pub fn resolve(root: &Path, rel: &Path) -> Result<PathBuf, IntegrationError> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) => p.push(part),
            Component::CurDir => {}
            _ => {
                return Err(IntegrationError::Invalid(format!(
                    "file path {:?} leaves the agent directory",
                    rel.display()
                )))
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.file_type().is_symlink() {
                return Err(IntegrationError::Invalid(format!(
                    "file path {:?} goes through a symbolic link",
                    rel.display()
                )));
            }
        }
    }
    if p == root {
        return Err(IntegrationError::Invalid("file path names the agent directory itself".into()));
    }
    Ok(p)
}

/// Runs one operation (blocking: call from a blocking thread).
pub fn run(
    data_dir: &Path,
    agent: &str,
    op: &FileOp,
    max_read_bytes: u64,
) -> Result<Value, IntegrationError> {
    let root = agent_dir(data_dir, agent)?;
    std::fs::create_dir_all(&root).map_err(|e| io_err("creating", &root, e))?;
    let path = resolve(&root, op.path())?;
    let rel = op.path();
    match op {
        FileOp::Write { content, .. } | FileOp::Append { content, .. } => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_err("creating", rel, e))?;
            }
            let append = matches!(op, FileOp::Append { .. });
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&path)
                .map_err(|e| io_err("opening", rel, e))?;
            f.write_all(content.as_bytes()).map_err(|e| io_err("writing", rel, e))?;
            Ok(Value::Null)
        }
        FileOp::Read { .. } => {
            let meta = std::fs::metadata(&path).map_err(|e| io_err("reading", rel, e))?;
            if meta.len() > max_read_bytes {
                return Err(IntegrationError::Invalid(format!(
                    "{} is {} bytes, over integrations.file.max_read_bytes ({max_read_bytes})",
                    rel.display(),
                    meta.len()
                )));
            }
            let bytes = std::fs::read(&path).map_err(|e| io_err("reading", rel, e))?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        FileOp::Delete { .. } => {
            let meta = std::fs::symlink_metadata(&path).map_err(|e| io_err("deleting", rel, e))?;
            if meta.is_dir() {
                std::fs::remove_dir(&path).map_err(|e| io_err("deleting", rel, e))?;
            } else {
                std::fs::remove_file(&path).map_err(|e| io_err("deleting", rel, e))?;
            }
            Ok(Value::Null)
        }
        FileOp::Mkdir { .. } => {
            std::fs::create_dir_all(&path).map_err(|e| io_err("creating", rel, e))?;
            Ok(Value::Null)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_agent_dir() {
        let d = tempfile::tempdir().unwrap();
        let w = FileOp::Write { path: "logs/a.txt".into(), content: "one\n".into() };
        run(d.path(), "my-agent", &w, 100).unwrap();
        run(
            d.path(),
            "my-agent",
            &FileOp::Append { path: "logs/a.txt".into(), content: "two\n".into() },
            100,
        )
        .unwrap();
        let r =
            run(d.path(), "my-agent", &FileOp::Read { path: "logs/a.txt".into() }, 100).unwrap();
        assert_eq!(r, Value::String("one\ntwo\n".into()));
        assert!(d.path().join("my-agent/logs/a.txt").exists());
        assert!(run(d.path(), "my-agent", &FileOp::Read { path: "logs/a.txt".into() }, 3).is_err());
        run(d.path(), "my-agent", &FileOp::Delete { path: "logs/a.txt".into() }, 100).unwrap();
        run(d.path(), "my-agent", &FileOp::Delete { path: "logs".into() }, 100).unwrap();
        assert!(!d.path().join("my-agent/logs").exists());
    }

    #[test]
    fn symlinks_and_bad_names_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("a/out")).unwrap();
        let e =
            run(d.path(), "a", &FileOp::Write { path: "out/x".into(), content: "x".into() }, 10)
                .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!outside.path().join("x").exists());
        assert!(agent_dir(d.path(), "../x").is_err());
        assert!(agent_dir(d.path(), "a/b").is_err());
        assert!(run(d.path(), "a", &FileOp::Read { path: "../etc/passwd".into() }, 10).is_err());
    }
}
