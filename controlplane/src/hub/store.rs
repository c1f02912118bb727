//! The script store: agents (name → source, active or not) and the env
//! they read, kept where they outlive the hub.
//!
//! [`ScriptStore`] is the seam: standalone it is a directory
//! ([`DirStore`]); in a cluster a ConfigMap (agents) and a Secret (env)
//! implement the same trait. Methods are blocking: the API calls them on
//! tokio's blocking pool, so an implementation may do network I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One agent as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredAgent {
    /// The file stem: `name.js` holds it.
    pub name: String,
    pub source: String,
    /// Inactive agents stay in the store but run nowhere.
    pub active: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid agent name {0:?}: use letters, digits, '.', '_' and '-' (at most 128, not starting with '.')")]
    InvalidName(String),
    #[error("invalid env name {0:?}: use letters, digits and '_', not starting with a digit (at most 128)")]
    InvalidEnvName(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// The API server failed or refused a call; `retry` says whether trying
    /// again may help (a timeout, a 5xx, a conflict) or a change of
    /// configuration or RBAC is needed (403, 404 of the namespace, 422).
    #[error("{what}: {source}")]
    Kube {
        what: String,
        retry: bool,
        #[source]
        source: ::kube::Error,
    },
    #[error("{what}: the API server did not answer within {ms} ms (retrying may help)")]
    Timeout { what: String, ms: u64 },
    /// Other writers kept changing the object for every attempt.
    #[error("{what}: changed by another writer {attempts} times in a row (hub.kube_write_attempts); retrying may help")]
    Conflict { what: String, attempts: u32 },
    #[error("{what}: {bytes} bytes would pass hub.kube_max_object_bytes ({limit}); the API server refuses objects over 1 MiB: remove or shorten agents")]
    TooLarge { what: String, bytes: usize, limit: usize },
}

/// Where agents and env live. Implementations serialise their own writes.
pub trait ScriptStore: Send + Sync + 'static {
    /// A short name for logs and `/readyz` (`dir`, `kube`).
    fn kind(&self) -> &'static str;
    /// Every agent, sorted by name.
    fn list(&self) -> Result<Vec<StoredAgent>, StoreError>;
    fn get(&self, name: &str) -> Result<Option<StoredAgent>, StoreError>;
    /// Creates or replaces `name`. `active: None` keeps a replaced agent's
    /// state and makes a new one active.
    fn put(
        &self,
        name: &str,
        source: &str,
        active: Option<bool>,
    ) -> Result<StoredAgent, StoreError>;
    /// `None` if there is no such agent.
    fn set_active(&self, name: &str, active: bool) -> Result<Option<StoredAgent>, StoreError>;
    /// `false` if there was no such agent.
    fn delete(&self, name: &str) -> Result<bool, StoreError>;
    fn env(&self) -> Result<BTreeMap<String, String>, StoreError>;
    /// Sets (`Some`) or removes (`None`) one variable; `false` when removing
    /// one that did not exist.
    fn set_env(&self, name: &str, value: Option<&str>) -> Result<bool, StoreError>;
}

/// The rule `scripting` applies to agent names, so every stored name loads
/// and none can leave the store's directory.
pub fn check_agent_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(name.to_string()))
    }
}

pub fn check_env_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidEnvName(name.to_string()))
    }
}

/// The standalone store: `DIR/agents/NAME.js`, `DIR/inactive.json` (a
/// sorted list of names) and `DIR/env.json` (an object, mode 0600). Every
/// write goes to a temporary file (`.skua-tmp-*`, mode 0600 for env)
/// renamed over the old one, so a crash leaves the old or the new version,
/// never half of one; what a crash leaves of the temporary file (possibly a
/// copy of `env.json`) is removed when the store is next opened.
#[derive(Debug)]
pub struct DirStore {
    dir: PathBuf,
    // One writer at a time: put + inactive.json must not interleave.
    lock: Mutex<()>,
    /// Leftover temporary files removed at open.
    cleaned: usize,
}

/// Prefix of the store's temporary files.
const TMP_PREFIX: &str = ".skua-tmp-";

