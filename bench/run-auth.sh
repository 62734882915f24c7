#!/usr/bin/env bash
# bench/run-auth.sh - authenticated sessions per second, on loopback, in one run, against
#   (a) Dante (danted, Debian package dante-server) with `socksmethod: username` and a
#       system account,
#   (b) hasocks server with the same config and account (`username`: /etc/shadow through
#       its privileged helper, since it runs as root with user.unprivileged: nobody),
#   (c) hasocks server with `hasocks.passwordfile`: an htpasswd file holding the same hash,
# (b) and (c) once as shipped (successes remembered for 30 s) and once with
# `hasocks.auth.cache: 0` (every session pays the whole hash, as in Dante).
# Writes a markdown table with hasocks/Dante ratios to bench/results/auth.md and merges it
# into bench/RESULTS.md (bench/merge.sh).
#
# Each session: connect + greeting (method 02) + RFC 1929 + CONNECT + 64-byte echo + close,
# by `hasocks bench --mode sessions -U USER:PASS`, 50 concurrent workers, 10 s.
#
# Usage: bench/run-auth.sh   (first builds hasocks: cargo build --release -p hasocks)
# Env:   HASOCKS_BIN=path  use this binary instead of building (see bench/lib.sh)
#        DANTED=path       danted binary (default /usr/sbin/danted)
#        DURATION=10 CONCURRENCY=50 PAYLOAD=64
#        HASH=YESCRYPT     chpasswd -c method of the account (YESCRYPT or SHA512)
#        RESULTS=bench/results/auth.md   where to write the section
# Run as root (useradd/chpasswd; Dante reads /etc/shadow as user.privileged root). The
# account is removed at exit. Runtime about 1-3 minutes.
set -u

. "$(dirname "$0")/lib.sh"
tcp_load_defaults
DANTED=${DANTED:-/usr/sbin/danted}
HASH=${HASH:-YESCRYPT}
RESULTS=${RESULTS:-$REPO/bench/results/auth.md}
record_command bench/run-auth.sh "$@"
[ "$(id -u)" = 0 ] || { log "run as root: the benchmark creates a system account"; exit 1; }
need_hasocks
BIN=$HASOCKS_BIN
bench_tmp hasocks-bench-auth

USER_NAME="hsbench$$"
PASSWORD="bench pw $$"
trap 'userdel "$USER_NAME" 2>/dev/null; cleanup' EXIT
useradd -M -s /usr/sbin/nologin "$USER_NAME" || { log "useradd failed"; exit 1; }
echo "$USER_NAME:$PASSWORD" | chpasswd -c "$HASH" || { log "chpasswd failed"; exit 1; }
SHADOW_HASH=$(getent shadow "$USER_NAME" | cut -d: -f2)
# The password file holds the very hash of /etc/shadow: both methods do the same work.
echo "$USER_NAME:$SHADOW_HASH" >"$TMP/htpasswd"
chmod 600 "$TMP/htpasswd"

# auth_conf PORT LOGFILE METHOD [SETTING...]: the sockd.conf of every server here.
auth_conf() {
    local port=$1 logfile=$2 method=$3
    shift 3
    cat <<CONF
# written by bench/run-auth.sh
logoutput: $logfile
internal: 127.0.0.1 port = $port
external: 127.0.0.1
clientmethod: none
socksmethod: $method
user.privileged: root
user.unprivileged: nobody
$(printf '%s\n' "$@")
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
}
CONF
}

# measure NAME: authenticated sessions through server NAME; sets M_NAME_*.
measure() {
    local name=$1 port pid out
    eval "port=\$P_$name pid=\$PID_$name"
    log "[$name] authenticated sessions ($CONCURRENCY workers, ${DURATION}s)"
    out=$(run_cpu "$TMP/$name.cpu" "$pid" -- "$BIN" bench -s "127.0.0.1:$port" -U "$USER_NAME:$PASSWORD" \
        --mode sessions --concurrency "$CONCURRENCY" --duration "$DURATION" --payload "$PAYLOAD" --json \
        2>>"$TMP/$name.err")
    eval "M_${name}_sps=$(echo "$out" | jget sessions_per_s)"
    eval "M_${name}_sessions=$(echo "$out" | jget sessions)"
    eval "M_${name}_err=$(echo "$out" | jget errors)"
    eval "M_${name}_p50=$(echo "$out" | jget p50_us)"
    eval "M_${name}_p99=$(echo "$out" | jget p99_us)"
    eval "M_${name}_cpu=$(cat "$TMP/$name.cpu")"
}

