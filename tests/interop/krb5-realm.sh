# A throw-away Kerberos realm on loopback for the GSSAPI tests: Debian's krb5-kdc with its own
# KRB5_CONFIG and KRB5_KDC_PROFILE in a temporary directory, a KDC on a free 127.0.0.1 port,
# the service principal rcmd/localhost with its keytab, and users alice and bob.
# Sourced, not run: `realm_up DIR` exports KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5RCACHEDIR and
# REALM_KDC_PID; `realm_down` stops the KDC (the caller removes DIR).
# Files in DIR: server.keytab (rcmd/localhost), stale.keytab (rcmd/localhost's key before a
# rotation), probe.keytab (principal probe), alice.cc (alice's tickets after kinit), alice.pw,
# bob.pw.

REALM=HASOCKS.TEST

realm_up() {
  local dir=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/rcache"
  cat >"$dir/krb5.conf" <<CONF
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
[realms]
  $REALM = {
    kdc = 127.0.0.1:$port
  }
CONF
  cat >"$dir/kdc.conf" <<CONF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$port
  kdc_tcp_listen = 127.0.0.1:$port
[realms]
  $REALM = {
    database_name = $dir/principal
    key_stash_file = $dir/stash
    acl_file = $dir/kadm5.acl
    max_life = 10h
  }
[logging]
  kdc = FILE:$dir/kdc.log
CONF
  export KRB5_CONFIG=$dir/krb5.conf KRB5_KDC_PROFILE=$dir/kdc.conf KRB5RCACHEDIR=$dir/rcache
  export KRB5CCNAME=FILE:$dir/alice.cc
  : >"$dir/kadm5.acl"
  kdb5_util create -s -r "$REALM" -P "hasocks-master-$$" >/dev/null
  kadmin.local -q "addprinc -randkey rcmd/localhost" >/dev/null
  kadmin.local -q "ktadd -k $dir/server.keytab rcmd/localhost" >/dev/null
  # The key rotated after this copy: stale.keytab lacks the key tickets are now issued for.
  cp "$dir/server.keytab" "$dir/stale.keytab"
  kadmin.local -q "ktadd -k $dir/server.keytab rcmd/localhost" >/dev/null
  echo "alice-pw-$$" >"$dir/alice.pw"
  echo "bob-pw-$$" >"$dir/bob.pw"
  kadmin.local -q "addprinc -pw $(cat "$dir/alice.pw") alice" >/dev/null
  kadmin.local -q "addprinc -pw $(cat "$dir/bob.pw") bob" >/dev/null
  kadmin.local -q "addprinc -randkey probe" >/dev/null
  kadmin.local -q "ktadd -k $dir/probe.keytab probe" >/dev/null
  krb5kdc -n -P "$dir/kdc.pid" &
  REALM_KDC_PID=$!
  export REALM_KDC_PID
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  kinit alice <"$dir/alice.pw" >/dev/null
}

realm_down() {
  if [ -n "${REALM_KDC_PID:-}" ]; then
    kill "$REALM_KDC_PID" 2>/dev/null || true
    wait "$REALM_KDC_PID" 2>/dev/null || true
    REALM_KDC_PID=
  fi
}
