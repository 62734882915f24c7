#!/usr/bin/env bash
# bench/run-relay.sh - layer-4 relays in front of the same two SOCKS backends, on loopback:
#   (a) direct: SOCKS straight to one backend (the reference line, no relay),
#   (b) HAProxy 2.6, `mode tcp`, `balance source`, `check` (inter 1s),
#   (c) hasocks relay, `mode source-hash check tcp` (interval 1),
# measured with `hasocks bench`, and a markdown table with hasocks/HAProxy ratios written to
# bench/results/relay.md and merged into bench/RESULTS.md (bench/merge.sh).
#
# Backends: two `hasocks server` instances on 127.0.0.2 and 127.0.0.3 (same port), so the
# backend is not the bottleneck and both relays forward to identical hosts. All relay load
# comes from one source address, chosen at start so that both source-hash relays send it to
# the same backend, which the direct line uses too: every line then works a backend with the
# same history (a backend that served more sessions, and holds more TIME_WAIT sockets, is
# slower, and that would count against whichever relay hashed to it).
#
# Loads (each DURATION s; every load repeated ROUNDS times - direct first, then HAProxy and
# hasocks alternating which goes first - means reported):
#   throughput: upload on STREAMS streams, counted at bench's in-process target, and the
#               relay's CPU time meanwhile (CPU-seconds per GB moved);
#   sessions:   CONCURRENCY workers, each connect + greeting + CONNECT + PAYLOAD-byte echo + close;
#   latency:    the same session with one worker (no queueing: the added latency of a hop);
#   latency on one CPU: the same, with the bench client, the backends and the relay moved to
#               CPU 0 for the run (taskset): on a VM, waking a process on the other CPU can
#               take a millisecond, and a round's one-client p99 is then ~0.8 or 2-3 ms for
#               any relay; on one CPU the p99 is that of the code path;
#   memory:     IDLE sessions held open through the relay; VmRSS of the relay before/after.
#
# Usage: bench/run-relay.sh            (builds the release hasocks first)
# Env:   HASOCKS_BIN=path  use this binary      HAPROXY=path (default haproxy on PATH)
#        BASE_BIN=path     also run this (older) hasocks build as relay (d), in the same
#                          rounds, with a hasocks/base ratio column: "before and after" in one run
#        DURATION=10 STREAMS=8 CONCURRENCY=50 IDLE=10000 PAYLOAD=64 ROUNDS=2
#        RESULTS=bench/results/relay.md
# Runtime ~5 minutes with the defaults.
set -u

. "$(dirname "$0")/lib.sh"
tcp_load_defaults
ROUNDS=${ROUNDS:-2}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
RESULTS=${RESULTS:-$REPO/bench/results/relay.md}
record_command bench/run-relay.sh "$@"

# IDLE sessions need 2*IDLE descriptors in the relay, in the backend and in the bench client
# (its own end + its in-process target's end).
fit_idle 100000 ", and each session costs 2 descriptors in the relay, the backend and the client"
HAPROXY_MAXCONN=$((IDLE + 200))

need_hasocks
BIN=$HASOCKS_BIN
[ -x "$HAPROXY" ] || { log "no haproxy at $HAPROXY"; exit 1; }
bench_tmp hasocks-bench-relay

# --- backends -------------------------------------------------------------------------------
BPORT=$(free_port)
for a in 127.0.0.2 127.0.0.3; do
    sockd_conf $a "$BPORT" "$TMP/backend-$a.log" connect >"$TMP/backend-$a.conf"
    "$BIN" server -f "$TMP/backend-$a.conf" >"$TMP/backend-$a.out" 2>&1 &
    track $!
    BACKEND_PIDS="${BACKEND_PIDS:-} $!"
    wait_socks "$a:$BPORT" $! 150 || { log "backend $a did not start: $(tail -n 3 "$TMP/backend-$a.out")"; exit 1; }
done

# --- HAProxy --------------------------------------------------------------------------------
HPORT=$(free_port)
cat >"$TMP/haproxy.cfg" <<CONF
# written by bench/run-relay.sh
global
    maxconn $HAPROXY_MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend socks
    bind 127.0.0.1:$HPORT
    default_backend pool