NAMES="dante hasocks_user hasocks_file hasocks_user_nocache hasocks_file_nocache"
for n in $NAMES; do eval "P_$n=$(free_port)"; done
auth_conf "$P_dante" "$TMP/dante.log" username >"$TMP/dante.conf"
auth_conf "$P_hasocks_user" "$TMP/hu.log" username >"$TMP/hasocks_user.conf"
auth_conf "$P_hasocks_file" "$TMP/hf.log" hasocks.passwordfile "hasocks.passwordfile: $TMP/htpasswd" >"$TMP/hasocks_file.conf"
auth_conf "$P_hasocks_user_nocache" "$TMP/hun.log" username "hasocks.auth.cache: 0" >"$TMP/hasocks_user_nocache.conf"
auth_conf "$P_hasocks_file_nocache" "$TMP/hfn.log" hasocks.passwordfile "hasocks.passwordfile: $TMP/htpasswd" "hasocks.auth.cache: 0" >"$TMP/hasocks_file_nocache.conf"

if [ -x "$DANTED" ]; then
    start_server dante "$DANTED" -f "$TMP/dante.conf" -N 2
else
    STATUS_dante="no $DANTED"
fi
for n in hasocks_user hasocks_file hasocks_user_nocache hasocks_file_nocache; do
    start_server "$n" "$BIN" server -f "$TMP/$n.conf"
done

# Dante first (the order of NAMES).
# shellcheck disable=SC2086
measure_each $NAMES

# --- table ------------------------------------------------------------------
v() { eval "echo \${M_$1_$2:-n/a}"; }
ms() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v u="$x" 'BEGIN{printf "%.3f", u/1000}'; }
us() { per_session_us "$(v "$1" cpu)" "$(v "$1" sessions)"; }
line() { # NAME LABEL
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(v "$1" sps)" "$(ratio "$(v "$1" sps)" "$(v dante sps)")" \
        "$(ms "$1" p50)" "$(ms "$1" p99)" "$(us "$1")" "$(v "$1" err)"
}
DVER=$(dante_version)
{
    section_head "Authenticated sessions: hasocks server vs Dante" servers
    echo "- Dante: $DVER, \`danted -f FILE -N 2\`, \`socksmethod: username\`; status: $STATUS_dante"
    echo "- hasocks: $("$BIN" --version 2>/dev/null), run as root with \`user.unprivileged: nobody\` (shadow checks go through its root auth helper); statuses: user $STATUS_hasocks_user, file $STATUS_hasocks_file, user/no cache $STATUS_hasocks_user_nocache, file/no cache $STATUS_hasocks_file_nocache"
    echo "- account: one system account, \`chpasswd -c $HASH\` (hash \`$(echo "$SHADOW_HASH" | cut -c1-7)...\`); the password file holds the same hash; every session logs in as that user with the right password"
    echo "- load: \`hasocks bench --mode sessions -U USER:PASS --concurrency $CONCURRENCY --duration $DURATION --payload $PAYLOAD\`: connect + greeting + RFC 1929 + CONNECT + ${PAYLOAD}-byte echo + close"
    echo "- cache: as shipped hasocks remembers a success for 30 s (keyed hash of the password, see docs/authentication.md); \"no cache\" rows set \`hasocks.auth.cache: 0\`, so each session verifies the hash, like Dante"
    echo "- server CPU per session: $CPU_NOTE; divided by the sessions completed"
    echo
    echo "| server | sessions/s | vs Dante | p50, ms | p99, ms | server CPU per session, us | errors |"
    echo "|---|---|---|---|---|---|---|"
    line dante "Dante, username"
    line hasocks_user "hasocks, username"
    line hasocks_file "hasocks, hasocks.passwordfile"
    line hasocks_user_nocache "hasocks, username, no cache"
    line hasocks_file_nocache "hasocks, hasocks.passwordfile, no cache"
} >"$TMP/results.md"
publish "$RESULTS"
