//! The privileged half of privilege separation: a child process started as root before the
//! server drops to `user.unprivileged`, which does the shadow and PAM checks and nothing
//! else. It never touches the network: its only input is its stdin pipe and its only
//! output its stdout pipe, and it exits when stdin closes (the server is gone).
//!
//! Protocol (both ways length-prefixed, big-endian, at most [`MAX_FRAME`] bytes):
//! request `LEN u32 | ID u64 | KIND u8 (1 shadow, 2 PAM) | SERVICE | USER | PASSWORD | RHOST`
//! with each string as `u16 length | bytes`; reply `LEN u32 | ID u64 | PASS u8 | REASON`.
//! Replies come in any order (a PAM failure takes seconds, a success does not), matched by ID.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::{system_check, Outcome, SystemKind, SystemRequest};

/// The largest frame either side accepts (names and passwords are at most 255 bytes).
pub const MAX_FRAME: usize = 4096;

/// Checks the helper runs at once (PAM failures mostly sleep in pam_unix's fail delay, so
/// this can be well above the core count).
pub const HELPER_THREADS: usize = 64;

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let s = s.get(..s.len().min(1024)).unwrap_or_default();
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(s);
}

/// A cursor over a frame body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a [u8]> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        self.take(usize::from(n))
    }
}

/// Encodes a request frame.
fn encode_request(id: u64, req: &SystemRequest) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&id.to_be_bytes());
    let (kind, service) = match &req.kind {
        SystemKind::Shadow => (1u8, ""),
        SystemKind::Pam { service } => (2u8, service.as_str()),
    };
    body.push(kind);
    put_str(&mut body, service.as_bytes());
    put_str(&mut body, &req.user);
    put_str(&mut body, &req.password);
    put_str(&mut body, req.rhost.to_string().as_bytes());
    frame(body)
}

fn decode_request(body: &[u8]) -> Option<(u64, SystemRequest)> {
    let mut b = Body(body);
    let id = b.u64()?;
    let kind = b.u8()?;
    let service = String::from_utf8(b.str()?.to_vec()).ok()?;
    let user = b.str()?.to_vec();
    let password = b.str()?.to_vec();
    let rhost: IpAddr = std::str::from_utf8(b.str()?).ok()?.parse().ok()?;
    let kind = match kind {
        1 => SystemKind::Shadow,
        2 => SystemKind::Pam { service },
        _ => return None,
    };
    Some((
        id,
        SystemRequest {
            kind,
            user,
            password,
            rhost,
        },
    ))
}

fn encode_reply(id: u64, out: &Outcome) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&id.to_be_bytes());
    match out {
        Outcome::Pass => {
            body.push(1);
            put_str(&mut body, b"");
        }
        Outcome::Fail(why) => {
            body.push(0);
            put_str(&mut body, why.as_bytes());
        }
    }
    frame(body)
}

fn decode_reply(body: &[u8]) -> Option<(u64, Outcome)> {
    let mut b = Body(body);
    let id = b.u64()?;
    let pass = b.u8()?;
    let why = String::from_utf8_lossy(b.str()?).into_owned();
    Some((
        id,
        if pass == 1 {
            Outcome::Pass
        } else {
            Outcome::Fail(why)
        },
    ))
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads one frame body; Ok(None) at a clean end of input.
fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut body = vec![0u8; n];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The helper's loop: reads requests from `input` until it closes, runs each on one of
/// `threads` worker threads, writes replies to `output`. Returns at end of input.
pub fn serve(
    mut input: impl Read,
    output: impl Write + Send + 'static,
    threads: usize,
) -> io::Result<()> {
    let output = Arc::new(Mutex::new(output));
    // Bounded: when every worker is busy and the queue is full, reading stops and the
    // pipe fills, which slows the server's senders instead of growing memory here.
    let (tx, rx) = mpsc::sync_channel::<(u64, SystemRequest)>(threads.saturating_mul(4));
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..threads.max(1) {
        let (rx, output) = (rx.clone(), output.clone());
        std::thread::spawn(move || loop {
            let job = match rx.lock() {
                Ok(r) => r.recv(),
                Err(_) => return,
            };
            let Ok((id, req)) = job else { return };
            let out = system_check(&req);
            let reply = encode_reply(id, &out);
            if let Ok(mut w) = output.lock() {
                if w.write_all(&reply).and_then(|_| w.flush()).is_err() {
                    return;
                }
            }
        });
    }
    while let Some(body) = read_frame(&mut input)? {
        let Some(job) = decode_request(&body) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed request",
            ));
        };
        if tx.send(job).is_err() {
            break;
        }
    }
    Ok(())
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Outcome>>>>;

