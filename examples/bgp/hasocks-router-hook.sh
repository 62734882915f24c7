#!/bin/bash
# Router side of the active-active lab (docs/active-active.md): the stand-in for a real
# router's resilient ECMP. BIRD installs plain multipath routes (RTA_MULTIPATH), which rehash
# flows over all next hops whenever the set of relays changes; this hook mirrors the BGP routes
# BIRD learned for the shared address into a Linux resilient nexthop group instead, which
# moves only the buckets it must:
#   a relay announcing the plain route              in the group
#   a relay announcing community (65078,1), or none not in the group: its buckets move to the
#                                                   others at once
# A relay that joins takes buckets that have been idle 1 s, and busy ones after UNBALANCED s
# (2). Flows in progress on a bucket that moved are not lost: the relay that now receives
# their packets has no socket for them and passes them on to its peers (second chance,
# hasocks-vip.sh on each relay host), where the relay that owns them answers.
# Polls every 100 ms; logs each change of the group on stdout.
#   hasocks-router-hook.sh PREFIX [BIRD_SOCKET]
vip=${1:?shared prefix, e.g. 10.78.100.100/32}
sock=${2:-/run/bird/bird.ctl}
gid=${HASOCKS_NHG_ID:-100} buckets=${HASOCKS_NHG_BUCKETS:-512}
unbalanced=${HASOCKS_NHG_UNBALANCED:-2}
last=""

learned() { # "IP DEV" per relay announcing the plain route for the prefix
  birdc -s "$sock" show route all for "$vip" | awk '
    /via [0-9.]+ on/ { if (ip != "" && !drain) print ip, d; ip = $2; d = $4; drain = 0 }
    /BGP.community:.*\(65078,1\)/ { drain = 1 }
    END { if (ip != "" && !drain) print ip, d }'
}

nhid() { local a=(${1//./ }); echo $((1000 + a[3])); }

while :; do
  group=""
  while read -r ip d; do
    [ -n "$ip" ] || continue
    id=$(nhid "$ip")
    ip nexthop replace id "$id" via "$ip" dev "$d" 2>/dev/null
    group+="${group:+/}$id"
  done < <(learned | sort)
  if [ "$group" != "$last" ]; then
    if [ -z "$group" ]; then
      ip route del "$vip" 2>/dev/null
      ip nexthop del id "$gid" 2>/dev/null
    elif [ -z "$last" ]; then
      ip nexthop add id "$gid" group "$group" type resilient buckets "$buckets" \
        idle_timer 1 unbalanced_timer "$unbalanced"
      ip route replace "$vip" nhid "$gid"
    else
      ip nexthop replace id "$gid" group "$group" type resilient idle_timer 1 \
        unbalanced_timer "$unbalanced"
    fi
    echo "$(date +%s.%N) $(awk '{print $1}' /proc/uptime) group ${group:-none}"
    last=$group
  fi
  sleep 0.1
done
