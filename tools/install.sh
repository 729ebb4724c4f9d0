#!/bin/sh
# usage: install.sh        (make install / make deb set the variables below)
#
# Installs linjail so that it no longer needs the checkout: the package and the
# static reaper under LIBDIR, one C launcher per command of tools/commands
# (running PYTHON -I -S on LIBDIR), man pages, the boot script and unit, and
# the bash and zsh completion.  Everything goes below DESTDIR (staging for the
# .deb); the paths compiled in and written into files are without it.
#
# MANIFEST=yes (make install) records every file written and every directory
# created in LIBDIR/installed-files, which is what `make uninstall` removes;
# a .deb leaves that to dpkg (MANIFEST=no).
set -eu
: "${PREFIX:=/usr/local}" "${DESTDIR:=}" "${PYTHON:=/usr/bin/python3}"
: "${SYSCONFDIR:=/etc}" "${SYSTEMDUNITDIR:=$SYSCONFDIR/systemd/system}"
: "${LIBDIR:=$PREFIX/lib/linjail}" "${MANDIR:=$PREFIX/share/man}"
: "${BASHCOMPDIR:=$PREFIX/share/bash-completion/completions}"
: "${ZSHCOMPDIR:=$PREFIX/share/zsh/site-functions}"
: "${MANIFEST:=yes}" "${GZIPMAN:=no}" "${COMPILE:=yes}"

top=$(cd "$(dirname "$0")/.." && pwd)
reaper=$top/src/linjail/reaper/linjail-reaper
manifest=$DESTDIR$LIBDIR/installed-files
new=$(mktemp)
trap 'rm -f "$new"' EXIT

case $PYTHON in
/*) ;;
*) echo "install: PYTHON=$PYTHON: an absolute path is needed (it is compiled in)" >&2
   exit 1 ;;
esac
if ! "$PYTHON" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install: $PYTHON: not a Python 3.11 or newer (linjail runs on the" \
         "distribution's own python3; set PYTHON=)" >&2
    exit 1
fi
[ -f "$reaper" ] || { echo "install: $reaper: not built (make install builds it)" >&2; exit 1; }

# dir D: make D (and parents), recording the ones that did not exist
dir() {
    [ -d "$DESTDIR$1" ] && return 0
    dir "$(dirname "$1")"
    install -d -m 755 "$DESTDIR$1"
    echo "d $1" >> "$new"
}
# file MODE SRC DEST: install one file, recorded
file() {
    dir "$(dirname "$3")"
    install -m "$1" "$2" "$DESTDIR$3"
    echo "f $3" >> "$new"
}

# the package: its Python files, the jail /etc/rc templates and the reaper
rm -rf "$DESTDIR$LIBDIR/linjail"
(cd "$top/src" && find linjail -name '*.py' -o -path 'linjail/roots/jailrc/*' -type f) |
    LC_ALL=C sort | while read -r f; do
        # the jail /etc/rc scripts are programs (roots/jailify.py copies them)
        case $(head -c 2 "$top/src/$f") in "#!") mode=755 ;; *) mode=644 ;; esac
        file $mode "$top/src/$f" "$LIBDIR/$f"
    done
file 755 "$reaper" "$LIBDIR/linjail/reaper/linjail-reaper"
if [ "$COMPILE" = yes ]; then
    # byte-compiled now, by the interpreter that runs it (start-up speed);
    # the .pyc files are recorded like any other
    if [ -n "$DESTDIR" ]; then set -- -s "$DESTDIR" -p /; else set --; fi
    "$PYTHON" -I -m compileall -q "$@" "$DESTDIR$LIBDIR/linjail" >/dev/null
    (cd "$DESTDIR$LIBDIR" && find linjail -name '*.pyc') | LC_ALL=C sort |
        while read -r f; do echo "d $LIBDIR/$(dirname "$f")"; echo "f $LIBDIR/$f"; done |
        awk '!seen[$0]++' >> "$new"
fi

# the launchers, each in its directory of tools/commands
build=$(mktemp -d)
trap 'rm -f "$new"; rm -rf "$build"' EXIT
sh "$top/tools/mklaunchers.sh" "$build" "$PYTHON" "$LIBDIR"
grep -v '^#' "$top/tools/commands" | while read -r cmd where; do
    [ -n "$cmd" ] || continue
    # the first make install symlinked the commands into a checkout's .venv
    for old in "$DESTDIR$PREFIX/sbin/$cmd" "$DESTDIR$PREFIX/bin/$cmd"; do
        case $(readlink "$old" 2>/dev/null) in */.venv/sbin/"$cmd") rm -f "$old" ;; esac
    done
    file 755 "$build/$cmd" "$PREFIX/$where/$cmd"
done

# man pages (gzip -9n for the .deb, as Debian policy wants)
for m in "$top"/man/*.[0-9]; do
    name=${m##*/}
    if [ "$GZIPMAN" = yes ]; then
        gzip -9n -c "$m" > "$build/$name.gz"
        file 644 "$build/$name.gz" "$MANDIR/man${name##*.}/$name.gz"
    else
        file 644 "$m" "$MANDIR/man${name##*.}/$name"
    fi
done

# boot: the SysV script and the systemd unit, calling this jailctl
sed "s|/usr/local/sbin/jailctl|$PREFIX/sbin/jailctl|g" "$top/etc/init.d/jail" > "$build/jail.init"
sed "s|/usr/local/sbin/jailctl|$PREFIX/sbin/jailctl|g" "$top/etc/systemd/jail.service" \
    > "$build/jail.service"
file 755 "$build/jail.init" "$SYSCONFDIR/init.d/jail"
file 644 "$build/jail.service" "$SYSTEMDUNITDIR/jail.service"

# completion: bash-completion loads completions/NAME for command NAME
if [ -f "$top/etc/completion/linjail.bash" ]; then
    grep -v '^#' "$top/tools/commands" | while read -r cmd _; do
        [ -n "$cmd" ] || continue
        file 644 "$top/etc/completion/linjail.bash" "$BASHCOMPDIR/$cmd"
    done
    file 644 "$top/etc/completion/_linjail" "$ZSHCOMPDIR/_linjail"
fi

if [ "$MANIFEST" = yes ]; then
    # an earlier install's files that this one no longer has
    if [ -f "$manifest" ]; then
        grep '^f ' "$manifest" | while read -r _ f; do
            grep -qxF "f $f" "$new" || [ "$f" = "$LIBDIR/installed-files" ] ||
                rm -f "$DESTDIR$f"
        done
        # directories an earlier install created stay ours
        grep '^d ' "$manifest" >> "$new" || true
    fi
    echo "f $LIBDIR/installed-files" >> "$new"
    awk '!seen[$0]++' "$new" > "$manifest.tmp"
    chmod 644 "$manifest.tmp"
    mv -f "$manifest.tmp" "$manifest"
fi
