#!/usr/bin/env bash
# bench/run-redirect.sh - relayd's `redirect` (the kernel forwards: nftables DNAT +
# conntrack) against the user-space relay, HAProxy and a direct line, in one run, in the same
# network namespaces (made and removed here; 10.79.10-12.x, names hsr-b*):
#   hsr-bc   client 10.79.11.10 (hasocks bench and its in-process target)
#   hsr-br   router 10.79.11.1 / 10.79.12.1, VIP 10.79.10.100:
#            redirect on :1080, hasocks relay on :1081, HAProxy (mode tcp) on :1082
#   hsr-bs1, hsr-bs2  hasocks server on 10.79.12.11 / .12, routed through the router
# Every line goes client -> router -> server -> target (back in the client namespace), so
# the direct line (SOCKS straight to a server, plain routing) is the floor the redirect is
# held to. Figures: sessions/s (CONCURRENCY workers, connect + greeting + CONNECT + PAYLOAD-byte
# echo + close), throughput (STREAMS upload streams), CPU per session of the process in the
# middle (relay, HAProxy; none for the redirect and direct) and of the whole machine (softirq
# included: that is where the kernel's forwarding shows).
# HAProxy (mode tcp) forwards to the one server the redirect gives the client address, as
# the relay and direct lines do; rounds alternate the order of the lines.
# The router's conntrack TIME_WAIT is cut to 2 s (see below).
# Usage: bench/run-redirect.sh   Env: HASOCKS_BIN, HAPROXY, DURATION=8 CONCURRENCY=50
#        STREAMS=4 PAYLOAD=64 ROUNDS=2 RESULTS=bench/results/redirect.md
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HASOCKS_BIN:-$REPO/target/release/hasocks}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
DURATION=${DURATION:-8} CONCURRENCY=${CONCURRENCY:-50} STREAMS=${STREAMS:-4} PAYLOAD=${PAYLOAD:-64}
ROUNDS=${ROUNDS:-2}
RESULTS=${RESULTS:-$REPO/bench/results/redirect.md}
TMP=$(mktemp -d /tmp/hasocks-bench-redirect.XXXXXX)
VIP=10.79.10.100 CLIENT=10.79.11.10
NS="hsr-bc hsr-br hsr-bs1 hsr-bs2"
log() { echo "[run-redirect] $*" >&2; }
[ -x "$BIN" ] || { log "no hasocks at $BIN (cargo build --release -p hasocks, or set HASOCKS_BIN)"; exit 1; }
[ -x "$HAPROXY" ] || { log "no haproxy at $HAPROXY"; exit 1; }

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.5
    for n in $NS; do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$n" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
for n in $NS; do ip netns del "$n" 2>/dev/null; ip netns add "$n"; ip -n "$n" link set lo up; done
x() { local n=$1; shift; ip netns exec "$n" "$@"; }
ip link add hsr-brc netns hsr-br type veth peer name eth0 netns hsr-bc
x hsr-br ip addr add 10.79.11.1/24 dev hsr-brc; x hsr-br ip link set hsr-brc up
x hsr-br ip addr add $VIP/32 dev lo; x hsr-br sysctl -qw net.ipv4.ip_forward=1
# Every line's flows cross the router's conntrack (the server -> target ones too), some
# 4000 a second: with the default 120 s TIME_WAIT the machine's table (262144) fills within
# the run and drops SYNs. A director doing NAT is tuned so (LVS has its own short timeouts).
modprobe nf_conntrack 2>/dev/null
x hsr-br sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=2
x hsr-bc ip addr add $CLIENT/24 dev eth0; x hsr-bc ip link set eth0 up
x hsr-bc ip route add default via 10.79.11.1
x hsr-br ip link add br0 type bridge; x hsr-br ip addr add 10.79.12.1/24 dev br0; x hsr-br ip link set br0 up
for i in 1 2; do
    ip link add hsr-bs$i netns hsr-br type veth peer name eth0 netns hsr-bs$i
    x hsr-br ip link set hsr-bs$i master br0 up
    x hsr-bs$i ip addr add 10.79.12.1$i/24 dev eth0; x hsr-bs$i ip link set eth0 up
    x hsr-bs$i ip route add default via 10.79.12.1
    cat >"$TMP/s$i.conf" <<EOF
