#!/bin/bash
# Router side of the active-active lab (docs/active-active.md): the stand-in for a real
# router's resilient ECMP. BIRD installs plain multipath routes (RTA_MULTIPATH), which rehash
# established flows whenever the set of relays changes; this hook mirrors the BGP routes BIRD
# learned for the shared address into a Linux resilient nexthop group instead:
#   a relay announcing the plain route        weight 100
#   a relay announcing community (65078,1)    weight 1: its idle buckets move to the others,
#                                             its busy ones (flows in progress) stay
#   a relay that withdrew while draining      kept at weight 1 until every bucket it holds has
#                                             been idle IDLE seconds (or GRACE s), then removed
#   a relay that withdrew otherwise (dead)    removed at once (BFD or its hook said so)
# A new relay gets only buckets that are idle. Polls every 100 ms; logs changes on stdout.
#   hasocks-router-hook.sh PREFIX [BIRD_SOCKET]
vip=${1:?shared prefix, e.g. 10.78.100.100/32}
sock=${2:-/run/bird/bird.ctl}
gid=${HASOCKS_NHG_ID:-100} buckets=${HASOCKS_NHG_BUCKETS:-512}
idle=${HASOCKS_NHG_IDLE:-0.5} grace=${HASOCKS_NHG_GRACE:-30}
declare -A weight=() gone_since=() dev=()
last=""

learned() { # "IP WEIGHT DEV" per relay announcing the prefix
  birdc -s "$sock" show route all for "$vip" | awk '
    /via [0-9.]+ on/ { if (ip != "") print ip, w, d; ip = $2; d = $4; w = 100 }
    /BGP.community:.*\(65078,1\)/ { w = 1 }
    END { if (ip != "") print ip, w, d }'
}

min_idle() { # the shortest idle time of the buckets held by nexthop id $1
  ip nexthop bucket show id "$gid" nhid "$1" 2>/dev/null |
    awk '{for (i = 1; i < NF; i++) if ($i == "idle_time") print $(i + 1)}' | sort -g | head -1
}

nhid() { local a=(${1//./ }); echo $((1000 + a[3])); }

while :; do
  declare -A seen=()
  while read -r ip w d; do
    [ -n "$ip" ] || continue
    seen[$ip]=1 weight[$ip]=$w dev[$ip]=$d
    unset "gone_since[$ip]"
  done < <(learned)
  for ip in "${!weight[@]}"; do
    [ -n "${seen[$ip]:-}" ] && continue
    if [ "${weight[$ip]}" = 1 ]; then
      # Withdrawn after a drain: wait for its buckets to go idle (no flow left on them).
      : "${gone_since[$ip]:=$SECONDS}"
      m=$(min_idle "$(nhid "$ip")")
      if [ -z "$m" ] || awk -v m="$m" -v i="$idle" 'BEGIN { exit !(m >= i) }' ||
        [ $((SECONDS - gone_since[$ip])) -ge "$grace" ]; then
        unset "weight[$ip]" "gone_since[$ip]"
      fi
    else
      unset "weight[$ip]"
    fi
  done
  unset seen
  group=""
  for ip in $(printf '%s\n' "${!weight[@]}" | sort); do
    id=$(nhid "$ip")
    ip nexthop replace id "$id" via "$ip" dev "${dev[$ip]}" 2>/dev/null
    group+="${group:+/}$id,${weight[$ip]}"
  done
  if [ "$group" != "$last" ]; then
    if [ -z "$group" ]; then
      ip route del "$vip" 2>/dev/null
      ip nexthop del id "$gid" 2>/dev/null
    elif [ -z "$last" ]; then
      ip nexthop add id "$gid" group "$group" type resilient buckets "$buckets" \
        idle_timer 1 unbalanced_timer 0
      ip route replace "$vip" nhid "$gid"
    else
      ip nexthop replace id "$gid" group "$group" type resilient idle_timer 1 unbalanced_timer 0
    fi
    echo "$(date +%s.%N) $(awk '{print $1}' /proc/uptime) group ${group:-none}"
    last=$group
  fi
  sleep 0.1
done
