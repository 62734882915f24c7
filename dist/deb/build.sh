#!/usr/bin/env bash
# Builds the Debian package: target/deb/hasocks_VERSION-1_ARCH.deb with the binary, the
# systemd units (not enabled: configure /etc/hasocks first), the man pages (hasocks(8) and
# hasocks-COMMAND(8) generated from the CLI definition, the two config pages from docs/man),
# bash, zsh and fish completions, the documentation and example configs under
# /usr/share/doc/hasocks, and a postinst that makes the "hasocks" system user.
#   bash dist/deb/build.sh            (builds the release binary first)
#   HASOCKS_BIN=path bash dist/deb/build.sh
# Install with: apt-get install ./target/deb/hasocks_*.deb
# Needs dpkg-dev (dpkg-shlibdeps) and binutils (strip).
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
debversion="${version}-1"
arch=$(dpkg --print-architecture)
# The changelog's latest entry is this package: same version, and its signer is the
# Maintainer (so the two never disagree).
read -r _ changelog_version _ < dist/deb/changelog
if [ "$changelog_version" != "($debversion)" ]; then
  echo "dist/deb/changelog starts with $changelog_version, not ($debversion): add an entry" >&2
  exit 1
fi
maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' dist/deb/changelog | head -1)
bin=${HASOCKS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -p hasocks
  bin=target/release/hasocks
fi
out=target/deb
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The package's tree sits where dpkg-shlibdeps expects a package's files: debian/PACKAGE in
# a source tree (its debian/control is written below).
stage="$work/src/debian/hasocks"
mkdir -p "$stage"
chmod 0755 "$stage"
umask 022

install -D -m 0755 "$bin" "$stage/usr/bin/hasocks"
# What dh_strip does: no debug sections, no .comment/.note.
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$stage/usr/bin/hasocks"
for u in dist/systemd/*.service dist/systemd/*.socket; do
  install -D -m 0644 "$u" "$stage/lib/systemd/system/$(basename "$u")"
done

# Man pages: the command pages rendered by the binary itself, the config pages as written.
man="$stage/usr/share/man"
install -d "$work/man" "$man/man8" "$man/man5"
"$stage/usr/bin/hasocks" generate man "$work/man" >/dev/null
cp docs/man/*.5 "$work/man/"
for page in "$work"/man/*.[58]; do
  section=${page##*.}
  gzip -9n < "$page" > "$man/man$section/$(basename "$page").gz"
done
find "$man" -type f -exec chmod 0644 {} +

# Completions, where each shell looks for vendor completions.
comp="$stage/usr/share"
install -d "$comp/bash-completion/completions" "$comp/zsh/vendor-completions" \
  "$comp/fish/vendor_completions.d"
"$stage/usr/bin/hasocks" generate completions bash > "$comp/bash-completion/completions/hasocks"
"$stage/usr/bin/hasocks" generate completions zsh > "$comp/zsh/vendor-completions/_hasocks"
"$stage/usr/bin/hasocks" generate completions fish > "$comp/fish/vendor_completions.d/hasocks.fish"
chmod 0644 "$comp/bash-completion/completions/hasocks" "$comp/zsh/vendor-completions/_hasocks" \
  "$comp/fish/vendor_completions.d/hasocks.fish"

doc="$stage/usr/share/doc/hasocks"
install -D -m 0644 README.md "$doc/README.md"
install -d "$doc/docs"
install -m 0644 docs/*.md "$doc/docs/"
install -m 0644 dist/deb/copyright "$doc/copyright"
gzip -9n < dist/deb/changelog > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
install -d "$doc/examples"
cp -r examples/. "$doc/examples/"
find "$doc/examples" -type d -exec chmod 0755 {} +
find "$doc/examples" -type f -exec chmod 0644 {} +
find "$doc/examples" -type f \( -name '*.sh' -o -name '*.py' -o -name '*.nft' \) -exec chmod 0755 {} +
install -d -m 0755 "$stage/etc/hasocks"
install -D -m 0644 dist/deb/lintian-overrides "$stage/usr/share/lintian/overrides/hasocks"

# Depends: what dpkg-shlibdeps finds for the binary (versioned, as debhelper would write it);
# it knows the package's root by its DEBIAN folder.
install -d "$stage/DEBIAN"
printf 'Source: hasocks\n\nPackage: hasocks\nArchitecture: any\n' > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -edebian/hasocks/usr/bin/hasocks |
  sed -n 's/^shlibs:Depends=//p')
depends="adduser${shlibs:+, $shlibs}"
size=$(du -sk --apparent-size "$stage" | cut -f1)

cat > "$stage/DEBIAN/control" <<TXT
Package: hasocks
Version: ${debversion}
Architecture: ${arch}
Maintainer: ${maintainer}
Installed-Size: ${size}
Depends: ${depends}
Suggests: nftables, conntrack
Section: net
Priority: optional
Description: high-availability SOCKS: server, layer-4 relay, health checks
 hasocks server reads Dante's sockd.conf; hasocks relay reads OpenBSD relayd's
 relayd.conf and balances SOCKS servers by client address with health checks.
 Reload and binary upgrade lose no session; systemd units with socket
 activation are included (not enabled until configured).
TXT
# The units are registered with deb-systemd-helper (init-system-helpers, essential) but not
# enabled: there is no config in /etc/hasocks yet.
cat > "$stage/DEBIAN/postinst" <<'TXT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd hasocks >/dev/null; then
    adduser --system --group --home /nonexistent --no-create-home --quiet hasocks
  fi
  for u in hasocks-relay.service hasocks-server.service hasocks-relay.socket hasocks-server.socket; do
    deb-systemd-helper update-state "$u" >/dev/null || true
  done
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
exit 0
TXT
cat > "$stage/DEBIAN/prerm" <<'TXT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop hasocks-relay.socket hasocks-server.socket \
    hasocks-relay.service hasocks-server.service >/dev/null || true
fi
exit 0
TXT
cat > "$stage/DEBIAN/postrm" <<'TXT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
  for u in hasocks-relay.service hasocks-server.service hasocks-relay.socket hasocks-server.socket; do
    deb-systemd-helper purge "$u" >/dev/null || true
  done
fi
# The hasocks user stays (files it owns may remain), as Debian does for system users.
exit 0
TXT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/hasocks_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