backend pool
    balance source
    server s2 127.0.0.2:$BPORT check inter 1s
    server s3 127.0.0.3:$BPORT check inter 1s
CONF
"$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.out" 2>&1 &
HA_PID=$!
track "$HA_PID"
wait_socks "127.0.0.1:$HPORT" "$HA_PID" 150 || { log "haproxy did not start: $(tail -n 5 "$TMP/haproxy.out")"; exit 1; }

# --- hasocks relay --------------------------------------------------------------------------
RPORT=$(free_port)
cat >"$TMP/relayd.conf" <<CONF
# written by bench/run-relay.sh
interval 1
timeout 500
# Every bench client comes from one address: no per-source cap, or the memory step could
# not hold its idle sessions (HAProxy has no such cap either).
hasocks.maxconn.source 0
table <socks> { 127.0.0.2, 127.0.0.3 }
relay "bench" {
    listen on 127.0.0.1 port $RPORT
    session timeout 600
    forward to <socks> port $BPORT mode source-hash check tcp
}
CONF
"$BIN" relay -f "$TMP/relayd.conf" >"$TMP/relay.out" 2>&1 &
RE_PID=$!
track "$RE_PID"
wait_socks "127.0.0.1:$RPORT" "$RE_PID" 150 || { log "relay did not start: $(tail -n 5 "$TMP/relay.out")"; exit 1; }

# --- the base build, same config on its own port (BASE_BIN only) ----------------------------
BASE_BIN=${BASE_BIN:-}
RELAYS="haproxy hasocks"
if [ -n "$BASE_BIN" ]; then
    [ -x "$BASE_BIN" ] || { log "no base binary at $BASE_BIN"; exit 1; }
    BASE_PORT=$(free_port)
    # Our keywords go: an older build may not know them (it had no caps to lift).
    sed -e "s/port $RPORT/port $BASE_PORT/" -e '/^hasocks\./d' "$TMP/relayd.conf" >"$TMP/relayd-base.conf"
    "$BASE_BIN" relay -f "$TMP/relayd-base.conf" >"$TMP/base.out" 2>&1 &
    BASE_PID=$!
    track "$BASE_PID"
    wait_socks "127.0.0.1:$BASE_PORT" "$BASE_PID" 150 || { log "base relay did not start: $(tail -n 5 "$TMP/base.out")"; exit 1; }
    RELAYS="haproxy hasocks base"
fi

# --- a source address both relays send to the same backend --------------------------------
# backend_of RELAY_PORT SRC: the backend (127.0.0.2 or 127.0.0.3) that serves a session from SRC
# through the relay, seen as that backend's outgoing connection to bench's target (health
# checks never get that far).
backend_of() {
    local bpid i b found=""
    "$BIN" bench -s "127.0.0.1:$1" --source "$2" --mode idle --sessions 1 --concurrency 1 \
        --hold 5 --json >/dev/null 2>&1 &
    bpid=$!
    for i in $(seq 1 30); do
        sleep 0.1
        for b in 127.0.0.2 127.0.0.3; do
            if ss -Htn state established | awk -v b="$b" -v p="$BPORT" \
                '{ n = split($3, a, ":"); if (a[1] == b && a[n] != p) f = 1 } END { exit !f }'; then
                found=$b
            fi
        done
        [ -n "$found" ] && break
    done
    kill "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    echo "${found:-none}"
}
SRC=""
for n in $(seq 10 40); do
    a=$(backend_of "$HPORT" "127.0.0.$n")
    b=$(backend_of "$RPORT" "127.0.0.$n")
    if [ "$a" = "$b" ] && [ "$a" != none ]; then SRC=127.0.0.$n; BACKEND=$a; break; fi
done
if [ -z "$SRC" ]; then
    SRC=127.0.0.1; BACKEND=127.0.0.2
    SRC_NOTE="no source in 127.0.0.10-40 made both relays pick the same backend: load from 127.0.0.1, the relays may work different backends"
else
    SRC_NOTE="load from $SRC, which both relays send to $BACKEND; the direct line goes to $BACKEND too"
