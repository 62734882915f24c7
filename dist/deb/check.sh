#!/usr/bin/env bash
# CI check of the package: build it, install it with apt-get, run the installed binary,
# verify the installed units with systemd-analyze, then remove it and check it is gone.
# Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/../.."

deb=$(bash dist/deb/build.sh | tail -1)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
apt-get install -y -qq "./$deb" >/dev/null
trap 'apt-get remove -y -qq hasocks >/dev/null 2>&1 || true' EXIT

/usr/bin/hasocks --version
getent passwd hasocks >/dev/null || { echo "no hasocks user after install"; exit 1; }
test -f /usr/share/doc/hasocks/examples/relayd.conf
test -f /usr/share/doc/hasocks/examples/sockd.conf
/usr/bin/hasocks relay -n -f /usr/share/doc/hasocks/examples/relayd.conf
/usr/bin/hasocks server -V -f /usr/share/doc/hasocks/examples/sockd.conf
# Warnings (unknown keys, bad values) make verify print; any output fails the check.
out=$(systemd-analyze verify dist/systemd/* /lib/systemd/system/hasocks-* 2>&1) || {
  echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi
echo "systemd-analyze verify: units clean"

apt-get remove -y -qq hasocks >/dev/null
trap - EXIT
if [ -e /usr/bin/hasocks ] || [ -e /lib/systemd/system/hasocks-relay.service ]; then
  echo "files left after apt-get remove"; exit 1
fi
echo "package installs, runs and removes cleanly"