internal: 10.79.12.1$i port = 1080
external: 10.79.12.1$i
hasocks.socket: $TMP/s$i.sock
clientmethod: none
socksmethod: none
client pass { from: 0/0 to: 0/0 }
socks pass { from: 0/0 to: 0/0 command: connect }
EOF
    x hsr-bs$i "$BIN" server -f "$TMP/s$i.conf" >"$TMP/s$i.log" 2>&1 &
    PIDS+=($!)
done
for n in $NS; do x "$n" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1; done
cat >"$TMP/relayd.conf" <<EOF
interval 1
socket "$TMP/relay.sock"
table <socks> { 10.79.12.11, 10.79.12.12 }
redirect "socks" {
    listen on $VIP port 1080
    forward to <socks> port 1080 mode source-hash check tcp
}
relay "user" {
    listen on $VIP port 1081
    forward to <socks> port 1080 mode source-hash check tcp
}
EOF
x hsr-br "$BIN" relay -f "$TMP/relayd.conf" >"$TMP/relay.log" 2>&1 &
PIDS+=($!)
sleep 3
RELAY_PID=$(for p in $(ip netns pids hsr-br); do tr '\0' ' ' </proc/$p/cmdline | grep -q "relay -f" && echo "$p"; done | head -1)
x hsr-br nft -j list map inet hasocks r0_0 >/dev/null || { log "redirect not in the kernel"; cat "$TMP/relay.log"; exit 1; }
# The direct line uses the server the redirect gives the client's address: one connection
# through the redirect, and conntrack says where it went.
x hsr-bc python3 -c "import socket; s=socket.create_connection(('$VIP', 1080), 3, ('$CLIENT', 0)); s.close()"
DIRECT=$(x hsr-br conntrack -L -p tcp --orig-dst $VIP --orig-port-dst 1080 2>/dev/null |
    sed -n 's/.* src=\(10\.79\.12\.[0-9]*\) .*/\1/p' | head -1)
[ -n "$DIRECT" ] || { log "cannot tell the redirect's server for $CLIENT"; exit 1; }
log "the client's server: $DIRECT"
# HAProxy forwards to that same server: every line then works one server (a server that
# served more sessions, with more TIME_WAIT sockets, is slower; it must not favour a line).
cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen socks
    bind $VIP:1082
    server s1 $DIRECT:1080 check inter 1s
EOF
x hsr-br "$HAPROXY" -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!)
sleep 2
HAP_PID=$(for p in $(ip netns pids hsr-br); do tr '\0' ' ' </proc/$p/cmdline | grep -q "haproxy" && echo "$p"; done | head -1)

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
HZ=$(getconf CLK_TCK)
one() { # NAME PID MODE ARGS... -> appends "name mode value cpu_proc_us cpu_sys_us" to $TMP/rows
    local name=$1 pid=$2 mode=$3 out p0 p1 s0 s1
    shift 3
    p0=$([ -n "$pid" ] && proc_ticks "$pid" || echo 0); s0=$(sys_busy)
    if [ "$mode" = sessions ]; then
        out=$(x hsr-bc "$BIN" bench "$@" --source $CLIENT --target-bind $CLIENT --mode sessions \
            --concurrency "$CONCURRENCY" --duration "$DURATION" --payload "$PAYLOAD" --json 2>>"$TMP/bench.err")
    else
        out=$(x hsr-bc "$BIN" bench "$@" --source $CLIENT --target-bind $CLIENT --mode throughput \
            --streams "$STREAMS" --duration "$DURATION" --json 2>>"$TMP/bench.err")
    fi
    p1=$([ -n "$pid" ] && proc_ticks "$pid" || echo 0); s1=$(sys_busy)
    echo "$out" | python3 -c '
import json,sys
name,mode,pt,st,hz=sys.argv[1],sys.argv[2],int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5])
o=json.loads(sys.stdin.read() or "{}")
n=o.get("sessions",0) or 0
v=o.get("sessions_per_s") if mode=="sessions" else o.get("mb_per_s")
per=lambda t: round(t/hz*1e6/n,1) if (mode=="sessions" and n) else round(t/hz,2)
print(name,mode,v,per(pt),per(st),o.get("errors"))' "$name" "$mode" $((p1 - p0)) $((s1 - s0)) "$HZ" >>"$TMP/rows"
    log "$(tail -1 "$TMP/rows")"
}
line() { # NAME MODE
    case $1 in
    direct) one direct "" "$2" -s "$DIRECT:1080" ;;
    redirect) one redirect "$RELAY_PID" "$2" -s $VIP:1080 ;;
    relay) one relay "$RELAY_PID" "$2" -s $VIP:1081 ;;
    haproxy) one haproxy "$HAP_PID" "$2" -s $VIP:1082 ;;
    esac
}
# Odd rounds in one order, even rounds in the reverse one: no line always runs first.
for r in $(seq "$ROUNDS"); do
    order="direct redirect relay haproxy"
    [ $((r % 2)) = 0 ] && order="haproxy relay redirect direct"
    for m in sessions throughput; do for n in $order; do line "$n" "$m"; done; done
