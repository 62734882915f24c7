#!/usr/bin/env bash
# bench/run-server.sh - the same load, on loopback, against
#   (a) a direct connection (no SOCKS: the reference line),
#   (b) Dante (danted, Debian package dante-server),
#   (c) hasocks server (release build),
# and a markdown table with hasocks/Dante ratios, written to bench/RESULTS.md.
#
# Measures: upload throughput (8 streams, 10 s), sessions/s (50 concurrent
# workers, 10 s, each connect + greeting + CONNECT + 64-byte echo + close),
# latency p50/p99 per session, and the server's memory with 10,000 idle open
# sessions (VmRSS summed over all its processes, and PSS, which does not count
# shared pages once per process - fairer to Dante's many processes).
#
# Usage: bench/run-server.sh            (builds target/release/hasocks first)
# Env:   HASOCKS_BIN=path  use this binary instead of building
#        DANTED=path       danted binary (default /usr/sbin/danted)
#        DURATION=10 STREAMS=8 CONCURRENCY=50 IDLE=10000 PAYLOAD=64
#        RESULTS=bench/RESULTS.md   where to write the table
# Run as root (Dante wants user.privileged: root). Runtime about 2-3 minutes
# (it may wait up to 70 s for TIME_WAIT sockets of earlier runs to expire).
set -u

cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-8}
CONCURRENCY=${CONCURRENCY:-50}
IDLE=${IDLE:-10000}
PAYLOAD=${PAYLOAD:-64}
DANTED=${DANTED:-/usr/sbin/danted}
RESULTS=${RESULTS:-$REPO/bench/RESULTS.md}
COMMAND="$0${*:+ $*}"
[ -n "${HASOCKS_BIN:-}" ] && COMMAND="HASOCKS_BIN=$HASOCKS_BIN $COMMAND"

# 10,000 idle sessions need ~20,000 descriptors in the server and as many in
# the bench client (client side + its in-process echo target).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
FIT=$(( (NOFILE - 1000) / 2 ))
IDLE_NOTE=""
if [ "$IDLE" -gt "$FIT" ]; then
    IDLE_NOTE="idle sessions reduced from $IDLE to $FIT: RLIMIT_NOFILE is $NOFILE here (ulimit -n 65536 was refused)"
    IDLE=$FIT
fi

log() { printf '%s\n' "$*" >&2; }

if [ -z "${HASOCKS_BIN:-}" ]; then
    log "building hasocks (release)..."
    cargo build --release -p hasocks >&2 || { log "cargo build failed"; exit 1; }
    HASOCKS_BIN="$REPO/target/release/hasocks"
fi
BIN=$HASOCKS_BIN
[ -x "$BIN" ] || { log "no hasocks binary at $BIN"; exit 1; }

TMP=$(mktemp -d /tmp/hasocks-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $(( 20000 + RANDOM % 20000 ))
}

# Value of a numeric/string field in a one-line JSON object.
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -n1; }

# PID and all its descendants.
tree_pids() {
    local all frontier next p
    all=$1; frontier=$1
    while [ -n "$frontier" ]; do
        next=""
        for p in $frontier; do
            next="$next $(ps -o pid= --ppid "$p" 2>/dev/null | tr -d ' ' | tr '\n' ' ')"
        done
        next=$(echo $next)
        all="$all $next"; frontier=$next
    done
    echo $all
}

# Sum of a /proc field (kB) over a PID's process tree: mem_kb PID VmRSS|Pss
mem_kb() {
    local total=0 p v file field
    field=$2
    for p in $(tree_pids "$1"); do
        if [ "$field" = Pss ]; then file=/proc/$p/smaps_rollup; else file=/proc/$p/status; fi
        v=$(awk -v f="$field:" '$1==f {print $2; exit}' "$file" 2>/dev/null)
        total=$(( total + ${v:-0} ))
    done
    echo $total
}

nprocs() { tree_pids "$1" | wc -w; }

# Waits until a SOCKS server on port $1 forwards end to end (deadline ~10 s).
wait_ready() {
    local i
    for i in $(seq 1 100); do
        "$BIN" check -q -s "127.0.0.1:$1" -t 1000 >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

write_conf() { # file port
    cat >"$1" <<CONF
# written by bench/run-server.sh
logoutput: $TMP/$(basename "$1" .conf).log
internal: 127.0.0.1 port = $2
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
}
CONF
}

# measure_load NAME VIA... : throughput and sessions through VIA; sets M_<NAME>_<metric>.
measure_load() {
    local name=$1 out; shift
    log "[$name] throughput ($STREAMS streams, ${DURATION}s)"
    out=$("$BIN" bench "$@" --mode throughput --streams "$STREAMS" --duration "$DURATION" --json 2>>"$TMP/$name.err")
    eval "M_${name}_mbs=$(echo "$out" | jget mb_per_s)"
    eval "M_${name}_terr=$(echo "$out" | jget errors)"
    log "[$name] sessions ($CONCURRENCY workers, ${DURATION}s)"
    out=$("$BIN" bench "$@" --mode sessions --concurrency "$CONCURRENCY" --duration "$DURATION" --payload "$PAYLOAD" --json 2>>"$TMP/$name.err")
    eval "M_${name}_sps=$(echo "$out" | jget sessions_per_s)"
    eval "M_${name}_serr=$(echo "$out" | jget errors)"
    eval "M_${name}_p50=$(echo "$out" | jget p50_us)"
    eval "M_${name}_p99=$(echo "$out" | jget p99_us)"
}

