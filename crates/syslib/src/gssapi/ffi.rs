//! The C side: MIT's GSS-API prototypes (gssapi/gssapi.h, gssapi_ext.h; RFC 2744's C
//! bindings, stable ABI), the entry points loaded by name, and owned handles that release
//! themselves.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::null_mut;

use super::{ErrorKind, GssError, LIBRARY};
use crate::load::{open, LoadError};

pub(crate) type OmUint32 = u32;

/// `gss_buffer_desc`.
#[repr(C)]
pub(crate) struct Buffer {
    pub length: usize,
    pub value: *mut c_void,
}

impl Buffer {
    pub fn empty() -> Self {
        Buffer {
            length: 0,
            value: null_mut(),
        }
    }

    /// A buffer the library reads from and may rewrite in place (MIT's unwrap of a CFX
    /// token rotates and decrypts the input), hence `&mut`.
    pub fn input(data: &mut [u8]) -> Self {
        Buffer {
            length: data.len(),
            value: data.as_mut_ptr().cast(),
        }
    }
}

/// `gss_OID_desc`.
#[repr(C)]
pub(crate) struct Oid {
    length: OmUint32,
    elements: *mut c_void,
}

/// `gss_key_value_element_desc` and `gss_key_value_set_desc` (the credential store).
#[repr(C)]
struct KeyValue {
    key: *const c_char,
    value: *const c_char,
}
#[repr(C)]
struct KeyValueSet {
    count: OmUint32,
    elements: *mut KeyValue,
}

// OIDs by value (the library compares them by content).
const NT_HOSTBASED_SERVICE: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"; // 1.2.840.113554.1.2.1.4
const KRB5_NT_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01"; // 1.2.840.113554.1.2.2.1
const KRB5_MECH: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"; // 1.2.840.113554.1.2.2

fn oid(bytes: &'static [u8]) -> Oid {
    Oid {
        length: bytes.len() as OmUint32,
        elements: bytes.as_ptr().cast_mut().cast(),
    }
}

/// The Kerberos mechanism's OID, for `gss_init_sec_context`.
pub(crate) fn krb5_mech() -> Oid {
    oid(KRB5_MECH)
}

pub(crate) const GSS_C_INITIATE: c_int = 1;
pub(crate) const GSS_C_ACCEPT: c_int = 2;
pub(crate) const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;
pub(crate) const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
pub(crate) const GSS_S_FAILURE: OmUint32 = 13 << 16;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
// Routine errors (bits 16..23) and supplementary bits (0..15), RFC 2744 section 3.9.1.
const ROUTINE_MASK: OmUint32 = 0xff << 16;
const CALLING_MASK: OmUint32 = 0xff << 24;
const GSS_S_DEFECTIVE_TOKEN: OmUint32 = 9 << 16;
const GSS_S_CREDENTIALS_EXPIRED: OmUint32 = 11 << 16;
const GSS_S_CONTEXT_EXPIRED: OmUint32 = 12 << 16;
const GSS_S_BAD_NAME: OmUint32 = 2 << 16;
const GSS_S_NO_CRED: OmUint32 = 7 << 16;
const GSS_S_DUPLICATE_TOKEN: OmUint32 = 1 << 1;
const GSS_S_OLD_TOKEN: OmUint32 = 1 << 2;
const GSS_S_UNSEQ_TOKEN: OmUint32 = 1 << 3;
const GSS_S_GAP_TOKEN: OmUint32 = 1 << 4;

/// Whether a major status is an error (a routine or calling error).
pub(crate) fn is_error(major: OmUint32) -> bool {
    major & (ROUTINE_MASK | CALLING_MASK) != 0
}

/// Whether an unwrapped message was replayed, old or out of order (supplementary bits).
pub(crate) fn out_of_order(major: OmUint32) -> bool {
    major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN) != 0
}

/// Whether an unwrapped message was seen before or is older than the replay window.
pub(crate) fn replayed(major: OmUint32) -> bool {
    major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN) != 0
}

