#!/usr/bin/env bash
# GSSAPI (RFC 1961) against a real KDC: a throw-away realm on 127.0.0.1 (krb5-realm.sh), then
# curl --socks5-gssapi and a python3-gssapi client through `hasocks server` for every
# protection level, user: rules on principals, a wrong key, an expired ticket, a replayed
# token, malformed tokens, and a missing library. Loopback only; the realm is removed at exit.
set -uo pipefail
cd "$(dirname "$0")"
source ./lib.sh
source ./krb5-realm.sh
trap 'realm_down; cleanup' EXIT

REALMDIR=$WORK/realm
realm_up "$REALMDIR"
CLIENT="$PY $PWD/gssapi_client.py"

# jq_py JSON KEY: one field of the client's JSON line (booleans as true/false).
jq_py() {
  $PY -c 'import json,sys; v=json.loads(sys.argv[1] or "{}").get(sys.argv[2]); print(str(v).lower() if isinstance(v,bool) else ("" if v is None else v))' "$1" "$2"
}

# The library's own exchange, in process (syslib's realm tests).
if HASOCKS_KRB5_DIR=$REALMDIR cargo test -q -p hasocks-syslib --test gssapi_realm >"$WORK/syslib.log" 2>&1 &&
  grep -q "3 passed" "$WORK/syslib.log"; then
  ok "syslib: context, wrap/unwrap and replays against the KDC"
else
  bad "syslib realm tests"; cat "$WORK/syslib.log"
fi

# server NAME PORT KEYTAB ENCTYPE [EXTRA_ENV]: starts a hasocks server, log in $WORK/NAME.log.
server() {
  local name=$1 port=$2 keytab=$3 enctype=$4
  cat >"$WORK/$name.conf" <<CONF
logoutput: stderr
hasocks.socket: $WORK/$name.sock
internal: 127.0.0.1 port = $port
external: 127.0.0.1
socksmethod: gssapi
gssapi.keytab: FILE:$keytab
$enctype
client pass { from: 127.0.0.0/8 to: 0/0 log: error }
socks pass { from: 127.0.0.0/8 to: 0/0 socksmethod: gssapi
  user: alice@$REALM probe@$REALM
  log: connect disconnect error }
socks block { from: 0/0 to: 0/0 log: connect error }
CONF
  bg env ${5:-} ${PIN:-} "$HASOCKS" server -f "$WORK/$name.conf" 2>"$WORK/$name.log"
  wait_port 127.0.0.1 "$port"
}

P=$(free_port_retry)
# Pinned to one core with curl (below): see curl's first bug.
PIN="taskset -c 0" server main "$P" "$REALMDIR/server.keytab" "gssapi.enctype: clear integrity confidentiality"
TP=$(free_port_retry)
bg $PY -m http.server "$TP" --bind 127.0.0.1 --directory "$WORK"
wait_port 127.0.0.1 "$TP"
echo hello >"$WORK/hello.txt"

# curl: it asks for "clear" (no per-message protection) and, NEC style, bare. Debian 12's
# curl 7.88.1 has two bugs here, both in its do_SOCKS5 state machine: when the server's
# method selection is not there yet on its first read, it forgets that it offered GSSAPI
# ("SOCKS5 GSSAPI per-message authentication is not supported"; a timing matter: curl runs
# niced on the server's core, so the server's answer is there first, and it is tried again),
# and after a successful GSS-API exchange it falls through to "Undocumented
# SOCKS5 mode attempted to be used by server". So the exchange is what is checked here; a
# curl without those bugs must fetch the page.
for nec in "" "--socks5-gssapi-nec"; do
  good=
  for _ in $(seq 1 20); do
    out=$(taskset -c 0 nice -n 19 curl -sS -v --max-time 10 --socks5-gssapi $nec -x "socks5://localhost:$P" \
      "http://127.0.0.1:$TP/hello.txt" 2>&1)
    if grep -q "authenticated user alice@$REALM with GSS-API" <<<"$out" &&
      grep -q "access without GSS-API data protection granted" <<<"$out" &&
      { grep -q "^hello$" <<<"$out" || grep -q "Undocumented SOCKS5 mode" <<<"$out"; }; then
      good=1
      break
    fi
    grep -q "per-message authentication is not supported" <<<"$out" || break
  done
  if [ -n "$good" ]; then
    ok "curl --socks5-gssapi $nec: alice authenticated, level clear granted"
  else
    bad "curl --socks5-gssapi $nec"; echo "$out" | tail -8
  fi
done
if grep -q "client gssapi%alice@$REALM@127.0.0.1" "$WORK/main.log"; then
  ok "the server's log names the principal (gssapi%alice@$REALM@...)"
else
  bad "principal in the log"; tail -5 "$WORK/main.log"
fi

