#!/usr/bin/env bash
# bench/udp/run.sh - UDP ASSOCIATE throughput, hasocks against Dante in the same run, on loopback.
#
# For each server (hasocks server, release build; Debian's danted) and each case
# (1 association / 50 concurrent associations) x (64-byte / 1400-byte payloads), runs
# `hasocks bench --mode udp` (crates/loadgen/src/udp.rs) for DURATION seconds: it opens the
# associations, keeps WINDOW datagrams in flight on each towards its own UDP echo server on
# 127.0.0.1 (client side and echo server receive up to BATCH datagrams per call and send equal
# ones in one GSO call; BATCH=1 is one datagram per call), and counts echoed datagrams (each
# one crossed the proxy twice). Then, against hasocks only, a flood of wrong-source and
# malformed datagrams into one association, with the server's RSS and open
# descriptors before and after (memory must stay flat; the sockets go with the association).
# Writes a markdown section to bench/results/udp.md (RESULTS=... to change), merged into
# bench/RESULTS.md by bench/merge.sh.
#
# Usage: bench/udp/run.sh    Env: HASOCKS_BIN (else built with cargo --release; it is both the
#        server under test and the load generator),
#        DANTED=/usr/sbin/danted DURATION=5 WINDOW=32 BATCH=32 FLOOD_SECS=5
# Run as root (Dante wants user.privileged: root). Loopback only.
set -u
. "$(dirname "$0")/../lib.sh"
DURATION=${DURATION:-5}
WINDOW=${WINDOW:-32}
BATCH=${BATCH:-32}
FLOOD_SECS=${FLOOD_SECS:-5}
DANTED=${DANTED:-/usr/sbin/danted}
RESULTS=${RESULTS:-$REPO/bench/results/udp.md}
record_command bench/udp/run.sh "$@"

need_hasocks
bench_tmp hasocks-udpbench

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
nfd() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
declare -A DPS MBIT PERCPU
run_server() { # NAME
    local name=$1 port pid
    port=$(free_port)
    sockd_conf 127.0.0.1 "$port" "$TMP/$name.out" >"$TMP/$name.conf"
    if [ "$name" = hasocks ]; then
        "$HASOCKS_BIN" server -f "$TMP/$name.conf" 2>"$TMP/$name.log" &
    else
        "$DANTED" -f "$TMP/$name.conf" 2>"$TMP/$name.log" &
    fi
    pid=$!
    track "$pid"
    wait_port "$port" "$pid" || { log "$name did not start"; cat "$TMP/$name.log" >&2; return 1; }
    for assoc in 1 50; do
        for size in 64 1400; do
            local out cpu
            out=$(run_cpu "$TMP/cpu" "$pid" -- "$HASOCKS_BIN" bench --mode udp -s "127.0.0.1:$port" --concurrency "$assoc" --duration "$DURATION" --payload "$size" --window "$WINDOW" --batch "$BATCH" 2>>"$TMP/load.err")
            cpu=$(cat "$TMP/cpu")
            log "$name: $out server_cpu_s=$cpu"
            PERCPU[$name,$assoc,$size]=$(echo " $out" | awk -v c="$cpu" '{ for (i = 1; i <= NF; i++) if ($i ~ /^echoes=/) { split($i, kv, "="); if (c > 0) printf "%.0f", kv[2] / c; else print "n/a" } }')
            DPS[$name,$assoc,$size]=$(echo " $out" | field dgram_per_s)
            MBIT[$name,$assoc,$size]=$(echo " $out" | field mbit_per_s)
        done
    done
    if [ "$name" = hasocks ]; then flood "$port" "$pid"; fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

FLOOD_LINE=""
flood() { # PORT PID: wrong-source + malformed flood into one association; RSS/fds around it
    local port=$1 pid=$2 rss0 fd0 rss1 fd1 rss2 fd2
    rss0=$(mem_kb VmRSS "$pid"); fd0=$(nfd "$pid")
    local res
    res=$($PY - "$port" "$FLOOD_SECS" "$pid" <<'EOF'
import socket, struct, sys, time
port, secs, pid = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def rss():
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS"): return int(l.split()[1])
ctl = socket.create_connection(("127.0.0.1", port))
ctl.sendall(b"\x05\x01\x00")
assert ctl.recv(2) == b"\x05\x00"
me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); me.bind(("127.0.0.1", 0))
ctl.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", me.getsockname()[1]))
r = ctl.recv(10); bnd = (socket.inet_ntoa(r[4:8]), struct.unpack(">H", r[8:10])[0])
wrong = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); wrong.bind(("127.0.0.2", 0))
good_hdr = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x09"
bad = [good_hdr + b"x" * 1400, b"\x00\x00\x00\x01\x7f", b"\x00\x00\x07\x01" + good_hdr[4:] + b"frag", b"\x00\x00\x00\x09zz"]
n = 0; end = time.time() + secs; mid = None
while time.time() < end:
    for d in bad:                    # from a wrong source: all dropped
        try: wrong.sendto(d, bnd); n += 1
        except OSError: pass
    for d in bad[1:]:                # from the right source, malformed/fragmented: dropped
        try: me.sendto(d, bnd); n += 1
        except OSError: pass
    if mid is None and time.time() > end - secs / 2: mid = rss()
print(n, mid, rss())
ctl.close()
EOF
)
    local sent mid after
    read -r sent mid after <<<"$res"
    # The association's sockets go with its control connection.
    for _ in $(seq 1 50); do [ "$(nfd "$pid")" -le "$fd0" ] && break; sleep 0.1; done
    rss2=$(mem_kb VmRSS "$pid"); fd2=$(nfd "$pid")
    FLOOD_LINE="flood of $sent bad datagrams in ${FLOOD_SECS} s into one hasocks association: RSS ${rss0} kB before, ${mid} kB halfway, ${after} kB at the end, ${rss2} kB after the association closed; open descriptors ${fd0} before, ${fd2} after"
    log "$FLOOD_LINE"
}

