//! Zero-copy sending of stored blobs: the server's TCP streams send any slice of a
//! memory-mapped blob that hyper hands them with `sendfile(2)` from the blob's file, so the
//! kernel passes page-cache pages to the socket instead of copying them in from user space
//! (what nginx's `sendfile on` does). The bytes on the wire are the same either way.
//! While a slice is sent the socket is corked (TCP_CORK, as nginx's `tcp_nopush`), so the
//! kernel sends full segments whatever the size of each call; a flush uncorks it. Without
//! it the same bytes took ~65% more packets and ~25% more server CPU on loopback.
//! sendfile blocks while it reads pages that are not in the page cache, so a chunk whose
//! pages are not all resident (mincore) is read on a blocking thread first: a blob served
//! from disk does not hold up a runtime worker, and the requests it would serve.
//!
//! Owns: the stream wrapper each plain connection writes through, and the counts of bytes
//! sent this way and read from disk first.
//! Must not touch: HTTP framing (hyper decides what is written and when; this only changes
//! how a mapped slice reaches the socket), the store (mapped slices are found through
//! `store::mapped`).

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::store::mapped::{self, FileRange};

/// The most one sendfile call is asked to send. As with nginx's `sendfile_max_chunk`, a
/// loopback or LAN socket takes a chunk this size whole, so the sender goes on at once
/// instead of filling the buffer and waiting to be told it can write again.
const SENDFILE_CHUNK: usize = 2 << 20;

/// Bytes sent with sendfile since the process started.
pub static SENT: AtomicU64 = AtomicU64::new(0);

/// Bytes read into the page cache on a blocking thread before they were sent.
pub static FROM_DISK: AtomicU64 = AtomicU64::new(0);

/// Size of the buffer a blocking thread reads a chunk through (the bytes are dropped; the
/// point is the page cache).
const READ_BUF: usize = 256 * 1024;

/// A connection: reads and ordinary writes go to the socket unchanged.
pub struct Stream {
    tcp: TcpStream,
    /// TCP_CORK is on: set while a mapped slice is sent, so that the kernel sends full
    /// segments however the sendfile calls fall, and cleared on flush, when the response
    /// (or the part of it hyper has) is all written.
    corked: bool,
    /// The chunk being read into the page cache off the runtime.
    reading: Option<Reading>,
}

/// A chunk (address and length of the mapped slice) being read on a blocking thread.
struct Reading {
    at: (usize, usize),
    task: JoinHandle<()>,
}

impl Stream {
    pub fn new(tcp: TcpStream) -> Stream {
        Stream {
            tcp,
            corked: false,
            reading: None,
        }
    }

    /// Turn TCP_CORK on or off (a no-op when it already is). Clearing it sends what it
    /// held back at once. A failure only costs segment sizes, so it is ignored.
    fn cork(&mut self, on: bool) {
        if self.corked != on {
            let _ = rustix::net::sockopt::set_tcp_cork(&self.tcp, on);
            self.corked = on;
        }
    }

    /// Ready once `chunk`, the mapped bytes of `range`, is in the page cache (as far as one
    /// read can make it so): when some of it is not, it is read on a blocking thread first.
    /// Nothing is kept once the read is done, so a chunk met again (after the socket was
    /// full) is checked again.
    fn poll_in_cache(&mut self, cx: &mut Context<'_>, chunk: &[u8], range: &FileRange) -> Poll<()> {
        let at = (chunk.as_ptr() as usize, chunk.len());
        if self.reading.as_ref().is_none_or(|r| r.at != at) {
            if mapped::resident(chunk) {
                self.reading = None;
                return Poll::Ready(());
            }
            let (file, offset) = (range.file.clone(), range.offset);
            let task = tokio::task::spawn_blocking(move || read_into_cache(&file, offset, at.1));
            self.reading = Some(Reading { at, task });
        }
        let reading = self.reading.as_mut().expect("set above");
        // A failed read is left to sendfile, which meets the same error and reports it.
        let _ = ready!(Pin::new(&mut reading.task).poll(cx));
        self.reading = None;
        Poll::Ready(())
    }

