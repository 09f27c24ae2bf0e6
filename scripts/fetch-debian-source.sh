#!/usr/bin/env bash
# Usage: fetch-debian-source.sh PACKAGE DEST_DIR
# Fetches Debian's source of PACKAGE (with Debian's patches applied) into DEST_DIR/<pkg>-<ver>,
# using an apt configuration of its own (deb-src for bookworm) so the machine's is left alone.
# Downloads are kept in a cache outside the build tree ($BRIG_CACHE, default ~/.cache/brig)
# so a rebuild does not depend on the archive. Prints the unpacked directory on stdout.
set -euo pipefail
pkg=$1; dest=$2
cache=${BRIG_CACHE:-$HOME/.cache/brig}/debian-src
aptdir=$cache/apt
mkdir -p "$aptdir/lists/partial" "$cache/$pkg" "$dest"

cat > "$aptdir/sources.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
aptopts=(-o Dir::Etc::SourceList="$aptdir/sources.sources" -o Dir::Etc::SourceParts=-
         -o Dir::State::Lists="$aptdir/lists" -o APT::Sandbox::User=root)

# The cached .dsc (and the files it names) is enough to unpack without the network.
dsc=$(ls -t "$cache/$pkg"/*.dsc 2>/dev/null | head -1 || true)
if [[ -z "$dsc" ]]; then
  ok=""
  for attempt in 1 2 3 4; do
    if apt-get "${aptopts[@]}" update -q >&2 &&
       (cd "$cache/$pkg" && apt-get "${aptopts[@]}" source --download-only -q "$pkg" >&2); then
      ok=1; break
    fi
    echo "fetch-debian-source: attempt $attempt for $pkg failed, retrying" >&2; sleep $((attempt * 3))
  done
  [[ -n "$ok" ]] || { echo "fetch-debian-source: cannot download the source of $pkg" >&2; exit 1; }
  dsc=$(ls -t "$cache/$pkg"/*.dsc | head -1)
fi
ver=$(sed -n 's/^Version: //p' "$dsc" | head -1)
upstream=${ver#*:}; upstream=${upstream%-*}
out="$dest/$pkg-$upstream"
if [[ ! -f "$out/.brig-unpacked" ]]; then
  rm -rf "$out"
  dpkg-source --no-check -x "$dsc" "$out" >"$dest/dpkg-source.log" 2>&1 ||
    { cat "$dest/dpkg-source.log" >&2; exit 1; }
  echo "$ver" > "$out/.brig-unpacked"
fi
echo "$out"
