#!/usr/bin/env bash
# A silent flood against `hasocks relay` and, as the reference, HAProxy (`maxconn` set), both
# in front of the same two hasocks servers: 10,000 connections from 127.0.0.50 that send
# nothing, then 20 curl sessions from 127.0.0.60 through each. hasocks must serve all 20 and
# close the silent ones at its first-byte timeout; HAProxy's count is reported.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

HTTP_PORT=$(free_port_retry)
body="flood interop $(date +%s%N)"
mkdir -p "$WORK/www" && echo "$body" > "$WORK/www/index.txt"
bg $PY -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1
wait_port 127.0.0.1 "$HTTP_PORT" || exit 1

BPORT=$(free_port_retry)
for a in 127.0.0.2 127.0.0.3; do
  cat > "$WORK/server-$a.conf" <<CONF
internal: $a port = $BPORT
external: 127.0.0.1
socksmethod: none
client pass { from: 0/0 to: 0/0 }
socks pass { from: 0/0 to: 0/0 }
CONF
  bg "$HASOCKS" server -f "$WORK/server-$a.conf" 2>/dev/null
  wait_port "$a" "$BPORT" || exit 1
done

RPORT=$(free_port_retry)
cat > "$WORK/relayd.conf" <<CONF
interval 1
timeout 800
hasocks.timeout.firstbyte 5
socket "$WORK/relay.sock"
table <pool> { 127.0.0.2, 127.0.0.3 }
relay "socks" {
  listen on 127.0.0.1 port $RPORT
  forward to <pool> port $BPORT mode loadbalance check socks
}
CONF
bg "$HASOCKS" relay -f "$WORK/relayd.conf" 2>"$WORK/relay.err"
RELAY_PID=$!
wait_port 127.0.0.1 "$RPORT" || exit 1

HPORT=$(free_port_retry)
cat > "$WORK/haproxy.cfg" <<CONF
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend socks
    bind 127.0.0.1:$HPORT
    default_backend pool
backend pool
    balance source
    server s2 127.0.0.2:$BPORT check inter 1s
    server s3 127.0.0.3:$BPORT check inter 1s
CONF
bg haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1
wait_port 127.0.0.1 "$HPORT" || exit 1
sleep 2 # first checks of both

# flood_and_serve PORT NAME: floods, then counts curl successes from 127.0.0.60.
flood_and_serve() {
  $PY "$(dirname "$0")/flood.py" 127.0.0.50 127.0.0.1 "$1" 10000 8 > "$WORK/flood-$2.out" &
  local fp=$! served=0 i
  for _ in $(seq 1 100); do grep -q opened "$WORK/flood-$2.out" 2>/dev/null && break; sleep 0.1; done
  for i in $(seq 1 20); do
    got=$(curl -sS --max-time 10 --interface 127.0.0.60 --socks5 "127.0.0.1:$1" \
      "http://127.0.0.1:$HTTP_PORT/index.txt" 2>/dev/null)
    [ "$got" = "$body" ] && served=$((served + 1))
  done
  wait "$fp"
  echo "$served"
}

served=$(flood_and_serve "$RPORT" hasocks)
check "hasocks relay: curl sessions served during a flood of $(awk '/opened/{print $2}' "$WORK/flood-hasocks.out") silent connections" 20 "$served"
closed=$(awk '/closed_by_peer/{print $2}' "$WORK/flood-hasocks.out")
opened=$(awk '/opened/{print $2}' "$WORK/flood-hasocks.out")
check "hasocks relay: every silent connection closed within 8 s (first-byte timeout 5 s, or refused over the per-source cap)" "$opened" "$closed"
if grep -q "state up -> down" "$WORK/relay.err"; then
  bad "hasocks relay marked a host down during the flood: $(grep 'up -> down' "$WORK/relay.err" | head -n1)"
else
  ok "hasocks relay: no host changed state during the flood"
fi
kill -0 "$RELAY_PID" 2>/dev/null && ok "hasocks relay still running" || bad "hasocks relay died"

served=$(flood_and_serve "$HPORT" haproxy)
echo "info - HAProxy (maxconn 9000), the reference: $served of 20 curl sessions served during the flood; $(awk '/closed_by_peer/{print $2}' "$WORK/flood-haproxy.out") of $(awk '/opened/{print $2}' "$WORK/flood-haproxy.out") silent connections closed within 8 s"

summary