fi
log "$SRC_NOTE"

# --- measurements ---------------------------------------------------------------------------
# Appends one value per run to $TMP/NAME.METRIC; means are taken at the end.
put() { echo "$3" >>"$TMP/$1.$2"; }
throughput() { # NAME RELAY_PID ARGS... (RELAY_PID empty: no relay, no CPU figure)
    local name=$1 pid=$2 out
    shift 2
    local tput=("$BIN" bench "$@" --mode throughput --streams "$STREAMS" --duration "$DURATION" --json)
    log "[$name] throughput ($STREAMS streams, ${DURATION}s)"
    if [ -n "$pid" ]; then
        out=$(run_cpu "$TMP/$name.cpurun" "$pid" -- "${tput[@]}" 2>>"$TMP/$name.err")
        put "$name" cpu "$(cat "$TMP/$name.cpurun")"
        put "$name" cpugb "$(cpu_per_gb "$(cat "$TMP/$name.cpurun")" "$(echo "$out" | jget bytes)")"
    else
        out=$("${tput[@]}" 2>>"$TMP/$name.err")
    fi
    put "$name" mbs "$(echo "$out" | jget mb_per_s)"
    put "$name" terr "$(echo "$out" | jget errors)"
}
# pin_to CPUS PID...: every thread of these processes (and their children) onto CPUS.
pin_to() {
    local cpus=$1 p
    shift
    # shellcheck disable=SC2046
    for p in $(tree_pids "$@"); do taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1 || true; done
}
ALL_CPUS=0-$(($(nproc) - 1))
sessions() { # NAME RELAY_PID CONCURRENCY KIND ARGS... (RELAY_PID empty: no CPU figure)
    local name=$1 pid=$2 c=$3 kind=$4 out
    shift 4
    local ses=("$BIN" bench "$@" --mode sessions --concurrency "$c" --duration "$DURATION" --payload "$PAYLOAD" --json)
    if [ "$kind" = pin ]; then
        # shellcheck disable=SC2086
        pin_to 0 $BACKEND_PIDS $pid
        ses=(taskset -c 0 "${ses[@]}")
    fi
    log "[$name] $kind ($c concurrent, ${DURATION}s)"
    local segs0
    segs0=$(tcp_outsegs)
    if [ -n "$pid" ]; then
        out=$(run_cpu "$TMP/$name.cpuses" "$pid" -- "${ses[@]}" 2>>"$TMP/$name.err")
        put "$name" "${kind}_cpus" "$(per_session_us "$(cat "$TMP/$name.cpuses")" "$(echo "$out" | jget sessions)")"
    else
        out=$("${ses[@]}" 2>>"$TMP/$name.err")
    fi
    put "$name" "${kind}_segs" "$(echo "$(tcp_outsegs) $segs0 $(echo "$out" | jget sessions)" | awk '{ if ($3 > 0) printf "%.1f", ($1 - $2) / $3; else print "n/a" }')"
    put "$name" "${kind}_sps" "$(echo "$out" | jget sessions_per_s)"
    put "$name" "${kind}_err" "$(echo "$out" | jget errors)"
    put "$name" "${kind}_p50" "$(echo "$out" | jget p50_us)"
    put "$name" "${kind}_p99" "$(echo "$out" | jget p99_us)"
    # shellcheck disable=SC2086
    [ "$kind" = pin ] && pin_to "$ALL_CPUS" $BACKEND_PIDS $pid
    return 0
}
all_loads() { # NAME RELAY_PID ARGS...
    local name=$1 pid=$2
    shift 2
    throughput "$name" "$pid" "$@"
    sessions "$name" "$pid" "$CONCURRENCY" load "$@"
    sessions "$name" "$pid" 1 lat "$@"
    sessions "$name" "$pid" 1 pin "$@"
}

