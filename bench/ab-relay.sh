#!/usr/bin/env bash
# bench/ab-relay.sh - a quick A/B of relay builds or settings on one load: sessions/s, relay
# CPU per session and session latency p50/p99, per round and as medians. For a change's
# before/after where bench/run-relay.sh is too slow to repeat; the full comparison stays there.
#
#   bench/ab-relay.sh NAME=BIN[:EXTRA] ...
#     NAME   a label; BIN a hasocks binary; EXTRA lines put at the top of that relay's
#            relayd.conf (`\n` between lines), e.g. "off=target/release/hasocks:hasocks.timeout.firstbyte 0"
#   env: C=clients (1), D=seconds per run (8), R=rounds (6),
#        PIN=CPUS  run everything (backends, relays, load) under `taskset -c CPUS`,
#        SYSCALLS=1  count the relay's system calls per session (perf stat tracepoints)
#
# Every relay forwards to the same two `hasocks server` backends (127.0.0.2, 127.0.0.3); the
# load comes from 127.0.0.10. The relays take turns at going first in a round: whichever runs
# first in a round is measurably slower on a 2-CPU machine, and rotating spreads that alike.
# A permutation test on the rounds' p99s tells whether each relay's p99 differs from the
# first one's by more than round-to-round noise.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || { sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2; }
# One CPU for everything takes this VM's cross-CPU wake-up latency out of the tail: unpinned,
# a round's one-client p99 is either about 0.8 ms or 2-3 ms, for every build alike.
if [ -n "${PIN:-}" ] && [ -z "${AB_PINNED:-}" ]; then
    AB_PINNED=1 exec taskset -c "$PIN" "$0" "$@"
fi
need_hasocks
C=${C:-1} D=${D:-8} R=${R:-6}
bench_tmp hasocks-ab-relay

BPORT=$(free_port)
for a in 127.0.0.2 127.0.0.3; do
    printf 'internal: %s port = %s\nexternal: %s\nclientmethod: none\nsocksmethod: none\nclient pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n' \
        "$a" "$BPORT" "$a" >"$TMP/server-$a.conf"
    "$HASOCKS_BIN" server -f "$TMP/server-$a.conf" >"$TMP/server-$a.out" 2>&1 &
    track $!
    wait_socks "$a:$BPORT" $! 150 || { log "backend $a did not start"; exit 1; }
done

declare -A PORT PID
NAMES=()
for spec in "$@"; do
    name=${spec%%=*} rest=${spec#*=}
    bin=${rest%%:*} extra=""
    [ "$rest" != "$bin" ] && extra=${rest#*:}
    [ -x "$bin" ] || { log "$name: no binary at $bin"; exit 1; }
    port=$(free_port)
    {
        printf '%b\n' "$extra"
        printf 'interval 1\ntimeout 500\ntable <socks> { 127.0.0.2, 127.0.0.3 }\n'
        printf 'relay "ab" {\n listen on 127.0.0.1 port %s\n session timeout 600\n' "$port"
        printf ' forward to <socks> port %s mode source-hash check tcp\n}\n' "$BPORT"
    } >"$TMP/$name.conf"
    "$bin" relay -f "$TMP/$name.conf" >"$TMP/$name.out" 2>&1 &
    PID[$name]=$!
    track $!
    wait_socks "127.0.0.1:$port" $! 150 || { log "$name did not start: $(tail -n 3 "$TMP/$name.out")"; exit 1; }
    PORT[$name]=$port
    NAMES+=("$name")
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "# bench/ab-relay.sh $*  (C=$C D=$D R=$R${PIN:+ PIN=$PIN}${SYSCALLS:+ SYSCALLS=1})"
for r in $(seq 1 "$R"); do
    n=${#NAMES[@]}
    for i in $(seq 0 $((n - 1))); do
        name=${NAMES[$(((i + r - 1) % n))]}
        rm -f "$TMP/perf.csv"
        if [ -n "${SYSCALLS:-}" ]; then
            perf stat -x, -o "$TMP/perf.csv" -e raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait \
                -p "${PID[$name]}" &
            perf=$!
            sleep 0.2
        fi
        c0=$(cpu_ticks "${PID[$name]}")
        out=$("$HASOCKS_BIN" bench -s "127.0.0.1:${PORT[$name]}" --source 127.0.0.10 --mode sessions \
            --concurrency "$C" --duration "$D" --json 2>/dev/null || true)
        c1=$(cpu_ticks "${PID[$name]}")
        if [ -n "${SYSCALLS:-}" ]; then
            kill -INT "$perf" && wait "$perf" || true
        fi
        $PY - "$name" "$r" "$c0" "$c1" "$HZ" "$out" "$TMP/perf.csv" <<'PY'
import json, os, sys
name, r, c0, c1, hz, out, perf = sys.argv[1:]
j = json.loads(out or "{}")
n = max(j.get("sessions", 0), 1)
us = (float(c1) - float(c0)) / float(hz) * 1e6 / n
line = (f"{name} round {r}: {j.get('sessions_per_s', 0):.0f}/s cpu {us:.1f} us/session "
        f"p50 {j.get('p50_us')} p99 {j.get('p99_us')} us errors {j.get('errors')}")
if os.path.exists(perf):
    count = {}
    for row in open(perf):
        f = row.split(",")
        if len(f) > 2 and f[0].isdigit():
            count[f[2]] = int(f[0])
    # The counts include the 0.2 s before the load and the checks; at 1,000s of sessions
    # per second both are noise.
    line += (f" syscalls {count.get('raw_syscalls:sys_enter', 0) / n:.2f}"
             f" epoll_wait {count.get('syscalls:sys_enter_epoll_wait', 0) / n:.2f}")
print(line)
PY
    done
done | tee "$TMP/rounds.txt"
echo "# medians over $R rounds"
$PY - "$TMP/rounds.txt" <<'PY'
import random, re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) round \d+: (\d+)/s cpu ([\d.]+) us/session p50 (\d+) p99 (\d+)"
                 r".*?(?: syscalls ([\d.]+) epoll_wait ([\d.]+))?$", line.rstrip())
    if m:
        runs.setdefault(m[1], []).append([float(x) if x else 0.0 for x in m.groups()[1:]])
for name, v in runs.items():
    med = [statistics.median(col) for col in zip(*v)]
    extra = f", {med[4]:.2f} syscalls/session ({med[5]:.2f} epoll_wait)" if med[4] else ""
    print(f"{name}: {med[0]:.0f} sessions/s, {med[1]:.1f} us CPU/session, p50 {med[2]:.0f} us, p99 {med[3]:.0f} us{extra}")
# Is a p99 difference from the first relay more than round-to-round noise? A permutation test
# on the rounds' p99s: how often a random relabelling gives a median difference this large.
names = list(runs)
random.seed(1)
for name in names[1:]:
    a = [r[3] for r in runs[names[0]]]
    b = [r[3] for r in runs[name]]
    diff = statistics.median(a) - statistics.median(b)
    pool, hits, n = a + b, 0, 20000
    for _ in range(n):
        random.shuffle(pool)
        if abs(statistics.median(pool[:len(a)]) - statistics.median(pool[len(a):])) >= abs(diff):
            hits += 1
    print(f"p99 {names[0]} minus {name}: {diff:+.0f} us, permutation p = {hits / n:.2f}"
          " (above 0.05: not told apart from noise)")
PY
