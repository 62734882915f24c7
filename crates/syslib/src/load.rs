//! Opening a shared library by its runtime name, once per process.

use std::sync::Arc;

/// A library that could not be loaded (absent, unreadable, or missing a symbol we call).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{library} cannot be loaded: {reason}")]
pub struct LoadError {
    /// The runtime name asked for.
    pub library: &'static str,
    /// What the dynamic loader said.
    pub reason: Arc<str>,
}

impl LoadError {
    /// The loader's error with its causes (libloading puts dlerror()'s text in the source).
    pub(crate) fn new(library: &'static str, e: &dyn std::error::Error) -> Self {
        let mut reason = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            reason.push_str(": ");
            reason.push_str(&c.to_string());
            cause = c.source();
        }
        Self {
            library,
            reason: reason.into(),
        }
    }
}

/// Opens `name` with the dynamic loader's search rules (ld.so.cache, LD_LIBRARY_PATH).
pub(crate) fn open(name: &'static str) -> Result<libloading::Library, LoadError> {
    // SAFETY: loading runs the library's initialisers. The libraries opened here (libpam,
    // and later libgssapi_krb5) are system libraries whose initialisers only set up their own
    // state; they are what sockd itself links.
    #[allow(unsafe_code)]
    unsafe { libloading::Library::new(name) }.map_err(|e| LoadError::new(name, &e))
}
