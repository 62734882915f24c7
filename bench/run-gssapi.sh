#!/usr/bin/env bash
# bench/run-gssapi.sh - what GSSAPI (RFC 1961) costs, on loopback, in one run of one build:
# sessions/s and throughput of `socksmethod: gssapi` at each protection level (clear,
# integrity, confidentiality) against a plain session (`socksmethod: none`) of the same
# server binary and the same client. The realm is a throw-away KDC on 127.0.0.1
# (tests/interop/krb5-realm.sh); the client is tests/interop/gssapi_client.py (python3-gssapi,
# which wraps and unwraps its side too) with its own echo target.
#
# sessions/s: PROCS client processes at once, each SESSIONS sessions in a row (connect,
#   greeting, the GSS-API context with a cached service ticket, protection level, CONNECT,
#   a 1000-byte echo, close).
# throughput: one session echoing BYTES (each byte crosses the proxy twice: up and back);
#   MB/s counts both directions. Server CPU: utime+stime of the server process over the
#   phase, per GB moved (the figure that does not depend on the Python client's speed).
# Writes bench/results/gssapi.md and merges it into bench/RESULTS.md (bench/merge.sh).
#
# Usage: bench/run-gssapi.sh   (first builds hasocks: cargo build --release -p hasocks)
# Env:   HASOCKS_BIN=path  PROCS=4 SESSIONS=100 BYTES=200000000
#        RESULTS=bench/results/gssapi.md
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
PROCS=${PROCS:-4}
SESSIONS=${SESSIONS:-100}
BYTES=${BYTES:-200000000}
RESULTS=${RESULTS:-$REPO/bench/results/gssapi.md}
PY=/usr/bin/python3
if [ -z "${HASOCKS_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release -q -p hasocks) || exit 1
  HASOCKS_BIN=$REPO/target/release/hasocks
fi
WORK=$(mktemp -d /tmp/hasocks-bench-gss.XXXXXX)
PIDS=()
source "$REPO/tests/interop/krb5-realm.sh"
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  realm_down
  rm -rf "$WORK"
}
trap stop EXIT
realm_up "$WORK/realm" 2>/dev/null

port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GP=$(port)
NP=$(port)
for which in gss none; do
  p=$GP; m="gssapi"
  [ $which = none ] && { p=$NP; m="none"; }
  cat >"$WORK/$which.conf" <<CONF
hasocks.socket: $WORK/$which.sock
internal: 127.0.0.1 port = $p
external: 127.0.0.1
socksmethod: $m
gssapi.keytab: FILE:$WORK/realm/server.keytab
gssapi.enctype: clear integrity confidentiality
client pass { from: 127.0.0.0/8 to: 0/0 }
socks pass { from: 127.0.0.0/8 to: 0/0 }
CONF
  "$HASOCKS_BIN" server -f "$WORK/$which.conf" 2>"$WORK/$which.log" &
  PIDS+=($!)
  eval "PID_$which=$!"
done
for p in $GP $NP; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done

CLIENT="$PY $REPO/tests/interop/gssapi_client.py"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { $PY -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], "?"))' "$1" "$2"; }

# sessions LABEL PORT ARGS...: total sessions/s of PROCS processes.
sessions() {
  local label=$1 port=$2; shift 2
  local start end
  start=$(date +%s.%N)
  for _ in $(seq 1 "$PROCS"); do
    $CLIENT --proxy "127.0.0.1:$port" --sessions "$SESSIONS" --bytes 1000 "$@" >"$WORK/s.$label.$_" &
  done
  wait $(jobs -p | grep -v -e "$PID_gss" -e "$PID_none") 2>/dev/null
  end=$(date +%s.%N)
  if grep -q '"ok": false' "$WORK"/s."$label".*; then echo "?"; return; fi
  $PY -c "print(round($PROCS * $SESSIONS / ($end - $start), 1))"
}

