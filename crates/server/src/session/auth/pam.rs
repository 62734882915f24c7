//! `pam.username`, `pam.any`, `pam.address`: the PAM calls Dante makes (`sockd/auth_pam.c`):
//! `pam_start(service, user)`, `PAM_RHOST` = the client's IP, `PAM_RUSER` = "rhostusr",
//! `pam_authenticate(0)`, `pam_acct_mgmt(PAM_SILENT)`, `pam_end`. The conversation answers
//! every prompt with the name or the password. Blocking: run it on a blocking thread.

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;

use nonstick::items::ItemsMut;
use nonstick::{AuthnFlags, ConversationAdapter, PamShared, Transaction, TransactionBuilder};

use super::{shown, Outcome};

/// Dante's `PAM_RUSER` value and the user name of an address-only check.
pub(crate) const RHOSTUSR: &str = "rhostusr";

/// Answers PAM's prompts: the name for echoed ones, the password for hidden ones.
struct Answers {
    user: OsString,
    password: OsString,
}

impl ConversationAdapter for Answers {
    fn prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(self.user.clone())
    }

    fn masked_prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(self.password.clone())
    }

    // The verdict is what counts; modules' messages are for an interactive user.
    fn error_msg(&self, _message: impl AsRef<OsStr>) {}

    fn info_msg(&self, _message: impl AsRef<OsStr>) {}
}

/// Runs the PAM transaction for `user` (None: an address-only check as "rhostusr" with an
/// empty password) from `rhost` with `service`.
pub(crate) fn check(service: &str, user: &[u8], password: &[u8], rhost: IpAddr) -> Outcome {
    let name = shown(user);
    // nonstick panics on a NUL inside a string it hands to C: refuse them first.
    if [service.as_bytes(), user, password]
        .iter()
        .any(|f| f.contains(&0))
    {
        return Outcome::Fail(format!(
            "pam_authenticate() for user \"{name}\" failed: NUL byte in the name or password"
        ));
    }
    let answers = Answers {
        user: OsStr::from_bytes(user).to_owned(),
        password: OsStr::from_bytes(password).to_owned(),
    };
    let conv = answers.into_conversation();
    let mut txn = match TransactionBuilder::new_with_service(service)
        .username(OsStr::from_bytes(user))
        .build(conv)
    {
        Ok(t) => t,
        Err(e) => return Outcome::Fail(format!("pam_start() failed: {e}")),
    };
    let host = rhost.to_string();
    let set = {
        let mut items = txn.items_mut();
        items
            .set_remote_host(Some(OsStr::new(&host)))
            .and_then(|_| items.set_remote_user(Some(OsStr::new(RHOSTUSR))))
    };
    if let Err(e) = set {
        return Outcome::Fail(format!("pam_set_item() failed: {e}"));
    }
    if let Err(e) = txn.authenticate(AuthnFlags::empty()) {
        return Outcome::Fail(format!(
            "pam_authenticate() for user \"{name}\" failed: {e}"
        ));
    }
    if let Err(e) = txn.account_management(AuthnFlags::SILENT) {
        return Outcome::Fail(format!("pam_acct_mgmt(): {e}"));
    }
    Outcome::Pass
}
