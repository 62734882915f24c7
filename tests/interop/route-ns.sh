# Sourced by the route scripts: runs the calling script again inside a network namespace of
# its own (hsc-route-PID), whose loopback also has 127.0.0.2-127.0.0.9, so that each proxy of
# a chain goes out from an address of its own (Dante only binds addresses that are on an
# interface) and a target can tell which proxy reached it. The namespace is removed on exit,
# also after a failure. Needs root; without it the calling script says "skip" and exits 0.

if [ -z "${HSC_ROUTE_NS:-}" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    echo "skip - $(basename "$0") needs root and iproute2 (a network namespace of its own)"
    exit 0
  fi
  ns="hsc-route-$$"
  ip netns add "$ns" || { echo "FAIL - cannot create network namespace $ns"; exit 1; }
  trap 'ip netns del "$ns" 2>/dev/null' EXIT
  HSC_ROUTE_NS=$ns ip netns exec "$ns" bash "$0" "$@"
  exit $?
fi
ip link set lo up
for n in 2 3 4 5 6 7 8 9; do ip addr add "127.0.0.$n/8" dev lo 2>/dev/null; done

# wait_log FILE PATTERN [TENTHS]: until FILE has a line matching PATTERN (10 s by default).
wait_log() {
  for _ in $(seq 1 "${3:-100}"); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# dante_conf NAME IP PORT METHOD [RULE ITEMS] [SETTINGS] [ROUTES]: $WORK/NAME.conf, a Dante
# on IP:PORT going out from IP, passing every request (with RULE ITEMS, default logging the
# sessions), SETTINGS before the rules and ROUTES after them.
dante_conf() {
  cat > "$WORK/$1.conf" <<CONF
errorlog: stderr
logoutput: $WORK/$1.log
internal: $2 port = $3
external: $2
socksmethod: $4
clientmethod: none
user.privileged: root
user.unprivileged: nobody
${6:-}
client pass { from: 0/0 to: 0/0 }
socks pass {
        from: 0/0 to: 0/0
        ${5:-log: error connect disconnect}
}
${7:-}
CONF
}

# hasocks_conf NAME IP PORT METHOD [SETTINGS] [ROUTES] [RULE ITEMS]: the same for hasocks
# server (its control socket in $WORK).
hasocks_conf() {
  cat > "$WORK/$1.conf" <<CONF
logoutput: $WORK/$1.log
hasocks.socket: $WORK/$1.sock
internal: $2 port = $3
external: $2
socksmethod: $4
${5:-}
client pass { from: 0/0 to: 0/0 }
socks pass {
        from: 0/0 to: 0/0
        ${7:-log: error connect disconnect}
}
${6:-}
CONF
}

# route_to IP PORT [ITEMS]: a route block to the upstream IP:PORT, Dante's syntax.
route_to() {
  printf 'route {\n        from: 0/0 to: 0/0 via: %s port = %s\n%s\n}\n' "$1" "$2" "${3:-}"
}
