//! PAM (Linux-PAM's `libpam.so.0`), loaded at run time: the one transaction the server runs,
//! `pam_start` -> `pam_set_item` (RHOST, RUSER) -> `pam_authenticate` -> `pam_acct_mgmt` ->
//! `pam_end`, with a conversation that answers every prompt with the name or the password.
//!
//! Why loaded, not linked: linking needs the `-dev` symlink `libpam.so`, and a binary linked
//! against `libpam.so.0` would not even start on a machine without it. Loaded, PAM is needed
//! only by a config that uses a `pam.*` method, and that config is refused with a clear error.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crate::load::{open, LoadError};

/// The runtime name of Linux-PAM.
pub const LIBRARY: &str = "libpam.so.0";

// Linux-PAM's values (security/_pam_types.h), stable ABI.
const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_RHOST: c_int = 4;
const PAM_RUSER: c_int = 8;
const PAM_SILENT: c_int = 0x8000;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// Linux-PAM's `PAM_MAX_NUM_MSG`: more messages in one call is a broken module.
const PAM_MAX_NUM_MSG: c_int = 32;

#[repr(C)]
struct Message {
    style: c_int,
    text: *const c_char,
}

#[repr(C)]
struct Response {
    resp: *mut c_char,
    retcode: c_int,
}

type ConvFn =
    unsafe extern "C" fn(c_int, *mut *const Message, *mut *mut Response, *mut c_void) -> c_int;

#[repr(C)]
struct Conv {
    conv: Option<ConvFn>,
    appdata: *mut c_void,
}

type StartFn =
    unsafe extern "C" fn(*const c_char, *const c_char, *const Conv, *mut *mut c_void) -> c_int;
type SetItemFn = unsafe extern "C" fn(*mut c_void, c_int, *const c_void) -> c_int;
type FlagsFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
type StrerrorFn = unsafe extern "C" fn(*mut c_void, c_int) -> *const c_char;

/// libpam, opened, with the entry points the transaction calls.
pub struct Pam {
    // Keeps the code the pointers below point into mapped for the life of the process.
    _lib: libloading::Library,
    start: StartFn,
    set_item: SetItemFn,
    authenticate: FlagsFn,
    acct_mgmt: FlagsFn,
    end: FlagsFn,
    strerror: StrerrorFn,
}

impl std::fmt::Debug for Pam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pam(libpam.so.0)")
    }
}

static PAM: OnceLock<Result<Pam, LoadError>> = OnceLock::new();

/// libpam, loaded on first use and kept for the life of the process.
pub fn library() -> Result<&'static Pam, LoadError> {
    PAM.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Pam, LoadError> {
    let lib = open(LIBRARY)?;
    macro_rules! sym {
        ($name:literal, $ty:ty) => {{
            // SAFETY: the type is the function's prototype in Linux-PAM's headers
            // (security/pam_appl.h), whose ABI has been stable since 2001.
            #[allow(unsafe_code)]
            let s = unsafe { lib.get::<$ty>($name) };
            *s.map_err(|e| LoadError::new(LIBRARY, &e))?
        }};
    }
    let start = sym!(b"pam_start\0", StartFn);
    let set_item = sym!(b"pam_set_item\0", SetItemFn);
    let authenticate = sym!(b"pam_authenticate\0", FlagsFn);
    let acct_mgmt = sym!(b"pam_acct_mgmt\0", FlagsFn);
    let end = sym!(b"pam_end\0", FlagsFn);
    let strerror = sym!(b"pam_strerror\0", StrerrorFn);
    Ok(Pam {
        _lib: lib,
        start,
        set_item,
        authenticate,
        acct_mgmt,
        end,
        strerror,
    })
}

/// One authentication: who, from where, against which service.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The PAM service (`/etc/pam.d/<service>`).
    pub service: &'a str,
    /// The user name as the client sent it.
    pub user: &'a [u8],
    /// The password as the client sent it.
    pub password: &'a [u8],
    /// `PAM_RHOST`: the client's address.
    pub rhost: &'a str,
    /// `PAM_RUSER`.
    pub ruser: &'a str,
}