memory() { # NAME PID PORT
    local name=$1 pid=$2
    log "[$name] memory with $IDLE open sessions"
    hold_idle "$name" "$pid" 1800 -s "127.0.0.1:$3" --source "$SRC"
    put "$name" open "$IDLE_OPEN"
    put "$name" rss0 "$IDLE_RSS0"
    put "$name" rss1 "$IDLE_RSS1"
    [ "$IDLE_OPEN" -gt 0 ] && put "$name" rssps "$(per_session "$IDLE_RSS0" "$IDLE_RSS1" "$IDLE_OPEN")"
    # Let the held sessions close before the next load.
    sleep 2
}

START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
    log "== round $r of $ROUNDS"
    # Direct in every round (added latency compares like with like); the relays take turns
    # at going first, so a drift in machine load hits all alike.
    rel=($RELAYS)
    order=direct
    for i in $(seq 0 $((${#rel[@]} - 1))); do
        order="$order ${rel[$(((i + r - 1) % ${#rel[@]}))]}"
    done
    for who in $order; do
        # The direct line comes from 127.0.0.9: from 127.0.0.1 its TIME_WAIT sockets would
        # fill the port space of 127.0.0.1 -> BACKEND:BPORT, where the relays must then find
        # ports for their own connections.
        case $who in
            direct) target="$BACKEND:$BPORT" pid="" src=127.0.0.9 ;;
            haproxy) target="127.0.0.1:$HPORT" pid=$HA_PID src=$SRC ;;
            base) target="127.0.0.1:$BASE_PORT" pid=$BASE_PID src=$SRC ;;
            *) target="127.0.0.1:$RPORT" pid=$RE_PID src=$SRC ;;
        esac
        all_loads "$who" "$pid" -s "$target" --source "$src"
    done
done
memory haproxy "$HA_PID" "$HPORT"
memory hasocks "$RE_PID" "$RPORT"
[ -n "$BASE_BIN" ] && memory base "$BASE_PID" "$BASE_PORT"
ELAPSED=$(($(date +%s) - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
kill -0 "$RE_PID" 2>/dev/null && RELAY_ALIVE=yes || RELAY_ALIVE=no
kill -0 "$HA_PID" 2>/dev/null && HA_ALIVE=yes || HA_ALIVE=no

# --- table ----------------------------------------------------------------------------------
# Mean of the recorded values (n/a when none).
v() { awk 'NF && $1 != "" {s += $1; n++} END {if (n) {x = s / n; if (x == int(x)) printf "%d", x; else printf "%.2f", x} else print "n/a"}' "$TMP/$1.$2" 2>/dev/null || echo n/a; }
all() { [ -f "$TMP/$1.$2" ] && paste -sd/ "$TMP/$1.$2" || echo n/a; }
ms() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v u="$x" 'BEGIN{printf "%.3f", u/1000}'; }
added() { # NAME METRIC: proxy minus direct, ms
    local a b
    a=$(v "$1" "$2"); b=$(v direct "$2")
    case "$a$b" in *n/a*) echo n/a; return ;; esac
    awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", (a-b)/1000}'
}
mib() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v k="$x" 'BEGIN{printf "%.1f", k/1024}'; }
row() { # LABEL DIRECT HAPROXY HASOCKS NOTE [BASE] (ratio hasocks/HAProxy, and hasocks/base)
    if [ -n "$BASE_BIN" ]; then
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3") ($5)" "${6:--}" "$(ratio "$4" "${6:-n/a}")"
    else
        printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3") ($5)"
    fi
}
# b METRIC [FN]: the base build's value of METRIC (via FN: v, ms, added, mib), or "-".
b() { [ -n "$BASE_BIN" ] && "${2:-v}" base "$1" || echo -; }

DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
HAVER=$("$HAPROXY" -v 2>&1 | head -n1)
{
    echo "## hasocks relay vs HAProxy"
    echo
    echo "- date: $DATE; total run ${ELAPSED} s"
    echo "- machine: $(machine); bench client, target, backends and relay share these CPUs; load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo "- command: \`$COMMAND\` (hasocks $("$BIN" --version 2>/dev/null | awk '{print $2}'), release build)"
    echo "- backends: two \`hasocks server\` on 127.0.0.2:$BPORT and 127.0.0.3:$BPORT (method none, pass rules, no session logging); $SRC_NOTE (found at start by opening one session per candidate source through each relay)"
    echo "- (a) direct: \`hasocks bench -s $BACKEND:$BPORT --source 127.0.0.9\` (no relay; its own source address keeps its TIME_WAIT sockets out of the port space the relays use towards the backends)"
    echo "- (b) $HAVER: \`haproxy -db -f haproxy.cfg\`, \`mode tcp\`, \`balance source\`, \`server ... check inter 1s\`, global \`maxconn $HAPROXY_MAXCONN\`, otherwise defaults (threads = CPUs, no splicing); status at the end: alive=$HA_ALIVE"
    echo "- (c) \`hasocks relay -f relayd.conf\`: \`interval 1\`, \`timeout 500\`, \`forward to <socks> port $BPORT mode source-hash check tcp\`; status at the end: alive=$RELAY_ALIVE"
    echo "- loads (\`hasocks bench --json\`, ${DURATION} s each): throughput = upload on $STREAMS streams counted at bench's in-process target; sessions = $CONCURRENCY workers doing connect + greeting + CONNECT + ${PAYLOAD}-byte echo + close; latency = the same session with 1 worker (p50/p99 of the whole session; added = relay minus direct), and again with the bench client, backends and relay all on CPU 0 (taskset; no cross-CPU wake-ups); every load run $ROUNDS times (direct, then HAProxy and hasocks alternating first), means shown, each run in the details; a negative added latency means the difference is below this machine's noise"
    echo "- relay CPU, read around each throughput and sessions run (the relay only; the backend's CPU is not included): $CPU_NOTE; divided by the bytes counted at the target, or by the sessions completed. The load generator and the backend share the $(nproc) CPUs, so raw MB/s is bounded by them: CPU-seconds per GB is the efficiency figure"
    echo "- memory: $IDLE sessions opened through the relay and held (\`--mode idle\`); VmRSS of the relay process before and with them open"
    [ -n "$IDLE_NOTE" ] && echo "- note: $IDLE_NOTE"
    [ -n "$BASE_BIN" ] && echo "- (d) base: the same relay config run by an earlier build, \`$BASE_BIN\` (hasocks $("$BASE_BIN" --version 2>/dev/null | awk '{print $2}')), in the same rounds; the last column is hasocks/base (before and after a change, in one run)"
    echo
    if [ -n "$BASE_BIN" ]; then
        echo "| metric | direct | HAProxy | hasocks relay | hasocks/HAProxy | base build | hasocks/base |"
        echo "|---|---|---|---|---|---|---|"
    else
        echo "| metric | direct | HAProxy | hasocks relay | hasocks/HAProxy |"
        echo "|---|---|---|---|---|"
    fi
    row "throughput, $STREAMS streams, MB/s" "$(v direct mbs)" "$(v haproxy mbs)" "$(v hasocks mbs)" "higher is better" "$(b mbs)"
    row "relay CPU during a throughput run, s" "-" "$(v haproxy cpu)" "$(v hasocks cpu)" "info" "$(b cpu)"
    row "relay CPU-seconds per GB moved" "-" "$(v haproxy cpugb)" "$(v hasocks cpugb)" "lower is better" "$(b cpugb)"
    row "sessions/s, $CONCURRENCY concurrent" "$(v direct load_sps)" "$(v haproxy load_sps)" "$(v hasocks load_sps)" "higher is better" "$(b load_sps)"
    row "relay CPU per session at $CONCURRENCY concurrent, us" "-" "$(v haproxy load_cpus)" "$(v hasocks load_cpus)" "lower is better" "$(b load_cpus)"
    row "relay CPU per session, 1 worker, us" "-" "$(v haproxy lat_cpus)" "$(v hasocks lat_cpus)" "lower is better" "$(b lat_cpus)"
    row "TCP segments sent per session (all hops), 1 worker" "$(v direct lat_segs)" "$(v haproxy lat_segs)" "$(v hasocks lat_segs)" "info: the same kernel work" "$(b lat_segs)"
    row "session latency p50 at $CONCURRENCY concurrent, ms" "$(ms direct load_p50)" "$(ms haproxy load_p50)" "$(ms hasocks load_p50)" "lower is better" "$(b load_p50 ms)"
    row "session latency p99 at $CONCURRENCY concurrent, ms" "$(ms direct load_p99)" "$(ms haproxy load_p99)" "$(ms hasocks load_p99)" "lower is better" "$(b load_p99 ms)"
    row "session latency p50, 1 worker, ms" "$(ms direct lat_p50)" "$(ms haproxy lat_p50)" "$(ms hasocks lat_p50)" "lower is better" "$(b lat_p50 ms)"
    row "session latency p99, 1 worker, ms" "$(ms direct lat_p99)" "$(ms haproxy lat_p99)" "$(ms hasocks lat_p99)" "lower is better" "$(b lat_p99 ms)"
    row "session latency p50, 1 worker, all on one CPU, ms" "$(ms direct pin_p50)" "$(ms haproxy pin_p50)" "$(ms hasocks pin_p50)" "lower is better" "$(b pin_p50 ms)"
    row "session latency p99, 1 worker, all on one CPU, ms" "$(ms direct pin_p99)" "$(ms haproxy pin_p99)" "$(ms hasocks pin_p99)" "lower is better" "$(b pin_p99 ms)"
    row "added latency p50, 1 worker, ms" "-" "$(added haproxy lat_p50)" "$(added hasocks lat_p50)" "lower is better" "$(b lat_p50 added)"
    row "added latency p99, 1 worker, ms" "-" "$(added haproxy lat_p99)" "$(added hasocks lat_p99)" "lower is better" "$(b lat_p99 added)"
    row "added latency p99, 1 worker, all on one CPU, ms" "-" "$(added haproxy pin_p99)" "$(added hasocks pin_p99)" "lower is better" "$(b pin_p99 added)"
    row "added latency p50 at $CONCURRENCY concurrent, ms" "-" "$(added haproxy load_p50)" "$(added hasocks load_p50)" "lower is better" "$(b load_p50 added)"
    row "added latency p99 at $CONCURRENCY concurrent, ms" "-" "$(added haproxy load_p99)" "$(added hasocks load_p99)" "lower is better" "$(b load_p99 added)"
    errs() { echo "$(all "$1" terr)+$(all "$1" load_err)+$(all "$1" lat_err)+$(all "$1" pin_err)"; }
    if [ -n "$BASE_BIN" ]; then
        printf '| errors (throughput + sessions + latency + one-CPU latency runs, per round) | %s | %s | %s | - | %s | - |\n' \
            "$(errs direct)" "$(errs haproxy)" "$(errs hasocks)" "$(errs base)"
    else
        printf '| errors (throughput + sessions + latency + one-CPU latency runs, per round) | %s | %s | %s | - |\n' \
            "$(errs direct)" "$(errs haproxy)" "$(errs hasocks)"
    fi
    row "sessions held open" "-" "$(v haproxy open)" "$(v hasocks open)" "should be equal" "$(b open)"
    row "relay RSS before, MiB" "-" "$(mib haproxy rss0)" "$(mib hasocks rss0)" "lower is better" "$(b rss0 mib)"
    row "relay RSS with the sessions open, MiB" "-" "$(mib haproxy rss1)" "$(mib hasocks rss1)" "lower is better" "$(b rss1 mib)"
    row "relay RSS per open session, KiB" "-" "$(v haproxy rssps)" "$(v hasocks rssps)" "lower is better" "$(b rssps)"
    echo
    echo "Each run (round 1/round 2/...):"
    echo
    for who in direct $RELAYS; do
        echo "- $who: MB/s $(all "$who" mbs); relay CPU-s/GB $(all "$who" cpugb); sessions/s $(all "$who" load_sps); relay CPU us/session at $CONCURRENCY and with 1 worker: $(all "$who" load_cpus) / $(all "$who" lat_cpus); p50/p99 us at $CONCURRENCY: $(all "$who" load_p50) / $(all "$who" load_p99); p50/p99 us with 1 worker: $(all "$who" lat_p50) / $(all "$who" lat_p99); on one CPU: $(all "$who" pin_p50) / $(all "$who" pin_p99)"
    done
} >"$TMP/results.md"
publish "$RESULTS"
