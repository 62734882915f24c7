//! `hasocks check` as relayd runs it: the exit status is the health verdict.

mod common;

use std::process::Command;

use common::bin;

#[test]
fn usage_error_under_relayd_contract_reads_as_down() {
    let out = Command::new(bin())
        .args(["check", "--relayd", "--no-such-flag", "-s", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "relayd: 0 = down");
    assert!(!out.stderr.is_empty(), "the usage error is still shown");
    let out = Command::new(bin())
        .args(["check", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "without --relayd a usage error is a usage error"
    );
}
