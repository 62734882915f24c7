//! System libraries that hasocks loads at run time, by their runtime names (`libpam.so.0`,
//! `libgssapi_krb5.so.2`),
//! never at link time: building needs only Rust and a C linker (no `-dev` package), and a
//! machine without one of them still runs every feature that does not need it.
//!
//! Data flow: a config that names a method needing a library asks [`pam::library`] once at
//! build time (a missing library is then a config error naming the method), and the
//! authentication code calls the safe wrappers here. `hasocks --version` lists what
//! [`optional`] finds.
//!
//! This is the one crate with `unsafe` (calls into C): each block says why it holds.

pub mod gssapi;
pub mod pam;
pub mod sockopt;

mod load;

pub use load::LoadError;

/// One optional library and whether this machine has it.
#[derive(Debug)]
pub struct Optional {
    /// What it is for, as `--version` shows it (`PAM`).
    pub feature: &'static str,
    /// The runtime name it is loaded by (`libpam.so.0`).
    pub library: &'static str,
    /// Loaded, or why not.
    pub found: Result<(), LoadError>,
}

/// Every optional library, each tried (and then kept loaded) once.
pub fn optional() -> Vec<Optional> {
    vec![
        Optional {
            feature: "PAM",
            library: pam::LIBRARY,
            found: pam::library().map(|_| ()),
        },
        Optional {
            feature: "GSSAPI",
            library: gssapi::LIBRARY,
            found: gssapi::library(),
        },
    ]
}

/// One line per optional library: `PAM: libpam.so.0 found` or why it is not available.
pub fn describe() -> String {
    optional()
        .iter()
        .map(|lib| match &lib.found {
            Ok(()) => format!("{}: {} found", lib.feature, lib.library),
            Err(e) => format!("{}: not available ({e})", lib.feature),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
