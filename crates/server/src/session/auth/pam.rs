//! `pam.username`, `pam.any`, `pam.address`: the PAM calls Dante makes (`sockd/auth_pam.c`):
//! `pam_start(service, user)`, `PAM_RHOST` = the client's IP, `PAM_RUSER` = "rhostusr",
//! `pam_authenticate(0)`, `pam_acct_mgmt(PAM_SILENT)`, `pam_end`. The conversation answers
//! every prompt with the name or the password. Blocking: run it on a blocking thread.

use std::net::IpAddr;

use super::{shown, Outcome};

/// Dante's `PAM_RUSER` value and the user name of an address-only check.
pub(crate) const RHOSTUSR: &str = "rhostusr";

/// Runs the PAM transaction for `user` (None: an address-only check as "rhostusr" with an
/// empty password) from `rhost` with `service`.
pub(crate) fn check(service: &str, user: &[u8], password: &[u8], rhost: IpAddr) -> Outcome {
    use hasocks_syslib::pam::{authenticate, PamError, Request};
    let name = shown(user);
    let host = rhost.to_string();
    let req = Request {
        service,
        user,
        password,
        rhost: &host,
        ruser: RHOSTUSR,
    };
    match authenticate(&req) {
        Ok(()) => Outcome::Pass,
        Err(PamError::Nul) => Outcome::Fail(format!(
            "pam_authenticate() for user \"{name}\" failed: NUL byte in the name or password"
        )),
        Err(PamError::Call {
            call: "pam_authenticate",
            message,
            ..
        }) => Outcome::Fail(format!(
            "pam_authenticate() for user \"{name}\" failed: {message}"
        )),
        Err(PamError::Call {
            call: "pam_acct_mgmt",
            message,
            ..
        }) => Outcome::Fail(format!("pam_acct_mgmt(): {message}")),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}
