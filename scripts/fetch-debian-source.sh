#!/usr/bin/env bash
# Usage: fetch-debian-source.sh PACKAGE DEST_DIR
#        fetch-debian-source.sh --print-sources [--with-security] [FILE...]
# Fetches Debian's source of PACKAGE (with Debian's patches applied) into DEST_DIR/<pkg>-<ver>
# and prints the unpacked directory on stdout.
#
# The archive is the machine's own: the deb-src entries are derived from the apt sources it
# is configured with (Dir::Etc::SourceList and Dir::Etc::SourceParts, i.e. /etc/apt/sources.list
# and /etc/apt/sources.list.d/*.list and *.sources, one-line and deb822 formats alike), so a
# mirror, a proxy or a local (file:) archive works as it does for apt-get install. apt-get then
# runs with an apt configuration of its own (that source list, its own lists and package
# cache; the machine's apt.conf.d, e.g. a proxy, still applies) and leaves the machine's alone. Suites named *-security are left out at first: they can name a newer
# revision than the archive serves the files of (see DESIGN.md); only if the source cannot be
# had without them are they added. Downloads are retried, and kept in a cache outside the
# build tree ($BRIG_CACHE, default ~/.cache/brig) so a rebuild does not depend on the archive.
#
# --print-sources prints the derived source list (deb822) and exits: from the FILEs given
# (*.sources files are read as deb822, others as one-line), or from the machine's.
set -euo pipefail
export LC_ALL=C

# ---- Deriving deb-src entries from apt source files.