pub(crate) fn classify(major: OmUint32, message: &str) -> ErrorKind {
    // MIT reports a replayed AP-REQ as GSS_S_FAILURE with the Kerberos text "Request is a
    // replay", and an expired ticket as GSS_S_FAILURE "Ticket expired": the text decides.
    if major & GSS_S_DUPLICATE_TOKEN != 0 || message.contains("replay") {
        return ErrorKind::Replay;
    }
    match major & ROUTINE_MASK {
        GSS_S_CREDENTIALS_EXPIRED | GSS_S_CONTEXT_EXPIRED => ErrorKind::Expired,
        _ if message.contains("expired") => ErrorKind::Expired,
        GSS_S_DEFECTIVE_TOKEN => ErrorKind::Defective,
        GSS_S_BAD_NAME | GSS_S_NO_CRED => ErrorKind::Setup,
        0 if major & CALLING_MASK != 0 => ErrorKind::Setup,
        _ => ErrorKind::Other,
    }
}

type ImportNameFn =
    unsafe extern "C" fn(*mut OmUint32, *const Buffer, *const Oid, *mut *mut c_void) -> OmUint32;
type AcquireCredFromFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    OmUint32,
    *mut c_void,
    c_int,
    *const KeyValueSet,
    *mut *mut c_void,
    *mut *mut c_void,
    *mut OmUint32,
) -> OmUint32;
pub(crate) type AcceptFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut *mut c_void,
    *mut c_void,
    *const Buffer,
    *mut c_void,
    *mut *mut c_void,
    *mut *mut Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
    *mut *mut c_void,
) -> OmUint32;
pub(crate) type InitFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *mut *mut c_void,
    *mut c_void,
    *const Oid,
    OmUint32,
    OmUint32,
    *mut c_void,
    *const Buffer,
    *mut *mut Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
pub(crate) type WrapFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    c_int,
    OmUint32,
    *const Buffer,
    *mut c_int,
    *mut Buffer,
) -> OmUint32;
pub(crate) type UnwrapFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *const Buffer,
    *mut Buffer,
    *mut c_int,
    *mut OmUint32,
) -> OmUint32;
pub(crate) type WrapSizeLimitFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    c_int,
    OmUint32,
    OmUint32,
    *mut OmUint32,
) -> OmUint32;
pub(crate) type DisplayNameFn =
    unsafe extern "C" fn(*mut OmUint32, *mut c_void, *mut Buffer, *mut *mut Oid) -> OmUint32;
type ReleaseFn = unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void) -> OmUint32;
type ReleaseBufferFn = unsafe extern "C" fn(*mut OmUint32, *mut Buffer) -> OmUint32;
pub(crate) type DeleteContextFn =
    unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void, *mut Buffer) -> OmUint32;
type DisplayStatusFn = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *const Oid,
    *mut OmUint32,
    *mut Buffer,
) -> OmUint32;

/// libgssapi_krb5, opened, with the entry points hasocks calls.
pub(crate) struct Gss {
    // Keeps the code the pointers below point into mapped for the life of the process.
    _lib: libloading::Library,
    import_name: ImportNameFn,
    acquire_cred_from: AcquireCredFromFn,
    pub accept: AcceptFn,
    pub init: InitFn,
    pub wrap: WrapFn,
    pub unwrap: UnwrapFn,
    pub wrap_size_limit: WrapSizeLimitFn,
    pub display_name: DisplayNameFn,
    release_name: ReleaseFn,
    release_cred: ReleaseFn,
    release_buffer: ReleaseBufferFn,
    pub delete_context: DeleteContextFn,
    display_status: DisplayStatusFn,
}

