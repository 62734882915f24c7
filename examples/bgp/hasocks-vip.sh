#!/bin/bash
# On each relay host of an active-active tier (docs/active-active.md): the packet filter's
# part, in our own table (ip hasocks_vip; nothing else is touched). Run at boot, and again when
# the set of peers changes:
#   hasocks-vip.sh SHARED_ADDRESS PORT DEVICE PEER...
# with PEER the other relay hosts' addresses on DEVICE's network.
#
# Second chance (as GLB does it): when the router moves a bucket of flows from one relay to
# another (a drain, a relay added), packets of flows in progress reach a relay that has no
# socket for them. Such a packet (not a SYN, and new to this host's conntrack; or a FIN or RST,
# which conntrack calls invalid when it has no entry) is marked (DSCP CS7) and copied to every
# peer, then dropped here instead of being answered with a reset; the peer that owns the flow
# takes it, the others drop the marked copy. A flow keeps its relay for its whole life,
# whatever the router does with its bucket. Only moved flows pay the detour; everything else
# is untouched. Load it before the relay serves: conntrack must have seen a flow's SYN for
# this host to know the flow is its own.
#
# No "connection refused": between a relay's death and the router dropping it, the kernel
# would answer new SYNs with a RST (sequence 0, from the shared address's port); dropping it
# makes the client resend its SYN a second later, by when the router sends it elsewhere.
set -eu
vip=${1:?shared address} port=${2:?port} dev=${3:?device}
shift 3
dups=""
for peer in "$@"; do dups+=" dup to $peer device \"$dev\""; done
[ -n "$dups" ] || { echo "hasocks-vip.sh: no peer given" >&2; exit 2; }
nft -f - <<NFT
table ip hasocks_vip
delete table ip hasocks_vip
table ip hasocks_vip {
    chain prerouting {
        type filter hook prerouting priority filter; policy accept;
        ip daddr $vip tcp dport $port tcp flags & syn == 0 ct state new jump second_chance
        ip daddr $vip tcp dport $port tcp flags & (fin | rst) != 0 ct state invalid jump second_chance
    }
    chain second_chance {
        ip dscp cs7 counter drop
        ip dscp set cs7 counter$dups drop
    }
    chain output {
        type filter hook output priority filter; policy accept;
        ip saddr $vip tcp sport $port tcp flags & (rst | ack) == rst | ack tcp sequence 0 counter drop
    }
}
NFT
