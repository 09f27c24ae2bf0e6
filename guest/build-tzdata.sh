#!/usr/bin/env bash
# Usage: build-tzdata.sh OUT_DIR
# Compiles the IANA time zone database from Debian's tzdata source (fetched like CPython's)
# the way Debian's package does (tzdata.zi with backzone, then zic), into OUT_DIR/tzdata:
#   zoneinfo/<Area>/<Location> (TZif files), zones (the keys, one a line), version.txt.
# pack_stdlib.py ships them read-only as the `tzdata` package, where zoneinfo looks when no
# system time zone directory exists. A rerun with the same inputs does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
src=$("$here/../scripts/fetch-debian-source.sh" tzdata "$out/src")
dest=$out/tzdata
want="$(cat "$src/.brig-unpacked") $(sha256sum < "$0" | cut -c1-16)"
[[ -f $dest/version.txt && "$(cat "$dest/version.txt")" == "$want" ]] && exit 0
rm -rf "$dest" && mkdir -p "$dest"
work=$dest/work
cp -r "$src" "$work"
make -C "$work" -s AWK=awk BACKWARD=backward PACKRATDATA=backzone PACKRATLIST=zone.tab \
  VERSION_DEPS= tzdata.zi >"$dest/make.log" 2>&1 || { tail -20 "$dest/make.log"; exit 1; }
/usr/sbin/zic -d "$dest/zoneinfo" -L /dev/null "$work/tzdata.zi"
# zic links equal zones; the pack holds plain files.
(cd "$dest/zoneinfo" && find . -type l | while read -r l; do cp --remove-destination "$(readlink -f "$l")" "$l"; done)
(cd "$dest/zoneinfo" && find . -type f | sed 's#^\./##' | LC_ALL=C sort) > "$dest/zones"
sed -n 's/^# version //p' "$work/tzdata.zi" | head -1 > "$dest/iana-version.txt"
rm -rf "$work"
echo "$want" > "$dest/version.txt"