# Every level, wrapped and NEC style, with data through an echo target.
for level in clear integrity confidentiality; do
  for nec in "" "--nec"; do
    out=$($CLIENT --proxy "127.0.0.1:$P" --level $level $nec --bytes 300000)
    check "python gssapi $level $nec: 300000 bytes each way" "true 300000" \
      "$(jq_py "$out" ok) $(jq_py "$out" bytes)"
  done
done
for level in clear integrity confidentiality; do
  out=$($CLIENT --proxy "127.0.0.1:$P" --level $level --udp)
  check "python gssapi $level: UDP ASSOCIATE, 20 datagrams each way (encapsulated unless clear)" "true 11500" \
    "$(jq_py "$out" ok) $(jq_py "$out" bytes)"
  out=$($CLIENT --proxy "127.0.0.1:$P" --level $level --bind)
  check "python gssapi $level: BIND, both replies and data (encapsulated unless clear)" "true 16384" \
    "$(jq_py "$out" ok) $(jq_py "$out" bytes)"
done
grep -q "pass(1) socks5/connect ]: client gssapi%alice@$REALM@.*300000 bytes up, 300000 bytes down" \
  "$WORK/main.log" && ok "log: the session's bytes under the principal" || bad "session log line"

# user: rules match principals: bob is blocked by rule 2 (reply 02).
KRB5CCNAME=FILE:$REALMDIR/bob.cc kinit bob <"$REALMDIR/bob.pw" >/dev/null
out=$(KRB5CCNAME=FILE:$REALMDIR/bob.cc $CLIENT --proxy "127.0.0.1:$P" --level integrity)
check "user: alice@$REALM refuses bob" "SOCKS reply 02" "$(jq_py "$out" error | grep -o 'SOCKS reply 02')"
grep -q "block(2) socks5/connect -: client gssapi%bob@$REALM@" "$WORK/main.log" &&
  ok "log: bob's request blocked by rule 2" || bad "bob's block line"

# A replayed context token: 01 ff and a log line.
out=$($CLIENT --proxy "127.0.0.1:$P" --level integrity --replay)
check "replayed context token is refused with 01 ff" "true" "$(jq_py "$out" ok)"
grep -q "gssapi: gss_accept_sec_context: .*Request is a replay" "$WORK/main.log" &&
  ok "log: replay" || bad "replay log line"

# Default gssapi.enctype (Dante's: integrity confidentiality) refuses clear.
P2=$(free_port_retry)
server strict "$P2" "$REALMDIR/server.keytab" ""
out=$($CLIENT --proxy "127.0.0.1:$P2" --level clear)
check "default gssapi.enctype refuses clear" "true" \
  "$(jq_py "$out" error | grep -q 'refused protection level' && echo true)"
grep -q "client asked for protection level clear, gssapi.enctype allows integrity confidentiality" \
  "$WORK/strict.log" && ok "log: clear refused" || bad "clear refusal log line"
out=$($CLIENT --proxy "127.0.0.1:$P2" --level integrity)
check "default gssapi.enctype grants integrity" "true" "$(jq_py "$out" ok)"

# A wrong key: the server's keytab predates the key rotation.
P3=$(free_port_retry)
server stale "$P3" "$REALMDIR/stale.keytab" "gssapi.enctype: integrity"
out=$($CLIENT --proxy "127.0.0.1:$P3" --level integrity)
check "a ticket for a key the server lacks is refused with 01 ff" "true" \
  "$(jq_py "$out" error | grep -q 'aborted the context' && echo true)"
grep -q "gssapi: gss_accept_sec_context: " "$WORK/stale.log" && ok "log: wrong key" ||
  bad "wrong key log line"

