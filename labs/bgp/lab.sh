#!/usr/bin/env bash
# An active-active tier of three hasocks relays behind a router that spreads flows over them
# by ECMP, each announcing the shared address by BGP (BIRD 2) while it is ready. Run as root.
# Everything lives in namespaces hsg-* on 10.78.0.0/16; nothing leaves them.
#
#   lab.sh up                build it and start everything (binary: $HASOCKS_BIN, else hasocks
#                            on PATH, else this repo's target/release/hasocks)
#   lab.sh status [--json]   the shared address, each relay's announce state, the servers
#   lab.sh curl [SRC]        fetch the target through the shared address (from SRC, a client
#                            address: 10.78.0.10 or 10.78.0.50-89); prints the egress server
#   lab.sh route             the router's BGP routes and resilient nexthop group
#   lab.sh kill RELAY        kill -9 the hasocks relay on RELAY (relay1, relay2 or relay3)
#   lab.sh drain RELAY       hasocks ctl relay drain on RELAY
#   lab.sh add RELAY         (re)start RELAY's hasocks relay if it is not running, undrain it
#   lab.sh down              stop everything and remove the namespaces
#
# Topology:
#   hsg-client   10.78.0.10, sources 10.78.0.50-89, target 10.78.0.20:8080; via hsg-router
#   hsg-router   10.78.0.1 (client side), 10.78.1.1 (relay LAN): BIRD (BGP + BFD from each
#                relay), hasocks-router-hook.sh (the resilient nexthop group), L4 ECMP hash
#   hsg-sw       the relay LAN's bridge
#   hsg-relayN   10.78.1.(N+1), shared address 10.78.100.100 on lo: hasocks relay, BIRD,
#                hasocks-announce.sh
#   hsg-serverN  10.78.1.(N+10) (N = 1, 2): hasocks server
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The configs it runs are the ones an operator copies: examples/bgp.
conf=$repo/examples/bgp
run=/run/hasocks-bgp-lab
vip=10.78.100.100
relays=(relay1 relay2 relay3)
servers=(server1 server2)
declare -A ip=([client]=10.78.0.10 [router]=10.78.1.1 [relay1]=10.78.1.2 [relay2]=10.78.1.3
  [relay3]=10.78.1.4 [server1]=10.78.1.11 [server2]=10.78.1.12)
# shellcheck source=../lib.sh
. "$repo/labs/lib.sh"

relay_up() {
  local r=$1
  alive "$r" && return 0
  start "$r" "hsg-$r" "$(hasocks_bin)" relay -f "$run/$r/relayd.conf"
}

ctl() { "$(hasocks_bin)" ctl -s "$run/$1/relay.sock" "${@:2}"; }

# lan HOST ADDRESS: a veth from the relay LAN's bridge into namespace hsg-HOST.
lan() {
  ip netns add "hsg-$1"
  ip -n hsg-sw link add "v-$1" type veth peer name eth0 netns "hsg-$1"
  ip -n hsg-sw link set "v-$1" master br0 up
  ip -n "hsg-$1" addr add "$2/24" dev eth0
  ip -n "hsg-$1" link set eth0 up
  ip -n "hsg-$1" link set lo up
  ip -n "hsg-$1" route add default via 10.78.1.1
  install -d -m 0755 "$run/$1"
}

