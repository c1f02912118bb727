//! `file.*`, run on the control plane's blocking pool (never on a script or
//! capture core), inside the agent's own directory `<scripting.dataDir>/<agent>/`.
//!
//! Paths arrive checked by `scripting::effects::confine` (relative, no
//! `..`) or, for what a helper only reads (the source of `copy` and `move`,
//! what `vendor.*.put` uploads), by `confine_source`, which also lets an
//! absolute path through. This module adds what only the file system can
//! tell: no component of a path below its root may be a symbolic link (a
//! link could lead out), an absolute path must lie in the agent's directory
//! or in skua's pcap folder ([`Roots::pcap_dir`], where `pcap.path` and
//! `pcap.snapshot` put what scripts copy and upload), and the agent's name
//! must be one plain path component.
//!
//! What each operation does, as Kubeshark's helpers do it:
//! - `write`/`append` create missing parent folders; `read` returns the
//!   content as a string (invalid UTF-8 replaced), refusing files over
//!   `integrations.file.max_read_bytes`.
//! - `delete` removes a file or a folder with its content; a path that does
//!   not exist is not an error (published agents clear a folder before
//!   making it, outside any `try`). `mkdir` makes parents.
//! - `move`/`copy` into an existing folder (or a path ending in `/`) keep
//!   the source's name; a folder is copied with its content.
//! - `tar(dir)` writes `<dir name>_<unix seconds>.tar.gz` (entries under the
//!   folder's name) into the agent's directory and returns that path.
//! - `temp(name, dir, ext)` creates an empty `<name><random>.<ext>` in `dir`
//!   (the agent's directory when empty) and `mkdirTemp(name, dir)` a folder
//!   `<name><random>`; both return the path relative to the agent's
//!   directory, which is what the other helpers take.
//!
//! Quota: one agent's directory holds at most `integrations.file.quota_bytes`
//! (its files' sizes summed by a walk at each writing call: agents' folders
//! are small and these calls rare, and a walk stays right when files change
//! behind skua's back). A call that would pass it fails with
//! [`IntegrationError::Quota`] and leaves the directory as it was. Calls of
//! one agent are serialised so two writers cannot both pass the check.
//!
//! Why `tar` + `flate2` and no hand-written archive: they are the
//! well-kept crates of the field (flate2 on its pure-Rust backend).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::IntegrationError;

/// One `file.*` call; relative paths are below the agent's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Write { path: PathBuf, content: String },
    Append { path: PathBuf, content: String },
    Read { path: PathBuf },
    Delete { path: PathBuf },
    Mkdir { path: PathBuf },
    Move { from: PathBuf, to: PathBuf },
    Copy { from: PathBuf, to: PathBuf },
    Tar { dir: PathBuf },
    Temp { name: String, dir: Option<PathBuf>, ext: String },
    MkdirTemp { name: String, dir: Option<PathBuf> },
}

/// Where files may be: the agents' directories and the pcap folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `scripting.dataDir`; agent `a` works in `data_dir/a`.
    pub data_dir: PathBuf,
    /// Where `pcap.path`/`pcap.snapshot` write; absolute source paths in it
    /// may be read (copied, moved, uploaded).
    pub pcap_dir: PathBuf,
}

/// The limits of `file.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    pub max_read_bytes: u64,
    /// 0: none.
    pub quota_bytes: u64,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> IntegrationError {
    IntegrationError::Io(format!("{what} {}: {e}", path.display()))
}

fn invalid(m: String) -> IntegrationError {
    IntegrationError::Invalid(m)
}

/// The agent's directory under `data_dir` (the same as
/// `scripting::AgentRuntime::agent_dir`).
pub fn agent_dir(data_dir: &Path, agent: &str) -> Result<PathBuf, IntegrationError> {
    let mut comps = Path::new(agent).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(_)), None) => Ok(data_dir.join(agent)),
        _ => Err(invalid(format!("agent name {agent:?} cannot name a directory"))),
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
                return Err(invalid(format!(
                    "file path {:?} leaves the agent directory",
                    rel.display()
                )))
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.file_type().is_symlink() {
                return Err(invalid(format!(
                    "file path {:?} goes through a symbolic link",
                    rel.display()
                )));
            }
        }
    }
    if p == root {
        return Err(invalid(format!(
            "file path {:?} names the agent directory itself",
            rel.display()
        )));
    }
    Ok(p)
}

