//! The throughput load's two ends at little CPU cost: on a small
//! machine the client and its target share the CPUs with the proxy under test, and a generator
//! that copies every byte twice (write, then read) bounds what any proxy can show. The client
//! sends with sendfile(2) from a memory file and the target discards with splice(2) through a
//! pipe into /dev/null, so no payload byte passes through user space on either end.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{memfd_create, sendfile, MemfdFlags};
use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

use crate::SessionError;

/// Bytes in the memory file the client sends from, over and over.
const SOURCE_LEN: u64 = 1 << 20;
/// Bytes moved per splice from the target socket.
const SINK_CHUNK: usize = 1 << 20;

/// The payload the client sends: a memory file of `SOURCE_LEN` bytes.
pub struct Source {
    file: File,
}

impl Source {
    /// Creates the memory file and fills it.
    pub fn new() -> io::Result<Self> {
        let fd = memfd_create("hasocks-bench", MemfdFlags::CLOEXEC)?;
        let mut file = File::from(fd);
        file.write_all(&vec![0x5au8; SOURCE_LEN as usize])?;
        Ok(Self { file })
    }

    /// Sends until `end`; returns the bytes the kernel took, or the error and the count so far.
    pub async fn send_until(
        &self,
        s: &TcpStream,
        end: Instant,
    ) -> Result<u64, (SessionError, u64)> {
        let mut sent = 0u64;
        let mut offset = 0u64;
        loop {
            tokio::select! {
                _ = sleep_until(end) => return Ok(sent),
                r = s.writable() => {
                    if let Err(e) = r {
                        return Err((SessionError::Io("write", e), sent));
                    }
                }
            }
            let want = (SOURCE_LEN - offset) as usize;
            let r = s.try_io(Interest::WRITABLE, || {
                sendfile(s, &self.file, Some(&mut offset), want).map_err(io::Error::from)
            });
            match r {
                Ok(0) => return Err((SessionError::Closed, sent)),
                Ok(k) => sent += k as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err((SessionError::Io("sendfile", e), sent)),
            }
            if offset >= SOURCE_LEN {
                offset = 0;
            }
        }
    }
}

/// Discards everything `s` receives, counting it, until EOF or an error.
pub async fn sink(s: &TcpStream, counter: &AtomicU64) -> io::Result<()> {
    let (rd, wr): (OwnedFd, OwnedFd) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let null = File::options().write(true).open("/dev/null")?;
    loop {
        s.readable().await?;
        let r = s.try_io(Interest::READABLE, || {
            splice(
                s,
                None,
                &wr,
                None,
                SINK_CHUNK,
                SpliceFlags::NONBLOCK | SpliceFlags::MOVE,
            )
            .map_err(io::Error::from)
        });
        let n = match r {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        // /dev/null takes everything at once; loop in case a splice moves less.
        let mut left = n;
        while left > 0 {
            match splice(&rd, None, &null, None, left, SpliceFlags::MOVE) {
                Ok(0) => break,
                Ok(k) => left -= k,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn source_bytes_reach_the_sink_and_are_counted() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let c2 = counter.clone();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            sink(&s, &c2).await
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let sent = Source::new()
            .unwrap()
            .send_until(&client, Instant::now() + Duration::from_millis(200))
            .await
            .unwrap();
        drop(client);
        server.await.unwrap().unwrap();
        assert!(sent > 0);
        assert_eq!(
            counter.load(Ordering::Relaxed),
            sent,
            "every byte sent is counted once"
        );
    }
}
