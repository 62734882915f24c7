# Shared helpers for the interop scripts: ports, waiting, process cleanup, counting.
# Sourced, not run. Everything listens on 127.0.0.0/8 only.

PASS=0
FAIL=0
PIDS=()
WORK=$(mktemp -d /tmp/hasocks-interop.XXXXXX)
PY=/usr/bin/python3 # Debian's python: it has python3-socks

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# free_port: a TCP port nothing listens on right now, on 127.0.0.1.
free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port HOST PORT: until something accepts there (10 s at most).
wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2 after 10 s" >&2
  return 1
}

# bg CMD...: start in the background, remember the PID for cleanup.
bg() {
  "$@" &
  PIDS+=($!)
}

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }

# check NAME EXPECTED ACTUAL
check() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (expected '$2', got '$3')"; fi
}

summary() {
  echo "interop: $PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}

# hasocks binary: HASOCKS_BIN or the release build.
HASOCKS=${HASOCKS_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/hasocks}

# free_port_retry: free_port, tried again for a few seconds when the loopback's ephemeral
# ports are exhausted for a moment (TIME_WAIT from a benchmark running at the same time).
free_port_retry() {
  local p
  for _ in $(seq 1 50); do
    p=$(free_port 2>/dev/null) && [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  echo "no free port on 127.0.0.1 after 5 s" >&2
  return 1
}

# The seed's sockd.conf on loopback (Dante and hasocks read it alike): PORT, NAME (its log is
# $WORK/NAME.log) and the socks rule's verdict (pass, the default, or block).
seed_sockd_conf() { # PORT NAME [RULE]
  cat <<CONF
errorlog: stderr
logoutput: $WORK/$2.log
internal: 127.0.0.1 port = $1
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
        from: 0/0 to: 0/0
        log: error connect disconnect
}
socks ${3:-pass} {
        from: 0/0 to: 0/0
        log: error connect disconnect
}
CONF
}