/// Why a transaction did not pass.
#[derive(Debug, thiserror::Error)]
pub enum PamError {
    /// libpam is not on this machine.
    #[error(transparent)]
    Library(#[from] LoadError),
    /// A NUL byte in the service, name or password: C strings cannot carry it.
    #[error("NUL byte in the name or password")]
    Nul,
    /// A PAM call returned a failure.
    #[error("{call}() failed: {message}")]
    Call {
        /// The call (`pam_authenticate`, ...).
        call: &'static str,
        /// Its return code.
        code: i32,
        /// `pam_strerror`'s text.
        message: String,
    },
}

/// What the conversation answers; owned by the caller's frame for the whole transaction.
struct Answers {
    user: CString,
    password: CString,
}

/// Runs the transaction (blocking: modules may sleep seconds after a failure).
pub fn authenticate(req: &Request<'_>) -> Result<(), PamError> {
    let pam = library()?;
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| PamError::Nul);
    let service = cstr(req.service.as_bytes())?;
    let rhost = cstr(req.rhost.as_bytes())?;
    let ruser = cstr(req.ruser.as_bytes())?;
    let answers = Answers {
        user: cstr(req.user)?,
        password: cstr(req.password)?,
    };
    let conv = Conv {
        conv: Some(converse),
        appdata: std::ptr::from_ref(&answers).cast_mut().cast(),
    };
    let mut handle: *mut c_void = std::ptr::null_mut();
    // SAFETY: every pointer is to a NUL-terminated string or struct that lives until this
    // function returns, after pam_end; `handle` receives libpam's handle.
    #[allow(unsafe_code)]
    let rc = unsafe { (pam.start)(service.as_ptr(), answers.user.as_ptr(), &conv, &mut handle) };
    if rc != PAM_SUCCESS || handle.is_null() {
        return Err(pam.error(std::ptr::null_mut(), "pam_start", rc));
    }
    let result = pam.transaction(handle, &rhost, &ruser);
    let last = match &result {
        Ok(()) => PAM_SUCCESS,
        Err(PamError::Call { code, .. }) => *code,
        Err(_) => PAM_CONV_ERR,
    };
    // SAFETY: `handle` came from a successful pam_start and is ended exactly once.
    #[allow(unsafe_code)]
    unsafe {
        (pam.end)(handle, last)
    };
    result
}

impl Pam {
    fn transaction(&self, h: *mut c_void, rhost: &CStr, ruser: &CStr) -> Result<(), PamError> {
        for (item, value) in [(PAM_RHOST, rhost), (PAM_RUSER, ruser)] {
            // SAFETY: `h` is a live handle; PAM copies the string.
            #[allow(unsafe_code)]
            let rc = unsafe { (self.set_item)(h, item, value.as_ptr().cast()) };
            if rc != PAM_SUCCESS {
                return Err(self.error(h, "pam_set_item", rc));
            }
        }
        // SAFETY: `h` is a live handle.
        #[allow(unsafe_code)]
        let rc = unsafe { (self.authenticate)(h, 0) };
        if rc != PAM_SUCCESS {
            return Err(self.error(h, "pam_authenticate", rc));
        }
        // SAFETY: `h` is a live handle.
        #[allow(unsafe_code)]
        let rc = unsafe { (self.acct_mgmt)(h, PAM_SILENT) };
        if rc != PAM_SUCCESS {
            return Err(self.error(h, "pam_acct_mgmt", rc));
        }
        Ok(())
    }

    fn error(&self, h: *mut c_void, call: &'static str, code: c_int) -> PamError {
        // SAFETY: pam_strerror accepts any handle (it ignores it in Linux-PAM) and returns a
        // static string or NULL.
        #[allow(unsafe_code)]
        let text = unsafe { (self.strerror)(h, code) };
        let message = if text.is_null() {
            format!("PAM error {code}")
        } else {
            // SAFETY: non-NULL, NUL-terminated, static (see above).
            #[allow(unsafe_code)]
            let s = unsafe { CStr::from_ptr(text) };
            s.to_string_lossy().into_owned()
        };
        PamError::Call {
            call,
            code,
            message,
        }
    }
}

