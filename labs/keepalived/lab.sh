#!/usr/bin/env bash
# A redundant hasocks relay pair in network namespaces on one Linux machine, to watch a
# failover with your own eyes. Run as root. Everything lives in namespaces hsl-* and on the
# private network 10.77.0.0/24; nothing leaves them.
#
#   lab.sh up                 build it and start everything (binary: $HASOCKS_BIN, else
#                             hasocks on PATH, else this repo's target/release/hasocks)
#   lab.sh status             who holds the shared address, keepalived states, relay readiness
#   lab.sh curl [SRC]         fetch the target through the shared address (from SRC, a client
#                             address: 10.77.0.10 or 10.77.0.50-79); prints the egress server
#   lab.sh master             the relay number (1 or 2) holding the address, or nothing
#   lab.sh kill-relay N       kill -9 the relay on relay host N
#   lab.sh stop-keepalived N  stop keepalived on relay host N (SIGTERM)
#   lab.sh link-down N        take relay host N's link down (at the switch)
#   lab.sh restore N          bring back what is missing on relay host N: link, relay, keepalived
#   lab.sh down               stop everything and remove the namespaces
#
# Topology (one bridge, br0, in namespace hsl-sw):
#   hsl-client   10.77.0.10, census/load sources 10.77.0.50-79, target 10.77.0.20:8080
#   hsl-relay1   10.77.0.2   hasocks relay + keepalived (priority 150)
#   hsl-relay2   10.77.0.3   hasocks relay + keepalived (priority 100)
#   hsl-server1  10.77.0.11  hasocks server
#   hsl-server2  10.77.0.12  hasocks server
#   shared address 10.77.0.100:1080 (VRRP id 77, VRRPv3, advert_int 0.5, nopreempt)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The configs it runs are the ones an operator copies: examples/keepalived.
conf=$(cd "$here/../../examples/keepalived" && pwd)
run=/run/hasocks-lab
net=10.77.0
vip=$net.100
hosts=(client relay1 relay2 server1 server2)
declare -A ip=([client]=$net.10 [relay1]=$net.2 [relay2]=$net.3 [server1]=$net.11 [server2]=$net.12)

repo=$(cd "$here/../.." && pwd)
# shellcheck source=../lib.sh
. "$repo/labs/lib.sh"

relay_up() {
  local n=$1
  alive "relay$n" && return 0
  start "relay$n" "hsl-relay$n" "$(hasocks_bin)" relay -f "$run/relay$n/relayd.conf"
}

keepalived_up() {
  local n=$1
  alive "keepalived$n" && return 0
  local d=$run/relay$n
  # -n: stay in the foreground (this lab holds its pid); -P: VRRP only; own pid files, since
  # both instances share this machine's /run.
  start "keepalived$n" "hsl-relay$n" keepalived -n -l -D -P -f "$d/keepalived.conf" \
    -p "$d/keepalived.pid" -r "$d/vrrp.pid"
}

