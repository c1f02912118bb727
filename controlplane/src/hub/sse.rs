//! A server-sent-events response body: frames from a bounded queue, a
//! keep-alive comment when nothing was sent for a while (so proxies and
//! browsers keep the connection), and the client slot given back when the
//! client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

use super::HubState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One of `hub.max_sse_clients`; given back on drop.
pub(crate) struct Slot(Arc<HubState>);

impl Slot {
    /// `None` when every slot is taken (counted).
    pub(crate) fn take(state: &Arc<HubState>) -> Option<Slot> {
        let max = state.cfg.max_sse_clients;
        let ok = state
            .sse_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok();
        if ok {
            Some(Slot(state.clone()))
        } else {
            state.counters.sse_refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.sse_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct SseBody {
    rx: mpsc::Receiver<Bytes>,
    keep_alive: tokio::time::Interval,
    _slot: Slot,
}

impl SseBody {
    /// Call inside the runtime (the keep-alive timer needs it).
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>, slot: Slot) -> Self {
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        SseBody { rx, keep_alive, _slot: slot }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(b)) => {
                self.keep_alive.reset();
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if self.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b": keep-alive\n\n")))));
        }
        Poll::Pending
    }
}
