#!/usr/bin/env bash
# bench/run-route.sh - server chaining, on loopback, in one run: the same load through
#   (a) the upstream alone (one hop: the reference line),
#   (b) Dante (danted) with a `route { }` to that upstream,
#   (c) hasocks server with the same route,
# the upstream being one hasocks server for all three (so the chaining server is the only
# difference). A markdown table with hasocks/Dante ratios goes to bench/results/route.md,
# merged into bench/RESULTS.md (bench/merge.sh).
#
# Measures: chained CONNECT sessions/s (50 concurrent workers, 10 s, each connect + greeting
# + CONNECT + 64-byte echo + close), latency p50/p99, the chaining server's CPU per session,
# and upload throughput (8 streams, 10 s) with the chaining server's CPU per GB.
#
# Usage: bench/run-route.sh   (first builds hasocks: cargo build --release -p hasocks)
# Env:   HASOCKS_BIN=path  use this binary instead of building (see bench/lib.sh)
#        DANTED=path       danted binary (default /usr/sbin/danted)
#        DURATION=10 STREAMS=8 CONCURRENCY=50 PAYLOAD=64
#        RESULTS=bench/results/route.md   where to write the section
#        CHAIN_CPU=0.5    cap each chaining server (Dante with its children, hasocks) at this
#                         many CPUs, so sessions/s measures its capacity at an equal CPU
#                         budget instead of what the other processes leave it
# Loopback ports: Dante binds its outgoing side before connecting, so back-to-back runs can
# exhaust the ephemeral range on TIME_WAIT; bench/in-netns.sh runs this in a fresh network
# namespace with the whole range.
# Run as root (Dante wants user.privileged: root). Runtime about 2 minutes (it may wait up
# to 70 s for TIME_WAIT sockets of earlier runs to expire before Dante's phase).
set -u

. "$(dirname "$0")/lib.sh"
tcp_load_defaults
DANTED=${DANTED:-/usr/sbin/danted}
RESULTS=${RESULTS:-$REPO/bench/results/route.md}
record_command bench/run-route.sh "$@"
need_hasocks
BIN=$HASOCKS_BIN
bench_tmp hasocks-bench-route

P_up=$(free_port)
P_dante=$(free_port)
P_hasocks=$(free_port)
# The route both chaining servers read, Dante's syntax.
ROUTE="route {
    from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = $P_up
    command: connect
    proxyprotocol: socks_v5
    method: none
}"
sockd_conf 127.0.0.1 "$P_up" "$TMP/up.log" connect >"$TMP/up.conf"
{ sockd_conf 127.0.0.1 "$P_dante" "$TMP/dante.log" connect; echo "$ROUTE"; } >"$TMP/dante.conf"
{ sockd_conf 127.0.0.1 "$P_hasocks" "$TMP/hasocks.log" connect; echo "$ROUTE"; } >"$TMP/hasocks.conf"

# measure NAME: sessions, then throughput, through server NAME; sets M_NAME_*.
measure() {
    local name=$1 port pid out
    eval "port=\$P_$name pid=\$PID_$name"
    log "[$name] sessions ($CONCURRENCY workers, ${DURATION}s)"
    out=$(run_cpu "$TMP/$name.scpu" "$pid" -- "$BIN" bench -s "127.0.0.1:$port" --mode sessions \
        --concurrency "$CONCURRENCY" --duration "$DURATION" --payload "$PAYLOAD" --json 2>>"$TMP/$name.err")
    eval "M_${name}_sps=$(echo "$out" | jget sessions_per_s)"
    eval "M_${name}_sessions=$(echo "$out" | jget sessions)"
    eval "M_${name}_serr=$(echo "$out" | jget errors)"
    eval "M_${name}_p50=$(echo "$out" | jget p50_us)"
    eval "M_${name}_p99=$(echo "$out" | jget p99_us)"
    eval "M_${name}_scpu=$(cat "$TMP/$name.scpu")"
    log "[$name] throughput ($STREAMS streams, ${DURATION}s)"
    out=$(run_cpu "$TMP/$name.tcpu" "$pid" -- "$BIN" bench -s "127.0.0.1:$port" --mode throughput \
        --streams "$STREAMS" --duration "$DURATION" --json 2>>"$TMP/$name.err")
    eval "M_${name}_mbs=$(echo "$out" | jget mb_per_s)"
    eval "M_${name}_bytes=$(echo "$out" | jget bytes)"
    eval "M_${name}_terr=$(echo "$out" | jget errors)"
    eval "M_${name}_tcpu=$(cat "$TMP/$name.tcpu")"
}