# throughput LABEL PORT PID ARGS...: "MB/s cpu-s/GB".
throughput() {
  local label=$1 port=$2 pid=$3; shift 3
  local c0 c1 out
  c0=$(cpu "$pid")
  out=$($CLIENT --proxy "127.0.0.1:$port" --bytes "$BYTES" "$@")
  c1=$(cpu "$pid")
  [ "$(field "$out" ok)" = True ] || { echo "? ?"; return; }
  local hz
  hz=$(getconf CLK_TCK)
  echo "$(field "$out" mb_per_s) $($PY -c "print(round(($c1 - $c0) / $hz / (2 * $BYTES / 1e9), 2))")"
}

declare -A SPS MBS CPU
SPS[plain]=$(sessions plain "$NP" --plain)
read -r MBS[plain] CPU[plain] <<<"$(throughput plain "$NP" "$PID_none" --plain)"
for level in clear integrity confidentiality; do
  SPS[$level]=$(sessions "$level" "$GP" --level "$level")
  read -r MBS[$level] CPU[$level] <<<"$(throughput "$level" "$GP" "$PID_gss" --level "$level")"
done

ratio() { $PY -c "import sys; a,b=sys.argv[1:]; print(round(float(a)/float(b), 2) if a not in '?' and b not in '?' and float(b) else '?')" "$1" "$2"; }
{
  echo "## GSSAPI (RFC 1961): sessions and throughput per protection level vs a plain session"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, $(uname -sr); client, KDC, target and server share these CPUs"
  echo "- command: \`bench/run-gssapi.sh\` (PROCS=$PROCS SESSIONS=$SESSIONS BYTES=$BYTES)"
  echo "- server: \`hasocks server\` ($("$HASOCKS_BIN" --version | head -1)); plain = \`socksmethod: none\`, gssapi = \`socksmethod: gssapi\` with \`gssapi.enctype: clear integrity confidentiality\`, same binary, same run"
  echo "- client: tests/interop/gssapi_client.py (python3-gssapi, MIT Kerberos $(klist -V | awk '{print $4}')); service ticket cached after the first session, AES256-CTS keys"
  echo "- sessions/s: $PROCS processes x $SESSIONS sessions (connect, greeting, GSS-API context, protection level, CONNECT, 1000-byte echo, close)"
  echo "- throughput: one session echoing $BYTES bytes through the server (MB/s counts both directions); server CPU = utime+stime of the server over the phase per GB moved"
  echo
  echo "| metric | plain | clear | integrity | confidentiality | ratios to plain (clear / integrity / confidentiality) |"
  echo "|---|---|---|---|---|---|"
  echo "| sessions/s | ${SPS[plain]} | ${SPS[clear]} | ${SPS[integrity]} | ${SPS[confidentiality]} | $(ratio "${SPS[clear]}" "${SPS[plain]}") / $(ratio "${SPS[integrity]}" "${SPS[plain]}") / $(ratio "${SPS[confidentiality]}" "${SPS[plain]}") (higher is better) |"
  echo "| throughput, MB/s | ${MBS[plain]} | ${MBS[clear]} | ${MBS[integrity]} | ${MBS[confidentiality]} | $(ratio "${MBS[clear]}" "${MBS[plain]}") / $(ratio "${MBS[integrity]}" "${MBS[plain]}") / $(ratio "${MBS[confidentiality]}" "${MBS[plain]}") (higher is better) |"
  echo "| server CPU-seconds per GB | ${CPU[plain]} | ${CPU[clear]} | ${CPU[integrity]} | ${CPU[confidentiality]} | $(ratio "${CPU[clear]}" "${CPU[plain]}") / $(ratio "${CPU[integrity]}" "${CPU[plain]}") / $(ratio "${CPU[confidentiality]}" "${CPU[plain]}") (lower is better) |"
} >"$RESULTS"
cat "$RESULTS"
sh "$REPO/bench/merge.sh"
