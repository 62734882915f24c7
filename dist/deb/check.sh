#!/usr/bin/env bash
# CI check of the package: build it, lintian (no error, no warning), every man page through
# groff's warnings (silent), install it with apt-get, run the installed binary, render each
# installed man page and `man hasocks`, load the bash completion (and zsh's and fish's where
# those shells exist), verify the installed units with systemd-analyze, then remove it and
# check it is gone. Run as root on Debian 12 with lintian, groff, man-db, bash-completion,
# dpkg-dev and systemd installed (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."

deb=$(bash dist/deb/build.sh | tail -1)
echo "package: $deb ($(du -h "$deb" | cut -f1))"

# lintian's default profile; any error or warning fails. (As root it says running as root is
# not recommended: that line is about this CI, not the package.)
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
if grep -qE '^[EW]: ' <<<"$lint"; then
  echo "lintian:"; echo "$lint"; exit 1
fi
echo "lintian: no error, no warning"
[ -z "$lint" ] || echo "$lint"

# Every page as packaged: groff with all warnings must print nothing.
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
dpkg-deb -x "$deb" "$pages"
n=0
for page in "$pages"/usr/share/man/man*/*.gz; do
  warnings=$(zcat "$page" | groff -man -ww -z 2>&1)
  if [ -n "$warnings" ]; then
    echo "groff -man -ww -z $(basename "$page"):"; echo "$warnings"; exit 1
  fi
  n=$((n + 1))
done
[ "$n" -ge 4 ] || { echo "only $n man pages in the package"; exit 1; }
echo "groff -man -ww -z: $n pages, no warning"

# A Docker-style dpkg config that drops /usr/share/man would make `man hasocks` fail for a
# reason that is not the package's: say so rather than fail obscurely.
if grep -rqsE '^path-exclude=?/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
  echo "this machine's dpkg excludes /usr/share/man (/etc/dpkg/dpkg.cfg.d): man pages cannot be checked"
  exit 1
fi
apt-get install -y -qq "./$deb" >/dev/null
trap 'rm -rf "$pages"; apt-get remove -y -qq hasocks >/dev/null 2>&1 || true' EXIT

/usr/bin/hasocks --version
getent passwd hasocks >/dev/null || { echo "no hasocks user after install"; exit 1; }
test -f /usr/share/doc/hasocks/examples/relayd.conf
test -f /usr/share/doc/hasocks/examples/sockd.conf
test -f /usr/share/doc/hasocks/changelog.Debian.gz
test -f /usr/share/doc/hasocks/copyright
/usr/bin/hasocks relay -n -f /usr/share/doc/hasocks/examples/relayd.conf
/usr/bin/hasocks server -V -f /usr/share/doc/hasocks/examples/sockd.conf

# The installed pages render, and man finds them by name.
for page in /usr/share/man/man8/hasocks*.8.gz /usr/share/man/man5/hasocks*.5.gz; do
  err=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null)
  [ -z "$err" ] || { echo "man -l $page:"; echo "$err"; exit 1; }
done
for name in hasocks hasocks-server hasocks-relay hasocks-sockd.conf hasocks-relayd.conf; do
  MANWIDTH=80 man -P cat "$name" 2>/dev/null | grep -q "^NAME" ||
    { echo "man $name: not found after install"; exit 1; }
done
echo "man: every page renders; man hasocks finds the pages"

# Completions load where each shell looks for them.
bash -c 'source /usr/share/bash-completion/completions/hasocks; complete -p hasocks' >/dev/null ||
  { echo "bash completion does not load"; exit 1; }
if command -v zsh >/dev/null; then
  zsh -fc 'autoload -U compinit; compinit -u; source /usr/share/zsh/vendor-completions/_hasocks' ||
    { echo "zsh completion does not load"; exit 1; }
fi
if command -v fish >/dev/null; then
  fish -c 'complete -C"hasocks se"' | grep -q '^server' ||
    { echo "fish completion does not complete"; exit 1; }
fi
echo "completions: bash$(command -v zsh >/dev/null && echo ', zsh')$(command -v fish >/dev/null && echo ', fish') load"

# Warnings (unknown keys, bad values, missing man pages) make verify print; any output fails.
out=$(systemd-analyze verify dist/systemd/* /lib/systemd/system/hasocks-* 2>&1) || {
  echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi
echo "systemd-analyze verify: units clean"

apt-get remove -y -qq hasocks >/dev/null
trap 'rm -rf "$pages"' EXIT
if [ -e /usr/bin/hasocks ] || [ -e /lib/systemd/system/hasocks-relay.service ] ||
  [ -e /usr/share/man/man8/hasocks.8.gz ]; then
  echo "files left after apt-get remove"; exit 1
fi
echo "package installs, runs and removes cleanly"