/// The server's end of the pipes to the helper.
pub struct HelperClient {
    next: AtomicU64,
    pending: Pending,
    out: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    alive: Arc<AtomicBool>,
}

impl HelperClient {
    /// Talks to a helper over `reader` (its stdout) and `writer` (its stdin). Spawns two
    /// tasks: call inside a tokio runtime.
    pub fn new(
        mut reader: impl AsyncRead + Unpin + Send + 'static,
        mut writer: impl AsyncWrite + Unpin + Send + 'static,
    ) -> Self {
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (out, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(f) = rx.recv().await {
                if writer.write_all(&f).await.is_err() {
                    break;
                }
            }
        });
        let (p, a) = (pending.clone(), alive.clone());
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 4];
                if reader.read_exact(&mut len).await.is_err() {
                    break;
                }
                let n = u32::from_be_bytes(len) as usize;
                if n > MAX_FRAME {
                    break;
                }
                let mut body = vec![0u8; n];
                if reader.read_exact(&mut body).await.is_err() {
                    break;
                }
                let Some((id, out)) = decode_reply(&body) else {
                    break;
                };
                let tx = p.lock().ok().and_then(|mut m| m.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(out);
                }
            }
            // The helper is gone: every waiting check fails (dropping the senders), and so
            // does every later one.
            a.store(false, Ordering::SeqCst);
            if let Ok(mut m) = p.lock() {
                m.clear();
            }
        });
        Self {
            next: AtomicU64::new(1),
            pending,
            out,
            alive,
        }
    }

    /// Asks the helper; a helper that is gone is a failure saying so.
    pub async fn check(&self, req: &SystemRequest) -> Outcome {
        let gone = || Outcome::Fail("the authentication helper process is gone".into());
        if !self.alive.load(Ordering::SeqCst) {
            return gone();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock() {
            Ok(mut m) => {
                m.insert(id, tx);
            }
            Err(_) => return gone(),
        }
        if self.out.send(encode_request(id, req)).is_err() {
            return gone();
        }
        rx.await.unwrap_or_else(|_| gone())
    }
}

static HELPER: OnceLock<HelperClient> = OnceLock::new();

/// Makes `client` the process's helper: from now on shadow and PAM checks go to it.
pub fn install(client: HelperClient) -> bool {
    HELPER.set(client).is_ok()
}

/// The process's helper, if one was started.
pub(crate) fn installed() -> Option<&'static HelperClient> {
    HELPER.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply_frames_round_trip_at_255_bytes() {
        let req = SystemRequest {
            kind: SystemKind::Pam {
                service: "sockd".into(),
            },
            user: vec![b'u'; 255],
            password: vec![0xff; 255],
            rhost: "::1".parse().unwrap(),
        };
        let f = encode_request(7, &req);
        let (id, back) = decode_request(&f[4..]).unwrap();
        assert_eq!(id, 7);
        assert_eq!(back, req);
        let r = encode_reply(9, &Outcome::Fail("no".into()));
        assert_eq!(decode_reply(&r[4..]), Some((9, Outcome::Fail("no".into()))));
        assert_eq!(decode_request(&f[4..f.len() - 1]), None);
    }

    #[tokio::test]
    async fn client_and_helper_answer_over_a_socket_pair_and_a_dead_helper_fails_checks() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let theirs_out = theirs.try_clone().unwrap();
        let helper = std::thread::spawn(move || serve(theirs, theirs_out, 4));
        ours.set_nonblocking(true).unwrap();
        let ours = tokio::net::UnixStream::from_std(ours).unwrap();
        let (r, w) = ours.into_split();
        let client = HelperClient::new(r, w);
        let req = SystemRequest {
            kind: SystemKind::Shadow,
            user: b"no-such-user-hasocks".to_vec(),
            password: b"x".to_vec(),
            rhost: "127.0.0.1".parse().unwrap(),
        };
        let out = client.check(&req).await;
        assert!(
            matches!(&out, Outcome::Fail(m) if m.contains("\"no-such-user-hasocks\"'s records")),
            "{out:?}"
        );
        // Closing our end ends the helper's loop (joined off the runtime's only thread,
        // which the client's writer task needs to run on).
        drop(client);
        let joined = tokio::task::spawn_blocking(move || helper.join())
            .await
            .unwrap();
        joined.unwrap().unwrap();

        // A helper whose pipe closed: checks fail at once instead of hanging.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(theirs);
        ours.set_nonblocking(true).unwrap();
        let (r, w) = tokio::net::UnixStream::from_std(ours).unwrap().into_split();
        let client = HelperClient::new(r, w);
        let out = client.check(&req).await;
        assert_eq!(
            out,
            Outcome::Fail("the authentication helper process is gone".into())
        );
    }
}