/// The conversation: the password for hidden prompts, the name for echoed ones, nothing for
/// a module's messages (the verdict is what counts). Responses are malloc'ed, as PAM frees
/// them with free(). Never unwinds: nothing here can panic.
#[allow(unsafe_code)]
unsafe extern "C" fn converse(
    n: c_int,
    msgs: *mut *const Message,
    out: *mut *mut Response,
    appdata: *mut c_void,
) -> c_int {
    if !(1..=PAM_MAX_NUM_MSG).contains(&n) || msgs.is_null() || out.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    let n = n as usize; // 1..=32
                        // SAFETY: `appdata` is the `Answers` that `authenticate` put in the conversation; it
                        // outlives the transaction.
    let answers = unsafe { &*appdata.cast::<Answers>() };
    // SAFETY: calloc of a small array; a NULL result is handled.
    let responses = unsafe { libc::calloc(n, std::mem::size_of::<Response>()) }.cast::<Response>();
    if responses.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of `n` message pointers.
        let m = unsafe { *msgs.add(i) };
        if m.is_null() {
            // SAFETY: the first `i` responses were filled by us and `responses` is ours.
            unsafe { free_responses(responses, i) };
            return PAM_CONV_ERR;
        }
        // SAFETY: a non-NULL message from PAM.
        let style = unsafe { (*m).style };
        let answer = match style {
            PAM_PROMPT_ECHO_OFF => Some(&answers.password),
            PAM_PROMPT_ECHO_ON => Some(&answers.user),
            PAM_ERROR_MSG | PAM_TEXT_INFO => None,
            _ => {
                // SAFETY: as above.
                unsafe { free_responses(responses, i) };
                return PAM_CONV_ERR;
            }
        };
        if let Some(a) = answer {
            // SAFETY: strdup of a NUL-terminated string; NULL is handled.
            let copy = unsafe { libc::strdup(a.as_ptr()) };
            if copy.is_null() {
                // SAFETY: as above.
                unsafe { free_responses(responses, i) };
                return PAM_BUF_ERR;
            }
            // SAFETY: `i < n`, inside the calloc'ed array.
            unsafe { (*responses.add(i)).resp = copy };
        }
    }
    // SAFETY: `out` is PAM's out-parameter; it takes ownership of the array.
    unsafe { *out = responses };
    PAM_SUCCESS
}

/// Frees the first `filled` answers and the array (a conversation that gives up).
#[allow(unsafe_code)]
unsafe fn free_responses(responses: *mut Response, filled: usize) {
    for i in 0..filled {
        // SAFETY: the caller filled entries below `filled` with strdup'ed strings or NULL.
        unsafe { libc::free((*responses.add(i)).resp.cast()) };
    }
    // SAFETY: the array came from calloc.
    unsafe { libc::free(responses.cast()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_libpam_and_its_symbols() {
        // Debian's libpam0g is priority "required": every machine that builds this has it.
        library().expect("libpam.so.0 loads");
    }

    #[test]
    fn unknown_user_fails_in_pam_authenticate_not_before() {
        let r = authenticate(&Request {
            service: "hasocks-test-nonexistent-service",
            user: b"no-such-user-hasocks",
            password: b"x",
            rhost: "127.0.0.1",
            ruser: "rhostusr",
        });
        match r {
            Err(PamError::Call { call, .. }) => assert!(
                call == "pam_authenticate" || call == "pam_acct_mgmt",
                "failed in {call}"
            ),
            other => panic!("expected a PAM verdict, got {other:?}"),
        }
    }

    #[test]
    fn nul_in_a_password_is_refused_before_pam() {
        let r = authenticate(&Request {
            service: "sockd",
            user: b"alice",
            password: b"a\0b",
            rhost: "127.0.0.1",
            ruser: "rhostusr",
        });
        assert!(matches!(r, Err(PamError::Nul)), "{r:?}");
    }
}
