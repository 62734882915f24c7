#!/usr/bin/env bash
# Builds the Debian package: target/deb/hasocks_VERSION-1_ARCH.deb with the binary, the
# systemd units (not enabled: configure /etc/hasocks first), the example configs under
# /usr/share/doc/hasocks/examples, and a postinst that makes the "hasocks" system user.
#   bash dist/deb/build.sh            (builds the release binary first)
#   HASOCKS_BIN=path bash dist/deb/build.sh
# Install with: apt-get install ./target/deb/hasocks_*.deb
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
bin=${HASOCKS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -p hasocks
  bin=target/release/hasocks
fi
out=target/deb
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT

install -D -m 0755 "$bin" "$stage/usr/bin/hasocks"
strip "$stage/usr/bin/hasocks" 2>/dev/null || true
for u in dist/systemd/*.service dist/systemd/*.socket; do
  install -D -m 0644 "$u" "$stage/lib/systemd/system/$(basename "$u")"
done
doc="$stage/usr/share/doc/hasocks"
install -D -m 0644 README.md "$doc/README.md"
install -d "$doc/examples"
cp -r examples/. "$doc/examples/"
find "$doc/examples" -type d -exec chmod 0755 {} +
find "$doc/examples" -type f -exec chmod 0644 {} +
find "$doc/examples" -type f \( -name '*.sh' -o -name '*.py' -o -name '*.nft' \) -exec chmod 0755 {} +
cat > "$doc/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hasocks
License: MIT or Apache-2.0
TXT
install -d -m 0755 "$stage/etc/hasocks"

# Depends: the packages that hold the shared libraries the binary links.
depends=$(ldd "$stage/usr/bin/hasocks" | awk '/=>/ {print $3}' | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')
depends="adduser${depends:+, $depends}"
size=$(du -sk "$stage" | cut -f1)

install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<TXT
Package: hasocks
Version: ${version}-1
Architecture: ${arch}
Maintainer: hasocks developers <hasocks@localhost>
Installed-Size: ${size}
Depends: ${depends}
Section: net
Priority: optional
Description: high-availability SOCKS: server, layer-4 relay, health checks
 hasocks server reads Dante's sockd.conf; hasocks relay reads OpenBSD relayd's
 relayd.conf and balances SOCKS servers by client address with health checks.
 Reload and binary upgrade lose no session; systemd units with socket
 activation are included (not enabled until configured).
TXT
cat > "$stage/DEBIAN/postinst" <<'TXT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd hasocks >/dev/null; then
    adduser --system --group --home /nonexistent --no-create-home --quiet hasocks
  fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
  fi
fi
exit 0
TXT
cat > "$stage/DEBIAN/prerm" <<'TXT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  for u in hasocks-relay.socket hasocks-server.socket hasocks-relay.service hasocks-server.service; do
    systemctl stop "$u" >/dev/null 2>&1 || true
  done
fi
exit 0
TXT
cat > "$stage/DEBIAN/postrm" <<'TXT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
# The hasocks user stays (files it owns may remain), as Debian does for system users.
exit 0
TXT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/hasocks_${version}-1_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
