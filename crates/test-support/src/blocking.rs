//! Helpers for tests that drive real processes from plain threads (no runtime): a child that
//! dies with the test, signals, and a SOCKS5 CONNECT with std sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// A child process killed and reaped when the test ends, however it ends.
pub struct Running(pub Child);

impl Running {
    /// Its process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).unwrap_or(i32::MAX)
    }

    /// Sends `sig` (a number such as 1 = SIGHUP, 2 = SIGINT, 15 = SIGTERM).
    pub fn signal(&self, sig: i32) {
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Waits up to `deadline` for the process to exit; its exit code (None: still running or
    /// killed by a signal).
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(st)) = self.0.try_wait() {
                return st.code();
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One SOCKS5 CONNECT with std sockets; the reply code, or None if the proxy is not there.
pub fn socks5_rep(proxy: SocketAddr, target: SocketAddr) -> Option<u8> {
    socks5_stream(proxy, target).map(|(_, rep)| rep)
}

/// One SOCKS5 CONNECT with std sockets: the stream and the reply code.
pub fn socks5_stream(proxy: SocketAddr, target: SocketAddr) -> Option<(TcpStream, u8)> {
    let mut s = TcpStream::connect_timeout(&proxy, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(&[5, 1, 0]).ok()?;
    let mut sel = [0u8; 2];
    s.read_exact(&mut sel).ok()?;
    s.write_all(&crate::socks::request_ip(1, target)).ok()?;
    let mut rep = [0u8; 4];
    s.read_exact(&mut rep).ok()?;
    let rest = match rep[3] {
        4 => 18,
        _ => 6,
    };
    let mut bnd = vec![0u8; rest];
    s.read_exact(&mut bnd).ok()?;
    Some((s, rep[1]))
}

/// A TCP echo server on `ip`:0 served by plain threads; returns its address.
pub fn echo_server(ip: &str) -> SocketAddr {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind echo");
    let addr = l.local_addr().expect("echo addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s;
                let Ok(mut w) = r.try_clone() else { return };
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    addr
}

/// Writes `msg` and reads it back; whether the echo came.
pub fn echo_round(s: &mut TcpStream, msg: &[u8]) -> bool {
    let mut back = vec![0u8; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}
