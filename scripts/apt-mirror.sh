#!/usr/bin/env bash
# Prints the Debian mirror this machine's apt uses, for debootstrap (scripts/torch2.sh), and never fails.
#
#   bash scripts/apt-mirror.sh [ETC_APT]     ETC_APT defaults to /etc/apt
#   . scripts/apt-mirror.sh; apt_mirror DIR  the same, as a function
#
# It reads, whichever exist: deb822 files (sources.list.d/*.sources: the `URIs:` of enabled stanzas whose
# `Types:` include `deb`) and one-line files (sources.list and sources.list.d/*.list: `deb [options] URI ...`).
# Files with other endings (`*.disabled`, `*.save`) are not apt's and are skipped, as apt skips them.
# Only http(s) URIs whose path ends in /debian count (an Ubuntu archive or a third-party repository cannot
# serve trixie); security, -updates and backports archives are passed over. With nothing usable it prints
# Debian's default, http://deb.debian.org/debian.
# Every look-up tolerates missing files and folders: under `set -euo pipefail` a missing sources.list must not
# end the caller (it did, on machines that have only deb822 files).

APT_MIRROR_DEFAULT=http://deb.debian.org/debian

# All candidate URIs, one a line, in apt's reading order: sources.list, then sources.list.d/ sorted.
apt_mirror_candidates() {
  local dir=${1:-/etc/apt} f
  local files=()
  [ -f "$dir/sources.list" ] && files+=("$dir/sources.list")
  if [ -d "$dir/sources.list.d" ]; then
    for f in "$dir"/sources.list.d/*.list "$dir"/sources.list.d/*.sources; do
      [ -f "$f" ] && files+=("$f")
    done
  fi
  [ ${#files[@]} -gt 0 ] || return 0
  for f in "${files[@]}"; do
    case $f in
      *.sources)
        # deb822: blank lines separate stanzas; fields are case-insensitive; '#' starts a comment line.
        awk '
          function flush() {
            if (uris != "" && deb && enabled) { n = split(uris, u, /[ \t]+/); for (i = 1; i <= n; i++) if (u[i] != "") print u[i] }
            uris = ""; deb = 0; enabled = 1; field = ""
          }
          BEGIN { flush() }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          /^[ \t]/ { if (field == "uris") uris = uris " " $0; next }
          {
            split($0, kv, ":"); field = tolower(kv[1]); value = substr($0, length(kv[1]) + 2)
            gsub(/^[ \t]+|[ \t]+$/, "", value)
            if (field == "uris") uris = value
            else if (field == "types") deb = (" " value " " ~ /[ \t]deb[ \t]/)
            else if (field == "enabled") enabled = (tolower(value) != "no")
          }
          END { flush() }
        ' "$f" 2>/dev/null || true
        ;;
      *)
        # one-line style: deb [ options ] URI suite [component...]
        awk '
          /^[ \t]*deb[ \t]/ {
            line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
            if (line ~ /^\[/) { sub(/^\[[^]]*\][ \t]*/, "", line) }
            split(line, w, /[ \t]+/); if (w[1] != "") print w[1]
          }
        ' "$f" 2>/dev/null || true
        ;;
    esac
  done
}

apt_mirror() {
  local uri best=""
  while IFS= read -r uri; do
    case $uri in
      http://* | https://*) ;;
      *) continue ;;
    esac
    case $uri in *security* | *-updates* | *backports*) continue ;; esac
    uri=${uri%/}
    case $uri in
      */debian) best=$uri; break ;;
    esac
  done < <(apt_mirror_candidates "${1:-/etc/apt}")
  printf '%s\n' "${best:-$APT_MIRROR_DEFAULT}"
}

# Run as a script: print the mirror.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  apt_mirror "${1:-/etc/apt}"
fi