/// A path a helper reads from: relative to the agent's directory, or
/// absolute inside it or inside the pcap folder. Used by `copy`, `move`,
/// `vendor.*.put` and `vendor.slackBot`'s files.
pub fn resolve_source(roots: &Roots, agent: &str, p: &Path) -> Result<PathBuf, IntegrationError> {
    let root = agent_dir(&roots.data_dir, agent)?;
    if !p.is_absolute() {
        return resolve(&root, p);
    }
    for base in [&root, &roots.pcap_dir] {
        if let Ok(rel) = p.strip_prefix(base) {
            if !rel.as_os_str().is_empty() {
                return resolve(base, rel);
            }
        }
    }
    Err(invalid(format!(
        "file path {:?} is outside the agent directory (absolute paths are allowed only under it or skua's pcap folder)",
        p.display()
    )))
}

/// Bytes of the files under `dir` (symbolic links not followed).
pub fn usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

fn size_of(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => usage(p),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Random digits for temporary names (as Go's `os.MkdirTemp`).
fn random_suffix() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:010}", h.finish() % 10_000_000_000)
}

/// The directory operations of all agents, with one lock per agent so that
/// the quota check and the write it allows happen as one.
#[derive(Debug, Default)]
pub struct FileStore {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl FileStore {
    fn lock_for(&self, agent: &str) -> Arc<Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(agent.to_string()).or_default().clone()
    }

