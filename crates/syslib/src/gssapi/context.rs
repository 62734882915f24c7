//! A security context: establishment (either side) and per-message protection.

use std::ffi::c_void;
use std::ptr::null_mut;

use super::ffi::{self, Buffer, GSS_S_CONTINUE_NEEDED};
use super::{lib, Credential, GssError};

/// Context flags (RFC 2744): what the initiator asks for and what the context gives.
pub mod flags {
    /// Mutual authentication (the server proves itself too).
    pub const MUTUAL: u32 = 2;
    /// Replayed messages are detected.
    pub const REPLAY: u32 = 4;
    /// Out-of-sequence messages are detected.
    pub const SEQUENCE: u32 = 8;
    /// Per-message confidentiality is available.
    pub const CONF: u32 = 16;
    /// Per-message integrity is available.
    pub const INTEG: u32 = 32;
}

/// What one establishment step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token to the peer and feed its answer to the next step.
    Continue(Vec<u8>),
    /// Established; send this token (if not empty) as the last of the exchange.
    Done(Vec<u8>),
}

/// One security context, deleted when dropped. Send (one session owns it), not Sync: callers
/// that wrap and unwrap from two tasks put it behind a lock.
pub struct Context {
    handle: *mut c_void,
    target: Option<ffi::Name>,
    peer: Option<String>,
    flags: u32,
}

// SAFETY: an MIT context is plain memory used by one thread at a time (the `&mut self`
// methods below); moving it to another thread between calls is sound.
#[allow(unsafe_code)]
unsafe impl Send for Context {}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("peer", &self.peer)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.handle.is_null() {
            return;
        }
        if let Ok(gss) = lib() {
            let mut minor = 0;
            // SAFETY: a live context handle, deleted once; no output token is wanted.
            #[allow(unsafe_code)]
            unsafe {
                (gss.delete_context)(&mut minor, &mut self.handle, null_mut())
            };
        }
    }
}

impl Context {
    /// An acceptor's context, before the client's first token.
    pub fn accept() -> Self {
        Context {
            handle: null_mut(),
            target: None,
            peer: None,
            flags: 0,
        }
    }

    /// An initiator's context for `target` (`rcmd@proxy.example.com`, or a principal
    /// `rcmd/proxy.example.com@EXAMPLE.COM`).
    pub fn initiate(target: &str) -> Result<Self, GssError> {
        Ok(Context {
            handle: null_mut(),
            target: Some(super::target_name(target)?),
            peer: None,
            flags: 0,
        })
    }

    /// The initiator's name once an acceptor's context is established (`alice@EXAMPLE.COM`).
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// The context's flags ([`flags`]) once established.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// One acceptor step with the client's `token`; `cred` None takes any key of the default
    /// keytab.
    pub fn accept_step(
        &mut self,
        cred: Option<&Credential>,
        token: &[u8],
    ) -> Result<Step, GssError> {
        let gss = lib()?;
        let mut copy = token.to_vec();
        let input = Buffer::input(&mut copy);
        let mut out = Buffer::empty();
        let mut src: *mut c_void = null_mut();
        let (mut minor, mut ret_flags) = (0, 0);
        // SAFETY: `input` points into `token` for the call; the out-parameters receive a
        // name and a buffer released below; NULL bindings/mech/time/delegation are allowed.
        #[allow(unsafe_code)]
        let major = unsafe {
            (gss.accept)(
                &mut minor,
                &mut self.handle,
                cred.map_or(null_mut(), |c| c.handle.0),
                &input,
                null_mut(),
                &mut src,
                null_mut(),
                &mut out,
                &mut ret_flags,
                null_mut(),
                null_mut(),
            )
        };
        let src = ffi::Name(src);
        let token = gss.take(&mut out);
        gss.check("gss_accept_sec_context", major, minor)?;
        self.flags = ret_flags;
        if major & GSS_S_CONTINUE_NEEDED != 0 {
            return Ok(Step::Continue(token));
        }
        self.peer = Some(display(&src)?);
        Ok(Step::Done(token))
    }

    /// One initiator step: None first, then each token the acceptor sent. Asks for mutual
    /// authentication, replay and sequence detection, integrity and confidentiality.
    pub fn init_step(
        &mut self,
        cred: Option<&Credential>,
        token: Option<&[u8]>,
    ) -> Result<Step, GssError> {
        let gss = lib()?;
        let target = self.target.as_ref().map_or(null_mut(), |n| n.0);
        let mut copy = token.unwrap_or_default().to_vec();
        let input = Buffer::input(&mut copy);
        let mut out = Buffer::empty();
        let mech = ffi::krb5_mech();
        let (mut minor, mut ret_flags) = (0, 0);
        let want = flags::MUTUAL | flags::REPLAY | flags::SEQUENCE | flags::CONF | flags::INTEG;
        // SAFETY: `target`, `mech` and `input` live for the call; the output buffer is
        // released below; NULL bindings/actual mech/time are allowed.
        #[allow(unsafe_code)]
        let major = unsafe {
            (gss.init)(
                &mut minor,
                cred.map_or(null_mut(), |c| c.handle.0),
                &mut self.handle,
                target,
                &mech,
                want,
                super::LIFETIME,
                null_mut(),
                &input,
                null_mut(),
                &mut out,
                &mut ret_flags,
                null_mut(),
            )
        };
        let token = gss.take(&mut out);
        gss.check("gss_init_sec_context", major, minor)?;
        self.flags = ret_flags;
        if major & GSS_S_CONTINUE_NEEDED != 0 {
            Ok(Step::Continue(token))
        } else {
            Ok(Step::Done(token))
        }
    }

