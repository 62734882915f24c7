#!/usr/bin/env bash
# bench/run-server.sh - the same load, on loopback, against
#   (a) a direct connection (no SOCKS: the reference line),
#   (b) Dante (danted, Debian package dante-server),
#   (c) hasocks server (release build),
# and a markdown table with hasocks/Dante ratios, written to bench/results/server.md and
# merged into bench/RESULTS.md (bench/merge.sh).
#
# Measures: upload throughput (8 streams, 10 s) and the server's CPU time during
# it (CPU-seconds per GB moved), sessions/s (50 concurrent
# workers, 10 s, each connect + greeting + CONNECT + 64-byte echo + close),
# latency p50/p99 per session, and the server's memory with 10,000 idle open
# sessions (VmRSS summed over all its processes, and PSS, which does not count
# shared pages once per process - fairer to Dante's many processes).
#
# Usage: bench/run-server.sh   (first builds hasocks: cargo build --release -p hasocks)
# Env:   HASOCKS_BIN=path  use this binary instead of building (see bench/lib.sh)
#        DANTED=path       danted binary (default /usr/sbin/danted)
#        DURATION=10 STREAMS=8 CONCURRENCY=50 IDLE=10000 PAYLOAD=64
#        RESULTS=bench/results/server.md   where to write the section
#        BASE_BIN=path     also compare with this (older) hasocks build: ROUNDS_AB rounds
#                          (default 4) of sessions/s, server CPU per session and 1-worker
#                          latency, the two builds alternating first, plus memory: "before
#                          and after" a change, in one run
# Run as root (Dante wants user.privileged: root). Runtime about 2-3 minutes
# (it may wait up to 70 s for TIME_WAIT sockets of earlier runs to expire).
set -u

. "$(dirname "$0")/lib.sh"
tcp_load_defaults
DANTED=${DANTED:-/usr/sbin/danted}
RESULTS=${RESULTS:-$REPO/bench/results/server.md}
record_command bench/run-server.sh "$@"

# 10,000 idle sessions need ~20,000 descriptors in the server and as many in
# the bench client (client side + its in-process echo target).
fit_idle 65536 ""
need_hasocks
BIN=$HASOCKS_BIN
bench_tmp hasocks-bench

# measure_load NAME PID VIA... : throughput and sessions through VIA; sets M_<NAME>_<metric>.
# With a PID (the server's), also the CPU time of its processes during the throughput run.
measure_load() {
    local name=$1 pid=$2 out; shift 2
    local tput=("$BIN" bench "$@" --mode throughput --streams "$STREAMS" --duration "$DURATION" --json)
    log "[$name] throughput ($STREAMS streams, ${DURATION}s)"
    local s0
    s0=$(stat_snap)
    if [ -n "$pid" ]; then
        out=$(run_cpu "$TMP/$name.cpurun" "$pid" -- "${tput[@]}" 2>>"$TMP/$name.err")
        eval "M_${name}_cpu=$(cat "$TMP/$name.cpurun")"
    else
        out=$("${tput[@]}" 2>>"$TMP/$name.err")
    fi
    eval "M_${name}_busy=$(busy_pct "$s0" "$(stat_snap)")"
    eval "M_${name}_mbs=$(echo "$out" | jget mb_per_s)"
    eval "M_${name}_bytes=$(echo "$out" | jget bytes)"
    eval "M_${name}_terr=$(echo "$out" | jget errors)"
    log "[$name] sessions ($CONCURRENCY workers, ${DURATION}s)"
    out=$("$BIN" bench "$@" --mode sessions --concurrency "$CONCURRENCY" --duration "$DURATION" --payload "$PAYLOAD" --json 2>>"$TMP/$name.err")
    eval "M_${name}_sps=$(echo "$out" | jget sessions_per_s)"
    eval "M_${name}_serr=$(echo "$out" | jget errors)"
    eval "M_${name}_p50=$(echo "$out" | jget p50_us)"
    eval "M_${name}_p99=$(echo "$out" | jget p99_us)"
}