pub(crate) fn load() -> Result<Gss, LoadError> {
    let lib = open(LIBRARY)?;
    macro_rules! sym {
        ($name:literal, $ty:ty) => {{
            // SAFETY: the type is the function's prototype in MIT's gssapi.h / gssapi_ext.h
            // (RFC 2744's C bindings; gss_acquire_cred_from since MIT 1.11), a stable ABI.
            #[allow(unsafe_code)]
            let s = unsafe { lib.get::<$ty>($name) };
            *s.map_err(|e| LoadError::new(LIBRARY, &e))?
        }};
    }
    Ok(Gss {
        import_name: sym!(b"gss_import_name\0", ImportNameFn),
        acquire_cred_from: sym!(b"gss_acquire_cred_from\0", AcquireCredFromFn),
        accept: sym!(b"gss_accept_sec_context\0", AcceptFn),
        init: sym!(b"gss_init_sec_context\0", InitFn),
        wrap: sym!(b"gss_wrap\0", WrapFn),
        unwrap: sym!(b"gss_unwrap\0", UnwrapFn),
        wrap_size_limit: sym!(b"gss_wrap_size_limit\0", WrapSizeLimitFn),
        display_name: sym!(b"gss_display_name\0", DisplayNameFn),
        release_name: sym!(b"gss_release_name\0", ReleaseFn),
        release_cred: sym!(b"gss_release_cred\0", ReleaseFn),
        release_buffer: sym!(b"gss_release_buffer\0", ReleaseBufferFn),
        delete_context: sym!(b"gss_delete_sec_context\0", DeleteContextFn),
        display_status: sym!(b"gss_display_status\0", DisplayStatusFn),
        _lib: lib,
    })
}

/// An imported name (`gss_name_t`), released when dropped.
pub(crate) struct Name(pub *mut c_void);

impl Drop for Name {
    fn drop(&mut self) {
        if let Ok(gss) = super::lib() {
            gss.release(gss.release_name, &mut self.0);
        }
    }
}

/// A credential handle (`gss_cred_id_t`), released when dropped.
pub(crate) struct Cred(pub *mut c_void);

// SAFETY: MIT's credential records carry their own mutex (k5_mutex in krb5_gss_cred_id_rec);
// the handle is only read after acquisition, so sharing it between threads is sound.
#[allow(unsafe_code)]
unsafe impl Send for Cred {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Cred {}

impl Drop for Cred {
    fn drop(&mut self) {
        if let Ok(gss) = super::lib() {
            gss.release(gss.release_cred, &mut self.0);
        }
    }
}

impl Gss {
    fn release(&self, f: ReleaseFn, handle: &mut *mut c_void) {
        if handle.is_null() {
            return;
        }
        let mut minor = 0;
        // SAFETY: `handle` came from the library and is released once (set to NULL by it).
        #[allow(unsafe_code)]
        unsafe {
            f(&mut minor, handle)
        };
    }

    /// Copies a buffer the library allocated and releases it.
    pub(crate) fn take(&self, buf: &mut Buffer) -> Vec<u8> {
        let v = if buf.value.is_null() || buf.length == 0 {
            Vec::new()
        } else {
            // SAFETY: the library filled `buf` with `length` readable bytes at `value`.
            #[allow(unsafe_code)]
            let s = unsafe { std::slice::from_raw_parts(buf.value.cast::<u8>(), buf.length) };
            s.to_vec()
        };
        self.release_buf(buf);
        v
    }

    /// Appends a buffer the library allocated to `out` and releases it.
    pub(crate) fn take_into(&self, buf: &mut Buffer, out: &mut Vec<u8>) {
        if !buf.value.is_null() && buf.length > 0 {
            // SAFETY: as in `take`.
            #[allow(unsafe_code)]
            let s = unsafe { std::slice::from_raw_parts(buf.value.cast::<u8>(), buf.length) };
            out.extend_from_slice(s);
        }
        self.release_buf(buf);
    }

    fn release_buf(&self, buf: &mut Buffer) {
        if !buf.value.is_null() {
            let mut minor = 0;
            // SAFETY: a buffer the library allocated, released once.
            #[allow(unsafe_code)]
            unsafe {
                (self.release_buffer)(&mut minor, buf)
            };
            buf.value = null_mut();
            buf.length = 0;
        }
    }

