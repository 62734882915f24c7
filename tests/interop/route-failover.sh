#!/usr/bin/env bash
# Failover under load: 50 clients through a chaining server whose route group has two Dante
# upstreams (127.0.0.2 first, 127.0.0.3 second); the first upstream is killed (kill -9 of
# its process group), then, in a second run, frozen (SIGSTOP), and brought back after 6 s.
# hasocks (route.badexpire 5, checks every second, 1 s per upstream attempt) and Dante
# (the same two routes, route.badexpire 5) as the reference, each in the same test.
# Reported per run (route_failover.py): sessions, failed ones (in flight on the dead
# upstream / new after the failure), the time to mark it bad, the return. Checked: no new
# hasocks session fails after the kill or the freeze. FAILOVER_JSON=FILE keeps the figures.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/route-ns.sh"
. "$here/lib.sh"

T_PORT=$(free_port_retry)
bg $PY "$here/whoami.py" 127.0.0.1 "$T_PORT" tcp
wait_port 127.0.0.1 "$T_PORT" || exit 1
P1=$(free_port_retry)
P2=$(free_port_retry)
dante_conf u1 127.0.0.2 "$P1" none "log: error"
dante_conf u2 127.0.0.3 "$P2" none "log: error"

# ctl NAME start|kill|stop|cont: a Dante in a process group of its own (its children too).
cat > "$WORK/ctl" <<'CTL'
#!/bin/bash
w=$(dirname "$0")
case $2 in
  start) setsid /usr/sbin/danted -f "$w/$1.conf" -N 1 </dev/null >>"$w/$1.err" 2>&1 &
         echo $! > "$w/$1.pid" ;;
  kill) kill -9 -- "-$(cat "$w/$1.pid")" ;;
  stop) kill -STOP -- "-$(cat "$w/$1.pid")" ;;
  cont) kill -CONT -- "-$(cat "$w/$1.pid")" ;;
esac
CTL
chmod +x "$WORK/ctl"
stop_all() { for u in u1 u2; do [ -f "$WORK/$u.pid" ] && kill -9 -- "-$(cat "$WORK/$u.pid")" 2>/dev/null; done; }
trap 'stop_all; cleanup' EXIT
"$WORK/ctl" u1 start
"$WORK/ctl" u2 start
wait_port 127.0.0.2 "$P1" && wait_port 127.0.0.3 "$P2" || exit 1

ROUTES="$(route_to 127.0.0.2 "$P1" "        command: connect
        proxyprotocol: socks_v5")
$(route_to 127.0.0.3 "$P2" "        command: connect
        proxyprotocol: socks_v5")"
H=$(free_port_retry)
A=$(free_port_retry)
hasocks_conf h 127.0.0.1 "$H" none "route.badexpire: 5
hasocks.route.check.interval: 1
hasocks.route.timeout: 1
hasocks.admin: 127.0.0.1 port = $A" "$ROUTES" "log: error"
D=$(free_port_retry)
dante_conf d 127.0.0.1 "$D" none "log: error" "route.badexpire: 5" "$ROUTES"
"$HASOCKS" server -V -f "$WORK/d.conf" >/dev/null 2>&1 && ok "hasocks reads the Dante reference's config" || bad "hasocks -V d.conf"

JSON=${FAILOVER_JSON:-$WORK/failover.json}
run() { # CHAIN FAIL RESTORE
  local pid extra=()
  if [ "$1" = hasocks ]; then
    "$HASOCKS" server -f "$WORK/h.conf" 2>>"$WORK/h.err" &
    pid=$!
    wait_port 127.0.0.1 "$H" || return 1
    extra=(--status "http://127.0.0.1:$A/status.json" --proxy "127.0.0.1:$H")
  else
    /usr/sbin/danted -f "$WORK/d.conf" -N 1 2>>"$WORK/d.err" &
    pid=$!
    wait_port 127.0.0.1 "$D" || return 1
    extra=(--dante-log "$WORK/d.log" --proxy "127.0.0.1:$D")
  fi
  $PY "$here/route_failover.py" --name "$1 $2" --target "127.0.0.1:$T_PORT" --dead-ip 127.0.0.2 \
    --fail "$WORK/ctl u1 $2" --restore "$WORK/ctl u1 $3" --json "$JSON" "${extra[@]}" >"$WORK/run.out"
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  cat "$WORK/run.out"
  # The first upstream runs again for the next run (after a kill it was restarted).
  wait_port 127.0.0.2 "$P1"
}

: >"$JSON.tmp"
for chain in hasocks dante; do
  run "$chain" kill start
  run "$chain" stop cont
done

# The figures, and the goal: no new hasocks session failed after the failure.
$PY - "$JSON" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("%-14s %8s %8s %10s %10s %12s %10s" % ("run", "sessions", "failed", "in flight", "new", "marked bad", "back"))
for r in rows[-4:]:
    ms = lambda v: "-" if v is None else "%d ms" % v
    print("%-14s %8d %8d %10d %10d %12s %10s" % (r["name"], r["sessions"], r["failed"],
          r["lost_in_flight"], r["new_failed"], ms(r["marked_bad_ms"]), ms(r["back_ms"])))
EOF
rm -f "$JSON.tmp"
for mode in kill stop; do
  new=$($PY -c "import json,sys; rows=[json.loads(l) for l in open('$JSON') if l.strip()]; print([r for r in rows if r['name']=='hasocks $mode'][-1]['new_failed'])")
  check "hasocks, first upstream gone by $mode: new sessions failed" 0 "$new"
  back=$($PY -c "import json,sys; rows=[json.loads(l) for l in open('$JSON') if l.strip()]; print([r for r in rows if r['name']=='hasocks $mode'][-1]['back_ms'] is not None)")
  check "hasocks, first upstream back after $mode: sessions return to it" True "$back"
done
summary