# measure_idle NAME PID VIA... : server memory around $IDLE idle sessions.
measure_idle() {
    local name=$1 pid=$2; shift 2
    log "[$name] memory with $IDLE idle sessions"
    hold_idle "$name" "$pid" 1200 "$@"
    eval "M_${name}_open=$IDLE_OPEN M_${name}_procs=$IDLE_PROCS"
    eval "M_${name}_rss0=$IDLE_RSS0 M_${name}_rss1=$IDLE_RSS1 M_${name}_pss0=$IDLE_PSS0 M_${name}_pss1=$IDLE_PSS1"
    if [ "$IDLE_OPEN" -gt 0 ]; then
        eval "M_${name}_rssps=$(per_session "$IDLE_RSS0" "$IDLE_RSS1" "$IDLE_OPEN")"
        eval "M_${name}_pssps=$(per_session "$IDLE_PSS0" "$IDLE_PSS1" "$IDLE_OPEN")"
    fi
}

# Both servers run side by side for the whole script; memory is measured
# first, on fresh servers and before the load phases fill the port range.
DANTE_STATUS="not run"; DPID=""
if [ -x "$DANTED" ]; then
    DPORT=$(free_port)
    sockd_conf 127.0.0.1 "$DPORT" "$TMP/danted.log" connect >"$TMP/danted.conf"
    "$DANTED" -f "$TMP/danted.conf" -N 2 >"$TMP/danted.out" 2>&1 &
    DPID=$!
    track "$DPID"
    if wait_socks "127.0.0.1:$DPORT" "$DPID"; then
        DANTE_STATUS="ok"
    else
        DANTE_STATUS="did not start: $(tail -n 3 "$TMP/danted.out" "$TMP/danted.log" 2>/dev/null | tr '\n' ' ')"
    fi
else
    DANTE_STATUS="no $DANTED"
fi
log "[dante] $DANTE_STATUS"

HAS_STATUS="not run"
HPORT=$(free_port)
sockd_conf 127.0.0.1 "$HPORT" "$TMP/hasocks.log" connect >"$TMP/hasocks.conf"
"$BIN" server -f "$TMP/hasocks.conf" >"$TMP/hasocks.out" 2>&1 &
HPID=$!
track "$HPID"
if wait_socks "127.0.0.1:$HPORT" "$HPID"; then
    HAS_STATUS="ok"
else
    HAS_STATUS="did not start: $(tail -n 3 "$TMP/hasocks.out" 2>/dev/null | tr '\n' ' ')"
fi
log "[hasocks] $HAS_STATUS"

# Order: Dante goes first after each drain (see drain_time_wait); hasocks
# and the direct line do not bind before connecting, so TIME_WAIT does not
# hurt them.
if [ "$DANTE_STATUS" = ok ]; then drain_time_wait; measure_idle dante "$DPID" -s "127.0.0.1:$DPORT"; fi
[ "$HAS_STATUS" = ok ] && measure_idle hasocks "$HPID" -s "127.0.0.1:$HPORT"
if [ "$DANTE_STATUS" = ok ]; then drain_time_wait; measure_load dante "$DPID" -s "127.0.0.1:$DPORT"; fi
measure_load direct "" --direct
[ "$HAS_STATUS" = ok ] && measure_load hasocks "$HPID" -s "127.0.0.1:$HPORT"

