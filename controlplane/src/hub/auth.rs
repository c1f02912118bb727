//! Who may call the hub: bearer tokens, each with one role and an
//! identity (its place in the configuration), which is what a worker's
//! report and link are checked against (`HubHandle::report_worker_as`).
//!
//! A presented token is compared with every configured token in constant
//! time (`subtle`; no early exit on the first differing byte, and no early
//! exit on the first match), so response timing does not reveal how much
//! of a token was right. Only a token's length may leak, and generated and
//! recommended tokens all have the same length. Generated tokens are 32
//! bytes from the kernel (`getrandom`).

use subtle::ConstantTimeEq;

use super::config::{AuthMode, HubConfig};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read everything but env values; change nothing.
    Read,
    /// Everything the dashboard does: agents, env, jobs, `hub.action`.
    Admin,
    /// A worker's link: agents with env values, publishing items, console
    /// lines and stats, `hub.action`.
    Worker,
    /// `hub.auth: none`: every right.
    Open,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, readiness, the dashboard's static files.
    Public,
    Read,
    Admin,
    Worker,
    /// `hub.action`: a worker or an admin.
    Action,
}

impl Role {
    pub fn allows(self, need: Need) -> bool {
        matches!(
            (self, need),
            (_, Need::Public)
                | (Role::Open, _)
                | (Role::Read, Need::Read)
                | (Role::Admin, Need::Read | Need::Admin | Need::Action)
                | (Role::Worker, Need::Worker | Need::Action)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("hub.tokens_file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hub.tokens_file {path}:{line}: {reason}")]
    Syntax { path: String, line: usize, reason: String },
    #[error("generating an admin token: {0}")]
    Random(#[source] getrandom::Error),
}

/// Which configured token a request came with (its index), `None` with
/// `hub.auth: none`. Workers' names are owned by the token that first
/// used them.
pub type TokenId = Option<usize>;

/// The caller of a request, as authentication found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub token: TokenId,
    /// For a worker token of `hub.tokens_file` given a name (`worker TOKEN
    /// NAME`): the only worker name it may link and report as.
    pub pinned: Option<String>,
}

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, a malformed header or an unknown token: 401.
    Unauthenticated,
    /// A known token without the right: 403.
    Forbidden,
}

struct Entry {
    token: Vec<u8>,
    role: Role,
    pinned: Option<String>,
}

pub struct Tokens {
    entries: Vec<Entry>,
    open: bool,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens themselves.
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .field("open", &self.open)
            .finish()
    }
}

/// A fresh random token: 32 bytes from the kernel, hex (64 characters).
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Tokens {
    /// The tokens of `cfg`. With `auth: tokens` and none configured, an
    /// admin token is generated and returned beside them, for the caller to
    /// print once.
    pub fn from_config(cfg: &HubConfig) -> Result<(Tokens, Option<String>), TokensError> {
        if cfg.auth == AuthMode::None {
            return Ok((Tokens { entries: Vec::new(), open: true }, None));
        }
        let mut entries: Vec<Entry> = Vec::new();
        let lists = [
            (&cfg.admin_tokens, Role::Admin),
            (&cfg.read_only_tokens, Role::Read),
            (&cfg.worker_tokens, Role::Worker),
        ];
        for (list, role) in lists {
            entries.extend(list.iter().map(|t| Entry {
                token: t.as_bytes().to_vec(),
                role,
                pinned: None,
            }));
        }
        if !cfg.tokens_file.is_empty() {
            entries.extend(read_tokens_file(&cfg.tokens_file)?);
        }
        let mut generated = None;
        if entries.is_empty() {
            let t = generate_token().map_err(TokensError::Random)?;
            entries.push(Entry { token: t.as_bytes().to_vec(), role: Role::Admin, pinned: None });
            generated = Some(t);
        }
        Ok((Tokens { entries, open: false }, generated))
    }

    /// The role of the `Authorization` header's bearer token.
    pub fn role(&self, authorization: Option<&[u8]>) -> Option<Role> {
        self.caller(authorization).map(|c| c.role)
    }

    /// Who the `Authorization` header's bearer token is.
    pub fn caller(&self, authorization: Option<&[u8]>) -> Option<Caller> {
        if self.open {
            return Some(Caller { role: Role::Open, token: None, pinned: None });
        }
        let token = authorization?.strip_prefix(b"Bearer ")?;
        let token = token.trim_ascii();
        let mut found = None;
        for (i, e) in self.entries.iter().enumerate() {
            // No early exit: every configured token is compared.
            let equal: bool = e.token.as_slice().ct_eq(token).into();
            if equal && found.is_none() {
                found = Some(Caller { role: e.role, token: Some(i), pinned: e.pinned.clone() });
            }
        }
        found
    }

    /// Lets a request needing `need` through, or says why not.
    pub fn check(&self, need: Need, authorization: Option<&[u8]>) -> Result<Caller, Denied> {
        if need == Need::Public {
            let anonymous = Caller { role: Role::Read, token: None, pinned: None };
            return Ok(self.caller(authorization).unwrap_or(anonymous));
        }
        let caller = self.caller(authorization).ok_or(Denied::Unauthenticated)?;
        if caller.role.allows(need) {
            Ok(caller)
        } else {
            Err(Denied::Forbidden)
        }
    }
}

