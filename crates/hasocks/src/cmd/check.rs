//! `hasocks check`: the options of [`hasocks_probe::check`], which does the work.

/// Options of `hasocks check` (flags as in maxconn.pl).
///
/// Values are taken as text and checked by `run`, so that with `--relayd` a
/// bad value still yields "down" (0) instead of a usage exit that relayd
/// would read as "up".
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// SOCKS server as HOST:PORT (port 1080 if omitted); the port may be a service name of
    /// the fixed table configs use ("socks" = 1080, "http" = 80; /etc/services is not read).
    #[arg(short = 's', value_name = "HOST:PORT")]
    pub server: String,
    /// Listen on BINDADDR (IP or IP:PORT) and have the server connect back to
    /// it (end-to-end mode, data is verified both ways). Default 127.0.0.1
    /// when neither -b nor -I is given.
    #[arg(short = 'b', value_name = "BINDADDR")]
    pub bind: Option<String>,
    /// CONNECT to this remote HOST:PORT instead and require reply 00 (a host
    /// name is sent to the server as a domain).
    #[arg(short = 'I', value_name = "HOST:PORT")]
    pub remote: Option<String>,
    /// Sessions that must succeed (maxconn.pl: 10, and it keeps
    /// them all open; we run them one after another and close each).
    #[arg(short = 'c', value_name = "N", default_value = "1")]
    pub count: String,
    /// Failed attempts tolerated (each retried) before giving up (maxconn.pl:
    /// 5, and it then still exits 0).
    #[arg(short = 'E', value_name = "N", default_value = "0")]
    pub max_errors: String,
    /// RFC 1929 credentials as USER:PASS (offers only method 02, like maxconn.pl).
    #[arg(short = 'U', value_name = "USER:PASS")]
    pub credentials: Option<String>,
    /// Print nothing on success (failures still go to stderr).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Hex dumps of every SOCKS message and probe payload on stderr.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// relayd check-script convention: exit 1 when the server is up, 0 when down.
    #[arg(long)]
    pub relayd: bool,
    /// Per-session timeout in milliseconds (maxconn.pl: 5 s).
    #[arg(short = 't', value_name = "TIMEOUT_MS", default_value = "5000")]
    pub timeout_ms: String,
}

/// Runs the check; returns the exit status (see [`CheckArgs::relayd`]).
pub async fn run(a: CheckArgs) -> anyhow::Result<i32> {
    let req = hasocks_probe::check::Request {
        server: a.server,
        bind: a.bind,
        remote: a.remote,
        count: a.count,
        max_errors: a.max_errors,
        credentials: a.credentials,
        timeout_ms: a.timeout_ms,
        quiet: a.quiet,
        verbose: a.verbose,
        relayd: a.relayd,
    };
    Ok(hasocks_probe::check::run(&req, hasocks_probe::check::Output::stdio()).await)
}