# --- before/after: the base build beside this one (BASE_BIN) ------------------
BASE_BIN=${BASE_BIN:-}
ROUNDS_AB=${ROUNDS_AB:-4}
# ab_load NAME PID PORT: one round of sessions (CPU per session) and 1-worker latency.
ab_load() {
    local name=$1 pid=$2 port=$3 out
    local ses=("$BIN" bench -s "127.0.0.1:$port" --mode sessions --duration "$DURATION" --payload "$PAYLOAD" --json)
    log "[ab $name] sessions ($CONCURRENCY workers, ${DURATION}s)"
    out=$(run_cpu "$TMP/ab.$name.cpu" "$pid" -- "${ses[@]}" --concurrency "$CONCURRENCY" 2>>"$TMP/ab.$name.err")
    echo "$out" | jget sessions_per_s >>"$TMP/ab.$name.sps"
    per_session_us "$(cat "$TMP/ab.$name.cpu")" "$(echo "$out" | jget sessions)" >>"$TMP/ab.$name.cpus"
    echo "$out" | jget p99_us >>"$TMP/ab.$name.p99"
    echo "$out" | jget errors >>"$TMP/ab.$name.err_n"
    log "[ab $name] latency (1 worker, ${DURATION}s)"
    out=$("${ses[@]}" --concurrency 1 2>>"$TMP/ab.$name.err")
    echo "$out" | jget p50_us >>"$TMP/ab.$name.lat50"
    echo "$out" | jget p99_us >>"$TMP/ab.$name.lat99"
}
if [ -n "$BASE_BIN" ] && [ "$HAS_STATUS" = ok ]; then
    # A port found free can be taken by one of the load's own connections before the server
    # binds it (the ephemeral range holds both): another port, a few times.
    for _try in 1 2 3 4 5; do
        BPORT=$(free_port)
        sed -e "s/port = $HPORT/port = $BPORT/" "$TMP/hasocks.conf" >"$TMP/base.conf"
        "$BASE_BIN" server -f "$TMP/base.conf" >"$TMP/base.out" 2>&1 &
        BASE_PID=$!
        track "$BASE_PID"
        wait_socks "127.0.0.1:$BPORT" "$BASE_PID" && break
        grep -q "in use" "$TMP/base.out" || break
        log "[base] port $BPORT was taken meanwhile; another"
    done
    if kill -0 "$BASE_PID" 2>/dev/null; then
        measure_idle base "$BASE_PID" -s "127.0.0.1:$BPORT"
        for r in $(seq 1 "$ROUNDS_AB"); do
            log "== before/after round $r of $ROUNDS_AB"
            if [ $((r % 2)) -eq 1 ]; then
                ab_load hasocks "$HPID" "$HPORT"; ab_load base "$BASE_PID" "$BPORT"
            else
                ab_load base "$BASE_PID" "$BPORT"; ab_load hasocks "$HPID" "$HPORT"
            fi
        done
    else
        log "[base] did not start: $(tail -n 3 "$TMP/base.out")"
        BASE_BIN=""
    fi
fi

# --- table ------------------------------------------------------------------
v() { eval "echo \${M_$1_$2:-n/a}"; }
ms() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v u="$x" 'BEGIN{printf "%.3f", u/1000}'; }
mib() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v k="$x" 'BEGIN{printf "%.1f", k/1024}'; }
cpugb() { cpu_per_gb "$(v "$1" cpu)" "$(v "$1" bytes)"; }
half() { case "$1" in n/a | "") echo n/a ;; *) awk -v x="$1" 'BEGIN{printf "%.0f", x / 2}' ;; esac; }
twice() { case "$1" in n/a | "") echo n/a ;; *) awk -v x="$1" 'BEGIN{printf "%.0f", x * 2}' ;; esac; }
row() { # label direct dante hasocks better (ratio hasocks/Dante)
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3") ($5)"
}