    pub(crate) fn import_name(&self, text: &CStr, hostbased: bool) -> Result<Name, GssError> {
        let mut bytes = text.to_bytes().to_vec();
        let input = Buffer::input(&mut bytes);
        let kind = oid(if hostbased {
            NT_HOSTBASED_SERVICE
        } else {
            KRB5_NT_PRINCIPAL_NAME
        });
        let mut name = Name(null_mut());
        let mut minor = 0;
        // SAFETY: `input` and `kind` point to live memory for the call; `name.0` receives a
        // handle owned by `name`.
        #[allow(unsafe_code)]
        let major = unsafe { (self.import_name)(&mut minor, &input, &kind, &mut name.0) };
        self.check("gss_import_name", major, minor)?;
        Ok(name)
    }

    pub(crate) fn acquire(
        &self,
        name: &Name,
        usage: c_int,
        store: &[(&str, &str)],
    ) -> Result<Cred, GssError> {
        self.acquire_opt(Some(name), usage, store)
    }

    pub(crate) fn acquire_opt(
        &self,
        name: Option<&Name>,
        usage: c_int,
        store: &[(&str, &str)],
    ) -> Result<Cred, GssError> {
        let owned: Vec<(CString, CString)> = store
            .iter()
            .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
            .collect::<Result<_, std::ffi::NulError>>()
            .map_err(|_| GssError::setup("gss_acquire_cred_from", "NUL in a path".into()))?;
        let mut elements: Vec<KeyValue> = owned
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        let set = KeyValueSet {
            count: elements.len() as OmUint32,
            elements: elements.as_mut_ptr(),
        };
        let mut cred = Cred(null_mut());
        let mut minor = 0;
        // SAFETY: every pointer (name, store strings, the set) lives until the call returns;
        // `cred.0` receives a handle owned by `cred`. NULL mechs/actual/time are allowed.
        #[allow(unsafe_code)]
        let major = unsafe {
            (self.acquire_cred_from)(
                &mut minor,
                name.map_or(null_mut(), |n| n.0),
                GSS_C_INDEFINITE,
                null_mut(),
                usage,
                &set,
                &mut cred.0,
                null_mut(),
                null_mut(),
            )
        };
        self.check("gss_acquire_cred_from", major, minor)?;
        Ok(cred)
    }

    /// `Err` with the library's text when `major` is an error.
    pub(crate) fn check(
        &self,
        call: &'static str,
        major: OmUint32,
        minor: OmUint32,
    ) -> Result<(), GssError> {
        if !is_error(major) {
            return Ok(());
        }
        let mut message = self.status_text(major, GSS_C_GSS_CODE);
        let mech = self.status_text(minor, GSS_C_MECH_CODE);
        if minor != 0 && !mech.is_empty() {
            message.push_str(": ");
            message.push_str(&mech);
        }
        Err(GssError {
            call,
            major,
            minor,
            kind: classify(major, &message),
            message,
        })
    }

    fn status_text(&self, code: OmUint32, kind: c_int) -> String {
        let mut parts = Vec::new();
        let mut more: OmUint32 = 0;
        // At most a few messages per status; the bound guards against a library that loops.
        for _ in 0..8 {
            let mut minor = 0;
            let mut buf = Buffer::empty();
            // SAFETY: `buf` receives a library buffer, released by `take`; NULL mech is the
            // default mechanism.
            #[allow(unsafe_code)]
            let major = unsafe {
                (self.display_status)(
                    &mut minor,
                    code,
                    kind,
                    std::ptr::null(),
                    &mut more,
                    &mut buf,
                )
            };
            if is_error(major) {
                break;
            }
            parts.push(String::from_utf8_lossy(&self.take(&mut buf)).into_owned());
            if more == 0 {
                break;
            }
        }
        parts.join("; ")
    }
}