# One deb822 stanza for a deb-src entry. Globals: uris, suites, comps, extra (more fields,
# one per line, already in deb822 form). Leaves out *-security suites unless with_security.
emit_stanza() {
  local kept=() s all
  read -ra all <<<"$suites" || true
  for s in "${all[@]}"; do
    [[ $with_security == 1 || ( $s != *-security && $s != */updates ) ]] && kept+=("$s")
  done
  [[ ${#kept[@]} -gt 0 && -n $uris ]] || return 0
  local text
  text="Types: deb-src"$'\n'"URIs: $uris"$'\n'"Suites: ${kept[*]}"
  [[ -n $comps ]] && text+=$'\n'"Components: $comps"
  [[ -n $extra ]] && text+=$'\n'"${extra%$'\n'}"
  # deb and deb-src lines for one archive give the same stanza: print it once.
  [[ -n ${seen[$text]:-} ]] && return 0
  seen[$text]=1
  printf '%s\n\n' "$text"
}

# A one-line option name as a deb822 field name (signed-by -> Signed-By).
field_name() {
  local out="" part parts
  IFS=- read -ra parts <<<"$1" || true
  for part in "${parts[@]}"; do out+="${out:+-}${part^}"; done
  printf '%s' "$out"
}

# /etc/apt/sources.list format: "deb [opt=val ...] URI SUITE [COMPONENT...]".
parse_one_line() {
  local line type rest opts optv opt key val
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    read -r type rest <<<"$line" || true
    [[ $type == deb || $type == deb-src ]] || continue
    opts=""
    if [[ $rest == \[* ]]; then
      opts=${rest#\[}; opts=${opts%%\]*}; rest=${rest#*\]}
    fi
    read -r uris suites comps <<<"$rest" || true
    [[ -n $suites ]] || continue
    extra=""
    read -ra optv <<<"$opts" || true
    for opt in "${optv[@]}"; do
      key=${opt%%=*}; val=${opt#*=}
      case $key in
        arch | lang | target | *+ | *-) continue ;;  # binary-only, or edits of defaults
      esac
      extra+="$(field_name "$key"): ${val//,/ }"$'\n'
    done
    [[ $uris == cdrom:* ]] && continue
    emit_stanza
  done <"$1"
}

# deb822 format: stanzas of "Field: value" lines (continuation lines start with a space),
# separated by blank lines; '#' lines are comments.
parse_deb822() {
  local line field="" value="" types="" enabled=yes
  uris=""; suites=""; comps=""; extra=""
  finish_field() {
    [[ -n $field ]] || return 0
    case ${field,,} in
      types) types=$value ;;
      uris) uris=$value ;;
      suites) suites=$value ;;
      components) comps=$value ;;
      enabled) enabled=${value,,} ;;
      architectures | languages | targets | architectures-add | architectures-remove | \
        languages-add | languages-remove | targets-add | targets-remove) ;;
      *) extra+="$field:$raw"$'\n' ;;
    esac
    field=""
  }
  finish_stanza() {
    finish_field
    if [[ " $types " == *" deb "* || " $types " == *" deb-src "* ]] && [[ $enabled != no ]] &&
       [[ $uris != cdrom:* ]]; then
      emit_stanza
    fi
    types=""; enabled=yes; uris=""; suites=""; comps=""; extra=""
  }
  local raw=""
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == \#* ]]; then
      continue
    elif [[ -z ${line//[[:space:]]/} ]]; then
      finish_stanza
    elif [[ $line == [[:space:]]* ]]; then  # continuation of the field before (kept as is)
      raw+=$'\n'"$line"
      value+=" ${line#"${line%%[![:space:]]*}"}"
    elif [[ $line == *:* ]]; then
      finish_field
      field=${line%%:*}
      raw=${line#*:}
      value=${raw#"${raw%%[![:space:]]*}"}
    fi
  done <"$1"
  finish_stanza
}

# Prints a deb822 source list of deb-src entries for the archives that FILEs name.
derive_deb_src() {
  declare -gA seen=()
  local f
  for f in "$@"; do
    [[ -r $f ]] || continue
    if [[ $f == *.sources ]]; then parse_deb822 "$f"; else parse_one_line "$f"; fi
  done
}

# The machine's apt source files, in the order apt reads them.
machine_source_files() {
  local list parts f
  eval "$(apt-config shell list Dir::Etc::SourceList/f parts Dir::Etc::SourceParts/d)"
  parts=${parts:-}; parts=${parts%/}
  [[ -n ${list:-} && -f $list ]] && echo "$list"
  if [[ -n ${parts:-} && -d $parts ]]; then
    for f in "$parts"/*; do
      # apt reads only these names (sources.list(5): letters, digits, _ - .).
      [[ -f $f && $(basename "$f") =~ ^[A-Za-z0-9_.-]+\.(list|sources)$ ]] && echo "$f"
    done
  fi
  return 0
}

with_security=0
if [[ ${1:-} == --print-sources ]]; then
  shift
  [[ ${1:-} == --with-security ]] && { with_security=1; shift; }
  if [[ $# -eq 0 ]]; then
    mapfile -t files < <(machine_source_files)
    set -- "${files[@]}"
  fi
  derive_deb_src "$@"
  exit 0
fi

# ---- Fetching.

pkg=$1; dest=$2
cache=${BRIG_CACHE:-$HOME/.cache/brig}/debian-src
aptdir=$cache/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$cache/$pkg" "$dest"
# Its own source list, lists and package cache: the machine's apt state is not touched.
aptopts=(-o Dir::Etc::SourceList="$aptdir/sources.sources" -o Dir::Etc::SourceParts=-
         -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" -o APT::Sandbox::User=root)

# Downloads the source of $pkg into the cache with the source list derived at this level.
download() {
  with_security=$1
  mapfile -t files < <(machine_source_files)
  derive_deb_src "${files[@]}" >"$aptdir/sources.sources"
  if [[ ! -s $aptdir/sources.sources ]]; then
    local what="archive"
    [[ $with_security == 1 ]] || what="archive outside the *-security suites"
    echo "fetch-debian-source: the machine's apt sources (${files[*]:-none}) name no $what" >&2
    return 1
  fi
  local attempt
  for attempt in 1 2 3 4; do
    # An index that fails (a third-party archive with no sources, one that is unreachable)
    # only matters if the source cannot be had from the others: apt-get source decides.
    apt-get "${aptopts[@]}" update -q >&2 ||
      echo "fetch-debian-source: apt-get update reported errors (attempt $attempt)" >&2
    if (cd "$cache/$pkg" && apt-get "${aptopts[@]}" source --download-only -q "$pkg" >&2); then
      # From a file: archive apt-get links to the archive's files: the cache keeps copies.
      local f
      for f in "$cache/$pkg"/*; do
        if [[ -L $f ]]; then cp --remove-destination "$(readlink -f "$f")" "$f"; fi
      done
      return 0
    fi
    echo "fetch-debian-source: attempt $attempt for $pkg failed, retrying" >&2
    sleep $((attempt * 3))
  done
  return 1
}

# The cached .dsc (and the files it names) is enough to unpack without the network.
dsc=$(ls -t "$cache/$pkg"/*.dsc 2>/dev/null | head -1 || true)
if [[ -z "$dsc" ]]; then
  if ! download 0; then
    echo "fetch-debian-source: trying again with the *-security suites" >&2
    download 1 || { echo "fetch-debian-source: cannot download the source of $pkg" >&2; exit 1; }
  fi
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