    /// Send up to `range.len` bytes of the file at `range.offset`; Ok(n) once some are sent.
    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        range: &FileRange,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let send = || {
                let mut offset = range.offset;
                rustix::fs::sendfile(&self.tcp, &*range.file, Some(&mut offset), range.len)
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

/// Read `len` bytes of `file` at `offset` (a blocking thread's work), so that they are in
/// the page cache when sendfile wants them.
fn read_into_cache(file: &File, offset: u64, len: usize) {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
    }
    BUF.with_borrow_mut(|buf| {
        let mut done = 0;
        while done < len {
            let want = (len - done).min(buf.len());
            match file.read_at(&mut buf[..want], offset + done as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        FROM_DISK.fetch_add(done as u64, Ordering::Relaxed);
    });
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
        if let Some(mut range) = mapped::file_range(&bufs[0]) {
            range.len = range.len.min(SENDFILE_CHUNK);
            let chunk = &bufs[0][..range.len];
            ready!(self.poll_in_cache(cx, chunk, &range));
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
    use rustix::net::sockopt::tcp_cork;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (Stream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::spawn(TcpStream::connect(listener.local_addr().unwrap()));
        let (server, _) = listener.accept().await.unwrap();
        (Stream::new(server), client.await.unwrap().unwrap())
    }

    /// A blob file of 3,000,000 bytes and its mapping.
    fn blob() -> (tempfile::TempDir, Vec<u8>, bytes::Bytes) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        File::create(&path).unwrap().write_all(&content).unwrap();
        let map = mapped::map(File::open(&path).unwrap()).unwrap();
        (dir, content, map)
    }

    /// Write `head` and then `body` through `server` as hyper does (vectored, short writes),
    /// flush, and return what the client read once the server shut down.
    async fn send(mut server: Stream, mut client: TcpStream, head: &[u8], body: &[u8]) -> Vec<u8> {
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut bufs = [head, body];
        while bufs.iter().any(|b| !b.is_empty()) {
            let slices = [IoSlice::new(bufs[0]), IoSlice::new(bufs[1])];
            let mut n = server.write_vectored(&slices).await.unwrap();
            assert!(n <= SENDFILE_CHUNK, "one call sends at most a chunk");
            for b in bufs.iter_mut() {
                let k = n.min(b.len());
                *b = &b[k..];
                n -= k;
            }
        }
        let corked = tcp_cork(&server.tcp).unwrap();
        assert!(corked, "corked while the slice is sent");
        server.flush().await.unwrap();
        let corked = tcp_cork(&server.tcp).unwrap();
        assert!(!corked, "a flush lets the last segment go");
        server.shutdown().await.unwrap();
        reader.await.unwrap()
    }

    #[tokio::test]
    async fn headers_then_a_mapped_slice_arrive_in_order_and_the_slice_goes_by_sendfile() {
        let (_dir, content, map) = blob();
        let (server, client) = pair().await;
        let before = SENT.load(Ordering::Relaxed);
        let got = send(server, client, b"HEADERS\r\n", &map[1000..]).await;
        assert_eq!(&got[..9], b"HEADERS\r\n");
        assert!(got[9..] == content[1000..], "the body is the file's bytes");
        let sent = SENT.load(Ordering::Relaxed) - before;
        assert!(sent >= content.len() as u64 - 1000, "sent with sendfile");
    }

    #[tokio::test]
    async fn pages_not_in_the_page_cache_are_read_off_the_runtime_before_they_are_sent() {
        let (_dir, content, map) = blob();
        let file = mapped::file_range(&map).unwrap().file;
        file.sync_all().unwrap(); // only clean pages can be dropped
        rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        assert!(
            !mapped::resident(&map),
            "precondition: the blob is not in the cache"
        );
        let (server, client) = pair().await;
        let before = FROM_DISK.load(Ordering::Relaxed);
        let got = send(server, client, b"", &map).await;
        assert!(got == content, "the body is the file's bytes");
        let read = FROM_DISK.load(Ordering::Relaxed) - before;
        assert!(
            read >= SENDFILE_CHUNK as u64,
            "read ahead of sendfile: {read} bytes"
        );
        assert!(mapped::resident(&map));
    }
}
