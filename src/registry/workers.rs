//! Connection workers: one thread per CPU, each running a single-threaded tokio runtime, and
//! each accepted connection handed to the worker with the fewest open ones, where it stays
//! for its whole life (as nginx's worker processes share the connections out).
//!
//! Why not the multi-threaded runtime the rest of the program runs on: under many keep-alive
//! connections its scheduler serves some of them first (a task woken last goes next, and a
//! worker's local queue is served before the shared one only so often), so the slowest
//! requests waited more than twice as long as in a plain first-in-first-out queue. A
//! single-threaded runtime is that queue. With 1,000 connections on one CPU (bench/scale.sh):
//! p99 61-65 ms at ~34k requests/s before, 28.5-30.4 ms at 51-55k after.
//! What runs on a worker stays there: a pin-through that a request starts runs on that
//! request's worker, beside its connections.
//!
//! Owns: the worker threads and their runtimes, choosing a worker for a connection.
//! Must not touch: HTTP (the connection's future is handed in), the listener.

use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tracing::warn;

use super::request_log;

/// The worker threads; dropping this stops them (what still runs on them is dropped).
pub struct Workers {
    workers: Vec<Worker>,
}

struct Worker {
    handle: Handle,
    /// Connections open on this worker.
    open: Arc<AtomicUsize>,
    /// Dropped to stop the worker.
    _stop: oneshot::Sender<()>,
}

impl Workers {
    /// One worker per CPU this process may run on.
    pub fn per_cpu() -> io::Result<Workers> {
        let cpus = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Workers::start(cpus)
    }

    pub fn start(count: NonZeroUsize) -> io::Result<Workers> {
        let workers = (0..count.get())
            .map(Worker::start)
            .collect::<io::Result<_>>()?;
        Ok(Workers { workers })
    }

    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// Move `tcp` (accepted on another runtime) to the worker with the fewest open
    /// connections, and run `serve(tcp)` there.
    pub fn spawn<S, F>(&self, tcp: TcpStream, serve: S)
    where
        S: FnOnce(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let worker = self.least_busy();
        // Out of the accepting runtime's reactor, into the worker's (from_std, there).
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => return warn!("handing a connection to a worker: {e}"),
        };
        let open = Open::count(&worker.open);
        worker.handle.spawn(async move {
            let _open = open;
            match TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(e) => warn!("handing a connection to a worker: {e}"),
            }
        });
    }

    fn least_busy(&self) -> &Worker {
        let open = |w: &&Worker| w.open.load(Ordering::Relaxed);
        self.workers.iter().min_by_key(open).expect("at least one")
    }
}

impl Worker {
    fn start(index: usize) -> io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Request lines wait for company under load; a worker with nothing to do
            // writes them.
            .on_thread_park(request_log::flush)
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("connections-{index}"))
            .spawn(move || runtime.block_on(async { stopped.await.ok() }))?;
        Ok(Worker {
            handle,
            open: Arc::new(AtomicUsize::new(0)),
            _stop: stop,
        })
    }
}

/// One open connection, counted on its worker while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Open {
        open.fetch_add(1, Ordering::Relaxed);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Connect to `listener`, hand the server's end to `workers`, and return the client's end
    /// with the name of the thread that served it (the server says it, then waits for the
    /// client to close).
    async fn connect(workers: &Workers, listener: &tokio::net::TcpListener) -> (TcpStream, String) {
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, server) = tokio::join!(client, listener.accept());
        workers.spawn(server.unwrap().0, |mut tcp| async move {
            let name = std::thread::current().name().unwrap_or("").to_string();
            tcp.write_all(name.as_bytes()).await.unwrap();
            let _ = tcp.read(&mut [0; 1]).await;
        });
        let mut client = client.unwrap();
        let mut name = [0; 13];
        client.read_exact(&mut name).await.unwrap();
        (client, String::from_utf8_lossy(&name).to_string())
    }

    #[tokio::test]
    async fn connections_go_to_the_least_busy_worker_and_are_served_on_its_thread() {
        let workers = Workers::start(NonZeroUsize::new(2).unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(connect(&workers, &listener).await);
        }
        let names: Vec<&str> = clients.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "connections-0",
                "connections-1",
                "connections-0",
                "connections-1"
            ]
        );
        let open = |i: usize| workers.workers[i].open.load(Ordering::Relaxed);
        assert_eq!((open(0), open(1)), (2, 2));
        // Two close on worker 0: the next connection goes there.
        clients.remove(2);
        clients.remove(0);
        for _ in 0..100 {
            if open(0) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((open(0), open(1)), (0, 2));
        let (_client, name) = connect(&workers, &listener).await;
        assert_eq!(name, "connections-0");
    }
}
