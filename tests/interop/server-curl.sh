#!/usr/bin/env bash
# curl through `hasocks server` and through Dante's sockd with the same sockd.conf:
# SOCKS4, SOCKS4a, SOCKS5 and SOCKS5 with remote name resolution, to a local HTTP server;
# then UDP ASSOCIATE with PySocks through both.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

HTTP_PORT=$(free_port)
body="hasocks interop $(date +%s%N)"
mkdir -p "$WORK/www" && echo "$body" > "$WORK/www/index.txt"
bg $PY -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" 2>/dev/null
wait_port 127.0.0.1 "$HTTP_PORT" || exit 1

H_PORT=$(free_port)
D_PORT=$(free_port)
seed_sockd_conf "$H_PORT" hasocks > "$WORK/hasocks.conf"
seed_sockd_conf "$D_PORT" dante > "$WORK/dante.conf"
"$HASOCKS" server -V -f "$WORK/hasocks.conf" >/dev/null && ok "hasocks server -V accepts the config" || bad "hasocks server -V"
bg "$HASOCKS" server -f "$WORK/hasocks.conf"
bg /usr/sbin/danted -f "$WORK/dante.conf" -N 1
wait_port 127.0.0.1 "$H_PORT" || exit 1
wait_port 127.0.0.1 "$D_PORT" || exit 1

fetch() { # MODE PROXYPORT HOST
  curl -sS --max-time 10 "--$1" "127.0.0.1:$2" "http://$3:$HTTP_PORT/index.txt" 2>"$WORK/curl.err"
}

for mode in socks4 socks4a socks5 socks5-hostname; do
  host=127.0.0.1
  case $mode in socks4a | socks5-hostname) host=localhost ;; esac
  check "hasocks curl --$mode" "$body" "$(fetch "$mode" "$H_PORT" "$host")"
  got=$(fetch "$mode" "$D_PORT" "$host")
  if [ "$mode" = socks4a ]; then
    # Dante does not parse SOCKS4a host names (reference section 4): it answers 91.
    if [ "$got" != "$body" ] && grep -q '(91)' "$WORK/curl.err"; then
      ok "dante curl --socks4a refused with 91 as documented (hasocks serves it)"
    else
      bad "dante curl --socks4a: expected Dante's 91, got '$got' $(cat "$WORK/curl.err")"
    fi
  else
    check "dante curl --$mode" "$body" "$got"
  fi
done

# Both log the sessions they served.
grep -q ' \]: ' "$WORK/hasocks.log" && ok "hasocks logged disconnects" || bad "hasocks log has no disconnect line"
grep -q 'tcp/connect \]' "$WORK/dante.log" && ok "dante logged disconnects" || bad "dante log has no disconnect line"

# A target that refuses: both answer with a failure, curl reports it.
dead=$(free_port)
for p in "$H_PORT" "$D_PORT"; do
  if curl -sS --max-time 10 --socks5 "127.0.0.1:$p" "http://127.0.0.1:$dead/" >/dev/null 2>"$WORK/curl.err"; then
    bad "refused target through port $p succeeded?"
  else
    ok "refused target through port $p fails cleanly: $(head -c 120 "$WORK/curl.err")"
  fi
done

# UDP ASSOCIATE with Python's PySocks through both, same config.
here=$(dirname "$0")
$PY "$here/pysocks_udp.py" 127.0.0.1 "$H_PORT" >"$WORK/udp.out" 2>&1 && ok "hasocks PySocks UDP (IP and name targets)" || bad "hasocks PySocks UDP: $(tail -3 "$WORK/udp.out")"
$PY "$here/pysocks_udp.py" 127.0.0.1 "$D_PORT" >"$WORK/udp.out" 2>&1 && ok "dante PySocks UDP (IP and name targets)" || bad "dante PySocks UDP: $(tail -3 "$WORK/udp.out")"

summary
