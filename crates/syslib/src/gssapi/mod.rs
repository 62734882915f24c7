//! GSS-API (MIT Kerberos' `libgssapi_krb5.so.2`), loaded at run time: credentials from a
//! keytab ([`Credential`]), the context establishment of either side and per-message
//! protection ([`Context`]).
//!
//! Why loaded, not linked: linking needs the `-dev` symlink `libgssapi_krb5.so`, and a binary
//! linked against it would not start on a machine without Kerberos. Loaded, it is needed only
//! by a config that names `gssapi`, and that config is refused with a clear error.
//!
//! Keytabs are passed per credential (`gss_acquire_cred_from`'s credential store, MIT 1.11+),
//! not through the process-wide `KRB5_KTNAME`: two rules may name two keytabs.

mod context;
mod ffi;

use std::ffi::CString;
use std::sync::OnceLock;

use crate::load::LoadError;
pub use context::{flags, Context, Step};
use ffi::{Gss, GSS_C_ACCEPT, GSS_C_INDEFINITE, GSS_C_INITIATE};

/// The runtime name of MIT Kerberos' GSS-API library.
pub const LIBRARY: &str = "libgssapi_krb5.so.2";

static GSS: OnceLock<Result<Gss, LoadError>> = OnceLock::new();

/// Loads the library (once, kept for the life of the process); Ok if it and every entry
/// point called here are there.
pub fn library() -> Result<(), LoadError> {
    lib().map(|_| ())
}

fn lib() -> Result<&'static Gss, LoadError> {
    GSS.get_or_init(ffi::load).as_ref().map_err(Clone::clone)
}

/// How a GSS-API call failed, as far as a caller branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A token seen before (a replayed context token or message).
    Replay,
    /// A ticket, credential or context past its lifetime.
    Expired,
    /// A token that is not one (malformed, or for another key).
    Defective,
    /// The library is missing, or a name or keytab cannot be used.
    Setup,
    /// Anything else (wrong key, unknown principal, ...).
    Other,
}

/// A failed GSS-API call, with the library's own words for the major and minor status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call}: {message}")]
pub struct GssError {
    /// The call (`gss_accept_sec_context`, ...).
    pub call: &'static str,
    /// The GSS major status.
    pub major: u32,
    /// The mechanism's minor status (a Kerberos error code).
    pub minor: u32,
    /// `gss_display_status`'s text for both.
    pub message: String,
    /// What kind of failure it is.
    pub kind: ErrorKind,
}

impl GssError {
    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn setup(call: &'static str, message: String) -> Self {
        GssError {
            call,
            major: ffi::GSS_S_FAILURE,
            minor: 0,
            message,
            kind: ErrorKind::Setup,
        }
    }
}

impl From<LoadError> for GssError {
    fn from(e: LoadError) -> Self {
        GssError::setup("dlopen", e.to_string())
    }
}

/// A credential: the server's key from a keytab (acceptor), or a client's ticket (initiator).
/// Released when dropped.
pub struct Credential {
    handle: ffi::Cred,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential")
    }
}

/// A name as GSS-API imports it: `service/host@REALM` or `user@REALM` (a Kerberos principal,
/// when it has a `/` or names a realm), else a host-based service (`rcmd`, `rcmd@host`;
/// without a host, an acceptor takes tickets for that service on any host name).
fn import(gss: &Gss, name: &str, hostbased: bool) -> Result<ffi::Name, GssError> {
    let text =
        CString::new(name).map_err(|_| GssError::setup("gss_import_name", "NUL in name".into()))?;
    gss.import_name(&text, hostbased)
}

impl Credential {
    /// The acceptor credential of `service` (Dante's `gssapi.servicename`: `rcmd`, or a whole
    /// principal `rcmd/proxy.example.com@EXAMPLE.COM`) from `keytab` (Dante's
    /// `gssapi.keytab`, `FILE:/etc/danted.keytab`); no keytab: the library's default.
    pub fn acceptor(service: &str, keytab: Option<&str>) -> Result<Self, GssError> {
        let gss = lib()?;
        let hostbased = !service.contains('/');
        let name = import(gss, service, hostbased)?;
        let mut store = Vec::new();
        if let Some(k) = keytab {
            store.push(("keytab", k));
        }
        let handle = gss.acquire(&name, GSS_C_ACCEPT, &store)?;
        Ok(Credential { handle })
    }

    /// An initiator credential for `principal`: its tickets from `client_keytab` (fetched from
    /// the KDC when needed) kept in `ccache` (`MEMORY:name` keeps them in the process), or,
    /// with neither, from the default ticket cache (`KRB5CCNAME`, after `kinit`).
    pub fn initiator(
        principal: Option<&str>,
        client_keytab: Option<&str>,
        ccache: Option<&str>,
    ) -> Result<Self, GssError> {
        let gss = lib()?;
        let name = principal.map(|p| import(gss, p, false)).transpose()?;
        let mut store = Vec::new();
        if let Some(k) = client_keytab {
            store.push(("client_keytab", k));
        }
        if let Some(c) = ccache {
            store.push(("ccache", c));
        }
        let handle = gss.acquire_opt(name.as_ref(), GSS_C_INITIATE, &store)?;
        Ok(Credential { handle })
    }
}

/// A target name for [`Context::initiate`]: `service@host` or a principal.
pub(crate) fn target_name(name: &str) -> Result<ffi::Name, GssError> {
    let gss = lib()?;
    import(gss, name, !name.contains('/'))
}

/// Lifetime asked for (the ticket's decides).
pub(crate) const LIFETIME: u32 = GSS_C_INDEFINITE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_libgssapi_krb5_and_its_symbols() {
        // Debian's libgssapi-krb5-2 comes with curl and the Kerberos packages CI installs.
        library().expect("libgssapi_krb5.so.2 loads");
    }

    #[test]
    fn a_missing_keytab_is_an_error_naming_the_call_not_a_crash() {
        let e = Credential::acceptor("rcmd", Some("FILE:/nonexistent/hasocks-test.keytab"))
            .expect_err("no keytab, no credential");
        assert_eq!(e.call, "gss_acquire_cred_from");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn a_nul_in_a_name_is_refused_before_the_library() {
        let e = Credential::acceptor("rc\0md", None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup);
    }

    #[test]
    fn garbage_is_an_error_for_an_acceptor_not_a_crash() {
        for token in [&b""[..], b"garbage", b"\x60\x03\x06\x01\x00", &[0x60; 3000]] {
            let mut ctx = Context::accept();
            let e = ctx.accept_step(None, token).unwrap_err();
            assert_eq!(e.call, "gss_accept_sec_context");
            assert!(ctx.peer().is_none());
        }
    }
}