/// `ROLE TOKEN` lines, or `worker TOKEN NAME` for a token that may only
/// link and report as worker NAME.
fn read_tokens_file(path: &str) -> Result<Vec<Entry>, TokensError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| TokensError::Read { path: path.into(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |reason: &str| TokensError::Syntax {
            path: path.into(),
            line: i + 1,
            reason: reason.into(),
        };
        let mut parts = line.split_whitespace();
        let (Some(role), Some(token), name, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(syntax("expected `ROLE TOKEN` (or `worker TOKEN NAME`)"));
        };
        let role = match role {
            "admin" => Role::Admin,
            "read" => Role::Read,
            "worker" => Role::Worker,
            _ => return Err(syntax("role must be admin, read or worker")),
        };
        if token.len() < 16 {
            return Err(syntax("a token must be at least 16 characters"));
        }
        if name.is_some() && role != Role::Worker {
            return Err(syntax("only worker tokens take a name"));
        }
        if name.is_some_and(|n| n.len() > 253) {
            return Err(syntax("a worker name has at most 253 characters"));
        }
        out.push(Entry { token: token.as_bytes().to_vec(), role, pinned: name.map(String::from) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "admin-token-0123456789";
    const READ: &str = "read-token-0123456789";

    fn tokens() -> Tokens {
        let cfg = HubConfig {
            admin_tokens: vec![ADMIN.into()],
            read_only_tokens: vec![READ.into()],
            ..Default::default()
        };
        Tokens::from_config(&cfg).unwrap().0
    }

    #[test]
    fn roles_and_rights() {
        let t = tokens();
        let h = |s: &str| format!("Bearer {s}");
        assert_eq!(t.check(Need::Read, None), Err(Denied::Unauthenticated));
        assert_eq!(t.check(Need::Read, Some(b"Basic abc")), Err(Denied::Unauthenticated));
        assert_eq!(
            t.check(Need::Read, Some(h("wrong-token-0123456789").as_bytes())),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(t.check(Need::Read, Some(h(READ).as_bytes())).map(|c| c.role), Ok(Role::Read));
        assert_eq!(t.check(Need::Admin, Some(h(READ).as_bytes())), Err(Denied::Forbidden));
        let admin = t.check(Need::Admin, Some(h(ADMIN).as_bytes())).unwrap();
        assert_eq!((admin.role, admin.token), (Role::Admin, Some(0)));
        assert_eq!(t.check(Need::Worker, Some(h(ADMIN).as_bytes())), Err(Denied::Forbidden));
        assert!(t.check(Need::Public, None).is_ok());
    }

    #[test]
    fn generated_when_none_configured_and_file_read() {
        let (t, g) = Tokens::from_config(&HubConfig::default()).unwrap();
        let g = g.unwrap();
        assert_eq!(g.len(), 64);
        assert_eq!(t.role(Some(format!("Bearer {g}").as_bytes())), Some(Role::Admin));

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        std::fs::write(
            &p,
            "# hub tokens\nworker worker-token-0123456789\nread  read-token-0123456789 # ci\nworker pinned-token-0123456789 node-7\n",
        )
        .unwrap();
        let cfg = HubConfig { tokens_file: p.display().to_string(), ..Default::default() };
        let (t, g) = Tokens::from_config(&cfg).unwrap();
        assert!(g.is_none());
        assert_eq!(t.role(Some(b"Bearer worker-token-0123456789")), Some(Role::Worker));
        let pinned = t.caller(Some(b"Bearer pinned-token-0123456789")).unwrap();
        assert_eq!((pinned.token, pinned.pinned.as_deref()), (Some(2), Some("node-7")));
        std::fs::write(&p, "read read-token-0123456789 somebody\n").unwrap();
        let e = Tokens::from_config(&cfg).unwrap_err().to_string();
        assert!(e.ends_with(":1: only worker tokens take a name"), "{e}");
        std::fs::write(&p, "boss x\n").unwrap();
        let e = Tokens::from_config(&cfg).unwrap_err().to_string();
        assert!(e.ends_with(":1: role must be admin, read or worker"), "{e}");
    }

    #[test]
    fn none_mode_is_open() {
        let cfg = HubConfig { auth: AuthMode::None, ..Default::default() };
        let (t, g) = Tokens::from_config(&cfg).unwrap();
        assert!(g.is_none());
        assert_eq!(t.check(Need::Admin, None).map(|c| c.role), Ok(Role::Open));
    }
}
