#!/bin/sh
# usage: mklaunchers.sh DIR PYTHON SRC
# Builds one launcher per command of tools/commands into DIR from
# src/linjail/reaper/launcher.c, with PYTHON (the interpreter) and SRC (the
# directory holding the linjail package) compiled in.  A launcher that is
# already up to date is left alone (no new mtime, no new inode).
set -eu
dir=$1 python=$2 src=$3
here=$(cd "$(dirname "$0")" && pwd)
launcher=$here/../src/linjail/reaper/launcher.c
cc=${CC:-musl-gcc}
mkdir -p "$dir"
grep -v '^#' "$here/commands" | while read -r tool _; do
    [ -n "$tool" ] || continue
    # a command's module is its name with - as _ (linjail-oci: linjail.cli.linjail_oci)
    module=$(printf '%s' "$tool" | tr - _)
    "$cc" -static -Os -s -Wall -Werror -DTOOL="\"$tool\"" -DMODULE="\"$module\"" \
        -DPYTHON="\"$python\"" -DSRC="\"$src\"" -o "$dir/.$tool.tmp" "$launcher"
    if cmp -s "$dir/.$tool.tmp" "$dir/$tool"; then rm -f "$dir/.$tool.tmp"
    else mv -f "$dir/.$tool.tmp" "$dir/$tool"; fi
done
