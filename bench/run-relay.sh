#!/usr/bin/env bash
# bench/run-relay.sh - layer-4 relays in front of the same two SOCKS backends, on loopback:
#   (a) direct: SOCKS straight to one backend (the reference line, no relay),
#   (b) HAProxy 2.6, `mode tcp`, `balance source`, `check` (inter 1s),
#   (c) hasocks relay, `mode source-hash check tcp` (interval 1),
# measured with `hasocks bench`, and a markdown table with hasocks/HAProxy ratios written to
# bench/RESULTS-relay.md.
#
# Backends: two `hasocks server` instances on 127.0.0.2 and 127.0.0.3 (same port), so the
# backend is not the bottleneck and both relays forward to identical hosts. All load comes
# from 127.0.0.1, so both source-hash relays send it all to one backend (which one may differ).
#
# Loads (each DURATION s; every load repeated ROUNDS times - direct first, then HAProxy and
# hasocks alternating which goes first - means reported):
#   throughput: upload on STREAMS streams, counted at bench's in-process target;
#   sessions:   CONCURRENCY workers, each connect + greeting + CONNECT + PAYLOAD-byte echo + close;
#   latency:    the same session with one worker (no queueing: the added latency of a hop);
#   memory:     IDLE sessions held open through the relay; VmRSS of the relay before/after.
#
# Usage: bench/run-relay.sh            (builds the release hasocks first)
# Env:   HASOCKS_BIN=path  use this binary      HAPROXY=path (default haproxy on PATH)
#        DURATION=10 STREAMS=8 CONCURRENCY=50 IDLE=10000 PAYLOAD=64 ROUNDS=2
#        RESULTS=bench/RESULTS-relay.md
# Runtime ~4 minutes with the defaults.
set -u

cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-8}
CONCURRENCY=${CONCURRENCY:-50}
IDLE=${IDLE:-10000}
PAYLOAD=${PAYLOAD:-64}
ROUNDS=${ROUNDS:-2}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
RESULTS=${RESULTS:-$REPO/bench/RESULTS-relay.md}
COMMAND="bench/run-relay.sh $*"
[ -n "${HASOCKS_BIN:-}" ] && COMMAND="HASOCKS_BIN=$HASOCKS_BIN $COMMAND"

# IDLE sessions need 2*IDLE descriptors in the relay, in the backend and in the bench client
# (its own end + its in-process target's end).
ulimit -n 100000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
FIT=$(((NOFILE - 1000) / 2))
IDLE_NOTE=""
if [ "$IDLE" -gt "$FIT" ]; then
    IDLE_NOTE="idle sessions reduced from $IDLE to $FIT: the hard RLIMIT_NOFILE here is $NOFILE (ulimit -n 100000 was refused), and each session costs 2 descriptors in the relay, the backend and the client"
    IDLE=$FIT
fi
HAPROXY_MAXCONN=$((IDLE + 200))

log() { printf '%s\n' "$*" >&2; }

if [ -z "${HASOCKS_BIN:-}" ]; then
    log "building hasocks (release)..."
    cargo build --release -p hasocks >&2 || { log "cargo build failed"; exit 1; }
    HASOCKS_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/hasocks"
fi
BIN=$HASOCKS_BIN
[ -x "$BIN" ] || { log "no hasocks binary at $BIN"; exit 1; }
[ -x "$HAPROXY" ] || { log "no haproxy at $HAPROXY"; exit 1; }

TMP=$(mktemp -d /tmp/hasocks-bench-relay.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port free on 127.0.0.1 (retried: loopback ephemeral ports can run out for a moment).
free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null) &&
            { echo "$p"; return 0; }
        sleep 0.1
    done
    echo $((20000 + RANDOM % 10000))
}

# Value of a field in a one-line JSON object.
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -n1; }

