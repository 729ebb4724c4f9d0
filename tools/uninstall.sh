#!/bin/sh
# usage: uninstall.sh      (make uninstall sets PREFIX, DESTDIR, LIBDIR)
# Removes exactly what tools/install.sh recorded in LIBDIR/installed-files:
# its files, byte code a later interpreter wrote beside them, then the
# directories it created, deepest first, where they are empty.
set -eu
: "${PREFIX:=/usr/local}" "${DESTDIR:=}" "${LIBDIR:=$PREFIX/lib/linjail}"
manifest=$DESTDIR$LIBDIR/installed-files
if [ ! -f "$manifest" ]; then
    echo "uninstall: $manifest: No such file or directory (nothing installed under $PREFIX)" >&2
    exit 1
fi
list=$(mktemp)
trap 'rm -f "$list"' EXIT
cp "$manifest" "$list"
grep '^f ' "$list" | while read -r _ f; do rm -f "$DESTDIR$f"; done
# byte code an interpreter wrote later (an upgraded python3) in our package
if [ -d "$DESTDIR$LIBDIR/linjail" ]; then
    find "$DESTDIR$LIBDIR/linjail" -depth -type d -name __pycache__ \
        -exec sh -c 'rm -f "$1"/*.pyc && rmdir "$1" 2>/dev/null || true' sh {} \;
fi
grep '^d ' "$list" | awk '{ print length($2) " " $2 }' | sort -rn | while read -r _ d; do
    rmdir "$DESTDIR$d" 2>/dev/null || true
done
