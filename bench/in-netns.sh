#!/usr/bin/env bash
# bench/in-netns.sh CMD...: runs a loopback bench in a fresh network namespace of its own,
# with the whole ephemeral port range (1024-65535) and no TIME_WAIT left by earlier runs, then
# removes the namespace. Run as root. Example: bench/in-netns.sh bench/run-route.sh
set -euo pipefail
ns=hasocks-bench-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
# nsenter, not `ip netns exec`: the latter remounts /sys, which hides the cgroup mounts that
# CHAIN_CPU needs.
nsenter --net="/run/netns/$ns" "$@"
