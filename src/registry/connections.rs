//! The server's connections: one accept loop for plain HTTP and TLS, each connection served
//! by hyper (HTTP/1.1, and HTTP/2 by ALPN over TLS or prior knowledge in plain text), and the
//! graceful drain at shutdown.
//!
//! A plain connection writes through `sendfile::Stream` (blobs go out with sendfile); a TLS
//! one is handed to rustls first (`tls.rs` owns the certificate and the handshake settings).
//! Either way each request carries `ConnectInfo<Peer>`, the address it came from. The loop
//! runs on the caller's runtime; each connection on one of the workers (`workers.rs`).
//!
//! Owns: accepting, the per-connection hyper setup, handshake and drain timeouts.
//! Must not touch: which worker a connection runs on (`workers.rs`).
//! Must not touch: routes or handlers (the router is handed in whole), how bytes reach the
//! socket (`sendfile.rs`), certificates (`tls.rs`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::sendfile;
use super::tls::Tls;
use super::workers::Workers;

/// How long a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish their requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait before accepting again after an error (EMFILE and the like), instead of
/// spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The address a connection comes from, for handlers (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Serve `app` on `listener` until `shutdown` resolves, over TLS with `tls`, each connection
/// on one of `workers`; open connections then get `DRAIN_TIMEOUT` to finish what they are
/// doing.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    app: Router,
    workers: &Workers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            // Outside tokio's budget: the loop empties the backlog before it waits again.
            // Once out of budget it would wait behind busy connections while the listen
            // queue overflows, and new connections would wait seconds under load.
            accepted = tokio::task::unconstrained(listener.accept()) => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    warn!("accepting a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out whole (hyper writes headers and small bodies together; large ones
        // are corked while sent): Nagle would only hold a tail back.
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            addr,
            watcher: graceful.watcher(),
        };
        let tls = tls.clone();
        workers.spawn(tcp, move |tcp| conn.run(tcp, tls));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            info!("connections still open after {}s; closing them", DRAIN_TIMEOUT.as_secs());
        }
    }
    Ok(())
}

/// One accepted connection, before its first byte is read.
struct Connection {
    app: Router,
    addr: SocketAddr,
    watcher: Watcher,
}

impl Connection {
    /// Handshake (with `tls`), then serve requests until the client or a shutdown closes it.
    async fn run(self, tcp: TcpStream, tls: Option<Arc<Tls>>) {
        let Some(tls) = tls else {
            return self.http(sendfile::Stream::new(tcp)).await;
        };
        let addr = self.addr;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(tcp)).await {
            Ok(Ok(stream)) => self.http(stream).await,
            Ok(Err(e)) => debug!("TLS handshake with {addr}: {e}"),
            Err(_) => debug!("TLS handshake with {addr}: timed out"),
        }
    }

    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection { app, addr, watcher } = self;
        let app = app.map_request(move |req: Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(Peer(addr)));
            req
        });
        let service = TowerToHyperService::new(app);
        let builder = auto::Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn.into_owned()).await {
            debug!("connection from {addr}: {e}");
        }
    }
}