rss_kb() { awk '$1=="VmRSS:" {print $2; exit}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Until a SOCKS session through HOST:PORT works end to end (deadline ~15 s).
wait_ready() { # PORT PID
    local i
    for i in $(seq 1 150); do
        "$BIN" check -q -s "$1" -t 1000 >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- backends -------------------------------------------------------------------------------
BPORT=$(free_port)
backend_conf() { # ADDR
    cat <<CONF
# written by bench/run-relay.sh
logoutput: $TMP/backend-$1.log
internal: $1 port = $BPORT
external: $1
clientmethod: none
socksmethod: none
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
}
CONF
}
for a in 127.0.0.2 127.0.0.3; do
    backend_conf $a >"$TMP/backend-$a.conf"
    "$BIN" server -f "$TMP/backend-$a.conf" >"$TMP/backend-$a.out" 2>&1 &
    PIDS="$PIDS $!"
    wait_ready "$a:$BPORT" $! || { log "backend $a did not start: $(tail -n 3 "$TMP/backend-$a.out")"; exit 1; }
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
PIDS="$PIDS $HA_PID"
wait_ready "127.0.0.1:$HPORT" "$HA_PID" || { log "haproxy did not start: $(tail -n 5 "$TMP/haproxy.out")"; exit 1; }

# --- hasocks relay --------------------------------------------------------------------------
RPORT=$(free_port)
cat >"$TMP/relayd.conf" <<CONF
# written by bench/run-relay.sh
interval 1
timeout 500
table <socks> { 127.0.0.2, 127.0.0.3 }
relay "bench" {
    listen on 127.0.0.1 port $RPORT
    session timeout 600
    forward to <socks> port $BPORT mode source-hash check tcp
}
CONF
"$BIN" relay -f "$TMP/relayd.conf" >"$TMP/relay.out" 2>&1 &
RE_PID=$!
PIDS="$PIDS $RE_PID"
wait_ready "127.0.0.1:$RPORT" "$RE_PID" || { log "relay did not start: $(tail -n 5 "$TMP/relay.out")"; exit 1; }

# --- measurements ---------------------------------------------------------------------------
# Appends one value per run to $TMP/NAME.METRIC; means are taken at the end.
put() { echo "$3" >>"$TMP/$1.$2"; }
bench() { # NAME ARGS...
    local name=$1 out
    shift
    log "[$name] throughput ($STREAMS streams, ${DURATION}s)"
    out=$("$BIN" bench "$@" --mode throughput --streams "$STREAMS" --duration "$DURATION" --json 2>>"$TMP/$name.err")
    put "$name" mbs "$(echo "$out" | jget mb_per_s)"
    put "$name" terr "$(echo "$out" | jget errors)"
}
sessions() { # NAME CONCURRENCY KIND ARGS...
    local name=$1 c=$2 kind=$3 out
    shift 3
    log "[$name] $kind ($c concurrent, ${DURATION}s)"
    out=$("$BIN" bench "$@" --mode sessions --concurrency "$c" --duration "$DURATION" --payload "$PAYLOAD" --json 2>>"$TMP/$name.err")
    put "$name" "${kind}_sps" "$(echo "$out" | jget sessions_per_s)"
    put "$name" "${kind}_err" "$(echo "$out" | jget errors)"
    put "$name" "${kind}_p50" "$(echo "$out" | jget p50_us)"
    put "$name" "${kind}_p99" "$(echo "$out" | jget p99_us)"
}
all_loads() { # NAME ARGS...
    local name=$1
    shift
    bench "$name" "$@"
    sessions "$name" "$CONCURRENCY" load "$@"
    sessions "$name" 1 lat "$@"
}

memory() { # NAME PID PORT
    local name=$1 pid=$2 bpid i open rss0 rss1
    log "[$name] memory with $IDLE open sessions"
    rss0=$(rss_kb "$pid")
    "$BIN" bench -s "127.0.0.1:$3" --mode idle --sessions "$IDLE" --concurrency 200 --payload "$PAYLOAD" --json \
        >"$TMP/$name.idle" 2>>"$TMP/$name.err" &
    bpid=$!
    PIDS="$PIDS $bpid"
    open=""
    for i in $(seq 1 1800); do
        open=$(sed -n 's/^ready //p' "$TMP/$name.idle")
        [ -n "$open" ] && break
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    rss1=$(rss_kb "$pid")
    kill -TERM "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    open=${open:-0}
    put "$name" open "$open"
    put "$name" rss0 "$rss0"
    put "$name" rss1 "$rss1"
    [ "$open" -gt 0 ] && put "$name" rssps "$(awk -v a="$rss0" -v b="$rss1" -v n="$open" 'BEGIN{printf "%.2f", (b-a)/n}')"
    # Let the held sessions close before the next load.
    sleep 2
}

START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
    log "== round $r of $ROUNDS"
    # Direct in every round (added latency compares like with like); the relays alternate
    # which goes first, so a drift in machine load hits both alike.
    if [ $((r % 2)) -eq 1 ]; then order="direct haproxy hasocks"; else order="direct hasocks haproxy"; fi
    for who in $order; do
        case $who in
            direct) target="127.0.0.2:$BPORT" ;;
            haproxy) target="127.0.0.1:$HPORT" ;;
            *) target="127.0.0.1:$RPORT" ;;
        esac
        all_loads "$who" -s "$target"
    done
done
memory haproxy "$HA_PID" "$HPORT"
memory hasocks "$RE_PID" "$RPORT"
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
ratio() { # hasocks/HAProxy
    case "$1$2" in *n/a* | "") echo n/a; return ;; esac
    awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0==0) print "n/a"; else printf "%.2f", a/b }'
}
row() { # LABEL DIRECT HAPROXY HASOCKS NOTE
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$4" "$3") ($5)"
}

DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
HAVER=$("$HAPROXY" -v 2>&1 | head -n1)
{
    echo "## hasocks relay vs HAProxy: loopback benchmark"
    echo
    echo "- date: $DATE; total run ${ELAPSED} s"
    echo "- machine: $(nproc) CPUs ($CPU), Linux $(uname -r); bench client, target, backends and relay share these CPUs; load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo "- command: \`$COMMAND\` (hasocks $("$BIN" --version 2>/dev/null | awk '{print $2}'), release build)"
    echo "- backends: two \`hasocks server\` on 127.0.0.2:$BPORT and 127.0.0.3:$BPORT (method none, pass rules, no session logging); the load comes from 127.0.0.1, so each source-hash relay forwards it all to one backend"
    echo "- (a) direct: \`hasocks bench -s 127.0.0.2:$BPORT\` (no relay)"
    echo "- (b) $HAVER: \`haproxy -db -f haproxy.cfg\`, \`mode tcp\`, \`balance source\`, \`server ... check inter 1s\`, global \`maxconn $HAPROXY_MAXCONN\`, otherwise defaults (threads = CPUs, no splicing); status at the end: alive=$HA_ALIVE"
    echo "- (c) \`hasocks relay -f relayd.conf\`: \`interval 1\`, \`timeout 500\`, \`forward to <socks> port $BPORT mode source-hash check tcp\`; status at the end: alive=$RELAY_ALIVE"
    echo "- loads (\`hasocks bench --json\`, ${DURATION} s each): throughput = upload on $STREAMS streams counted at bench's in-process target; sessions = $CONCURRENCY workers doing connect + greeting + CONNECT + ${PAYLOAD}-byte echo + close; latency = the same session with 1 worker (p50/p99 of the whole session; added = relay minus direct); every load run $ROUNDS times (direct, then HAProxy and hasocks alternating first), means shown, each run in the details; a negative added latency means the difference is below this machine's noise"
    echo "- memory: $IDLE sessions opened through the relay and held (\`--mode idle\`); VmRSS of the relay process before and with them open"
    [ -n "$IDLE_NOTE" ] && echo "- note: $IDLE_NOTE"
    echo
    echo "| metric | direct | HAProxy | hasocks relay | hasocks/HAProxy |"
    echo "|---|---|---|---|---|"
    row "throughput, $STREAMS streams, MB/s" "$(v direct mbs)" "$(v haproxy mbs)" "$(v hasocks mbs)" "higher is better"
    row "sessions/s, $CONCURRENCY concurrent" "$(v direct load_sps)" "$(v haproxy load_sps)" "$(v hasocks load_sps)" "higher is better"
    row "session latency p50 at $CONCURRENCY concurrent, ms" "$(ms direct load_p50)" "$(ms haproxy load_p50)" "$(ms hasocks load_p50)" "lower is better"
    row "session latency p99 at $CONCURRENCY concurrent, ms" "$(ms direct load_p99)" "$(ms haproxy load_p99)" "$(ms hasocks load_p99)" "lower is better"
    row "session latency p50, 1 worker, ms" "$(ms direct lat_p50)" "$(ms haproxy lat_p50)" "$(ms hasocks lat_p50)" "lower is better"
    row "session latency p99, 1 worker, ms" "$(ms direct lat_p99)" "$(ms haproxy lat_p99)" "$(ms hasocks lat_p99)" "lower is better"
    row "added latency p50, 1 worker, ms" "-" "$(added haproxy lat_p50)" "$(added hasocks lat_p50)" "lower is better"
    row "added latency p99, 1 worker, ms" "-" "$(added haproxy lat_p99)" "$(added hasocks lat_p99)" "lower is better"
    row "added latency p50 at $CONCURRENCY concurrent, ms" "-" "$(added haproxy load_p50)" "$(added hasocks load_p50)" "lower is better"
    row "added latency p99 at $CONCURRENCY concurrent, ms" "-" "$(added haproxy load_p99)" "$(added hasocks load_p99)" "lower is better"
    printf '| errors (throughput + sessions + latency runs, per round) | %s | %s | %s | - |\n' \
        "$(all direct terr)+$(all direct load_err)+$(all direct lat_err)" \
        "$(all haproxy terr)+$(all haproxy load_err)+$(all haproxy lat_err)" \
        "$(all hasocks terr)+$(all hasocks load_err)+$(all hasocks lat_err)"
    row "sessions held open" "-" "$(v haproxy open)" "$(v hasocks open)" "should be equal"
    row "relay RSS before, MiB" "-" "$(mib haproxy rss0)" "$(mib hasocks rss0)" "lower is better"
    row "relay RSS with the sessions open, MiB" "-" "$(mib haproxy rss1)" "$(mib hasocks rss1)" "lower is better"
    row "relay RSS per open session, KiB" "-" "$(v haproxy rssps)" "$(v hasocks rssps)" "lower is better"
    echo
    echo "Each run (round 1/round 2/...):"
    echo
    for who in direct haproxy hasocks; do
        echo "- $who: MB/s $(all "$who" mbs); sessions/s $(all "$who" load_sps); p50/p99 us at $CONCURRENCY: $(all "$who" load_p50) / $(all "$who" load_p99); p50/p99 us with 1 worker: $(all "$who" lat_p50) / $(all "$who" lat_p99)"
    done
} >"$TMP/results.md"
cat "$TMP/results.md"
cp "$TMP/results.md" "$RESULTS"
log "written to $RESULTS"
