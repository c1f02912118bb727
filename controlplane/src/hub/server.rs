//! The hub's accept loop: hyper's HTTP/1.1 connection driver serving the
//! axum router.
//!
//! Why not `axum::serve`: it builds each connection without a timer, so
//! hyper's header read timeout never runs (a slowloris client, or an idle
//! keep-alive connection, would be held for ever), and it offers no handle
//! to close one connection from outside, which evicting a stalled live
//! stream needs (a client that never reads leaves hyper blocked on the
//! socket: only dropping the connection frees it). The loop below is that
//! plus nothing: each connection gets a [`Conn`] in its requests'
//! extensions and is dropped when its `kill` is notified.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

use super::streams::Conn;

/// A client must send a request's whole header within this (also the
/// longest an idle keep-alive connection is kept).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, app: Router) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            // Out of file descriptors and the like: wait, do not spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = Conn { kill: Arc::new(tokio::sync::Notify::new()) };
        let kill = conn.kill.clone();
        let svc = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(conn.clone());
            req
        });
        tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            tokio::select! {
                _ = http => {}
                _ = kill.notified() => {}
            }
        });
    }
}