    /// Runs one operation (blocking: call from a blocking thread).
    pub fn run(
        &self,
        roots: &Roots,
        agent: &str,
        op: &FileOp,
        limits: FileLimits,
    ) -> Result<Value, IntegrationError> {
        let root = agent_dir(&roots.data_dir, agent)?;
        std::fs::create_dir_all(&root).map_err(|e| io_err("creating", &root, e))?;
        let lock = self.lock_for(agent);
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        let quota = |adds: u64, frees: u64| -> Result<(), IntegrationError> {
            if limits.quota_bytes == 0 {
                return Ok(());
            }
            let now = usage(&root);
            let after = now.saturating_sub(frees).saturating_add(adds);
            if after > limits.quota_bytes && adds > frees {
                return Err(IntegrationError::Quota(format!(
                    "agent {agent}'s directory would hold {after} bytes, over integrations.file.quota_bytes ({})",
                    limits.quota_bytes
                )));
            }
            Ok(())
        };
        let rel_of = |p: &Path| -> String {
            p.strip_prefix(&root).unwrap_or(p).to_string_lossy().into_owned()
        };
        match op {
            FileOp::Write { path, content } | FileOp::Append { path, content } => {
                let full = resolve(&root, path)?;
                let append = matches!(op, FileOp::Append { .. });
                let frees = if append { 0 } else { size_of(&full) };
                quota(content.len() as u64, frees)?;
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_err("creating", path, e))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(append)
                    .truncate(!append)
                    .open(&full)
                    .map_err(|e| io_err("opening", path, e))?;
                f.write_all(content.as_bytes()).map_err(|e| io_err("writing", path, e))?;
                Ok(Value::Null)
            }
            FileOp::Read { path } => {
                let full = resolve(&root, path)?;
                let meta = std::fs::metadata(&full).map_err(|e| io_err("reading", path, e))?;
                if meta.len() > limits.max_read_bytes {
                    return Err(invalid(format!(
                        "{} is {} bytes, over integrations.file.max_read_bytes ({})",
                        path.display(),
                        meta.len(),
                        limits.max_read_bytes
                    )));
                }
                let bytes = std::fs::read(&full).map_err(|e| io_err("reading", path, e))?;
                Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            }
            FileOp::Delete { path } => {
                let full = resolve(&root, path)?;
                match std::fs::symlink_metadata(&full) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
                    Err(e) => Err(io_err("deleting", path, e)),
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&full)
                        .map(|_| Value::Null)
                        .map_err(|e| io_err("deleting", path, e)),
                    Ok(_) => std::fs::remove_file(&full)
                        .map(|_| Value::Null)
                        .map_err(|e| io_err("deleting", path, e)),
                }
            }
            FileOp::Mkdir { path } => {
                let full = resolve(&root, path)?;
                std::fs::create_dir_all(&full).map_err(|e| io_err("creating", path, e))?;
                Ok(Value::Null)
            }
            FileOp::Move { from, to } | FileOp::Copy { from, to } => {
                let src = resolve_source(roots, agent, from)?;
                let meta =
                    std::fs::symlink_metadata(&src).map_err(|e| io_err("reading", from, e))?;
                let mut dst = resolve(&root, to)?;
                let into_dir = to.as_os_str().to_string_lossy().ends_with('/') || dst.is_dir();
                if into_dir {
                    let name = src
                        .file_name()
                        .ok_or_else(|| invalid(format!("{} has no file name", from.display())))?;
                    std::fs::create_dir_all(&dst).map_err(|e| io_err("creating", to, e))?;
                    dst.push(name);
                }
                if dst == src || dst.starts_with(&src) {
                    return Err(invalid(format!("cannot put {} into itself", from.display())));
                }
                let moving = matches!(op, FileOp::Move { .. });
                let within = src.starts_with(&root);
                let adds = if moving && within { 0 } else { size_of(&src) };
                quota(adds, size_of(&dst))?;
                if let Some(parent) = dst.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_err("creating", to, e))?;
                }
                if moving {
                    if let Err(e) = std::fs::rename(&src, &dst) {
                        // Another file system (a pcap folder elsewhere):
                        // copy, then remove.
                        if e.raw_os_error() != Some(libc::EXDEV) {
                            return Err(io_err("moving", from, e));
                        }
                        copy_tree(&src, &dst, meta.is_dir())
                            .map_err(|e| io_err("moving", from, e))?;
                        let r = if meta.is_dir() {
                            std::fs::remove_dir_all(&src)
                        } else {
                            std::fs::remove_file(&src)
                        };
                        r.map_err(|e| io_err("removing", from, e))?;
                    }
                } else {
                    copy_tree(&src, &dst, meta.is_dir()).map_err(|e| io_err("copying", from, e))?;
                }
                Ok(Value::String(rel_of(&dst)))
            }
            FileOp::Tar { dir } => {
                let src = resolve(&root, dir)?;
                if !src.is_dir() {
                    return Err(invalid(format!("file.tar: {} is not a folder", dir.display())));
                }
                let base = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "archive".into());
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut out = root.join(format!("{base}_{secs}.tar.gz"));
                let mut n = 1;
                while out.exists() {
                    out = root.join(format!("{base}_{secs}_{n}.tar.gz"));
                    n += 1;
                }
                quota(size_of(&src), 0)?;
                if let Err(e) = write_tar(&src, &base, &out) {
                    let _ = std::fs::remove_file(&out);
                    return Err(e);
                }
                if let Err(e) = quota(0, 0) {
                    let _ = std::fs::remove_file(&out);
                    return Err(e);
                }
                Ok(Value::String(rel_of(&out)))
            }
            FileOp::Temp { name, dir, ext } => {
                plain_name(name)?;
                plain_name(ext)?;
                let parent = match dir {
                    Some(d) => resolve(&root, d)?,
                    None => root.clone(),
                };
                std::fs::create_dir_all(&parent).map_err(|e| io_err("creating", &parent, e))?;
                let ext = ext.trim_start_matches('.');
                for _ in 0..100 {
                    let p = parent.join(format!("{name}{}.{ext}", random_suffix()));
                    match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
                        Ok(_) => return Ok(Value::String(rel_of(&p))),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(io_err("creating", &p, e)),
                    }
                }
                Err(IntegrationError::Io("no free temporary name after 100 tries".into()))
            }
            FileOp::MkdirTemp { name, dir } => {
                plain_name(name)?;
                let parent = match dir {
                    Some(d) => resolve(&root, d)?,
                    None => root.clone(),
                };
                std::fs::create_dir_all(&parent).map_err(|e| io_err("creating", &parent, e))?;
                for _ in 0..100 {
                    let p = parent.join(format!("{name}{}", random_suffix()));
                    match std::fs::create_dir(&p) {
                        Ok(()) => return Ok(Value::String(rel_of(&p))),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(io_err("creating", &p, e)),
                    }
                }
                Err(IntegrationError::Io("no free temporary name after 100 tries".into()))
            }
        }
    }
}

