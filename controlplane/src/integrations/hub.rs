//! `hub.action(action, object)`: delivered to every runtime registered as
//! hub-side, which calls its agents' `onHubAction(action, object)`.
//! Standalone (`skua run`) the hub-side runtimes are the local ones; in a
//! cluster the worker↔hub link registers itself here and forwards.
//!
//! Delivery never waits: a runtime whose inbox is full drops the action and
//! the runtime counts it (`scripting.inboxQueue`). The Promise resolves with
//! the number of runtimes that took it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use scripting::{Mailbox, RuntimeEvent};
use serde_json::Value;

use super::IntegrationError;

/// Where `hub.action` goes when a hub runs the hub-side `onHubAction`
/// (over the worker's link, or to the hub in the same process): `(action,
/// object)` → runtimes reached.
pub type HubForward = Box<dyn Fn(&str, &Value) -> Result<usize, IntegrationError> + Send + Sync>;

/// The local runtimes' mailboxes, and where `hub.action` goes.
///
/// It also keeps what its broadcasts made the runtimes run — the env and
/// each agent's last source — and replays it to a runtime that registers
/// later, so a runtime started after the hub's snapshot arrived (a capture
/// core's inline runtime, a script pool) runs the same agents as the
/// others instead of none. A broadcast and a registration exclude each
/// other: every change reaches a new runtime once, by replay or by send.
#[derive(Default)]
pub struct HubRouter {
    mailboxes: RwLock<Vec<Mailbox>>,
    forward: RwLock<Option<HubForward>>,
    state: Mutex<Broadcast>,
}

/// The agents and env broadcast so far.
#[derive(Default)]
struct Broadcast {
    env: Option<BTreeMap<String, String>>,
    agents: BTreeMap<String, Arc<str>>,
}

impl Broadcast {
    fn apply(&mut self, e: &RuntimeEvent) {
        match e {
            RuntimeEvent::LoadAgent { name, source } => {
                self.agents.insert(name.clone(), source.clone());
            }
            RuntimeEvent::RemoveAgent { name } => {
                self.agents.remove(name.strip_suffix(".js").unwrap_or(name));
            }
            RuntimeEvent::SetEnv { env } => self.env = Some(env.clone()),
            _ => {}
        }
    }

    /// What a runtime joining now is sent: the env first (it reloads
    /// every agent), then each agent.
    fn replay(&self) -> Vec<RuntimeEvent> {
        let env = self.env.iter().map(|env| RuntimeEvent::SetEnv { env: env.clone() });
        let agents = self.agents.iter().map(|(name, source)| RuntimeEvent::LoadAgent {
            name: name.clone(),
            source: source.clone(),
        });
        env.chain(agents).collect()
    }
}

impl std::fmt::Debug for HubRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubRouter").field("runtimes", &self.len()).finish()
    }
}

impl HubRouter {
    /// Adds a runtime whose `onHubAction` receives every `hub.action`,
    /// and sends it the agents and env broadcast so far (it applies them
    /// at its next poll; agents it already runs unchanged stay as they are).
    pub fn register(&self, mailbox: Mailbox) {
        if let Ok(mut m) = self.mailboxes.write() {
            if let Ok(state) = self.state.lock() {
                for e in state.replay() {
                    mailbox.event(e);
                }
            }
            m.retain(|x| x.runtime() != mailbox.runtime());
            m.push(mailbox);
        }
    }

    /// Sends `hub.action` to a hub instead of the local runtimes from now on.
    pub fn forward_to(&self, forward: HubForward) {
        if let Ok(mut f) = self.forward.write() {
            *f = Some(forward);
        }
    }

    pub fn unregister(&self, runtime: scripting::RuntimeId) {
        if let Ok(mut m) = self.mailboxes.write() {
            m.retain(|x| x.runtime() != runtime);
        }
    }

    pub fn len(&self) -> usize {
        self.mailboxes.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `event` (an agent load or removal) to every registered
    /// runtime; returns how many took it.
    pub fn broadcast(&self, event: &scripting::RuntimeEvent) -> usize {
        let Ok(m) = self.mailboxes.read() else { return 0 };
        if let Ok(mut state) = self.state.lock() {
            state.apply(event);
        }
        m.iter().filter(|mb| mb.event(event.clone())).count()
    }

    /// Delivers to every registered runtime; `Ok(n)` runtimes took it.
    pub fn deliver(&self, action: &str, object: &Value) -> Result<usize, IntegrationError> {
        if action.is_empty() {
            return Err(IntegrationError::Invalid("hub.action: action is empty".into()));
        }
        if let Some(forward) = self.forward.read().ok().as_ref().and_then(|f| f.as_ref()) {
            return forward(action, object);
        }
        let m = self
            .mailboxes
            .read()
            .map_err(|_| IntegrationError::Unavailable("hub.action: router poisoned".into()))?;
        Ok(m.iter().filter(|mb| mb.hub_action(action, object.clone())).count())
    }
}