cmd_up() {
  need ip keepalived python3 curl nft
  cmd_down >/dev/null 2>&1 || true
  local bin
  bin=$(hasocks_bin)
  install -d -m 0755 "$run"
  ip netns add hsl-sw
  ip -n hsl-sw link add br0 type bridge
  # VRRP adverts are multicast: no snooping, so the bridge floods them to every port.
  ip -n hsl-sw link set br0 type bridge mcast_snooping 0
  ip -n hsl-sw link set br0 up
  for h in "${hosts[@]}"; do
    ip netns add "hsl-$h"
    ip -n hsl-sw link add "v-$h" type veth peer name eth0 netns "hsl-$h"
    ip -n hsl-sw link set "v-$h" master br0 up
    ip -n "hsl-$h" addr add "${ip[$h]}/24" dev eth0
    ip -n "hsl-$h" link set eth0 up
    ip -n "hsl-$h" link set lo up
    install -d -m 0755 "$run/$h"
  done
  # No "connection refused" from the shared address while a relay is down (hasocks-vip.nft).
  for n in 1 2; do ip netns exec "hsl-relay$n" nft -f "$conf/hasocks-vip.nft"; done
  ip -n hsl-client addr add "$net.20/24" dev eth0
  for i in $(seq 50 79); do ip -n hsl-client addr add "$net.$i/24" dev eth0; done

  start target hsl-client python3 "$here/lab-target.py" "$net.20" 8080
  for n in 1 2; do
    local s=server$n
    sed "s/$net.11/${ip[$s]}/g" "$conf/sockd.conf" >"$run/$s/sockd.conf"
    start "$s" "hsl-$s" "$bin" server -f "$run/$s/sockd.conf"
  done
  for n in 1 2; do
    local d=$run/relay$n
    sed "s|/run/hasocks/relay.sock|$d/relay.sock|" "$conf/relayd.conf" >"$d/relayd.conf"
    # The shipped keepalived configs, with this lab's paths.
    install -m 0755 "$conf/hasocks-ready.sh" "$conf/hasocks-notify.sh" "$d/"
    sed -e "s|/etc/keepalived/|$d/|g" -e "s|/var/log/hasocks-vrrp.log|$d/vrrp.log|" \
      "$conf/keepalived-relay$n.conf" >"$d/keepalived.conf"
    relay_up "$n"
  done
  # Relay 1 first, so it becomes master: keepalived 2 starts once 1 holds the address.
  keepalived_up 1
  wait_for "relay 1 holds $vip" '[ "$(cmd_master)" = 1 ]' 20
  keepalived_up 2
  wait_for "a SOCKS session through $vip" 'cmd_curl >/dev/null 2>&1' 20
  cmd_status
}

cmd_master() {
  for n in 1 2; do
    if ip -n "hsl-relay$n" -4 addr show dev eth0 2>/dev/null | grep -q "inet $vip/"; then
      echo "$n"
      return 0
    fi
  done
}

cmd_curl() {
  local src=${1:-$net.10}
  ip netns exec hsl-client curl --silent --show-error --fail --max-time 5 \
    --interface "$src" --socks5 "$vip:1080" "http://$net.20:8080/"
}

cmd_status() {
  local m
  m=$(cmd_master)
  if [ -n "$m" ]; then
    echo "shared address $vip: held by relay $m (${ip[relay$m]})"
  else
    echo "shared address $vip: held by nobody"
  fi
  for n in 1 2; do
    local ready state
    ready=$(ip netns exec "hsl-relay$n" curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
      http://127.0.0.1:9100/ready 2>/dev/null || true)
    state=$(tail -1 "$run/relay$n/vrrp.log" 2>/dev/null | awk '{print $5}' || true)
    printf 'relay %s (%s): relay %s, /ready %s, keepalived %s, VRRP %s\n' "$n" "${ip[relay$n]}" \
      "$(alive "relay$n" && echo running || echo stopped)" "${ready:-none}" \
      "$(alive "keepalived$n" && echo running || echo stopped)" "${state:-unknown}"
  done
  for n in 1 2; do
    printf 'server %s (%s): %s\n' "$n" "${ip[server$n]}" "$(alive "server$n" && echo running || echo stopped)"
  done
  if out=$(cmd_curl 2>&1); then echo "curl through $vip: $out"; else echo "curl through $vip: failed: $out"; fi
}

cmd_down() {
  stop_all hsl-
  echo "lab removed"
}

n_arg() { [[ "${1:-}" =~ ^[12]$ ]] || die "which relay host: 1 or 2"; echo "$1"; }

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  master) cmd_master ;;
  curl) cmd_curl "${2:-}" ;;
  kill-relay) n=$(n_arg "${2:-}"); stop "relay$n" KILL ;;
  stop-keepalived) n=$(n_arg "${2:-}"); stop "keepalived$n" TERM ;;
  link-down) n=$(n_arg "${2:-}"); ip -n hsl-sw link set "v-relay$n" down ;;
  restore)
    n=$(n_arg "${2:-}")
    ip -n hsl-sw link set "v-relay$n" up
    relay_up "$n"
    keepalived_up "$n"
    ;;
  *) sed -n '2,26p' "$0"; exit 2 ;;
esac
