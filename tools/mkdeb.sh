#!/bin/sh
# usage: mkdeb.sh OUTDIR   (make deb)  ->  OUTDIR/linjail_VERSION_amd64.deb
#
# The files are tools/install.sh's, staged for /usr (jail, jexec, jailctl in
# /usr/sbin; jls in /usr/bin, which ordinary users' PATH has), the unit in
# /lib/systemd/system, zsh completion in Debian's vendor directory; the
# control files come from packaging/deb/.  No debhelper: dpkg-deb alone,
# with files owned by root whoever builds.  Byte code is not shipped: postinst
# compiles it for the installed python3 and prerm removes it (dh_python3's way).
set -eu
out=$1
top=$(cd "$(dirname "$0")/.." && pwd)
pkg=$top/packaging/deb
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$top/src/linjail/__init__.py")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "mkdeb: no __version__ in src/linjail/__init__.py" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"

DESTDIR=$stage PREFIX=/usr SYSCONFDIR=/etc SYSTEMDUNITDIR=/lib/systemd/system \
    ZSHCOMPDIR=/usr/share/zsh/vendor-completions MANIFEST=no GZIPMAN=yes COMPILE=no \
    PYTHON=/usr/bin/python3 sh "$top/tools/install.sh"

doc=$stage/usr/share/doc/linjail
install -d -m 755 "$doc"
install -m 644 "$pkg/copyright" "$doc/copyright"
gzip -9n -c "$pkg/changelog" > "$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"
install -d -m 755 "$stage/usr/share/lintian/overrides"
launchers=$(grep -v '^#' "$top/tools/commands" | while read -r cmd where; do
    [ -z "$cmd" ] || printf 'usr/%s/%s\n' "$where" "$cmd"; done)
awk -v list="$launchers" '
    /@LAUNCHER@/ { n = split(list, l, "\n"); for (i = 1; i <= n; i++) {
        line = $0; sub(/@LAUNCHER@/, l[i], line); print line }; next }
    { print }' "$pkg/lintian-overrides" > "$stage/usr/share/lintian/overrides/linjail"
chmod 644 "$stage/usr/share/lintian/overrides/linjail"

install -d -m 755 "$stage/DEBIAN"
for script in postinst prerm postrm; do
    install -m 755 "$pkg/$script" "$stage/DEBIAN/$script"
done
(cd "$stage" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# what the installed commands need: python3 (the launchers run /usr/bin/python3)
# and libseccomp2 (the seccomp filter is compiled with it); the Makefile's RUN_DEBS
depends="python3 (>= 3.11), libseccomp2"
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    -e "s/^Architecture: .*/Architecture: $arch/" "$pkg/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' |
    LC_ALL=C sort | xargs md5sum) > "$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/linjail_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