done
mkdir -p "$(dirname "$RESULTS")"
python3 - "$TMP/rows" "$RESULTS" "$CONCURRENCY" "$STREAMS" "$DURATION" "$ROUNDS" "$(nproc)" "$(uname -r)" <<'EOF'
import sys, statistics as st, time
rows = [l.split() for l in open(sys.argv[1])]
res, conc, streams, dur, rounds, cpus, kern = sys.argv[2:9]
def mean(name, mode, i):
    v = [float(r[i]) for r in rows if r[0] == name and r[1] == mode and r[i] not in ("None", "n/a")]
    return st.mean(v) if v else float("nan")
names = ["direct", "redirect", "relay", "haproxy"]
sps = {n: mean(n, "sessions", 2) for n in names}
mbs = {n: mean(n, "throughput", 2) for n in names}
with open(res, "w") as f:
    f.write(f"## redirect vs relay vs HAProxy vs direct ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n")
    f.write(f"- command: `bench/run-redirect.sh` (DURATION={dur} CONCURRENCY={conc} STREAMS={streams} ROUNDS={rounds}); {cpus} CPUs, Linux {kern}; client, router and servers in network namespaces on this machine, sharing its CPUs\n")
    f.write("- every line: client ns -> router ns -> SOCKS server ns -> target in the client ns; direct = SOCKS straight to the server the redirect picks (routed, no NAT)\n\n")
    f.write("| line | sessions/s | vs HAProxy | vs direct | CPU us/session, middle process | CPU us/session, whole machine | MB/s upload | errors (sessions) |\n|---|---|---|---|---|---|---|---|\n")
    for n in names:
        errs = sum(int(r[5]) for r in rows if r[0] == n and r[1] == "sessions" and r[5].isdigit())
        mid = "-" if n == "direct" else f"{mean(n, 'sessions', 3):.1f}"
        f.write(f"| {n} | {sps[n]:.0f} | {sps[n]/sps['haproxy']:.2f}x | {sps[n]/sps['direct']:.2f}x | {mid} | {mean(n, 'sessions', 4):.1f} | {mbs[n]:.0f} | {errs} |\n")
    f.write(f"\nGoals: redirect >= 2x HAProxy sessions/s: {'met' if sps['redirect'] >= 2*sps['haproxy'] else 'NOT met'} ({sps['redirect']/sps['haproxy']:.2f}x); redirect >= 0.9x direct: {'met' if sps['redirect'] >= 0.9*sps['direct'] else 'NOT met'} ({sps['redirect']/sps['direct']:.2f}x); relay process CPU per redirected session: {mean('redirect','sessions',3):.2f} us.\n\nRuns: " + "; ".join(" ".join(r) for r in rows) + "\n")
print(open(res).read())
EOF