cmd_up() {
  need ip bird birdc python3 curl nft
  stop_all hsg- >/dev/null 2>&1 || true
  local bin r s i
  bin=$(hasocks_bin)
  install -d -m 0755 "$run" "$run/router"
  ip netns add hsg-sw
  ip -n hsg-sw link add br0 type bridge
  ip -n hsg-sw link set br0 up
  ip netns add hsg-client
  ip netns add hsg-router
  ip -n hsg-client link add eth0 type veth peer name eth0 netns hsg-router
  ip -n hsg-client link set lo up
  ip -n hsg-client link set eth0 up
  ip -n hsg-client addr add 10.78.0.10/24 dev eth0
  ip -n hsg-client addr add 10.78.0.20/24 dev eth0
  for i in $(seq 50 89); do ip -n hsg-client addr add "10.78.0.$i/24" dev eth0; done
  ip -n hsg-client route add default via 10.78.0.1
  ip -n hsg-router link set lo up
  ip -n hsg-router addr add 10.78.0.1/24 dev eth0
  ip -n hsg-router link set eth0 up
  ip -n hsg-sw link add v-router type veth peer name eth1 netns hsg-router
  ip -n hsg-sw link set v-router master br0 up
  ip -n hsg-router addr add 10.78.1.1/24 dev eth1
  ip -n hsg-router link set eth1 up
  ip netns exec hsg-router sysctl -qw net.ipv4.ip_forward=1
  # Hash on the 5-tuple, so that the flows of one client address spread over the relays.
  ip netns exec hsg-router sysctl -qw net.ipv4.fib_multipath_hash_policy=1
  for r in "${relays[@]}" "${servers[@]}"; do lan "$r" "${ip[$r]}"; done
  for r in "${relays[@]}"; do
    ip -n "hsg-$r" addr add "$vip/32" dev lo
    # Second chance for flows whose bucket moved, and no "connection refused" from a relay
    # host whose relay died (hasocks-vip.sh).
    local peers=() p
    for p in "${relays[@]}"; do [ "$p" = "$r" ] || peers+=("${ip[$p]}"); done
    ip netns exec "hsg-$r" "$conf/hasocks-vip.sh" "$vip" 1080 eth0 "${peers[@]}"
  done

  start target hsg-client python3 "$repo/labs/keepalived/lab-target.py" 10.78.0.20 8080
  for s in "${servers[@]}"; do
    sed -e "s/10.78.1.11/${ip[$s]}/g" -e "s|/run/hasocks/server.sock|$run/$s/server.sock|" \
      "$conf/sockd.conf" >"$run/$s/sockd.conf"
    start "$s" "hsg-$s" "$bin" server -f "$run/$s/sockd.conf"
  done
  start bird-router hsg-router bird -f -c "$conf/bird-router.conf" -s "$run/router/bird.ctl" \
    -P "$run/router/bird.pid"
  start router-hook hsg-router "$conf/hasocks-router-hook.sh" "$vip/32" "$run/router/bird.ctl"
  for r in "${relays[@]}"; do
    local d=$run/$r
    sed "s|/run/hasocks/relay.sock|$d/relay.sock|" "$conf/relayd.conf" >"$d/relayd.conf"
    sed "s/ROUTER_ID/${ip[$r]}/" "$conf/bird-relay.conf" >"$d/bird.conf"
    relay_up "$r"
    start "bird-$r" "hsg-$r" bird -f -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pid"
  done
  for r in "${relays[@]}"; do
    wait_for "BIRD on $r" "birdc -s $run/$r/bird.ctl show status >/dev/null 2>&1" 10
    start "announce-$r" "hsg-$r" "$conf/hasocks-announce.sh" "$run/$r/bird.ctl" \
      http://127.0.0.1:9100 "$run/$r/announce.state"
  done
  wait_for "three relays in the router's group" '[ "$(group_size)" = 3 ]' 30
  wait_for "a SOCKS session through $vip" 'cmd_curl >/dev/null 2>&1' 20
  cmd_status
}

group_size() {
  ip -n hsg-router nexthop show id 100 2>/dev/null | sed -n 's/.* group \([^ ]*\).*/\1/p' |
    tr / '\n' | grep -c . || true
}

cmd_curl() {
  local src=${1:-10.78.0.10}
  ip netns exec hsg-client curl --silent --show-error --fail --max-time 5 \
    --interface "$src" --socks5 "$vip:1080" "http://10.78.0.20:8080/"
}

cmd_route() {
  ip netns exec hsg-router birdc -s "$run/router/bird.ctl" show route all for "$vip/32" || true
  ip -n hsg-router nexthop show id 100 || true
  ip -n hsg-router route show table 100 || true
}

