#!/usr/bin/env bash
# Runs every interop script against the real programs (Dante, HAProxy, curl, PySocks,
# python-socks).
set -uo pipefail
cd "$(dirname "$0")"
status=0
for s in server-curl.sh server-auth.sh relay-dante.sh relay-flood.sh gssapi.sh route-chain.sh route-failover.sh; do
  echo "== $s"
  bash "$s" || status=1
done
exit $status
