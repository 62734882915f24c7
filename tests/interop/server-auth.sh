#!/usr/bin/env bash
# Authentication with real clients and real system accounts: the same sockd.conf
# (`socksmethod: username`, a `user:` rule passing one user and blocking another) under
# Dante and `hasocks server`, with the same outcomes for the same users and passwords; curl
# --socks5/--socks5-hostname -U, PySocks and python-socks with a user name; hasocks'
# `hasocks.passwordfile` with a file made by htpasswd -B and -5; `hasocks relay` in front
# with `check socks user ... password ...`.
#
# Needs root (useradd/chpasswd, Dante's user.privileged: root); the accounts are removed at
# exit, also on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
here=$(dirname "$0")

if [ "$(id -u)" != 0 ]; then
  echo "skip - server-auth.sh needs root (system accounts, Dante's user.privileged)"
  summary
  exit 0
fi
for t in useradd chpasswd userdel htpasswd curl /usr/sbin/danted; do
  command -v "$t" >/dev/null || { bad "missing $t (apt-get install passwd apache2-utils curl dante-server)"; summary; exit 1; }
done

# Two accounts: alice (yescrypt, Debian 12's default) passes the user: rule, bob (sha512)
# has a right password but no rule.
A="hsa$$a"
B="hsa$$b"
PA="alice pw $$"
PB="bob pw $$"
drop_accounts() { userdel "$A" 2>/dev/null; userdel "$B" 2>/dev/null; }
trap 'drop_accounts; cleanup' EXIT
useradd -M -s /usr/sbin/nologin "$A" && echo "$A:$PA" | chpasswd -c YESCRYPT || { bad "cannot create $A"; exit 1; }
useradd -M -s /usr/sbin/nologin "$B" && echo "$B:$PB" | chpasswd -c SHA512 || { bad "cannot create $B"; exit 1; }
check "alice's shadow hash is yescrypt" '$y$' "$(getent shadow "$A" | cut -d: -f2 | cut -c1-3)"
check "bob's shadow hash is sha512-crypt" '$6$' "$(getent shadow "$B" | cut -d: -f2 | cut -c1-3)"

# The same two users in an htpasswd file: bcrypt (-B) for alice, sha512 (-5) for bob.
htpasswd -cbB "$WORK/htpasswd" "$A" "$PA" 2>/dev/null
htpasswd -b5 "$WORK/htpasswd" "$B" "$PB" 2>/dev/null
check "htpasswd -B wrote bcrypt" '$2y$' "$(grep "^$A:" "$WORK/htpasswd" | cut -d: -f2 | cut -c1-4)"
check "htpasswd -5 wrote sha512-crypt" '$6$' "$(grep "^$B:" "$WORK/htpasswd" | cut -d: -f2 | cut -c1-3)"

HTTP_PORT=$(free_port_retry)
body="hasocks auth interop $(date +%s%N)"
mkdir -p "$WORK/www" && echo "$body" > "$WORK/www/index.txt"
bg $PY -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" 2>/dev/null
wait_port 127.0.0.1 "$HTTP_PORT" || exit 1

conf() { # PORT NAME METHOD [EXTRA SETTING]
  cat <<CONF
errorlog: stderr
logoutput: $WORK/$2.log
internal: 127.0.0.1 port = $1
external: 127.0.0.1
socksmethod: $3
clientmethod: none
user.privileged: root
user.unprivileged: nobody
${4:-}
client pass {
        from: 0/0 to: 0/0
        log: error connect disconnect
}
socks pass {
        from: 0/0 to: 0/0
        user: $A
        log: error connect disconnect
}
socks block {
        from: 0/0 to: 0/0
        log: error connect
}
CONF
}

D_PORT=$(free_port_retry)
H_PORT=$(free_port_retry)
F_PORT=$(free_port_retry)
conf "$D_PORT" dante username > "$WORK/dante.conf"
conf "$H_PORT" hasocks username > "$WORK/hasocks.conf"
conf "$F_PORT" hasocks-file hasocks.passwordfile "hasocks.passwordfile: $WORK/htpasswd" > "$WORK/hasocks-file.conf"
chmod 755 "$WORK"
# The password file stays readable by root only: hasocks reads it before dropping to nobody.
chmod 600 "$WORK/htpasswd"
"$HASOCKS" server -V -f "$WORK/hasocks.conf" >/dev/null && ok "hasocks server -V accepts Dante's config" || bad "hasocks server -V"
bg /usr/sbin/danted -f "$WORK/dante.conf" -N 1
bg "$HASOCKS" server -f "$WORK/hasocks.conf"
bg "$HASOCKS" server -f "$WORK/hasocks-file.conf"
for p in "$D_PORT" "$H_PORT" "$F_PORT"; do wait_port 127.0.0.1 "$p" || exit 1; done

# outcome MODE PORT USER PASS: the body, or "refused (curl N)".
outcome() {
  local host=127.0.0.1 out
  [ "$1" = socks5-hostname ] && host=localhost
  if out=$(curl -sS --max-time 10 "--$1" "127.0.0.1:$2" -U "$3:$4" "http://$host:$HTTP_PORT/index.txt" 2>"$WORK/curl.err"); then
    echo "$out"
  else
    echo "refused (curl $?)"
  fi
}

