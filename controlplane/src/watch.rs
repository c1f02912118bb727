//! Watching a folder of agents: which `*.js` files were added, changed or
//! removed since the last look. `skua run --scripts DIR` applies the changes
//! to its runtimes; `skua scripts` pushes them to a hub.
//!
//! Polling rather than inotify: it works the same on every filesystem
//! (ConfigMap mounts swap a symlink, network mounts send no events) and one
//! `read_dir` every half second costs nothing. A change is reported once
//! its content has stayed the same for one look, so a save caught half
//! written is not loaded; content hashes make a save without a change (or a
//! `touch`) a no-op.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// One change of the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new or changed agent (name = file stem).
    Upsert {
        name: String,
        source: String,
    },
    Removed {
        name: String,
    },
}

impl Change {
    pub fn name(&self) -> &str {
        match self {
            Change::Upsert { name, .. } | Change::Removed { name } => name,
        }
    }
}

/// The folder as last reported, and what was seen on the last look.
#[derive(Debug)]
pub struct AgentDir {
    dir: PathBuf,
    /// name → content hash, as reported.
    reported: BTreeMap<String, u64>,
    /// name → content hash seen on the previous look (not yet stable).
    pending: BTreeMap<String, u64>,
    looked: bool,
}

fn content_hash(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl AgentDir {
    /// A watcher that has reported nothing yet: the first look reports every
    /// agent (at once, without waiting for stability).
    pub fn new(dir: &Path) -> Self {
        AgentDir {
            dir: dir.to_path_buf(),
            reported: BTreeMap::new(),
            pending: BTreeMap::new(),
            looked: false,
        }
    }

    /// A watcher that treats `known` (name, source) as already reported.
    pub fn with_known(dir: &Path, known: &[(String, String)]) -> Self {
        let reported = known.iter().map(|(n, s)| (n.clone(), content_hash(s))).collect();
        AgentDir { dir: dir.to_path_buf(), reported, pending: BTreeMap::new(), looked: true }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks at the folder once; returns the changes that are now stable.
    /// A folder that cannot be read (being replaced, unmounted) reports
    /// nothing, rather than every agent as removed.
    pub fn look(&mut self) -> std::io::Result<Vec<Change>> {
        let now = read_agents(&self.dir)?;
        let first = !std::mem::replace(&mut self.looked, true);
        let mut changes = Vec::new();
        let mut seen = BTreeMap::new();
        for (name, source) in now {
            let h = content_hash(&source);
            seen.insert(name.clone(), h);
            if self.reported.get(&name) == Some(&h) {
                self.pending.remove(&name);
                continue;
            }
            // Stable: the same content as on the previous look.
            if first || self.pending.get(&name) == Some(&h) {
                self.pending.remove(&name);
                self.reported.insert(name.clone(), h);
                changes.push(Change::Upsert { name, source });
            } else {
                self.pending.insert(name, h);
            }
        }
        let gone: Vec<String> =
            self.reported.keys().filter(|n| !seen.contains_key(*n)).cloned().collect();
        for name in gone {
            self.reported.remove(&name);
            changes.push(Change::Removed { name });
        }
        self.pending.retain(|n, _| seen.contains_key(n));
        Ok(changes)
    }
}

/// The `*.js` files of `dir` as (name, source). Unreadable or non-UTF-8
/// files are skipped with a note on stderr; they are reported when fixed.
pub(crate) fn read_agents(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.extension().is_none_or(|x| x != "js") || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        match std::fs::read_to_string(&path) {
            Ok(src) => out.push((name, src)),
            Err(e) => tracing::warn!("{}: {e}; skipped", path.display()),
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_look_reports_all_then_only_stable_changes() {
        let d = tempfile::tempdir().unwrap();
        let w = |n: &str, s: &str| std::fs::write(d.path().join(n), s).unwrap();
        w("a.js", "var a;");
        w("b.js", "var b;");
        w("notes.txt", "not an agent");
        let mut dir = AgentDir::new(d.path());
        let names: Vec<String> = dir.look().unwrap().iter().map(|c| c.name().to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(dir.look().unwrap().is_empty(), "nothing changed");

        w("a.js", "var a = 2;");
        assert!(dir.look().unwrap().is_empty(), "not yet stable");
        assert_eq!(
            dir.look().unwrap(),
            [Change::Upsert { name: "a".into(), source: "var a = 2;".into() }]
        );

        // Written again with the same content: a no-op.
        w("a.js", "var a = 2;");
        assert!(dir.look().unwrap().is_empty());
        // Still being written: each look sees other content, so it waits.
        w("b.js", "var b = 1");
        assert!(dir.look().unwrap().is_empty());
        w("b.js", "var b = 12;");
        assert!(dir.look().unwrap().is_empty());
        assert_eq!(
            dir.look().unwrap(),
            [Change::Upsert { name: "b".into(), source: "var b = 12;".into() }]
        );

        std::fs::remove_file(d.path().join("a.js")).unwrap();
        assert_eq!(dir.look().unwrap(), [Change::Removed { name: "a".into() }]);
    }

    #[test]
    fn known_agents_are_not_reported_again_and_a_missing_folder_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.js"), "var a;").unwrap();
        let mut dir = AgentDir::with_known(d.path(), &[("a".into(), "var a;".into())]);
        assert!(dir.look().unwrap().is_empty());
        assert!(AgentDir::new(&d.path().join("nope")).look().is_err());
    }
}