start_server up "$BIN" server -f "$TMP/up.conf"
if [ -x "$DANTED" ]; then
    start_server dante cpu_capped "$DANTED" -f "$TMP/dante.conf" -N 2
else
    STATUS_dante="no $DANTED"
fi
start_server hasocks cpu_capped "$BIN" server -f "$TMP/hasocks.conf"
measure_each dante hasocks up

# --- table ------------------------------------------------------------------
v() { eval "echo \${M_$1_$2:-n/a}"; }
ms() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v u="$x" 'BEGIN{printf "%.3f", u/1000}'; }
row() { # label up dante hasocks better
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3") ($5)"
}
cpus() { per_session_us "$(v "$1" scpu)" "$(v "$1" sessions)"; }
cpugb() { cpu_per_gb "$(v "$1" tcpu)" "$(v "$1" bytes)"; }
DVER=$(dante_version)
{
    section_head "Server chaining: hasocks route vs Dante route" "the servers"
    echo "- Dante: $DVER, \`danted -f FILE -N 2\`; status: $STATUS_dante"
    echo "- hasocks: \`hasocks server -f FILE\` ($("$BIN" --version 2>/dev/null | head -n1)); status: $STATUS_hasocks"
    echo "- both chaining servers read the same sockd.conf, with Dante's route syntax: \`route { from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = UPSTREAM command: connect proxyprotocol: socks_v5 method: none }\`; the upstream is one hasocks server for both (status: $STATUS_up), so the chaining server is the only difference"
    echo "- load: \`hasocks bench\` with its in-process target on 127.0.0.1; sessions = connect + greeting + CONNECT + ${PAYLOAD}-byte echo + close, through chain and upstream; throughput = upload only, counted at the target"
    [ -n "${CHAIN_CPU:-}" ] && echo "- CPU budget: each chaining server capped at $CHAIN_CPU CPU (a cpu cgroup, children included); the upstream and the load generator are not capped"
    echo "- server CPU: the chaining server's (the upstream's not counted): $CPU_NOTE"
    echo
    echo "| metric | upstream alone (1 hop) | Dante -> upstream | hasocks -> upstream | hasocks/Dante |"
    echo "|---|---|---|---|---|"
    row "sessions/s, $CONCURRENCY concurrent" "$(v up sps)" "$(v dante sps)" "$(v hasocks sps)" "higher is better"
    row "session latency p50, ms" "$(ms up p50)" "$(ms dante p50)" "$(ms hasocks p50)" "lower is better"
    row "session latency p99, ms" "$(ms up p99)" "$(ms dante p99)" "$(ms hasocks p99)" "lower is better"
    row "chaining server CPU per session, us" "-" "$(cpus dante)" "$(cpus hasocks)" "lower is better"
    row "throughput, $STREAMS streams, MB/s" "$(v up mbs)" "$(v dante mbs)" "$(v hasocks mbs)" "higher is better"
    row "chaining server CPU-seconds per GB moved" "-" "$(cpugb dante)" "$(cpugb hasocks)" "lower is better"
    printf '| errors (sessions + throughput) | %s | %s | %s | - |\n' \
        "$(v up serr)+$(v up terr)" "$(v dante serr)+$(v dante terr)" "$(v hasocks serr)+$(v hasocks terr)"
} >"$TMP/results.md"
publish "$RESULTS"
