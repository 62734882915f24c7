//! The thin step that touches the kernel: the `nft` program (Debian's nftables) reads a
//! script on standard input, and `conntrack` (Debian's conntrack) deletes a down host's
//! flows and lists the flows least-states counts. Both need CAP_NET_ADMIN.

use std::io::Write as _;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};

/// Why the kernel's state could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The program is missing or could not run.
    #[error("cannot run {program}: {reason} (install Debian's {package} package)")]
    Spawn {
        /// `nft` or `conntrack`.
        program: &'static str,
        /// The Debian package that has it.
        package: &'static str,
        /// The OS error.
        reason: String,
    },
    /// It ran and refused (no CAP_NET_ADMIN, a kernel without nf_tables...).
    #[error("{program} failed: {stderr}")]
    Failed {
        /// `nft` or `conntrack`.
        program: &'static str,
        /// What it said.
        stderr: String,
    },
}

fn run(
    program: &'static str,
    package: &'static str,
    args: &[&str],
    input: &str,
) -> Result<String, ApplyError> {
    let spawn = |e: std::io::Error| ApplyError::Spawn {
        program,
        package,
        reason: e.to_string(),
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(spawn)?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // nft echoes the whole offending script line; the first lines say why.
    let stderr: Vec<&str> = stderr.lines().take(3).collect();
    Err(ApplyError::Failed {
        program,
        stderr: stderr.join(" / "),
    })
}

/// Puts `script` into effect in one transaction.
pub fn apply(script: &str) -> Result<(), ApplyError> {
    run("nft", "nftables", &["-f", "-"], script).map(drop)
}

/// Asks the kernel whether `script` would be accepted, changing nothing (`nft -c`): fails
/// without CAP_NET_ADMIN.
pub fn check(script: &str) -> Result<(), ApplyError> {
    run("nft", "nftables", &["-c", "-f", "-"], script).map(drop)
}

/// How [`put`] changed the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// There was none: written whole.
    Created,
    /// Rules and maps rewritten; the timeout objects, and the flows' timeouts, kept.
    Updated,
    /// The update was refused (the table was not as we left it): written whole, so tracked
    /// flows went back to conntrack's default timeout. Carries why.
    Replaced(String),
}

/// Puts `table` into effect: updates our table in place if it is there (so tracked flows
/// keep their session timeout), or writes it whole (`whole`: [`crate::plan::Table::script`]).
pub fn put(table: &crate::plan::Table, whole: &str) -> Result<Put, ApplyError> {
    let listing = match run(
        "nft",
        "nftables",
        &["-j", "-t", "list", "table", "inet", "hasocks"],
        "",
    ) {
        Ok(json) => json,
        Err(ApplyError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => {
            return apply(whole).map(|()| Put::Created);
        }
        Err(e) => return Err(e),
    };
    let maps = crate::plan::maps_in(&listing);
    match apply(&table.update_script(&maps)) {
        Ok(()) => Ok(Put::Updated),
        Err(e) => apply(whole).map(|()| Put::Replaced(e.to_string())),
    }
}

/// Removes our table.
pub fn remove() -> Result<(), ApplyError> {
    apply(&crate::plan::remove_script())
}

/// Deletes the tracked TCP flows from clients of `listen` to `host`, so their next packet
/// finds no state and the client gets a reset at once instead of waiting on a dead host.
/// None found is not an error.
pub fn forget(listen: SocketAddrV4, host: SocketAddrV4) -> Result<(), ApplyError> {
    let (vip, vport) = (listen.ip().to_string(), listen.port().to_string());
    let (hip, hport) = (host.ip().to_string(), host.port().to_string());
    let args = [
        "-D",
        "-p",
        "tcp",
        "--orig-dst",
        &vip,
        "--orig-port-dst",
        &vport,
        "--reply-src",
        &hip,
        "--reply-port-src",
        &hport,
    ];
    match run("conntrack", "conntrack", &args, "") {
        Err(ApplyError::Failed { stderr, .. }) if stderr.contains("0 flow entries") => Ok(()),
        other => other.map(drop),
    }
}

/// The tracked TCP flows of clients of `listen`, as `conntrack -L` lists them (one line a
/// flow; [`crate::states::count`] tallies them by host). The program filters by the original
/// destination, so a busy router's other flows are not printed.
pub fn flows(listen: SocketAddrV4) -> Result<String, ApplyError> {
    let (vip, vport) = (listen.ip().to_string(), listen.port().to_string());
    let args = [
        "-L",
        "-p",
        "tcp",
        "--orig-dst",
        &vip,
        "--orig-port-dst",
        &vport,
    ];
    run("conntrack", "conntrack", &args, "")
}
