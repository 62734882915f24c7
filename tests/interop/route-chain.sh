#!/usr/bin/env bash
# Server chaining with real programs, each proxy going out from an address of its own in a
# network namespace, and Dante's own `route` syntax in every config:
#   hasocks -> Dante, Dante -> hasocks (curl through the chain; the target sees the
#   upstream's address), hasocks -> tinyproxy (HTTP CONNECT), username forwarding to a Dante
#   that requires a password (a system account), UDP through two hasocks servers (PySocks),
#   `hasocks server -V` showing the routes, and a route hasocks cannot carry refused at its
#   file:line:col.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/route-ns.sh"
. "$here/lib.sh"

for t in curl /usr/sbin/danted tinyproxy useradd chpasswd; do
  command -v "$t" >/dev/null || { bad "missing $t (dante-server curl tinyproxy passwd)"; summary; exit 1; }
done

W_PORT=$(free_port_retry)
bg $PY "$here/whoami.py" 127.0.0.1 "$W_PORT"
wait_port 127.0.0.1 "$W_PORT" || exit 1
whoami() { # MODE PROXY [USER:PASS]: the address the target saw, or "failed (curl N)"
  local out extra=()
  [ -n "${3:-}" ] && extra=(-U "$3")
  local host=127.0.0.1
  [ "$1" = socks5-hostname ] && host=localhost
  if out=$(curl -sS --max-time 10 "--$1" "$2" "${extra[@]}" "http://$host:$W_PORT/" 2>"$WORK/curl.err"); then
    echo "$out"
  else
    echo "failed (curl $?)"
  fi
}

# --- hasocks -> Dante ---------------------------------------------------------------------
DU=$(free_port_retry)
dante_conf du 127.0.0.2 "$DU" none
bg /usr/sbin/danted -f "$WORK/du.conf" -N 1 2>"$WORK/du.err"
HC=$(free_port_retry)
hasocks_conf hc 127.0.0.1 "$HC" none "" "$(route_to 127.0.0.2 "$DU" "        command: connect
        proxyprotocol: socks_v5
        method: none")"
"$HASOCKS" server -V -f "$WORK/hc.conf" > "$WORK/hc.v" 2>&1 && ok "hasocks server -V accepts Dante's route syntax" || bad "-V: $(cat "$WORK/hc.v")"
grep -q "^route #1 (line 12): from 0/0 to 0/0 via 127.0.0.2 port = $DU speaking socks_v5, methods none; commands connect" "$WORK/hc.v" &&
  ok "-V shows the route as parsed" || bad "-V does not show the route: $(cat "$WORK/hc.v")"
bg "$HASOCKS" server -f "$WORK/hc.conf" 2>"$WORK/hc.err"
wait_port 127.0.0.2 "$DU" && wait_port 127.0.0.1 "$HC" || exit 1
for mode in socks5 socks5-hostname socks4; do
  check "curl --$mode -> hasocks -> Dante: the target sees Dante's address" 127.0.0.2 "$(whoami "$mode" "127.0.0.1:$HC")"
done
wait_log "$WORK/hc.log" "route #1 via 127.0.0.2:$DU (socks_v5)" &&
  ok "hasocks logs the route and upstream of each session" || bad "no route in hasocks' log: $(tail -n 2 "$WORK/hc.log")"
grep -q "tcp/connect \]" "$WORK/du.log" && ok "Dante upstream logged the sessions" || bad "Dante upstream log: $(tail -n 2 "$WORK/du.log")"

# --- Dante -> hasocks ---------------------------------------------------------------------
HU=$(free_port_retry)
hasocks_conf hu 127.0.0.3 "$HU" none
bg "$HASOCKS" server -f "$WORK/hu.conf" 2>"$WORK/hu.err"
DC=$(free_port_retry)
dante_conf dc 127.0.0.1 "$DC" none "" "" "$(route_to 127.0.0.3 "$HU" "        command: connect
        proxyprotocol: socks_v5
        method: none")"
bg /usr/sbin/danted -f "$WORK/dc.conf" -N 1 2>"$WORK/dc.err"
wait_port 127.0.0.3 "$HU" && wait_port 127.0.0.1 "$DC" || exit 1
"$HASOCKS" server -V -f "$WORK/dc.conf" >/dev/null 2>&1 && ok "hasocks server -V accepts the Dante chain's own config too" || bad "-V refuses dc.conf"
for mode in socks5 socks5-hostname; do
  check "curl --$mode -> Dante -> hasocks: the target sees hasocks' address" 127.0.0.3 "$(whoami "$mode" "127.0.0.1:$DC")"
done
wait_log "$WORK/hu.log" "client 127.0.0.1:" && ok "hasocks upstream served the Dante chain" || bad "hasocks upstream log: $(tail -n 2 "$WORK/hu.log")"

# --- hasocks -> tinyproxy (HTTP CONNECT) ---------------------------------------------------
TP=$(free_port_retry)
cat > "$WORK/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port $TP
Listen 127.0.0.4
Bind 127.0.0.4
Timeout 60
MaxClients 100
Allow 127.0.0.1
LogLevel Connect
CONF
bg tinyproxy -d -c "$WORK/tinyproxy.conf" >"$WORK/tinyproxy.err" 2>&1
HH=$(free_port_retry)
hasocks_conf hh 127.0.0.1 "$HH" none "" "$(route_to 127.0.0.4 "$TP" "        command: connect
        proxyprotocol: http")"