/// Whether `name` is a temporary file of a write that did not finish: ours,
/// or `tempfile`'s default name (`.tmp` and six characters) that earlier
/// versions used.
fn is_leftover(name: &str) -> bool {
    name.starts_with(TMP_PREFIX)
        || name
            .strip_prefix(".tmp")
            .is_some_and(|r| r.len() == 6 && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

impl DirStore {
    /// Opens (creating) the store at `dir`, removing what interrupted
    /// writes left behind.
    pub fn open(dir: &Path) -> Result<DirStore, StoreError> {
        let agents = dir.join("agents");
        std::fs::create_dir_all(&agents).map_err(|source| StoreError::Io {
            what: format!("creating {}", agents.display()),
            source,
        })?;
        let mut cleaned = 0;
        for d in [dir, agents.as_path()] {
            let io = |source| StoreError::Io { what: format!("reading {}", d.display()), source };
            for e in std::fs::read_dir(d).map_err(io)? {
                let path = e.map_err(io)?.path();
                let leftover = path.file_name().and_then(|n| n.to_str()).is_some_and(is_leftover);
                if leftover && path.is_file() {
                    std::fs::remove_file(&path).map_err(|source| StoreError::Io {
                        what: format!("removing the leftover {}", path.display()),
                        source,
                    })?;
                    cleaned += 1;
                }
            }
        }
        if cleaned > 0 {
            tracing::warn!(
                "script store {}: removed {cleaned} temporary file(s) left by an interrupted write",
                dir.display()
            );
        }
        Ok(DirStore { dir: dir.to_path_buf(), lock: Mutex::new(()), cleaned })
    }

    /// Temporary files of interrupted writes removed when it was opened.
    pub fn cleaned(&self) -> usize {
        self.cleaned
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn agent_path(&self, name: &str) -> PathBuf {
        self.dir.join("agents").join(format!("{name}.js"))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8], private: bool) -> Result<(), StoreError> {
        let io = |source| StoreError::Io { what: format!("writing {}", path.display()), source };
        let parent = path.parent().unwrap_or(&self.dir);
        let mut tmp =
            tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(parent).map_err(io)?;
        if private {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        tmp.write_all(bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    fn read_json<T: serde::de::DeserializeOwned + Default>(
        &self,
        file: &str,
    ) -> Result<T, StoreError> {
        let path = self.dir.join(file);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                what: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(source) => {
                Err(StoreError::Io { what: format!("reading {}", path.display()), source })
            }
        }
    }

    fn inactive(&self) -> Result<BTreeSet<String>, StoreError> {
        self.read_json("inactive.json")
    }

    fn set_inactive(&self, set: &BTreeSet<String>) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(set).unwrap_or_default();
        self.write_atomic(&self.dir.join("inactive.json"), &body, false)
    }

    fn mark(&self, name: &str, active: bool) -> Result<(), StoreError> {
        let mut inactive = self.inactive()?;
        let changed =
            if active { inactive.remove(name) } else { inactive.insert(name.to_string()) };
        if changed {
            self.set_inactive(&inactive)
        } else {
            Ok(())
        }
    }

    fn read_source(&self, name: &str) -> Result<Option<String>, StoreError> {
        let path = self.agent_path(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => {
                Err(StoreError::Io { what: format!("reading {}", path.display()), source })
            }
        }
    }
}

impl ScriptStore for DirStore {
    fn kind(&self) -> &'static str {
        "dir"
    }

    fn list(&self) -> Result<Vec<StoredAgent>, StoreError> {
        let dir = self.dir.join("agents");
        let io = |source| StoreError::Io { what: format!("reading {}", dir.display()), source };
        let inactive = self.inactive()?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io)? {
            let path = e.map_err(io)?.path();
            let Some(name) =
                path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".js"))
            else {
                continue;
            };
            // Files put there by hand with names the API would refuse are
            // left alone rather than served.
            if check_agent_name(name).is_err() || !path.is_file() {
                continue;
            }
            if let Some(source) = self.read_source(name)? {
                out.push(StoredAgent {
                    name: name.to_string(),
                    active: !inactive.contains(name),
                    source,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn get(&self, name: &str) -> Result<Option<StoredAgent>, StoreError> {
        check_agent_name(name)?;
        let Some(source) = self.read_source(name)? else { return Ok(None) };
        Ok(Some(StoredAgent {
            name: name.to_string(),
            active: !self.inactive()?.contains(name),
            source,
        }))
    }

    fn put(
        &self,
        name: &str,
        source: &str,
        active: Option<bool>,
    ) -> Result<StoredAgent, StoreError> {
        check_agent_name(name)?;
        let _g = self.guard();
        let active = match active {
            Some(a) => a,
            None => self.read_source(name)?.is_none() || !self.inactive()?.contains(name),
        };
        self.write_atomic(&self.agent_path(name), source.as_bytes(), false)?;
        self.mark(name, active)?;
        Ok(StoredAgent { name: name.to_string(), source: source.to_string(), active })
    }

    fn set_active(&self, name: &str, active: bool) -> Result<Option<StoredAgent>, StoreError> {
        check_agent_name(name)?;
        let _g = self.guard();
        let Some(source) = self.read_source(name)? else { return Ok(None) };
        self.mark(name, active)?;
        Ok(Some(StoredAgent { name: name.to_string(), source, active }))
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        check_agent_name(name)?;
        let _g = self.guard();
        let path = self.agent_path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                self.mark(name, true)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => {
                Err(StoreError::Io { what: format!("removing {}", path.display()), source })
            }
        }
    }

    fn env(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.read_json("env.json")
    }

    fn set_env(&self, name: &str, value: Option<&str>) -> Result<bool, StoreError> {
        check_env_name(name)?;
        let _g = self.guard();
        let mut env = self.env()?;
        let existed = match value {
            Some(v) => env.insert(name.to_string(), v.to_string()).is_some(),
            None => env.remove(name).is_some(),
        };
        if value.is_some() || existed {
            let body = serde_json::to_vec_pretty(&env).unwrap_or_default();
            self.write_atomic(&self.dir.join("env.json"), &body, true)?;
        }
        Ok(existed || value.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_state_survive_reopening() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = DirStore::open(d.path()).unwrap();
            assert!(s.put("b", "var b;", None).unwrap().active);
            s.put("a", "var a;", Some(false)).unwrap();
            // Replacing keeps the state.
            assert!(!s.put("a", "var a = 1;", None).unwrap().active);
            s.set_env("TOKEN", Some("s3cret")).unwrap();
        }
        let s = DirStore::open(d.path()).unwrap();
        let l = s.list().unwrap();
        assert_eq!(
            l.iter().map(|a| (a.name.as_str(), a.active)).collect::<Vec<_>>(),
            [("a", false), ("b", true)]
        );
        assert_eq!(l[0].source, "var a = 1;");
        assert_eq!(s.env().unwrap()["TOKEN"], "s3cret");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(d.path().join("env.json")).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(s.set_active("a", true).unwrap().unwrap().active);
        assert!(s.delete("a").unwrap());
        assert!(!s.delete("a").unwrap());
        assert!(s.get("a").unwrap().is_none());
        assert!(s.set_active("nope", true).unwrap().is_none());
        assert!(!s.set_env("NOPE", None).unwrap());
    }

    #[test]
    fn leftovers_of_interrupted_writes_are_removed_at_open() {
        let d = tempfile::tempdir().unwrap();
        let s = DirStore::open(d.path()).unwrap();
        s.set_env("TOKEN", Some("s3cret")).unwrap();
        s.put("a", "var a;", None).unwrap();
        drop(s);
        // What a crash between write and rename leaves: a copy of env.json
        // (ours and an older version's name) and half an agent.
        let leftovers = [
            d.path().join(".skua-tmp-Ab12Cd"),
            d.path().join(".tmpX1y2Z3"),
            d.path().join("agents/.skua-tmp-9z8y7x"),
        ];
        for l in &leftovers {
            std::fs::write(l, r#"{"TOKEN":"s3cret"}"#).unwrap();
        }
        std::fs::write(d.path().join(".tmpnot-ours-too-long"), "kept").unwrap();
        let s = DirStore::open(d.path()).unwrap();
        assert_eq!(s.cleaned(), 3);
        assert!(leftovers.iter().all(|l| !l.exists()));
        assert!(d.path().join(".tmpnot-ours-too-long").exists(), "only temp names go");
        assert_eq!(s.env().unwrap()["TOKEN"], "s3cret");
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn names_cannot_escape() {
        let d = tempfile::tempdir().unwrap();
        let s = DirStore::open(d.path()).unwrap();
        for bad in ["../x", "a/b", ".hidden", "", "a b"] {
            assert!(matches!(s.put(bad, "", None), Err(StoreError::InvalidName(_))), "{bad}");
        }
        assert!(matches!(s.set_env("1X", Some("v")), Err(StoreError::InvalidEnvName(_))));
        std::fs::write(d.path().join("inactive.json"), "{not json").unwrap();
        assert!(matches!(s.list(), Err(StoreError::Corrupt { .. })));
    }
}