# router_weight IP: the relay's weight in the router's nexthop group (nothing if not in it).
router_weight() {
  local n=$((1000 + ${1##*.}))
  ip -n hsg-router nexthop show id 100 2>/dev/null | sed -n 's/.* group \([^ ]*\).*/\1/p' |
    tr / '\n' | sed -n -e "s/^$n,//p" -e "s/^$n\$/1/p" || true
}

relay_json() {
  local r=$1 state ready w
  state=$(cat "$run/$r/announce.state" 2>/dev/null || echo none)
  ready=$(ip netns exec "hsg-$r" curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    http://127.0.0.1:9100/ready 2>/dev/null || true)
  w=$(router_weight "${ip[$r]}")
  printf '{"name": "%s", "netns": "hsg-%s", "address": "%s", "announced": %s, "announce_state": "%s", "router_weight": %s, "relay": "%s", "ready": "%s", "admin": "http://127.0.0.1:9100", "control_socket": "%s"}' \
    "$r" "$r" "${ip[$r]}" "$([ "$state" = announced ] || [ "$state" = draining ] && echo true || echo false)" \
    "$state" "${w:-null}" "$(alive "$r" && echo running || echo stopped)" "${ready:-none}" \
    "$run/$r/relay.sock"
}

cmd_status_json() {
  local r s sep=""
  printf '{"shared_address": "%s:1080", "client": {"netns": "hsg-client", "address": "10.78.0.10", "sources": "10.78.0.50-89", "target": "10.78.0.20:8080"}, "router": {"netns": "hsg-router", "address": "10.78.1.1", "bird_socket": "%s"}, "relays": [' \
    "$vip" "$run/router/bird.ctl"
  for r in "${relays[@]}"; do printf '%s' "$sep"; relay_json "$r"; sep=", "; done
  printf '], "servers": ['
  sep=""
  for s in "${servers[@]}"; do
    printf '%s{"name": "%s", "netns": "hsg-%s", "address": "%s:1080", "running": %s}' "$sep" \
      "$s" "$s" "${ip[$s]}" "$(alive "$s" && echo true || echo false)"
    sep=", "
  done
  printf ']}\n'
}

cmd_status() {
  [ "${1:-}" = --json ] && { cmd_status_json; return; }
  local r s out
  echo "shared address $vip:1080"
  for r in "${relays[@]}"; do
    printf '%s (%s): relay %s, announce %s, router weight %s\n' "$r" "${ip[$r]}" \
      "$(alive "$r" && echo running || echo stopped)" \
      "$(cat "$run/$r/announce.state" 2>/dev/null || echo none)" "$(router_weight "${ip[$r]}" | grep . || echo none)"
  done
  for s in "${servers[@]}"; do
    printf '%s (%s): %s\n' "$s" "${ip[$s]}" "$(alive "$s" && echo running || echo stopped)"
  done
  if out=$(cmd_curl 2>&1); then echo "curl through $vip: $out"; else echo "curl through $vip: failed: $out"; fi
}

relay_arg() {
  case "${1:-}" in relay1 | relay2 | relay3) echo "$1" ;; *) die "which relay: relay1, relay2 or relay3" ;; esac
}

case "${1:-}" in
  up) cmd_up ;;
  down) stop_all hsg-; echo "lab removed" ;;
  status) cmd_status "${2:-}" ;;
  curl) cmd_curl "${2:-}" ;;
  route) cmd_route ;;
  kill) r=$(relay_arg "${2:-}"); stop "$r" KILL ;;
  drain) r=$(relay_arg "${2:-}"); ctl "$r" relay drain ;;
  add)
    r=$(relay_arg "${2:-}")
    relay_up "$r"
    wait_for "$r's control socket" "[ -S $run/$r/relay.sock ] && ctl $r show summary >/dev/null 2>&1" 10
    ctl "$r" relay undrain >/dev/null 2>&1 || true
    ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
