#!/bin/sh
# keepalived track script: exit 0 while the local hasocks relay is ready (its admin
# listener's /ready answers 200), 1 otherwise. Install as /etc/keepalived/hasocks-ready.sh,
# owned by root, mode 0755 (enable_script_security refuses scripts others can write).
#   hasocks-ready.sh [URL]     default http://127.0.0.1:9100/ready
url=${1:-http://127.0.0.1:9100/ready}
exec curl --silent --fail --max-time 1 --output /dev/null --noproxy '*' "$url"
