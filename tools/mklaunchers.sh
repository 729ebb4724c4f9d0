#!/bin/sh
# Builds the four commands into DIR from src/linjail/reaper/launcher.c (make install).
set -eu
dir=$1 python=$2 src=$3
mkdir -p "$dir"
for tool in jail jls jexec jailctl; do
    musl-gcc -static -Os -s -Wall -Werror -DTOOL="\"$tool\"" -DPYTHON="\"$python\"" \
        -DSRC="\"$src\"" -o "$dir/.$tool.tmp" "$src/linjail/reaper/launcher.c"
    if cmp -s "$dir/.$tool.tmp" "$dir/$tool"; then rm -f "$dir/.$tool.tmp"
    else mv -f "$dir/.$tool.tmp" "$dir/$tool"; fi
done
