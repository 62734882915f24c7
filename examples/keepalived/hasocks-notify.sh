#!/bin/sh
# keepalived notify script: one line per VRRP transition, with the time, to the log file given
# as the first argument (keepalived appends: GROUP|INSTANCE, name, state, priority), and to
# syslog when logger is there.
#   notify "/etc/keepalived/hasocks-notify.sh /var/log/hasocks-vrrp.log"
log=$1
shift
line="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $(hostname) $*"
printf '%s\n' "$line" >> "$log"
command -v logger >/dev/null 2>&1 && logger -t hasocks-vrrp -- "$*"
exit 0