bg "$HASOCKS" server -f "$WORK/hh.conf" 2>"$WORK/hh.err"
wait_port 127.0.0.4 "$TP" && wait_port 127.0.0.1 "$HH" || exit 1
for mode in socks5 socks5-hostname; do
  check "curl --$mode -> hasocks -> tinyproxy: the target sees tinyproxy's address" 127.0.0.4 "$(whoami "$mode" "127.0.0.1:$HH")"
done
dead=$(free_port_retry)
if curl -sS --max-time 10 --socks5 "127.0.0.1:$HH" "http://127.0.0.1:$dead/" >/dev/null 2>"$WORK/curl.err"; then
  bad "a refused target through tinyproxy succeeded?"
else
  ok "a refused target through tinyproxy fails cleanly: $(head -c 100 "$WORK/curl.err")"
fi
sed 's/command: connect/command: connect bind/' "$WORK/hh.conf" > "$WORK/hh-bind.conf"
if "$HASOCKS" server -V -f "$WORK/hh-bind.conf" 2>"$WORK/hh-bind.err"; then
  bad "bind through an HTTP upstream was accepted"
else
  grep -q "hh-bind.conf:14:26: command \"bind\" cannot go through proxyprotocol http" "$WORK/hh-bind.err" &&
    ok "bind through an HTTP upstream is refused at file:line:col" || bad "unexpected error: $(cat "$WORK/hh-bind.err")"
fi

# --- UDP through two hasocks servers --------------------------------------------------------
HC2=$(free_port_retry)
hasocks_conf hc2 127.0.0.1 "$HC2" none "" "$(route_to 127.0.0.3 "$HU")"
bg "$HASOCKS" server -f "$WORK/hc2.conf" 2>"$WORK/hc2.err"
wait_port 127.0.0.1 "$HC2" || exit 1
$PY "$here/pysocks_udp.py" 127.0.0.1 "$HC2" >"$WORK/udp.out" 2>&1 &&
  ok "PySocks UDP through hasocks -> hasocks: every echo back (ip and name targets)" || bad "UDP chain: $(tail -n 3 "$WORK/udp.out")"
wait_log "$WORK/hc2.log" "route #1 via 127.0.0.3:$HU (socks_v5) relay 127.0.0.3:" &&
  ok "the association's log line names the route, upstream and its relay" || bad "UDP chain log: $(tail -n 2 "$WORK/hc2.log")"
wait_log "$WORK/hu.log" "udpassociate" && ok "the upstream hasocks carried the association" || bad "no association upstream: $(tail -n 2 "$WORK/hu.log")"

# --- username forwarding to a Dante that requires a password --------------------------------
A="hsr$$a"
B="hsr$$b"
PA="alice pw $$"
PB="bob pw $$"
drop_accounts() { userdel "$A" 2>/dev/null; userdel "$B" 2>/dev/null; }
trap 'drop_accounts; cleanup' EXIT
useradd -M -s /usr/sbin/nologin "$A" && echo "$A:$PA" | chpasswd || { bad "cannot create $A"; summary; exit 1; }
useradd -M -s /usr/sbin/nologin "$B" && echo "$B:$PB" | chpasswd || { bad "cannot create $B"; summary; exit 1; }
DA=$(free_port_retry)
dante_conf da 127.0.0.5 "$DA" username "user: $A
        log: error connect disconnect"
bg /usr/sbin/danted -f "$WORK/da.conf" -N 1 2>"$WORK/da.err"
HA=$(free_port_retry)
hasocks_conf ha 127.0.0.1 "$HA" username "" "$(route_to 127.0.0.5 "$DA" "        proxyprotocol: socks_v5
        method: username")"
"$HASOCKS" server -V -f "$WORK/ha.conf" >/dev/null 2>"$WORK/ha.v"
grep -q "ha.conf:15:17: .*forwards each client's user name and password to its upstream in cleartext" "$WORK/ha.v" &&
  ok "a username route warns that it forwards passwords in cleartext" || bad "no cleartext warning: $(cat "$WORK/ha.v")"
bg "$HASOCKS" server -f "$WORK/ha.conf" 2>"$WORK/ha.err"
wait_port 127.0.0.5 "$DA" && wait_port 127.0.0.1 "$HA" || exit 1
for mode in socks5 socks5-hostname; do
  check "curl --$mode -U alice through hasocks -> Dante (username): Dante's address" 127.0.0.5 "$(whoami "$mode" "127.0.0.1:$HA" "$A:$PA")"
  got=$(whoami "$mode" "127.0.0.1:$HA" "$B:$PB")
  [[ $got == failed* ]] && ok "--$mode bob (right password, not in Dante's user: rule) is refused upstream: $got" || bad "bob got through: $got"
  got=$(whoami "$mode" "127.0.0.1:$HA" "$A:wrong")
  [[ $got == failed* ]] && ok "--$mode alice with a wrong password is refused: $got" || bad "a wrong password got through: $got"
done
grep -q "username%$A@127.0.0.1" "$WORK/da.log" && ok "Dante upstream logs alice's forwarded name" || bad "Dante log lacks username%$A@: $(tail -n 3 "$WORK/da.log")"
if grep -q -- "$PA" "$WORK/ha.log" "$WORK/da.log"; then bad "a password is in a log"; else ok "no password in either log"; fi

summary