DVER=$(dante_version)
{
    section_head "hasocks server vs Dante" server
    echo "- Dante: $DVER, \`danted -f FILE -N 2\`; status: $DANTE_STATUS"
    echo "- hasocks: \`hasocks server -f FILE\` ($("$BIN" --version 2>/dev/null)); status: $HAS_STATUS"
    echo "- both servers read the same sockd.conf (internal/external 127.0.0.1, method none, pass rules, no session logging)"
    echo "- load: \`hasocks bench\` with its in-process target on 127.0.0.1; throughput = upload only (client -> target), counted at the target; sessions = connect + greeting + CONNECT + ${PAYLOAD}-byte echo + close"
    echo "- Dante binds its outgoing sockets to 127.0.0.1:0 before connecting, so ports held in TIME_WAIT by earlier sessions make it fail with 'out of free ports' (reply 03); the script waits for TIME_WAIT sockets to expire before each Dante phase. Under sustained load Dante's own TIME_WAITs still accumulate (28k ports / 60 s), which shows up as its errors."
    echo "- server CPU: $CPU_NOTE; divided by the bytes counted at the target. The load generator shares the $(nproc) CPUs, so raw MB/s is bounded by the generator: CPU-seconds per GB is the efficiency figure"
    echo "- memory: $IDLE idle sessions requested (each CONNECTed, one echo done); RSS = VmRSS summed over the server's processes; PSS from smaps_rollup"
    [ -n "$IDLE_NOTE" ] && echo "- note: $IDLE_NOTE"
    echo
    echo "- throughput ceiling: a proxy moves every byte across loopback twice (client to proxy, proxy to target), the direct line once; the generator sends with sendfile and the target discards with splice, so the direct line's cost is almost all that kernel work. With the CPUs busy during the direct run (row below), a proxy can reach about half the direct rate: $(half "$(v direct mbs)") MB/s in this run, against $(twice "$(v dante mbs)") MB/s for twice Dante."
    echo
    echo "| metric | direct | Dante | hasocks | hasocks/Dante |"
    echo "|---|---|---|---|---|"
    row "throughput, $STREAMS streams, MB/s" "$(v direct mbs)" "$(v dante mbs)" "$(v hasocks mbs)" "higher is better"
    row "all CPUs busy during the throughput run, %" "$(v direct busy)" "$(v dante busy)" "$(v hasocks busy)" "info"
    row "server CPU during throughput run, s" "-" "$(v dante cpu)" "$(v hasocks cpu)" "info"
    row "server CPU-seconds per GB moved" "-" "$(cpugb dante)" "$(cpugb hasocks)" "lower is better"
    row "sessions/s, $CONCURRENCY concurrent" "$(v direct sps)" "$(v dante sps)" "$(v hasocks sps)" "higher is better"
    row "session latency p50, ms" "$(ms direct p50)" "$(ms dante p50)" "$(ms hasocks p50)" "lower is better"
    row "session latency p99, ms" "$(ms direct p99)" "$(ms dante p99)" "$(ms hasocks p99)" "lower is better"
    printf '| errors (throughput + sessions) | %s | %s | %s | - |\n' \
        "$(v direct terr)+$(v direct serr)" "$(v dante terr)+$(v dante serr)" "$(v hasocks terr)+$(v hasocks serr)"
    row "idle sessions open" "-" "$(v dante open)" "$(v hasocks open)" "should be equal"
    row "server processes" "-" "$(v dante procs)" "$(v hasocks procs)" "info"
    row "RSS before, MiB" "-" "$(mib dante rss0)" "$(mib hasocks rss0)" "lower is better"
    row "RSS with idle sessions, MiB" "-" "$(mib dante rss1)" "$(mib hasocks rss1)" "lower is better"
    row "RSS per idle session, KiB" "-" "$(v dante rssps)" "$(v hasocks rssps)" "lower is better"
    row "PSS per idle session, KiB" "-" "$(v dante pssps)" "$(v hasocks pssps)" "lower is better"
    if [ -n "$BASE_BIN" ]; then
        mean() { awk 'NF {s += $1; n++} END {if (n) printf "%.1f", s / n; else print "n/a"}' "$TMP/ab.$1.$2" 2>/dev/null || echo n/a; }
        each() { paste -sd/ "$TMP/ab.$1.$2" 2>/dev/null || echo n/a; }
        ab() { printf '| %s | %s | %s | %s (%s) |\n' "$1" "$(mean hasocks "$2")" "$(mean base "$2")" "$(ratio "$(mean hasocks "$2")" "$(mean base "$2")")" "$3"; }
        echo
        echo "### Before and after: this build against \`$BASE_BIN\`"
        echo
        echo "Both servers run side by side with the same sockd.conf; $ROUNDS_AB rounds, the two builds taking turns at going first; means shown, each round below."
        echo
        echo "| metric | this build | base build | this/base |"
        echo "|---|---|---|---|"
        ab "sessions/s, $CONCURRENCY concurrent" sps "higher is better"
        ab "server CPU per session at $CONCURRENCY concurrent, us" cpus "lower is better"
        ab "session latency p99 at $CONCURRENCY concurrent, us" p99 "lower is better"
        ab "session latency p50, 1 worker, us" lat50 "lower is better"
        ab "session latency p99, 1 worker, us" lat99 "lower is better"
        printf '| RSS per idle session, KiB | %s | %s | %s (lower is better) |\n' "$(v hasocks rssps)" "$(v base rssps)" "$(ratio "$(v hasocks rssps)" "$(v base rssps)")"
        printf '| errors (sessions runs, per round) | %s | %s | - |\n' "$(each hasocks err_n)" "$(each base err_n)"
        echo
        for who in hasocks base; do
            echo "- $who: sessions/s $(each "$who" sps); CPU us/session $(each "$who" cpus); p99 us at $CONCURRENCY $(each "$who" p99); 1-worker p50/p99 us $(each "$who" lat50) / $(each "$who" lat99)"
        done
    fi
} >"$TMP/results.md"
publish "$RESULTS"