for mode in socks5 socks5-hostname; do
  for who in "alice right:$A:$PA:$body" "alice wrong:$A:x$PA:refused" "bob right:$B:$PB:refused"; do
    IFS=: read -r label user pass want <<<"$who"
    d=$(outcome "$mode" "$D_PORT" "$user" "$pass")
    h=$(outcome "$mode" "$H_PORT" "$user" "$pass")
    f=$(outcome "$mode" "$F_PORT" "$user" "$pass")
    case $want in
      refused) [[ $d == refused* ]] && ok "dante --$mode $label: $d" || bad "dante --$mode $label: expected refused, got '$d'" ;;
      *) check "dante --$mode $label" "$want" "$d" ;;
    esac
    check "hasocks (username) --$mode $label: same outcome as Dante" "$d" "$h"
    check "hasocks (passwordfile) --$mode $label: same outcome as Dante" "$d" "$f"
  done
done

# Both log the user on the session line, Dante's way, and the failures with the name only.
for n in dante hasocks; do
  grep -q "username%$A@127.0.0.1" "$WORK/$n.log" && ok "$n logs username%$A@ on its session lines" || bad "$n log has no username%$A@"
  grep -q "system password authentication failed for user \"$A\"" "$WORK/$n.log" &&
    ok "$n logs the wrong password of $A" || bad "$n does not log the failure of $A: $(grep -i fail "$WORK/$n.log" | head -n2)"
  if grep -q -- "x$PA" "$WORK/$n.log"; then bad "$n logged a password"; else ok "$n logs no password"; fi
done
grep -q "hasocks.passwordfile%$A@127.0.0.1" "$WORK/hasocks-file.log" && ok "password-file sessions log hasocks.passwordfile%$A@" || bad "no hasocks.passwordfile%$A@ in the log"

# The network-facing hasocks runs as nobody; its auth helper child keeps root.
HPID=$(pgrep -f -- "server -f $WORK/hasocks.conf" | head -n1)
check "hasocks server runs as nobody" "nobody" "$(ps -o user= -p "$HPID" | tr -d ' ')"
check "its auth-helper child runs as root" "root" "$(ps -o user= --ppid "$HPID" | tr -d ' ' | head -n1)"

# Python clients with a user name, against both hasocks methods.
for lib in pysocks python-socks; do
  for p in "$H_PORT" "$F_PORT"; do
    got=$($PY "$here/socks_auth.py" "$lib" 127.0.0.1 "$p" "$A" "$PA" 127.0.0.1 "$HTTP_PORT" 2>"$WORK/py.err")
    check "$lib as $A through port $p" "$body" "$got"
    $PY "$here/socks_auth.py" "$lib" 127.0.0.1 "$p" "$B" "$PB" 127.0.0.1 "$HTTP_PORT" >/dev/null 2>"$WORK/py.err"
    check "$lib as $B through port $p is refused by the rule" 2 "$?"
  done
done
got=$($PY "$here/socks_auth.py" pysocks 127.0.0.1 "$D_PORT" "$A" "$PA" 127.0.0.1 "$HTTP_PORT" 2>"$WORK/py.err")
check "pysocks as $A through Dante (same config)" "$body" "$got"

# --- hasocks relay in front, with the SOCKS health check logging in -------------------------
R_PORT=$(free_port_retry)
R2_PORT=$(free_port_retry)
cat > "$WORK/relayd.conf" <<CONF
interval 2
timeout 1500
log state changes
table <authhosts> { 127.0.0.1 port $F_PORT }
table <badcreds> { 127.0.0.1 port $F_PORT }
relay "auth" {
   listen on 127.0.0.1 port $R_PORT
   forward to <authhosts> port $F_PORT mode loadbalance check socks user "$A" password "$PA"
}
relay "wrongpw" {
   listen on 127.0.0.1 port $R2_PORT
   forward to <badcreds> port $F_PORT mode loadbalance check socks user "$A" password "not it"
}
CONF
bg "$HASOCKS" relay -f "$WORK/relayd.conf" 2>"$WORK/relay.err"
wait_port 127.0.0.1 "$R_PORT" || { cat "$WORK/relay.err" >&2; exit 1; }
wait_log() {
  for _ in $(seq 1 100); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
wait_log "$WORK/relay.err" 'check socks (.*socks ok), state unknown -> up' &&
  ok "check socks with the right password: host up" || bad "check socks user/password did not mark the host up: $(tail -n 3 "$WORK/relay.err")"
wait_log "$WORK/relay.err" 'authentication failed (status 01)), state unknown -> down' &&
  ok "check socks with a wrong password: host down" || bad "check socks with a wrong password did not mark the host down: $(tail -n 3 "$WORK/relay.err")"
check "curl --socks5 -U through the relay" "$body" "$(outcome socks5 "$R_PORT" "$A" "$PA")"
check "curl --socks5-hostname -U through the relay" "$body" "$(outcome socks5-hostname "$R_PORT" "$A" "$PA")"
got=$(outcome socks5 "$R_PORT" "$B" "$PB")
[[ $got == refused* ]] && ok "bob through the relay: $got" || bad "bob through the relay was let through: $got"
got=$($PY "$here/socks_auth.py" python-socks 127.0.0.1 "$R_PORT" "$A" "$PA" 127.0.0.1 "$HTTP_PORT" 2>"$WORK/py.err")
check "python-socks as $A through the relay" "$body" "$got"

summary
