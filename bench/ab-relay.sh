#!/usr/bin/env bash
# bench/ab-relay.sh - a quick A/B of relay builds or settings on one load: sessions/s, relay
# CPU per session and session latency p50/p99, per round and as medians. For a change's
# before/after where bench/run-relay.sh is too slow to repeat; the full comparison stays there.
#
#   bench/ab-relay.sh NAME=BIN[:EXTRA] ...
#     NAME   a label; BIN a hasocks binary; EXTRA lines put at the top of that relay's
#            relayd.conf (`\n` between lines), e.g. "off=target/release/hasocks:hasocks.timeout.firstbyte 0"
#   env: C=clients (1), D=seconds per run (8), R=rounds (6)
#
# Every relay forwards to the same two `hasocks server` backends (127.0.0.2, 127.0.0.3); the
# load comes from 127.0.0.10. The relays take turns at going first in a round: whichever runs
# first in a round is measurably slower on a 2-CPU machine, and rotating spreads that alike.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || { sed -n 2,13p "$0" >&2; exit 2; }
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
echo "# bench/ab-relay.sh $*  (C=$C D=$D R=$R)"
for r in $(seq 1 "$R"); do
    n=${#NAMES[@]}
    for i in $(seq 0 $((n - 1))); do
        name=${NAMES[$(((i + r - 1) % n))]}
        c0=$(cpu_ticks "${PID[$name]}")
        out=$("$HASOCKS_BIN" bench -s "127.0.0.1:${PORT[$name]}" --source 127.0.0.10 --mode sessions \
            --concurrency "$C" --duration "$D" --json 2>/dev/null || true)
        c1=$(cpu_ticks "${PID[$name]}")
        $PY - "$name" "$r" "$c0" "$c1" "$HZ" "$out" <<'PY'
import json, sys
name, r, c0, c1, hz, out = sys.argv[1:]
j = json.loads(out or "{}")
n = max(j.get("sessions", 0), 1)
us = (float(c1) - float(c0)) / float(hz) * 1e6 / n
print(f"{name} round {r}: {j.get('sessions_per_s', 0):.0f}/s cpu {us:.1f} us/session "
      f"p50 {j.get('p50_us')} p99 {j.get('p99_us')} us errors {j.get('errors')}")
PY
    done
done | tee "$TMP/rounds.txt"
echo "# medians over $R rounds"
$PY - "$TMP/rounds.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) round \d+: (\d+)/s cpu ([\d.]+) us/session p50 (\d+) p99 (\d+)", line)
    if m:
        runs.setdefault(m[1], []).append([float(x) for x in m.groups()[1:]])
for name, v in runs.items():
    med = [statistics.median(col) for col in zip(*v)]
    print(f"{name}: {med[0]:.0f} sessions/s, {med[1]:.1f} us CPU/session, p50 {med[2]:.0f} us, p99 {med[3]:.0f} us")
PY