run_server hasocks || exit 1
run_server dante || exit 1

{
    echo "## UDP ASSOCIATE through hasocks vs Dante"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine), loopback"
    echo "- command: \`$COMMAND\`"
    echo
    echo "hasocks: $HASOCKS_BIN (release). Dante: $("$DANTED" -v 2>&1 | head -n1 | sed 's/\. *Copyright.*//')."
    echo "Load: \`hasocks bench --mode udp\`, ${DURATION} s per case, window ${WINDOW} datagrams"
    echo "per association, echo server on 127.0.0.1 in the load process; both ends receive up to"
    echo "${BATCH} datagrams per call and send a run of equal datagrams to one peer in one UDP GSO call"
    echo "(the kernel splits it before any socket sees it). A datagram/s = one echoed"
    echo "datagram (it crossed the proxy twice); Mbit/s = echoed payload bits per second."
    echo "The generator, the echo server and the proxy share the same CPUs."
    echo
    echo "| case | payload | hasocks dgram/s | Dante dgram/s | ratio | hasocks Mbit/s | Dante Mbit/s | hasocks dgram per server CPU-s | Dante dgram per server CPU-s | ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for assoc in 1 50; do
        for size in 64 1400; do
            echo "| $assoc association(s) | $size B | ${DPS[hasocks,$assoc,$size]} | ${DPS[dante,$assoc,$size]} | $(ratio "${DPS[hasocks,$assoc,$size]}" "${DPS[dante,$assoc,$size]}") | ${MBIT[hasocks,$assoc,$size]} | ${MBIT[dante,$assoc,$size]} | ${PERCPU[hasocks,$assoc,$size]} | ${PERCPU[dante,$assoc,$size]} | $(ratio "${PERCPU[hasocks,$assoc,$size]}" "${PERCPU[dante,$assoc,$size]}") |"
        done
    done
    echo
    echo "\"per server CPU-s\": echoed datagrams divided by the CPU time the server used during the"
    echo "case - its efficiency, independent of what the generator costs. CPU time: $CPU_NOTE."
    echo
    echo "Memory under a flood: $FLOOD_LINE."
    echo
    echo "Load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg) (anything above the CPU count"
    echo "means other work shared the machine and the dgram/s columns are low for both servers)."
} >"$TMP/results.md"
publish "$RESULTS"
