//! Live streams (server-sent events): who may hold one, and when one is
//! taken back.
//!
//! Two pools of slots, so no kind of client can starve the other: viewer
//! streams (items and console, for read and admin tokens;
//! `hub.max_sse_clients`, at most `hub.max_streams_per_token` per token)
//! and worker links (`/api/link/events`; `hub.max_worker_links`, at most
//! `hub.max_links_per_token` per token). One worker name has one link: a
//! worker that links again (restarted before its old connection was seen
//! to die) replaces its old link.
//!
//! A stream whose client takes nothing while events wait for it for
//! `hub.stream_stall_ms` is evicted: its connection is closed (through the
//! connection's [`Conn`] handle: a client that never reads leaves hyper
//! blocked on the socket, so only closing the connection frees the slot).
//! Every refusal and eviction is counted by class and reason.
//!
//! The response body is axum's SSE ([`axum::response::sse::Sse`]) over the
//! stream's bounded queue, with a keep-alive comment every 15 s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, Notify};

use super::auth::TokenId;
use super::feed::{Frame, StreamStats, StreamTx};
use super::HubState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The connection a request came on: a handle to close it (the accept loop
/// waits on it beside the connection).
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub kill: Arc<Notify>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Viewer,
    Link,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Viewer => "viewer",
            Class::Link => "link",
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    #[error("too many live streams of this kind ({0})")]
    Full(&'static str),
    #[error("this token holds as many live streams as it may ({0})")]
    TokenCap(&'static str),
}

impl StreamRefused {
    pub fn reason(self) -> &'static str {
        match self {
            StreamRefused::Full(_) => "full",
            StreamRefused::TokenCap(_) => "token",
        }
    }
}

struct Open {
    class: Class,
    token: TokenId,
    worker: Option<String>,
    stats: Arc<StreamStats>,
    conn: Option<Conn>,
    /// Closed by the hub; its slot is free for counting while the
    /// connection winds down.
    evicted: bool,
}

#[derive(Default)]
pub(crate) struct Streams {
    inner: Mutex<(u64, HashMap<u64, Open>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One taken slot; given back when the response body is dropped.
pub(crate) struct Slot {
    id: u64,
    stats: Arc<StreamStats>,
    state: Arc<HubState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.state.streams.inner).1.remove(&self.id);
    }
}

impl Streams {
    /// Streams open now (evicted ones winding down not counted), by class.
    pub fn open(&self, class: Class) -> usize {
        lock(&self.inner).1.values().filter(|o| o.class == class && !o.evicted).count()
    }
}

/// A new stream's queue and the slot that holds it.
pub(crate) struct Opened {
    pub tx: StreamTx,
    pub rx: mpsc::Receiver<Frame>,
    pub slot: Slot,
}

/// Takes a slot of `class` for `token` (a worker link names its
/// `worker`: an older link of that name is evicted as replaced).
pub(crate) fn open(
    state: &Arc<HubState>,
    class: Class,
    token: TokenId,
    worker: Option<&str>,
    conn: Option<Conn>,
) -> Result<Opened, StreamRefused> {
    let cfg = &state.cfg;
    let (max, per_token) = match class {
        Class::Viewer => (cfg.max_sse_clients, cfg.max_streams_per_token),
        Class::Link => (cfg.max_worker_links, cfg.max_links_per_token),
    };
    let stats = Arc::new(StreamStats::default());
    stats.last_taken_ms.store(state.now_ms(), Ordering::Relaxed);
    let id = {
        let mut g = lock(&state.streams.inner);
        let (next, open) = &mut *g;
        if let Some(w) = worker {
            for o in open.values_mut().filter(|o| !o.evicted && o.worker.as_deref() == Some(w)) {
                o.evicted = true;
                if let Some(c) = &o.conn {
                    c.kill.notify_one();
                }
                state.counters.stream_evicted(class, "replaced");
            }
        }
        let live = open.values().filter(|o| o.class == class && !o.evicted);
        let (mut all, mut mine) = (0, 0);
        for o in live {
            all += 1;
            mine += usize::from(token.is_some() && o.token == token);
        }
        let refused = if all >= max {
            Some(StreamRefused::Full(class.name()))
        } else if mine >= per_token {
            Some(StreamRefused::TokenCap(class.name()))
        } else {
            None
        };
        if let Some(r) = refused {
            state.counters.stream_refused(class, r.reason());
            return Err(r);
        }
        *next += 1;
        let o = Open {
            class,
            token,
            worker: worker.map(String::from),
            stats: stats.clone(),
            conn,
            evicted: false,
        };
        open.insert(*next, o);
        *next
    };
    let queue = cfg.sse_client_queue.max(1);
    let (tx, rx) = mpsc::channel(queue);
    let slot = Slot { id, stats: stats.clone(), state: state.clone() };
    let tx = StreamTx { tx, stats, max_bytes: cfg.sse_client_queue_bytes };
    Ok(Opened { tx, rx, slot })
}

/// Closes every stream whose client has taken nothing for
/// `hub.stream_stall_ms` while events waited; returns how many.
pub(crate) fn evict_stalled(state: &HubState) -> usize {
    let stall = state.cfg.stream_stall_ms;
    let now = state.now_ms();
    let mut n = 0;
    for o in lock(&state.streams.inner).1.values_mut().filter(|o| !o.evicted) {
        let waiting = o.stats.queued_bytes.load(Ordering::Relaxed) > 0;
        let idle = now.saturating_sub(o.stats.last_taken_ms.load(Ordering::Relaxed));
        if waiting && idle > stall {
            o.evicted = true;
            if let Some(c) = &o.conn {
                c.kill.notify_one();
            }
            state.counters.stream_evicted(o.class, "stalled");
            n += 1;
        }
    }
    n
}

/// The SSE response over a stream's queue; it holds the slot until the
/// client goes (or is evicted).
pub(crate) fn response(state: &Arc<HubState>, rx: mpsc::Receiver<Frame>, slot: Slot) -> Response {
    let st = state.clone();
    let events = futures::stream::unfold((rx, slot, st), |(mut rx, slot, st)| async move {
        let f = rx.recv().await?;
        slot.stats.queued_bytes.fetch_sub(f.json.len(), Ordering::Relaxed);
        slot.stats.last_taken_ms.store(st.now_ms(), Ordering::Relaxed);
        // serde_json's output is UTF-8 without newlines: one `data:` line.
        let data = std::str::from_utf8(&f.json).unwrap_or("null");
        let mut ev = Event::default().event(f.event.as_ref()).data(data);
        if let Some(id) = f.id {
            ev = ev.id(id.to_string());
        }
        Some((Ok::<_, Infallible>(ev), (rx, slot, st)))
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    resp.headers_mut().insert("x-accel-buffering", hyper::header::HeaderValue::from_static("no"));
    resp
}