/// A temporary name's prefix or extension: no path separators.
fn plain_name(s: &str) -> Result<(), IntegrationError> {
    if s.contains('/') || s.contains('\0') || s == ".." {
        return Err(invalid(format!("{s:?}: a temporary name or extension is one plain name")));
    }
    Ok(())
}

/// Copies a file, or a folder with its content; a symbolic link inside is
/// refused (it could lead out).
fn copy_tree(src: &Path, dst: &Path, is_dir: bool) -> std::io::Result<()> {
    if !is_dir {
        std::fs::copy(src, dst)?;
        return Ok(());
    }
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_symlink() {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link",
                e.path().display()
            )));
        }
        copy_tree(&e.path(), &dst.join(e.file_name()), t.is_dir())?;
    }
    Ok(())
}

fn write_tar(src: &Path, base: &str, out: &Path) -> Result<(), IntegrationError> {
    let f = std::fs::File::create(out).map_err(|e| io_err("creating", out, e))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    let mut stack = vec![(src.to_path_buf(), PathBuf::from(base))];
    while let Some((dir, name)) = stack.pop() {
        b.append_dir(&name, &dir).map_err(|e| io_err("archiving", &dir, e))?;
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).map_err(|e| io_err("reading", &dir, e))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let t = e.file_type().map_err(|er| io_err("reading", &e.path(), er))?;
            let entry_name = name.join(e.file_name());
            if t.is_symlink() {
                return Err(invalid(format!(
                    "file.tar: {} is a symbolic link",
                    entry_name.display()
                )));
            } else if t.is_dir() {
                stack.push((e.path(), entry_name));
            } else {
                b.append_path_with_name(e.path(), &entry_name)
                    .map_err(|er| io_err("archiving", &e.path(), er))?;
            }
        }
    }
    let gz = b.into_inner().map_err(|e| io_err("archiving", out, e))?;
    gz.finish().map_err(|e| io_err("archiving", out, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(d: &Path) -> Roots {
        Roots { data_dir: d.to_path_buf(), pcap_dir: d.join("pcap") }
    }

    const LIMITS: FileLimits = FileLimits { max_read_bytes: 100, quota_bytes: 0 };

    fn run(d: &Path, agent: &str, op: FileOp) -> Result<Value, IntegrationError> {
        FileStore::default().run(&roots(d), agent, &op, LIMITS)
    }

    #[test]
    fn round_trip_in_agent_dir() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        run(p, "my-agent", FileOp::Write { path: "logs/a.txt".into(), content: "one\n".into() })
            .unwrap();
        run(p, "my-agent", FileOp::Append { path: "logs/a.txt".into(), content: "two\n".into() })
            .unwrap();
        let r = run(p, "my-agent", FileOp::Read { path: "logs/a.txt".into() }).unwrap();
        assert_eq!(r, Value::String("one\ntwo\n".into()));
        assert!(p.join("my-agent/logs/a.txt").exists());
        let small = FileLimits { max_read_bytes: 3, quota_bytes: 0 };
        let r = FileStore::default().run(
            &roots(p),
            "my-agent",
            &FileOp::Read { path: "logs/a.txt".into() },
            small,
        );
        assert!(r.is_err());
        // Recursive, and a missing path is no error.
        run(p, "my-agent", FileOp::Delete { path: "logs".into() }).unwrap();
        assert!(!p.join("my-agent/logs").exists());
        run(p, "my-agent", FileOp::Delete { path: "logs".into() }).unwrap();
    }

    #[test]
    fn move_and_copy_into_a_folder_keep_the_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        run(p, "a", FileOp::Write { path: "x.txt".into(), content: "x".into() }).unwrap();
        run(p, "a", FileOp::Mkdir { path: "dir".into() }).unwrap();
        let r = run(p, "a", FileOp::Copy { from: "x.txt".into(), to: "dir".into() }).unwrap();
        assert_eq!(r, "dir/x.txt");
        let r = run(p, "a", FileOp::Move { from: "x.txt".into(), to: "y.txt".into() }).unwrap();
        assert_eq!(r, "y.txt");
        assert!(!p.join("a/x.txt").exists());
        // A folder moves whole; "new/" makes the folder and keeps the name.
        let r = run(p, "a", FileOp::Move { from: "dir".into(), to: "new/".into() }).unwrap();
        assert_eq!(r, "new/dir");
        assert_eq!(std::fs::read_to_string(p.join("a/new/dir/x.txt")).unwrap(), "x");
        // From the pcap folder by its absolute path.
        std::fs::create_dir_all(p.join("pcap")).unwrap();
        std::fs::write(p.join("pcap/000001.pcap"), b"pcap").unwrap();
        let abs = p.join("pcap/000001.pcap");
        let r = run(p, "a", FileOp::Copy { from: abs, to: "dfir/s1".into() }).unwrap();
        assert_eq!(r, "dfir/s1");
        // Absolute outside both roots.
        let e =
            run(p, "a", FileOp::Copy { from: "/etc/hostname".into(), to: "h".into() }).unwrap_err();
        assert!(e.to_string().contains("outside the agent directory"), "{e}");
    }

    #[test]
    fn tar_temp_and_mkdir_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let dir = run(p, "a", FileOp::MkdirTemp { name: "snap".into(), dir: None }).unwrap();
        let dir = dir.as_str().unwrap().to_string();
        assert!(dir.starts_with("snap") && dir.len() > 4, "{dir}");
        let t = run(
            p,
            "a",
            FileOp::Temp { name: "data".into(), dir: Some(dir.clone().into()), ext: "json".into() },
        )
        .unwrap();
        let t = t.as_str().unwrap().to_string();
        assert!(t.starts_with(&format!("{dir}/data")) && t.ends_with(".json"), "{t}");
        run(p, "a", FileOp::Write { path: t.clone().into(), content: "{}".into() }).unwrap();
        let tar = run(p, "a", FileOp::Tar { dir: dir.clone().into() }).unwrap();
        let tar = tar.as_str().unwrap().to_string();
        assert!(tar.starts_with(&format!("{dir}_")) && tar.ends_with(".tar.gz"), "{tar}");
        let f = std::fs::File::open(p.join("a").join(&tar)).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&t), "{names:?}");
    }

    #[test]
    fn quota_refuses_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let store = FileStore::default();
        let lim = FileLimits { max_read_bytes: 100, quota_bytes: 10 };
        let op = |path: &str, c: &str| FileOp::Write { path: path.into(), content: c.into() };
        store.run(&roots(p), "a", &op("a", "12345"), lim).unwrap();
        // Rewriting the same file frees its old size first.
        store.run(&roots(p), "a", &op("a", "1234567890"), lim).unwrap();
        let e = store.run(&roots(p), "a", &op("b", "1"), lim).unwrap_err();
        assert!(matches!(e, IntegrationError::Quota(_)), "{e}");
        assert!(!p.join("a/b").exists());
        let e = store
            .run(&roots(p), "a", &FileOp::Copy { from: "a".into(), to: "c".into() }, lim)
            .unwrap_err();
        assert!(matches!(e, IntegrationError::Quota(_)), "{e}");
        // Other agents have their own quota.
        store.run(&roots(p), "other", &op("a", "123"), lim).unwrap();
    }

    #[test]
    fn symlinks_and_bad_names_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("a/out")).unwrap();
        let e = run(d.path(), "a", FileOp::Write { path: "out/x".into(), content: "x".into() })
            .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!outside.path().join("x").exists());
        let e =
            run(d.path(), "a", FileOp::Copy { from: "out".into(), to: "y".into() }).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(agent_dir(d.path(), "../x").is_err());
        assert!(agent_dir(d.path(), "a/b").is_err());
        assert!(run(d.path(), "a", FileOp::Read { path: "../etc/passwd".into() }).is_err());
    }
}