# Waits (up to 70 s) until few TIME_WAIT sockets are left: Dante binds its
# external side to port 0 before connecting, which fails while earlier
# sessions' TIME_WAIT entries hold the ephemeral ports.
drain_time_wait() {
    local i n
    command -v ss >/dev/null || return 0
    for i in $(seq 1 140); do
        n=$(ss -Htan state time-wait 2>/dev/null | wc -l)
        [ "$n" -lt 1000 ] && return 0
        [ "$i" = 1 ] && log "waiting for $n TIME_WAIT sockets to expire..."
        sleep 0.5
    done
}

# measure_idle NAME PID VIA... : server memory around $IDLE idle sessions.
measure_idle() {
    local name=$1 pid=$2; shift 2
    local rss0 pss0 rss1 pss1 np bpid i open
    log "[$name] memory with $IDLE idle sessions"
    rss0=$(mem_kb "$pid" VmRSS); pss0=$(mem_kb "$pid" Pss)
    "$BIN" bench "$@" --mode idle --sessions "$IDLE" --concurrency 200 --payload "$PAYLOAD" --json >"$TMP/$name.idle" 2>>"$TMP/$name.err" &
    bpid=$!
    PIDS="$PIDS $bpid"
    open=""
    for i in $(seq 1 1200); do
        open=$(sed -n 's/^ready //p' "$TMP/$name.idle")
        [ -n "$open" ] && break
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    rss1=$(mem_kb "$pid" VmRSS); pss1=$(mem_kb "$pid" Pss); np=$(nprocs "$pid")
    kill -TERM "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null
    open=${open:-0}
    eval "M_${name}_open=$open M_${name}_procs=$np"
    eval "M_${name}_rss0=$rss0 M_${name}_rss1=$rss1 M_${name}_pss0=$pss0 M_${name}_pss1=$pss1"
    if [ "$open" -gt 0 ]; then
        eval "M_${name}_rssps=$(awk -v a="$rss0" -v b="$rss1" -v n="$open" 'BEGIN{printf "%.2f", (b-a)/n}')"
        eval "M_${name}_pssps=$(awk -v a="$pss0" -v b="$pss1" -v n="$open" 'BEGIN{printf "%.2f", (b-a)/n}')"
    fi
}

# Both servers run side by side for the whole script; memory is measured
# first, on fresh servers and before the load phases fill the port range.
DANTE_STATUS="not run"; DPID=""
if [ -x "$DANTED" ]; then
    DPORT=$(free_port)
    write_conf "$TMP/danted.conf" "$DPORT"
    "$DANTED" -f "$TMP/danted.conf" -N 2 >"$TMP/danted.out" 2>&1 &
    DPID=$!
    PIDS="$PIDS $DPID"
    if wait_ready "$DPORT" "$DPID"; then
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
write_conf "$TMP/hasocks.conf" "$HPORT"
"$BIN" server -f "$TMP/hasocks.conf" >"$TMP/hasocks.out" 2>&1 &
HPID=$!
PIDS="$PIDS $HPID"
if wait_ready "$HPORT" "$HPID"; then
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
if [ "$DANTE_STATUS" = ok ]; then drain_time_wait; measure_load dante -s "127.0.0.1:$DPORT"; fi
measure_load direct --direct
[ "$HAS_STATUS" = ok ] && measure_load hasocks -s "127.0.0.1:$HPORT"

# --- table ------------------------------------------------------------------
v() { eval "echo \${M_$1_$2:-n/a}"; }
ms() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v u="$x" 'BEGIN{printf "%.3f", u/1000}'; }
mib() { local x; x=$(v "$1" "$2"); [ "$x" = n/a ] && echo n/a || awk -v k="$x" 'BEGIN{printf "%.1f", k/1024}'; }
ratio() { # hasocks/Dante
    case "$1$2" in *n/a*|"") echo n/a; return;; esac
    awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0==0) print "n/a"; else printf "%.2f", a/b }'
}
row() { # label direct dante hasocks better
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3") ($5)"
}

DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
DVER=$("$DANTED" -v 2>&1 | head -n1 | sed 's/\. *Copyright.*//')
{
    echo "# hasocks server vs Dante: loopback benchmark"
    echo
    echo "- date: $DATE"
    echo "- machine: $(nproc) CPUs ($CPU), Linux $(uname -r); client, target and server share these CPUs"
    echo "- command: \`$COMMAND\`"
    echo "- Dante: $DVER, \`danted -f FILE -N 2\`; status: $DANTE_STATUS"
    echo "- hasocks: \`hasocks server -f FILE\` ($("$BIN" --version 2>/dev/null)); status: $HAS_STATUS"
    echo "- both servers read the same sockd.conf (internal/external 127.0.0.1, method none, pass rules, no session logging)"
    echo "- load: \`hasocks bench\` with its in-process target on 127.0.0.1; throughput = upload only (client -> target), counted at the target; sessions = connect + greeting + CONNECT + ${PAYLOAD}-byte echo + close"
    echo "- Dante binds its outgoing sockets to 127.0.0.1:0 before connecting, so ports held in TIME_WAIT by earlier sessions make it fail with 'out of free ports' (reply 03); the script waits for TIME_WAIT sockets to expire before each Dante phase. Under sustained load Dante's own TIME_WAITs still accumulate (28k ports / 60 s), which shows up as its errors."
    echo "- memory: $IDLE idle sessions requested (each CONNECTed, one echo done); RSS = VmRSS summed over the server's processes; PSS from smaps_rollup"
    [ -n "$IDLE_NOTE" ] && echo "- note: $IDLE_NOTE"
    echo
    echo "| metric | direct | Dante | hasocks | hasocks/Dante |"
    echo "|---|---|---|---|---|"
    row "throughput, $STREAMS streams, MB/s" "$(v direct mbs)" "$(v dante mbs)" "$(v hasocks mbs)" "higher is better"
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
} >"$TMP/results.md"
cat "$TMP/results.md"
cp "$TMP/results.md" "$RESULTS"
log "written to $RESULTS"
