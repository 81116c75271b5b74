#!/usr/bin/env bash
# The one Debian install step of the .ci/install-*.sh scripts: does nothing when every program is
# already there; otherwise one `apt-get update` and one non-interactive install of the packages, then
# checks the programs again.
# Usage: apt-install.sh <label> "<program> <program>…" <package>…   (a program: a name on PATH or a path)
set -euo pipefail
label=$1
read -r -a programs <<<"$2"
shift 2
packages=("$@")
missing() {
  local program
  for program in "${programs[@]}"; do command -v "$program" >/dev/null || echo "$program"; done
}
absent=$(missing)
if [ -z "$absent" ]; then
  echo "$label: already installed"
  exit 0
fi
echo "$label: missing $(echo $absent); installing ${packages[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "$label: not root and no sudo" >&2; exit 1; }
  sudo=(sudo -n)
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${packages[@]}" >/dev/null
absent=$(missing)
if [ -n "$absent" ]; then
  echo "$label: still missing after the install: $(echo $absent)" >&2
  exit 1
fi
echo "$label: installed ${packages[*]}"
