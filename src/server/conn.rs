//! The accept loop and connection settings.
//!
//! hyper's header-read timeout is silently off unless a timer is configured
//! (RELIABILITY item 9), so connections are served by hyper's HTTP/1 builder with a
//! `TokioTimer` and an explicit `header_read_timeout`, not by `axum::serve`.
//! Shutdown: stop accepting, tell long-lived responses to end, then wait (bounded)
//! for every connection's in-flight request; idle keep-alive connections close.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::error::ServerError;
use super::{routes, Shared};

pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Shared,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let limits = state.limits.clone();
    let app = routes::router(state);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        log::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    log::warn!("connection limit of {} reached; closing a new connection", limits.max_connections);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        log::debug!("connection ended with an error: {e}");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    log::info!("shutting down: waiting for {} connection(s)", graceful.count());
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        log::warn!("in-flight requests did not finish within {:?}", limits.shutdown_timeout);
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => log::info!("SIGINT received"),
        () = term => log::info!("SIGTERM received"),
    }
}