# An expired ticket: 3 s of life, a server allowing 1 s of clock skew, and a ccache edited
# so the client still offers it.
sed 's/^\[libdefaults\]/[libdefaults]\n  clockskew = 1/' "$REALMDIR/krb5.conf" >"$REALMDIR/strict.conf"
P4=$(free_port_retry)
server expired "$P4" "$REALMDIR/server.keytab" "gssapi.enctype: integrity" KRB5_CONFIG=$REALMDIR/strict.conf
export KRB5CCNAME=FILE:$REALMDIR/short.cc
kinit -l 3s alice <"$REALMDIR/alice.pw" >/dev/null
kvno rcmd/localhost >/dev/null
end=$(( $(date +%s) + 3 + 2 ))
deadline=$((end + 30))
while [ "$(date +%s)" -le "$end" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
$PY ./ccache_extend.py "$REALMDIR/short.cc" >/dev/null
out=$($CLIENT --proxy "127.0.0.1:$P4" --level integrity)
export KRB5CCNAME=FILE:$REALMDIR/alice.cc
check "an expired ticket is refused with 01 ff" "true" \
  "$(jq_py "$out" error | grep -q 'aborted the context' && echo true)"
grep -q "gssapi: gss_accept_sec_context: .*Ticket expired" "$WORK/expired.log" &&
  ok "log: ticket expired" || { bad "expired log line"; tail -3 "$WORK/expired.log"; }

# The relay's socks check with a keytab: up for the server with the key, down for the stale one.
PR=$(free_port_retry)
cat >"$WORK/relayd.conf" <<CONF
interval 2
timeout 1500
log state changes
socket "$WORK/relay.sock"
table <gss> { 127.0.0.1 port $P2, 127.0.0.1 port $P3 }
relay "gss" {
  listen on 127.0.0.1 port $PR
  forward to <gss> port $P2 mode loadbalance check socks hasocks.gssapi \
    keytab "FILE:$REALMDIR/probe.keytab" principal "probe@$REALM" service "rcmd@localhost"
}
CONF
bg "$HASOCKS" relay -f "$WORK/relayd.conf" 2>"$WORK/relay.log"
# wait_log FILE PATTERN: until a line matches (10 s at most).
wait_log() { timeout 10 sh -c 'until grep -q -- "$2" "$1" 2>/dev/null; do sleep 0.1; done' _ "$1" "$2"; }
if wait_log "$WORK/relay.log" "check socks gssapi (.*socks gssapi ok), state unknown -> up" &&
  wait_log "$WORK/relay.log" "check socks gssapi (.*status ff)), state unknown -> down"; then
  ok "relay check socks hasocks.gssapi: the good server up, the stale-keytab one down"
else
  bad "relay gssapi check"; tail -5 "$WORK/relay.log"
fi
grep -q "pass(1) socks5/connect \[: client gssapi%probe@$REALM@" "$WORK/strict.log" &&
  ok "the check's session is logged under probe@$REALM" || bad "probe session log line"

# Malformed tokens: garbage at every step; the server stays up and serves the next client.
$PY - "$P" <<'PY'
import os, random, socket, struct, sys
port = int(sys.argv[1])
random.seed(1961)
cases = [b"\x01\x01\x00\x05abc", b"\x01\x01\xff\xff" + os.urandom(300), b"\x02\x01\x00\x01x",
         b"\x01\x07\x00\x00", b"\x01\x02\x00\x01\x00", b"\x01\x03\x00\x10" + os.urandom(16),
         b"\x01\x01\x00\x00", b"\x01\xff"]
cases += [bytes([1, 1]) + struct.pack("!H", n) + os.urandom(n) for n in (1, 40, 700, 4000, 65535)]
cases += [os.urandom(random.randint(1, 2000)) for _ in range(200)]
for c in cases:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x05\x01\x01")
    assert s.recv(2) == b"\x05\x01"
    s.sendall(c)
    s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()
print(len(cases))
PY
out=$($CLIENT --proxy "127.0.0.1:$P" --level confidentiality)
check "213 malformed token streams, then a good session still works" "true" "$(jq_py "$out" ok)"

# No libgssapi_krb5: the config is refused at file:line:col, method and library named.
if unshare -m true 2>/dev/null; then
  msg=$(unshare -m sh -c "mount --bind /dev/null \$(readlink -f /lib/x86_64-linux-gnu/libgssapi_krb5.so.2) &&
    '$HASOCKS' server -V -f '$WORK/main.conf'" 2>&1)
  if grep -q "main.conf:5:14: method \"gssapi\" needs GSSAPI, and libgssapi_krb5.so.2 cannot be loaded" <<<"$msg"; then
    ok "without libgssapi_krb5 the config is refused at its method"
  else
    bad "missing library message"; echo "$msg"
  fi
else
  echo "skip - missing library (unshare -m not permitted here)"
fi

# Debian's references: dante-server refuses gssapi, and socksify's library has no GSS-API.
printf 'logoutput: stderr\ninternal: 127.0.0.1 port = %s\nexternal: 127.0.0.1\nsocksmethod: gssapi\nclient pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n' \
  "$(free_port_retry)" >"$WORK/danted.conf"
msg=$(danted -V -f "$WORK/danted.conf" 2>&1)
grep -q "Dante must be linked with an external GSSAPI library" <<<"$msg" &&
  ok "Debian's danted refuses socksmethod gssapi (built without GSSAPI)" || bad "danted message"
lib=$(sed -n 's/^LIBRARY="\${SOCKS_LIBRARY:-\${FULLPATH}\(.*\)}"/\1/p' /usr/bin/socksify)
if [ -n "$lib" ] && ! ldd "/usr/lib/x86_64-linux-gnu/$lib" | grep -q gssapi &&
  ! nm -D "/usr/lib/x86_64-linux-gnu/$lib" | grep -qi gss_; then
  ok "Debian's socksify ($lib) is built without GSSAPI"
else
  bad "socksify check"
fi

summary
