#!/bin/bash
# Route health injection for a hasocks relay in an active-active tier (docs/active-active.md).
# Polls the relay's /ready every 100 ms and drives the local BIRD (bird-relay.conf):
#   200                 announce the shared address (protocol vip)
#   503 "draining" only announce it with community (65078,1) (protocol vip_drain), so the
#                       router lowers this relay's weight; withdraw once the relay has no
#                       session open (/status.json sessions_open), but not before 1 s
#                       (HASOCKS_DRAIN_MIN: the router must see the lower weight first), or
#                       after HASOCKS_DRAIN_GRACE seconds (default 30) whatever is open
#   anything else       (dead relay, no server left) withdraw at once
# Each change is logged on stdout with a CLOCK_MONOTONIC time; the state is in STATE_FILE.
#   hasocks-announce.sh [BIRD_SOCKET] [ADMIN_URL] [STATE_FILE]
sock=${1:-/run/bird/bird.ctl}
admin=${2:-http://127.0.0.1:9100}
state_file=${3:-/run/hasocks/announce.state}
grace=${HASOCKS_DRAIN_GRACE:-30} min=${HASOCKS_DRAIN_MIN:-1}
state=none drain_since=0

now() { awk '{print $1}' /proc/uptime; }
birdc_() { birdc -s "$sock" "$@" >/dev/null; }

set_state() {
  [ "$1" = "$state" ] && return
  case $1 in
    announced) birdc_ enable vip && birdc_ disable vip_drain ;;
    draining) birdc_ enable vip_drain && birdc_ disable vip ;;
    withdrawn) birdc_ disable vip; birdc_ disable vip_drain ;;
  esac || return
  state=$1
  echo "$state" >"$state_file"
  echo "$(date +%s.%N) $(now) $state${2:+ ($2)}"
}

while :; do
  body=$(curl --silent --max-time 0.5 --noproxy '*' -w '\n%{http_code}' "$admin/ready" 2>/dev/null)
  code=${body##*$'\n'}
  if [ "$code" = 200 ]; then
    drain_since=0
    set_state announced
  elif [ "$code" = 503 ] && [ "${body%%$'\n'*}" = "not ready: draining" ]; then
    # Draining and nothing else: a drained relay that also lost its servers is withdrawn.
    [ "$drain_since" = 0 ] && drain_since=$(now)
    if [ "$state" != withdrawn ]; then
      waited=$(awk -v a="$drain_since" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 10 }')
      open=$(curl --silent --max-time 0.5 --noproxy '*' "$admin/status.json" |
        grep -o '"sessions_open": *[0-9]*' | head -1 | grep -o '[0-9]*$')
      if [ "${open:-1}" = 0 ] && [ "$waited" -ge $((min * 10)) ]; then
        set_state withdrawn "0 sessions open"
      elif [ "$waited" -ge $((grace * 10)) ]; then
        set_state withdrawn "grace ${grace} s, ${open:-unknown} sessions open"
      else
        set_state draining
      fi
    fi
  else
    set_state withdrawn
  fi
  sleep 0.1
done
