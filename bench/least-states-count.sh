#!/usr/bin/env bash
# bench/least-states-count.sh - what one least-states count costs: a redirect's relay runs
# `conntrack -L -p tcp --orig-dst VIP --orig-port-dst P` once a second for each listen of a
# least-states redirect (crates/relay/src/redirects.rs). This times that command against a
# conntrack table of N entries, half of them the redirect's flows (spread over 3 hosts) and
# half other routed flows, in a network namespace made and removed here (hsl-bench,
# addresses 10.81.x only). The entries are inserted with `conntrack -R` (no traffic).
# Usage (root): bench/least-states-count.sh   Env: SIZES="1000 10000 50000" CALLS=10
set -u
SIZES=${SIZES:-"0 1000 10000 50000"} CALLS=${CALLS:-10}
NS=hsl-bench VIP=10.81.0.100 PORT=1082
TMP=$(mktemp -d /tmp/hasocks-bench-least.XXXXXX)
cleanup() { ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null
in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
in_ns ip link set lo up
# A nat chain, so conntrack is on in the namespace, as with a redirect's table.
in_ns nft "add table ip hslb; add chain ip hslb c { type nat hook output priority -100; }"
echo "| tracked flows | the redirect's | ms per count (conntrack -L, filtered) | ms per count, whole table |"
echo "|---|---|---|---|"
for n in $SIZES; do
    in_ns conntrack -F 2>/dev/null
    half=$((n / 2))
    # The redirect's flows: clients 10.81.1-200.x, reply source one of 3 hosts.
    awk -v n="$half" -v vip="$VIP" -v port="$PORT" 'BEGIN { for (i = 0; i < n; i++) {
        c = sprintf("10.81.%d.%d", 1 + int(i / 250) % 200, 1 + i % 250); sp = 10000 + int(i / 50000);
        printf "-I -p tcp -s %s -d %s --sport %d --dport %d --reply-src 10.81.250.%d --reply-dst %s --reply-port-src 7000 --reply-port-dst %d --state ESTABLISHED -t 3600 -u ASSURED\n",
            c, vip, sp, port, 11 + i % 3, c, sp } }' > "$TMP/ours"
    # Other routed flows through the same host.
    awk -v n="$((n - half))" 'BEGIN { for (i = 0; i < n; i++) {
        c = sprintf("10.81.%d.%d", 1 + int(i / 250) % 200, 1 + i % 250);
        printf "-I -p tcp -s %s -d 10.81.251.1 --sport 20000 --dport 443 --reply-src 10.81.251.1 --reply-dst %s --reply-port-src 443 --reply-port-dst 20000 --state ESTABLISHED -t 3600 -u ASSURED\n",
            c, c } }' > "$TMP/others"
    in_ns conntrack -R "$TMP/ours" >/dev/null 2>&1
    in_ns conntrack -R "$TMP/others" >/dev/null 2>&1
    got=$(in_ns conntrack -L -p tcp --orig-dst "$VIP" --orig-port-dst "$PORT" 2>/dev/null | wc -l)
    # The loops run inside the namespace: `ip netns exec` itself is not timed.
    filtered=$(in_ns bash -c "t0=\$(date +%s%N); for i in \$(seq $CALLS); do conntrack -L -p tcp \
        --orig-dst $VIP --orig-port-dst $PORT >/dev/null 2>&1; done; echo \$(( (\$(date +%s%N) - t0) / $CALLS / 1000 ))")
    whole=$(in_ns bash -c "t0=\$(date +%s%N); for i in \$(seq $CALLS); do conntrack -L >/dev/null 2>&1; done;
        echo \$(( (\$(date +%s%N) - t0) / $CALLS / 1000 ))")
    total=$(in_ns conntrack -C 2>/dev/null)
    echo "| $total | $got | $(awk -v u="$filtered" 'BEGIN { printf "%.1f", u / 1000 }') | $(awk -v u="$whole" 'BEGIN { printf "%.1f", u / 1000 }') |"
done