    /// Wraps `data` (`conf`: encrypted too) and appends the token to `out`.
    pub fn wrap(&mut self, conf: bool, data: &[u8], out: &mut Vec<u8>) -> Result<(), GssError> {
        let gss = lib()?;
        // gss_wrap copies its input into the new token and never writes to it: the cast to
        // mut only fits the C prototype.
        let input = Buffer {
            length: data.len(),
            value: data.as_ptr().cast_mut().cast(),
        };
        let mut token = Buffer::empty();
        let (mut minor, mut conf_state) = (0, 0);
        // SAFETY: a live context; `input` lives for the call; `token` is released by
        // `take_into`.
        #[allow(unsafe_code)]
        let major = unsafe {
            (gss.wrap)(
                &mut minor,
                self.handle,
                i32::from(conf),
                0,
                &input,
                &mut conf_state,
                &mut token,
            )
        };
        gss.take_into(&mut token, out);
        gss.check("gss_wrap", major, minor)
    }

    /// Unwraps one token and appends the message to `out`; returns whether it was encrypted.
    /// A replayed, old or out-of-order message is an error, as a bad one is. The library
    /// works in place: `token` is garbage afterwards.
    pub fn unwrap(&mut self, token: &mut [u8], out: &mut Vec<u8>) -> Result<bool, GssError> {
        self.unwrap_with(token, out, ffi::out_of_order)
    }

    /// [`Context::unwrap`] for datagrams, which may be lost or reordered on the way: a gap or
    /// an early message passes, a replayed or too old one does not.
    pub fn unwrap_datagram(
        &mut self,
        token: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, GssError> {
        self.unwrap_with(token, out, ffi::replayed)
    }

    fn unwrap_with(
        &mut self,
        token: &mut [u8],
        out: &mut Vec<u8>,
        refused: fn(u32) -> bool,
    ) -> Result<bool, GssError> {
        let gss = lib()?;
        let input = Buffer::input(token);
        let mut msg = Buffer::empty();
        let (mut minor, mut conf_state, mut qop) = (0, 0, 0);
        // SAFETY: a live context; `input` lives for the call; `msg` is released by
        // `take_into`.
        #[allow(unsafe_code)]
        let major = unsafe {
            (gss.unwrap)(
                &mut minor,
                self.handle,
                &input,
                &mut msg,
                &mut conf_state,
                &mut qop,
            )
        };
        let start = out.len();
        gss.take_into(&mut msg, out);
        if let Err(e) = gss.check("gss_unwrap", major, minor) {
            out.truncate(start);
            return Err(e);
        }
        if refused(major) {
            out.truncate(start);
            return Err(GssError {
                call: "gss_unwrap",
                major: major | ffi::GSS_S_FAILURE,
                minor,
                message: "replayed or out-of-sequence message".into(),
                kind: super::ErrorKind::Replay,
            });
        }
        Ok(conf_state != 0)
    }

    /// The most bytes one `wrap` call may take for its token to fit in `max_token` bytes.
    pub fn wrap_size_limit(&self, conf: bool, max_token: u32) -> Result<u32, GssError> {
        let gss = lib()?;
        let (mut minor, mut max) = (0, 0);
        // SAFETY: a live, established context; plain integer out-parameters.
        #[allow(unsafe_code)]
        let major = unsafe {
            (gss.wrap_size_limit)(
                &mut minor,
                self.handle,
                i32::from(conf),
                0,
                max_token,
                &mut max,
            )
        };
        gss.check("gss_wrap_size_limit", major, minor)?;
        Ok(max)
    }
}

/// `gss_display_name`'s text for a name.
fn display(name: &ffi::Name) -> Result<String, GssError> {
    let gss = lib()?;
    let mut buf = Buffer::empty();
    let mut minor = 0;
    // SAFETY: a name the library returned; the buffer is released by `take`; NULL type.
    #[allow(unsafe_code)]
    let major = unsafe { (gss.display_name)(&mut minor, name.0, &mut buf, null_mut()) };
    let text = gss.take(&mut buf);
    gss.check("gss_display_name", major, minor)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}
